"""Model selection per series by backtest, and interval calibration from the same backtest.

One rolling-origin ``cross_validation`` per (tier, window plan) scores every candidate of every series. The
winner is the candidate with the lowest selection metric (default MASE). The same backtest calibrates the
intervals (split conformal with normalised scores): for each series and model, the score of an actual is
how far outside ``yhat`` it fell in units of the interval's half-width on that side, so an interval covers
it exactly when the score is <= 1. Where the coverage at a level is off nominal by more than two binomial
standard errors, the intervals at that level are scaled by the conformal quantile of those scores (factor
< 1 narrows, > 1 widens). Each series is calibrated on its own backtest, so one series' cleanup or ramp in a
partition does not widen every other series' bands. Scores are normalised by the model's own,
horizon-growing half-widths, and calibrated per horizon bucket (:data:`STEP_BUCKETS`: the first 1/24 of the
horizon, up to 1/6, 1/2, the rest), because a model's own widths are often right one step ahead and too
narrow or too wide 72 steps ahead; a bucket with fewer than :data:`MIN_BUCKET_SCORES` scores takes the
series' pooled factor.

``coverage_<level>`` is the raw coverage of the winner in the backtest; ``coverage_<level>_calibrated`` is
measured honestly, each window scaled by the factors fitted on the other windows, and ``coverage_by_step``
(JSON) gives that honest coverage per horizon bucket. ``mae_recent`` is the winner's MAE on the newest
window only (what the series looks like now), ``backtest_hours`` the length of a window.

Above :mod:`~intentvision_dagster.forecasting.backtest` (whose scores it ranks) and below the forecast,
which selects through it unless it is handed a stored selection.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from intentvision_dagster.forecasting.backtest import METRICS, run_backtest
from intentvision_dagster.forecasting.models import MODEL_LOW_CONFIDENCE, MODEL_NAMES, candidates
from intentvision_dagster.forecasting.spec import ForecastSpec
from intentvision_dagster.frequency import step_of

STEP_BUCKETS = (1 / 24, 1 / 6, 1 / 2, 1.0)
"""Upper edges of the horizon buckets calibrated separately, as shares of the horizon (72 h: 1-3, 4-12,
13-36, 37-72)."""
MIN_BUCKET_SCORES = 30


def step_buckets(step: np.ndarray, horizon: np.ndarray | int) -> np.ndarray:
    """Bucket index (0-3) of forecast step ``step`` (1-based) of a ``horizon``-step forecast."""
    share = np.asarray(step, dtype="float64") / np.asarray(horizon, dtype="float64")
    return np.minimum(np.searchsorted(np.array(STEP_BUCKETS), share - 1e-9), len(STEP_BUCKETS) - 1)


def bucket_label(bucket: int, horizon: int) -> str:
    """``h1-3`` for bucket 0 of a 72-step horizon: the steps a bucket covers."""
    edges = [0, *(max(1, int(np.floor(edge * horizon + 1e-9))) for edge in STEP_BUCKETS)]
    first, last = edges[bucket] + 1, max(edges[bucket + 1], edges[bucket] + 1)
    return f"h{first}-{last}" if last > first else f"h{first}"


def selection_columns(levels: Sequence[int]) -> list[str]:
    """Output columns of :func:`select_models`: the ``forecast_accuracy`` table's columns."""
    coverage = [f"coverage_{level}" for level in sorted(levels)]
    return [
        "unique_id",
        "model",
        *METRICS,
        *coverage,
        "n_windows",
        "selection_metric",
        "candidate_scores",
        *(f"calibration_{level}" for level in sorted(levels)),
        *(f"{name}_calibrated" for name in coverage),
        "low_confidence",
        "step_calibration",
        "coverage_by_step",
        "mae_recent",
        "backtest_hours",
    ]


def normalised_scores(cv: pd.DataFrame, level: int) -> np.ndarray:
    """|y - yhat| in units of the interval's half-width on the side the actual fell (<= 1: covered)."""
    error = (cv["y"] - cv["yhat"]).to_numpy()
    width = np.where(error >= 0, cv[f"hi_{level}"] - cv["yhat"], cv["yhat"] - cv[f"lo_{level}"])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(error) / width
    return np.where(np.abs(error) == 0, 0.0, np.where(width > 0, ratio, np.inf))


def with_steps(cv: pd.DataFrame) -> pd.DataFrame:
    """``cv`` plus ``window`` (1 = oldest cutoff), ``step`` (1-based) and its horizon ``bucket``."""
    keys = ["unique_id", "model", "cutoff"]
    frame = cv.sort_values([*keys, "ds"])
    step = frame.groupby(keys).cumcount() + 1
    horizon = frame.groupby(keys)["ds"].transform("size")
    window = frame.groupby(["unique_id", "model"])["cutoff"].rank(method="dense")
    return frame.assign(window=window, step=step, bucket=step_buckets(step.to_numpy(), horizon.to_numpy()))


def group_factors(scores: pd.DataFrame, keys: list[str], level: int) -> pd.DataFrame:
    """The interval factor of the ``score`` column per group of ``keys``: 1.0 where raw coverage is within two
    binomial standard errors of nominal, else the finite-sample conformal quantile at ``level`` (1.0 when too
    few scores give one, or it is not a positive number).

    Returns ``keys..., n, factor`` (``n``: the group's scores).
    """
    data = scores.loc[scores["score"].notna(), [*keys, "score"]].sort_values([*keys, "score"])
    grouped = data.groupby(keys, sort=False)
    n = grouped["score"].transform("size")
    rank = np.ceil((n + 1) * level / 100)
    kth = data["score"].where(grouped.cumcount() + 1 == rank)
    nominal = level / 100
    per_group = (
        data.assign(kth=kth, covered=(data["score"] <= 1).astype("float64"))
        .groupby(keys)
        .agg(n=("score", "size"), covered=("covered", "mean"), kth=("kth", "max"))
    )
    tolerance = 2 * np.sqrt(nominal * (1 - nominal) / per_group["n"])
    usable = np.isfinite(per_group["kth"]) & (per_group["kth"] > 0)
    calibrated = (per_group["covered"] - nominal).abs() > tolerance
    per_group["factor"] = np.where(calibrated & usable, per_group["kth"], 1.0)
    return per_group[["n", "factor"]].reset_index()


def series_factors(scores: pd.DataFrame, level: int) -> pd.DataFrame:
    """Per (series, model): its factor pooled over the horizon and one per horizon bucket.

    A series' own factor is shrunk halfway (in log space) toward the median factor of the model's series
    in the partition: its own backtest is a few windows, the median borrows strength from its neighbours
    without letting one odd series widen them all. A bucket with fewer than :data:`MIN_BUCKET_SCORES`
    scores takes the series' pooled factor. Returns ``unique_id, model, factor, bucket_<b>``.
    """
    keys = ["unique_id", "model"]
    pooled = group_factors(scores, keys, level).drop(columns="n").set_index(keys)["factor"]
    buckets = group_factors(scores, [*keys, "bucket"], level)
    own = buckets[buckets["n"] >= MIN_BUCKET_SCORES].pivot(index=keys, columns="bucket", values="factor")
    raw = pd.DataFrame({"factor": pooled})
    for bucket in range(len(STEP_BUCKETS)):
        column = own[bucket] if bucket in own.columns else pd.Series(dtype="float64")
        raw[f"bucket_{bucket}"] = column.reindex(raw.index).fillna(raw["factor"])
    logs = np.log(raw)
    typical = logs.groupby(level="model").transform("median")
    return np.exp((logs + typical) / 2).reset_index()


def calibrate(cv: pd.DataFrame, levels: Sequence[int]) -> pd.DataFrame:
    """Calibration factors per (series, model, level, horizon bucket), and their honest coverage.

    Each series is calibrated on its own backtest: a partition's other series (a disk that was cleaned up,
    a ramp) do not widen its bands. Returns one row per (series, model): ``calibration_<level>`` (pooled
    over the horizon), ``step_calibration`` (JSON: level -> one factor per bucket),
    ``coverage_<level>_calibrated`` (each window scaled by the factors fitted on the other windows; NaN
    with one window), ``coverage_by_step`` (JSON), ``mae_recent`` and ``backtest_steps``.
    """
    frame = with_steps(cv)
    keys = ["unique_id", "model"]
    bucket_columns = [f"bucket_{bucket}" for bucket in range(len(STEP_BUCKETS))]
    result = frame[keys].drop_duplicates().set_index(keys).sort_index()
    per_bucket = {}
    for level in levels:
        frame["score"] = normalised_scores(frame, level)
        factors = series_factors(frame, level).set_index(keys)
        result[f"calibration_{level}"] = factors["factor"]
        per_bucket[str(level)] = factors[bucket_columns]
        covered = pd.Series(np.nan, index=frame.index, dtype="float64")
        for window in frame["window"].unique():
            held = frame["window"] == window
            others = series_factors(frame[~held], level)
            if others.empty:
                continue
            limits = frame.loc[held, [*keys, "bucket"]].merge(others, on=keys, how="left")
            limit = limits[bucket_columns].to_numpy()[np.arange(len(limits)), limits["bucket"].to_numpy()]
            covered[held] = np.where(np.isnan(limit), np.nan, frame.loc[held, "score"].to_numpy() <= limit)
        frame[f"coverage_{level}_calibrated"] = covered
    result["step_calibration"] = [
        json.dumps({level: [float(v) for v in table.loc[key]] for level, table in per_bucket.items()})
        for key in result.index
    ]
    columns = [f"coverage_{level}_calibrated" for level in levels]
    result[columns] = frame.groupby(keys)[columns].mean()
    horizon = frame.groupby(keys)["step"].max()
    by_step = frame.groupby([*keys, "bucket"])[columns].mean()
    result["coverage_by_step"] = [
        json.dumps(_by_step_json(by_step.xs(key, level=keys), horizon[key])) for key in result.index
    ]
    recent = frame[frame["window"] == frame.groupby(keys)["window"].transform("max")]
    result["mae_recent"] = (recent["y"] - recent["yhat"]).abs().groupby([recent[k] for k in keys]).mean()
    result["backtest_steps"] = horizon
    return result.reset_index()


def _by_step_json(rows: pd.DataFrame, horizon: int) -> dict[str, dict[str, float | None]]:
    """Coverage per horizon bucket, keyed by the steps it covers (``{"h1-3": {"80": 0.81, ...}}``)."""
    return {
        bucket_label(int(bucket), int(horizon)): {
            column.split("_")[1]: (None if pd.isna(value) else round(float(value), 4))
            for column, value in row.items()
        }
        for bucket, row in rows.iterrows()
    }


def _candidate_json(rows: pd.DataFrame, columns: Sequence[str]) -> str:
    return json.dumps(
        {
            str(row["model"]): {c: (None if pd.isna(row[c]) else round(float(row[c]), 6)) for c in columns}
            for _, row in rows.iterrows()
        },
        sort_keys=True,
    )


def select_models(
    df: pd.DataFrame,
    spec: ForecastSpec,
    only: Sequence[str] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """One row per series: the winning model, its backtest accuracy, every candidate's scores (JSON) and
    the calibration factors the forecasts apply.

    ``spec.metric`` is one of :data:`~intentvision_dagster.forecasting.backtest.METRICS` (lower wins; a
    candidate with a NaN score never wins; ties go to the earlier of
    :data:`~intentvision_dagster.forecasting.models.MODEL_NAMES`). ``only`` restricts the candidates to
    those names. Series too short for a backtest keep their tier's model with
    NaN metrics. Returns :func:`selection_columns` sorted by unique_id.
    """
    metric, levels = spec.metric, spec.levels
    if metric not in METRICS:
        raise ValueError(f"selection metric {metric!r} is not one of {list(METRICS)}")
    run = run_backtest(df, spec, only, on_progress)
    calibrated = calibrate(run.cv, levels) if not run.cv.empty else None
    scores = (
        run.scores.merge(calibrated, on=["unique_id", "model"], how="left")
        if calibrated is not None
        else run.scores
    )
    score_columns = [*METRICS, *(f"coverage_{level}" for level in levels)]
    rows = []
    by_series = dict(iter(scores.groupby("unique_id")))
    for uid, tier, windows in run.plan[["unique_id", "tier", "n_windows"]].itertuples(index=False):
        found = by_series.get(uid)
        if found is None or found["mae"].isna().all():
            rows.append({"unique_id": uid, "model": candidates(tier)[0], "n_windows": windows})
            continue
        ranked = found.set_index("model").reindex([m for m in MODEL_NAMES if m in set(found["model"])])
        # A metric undefined for some candidate (MASE of a flat history: 0/0) ranks them all by MAE instead.
        key = metric if np.isfinite(ranked[metric]).all() else "mae"
        best = ranked.reset_index().iloc[int(np.nanargmin(ranked[key].to_numpy()))].to_dict()
        rows.append(best | {"n_windows": windows, "candidate_scores": _candidate_json(found, score_columns)})
    chosen = pd.DataFrame(rows)
    steps = chosen["backtest_steps"] if "backtest_steps" in chosen else pd.Series(np.nan, chosen.index)
    chosen["backtest_hours"] = steps * (step_of(spec.freq) / pd.Timedelta(hours=1))
    result = chosen.reindex(columns=selection_columns(levels))
    result["selection_metric"] = metric
    for column in ("candidate_scores", "step_calibration", "coverage_by_step"):
        result[column] = result[column].fillna("{}")
    result["low_confidence"] = result["model"].isin(MODEL_LOW_CONFIDENCE)
    floats = [
        *score_columns,
        *(c for c in result.columns if c.startswith("calibration_") or "_calibrated" in c),
        "mae_recent",
        "backtest_hours",
    ]
    result = result.astype({c: "float64" for c in floats} | {"n_windows": "int64", "low_confidence": bool})
    for level in levels:
        result[f"calibration_{level}"] = result[f"calibration_{level}"].fillna(1.0)
    return result.sort_values("unique_id", ignore_index=True)
