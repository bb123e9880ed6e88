"""The part of each series' history that describes it now, so a capacity forecast follows today's regime.

Three patterns make forecasts (and pages) wrong when the models see the whole history as one regime:

- **a level shift** (a cleanup, a resize): one sudden, lasting jump far larger than the series' step-to-step
  noise and than a sixth of its range. The history before it is moved by the jump, so the models see one
  continuous series at the new level, with its seasonality and trend: the old level no longer decides.
- **resets** (a leak cut by restarts, a counter wrapping): two or more such jumps in the same direction.
  The sawtooth *is* the pattern; the history is left as it is, so the models learn its range rather than the
  slope of the current cycle.
- **late onset** (a disk flat for weeks that started filling days ago): a hinge (a line that bends once) fits
  the season-averaged series far better than one line, and the bend lies at least three seasons back. The
  history before the bend is left out, so the trend is the new one.

Everything else passes through unchanged. Pure pandas/numpy; applied to a partition's regular-step frame
before the backtest and the forecast (the pipeline's ``partition_spec`` and ``intentvision forecast`` /
``capacity``), so selection and forecast see the same history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import median_abs_deviation

JUMP_SIGMAS = 8.0
"""A jump is more than this many robust step-to-step deviations ..."""
JUMP_RANGE_SHARE = 1 / 6
"""... and more than this share of the series' range (1st-99th percentile)."""
SETTLE_POINTS = 6
"""Points either side of a jump whose medians must confirm it (a spike comes back, a shift stays)."""
HINGE_MIN_SEASONS = 3
"""Seasons of history after a trend bend before it is trusted (and the history before it left out)."""
HINGE_MAX_RESIDUAL = 0.25
"""A bend counts when the hinge leaves at most this share of a straight line's squared error."""


def persistent_jumps(y: np.ndarray) -> np.ndarray:
    """Positions ``k`` where ``y[k] - y[k-1]`` is a lasting jump (see :data:`JUMP_SIGMAS`)."""
    if len(y) < 2 * SETTLE_POINTS + 2:
        return np.array([], dtype=int)
    steps = np.diff(y)
    deviation = median_abs_deviation(steps, scale="normal")
    spread = np.subtract(*np.percentile(y, [99, 1]))
    limit = max(JUMP_SIGMAS * deviation, JUMP_RANGE_SHARE * spread, 1e-12)
    found = []
    for k in np.flatnonzero(np.abs(steps) > limit) + 1:
        if k < SETTLE_POINTS or k > len(y) - SETTLE_POINTS:
            continue
        moved = np.median(y[k : k + SETTLE_POINTS]) - np.median(y[k - SETTLE_POINTS : k])
        if np.sign(moved) == np.sign(steps[k - 1]) and abs(moved) >= abs(steps[k - 1]) / 2:
            found.append(k)
    return np.array(found, dtype=int)


def _hinge_error(y: np.ndarray, index: np.ndarray, bend: float) -> float:
    """Squared error of the best line through ``y`` that bends once, at ``bend``."""
    design = np.column_stack([np.ones_like(index), index, np.maximum(0.0, index - bend)])
    error = np.linalg.lstsq(design, y, rcond=None)[1]
    return float(error[0]) if error.size else 0.0


def hinge_start(y: np.ndarray, season: int) -> int | None:
    """Where a recent bend in the trend starts (an index of ``y``), or None when one line fits as well.

    Found on season averages (so a daily swing is not a bend), then placed to the step on the series.
    """
    blocks = len(y) // season
    if blocks < 2 * HINGE_MIN_SEASONS:
        return None
    offset = len(y) - blocks * season
    means = y[offset:].reshape(blocks, season).mean(axis=1)
    index = np.arange(blocks, dtype="float64")
    line_error = np.linalg.lstsq(np.column_stack([np.ones(blocks), index]), means, rcond=None)[1]
    if line_error.size == 0 or line_error[0] <= 0:
        return None
    errors = {bend: _hinge_error(means, index, bend) for bend in range(1, blocks - HINGE_MIN_SEASONS + 1)}
    best = min(errors, key=errors.__getitem__)
    if errors[best] > line_error[0] * HINGE_MAX_RESIDUAL:
        return None
    steps = np.arange(len(y), dtype="float64")
    around = range(max(1, offset + (best - 1) * season), min(len(y) - 1, offset + (best + 1) * season + 1))
    return min(around, key=lambda bend: _hinge_error(y, steps, bend))


def current_regime(df: pd.DataFrame, seasons: list[int] | tuple[int, ...]) -> pd.DataFrame:
    """``unique_id, ds, y`` (regular steps, sorted) with each series' history cut or levelled to its
    current regime (module docstring); series without a shift, reset or bend are returned as they are."""
    season = min(seasons) if seasons else 1
    parts = []
    for _, rows in df.groupby("unique_id", sort=True):
        y = rows["y"].to_numpy(dtype="float64")
        jumps = persistent_jumps(y)
        if len(jumps) == 1:
            (k,) = jumps
            y = y.copy()
            y[:k] += y[k] - y[k - 1] - np.median(np.diff(y))
        elif len(jumps) > 1:
            parts.append(rows)
            continue
        start = hinge_start(y, season) or 0
        parts.append(rows.iloc[start:].assign(y=y[start:]))
    return pd.concat(parts, ignore_index=True) if parts else df
