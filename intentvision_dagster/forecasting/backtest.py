"""Rolling-origin backtest of the registry's candidate models, scored with utilsforecast.

Above :mod:`~intentvision_dagster.forecasting.models` (what to fit) and below the selection, which ranks
and calibrates from these scores; it never imports a forecast, so the selection can call it and the
forecast can call the selection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import pandas as pd
from statsforecast import StatsForecast
from utilsforecast.evaluation import evaluate
from utilsforecast.losses import coverage, mae, mape, mase, rmse, smape

from intentvision_dagster.forecasting.models import (
    MIN_ETS_POINTS,
    Tier,
    candidates,
    choose_tier,
    fitted_models,
    long_by_model,
)
from intentvision_dagster.forecasting.spec import (
    ForecastSpec,
    bound_and_order,
    interval_columns,
    nixtla_frame,
)
from intentvision_dagster.forecasting.workers import map_series
from intentvision_dagster.frequency import season_lengths

METRICS = ("mae", "rmse", "mape", "smape", "mase")
"""Point metrics per series and model; any of them can be the selection metric (lower is better)."""


def backtest_columns(levels: Sequence[int]) -> list[str]:
    """Output columns of :func:`backtest`."""
    return ["unique_id", "model", *METRICS, *(f"coverage_{level}" for level in sorted(levels)), "n_windows"]


def window_plan(
    n_points: int, horizon: int, n_windows: int, seasons: Sequence[int] = ()
) -> tuple[int, int, int]:
    """(horizon, windows, step) for a series; (0, 0, 0) if no window fits.

    Shorten the horizon first, then drop windows, keeping at least :data:`MIN_ETS_POINTS` points in the first
    training window. Windows are back to back (step = horizon) unless that would leave the first cutoff too
    little history for the tier the full series gets; then they overlap, so the backtest scores the models
    that actually forecast (e.g. 35 daily points: step 2, not a cold-start model on 14 points).
    """
    production = choose_tier(n_points, seasons)
    fallback = (0, 0, 0)
    for windows in range(n_windows, 0, -1):
        steps = min(horizon, (n_points - MIN_ETS_POINTS) // windows)
        if steps < 1:
            continue
        fallback = fallback if fallback[0] else (steps, windows, steps)
        for step in dict.fromkeys((steps, max(1, steps // windows))):
            if choose_tier(n_points - steps - step * (windows - 1), seasons) == production:
                return steps, windows, step
    return fallback


def plan_windows(data: pd.DataFrame, spec: ForecastSpec) -> pd.DataFrame:
    """Per series: the tier at its first cutoff, and its window plan (``steps, n_windows, step``)."""
    seasons = season_lengths(spec.freq)
    rows = []
    for uid, n_points in data.groupby("unique_id").size().items():
        steps, windows, step = window_plan(int(n_points), spec.horizon, spec.n_windows, seasons)
        tier = choose_tier(int(n_points) - steps - step * (windows - 1), seasons)
        rows.append({"unique_id": uid, "tier": tier, "steps": steps, "n_windows": windows, "step": step})
    return pd.DataFrame(rows, columns=["unique_id", "tier", "steps", "n_windows", "step"])


def cross_validate(
    df: pd.DataFrame,
    spec: ForecastSpec,
    only: Sequence[str] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw rolling-origin forecasts of every candidate and the window plan they followed.

    Returns (``unique_id, ds, cutoff, y, yhat, lo_<level>, hi_<level>..., model`` unclipped and
    uncalibrated, and the plan of :func:`plan_windows`). One ``cross_validation`` call per (tier, window plan)
    group and worker fits all of the group's candidates together (``only`` restricts them to those names).
    """
    data = nixtla_frame(df)
    shares = map_series(_cross_validate_share, data, spec.n_jobs, on_progress, spec=spec, only=only)
    if len(shares) == 1:
        return shares[0]
    frames = [cv for cv, _ in shares if not cv.empty] or [shares[0][0]]
    return pd.concat(frames, ignore_index=True), pd.concat([plan for _, plan in shares], ignore_index=True)


def _cross_validate_share(
    data: pd.DataFrame,
    spec: ForecastSpec,
    only: Sequence[str] | None,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    plan = plan_windows(data, spec)
    parts = []
    for (tier, steps, windows, step), group in plan[plan["n_windows"] > 0].groupby(
        ["tier", "steps", "n_windows", "step"]
    ):
        names = _names(tier, only)
        sf = StatsForecast(models=fitted_models(names, tier), freq=spec.freq, n_jobs=1)
        wide = sf.cross_validation(
            df=data[data["unique_id"].isin(group["unique_id"])],
            h=steps,
            n_windows=windows,
            step_size=step,
            level=list(spec.levels),
            refit=True,
        )
        parts.append(long_by_model(wide, names, spec.levels))
        if on_progress is not None:
            on_progress(len(group))
    columns = ["unique_id", "ds", "cutoff", "y", "yhat", *interval_columns(spec.levels), "model"]
    cv = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return cv[columns], plan


def _names(tier: Tier, only: Sequence[str] | None) -> list[str]:
    offered = candidates(tier)
    picked = [name for name in offered if only is None or name in only]
    return picked or [offered[0]]


def score(cv: pd.DataFrame, history: pd.DataFrame, levels: Sequence[int], seasonality: int) -> pd.DataFrame:
    """Metrics per (series, model) over all windows; MASE is scaled by the history before the first cutoff.

    Scales (utilsforecast 0.2): ``mape`` is a fraction (0.05 = 5%, NaN where y = 0); ``smape`` is
    ``mean(|y - yhat| / (|y| + |yhat|))``, a fraction in [0, 1] (half the textbook 0-200% sMAPE);
    ``mase`` divides by the seasonal-naive MAE on the history before the first cutoff; ``coverage_<level>``
    is the share of actuals inside the interval (0-1).
    """
    if cv.empty:
        return pd.DataFrame(columns=["unique_id", "model", *METRICS, *(f"coverage_{lv}" for lv in levels)])
    data = nixtla_frame(history)
    first_cutoff = cv.groupby("unique_id")["cutoff"].min()
    train = data[data["ds"] <= data["unique_id"].map(first_cutoff)]
    wide = cv.set_index(["unique_id", "ds", "cutoff", "model"])[
        ["y", "yhat", *interval_columns(levels)]
    ].unstack("model")
    models = list(cv["model"].unique())
    flat = pd.DataFrame(
        {"y": wide[("y", models[0])]}
        | {name: wide[("yhat", name)] for name in models}
        | {
            f"{name}-{side}-{level}": wide[(f"{side}_{level}", name)]
            for name in models
            for level in levels
            for side in ("lo", "hi")
        }
    ).reset_index()
    scored = evaluate(
        flat.drop(columns=["cutoff"]),
        metrics=[mae, rmse, mape, smape, partial(mase, seasonality=seasonality), coverage],
        models=models,
        train_df=train,
        level=list(levels),
    )
    long = scored.melt(id_vars=["unique_id", "metric"], var_name="model", value_name="value")
    result = long.pivot_table(index=["unique_id", "model"], columns="metric", values="value", dropna=False)
    result = result.rename(columns={f"coverage_level{level}": f"coverage_{level}" for level in levels})
    return result.reset_index().rename_axis(columns=None)


@dataclass(frozen=True)
class Backtest:
    """One backtest run: the raw forecasts, the window plan they followed, and the bounded scores."""

    cv: pd.DataFrame
    plan: pd.DataFrame
    scores: pd.DataFrame


def run_backtest(
    df: pd.DataFrame,
    spec: ForecastSpec,
    only: Sequence[str] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Backtest:
    """:func:`cross_validate`, then :func:`score` on the forecasts clipped to the spec's bounds.

    MASE is scaled by the shortest season (1 for a frequency without one).
    """
    cv, plan = cross_validate(df, spec, only, on_progress)
    seasons = season_lengths(spec.freq)
    scores = score(bound_and_order(cv, spec), df, spec.levels, seasons[0] if seasons else 1)
    return Backtest(cv, plan, scores)


def backtest(df: pd.DataFrame, spec: ForecastSpec, only: Sequence[str] | None = None) -> pd.DataFrame:
    """Accuracy of every candidate of every series, one row per (series, model), bounds applied.

    Each series is evaluated on the candidates of the tier it has at its first cutoff, on
    ``min(horizon, what its history allows)`` steps (:func:`window_plan`). Series too short for one window
    get one row (their tier's model) with NaN metrics and ``n_windows = 0``. Returns
    :func:`backtest_columns` sorted by unique_id, model.
    """
    run = run_backtest(df, spec, only)
    unscored = run.plan.loc[run.plan["n_windows"] == 0, ["unique_id", "tier"]]
    missing = pd.DataFrame({"unique_id": unscored["unique_id"], "model": [t[0] for t in unscored["tier"]]})
    result = pd.concat([run.scores, missing], ignore_index=True).merge(
        run.plan[["unique_id", "n_windows"]], on="unique_id", how="left"
    )
    columns = backtest_columns(spec.levels)
    result = result.reindex(columns=columns).astype({c: "float64" for c in columns[2:-1]})
    return result.astype({"n_windows": "int64"}).sort_values(["unique_id", "model"], ignore_index=True)
