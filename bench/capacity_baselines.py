"""The capacity benchmark's baselines: Prometheus ``predict_linear`` and Prophet at its upper 95 % band.

Both return the decision frame ``bench/capacity_scoring.py`` scores: ``unique_id, pages, crossing_ds``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from bench.capacity_scenarios import HORIZON


def linear_regression(seconds: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Least-squares slope (per second) and intercept at ``seconds == 0``, as PromQL's ``linearRegression``:
    a constant series has slope 0 and its value as intercept."""
    if np.all(values == values[0]):
        return 0.0, float(values[0])
    n = len(values)
    sum_x, sum_y = seconds.sum(), values.sum()
    cov_xy = (seconds * values).sum() - sum_x * sum_y / n
    var_x = (seconds * seconds).sum() - sum_x * sum_x / n
    slope = cov_xy / var_x
    return float(slope), float(sum_y / n - slope * sum_x / n)


def predict_linear(
    ds: pd.DatetimeIndex, values: np.ndarray, now: pd.Timestamp, window: pd.Timedelta, ahead: pd.Timedelta
) -> tuple[float, float, float]:
    """``predict_linear(v[window], ahead)`` evaluated at ``now``: (prediction, slope/s, intercept at now).

    As Prometheus (``promql/functions.go``): the samples of the range selector, which since Prometheus 3.0
    is left-open, ``(now - window, now]``; x is seconds from the evaluation time (not from the last sample),
    and the prediction is ``slope * ahead + intercept``. NaN when fewer than two samples are in the window.
    """
    inside = (ds > now - window) & (ds <= now)
    if inside.sum() < 2:
        return np.nan, np.nan, np.nan
    seconds = ((ds[inside] - now) / pd.Timedelta(seconds=1)).to_numpy(dtype=float)
    slope, intercept = linear_regression(seconds, values[inside])
    return slope * ahead.total_seconds() + intercept, slope, intercept


def past(value: float, threshold: float, direction: str) -> bool:
    return bool(value >= threshold) if direction == "above" else bool(value <= threshold)


def predict_linear_decisions(
    history: pd.DataFrame, thresholds: pd.DataFrame, window_hours: int
) -> pd.DataFrame:
    """Page when ``predict_linear(y[window], 72h)`` is at or past the threshold (the usual Prometheus rule,
    e.g. ``predict_linear(disk_used_percent[6h], 72 * 3600) >= 90``), evaluated at each history's last hour.

    The predicted crossing of a page is where the fitted line meets the threshold (the evaluation time when
    the line is already past it)."""
    window, ahead = pd.Timedelta(hours=window_hours), pd.Timedelta(hours=HORIZON)
    limits = thresholds.set_index("unique_id")
    rows = []
    for uid, series in history.groupby("unique_id", sort=False):
        ds = pd.DatetimeIndex(series["ds"])
        now = ds[-1]
        threshold, direction = limits.at[uid, "threshold"], limits.at[uid, "direction"]
        value, slope, intercept = predict_linear(ds, series["y"].to_numpy(dtype=float), now, window, ahead)
        pages, crossing = past(value, threshold, direction), pd.NaT
        if pages:  # the line is past the threshold at now + 72 h, so it meets it before
            seconds = 0.0 if past(intercept, threshold, direction) else (threshold - intercept) / slope
            crossing = now + pd.Timedelta(seconds=seconds)
        rows.append({"unique_id": uid, "pages": pages, "crossing_ds": crossing})
    return pd.DataFrame(rows)


ProphetTask = tuple[str, np.ndarray, np.ndarray, float, str]


def prophet_decision(task: ProphetTask) -> dict:
    """Prophet with defaults (95 % interval) on one history; pages when the band edge on the threshold's
    side (``hi_95`` for above, ``lo_95`` for below) reaches it within the horizon; the crossing is that
    edge's first hour there. The predictive samples are seeded, so a rerun gives the same band."""
    from prophet import Prophet

    uid, ds, values, threshold, direction = task
    model = Prophet(interval_width=0.95).fit(pd.DataFrame({"ds": ds, "y": values}))
    future = model.make_future_dataframe(periods=HORIZON, freq="h", include_history=False)
    np.random.seed(0)
    forecast = model.predict(future)
    edge = forecast["yhat_upper" if direction == "above" else "yhat_lower"].to_numpy()
    hits = np.flatnonzero(edge >= threshold if direction == "above" else edge <= threshold)
    crossing = forecast["ds"].iloc[hits[0]] if hits.size else pd.NaT
    return {"unique_id": uid, "pages": bool(hits.size), "crossing_ds": crossing}


def quiet_worker() -> None:
    warnings.filterwarnings("ignore")
    for name in ("cmdstanpy", "prophet"):
        logging.getLogger(name).setLevel(logging.ERROR)


def prophet_tasks(history: pd.DataFrame, thresholds: pd.DataFrame) -> Iterator[ProphetTask]:
    limits = thresholds.set_index("unique_id")
    for uid, series in history.groupby("unique_id", sort=False):
        yield (
            uid,
            series["ds"].to_numpy(),
            series["y"].to_numpy(dtype=float),
            float(limits.at[uid, "threshold"]),
            str(limits.at[uid, "direction"]),
        )


def prophet_decisions(
    history: pd.DataFrame, thresholds: pd.DataFrame, jobs: int, progress=None
) -> pd.DataFrame:
    """Prophet on every history, ``jobs`` worker processes; ``progress(done, total)`` after each one."""
    tasks = list(prophet_tasks(history, thresholds))
    rows = []
    with ProcessPoolExecutor(max_workers=jobs, initializer=quiet_worker) as pool:
        for done, row in enumerate(pool.map(prophet_decision, tasks, chunksize=4), start=1):
            rows.append(row)
            if progress:
                progress(done, len(tasks))
    return pd.DataFrame(rows)
