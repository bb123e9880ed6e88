"""Rolling-origin backtest of the engine's tiered models, scored with utilsforecast."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import pandas as pd
from statsforecast import StatsForecast
from utilsforecast.evaluation import evaluate
from utilsforecast.losses import coverage, mae, mape, mase, rmse, smape

from intentvision_dagster.forecasting.engine import (
    MIN_ETS_POINTS,
    build_model,
    choose_tier,
    nixtla_frame,
    tidy_output,
)
from intentvision_dagster.forecasting.frequency import season_lengths

_FC = "fc"
"""Model column name handed to utilsforecast (it expects ``<model>``, ``<model>-lo-<level>``, ...)."""


def backtest_columns(levels: Sequence[int]) -> list[str]:
    """Output columns of :func:`backtest`."""
    metrics = ["mae", "rmse", "mape", "smape", "mase", *(f"coverage_{level}" for level in sorted(levels))]
    return ["unique_id", "model", *metrics, "n_windows"]


def window_plan(
    n_points: int, horizon: int, n_windows: int, seasons: Sequence[int] = ()
) -> tuple[int, int, int]:
    """(horizon, windows, step) for a series; (0, 0, 0) if no window fits.

    Shorten the horizon first, then drop windows, keeping at least :data:`MIN_ETS_POINTS` points in the first
    training window. Windows are back to back (step = horizon) unless that would leave the first cutoff too
    little history for the model the full series gets; then they overlap, so the backtest scores the model
    that actually forecasts (e.g. 35 daily points: step 2, not a cold-start model on 14 points).
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


def _score(cv: pd.DataFrame, data: pd.DataFrame, levels: Sequence[int], seasonality: int) -> pd.DataFrame:
    """Metrics per series over all windows; MASE is scaled by the history before the first cutoff."""
    first_cutoff = cv.groupby("unique_id")["cutoff"].min()
    train = data[data["ds"] <= data["unique_id"].map(first_cutoff)]
    renames = {"yhat": _FC}
    for level in levels:
        renames |= {f"lo_{level}": f"{_FC}-lo-{level}", f"hi_{level}": f"{_FC}-hi-{level}"}
    scored = evaluate(
        cv.drop(columns=["cutoff", "model"]).rename(columns=renames),
        metrics=[mae, rmse, mape, smape, partial(mase, seasonality=seasonality), coverage],
        models=[_FC],
        train_df=train,
        level=list(levels),
    )
    wide = scored.pivot(index="unique_id", columns="metric", values=_FC).reset_index()
    return wide.rename(columns={f"coverage_level{level}": f"coverage_{level}" for level in levels})


def backtest(
    df: pd.DataFrame,
    horizon: int,
    freq: str,
    levels: Sequence[int] = (80, 95),
    n_windows: int = 3,
    lower: float | None = None,
    upper: float | None = None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """One row of accuracy metrics per series from rolling-origin cross-validation (see :func:`window_plan`).

    Each series is evaluated with the model :func:`~intentvision_dagster.forecasting.engine.forecast` picks
    for the history available at its first cutoff, on ``min(horizon, what its history allows)`` steps.
    Series too short for one window get NaN metrics and ``n_windows = 0``.

    Scales (utilsforecast 0.2): ``mape`` is a fraction (0.05 = 5%, NaN where y = 0); ``smape`` is
    ``mean(|y - yhat| / (|y| + |yhat|))``, a fraction in [0, 1] (half the textbook 0-200% sMAPE);
    ``mase`` divides by the seasonal-naive MAE on the history before the first cutoff (seasonality = the
    first season length, or 1);
    ``coverage_<level>`` is the share of actuals inside the interval (0-1).

    Returns ``unique_id, model, mae, rmse, mape, smape, mase, coverage_<level>..., n_windows``.
    """
    data = nixtla_frame(df)
    seasons = season_lengths(freq)
    plans = []
    for uid, n_points in data.groupby("unique_id").size().items():
        steps, windows, step = window_plan(int(n_points), horizon, n_windows, seasons)
        tier = choose_tier(int(n_points) - steps - step * (windows - 1), seasons)
        plans.append(
            {
                "unique_id": uid,
                "model": tier[0],
                "tier": tier,
                "steps": steps,
                "n_windows": windows,
                "step": step,
            }
        )
    plan = pd.DataFrame(plans, columns=["unique_id", "model", "tier", "steps", "n_windows", "step"])
    rows = []
    groups = plan[plan["n_windows"] > 0].groupby(["tier", "steps", "n_windows", "step"])
    for (tier, steps, windows, step), group in groups:
        sf = StatsForecast(models=[build_model(tier)], freq=freq, n_jobs=n_jobs)
        subset = data[data["unique_id"].isin(group["unique_id"])]
        cv = sf.cross_validation(
            df=subset, h=steps, n_windows=windows, step_size=step, level=list(levels), refit=True
        )
        cv = tidy_output(cv, tier[0], levels, lower, upper)
        rows.append(_score(cv, subset, levels, seasons[0] if seasons else 1))
    scores = pd.concat(rows) if rows else pd.DataFrame(columns=["unique_id"])
    result = plan[["unique_id", "model", "n_windows"]].merge(scores, on="unique_id", how="left")
    columns = backtest_columns(levels)
    result = result.reindex(columns=columns).astype({c: "float64" for c in columns[2:-1]})
    return result.astype({"n_windows": "int64"}).sort_values("unique_id", ignore_index=True)
