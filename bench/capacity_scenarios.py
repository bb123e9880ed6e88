"""Labelled capacity scenarios for ``bench/capacity.py``: hourly gauges, a threshold each, the true crossing.

Every scenario is a full hourly series (history and what really happened next), a threshold with a
direction (``above``: breach when ``y >= threshold``; ``below``: when ``y <= threshold``), the hour of its
first crossing (``None``: never, in the generated data) and the cutoffs ("now") it is evaluated at: one a
day, all before the first crossing. Labels are computed from the values, never from the plan that generated
them, and a draw whose outcome does not match the pattern's intent (a "never" series that crosses, a breach
before the second cutoff) is redrawn from the same generator, so the suite is deterministic for a seed.

Synthetic patterns (hours of history at the first cutoff: 14-28 days; seven daily cutoffs; ten days after the
last one), then real NAB AWS CloudWatch series (``realAWSCloudwatch``, hourly means of the 5-minute files) as
negatives with a threshold above anything they reach, and as bases with an injected ramp.

The tune/report split is by family, alternating within each pattern along a hash order (``build_suite``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

HORIZON = 72
"""Hours ahead a capacity page is about."""
CUTOFF_EVERY = 24
"""Hours between two evaluations of one series: one a day."""
CUTOFFS = 7
"""Daily cutoffs per synthetic series: one series-week each."""
AFTER_LAST_CUTOFF = 240
"""Hours generated after the last cutoff, so crossings up to ten days later are still labelled."""
START = pd.Timestamp("2026-01-05 00:00")  # a Monday, so weekly patterns line up with weekdays
NAB_FOLDER = "realAWSCloudwatch"
NAB_MIN_HISTORY = 168
"""Hours of a NAB file before its first cutoff (the files hold 14-16 days)."""
NAB_TOO_SHORT = 2 * NAB_MIN_HISTORY
"""NAB files with fewer hours are left out (``iio_us-east-1_i-a2eb1cd9_NetworkIn``: 104 hours)."""
MAX_DRAWS = 50


@dataclass(frozen=True)
class Scenario:
    """One labelled series; ``values[i]`` is the hour ``START + i`` (or the NAB file's own start)."""

    name: str
    pattern: str
    family: str
    values: np.ndarray = field(repr=False)
    start: pd.Timestamp
    threshold: float
    direction: str
    cutoffs: tuple[int, ...]
    first_crossing: int | None
    split: str = ""
    onset: int | None = None
    """Hour the cause of the breach (an injected ramp) begins; None: present from the first hour or, for
    the synthetic patterns, at least a day before the first cutoff by construction."""

    @property
    def ds(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=len(self.values), freq="h")


def crossed(values: np.ndarray, threshold: float, direction: str) -> np.ndarray:
    """Where the series is at or past its threshold."""
    return values >= threshold if direction == "above" else values <= threshold


def first_crossing(values: np.ndarray, threshold: float, direction: str) -> int | None:
    """Index of the first hour at or past the threshold, None when it never gets there."""
    hits = np.flatnonzero(crossed(values, threshold, direction))
    return int(hits[0]) if hits.size else None


def labelled(
    name: str,
    pattern: str,
    family: str,
    values: np.ndarray,
    threshold: float,
    direction: str,
    cutoffs: Iterable[int],
    start: pd.Timestamp = START,
) -> Scenario:
    """A scenario whose label comes from its values; cutoffs at or after the first crossing are dropped."""
    crossing = first_crossing(values, threshold, direction)
    kept = tuple(c for c in cutoffs if crossing is None or c < crossing)
    return Scenario(name, pattern, family, values, start, float(threshold), direction, kept, crossing)


# --- synthetic patterns ---------------------------------------------------------------------------
# Each draws (values, threshold, direction, wants_breach) for a series of ``n`` hours whose cutoffs are
# ``first`` .. ``last``; wants_breach is the intent the label must confirm (None: either outcome is fine).

Draw = tuple[np.ndarray, float, str, bool | None]


def target_crossing(rng: np.random.Generator, first: int, last: int) -> int:
    """Planned crossing hour: from 12 h after the first cutoff to a week after the last, so a series' daily
    cutoffs see it <24 h, 24-72 h and >72 h ahead."""
    return int(rng.integers(first + 12, last + 168))


def log_rotation(rng: np.random.Generator, hours: np.ndarray) -> np.ndarray:
    """Daily sawtooth of rotated logs: grows through the day, drops at the rotation hour."""
    amplitude, rotation_hour = rng.uniform(0.3, 4.0), rng.integers(0, 24)
    return amplitude * ((hours - rotation_hour) % 24) / 24


def percent(values: np.ndarray) -> np.ndarray:
    """A utilisation gauge stays within 0-100."""
    return np.clip(values, 0, 100)


def daily_shape(rng: np.random.Generator, hours: np.ndarray) -> np.ndarray:
    """A busy-afternoon daily profile between -1 and 1 with its peak at a random hour between 10 and 17."""
    peak = rng.uniform(10, 17)
    return np.cos(2 * np.pi * (hours % 24 - peak) / 24)


def disk_filling(rng: np.random.Generator, n: int, first: int, last: int) -> Draw:
    """A disk filling linearly under a log-rotation sawtooth; a third of them report free space (below)."""
    hours = np.arange(n)
    base, threshold = rng.uniform(20, 55), rng.choice([85.0, 90.0, 95.0])
    wants_breach = rng.random() < 0.6
    saw = log_rotation(rng, hours)
    if wants_breach:
        slope = (threshold - base - saw.max()) / target_crossing(rng, first, last)
    else:
        slope = rng.uniform(0, 1) * (threshold - rng.uniform(3, 12) - base - saw.max()) / n
    values = percent(base + slope * hours + saw + rng.normal(0, rng.uniform(0.05, 0.4), n))
    if rng.random() < 1 / 3:
        return 100 - values, 100 - threshold, "below", wants_breach
    return values, threshold, "above", wants_breach


def disk_late_onset(rng: np.random.Generator, n: int, first: int, last: int) -> Draw:
    """Flat for weeks, filling since about five days before the first cutoff."""
    hours = np.arange(n)
    base, threshold = rng.uniform(25, 60), 90.0
    onset = first - int(rng.integers(72, 168))
    saw = log_rotation(rng, hours)
    wants_breach = rng.random() < 0.7
    room = threshold - base - saw.max()
    if wants_breach:
        slope = room / (target_crossing(rng, first, last) - onset)
    else:
        slope = rng.uniform(0.2, 0.9) * (room - rng.uniform(3, 10)) / (n - onset)
    values = base + slope * np.clip(hours - onset, 0, None) + saw + rng.normal(0, rng.uniform(0.05, 0.3), n)
    return percent(values), threshold, "above", wants_breach


def restart_times(rng: np.random.Generator, n: int) -> np.ndarray:
    """Hours of the restarts: every 18-96 h with +-15 % jitter, starting before hour 0."""
    period = rng.uniform(18, 96)
    gaps = period * rng.uniform(0.85, 1.15, size=int(n / (0.85 * period)) + 3)
    return np.cumsum(gaps) - rng.uniform(0, period)


def memory_leak(rng: np.random.Generator, n: int, first: int, last: int) -> Draw:
    """A leak cut by restarts; it breaches only when a cycle's peak reaches the line (the leak worsens)."""
    hours = np.arange(n)
    restarts = restart_times(rng, n)
    cycle = np.searchsorted(restarts, hours, side="right")
    cycle_start = np.r_[restarts.min() - (restarts[1] - restarts[0]), restarts][cycle]
    cycle_end = np.r_[restarts, restarts[-1] + (restarts[1] - restarts[0])][cycle]
    base, threshold = rng.uniform(25, 45), 90.0
    wants_breach = rng.random() < 0.35
    if wants_breach:  # cycle peaks rise linearly in time and reach the line around the target
        crossing = target_crossing(rng, first, last)
        early_peak = rng.uniform(55, 75)
        peak_at = early_peak + (threshold + 1 - early_peak) * cycle_end / crossing
    else:
        peak_at = np.full(n, rng.uniform(55, threshold - 3))
    progress = (hours - cycle_start) / (cycle_end - cycle_start)
    values = base + (peak_at - base) * progress + rng.normal(0, rng.uniform(0.2, 1.0), n)
    return percent(values), threshold, "above", wants_breach


def spikes(rng: np.random.Generator, n: int, ceiling: float, level: np.ndarray, per_day: float) -> np.ndarray:
    """Short incidents (1-4 h) that lift ``level`` to at most ``ceiling``; returns the added amounts."""
    added = np.zeros(n)
    for at in np.flatnonzero(rng.random(n) < per_day / 24):
        width = int(rng.integers(1, 5))
        peak = rng.uniform(0.5, 1.0) * (ceiling - level[at])
        added[at : at + width] = np.maximum(added[at : at + width], peak)
    return added


def spiky(rng: np.random.Generator, n: int, first: int, last: int) -> Draw:
    """A level with noise and spikes that come close to the line and never reach it."""
    hours = np.arange(n)
    threshold = rng.choice([80.0, 90.0])
    level = rng.uniform(20, 55) + rng.uniform(0, 8) * daily_shape(rng, hours)
    ceiling = threshold - rng.uniform(0.5, 8)
    values = level + rng.normal(0, rng.uniform(0.5, 3), n)
    values = values + spikes(rng, n, ceiling, values, rng.uniform(0.3, 2.0))
    return percent(np.minimum(values, ceiling)), threshold, "above", False


def flat_cpu(rng: np.random.Generator, n: int, first: int, last: int) -> Draw:
    """Flat, noisy CPU (AR(1) noise), clipped at 0-100 like a utilisation gauge."""
    sigma, threshold = rng.uniform(2, 10), rng.choice([85.0, 90.0, 95.0])
    mean = rng.uniform(10, threshold - 5 * sigma)
    phi, shocks = rng.uniform(0, 0.8), rng.normal(0, sigma, n)
    noise = np.zeros(n)
    for i in range(1, n):
        noise[i] = phi * noise[i - 1] + np.sqrt(1 - phi**2) * shocks[i]
    return np.clip(mean + noise, 0, 100), threshold, "above", False


def weekly_requests(rng: np.random.Generator, n: int, first: int, last: int) -> Draw:
    """Request rate with daily and weekly peaks, growing week by week, into a per-series limit."""
    hours = np.arange(n)
    weekend = np.isin((hours // 24) % 7, [5, 6])
    rate = rng.uniform(50, 3000) * (1 + rng.uniform(0.2, 0.6) * daily_shape(rng, hours))
    rate *= np.where(weekend, rng.uniform(0.5, 0.85), 1.0)
    rate *= (1 + rng.uniform(0.0, 0.08)) ** (hours / 168)
    values = rate * (1 + rng.normal(0, rng.uniform(0.01, 0.04), n))
    wants_breach = rng.random() < 0.6
    if wants_breach:
        crossing = target_crossing(rng, first, last)
        threshold = values[:crossing].max() * (1 + rng.uniform(0.002, 0.02))
    else:
        threshold = values.max() * rng.uniform(1.03, 1.4)
    return values, threshold, "above", wants_breach


def seasonal_peak(rng: np.random.Generator, n: int, first: int, last: int) -> Draw:
    """A slow trend under a strong daily cycle: the line is reached at a daily peak, long before the mean."""
    hours = np.arange(n)
    amplitude, threshold = rng.uniform(6, 20), 90.0
    mean = rng.uniform(30, threshold - amplitude - 15)
    wants_breach = rng.random() < 0.6
    room = threshold - amplitude - mean
    slope = room / target_crossing(rng, first, last) if wants_breach else rng.uniform(0, 0.8) * room / n
    values = (
        mean + slope * hours + amplitude * daily_shape(rng, hours) + rng.normal(0, rng.uniform(0.3, 1.5), n)
    )
    return percent(values), threshold, "above", wants_breach


def level_shift(rng: np.random.Generator, n: int, first: int, last: int) -> Draw:
    """A filling disk dropped to a lower level by a cleanup or a resize 1-7 days before the first cutoff,
    filling on at the old rate or up to three times slower: the old level and trend no longer decide."""
    hours = np.arange(n)
    threshold, shift_at = 90.0, first - int(rng.integers(24, 168))
    saw = log_rotation(rng, hours)
    wants_breach = rng.random() < 0.5
    after = rng.uniform(20, 50)  # level right after the shift
    room = threshold - after - saw.max()
    if wants_breach:
        slope = room / (target_crossing(rng, first, last) - shift_at)
    else:
        slope = rng.uniform(0.1, 0.9) * (room - 3) / (n - shift_at)
    before_slope = slope * (rng.uniform(1.5, 3.0) if rng.random() < 0.5 else 1.0)
    before_end = rng.uniform(after + 15, threshold - 8)  # level just before the cleanup
    values = np.where(
        hours < shift_at,
        before_end - before_slope * (shift_at - hours),
        after + slope * (hours - shift_at),
    )
    values = np.maximum(values, rng.uniform(5, 15)) + saw + rng.normal(0, rng.uniform(0.05, 0.4), n)
    return percent(values), threshold, "above", wants_breach


def incidents(rng: np.random.Generator, n: int, first: int, last: int) -> Draw:
    """A slowly growing gauge whose history holds incidents: spikes and multi-hour plateaus near the line."""
    hours = np.arange(n)
    threshold, base = 90.0, rng.uniform(25, 50)
    wants_breach = rng.random() < 0.5
    room = threshold - base - 2
    slope = room / target_crossing(rng, first, last) if wants_breach else rng.uniform(0, 0.7) * room / n
    level = base + slope * hours + rng.normal(0, rng.uniform(0.2, 1.0), n)
    history = hours < last
    incident = spikes(rng, n, threshold - rng.uniform(0.5, 4), level, rng.uniform(0.2, 0.8)) * history
    for at in rng.choice(first, size=int(rng.integers(1, 3)), replace=False):
        width = int(rng.integers(4, 13))
        incident[at : at + width] = np.maximum(
            incident[at : at + width], threshold - 2 - level[at : at + width]
        )
    return percent(level + incident), threshold, "above", wants_breach


PATTERNS: dict[str, tuple[Callable[..., Draw], int]] = {
    "disk_filling": (disk_filling, 48),
    "disk_late_onset": (disk_late_onset, 36),
    "memory_leak_restart": (memory_leak, 40),
    "spiky_never": (spiky, 30),
    "flat_cpu": (flat_cpu, 30),
    "weekly_requests": (weekly_requests, 36),
    "seasonal_peak": (seasonal_peak, 30),
    "level_shift": (level_shift, 30),
    "incidents": (incidents, 30),
}
"""Pattern name -> (generator, series in the full suite)."""


def matches_intent(scenario: Scenario, wants_breach: bool | None) -> bool:
    """A usable draw: at least two cutoffs before any crossing, and the outcome the pattern intended."""
    if len(scenario.cutoffs) < 2:
        return False
    return wants_breach is None or wants_breach == (scenario.first_crossing is not None)


def synthetic(pattern: str, index: int, seed: int) -> Scenario:
    """Series ``index`` of ``pattern``: its own random stream, so any subset of the suite is reproducible."""
    generate, _ = PATTERNS[pattern]
    key = int(hashlib.sha256(f"{pattern}/{index}".encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng([seed, key])
    name = f"{pattern}-{index:03d}"
    for _ in range(MAX_DRAWS):
        first = 24 * int(rng.integers(14, 29)) + int(rng.integers(0, 24))
        cutoffs = range(first, first + CUTOFFS * CUTOFF_EVERY, CUTOFF_EVERY)
        n = cutoffs[-1] + 1 + AFTER_LAST_CUTOFF
        values, threshold, direction, wants_breach = generate(rng, n, first, cutoffs[-1])
        scenario = labelled(name, pattern, name, values, threshold, direction, cutoffs)
        if matches_intent(scenario, wants_breach):
            return scenario
    raise RuntimeError(f"{name}: no draw matched the pattern's intent in {MAX_DRAWS} tries")


# --- NAB AWS CloudWatch ---------------------------------------------------------------------------


def nab_hourly(nab_dir: Path) -> dict[str, pd.Series]:
    """Hourly means of every usable ``realAWSCloudwatch`` file, by file stem (gaps interpolated)."""
    from bench.nab_scoring import load_corpus

    series = {}
    for nab_file in load_corpus(nab_dir):
        folder, file_name = nab_file.name.split("/")
        if folder != NAB_FOLDER:
            continue
        hourly = nab_file.frame.set_index("timestamp")["value"].resample("h").mean().interpolate()
        if len(hourly) >= NAB_TOO_SHORT:
            series[file_name.removesuffix(".csv")] = hourly
    return series


def nab_cutoffs(n: int) -> range:
    """Daily cutoffs from a week of history to three days before the file ends."""
    return range(NAB_MIN_HISTORY, n - HORIZON, CUTOFF_EVERY)


def nab_negatives(stem: str, hourly: pd.Series) -> list[Scenario]:
    """The real series as it was, with a tight and a loose threshold above its maximum: it never pages."""
    values = hourly.to_numpy(dtype=float)
    spread = values.max() - np.median(values)
    return [
        labelled(
            f"nab-{stem}-{label}",
            "nab_negative",
            f"nab-{stem}",
            values,
            values.max() + share * spread,
            "above",
            nab_cutoffs(len(values)),
            hourly.index[0],
        )
        for label, share in (("tight", 0.1), ("loose", 0.5))
    ]


def nab_ramps(stem: str, hourly: pd.Series, seed: int, count: int) -> list[Scenario]:
    """The real series plus a linear ramp from an onset near the first cutoff, into a line above the past.

    CPU utilisation files stay a percentage: the sum is capped at 100 and the line at 98, and a file whose
    own maximum leaves no room below 98 (``ec2_cpu_utilization_ac20cd``) gets no ramps."""
    key = int(hashlib.sha256(stem.encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng([seed, key])
    base = hourly.to_numpy(dtype=float)
    n, cutoffs = len(base), nab_cutoffs(len(base))
    spread = max(base.max() - np.median(base), 1e-3 * max(abs(base.max()), 1.0))
    ceiling, highest_line = (100.0, 98.0) if "cpu_utilization" in stem else (np.inf, np.inf)
    if base.max() >= highest_line:
        return []
    hours = np.arange(n)
    scenarios = []
    for index in range(count):
        name = f"nab-{stem}-ramp{index}"
        for _ in range(MAX_DRAWS):
            onset = cutoffs[0] - int(rng.integers(0, 96))
            crossing = int(rng.integers(cutoffs[0] + 12, n))
            threshold = min(base.max() + rng.uniform(0.2, 1.0) * spread, highest_line)
            slope = (threshold - np.median(base[onset - 24 : onset])) / (crossing - onset)
            values = np.minimum(base + slope * np.clip(hours - onset, 0, None), ceiling)
            scenario = labelled(
                name, "nab_ramp", f"nab-{stem}", values, threshold, "above", cutoffs, hourly.index[0]
            )
            if matches_intent(scenario, True):
                scenarios.append(replace(scenario, onset=onset))
                break
        else:
            raise RuntimeError(f"{name}: no ramp crossed after two cutoffs in {MAX_DRAWS} tries")
    return scenarios


# --- the suite and its split ----------------------------------------------------------------------


def ranked(families: Iterable[str]) -> list[str]:
    """Families in the order of a hash of their names: the split alternates along it, quick runs take its
    head, so a quick run holds both halves and every family keeps the split it has in the full suite."""
    return sorted(families, key=lambda family: hashlib.sha256(family.encode()).hexdigest())


def alternate(families: list[str]) -> dict[str, str]:
    return {family: ("tune", "report")[rank % 2] for rank, family in enumerate(families)}


def build_suite(
    seed: int = 0, nab_dir: Path | None = None, per_pattern: int | None = None, nab_ramps_per_file: int = 3
) -> list[Scenario]:
    """The suite with its tune/report split; ``per_pattern`` keeps the first series of each synthetic pattern
    and the first NAB files in hash order (a fixed subset); without ``nab_dir`` only synthetic series.

    The split is by family (a synthetic series is its own family; every scenario made from one NAB file is
    one family), alternating along the hash order within each pattern, so both halves hold every pattern
    and no NAB file feeds both."""
    scenarios, split_of = [], {}
    for pattern, (_, count) in PATTERNS.items():
        families = ranked(f"{pattern}-{index:03d}" for index in range(count))
        split_of |= alternate(families)
        for family in sorted(families[:per_pattern]):
            scenarios.append(synthetic(pattern, int(family.rsplit("-", 1)[1]), seed))
    if nab_dir is not None:
        hourly = nab_hourly(nab_dir)
        families = ranked(f"nab-{stem}" for stem in hourly)
        split_of |= alternate(families)
        for family in sorted(families[:per_pattern]):
            stem = family.removeprefix("nab-")
            scenarios += nab_negatives(stem, hourly[stem]) + nab_ramps(
                stem, hourly[stem], seed, nab_ramps_per_file
            )
    return [replace(s, split=split_of[s.family]) for s in scenarios]


def pair_id(scenario: Scenario, cutoff: int) -> str:
    """``scenario@cutoff``: one (series, now) evaluation as its own series for the system under test."""
    return f"{scenario.name}@{scenario.start + pd.Timedelta(hours=cutoff):%Y%m%dT%H%M}"


def evaluations(scenarios: list[Scenario]) -> pd.DataFrame:
    """One row per (scenario, cutoff) with the truth: ``breach`` when the first crossing is within HORIZON
    hours after the cutoff (it is never at or before it: those cutoffs were dropped); ``forecastable``
    false when the breach's cause begins after the cutoff (no system can see it), ``hours_since_onset``
    how long the cause has been in the history (NaN when it has no onset)."""
    rows = []
    for s in scenarios:
        crossing_ds = pd.NaT if s.first_crossing is None else s.start + pd.Timedelta(hours=s.first_crossing)
        for cutoff in s.cutoffs:
            ahead = np.nan if s.first_crossing is None else float(s.first_crossing - cutoff)
            rows.append(
                {
                    "unique_id": pair_id(s, cutoff),
                    "scenario": s.name,
                    "pattern": s.pattern,
                    "split": s.split,
                    "cutoff": cutoff,
                    "cutoff_ds": s.start + pd.Timedelta(hours=cutoff),
                    "threshold": s.threshold,
                    "direction": s.direction,
                    "crossing_ds": crossing_ds,
                    "hours_to_crossing": ahead,
                    "breach": bool(ahead <= HORIZON),
                    "forecastable": s.onset is None or s.onset < cutoff,
                    "hours_since_onset": np.nan if s.onset is None else float(cutoff - s.onset),
                }
            )
    return pd.DataFrame(rows)


def histories(scenarios: list[Scenario], truth: pd.DataFrame) -> pd.DataFrame:
    """``unique_id, ds, y``: each evaluation's history, up to and including its cutoff hour."""
    by_name = {s.name: s for s in scenarios}
    frames = []
    for uid, name, cutoff in truth[["unique_id", "scenario", "cutoff"]].itertuples(index=False):
        s = by_name[name]
        frames.append(pd.DataFrame({"unique_id": uid, "ds": s.ds[: cutoff + 1], "y": s.values[: cutoff + 1]}))
    return pd.concat(frames, ignore_index=True)
