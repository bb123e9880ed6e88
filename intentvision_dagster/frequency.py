"""Sampling frequency of long frames and the seasonal periods / horizons that follow from it."""

from __future__ import annotations

import math

import pandas as pd
from pandas.tseries.frequencies import to_offset

_COMMON_STEPS = [
    pd.Timedelta(step)
    for step in ("1s", "10s", "15s", "30s", "1min", "5min", "10min", "15min", "30min", "1h", "1D")
]
_SNAP_TOLERANCE = 0.05
"""Scrapes jitter by a few seconds; a median within 5% of a common step is that step."""

_DAY = pd.Timedelta("1D")


def infer_freq(df: pd.DataFrame) -> str:
    """Pandas offset alias ('5min', 'h', 'D', ...) of the median spacing of ``ds`` within each series.

    The median over all within-series steps ignores gaps (a missed scrape doubles one step, not the median)
    and works when series start at different times.
    """
    ordered = df[["unique_id", "ds"]].sort_values(["unique_id", "ds"])
    steps = ordered.groupby("unique_id", observed=True)["ds"].diff().dropna()
    steps = steps[steps > pd.Timedelta(0)]
    if steps.empty:
        raise ValueError(
            "cannot infer the sampling frequency: no series has 2 or more distinct timestamps "
            f"({ordered['unique_id'].nunique()} series, {len(ordered)} rows)"
        )
    median = pd.Timedelta(steps.median()).round("1s")
    if median < pd.Timedelta("1s"):
        raise ValueError(f"cannot infer the sampling frequency: median spacing {median} is below one second")
    for step in _COMMON_STEPS:
        if abs(median - step) <= step * _SNAP_TOLERANCE:
            median = step
            break
    return to_offset(median).freqstr


def sampling_freq(df: pd.DataFrame) -> str | None:
    """:func:`infer_freq`, or None while no series has two distinct timestamps yet (the series is warming up).

    A new metric's first sample cannot tell its step; the pipeline waits for the second instead of failing.
    """
    try:
        return infer_freq(df)
    except ValueError:
        if (df.groupby("unique_id", observed=True)["ds"].nunique() >= 2).any():
            raise  # the steps exist but are unusable (below one second): that is an error, not a warm-up
        return None


def coarser_step(at_least: pd.Timedelta) -> str:
    """The smallest common step (10 s, 1 min, ..., 1 h, 1 d, then whole days) of ``at_least`` or more."""
    for step in _COMMON_STEPS:
        if step >= at_least:
            return to_offset(step).freqstr
    return to_offset(pd.Timedelta(days=math.ceil(at_least / _DAY))).freqstr


def step_of(freq: str) -> pd.Timedelta:
    """The fixed length of a frequency alias ('5min' -> 5 minutes)."""
    try:
        return pd.Timedelta(to_offset(freq))
    except (TypeError, ValueError):
        raise ValueError(f"frequency {freq!r} is not a fixed-length step (e.g. '5min', 'h', 'D')") from None


def season_lengths(freq: str) -> list[int]:
    """Seasonal periods in steps, shortest first: daily and weekly for sub-daily data, weekly for daily data.

    Infra metrics follow the day (traffic) and the week (weekday vs weekend); coarser data gets no season.
    """
    try:
        step = step_of(freq)
    except ValueError:
        return []
    if step == _DAY:
        return [7]
    if step < _DAY and _DAY % step == pd.Timedelta(0):
        per_day = int(_DAY / step)
        return [per_day, 7 * per_day]
    return []


def horizon_steps(horizon: pd.Timedelta, freq: str) -> int:
    """Number of steps of ``freq`` needed to cover ``horizon`` (rounded up, at least 1)."""
    return max(1, math.ceil(pd.Timedelta(horizon) / step_of(freq)))
