"""Causal robust-seasonal anomaly detector (``seasonal_mad``) over every series of a long frame at once.

Why this method: SRE metrics repeat daily and weekly, drift, and have recurring jumps (pod restarts), so a
point is judged against what the same phase of the season looked like recently, not against a global mean.

For each point, using only points strictly before it:

* **usual range**: the values at the same phase in each of the previous ``seasons`` seasons, both as they were
  and shifted to the current level (each past value keeps its offset from the median of the season before it,
  added to the median of the season before *this* point). The raw values tolerate recurring jumps such as
  memory restarts; the level-shifted values tolerate trends such as a filling disk. The reference window
  covers a week when it can, so weekends are part of the usual range.
* **expected**: the median of those references (the median of the last season while there are none; NaN for
  the first point of a series, which has no past).
* **scale**: the median absolute deviation (MAD) of past points from their expected value over the reference
  window, floored at 2 % of the expected level so that flat series do not divide by ~0.
* **z**: how many MADs the point lies outside the usual range (0 inside it), signed.

Cold start: a series gets no flags until it has ``seasons`` full seasons of history (7 days for hourly data
with daily seasonality; 4 seasons otherwise); before that severity is ``"none"`` and ``reason`` is empty.

An anomaly is an *event*: flagged points of a series that follow each other with at most one unflagged point
between them share ``event_id = f"{unique_id}@{onset ds isoformat}"``. The unflagged point in such a gap is
not part of the event, which keeps event ids causal: a later point never changes an earlier row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DETECTOR = "seasonal_mad"
SEVERITIES = ("none", "info", "warning", "critical")
SENSITIVITY_THRESHOLDS: dict[str, dict[str, float]] = {
    # |z| (MADs outside the usual range) at which a point becomes info / warning / critical.
    "low": {"info": 4.0, "warning": 7.0, "critical": 12.0},
    "medium": {"info": 3.0, "warning": 5.0, "critical": 9.0},
    "high": {"info": 2.0, "warning": 3.5, "critical": 6.0},
}
RELATIVE_FLOOR = 0.02
"""Smallest scale, as a share of the expected level: a 2 % wobble on a flat series is at most 1 MAD."""
ABSOLUTE_FLOOR = 1e-9
SCORE_HALF_Z = 5.0
"""``anomaly_score = |z| / (|z| + SCORE_HALF_Z)``: 0 inside the usual range, 0.5 at 5 MADs, then towards 1."""
MIN_SCALE_POINTS = 48
"""The MAD window spans at least this many points, so short seasons still get a stable scale."""
REQUIRED_COLUMNS = ("unique_id", "ds", "y")
OUTPUT_COLUMNS = [
    "unique_id",
    "ds",
    "y",
    "expected",
    "anomaly_score",
    "is_anomaly",
    "severity",
    "detector",
    "reason",
    "event_id",
]


def default_seasons(season_length: int, step: pd.Timedelta) -> int:
    """Seasons of references: enough to cover a week (so weekends are usual), at least 4, at most 7."""
    return int(np.clip(np.ceil(pd.Timedelta(days=7) / (max(season_length, 1) * step)), 4, 7))


def _sampling_step(frame: pd.DataFrame) -> pd.Timedelta:
    step = frame.groupby("unique_id", sort=False)["ds"].diff().median()
    return step if pd.notna(step) and step > pd.Timedelta(0) else pd.Timedelta(hours=1)


def _past_median(
    frame: pd.DataFrame, values: np.ndarray, window: pd.Timedelta, min_periods: int
) -> np.ndarray:
    """Per series, the median of ``values`` over ``window`` strictly before each point (frame sorted)."""
    rolled = (
        frame[["unique_id", "ds"]]
        .assign(value=values)
        .groupby("unique_id", sort=False)
        .rolling(window, on="ds", closed="left", min_periods=min_periods)["value"]
        .median()
    )
    return rolled.to_numpy()


def _lagged(series: pd.Series, frame: pd.DataFrame, lag: pd.Timedelta) -> np.ndarray:
    """``series`` (indexed by unique_id, ds) at ``lag`` before each row of ``frame``; NaN where absent."""
    return series.reindex(pd.MultiIndex.from_arrays([frame["unique_id"], frame["ds"] - lag])).to_numpy()


def _phase_text(ds: pd.Timestamp, season: pd.Timedelta, step: pd.Timedelta, season_length: int) -> str:
    if season == pd.Timedelta(days=1):
        return f"at {ds:%H:%M}"
    if season == pd.Timedelta(days=7):
        return f"on {ds:%A}s" if step >= pd.Timedelta(days=1) else f"on {ds:%a %H:%M}"
    return f"at this point of its {season_length}-point season"


def _event_ids(scored: pd.DataFrame, flagged: np.ndarray, step: pd.Timedelta) -> pd.Series:
    """Onset-based ids for runs of flagged points; a run survives one unflagged point (2 steps apart)."""
    points = scored.loc[flagged, ["unique_id", "ds"]]
    previous = points.groupby("unique_id", sort=False)["ds"].shift()
    onset = points["ds"].where(previous.isna() | (points["ds"] - previous > 2 * step)).ffill()
    ids = points["unique_id"] + "@" + onset.dt.strftime("%Y-%m-%dT%H:%M:%S")
    # A string dtype (not object of None) so the warehouse column is VARCHAR even when nothing is flagged.
    return ids.reindex(scored.index).astype("string")


def detect(
    df: pd.DataFrame, season_length: int, sensitivity: str = "medium", seasons: int | None = None
) -> pd.DataFrame:
    """Score every point of every series causally; one output row per input row, sorted by unique_id, ds.

    ``season_length`` is in points (24 for hourly data with a daily cycle, 7 for daily data with a weekly one;
    1 for none). ``sensitivity`` picks the |z| thresholds in ``SENSITIVITY_THRESHOLDS``. ``seasons`` is the
    number of past seasons in the usual range (default: :func:`default_seasons`). Columns other than
    ``unique_id, ds, y`` (tenant, metric, labels, ...) pass through untouched after ``OUTPUT_COLUMNS``.
    """
    if sensitivity not in SENSITIVITY_THRESHOLDS:
        raise ValueError(f"sensitivity {sensitivity!r} is not one of {sorted(SENSITIVITY_THRESHOLDS)}")
    missing = [column for column in REQUIRED_COLUMNS if column not in df.columns]
    if missing:
        raise ValueError(f"detect needs columns {list(REQUIRED_COLUMNS)}; missing {missing}")
    frame = df.sort_values(["unique_id", "ds"], ignore_index=True)
    duplicated = frame.duplicated(["unique_id", "ds"])
    if duplicated.any():
        first = frame.loc[duplicated].iloc[0]
        raise ValueError(
            f"detect needs one point per (unique_id, ds); {first['unique_id']} repeats {first['ds']}"
        )

    step = _sampling_step(frame)
    season = max(season_length, 1) * step
    seasons = seasons or default_seasons(season_length, step)
    window = max(seasons * season, MIN_SCALE_POINTS * step)
    y = frame["y"].to_numpy(dtype=float)
    level = _past_median(frame, y, season, min_periods=1)

    key = pd.MultiIndex.from_arrays([frame["unique_id"], frame["ds"]])
    raw, shifted = pd.Series(y, index=key), pd.Series(y - level, index=key)
    lags = [k * season for k in range(1, seasons + 1)]
    raw_refs = np.column_stack([_lagged(raw, frame, lag) for lag in lags])
    shifted_refs = np.column_stack([_lagged(shifted, frame, lag) for lag in lags]) + level[:, None]
    refs = pd.DataFrame(np.hstack([raw_refs, shifted_refs]))
    expected = refs.median(axis=1).fillna(pd.Series(level)).to_numpy()
    low, high = refs.min(axis=1).to_numpy(), refs.max(axis=1).to_numpy()

    mad = _past_median(frame, np.abs(y - expected), window, min_periods=max(season_length, 2))
    scale = np.fmax(np.fmax(mad, RELATIVE_FLOOR * np.abs(expected)), ABSOLUTE_FLOOR)
    history = frame["ds"] - frame.groupby("unique_id", sort=False)["ds"].transform("min")
    warm = (history >= seasons * season).to_numpy() & (np.isfinite(raw_refs).sum(axis=1) >= 2)
    z = np.where(warm, np.nan_to_num((y - np.clip(y, low, high)) / scale), 0.0)

    thresholds = SENSITIVITY_THRESHOLDS[sensitivity]
    size = np.abs(z)
    severity = np.select(
        [size >= thresholds["critical"], size >= thresholds["warning"], size >= thresholds["info"]],
        ["critical", "warning", "info"],
        default="none",
    )
    flagged = severity != "none"
    scored = frame.assign(
        expected=expected,
        anomaly_score=size / (size + SCORE_HALF_Z),
        is_anomaly=flagged,
        severity=severity,
        detector=np.where(flagged, DETECTOR, ""),
    )
    scored["reason"] = ""
    scored.loc[flagged, "reason"] = [
        f"{y[i]:.4g} is {size[i]:.1f} MADs {'above' if z[i] > 0 else 'below'} the usual range "
        f"{low[i]:.4g}–{high[i]:.4g} {_phase_text(scored['ds'].iat[i], season, step, season_length)} "
        f"over the last {seasons} seasons (expected {expected[i]:.4g}, MAD {scale[i]:.3g})"
        for i in np.flatnonzero(flagged)
    ]
    scored["event_id"] = _event_ids(scored, flagged, step)
    passthrough = [column for column in df.columns if column not in OUTPUT_COLUMNS]
    return scored[OUTPUT_COLUMNS + passthrough]


def without_anomalies(scored: pd.DataFrame, min_severity: str = "warning") -> pd.DataFrame:
    """``scored`` with every point at or above ``min_severity`` replaced by its ``expected`` value.

    Forecast models are fitted on this, so one incident does not teach them a spike that recurs every season.
    """
    rank = scored["severity"].map(SEVERITIES.index)
    replace = (rank >= SEVERITIES.index(min_severity)) & scored["expected"].notna()
    return scored.assign(y=scored["y"].where(~replace, scored["expected"]))
