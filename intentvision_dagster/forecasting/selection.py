"""Model selection per series by backtest, and interval calibration from the same backtest.

One rolling-origin ``cross_validation`` per (tier, window plan) scores every candidate of every series. The
winner is the candidate with the lowest selection metric (default MASE). The same backtest calibrates the
intervals (split conformal with normalised scores): for each model, the score of an actual is how far
outside ``yhat`` it fell in units of the interval's half-width on that side, so an interval covers it
exactly when the score is <= 1. Where a model's pooled coverage at a level is off nominal by more than two
binomial standard errors, its intervals at that level are scaled by the conformal quantile of those scores
(factor < 1 narrows, > 1 widens). Scores are normalised by the model's own, horizon-growing half-widths, and
calibrated per horizon bucket (:data:`STEP_BUCKETS`: the first 1/24 of the horizon, up to 1/6, 1/2, the
rest), because a model's own widths are often right one step ahead and too narrow or too wide 72 steps
ahead; a bucket with fewer than :data:`MIN_BUCKET_SCORES` scores takes the model's pooled factor.

``coverage_<level>`` is the raw coverage of the winner in the backtest; ``coverage_<level>_calibrated`` is
measured honestly, each window scaled by the factors fitted on the other windows, and ``coverage_by_step``
(JSON) gives that honest coverage per horizon bucket. ``mae_recent`` is the winner's MAE on the newest
window only (what the series looks like now), ``backtest_hours`` the length of a window.

Above :mod:`~intentvision_dagster.forecasting.backtest` (whose scores it ranks) and below the forecast,
which selects through it unless it is handed a stored selection.
"""

from __future__ import annotations

import json
import math
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


def conformal_quantile(scores: np.ndarray, level: int) -> float:
    """The finite-sample conformal quantile of ``scores`` at ``level`` %; inf when not enough scores."""
    finite = np.sort(scores[~np.isnan(scores)])
    if finite.size == 0:
        return math.inf
    rank = math.ceil((finite.size + 1) * level / 100)
    return float(finite[min(rank, finite.size) - 1]) if rank <= finite.size else math.inf


def normalised_scores(cv: pd.DataFrame, level: int) -> np.ndarray:
    """|y - yhat| in units of the interval's half-width on the side the actual fell (<= 1: covered)."""
    error = (cv["y"] - cv["yhat"]).to_numpy()
    width = np.where(error >= 0, cv[f"hi_{level}"] - cv["yhat"], cv["yhat"] - cv[f"lo_{level}"])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(error) / width
    return np.where(np.abs(error) == 0, 0.0, np.where(width > 0, ratio, np.inf))


def calibration_factor(scores: np.ndarray, level: int) -> float:
    """1.0 if raw coverage is within two binomial standard errors of nominal, else the conformal factor."""
    scores = scores[~np.isnan(scores)]
    if scores.size == 0:
        return 1.0
    nominal = level / 100
    tolerance = 2 * math.sqrt(nominal * (1 - nominal) / scores.size)
    if abs(float(np.mean(scores <= 1)) - nominal) <= tolerance:
        return 1.0
    factor = conformal_quantile(scores, level)
    return factor if math.isfinite(factor) and factor > 0 else 1.0


def with_steps(cv: pd.DataFrame) -> pd.DataFrame:
    """``cv`` plus ``window`` (1 = oldest cutoff), ``step`` (1-based) and its horizon ``bucket``."""
    keys = ["unique_id", "model", "cutoff"]
    frame = cv.sort_values([*keys, "ds"])
    step = frame.groupby(keys).cumcount() + 1
    horizon = frame.groupby(keys)["ds"].transform("size")
    window = frame.groupby(["unique_id", "model"])["cutoff"].rank(method="dense")
    return frame.assign(window=window, step=step, bucket=step_buckets(step.to_numpy(), horizon.to_numpy()))


def _bucket_factors(scores: pd.DataFrame, level: int) -> list[float]:
    """One factor per horizon bucket from ``bucket, score`` rows; thin buckets take the pooled factor."""
    pooled = calibration_factor(scores["score"].to_numpy(), level)
    by_bucket = dict(iter(scores.groupby("bucket")["score"]))
    return [
        calibration_factor(by_bucket[b].to_numpy(), level)
        if b in by_bucket and by_bucket[b].size >= MIN_BUCKET_SCORES
        else pooled
        for b in range(len(STEP_BUCKETS))
    ]


def calibrate(cv: pd.DataFrame, levels: Sequence[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Calibration factors per (model, level, horizon bucket), and honest calibrated coverage per series.

    Returns (``model, calibration_<level>...`` (pooled over buckets), ``step_calibration`` (JSON: level ->
    one factor per bucket)), and (``unique_id, model, coverage_<level>_calibrated..., coverage_by_step``).
    The calibrated coverage of a window uses the factors fitted on the other windows; NaN with one window.
    """
    frame = with_steps(cv)
    models = sorted(cv["model"].unique())
    factors = pd.DataFrame({"model": pd.Series(models, dtype=object)})
    per_bucket: dict[str, dict[str, list[float]]] = {name: {} for name in models}
    for level in levels:
        frame["score"] = normalised_scores(frame, level)
        by_model = dict(iter(frame.groupby("model")))
        factors[f"calibration_{level}"] = [
            calibration_factor(by_model[name]["score"].to_numpy(), level) for name in models
        ]
        for name in models:
            per_bucket[name][str(level)] = _bucket_factors(by_model[name], level)
        covered = pd.Series(np.nan, index=frame.index, dtype="float64")
        for (name, window), held_out in frame.groupby(["model", "window"]):
            rest = by_model[name]
            others = rest[rest["window"] != window]
            if len(others):
                bucket_factor = np.array(_bucket_factors(others, level))
                limit = bucket_factor[held_out["bucket"].to_numpy()]
                covered[held_out.index] = (held_out["score"].to_numpy() <= limit).astype("float64")
        frame[f"coverage_{level}_calibrated"] = covered
    factors["step_calibration"] = [json.dumps(per_bucket[name], sort_keys=True) for name in models]
    columns = [f"coverage_{level}_calibrated" for level in levels]
    coverage = frame.groupby(["unique_id", "model"])[columns].mean().reset_index()
    horizon = frame.groupby(["unique_id", "model"])["step"].max()
    by_step = frame.groupby(["unique_id", "model", "bucket"])[columns].mean()
    coverage["coverage_by_step"] = [
        json.dumps(_by_step_json(by_step.xs((uid, name), level=["unique_id", "model"]), horizon[(uid, name)]))
        for uid, name in coverage[["unique_id", "model"]].itertuples(index=False)
    ]
    recent = frame[frame["window"] == frame.groupby(["unique_id", "model"])["window"].transform("max")]
    error = (recent["y"] - recent["yhat"]).abs()
    coverage = coverage.merge(
        error.groupby([recent["unique_id"], recent["model"]]).mean().rename("mae_recent").reset_index(),
        on=["unique_id", "model"],
        how="left",
    )
    return factors, coverage.merge(horizon.rename("backtest_steps").reset_index(), on=["unique_id", "model"])


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
    factors, calibrated = calibrate(run.cv, levels)
    scores = run.scores.merge(factors, on="model", how="left").merge(
        calibrated, on=["unique_id", "model"], how="left"
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
