"""Causal anomaly detectors over every series of a long frame at once, combined into one score per point.

Why several detectors: SRE incidents look different. A spike breaks the usual daily/weekly pattern, a bad
deploy moves the level and stays there, a stuck exporter repeats one value, a dead scraper sends nothing.
Each detector below is causal (a point is judged only on points strictly before it, plus itself; appending
future points never changes a past row) and vectorised over all series (grouped rolling windows, no per-point
refits).

One module on purpose (over 400 lines): the seven detectors share the ``_Series`` view and seasonal profile,
and their strengths are combined on one scale here; split, one algorithm would be read across seven files.

* ``seasonal_mad`` — the **usual range** of a point is the values at the same phase in each of the previous
  ``seasons`` seasons, both as they were and shifted to the current level (each past value keeps its offset
  from the median of the season before it, added to the median of the season before *this* point), widened
  by the neighbouring phases within ``PHASE_TOLERANCE`` (1 h) for sub-daily data, so a DST change (a 1 h
  phase shift of business-hours patterns in UTC data) stays inside it. **expected** is the median of those
  references; **scale** the MAD of past points from their expected value over the reference window (at least
  ``MIN_SCALE_POINTS``), floored at 2 % of the expected level. ``z`` = MADs outside the usual range.
* ``forecast_residual`` — a one-step-ahead forecast: the seasonal expected value plus an EWMA of the past
  deviations from it (each clipped to 3 MADs so one spike does not drag the forecast). Its band is the usual
  range widened towards that offset (never narrowed, so restarts the usual range tolerates stay tolerated);
  the strength is the exceedance over the band in MADs of past one-step errors, divided by
  ``RESIDUAL_FACTOR``. One-step errors are small where days differ in level but each day is smooth, so it
  catches spikes there that the seasonal MAD (inflated by the day-to-day differences) lets through.
* ``sustained_shift`` and ``variance_change`` — what no single point shows: the median and the spread
  (IQR / 1.349) of the last ``WINDOW_POINTS`` residuals in MADs, each as a z-score against its own values
  over the likelihood's history (deviation floored at ``SURPRISE_FLOOR``), so the series is its own
  reference. Residuals are taken from the same time a week ago moved to today's level (the median, also
  from the expected value: the nearer counts), so weekends and steady growth (a disk filling at one pace)
  are expected while a change of slope, a shift inside the usual range or a flapping dependency is not.
  Points the point detectors flag are left out (a spike must not echo for a window), and nothing is judged
  before a week of history.
* ``level_shift`` — the median of the last ``SHIFT_POINTS`` points against the median of the
  ``max(season_length, MIN_SCALE_POINTS)`` points before them, in robust spreads (IQR / 1.349) of those
  past points, divided by ``SHIFT_FACTOR``. It fires once, at the first point where the shift is big enough,
  not at every point after.
* ``flatline`` — a series that was moving (at least half of its previous points changed value) repeats one
  value exactly for ``stale_points`` points, unless it had that value one season ago (quiet nights at 0).
  Strength ``FLAT_STRENGTH``: a warning at ``medium``.
* ``no_data`` — the first point after a gap of more than ``stale_points`` sampling steps. Strength
  ``GAP_STRENGTH``: info at ``medium``.

The strength of every detector is in the same unit (MADs-equivalent). ``detector`` names the strongest one
and ``reason`` is its explanation; where a level shift, flatline or gap fires, that detector names the point
even if another one is stronger, because its reason says what happened.

Severity (``_grade``) is judged against the series itself (``likelihood.py``): each point detector's
``SENSITIVITY_THRESHOLDS`` bar is stretched by that detector's own noise on the series, and the HTM-style
likelihood says how improbable the recent scores are for it. A point reaches a level when it is past the
level's bar *and* the likelihood has ``LIKELIHOOD_NINES`` nines, or (``warning`` at most) when it is
``EXTREME`` times past the critical bar, or a run of points at the ``info`` bar is ``SUSTAINED_NINES`` more
unlikely; a level shift counts when the likelihood has ``SHIFT_NINES``, a window detector from the
``warning`` bar when it has the ``info`` nines and its window moved at least the ``info`` bar in MADs;
flatlines and gaps count alone.
``critical`` also needs ``CRITICAL_AGREEMENT`` detectors past the critical bar, and its reason names them.
``anomaly_score`` is ``s / (s + SCORE_HALF_Z)`` of the graded strength.

How the defaults were chosen: the bars (3 / 5 / 9 MADs at ``medium``) keep the demo series quiet while the
injected 5x request spike is critical. The likelihood and event constants were tuned with ``make
bench-nab`` on its *tune* split only (half of the NAB dev files and half of the synthetic ops series), scored
as the product pages (the row where an event first reaches ``warning``); the other half is the held-out
report (docs/benchmarks.md).

Cold start: no flags until a series has ``WARM_SEASONS`` full seasons of history (two days for hourly data
with a daily season), and the likelihood needs ``ESTIMATION_POINTS`` averages before it backs a point.
Meanwhile severity is ``"none"`` and a point that would have reached ``info`` says so in ``reason``
(``"warming up: 30 of 48 points"``); other points have an empty reason.

An anomaly is an *event*: flagged points of a series less than ``SUPPRESSION`` apart share
``event_id = f"{unique_id}@{onset ds isoformat}"``, so the flags that follow an incident join it instead of
paging again. Unflagged points inside it are not part of the event, which keeps event ids causal: a later
point never changes an earlier row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from intentvision_dagster.anomalies.likelihood import (
    ESTIMATION_POINTS,
    HISTORY_POINTS,
    anomaly_likelihood,
    likelihood_nines,
    noise_level,
)

DETECTOR = "seasonal_mad"
DETECTORS = (
    DETECTOR,
    "forecast_residual",
    "sustained_shift",
    "variance_change",
    "level_shift",
    "flatline",
    "no_data",
)
POINT_DETECTORS = 2
"""The first ``DETECTORS`` score single points: bars stretched by their noise, backed by the likelihood."""
WINDOW_DETECTORS = 4
"""``DETECTORS[POINT_DETECTORS:WINDOW_DETECTORS]`` score a window against the series' own history."""
SENSITIVITY_THRESHOLDS: dict[str, dict[str, float]] = {
    # Strength (MADs outside the usual range, or equivalent) at which a point is info / warning / critical.
    "low": {"info": 4.0, "warning": 7.0, "critical": 12.0},
    "medium": {"info": 3.0, "warning": 5.0, "critical": 9.0},
    "high": {"info": 2.0, "warning": 3.5, "critical": 6.0},
}
RELATIVE_FLOOR = 0.02
"""Smallest scale, as a share of the expected level: a 2 % wobble on a flat series is at most 1 MAD."""
ABSOLUTE_FLOOR = 1e-9
SCORE_HALF_Z = 5.0
"""``anomaly_score = s / (s + SCORE_HALF_Z)``: 0 inside the usual range, 0.5 at 5 MADs, then towards 1."""
MIN_SCALE_POINTS = 48
"""The MAD window spans at least this many points, so short seasons still get a stable scale."""
PHASE_TOLERANCE = pd.Timedelta(hours=1)
"""Sub-daily usual ranges include the phases this close, so a DST (1 h) shift is not an anomaly."""
RESIDUAL_ALPHA = 0.3
RESIDUAL_CLIP = 3.0
RESIDUAL_FACTOR = 1.5
SHIFT_POINTS = 6
SHIFT_FACTOR = 1.5
WINDOW_POINTS = 24
"""The recent window of ``sustained_shift`` and ``variance_change``: 2 h of 5-minute data, a day of hourly."""
SURPRISE_FLOOR = 0.5
"""Smallest spread (MADs) of a window statistic's history: a perfectly smooth past is no hair trigger."""
FLAT_STRENGTH = 6.0
GAP_STRENGTH = 3.5
WARM_SEASONS = 2
"""Seasons of history before the first flag: two references per phase (the likelihood learns meanwhile)."""
LIKELIHOOD_NINES = {"info": 3.0, "warning": 4.0, "critical": 4.0}
"""A point beyond its bar also needs its recent scores this unusual for the series (4 = likelihood 0.9999)."""
SUSTAINED_NINES = 3.0
"""Extra nines that let a point at the ``info`` bar reach ``warning`` (a run of modest points)."""
SHIFT_NINES = 1.0
"""Likelihood nines a level shift needs to be flagged (0.9: its scores are above the series' usual)."""
EXTREME = 4.0
"""Multiple of the critical bar at which a point reaches ``warning`` without the likelihood's backing."""
CRITICAL_AGREEMENT = 2
"""Detectors (seasonal_mad, forecast_residual, level_shift) past the critical bar needed for ``critical``."""
SUPPRESSION = pd.Timedelta(hours=6)
"""Flags closer than this to the previous flag of the series join its event instead of opening a new one."""
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


def warm_seasons(seasons: int) -> int:
    """Seasons of history before a series is judged: ``WARM_SEASONS``, or all of them if there are fewer."""
    return min(seasons, WARM_SEASONS)


def stale_points(season_length: int) -> int:
    """Points of exact repetition (flatline) or missing steps (gap) worth a flag: 6, or 2 h of 5-min data."""
    return max(6, season_length // 12)


@dataclass(frozen=True)
class _Signal:
    """One detector's output: a strength per point (MADs-equivalent, >= 0) and how to explain point ``i``."""

    name: str
    strength: np.ndarray
    describe: Callable[[int], str]


@dataclass(frozen=True)
class _Series:
    """The sorted frame and the quantities every detector shares."""

    frame: pd.DataFrame
    y: np.ndarray
    step: pd.Timedelta
    season_length: int
    season: pd.Timedelta
    seasons: int

    def grouped(self, values: np.ndarray) -> pd.core.groupby.SeriesGroupBy:
        return pd.Series(values).groupby(self.frame["unique_id"].to_numpy(), sort=False)

    def shifted(self, values: np.ndarray, periods: int = 1) -> np.ndarray:
        return self.grouped(values).shift(periods).to_numpy(dtype=float)

    def rolling(
        self, values: np.ndarray, points: int, how: str, min_periods: int, q: float = 0.5
    ) -> np.ndarray:
        """Per series, ``how`` (median, quantile, mean, max) of the last ``points`` points, this one too."""
        rolled = self.grouped(values).rolling(points, min_periods=min_periods)
        result = rolled.quantile(q) if how == "quantile" else getattr(rolled, how)()
        return result.to_numpy()


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


def _neighbourhood(frame: pd.DataFrame, values: np.ndarray, half_width: pd.Timedelta, how: str) -> np.ndarray:
    """Per series, min or max of ``values`` within ``half_width`` either side of each point (not causal alone:
    only ever read a season back, where the window ends before the point being judged)."""
    rolled = (
        frame[["unique_id", "ds"]]
        .assign(value=values)
        .groupby("unique_id", sort=False)
        .rolling(2 * half_width + pd.Timedelta(seconds=1), on="ds", center=True, min_periods=1)["value"]
    )
    return getattr(rolled, how)().to_numpy()


def _lag_rows(frame: pd.DataFrame, lags: list[pd.Timedelta]) -> np.ndarray:
    """One column per lag: the row of the same series exactly that long before each row, -1 where none.

    Looked up once and reused for every quantity with references (the MultiIndex lookup is the slow part).
    """
    rows = pd.Series(
        np.arange(len(frame)), index=pd.MultiIndex.from_arrays([frame["unique_id"], frame["ds"]])
    )
    lagged = [
        rows.reindex(pd.MultiIndex.from_arrays([frame["unique_id"], frame["ds"] - lag])).to_numpy()
        for lag in lags
    ]
    return np.nan_to_num(np.column_stack(lagged), nan=-1).astype(np.int64)


def _refs(values: np.ndarray, lag_rows: np.ndarray) -> np.ndarray:
    """``values`` (one per row of the frame) at each row's lagged rows; NaN where there is none."""
    return np.where(lag_rows >= 0, values[lag_rows], np.nan) if len(values) else lag_rows.astype(float)


def _row_median(values: np.ndarray) -> np.ndarray:
    """Median of each row, ignoring NaN (NaN where a row has none): one sort instead of pandas' masked
    median, which was a tenth of ``detect``."""
    ordered = np.sort(values, axis=1)  # NaN sorts last
    count = np.isfinite(values).sum(axis=1)
    lower = np.take_along_axis(ordered, np.fmax((count - 1) // 2, 0)[:, None], axis=1)[:, 0]
    upper = np.take_along_axis(ordered, (count // 2).clip(max=values.shape[1] - 1)[:, None], axis=1)[:, 0]
    return np.where(count > 0, (lower + upper) / 2, np.nan)


def _phase_text(ds: pd.Timestamp, season: pd.Timedelta, step: pd.Timedelta, season_length: int) -> str:
    if season == pd.Timedelta(days=1):
        return f"at {ds:%H:%M}"
    if season == pd.Timedelta(days=7):
        return f"on {ds:%A}s" if step >= pd.Timedelta(days=1) else f"on {ds:%a %H:%M}"
    return f"at this point of its {season_length}-point season"


def duration_text(span: pd.Timedelta) -> str:
    """``2 h 35 min``, ``3 d 4 h``, ``45 s``: the two largest units, for reasons people read."""
    seconds = int(span.total_seconds())
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"), (seconds % 3600 // 60, "min")]
    shown = [f"{value} {unit}" for value, unit in parts if value]
    return " ".join(shown[:2]) if shown else f"{seconds} s"


def _floored(scale: np.ndarray, level: np.ndarray) -> np.ndarray:
    return np.fmax(np.fmax(scale, RELATIVE_FLOOR * np.abs(level)), ABSOLUTE_FLOOR)


def _event_ids(scored: pd.DataFrame, flagged: np.ndarray, gap: pd.Timedelta) -> pd.Series:
    """Onset-based ids for runs of flagged points; a run goes on while flagged points are at most ``gap``
    apart, so the flags that follow an event join it instead of opening new ones (suppression)."""
    points = scored.loc[flagged, ["unique_id", "ds"]]
    previous = points.groupby("unique_id", sort=False)["ds"].shift()
    onset = points["ds"].where(previous.isna() | (points["ds"] - previous > gap)).ffill()
    ids = points["unique_id"] + "@" + onset.dt.strftime("%Y-%m-%dT%H:%M:%S")
    # A string dtype (not object of None) so the warehouse column is VARCHAR even when nothing is flagged.
    return ids.reindex(scored.index).astype("string")


@dataclass(frozen=True)
class _Seasonal:
    """The seasonal_mad quantities the other detectors reuse."""

    signal: _Signal
    expected: np.ndarray
    low: np.ndarray
    high: np.ndarray
    scale: np.ndarray
    warm: np.ndarray
    last_season: np.ndarray
    profile: np.ndarray
    last_week: np.ndarray


def _seasonal_mad(s: _Series) -> _Seasonal:
    frame, y, season = s.frame, s.y, s.season
    window = max(s.seasons * season, MIN_SCALE_POINTS * s.step)
    level = _past_median(frame, y, season, min_periods=1)
    lag_rows = _lag_rows(frame, [k * season for k in range(1, s.seasons + 1)])
    raw_refs = _refs(y, lag_rows)
    shifted_refs = _refs(y - level, lag_rows) + level[:, None]
    refs = np.hstack([raw_refs, shifted_refs])
    expected = np.where(np.isfinite(median := _row_median(refs)), median, level)
    low, high = np.fmin.reduce(refs, axis=1), np.fmax.reduce(refs, axis=1)  # NaN only without references
    if s.step <= PHASE_TOLERANCE < season - s.step:
        near_low = _refs(_neighbourhood(frame, y, PHASE_TOLERANCE, "min"), lag_rows)
        near_high = _refs(_neighbourhood(frame, y, PHASE_TOLERANCE, "max"), lag_rows)
        low = np.fmin(low, np.fmin.reduce(near_low, axis=1))
        high = np.fmax(high, np.fmax.reduce(near_high, axis=1))
    mad = _past_median(frame, np.abs(y - expected), window, min_periods=max(s.season_length, 2))
    scale = _floored(mad, expected)
    history = frame["ds"] - frame.groupby("unique_id", sort=False)["ds"].transform("min")
    warm = (history >= warm_seasons(s.seasons) * season).to_numpy() & (np.isfinite(raw_refs).sum(axis=1) >= 2)
    z = np.nan_to_num((y - np.clip(y, low, high)) / scale)

    def describe(i: int) -> str:
        return (
            f"{y[i]:.4g} is {abs(z[i]):.1f} MADs {'above' if z[i] > 0 else 'below'} the usual range "
            f"{low[i]:.4g}–{high[i]:.4g} {_phase_text(frame['ds'].iat[i], season, s.step, s.season_length)} "
            f"over the last {s.seasons} seasons (expected {expected[i]:.4g}, MAD {scale[i]:.3g})"
        )

    # The same time a week ago (0 without seasonality): what level shifts are judged against, so that daily
    # batch jobs and weekends are not shifts. Until a week of history exists, the latest season there is.
    week = min(round(pd.Timedelta(days=7) / season), s.seasons)
    latest = pd.DataFrame(raw_refs[:, : max(week, 1)][:, ::-1]).bfill(axis=1).iloc[:, 0].to_numpy()
    profile = latest if s.season_length > 1 else np.zeros(len(y))
    # The same time a week ago moved to today's level: what the series would be now if only its level had
    # changed, so weekends and steady growth are expected and a change of course is not.
    # Not before a week of history: the first weekend of a weekday pattern would look like a change of course.
    last_week = shifted_refs[:, max(week, 1) - 1] if s.season_length > 1 else expected
    signal = _Signal(DETECTOR, np.abs(z), describe)
    return _Seasonal(signal, expected, low, high, scale, warm, raw_refs[:, 0], profile, last_week)


def _forecast_residual(s: _Series, seasonal: _Seasonal) -> _Signal:
    y, expected = s.y, seasonal.expected
    limit = RESIDUAL_CLIP * seasonal.scale
    deviation = np.clip(y - expected, -limit, limit)
    ewma = s.grouped(deviation).ewm(alpha=RESIDUAL_ALPHA).mean().to_numpy()
    offset = np.nan_to_num(s.shifted(ewma))
    forecast = expected + offset
    # The offset widens the usual range towards where the series is today; it never narrows it, so recurring
    # jumps (restarts) that the usual range tolerates stay tolerated.
    low, high = seasonal.low + np.fmin(offset, 0.0), seasonal.high + np.fmax(offset, 0.0)
    exceed = y - np.clip(y, low, high)
    window = max(s.seasons * s.season, MIN_SCALE_POINTS * s.step)
    scale = _floored(_past_median(s.frame, np.abs(y - forecast), window, min_periods=2), forecast)
    z = np.nan_to_num(exceed / scale)

    def describe(i: int) -> str:
        return (
            f"{y[i]:.4g} is {abs(z[i]):.1f} MADs {'above' if z[i] > 0 else 'below'} the one-step forecast "
            f"{forecast[i]:.4g} (band {low[i]:.4g}–{high[i]:.4g}, "
            f"MAD of recent forecast errors {scale[i]:.3g})"
        )

    return _Signal("forecast_residual", np.abs(z) / RESIDUAL_FACTOR, describe)


def _shift_size(s: _Series, values: np.ndarray, level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The median of ``values`` before the recent window, and how far the recent median moved from it in
    robust spreads (IQR / 1.349) of those past values."""
    past_points = max(s.season_length, MIN_SCALE_POINTS)
    recent = s.rolling(values, SHIFT_POINTS, "median", min_periods=SHIFT_POINTS)
    past = [
        s.shifted(s.rolling(values, past_points, "quantile", min_periods=past_points // 2, q=q), SHIFT_POINTS)
        for q in (0.25, 0.5, 0.75)
    ]
    spread = _floored((past[2] - past[0]) / 1.349, level + past[1])
    return past[1], np.nan_to_num(np.abs(recent - past[1]) / spread)


def _own_surprise(s: _Series, recent: np.ndarray) -> np.ndarray:
    """How far ``recent`` (a statistic of the last ``WINDOW_POINTS`` points) is from its own past values,
    signed, in their standard deviations over the ``HISTORY_POINTS`` before the window (as the likelihood):
    the series is its own reference, so a residual that is always biased or always jumpy is no surprise.
    The deviation is floored at ``SURPRISE_FLOOR`` MADs."""
    past = s.grouped(recent).rolling(HISTORY_POINTS, min_periods=ESTIMATION_POINTS)
    mean = s.shifted(past.mean().to_numpy(dtype=float), WINDOW_POINTS)
    spread = np.fmax(s.shifted(past.std(ddof=0).to_numpy(dtype=float), WINDOW_POINTS), SURPRISE_FLOOR)
    return np.nan_to_num((recent - mean) / spread)


def _sustained(s: _Series, seasonal: _Seasonal, info: float) -> tuple[_Signal, _Signal]:
    """Changes no single point shows: the median (``sustained_shift``) and the spread (``variance_change``)
    of the last ``WINDOW_POINTS`` residuals, each against the series' own history of it.

    A level shift or a ramp inside the usual range moves the median; a flapping dependency the spread.
    Residuals are taken from the same time a week ago moved to today's level, so weekends and steady growth
    are expected; a change of course is not. Points the point detectors flag are left out: a spike is theirs
    and must not echo here for the length of the window.
    """
    quiet = seasonal.warm & (seasonal.signal.strength < info)
    weekly = np.where(quiet, (s.y - seasonal.last_week) / seasonal.scale, np.nan)
    # For the median, the typical day must agree (the nearer of the two counts): one noisy week-old point
    # is outvoted by the median of all references.
    typical = (s.y - seasonal.expected) / seasonal.scale
    agree = np.where(np.sign(typical) == np.sign(weekly), 1.0, 0.0)
    nearer = agree * np.sign(weekly) * np.fmin(abs(typical), abs(weekly))
    median = s.rolling(nearer, WINDOW_POINTS, "median", min_periods=WINDOW_POINTS // 2)
    quartiles = [
        s.rolling(weekly, WINDOW_POINTS, "quantile", min_periods=WINDOW_POINTS // 2, q=q)
        for q in (0.25, 0.75)
    ]
    spread = (quartiles[1] - quartiles[0]) / 1.349
    shift = np.abs(_own_surprise(s, median))
    variance = np.fmax(_own_surprise(s, spread), 0.0)  # a quieter spell is no incident
    # Unusual for the series is not enough: the window must also have moved as far as one point needs to
    # be noticed at all (the info bar in MADs), so a fill a little faster than last week's is no anomaly.
    shift = np.where(np.abs(np.nan_to_num(median)) >= info, shift, 0.0)
    variance = np.where(np.nan_to_num(spread) >= info, variance, 0.0)
    span = duration_text(WINDOW_POINTS * s.step)

    def describe_shift(i: int) -> str:
        return (
            f"the last {span} ran {median[i]:+.1f} MADs (median) off both the usual day and the same time "
            f"last week, {shift[i]:.1f} standard deviations past this series' usual"
        )

    def describe_variance(i: int) -> str:
        return (
            f"the spread of the last {span} is {spread[i]:.1f} MADs, {variance[i]:.1f} standard deviations "
            f"above this series' usual spread"
        )

    return (
        _Signal("sustained_shift", shift, describe_shift),
        _Signal("variance_change", variance, describe_variance),
    )


def _level_shift(s: _Series, profile: np.ndarray, info: float) -> _Signal:
    before, size = _shift_size(s, s.y, np.zeros(len(s.y)))
    if s.season_length > 1:
        # A shift must also stand out from the same time a week ago: daily batch jobs and weekends are not
        # shifts, and neither are the restarts of a sawtooth that the raw level alone would see.
        size = np.fmin(size, _shift_size(s, s.y - profile, profile)[1])
    strength = size / SHIFT_FACTOR
    # Only a shift out of a settled state counts: none in the previous window, so a shift that flaps while
    # the windows catch up is one alarm, not several.
    shifted = (strength >= info).astype(float)
    settled = s.shifted(s.rolling(shifted, max(s.season_length, MIN_SCALE_POINTS), "max", min_periods=1)) == 0
    onset = (shifted == 1.0) & settled

    # A shift fires once half of the recent window has moved: the newest half is the new level, and the
    # shift began that many points ago.
    half = SHIFT_POINTS // 2
    after = s.rolling(s.y, half, "median", min_periods=half)
    began = s.frame["ds"].groupby(s.frame["unique_id"], sort=False).shift(half - 1)

    def describe(i: int) -> str:
        ratio = f" (x{after[i] / before[i]:.2g})" if before[i] != 0 else ""
        return f"level shifted from {before[i]:.4g} to {after[i]:.4g}{ratio} at {began.iat[i]:%Y-%m-%d %H:%M}"

    return _Signal("level_shift", np.where(onset, strength, 0.0), describe)


def _flatline(s: _Series, last_season: np.ndarray) -> _Signal:
    y, points = s.y, stale_points(s.season_length)
    changed = (y != s.shifted(y)).astype(float)
    run = pd.Series(np.cumsum(changed))
    run_length = run.groupby(run).cumcount().to_numpy() + 1
    window = max(s.season_length, MIN_SCALE_POINTS)
    moving = s.shifted(s.rolling(changed, window, "mean", min_periods=window))
    moving_before_run = pd.Series(moving).groupby(run).transform("first").to_numpy()
    run_start = s.frame["ds"].groupby(run.to_numpy()).transform("first")
    stuck = (run_length == points) & (moving_before_run >= 0.5) & (last_season != y)

    def describe(i: int) -> str:
        span = duration_text(s.frame["ds"].iat[i] - run_start.iat[i])
        return f"flat at {y[i]:.4g} for {span} ({points} identical points) after moving"

    return _Signal("flatline", np.where(stuck, FLAT_STRENGTH, 0.0), describe)


def _no_data(s: _Series) -> _Signal:
    gap = s.frame.groupby("unique_id", sort=False)["ds"].diff()
    late = (gap > stale_points(s.season_length) * s.step).to_numpy()

    def describe(i: int) -> str:
        return f"no data for {duration_text(gap.iat[i])}"

    return _Signal("no_data", np.where(late, GAP_STRENGTH, 0.0), describe)


AGREEING = (*DETECTORS[:POINT_DETECTORS], DETECTORS[WINDOW_DETECTORS])
"""Detectors that can confirm a ``critical``: the point detectors and ``level_shift`` (the window detectors
see the same residuals, so their agreement would be no confirmation)."""


@dataclass(frozen=True)
class _Grade:
    """Severity per point and what it rests on: the strength, the likelihood, the bar, who agreed."""

    severity: np.ndarray
    strength: np.ndarray
    likelihood: np.ndarray
    stretch: np.ndarray
    agreeing: np.ndarray
    windows: np.ndarray
    """The window detectors' strengths where they count (else 0), one column each."""
    bar: float

    def explain(self, i: int, detector: str, described: str) -> str:
        """The detector's reason, then why this severity for this series (flatlines and gaps speak alone)."""
        if detector not in AGREEING:
            return described
        notes = [f"likelihood {self.likelihood[i]:.6g} for this series"]
        if self.stretch[i] > 1:
            notes.append(f"noisy series: bar raised to {self.bar * self.stretch[i]:.1f} MADs")
        if self.severity[i] == "critical":
            agreeing = [name for name, agrees in zip(AGREEING, self.agreeing[i], strict=True) if agrees]
            notes.insert(0, f"critical: {' and '.join(agreeing)} agree")
        return f"{described} ({'; '.join(notes)})"


def _grade(s: _Series, strengths: np.ndarray, warm: np.ndarray, thresholds: dict[str, float]) -> _Grade:
    """Severity per point: past the bar *and* unlikely for the series, far past the bar, or a structural
    detector (level shift, flatline, gap) firing; ``critical`` also needs ``CRITICAL_AGREEMENT`` detectors
    past the critical bar. Each point detector's bar is stretched by its own noise on this series, so a series
    whose days differ in level does not blunt the one-step forecast. Warming-up points are ``none``."""
    groups = s.frame["unique_id"].to_numpy()
    own = np.where(warm[:, None], strengths[:, :POINT_DETECTORS], np.nan)
    stretch = np.column_stack(
        [np.fmax(1.0, noise_level(own[:, k], groups) / thresholds["warning"]) for k in range(POINT_DETECTORS)]
    )
    relative = own / stretch
    point = relative.max(axis=1, initial=0.0) if len(own) else np.zeros(0)
    likelihood = anomaly_likelihood(point / (point + SCORE_HALF_Z), groups)
    nines = likelihood_nines(likelihood)
    point, relative = np.nan_to_num(point), np.nan_to_num(relative)
    # A level shift counts where the series' scores back it up (tiny quantised series shift all the time);
    # a flatline or a gap is judged on its own.
    shift = np.where(nines >= SHIFT_NINES, strengths[:, WINDOW_DETECTORS], 0.0)
    # A window detector needs the recent point scores as unlikely as an info point does, and speaks only from
    # the warning bar: a window that is merely a little unusual is what the point detectors' info says.
    windows = strengths[:, POINT_DETECTORS:WINDOW_DETECTORS]
    counts = (nines >= LIKELIHOOD_NINES["info"])[:, None] & (windows >= thresholds["warning"])
    windows = np.where(counts, windows, 0.0)
    window = windows.max(axis=1, initial=0.0)
    alone = strengths[:, WINDOW_DETECTORS + 1 :].max(axis=1, initial=0.0)
    structural = np.where(warm, np.fmax.reduce([shift, window, alone]), 0.0)
    # Far past the series' own noise, one point is enough (HTM pairs its likelihood with a "spatial" check for
    # the same reason: averaging dilutes a single huge spike).
    extreme = point >= EXTREME * thresholds["critical"]

    def reaches(level: str) -> np.ndarray:
        unlikely = (point >= thresholds[level]) & (nines >= LIKELIHOOD_NINES[level])
        # A sustained deviation: every point modest, their run very unlikely for the series.
        sustained = (point >= thresholds["info"]) & (nines >= LIKELIHOOD_NINES[level] + SUSTAINED_NINES)
        alone = (extreme | sustained) & (level != "critical")
        return unlikely | alone | (structural >= thresholds[level])

    agreeing = np.column_stack([relative, strengths[:, WINDOW_DETECTORS]]) >= thresholds["critical"]
    critical = reaches("critical") & (agreeing.sum(axis=1) >= CRITICAL_AGREEMENT)
    severity = np.select(
        [critical, reaches("warning"), reaches("info")], ["critical", "warning", "info"], default="none"
    )
    severity = np.where(warm, severity, "none")
    others = np.fmax(window, strengths[:, WINDOW_DETECTORS:].max(axis=1, initial=0.0))
    strength = np.where(warm, np.fmax(point, others), 0.0)
    stretch = np.nan_to_num(stretch.max(axis=1, initial=1.0), nan=1.0)
    return _Grade(severity, strength, likelihood, stretch, agreeing, windows, thresholds["warning"])


def detect(
    df: pd.DataFrame, season_length: int, sensitivity: str = "medium", seasons: int | None = None
) -> pd.DataFrame:
    """Score every point of every series causally; one output row per input row, sorted by unique_id, ds.

    ``season_length`` is in points (24 for hourly data with a daily cycle, 7 for daily data with a weekly one;
    1 for none). ``sensitivity`` picks the thresholds in ``SENSITIVITY_THRESHOLDS``. ``seasons`` is the
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
    season_length = max(season_length, 1)
    seasons = seasons or default_seasons(season_length, step)
    series = _Series(
        frame, frame["y"].to_numpy(dtype=float), step, season_length, season_length * step, seasons
    )
    thresholds = SENSITIVITY_THRESHOLDS[sensitivity]
    seasonal = _seasonal_mad(series)
    signals = [
        seasonal.signal,
        _forecast_residual(series, seasonal),
        *_sustained(series, seasonal, thresholds["info"]),
        _level_shift(series, seasonal.profile, thresholds["info"]),
        _flatline(series, seasonal.last_season),
        _no_data(series),
    ]
    strengths = np.column_stack([signal.strength for signal in signals])
    # The point is named by the strongest detector, except that a level shift, flatline or gap that fired
    # names it whatever else is stronger: "level shifted from 120 to 340" says more than "52 MADs above".
    grade = _grade(series, strengths, seasonal.warm, thresholds)
    fired = strengths[:, WINDOW_DETECTORS:]
    structural = np.where(fired >= thresholds["info"], fired + np.inf, 0.0)
    # Window detectors name a point only where they count (and score it: a hindsight threshold on
    # anomaly_score should not see the windows the grading ignores).
    ranked = np.hstack([strengths[:, :POINT_DETECTORS], grade.windows, structural])
    strongest = ranked.argmax(axis=1) if len(frame) else np.zeros(0, dtype=int)
    raw_strength = strengths.max(axis=1, initial=0.0)
    flagged = grade.severity != "none"
    names = np.array([signal.name for signal in signals])
    scored = frame.assign(
        expected=seasonal.expected,
        anomaly_score=grade.strength / (grade.strength + SCORE_HALF_Z),
        is_anomaly=flagged,
        severity=grade.severity,
        detector=np.where(flagged, names[strongest], ""),
    )
    scored["reason"] = ""
    scored.loc[flagged, "reason"] = [
        grade.explain(i, signals[strongest[i]].name, signals[strongest[i]].describe(i))
        for i in np.flatnonzero(flagged)
    ]
    warming = ~seasonal.warm & (raw_strength >= thresholds["info"])
    if warming.any():
        needed = round(warm_seasons(seasons) * series.season / step)
        done = frame.groupby("unique_id", sort=False).cumcount().to_numpy() + 1
        scored.loc[warming, "reason"] = [
            f"warming up: {done[i]} of {needed} points" for i in np.flatnonzero(warming)
        ]
    scored["event_id"] = _event_ids(scored, flagged, max(2 * step, SUPPRESSION))
    passthrough = [column for column in df.columns if column not in OUTPUT_COLUMNS]
    return scored[OUTPUT_COLUMNS + passthrough]
