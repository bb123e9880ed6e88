"""Labelled synthetic ops series for tuning the anomaly detector beyond the 28 NAB dev files.

    corpus = synthetic_corpus(series=160, seed=11)   # list[NabFile], scored like NAB files

Each series is 14 days of 5-minute data (4,032 rows, the shape of NAB's AWS files) built from a level, a daily
cycle (a sine or a business-hours bump), a weekend dip, and noise that is Gaussian, heavy-tailed (Student t,
the "always jumpy" series) or Poisson counts. A quarter of the series have no incident; the others get one to
three incidents after the NAB probation (day 2.1), each one of:

* ``spike`` -- 1 to 3 points far outside the noise (a burst of errors, a GC pause);
* ``level_shift`` -- the level moves by 30-150 % and stays (a bad deploy, lost capacity);
* ``variance`` -- the noise grows 4-8x for 6-24 h (a flapping dependency);
* ``trend`` -- a ramp that adds 60-200 % of the level over 6-24 h and stays (a leak, a filling queue).

Windows follow NAB's rule (section 7 of its SCORING.md): about 10 % of the file per incident, centred on the
incident's first row, overlapping windows merged. Deterministic for a seed. Why our own generator rather than
``timeeval-gutenTAG``: it adds a dependency for ~100 lines, and its anomaly kinds do not include the
weekly/daily ops shapes we need without the same amount of configuration.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.nab_scoring import NabFile

POINTS = 14 * 288
START = pd.Timestamp("2026-03-02")  # a Monday
FIRST_INCIDENT_DAY = 2.5
KINDS = ("spike", "level_shift", "variance", "trend")


def _normal_series(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """The series without incidents, the noise scale per point, and the noise kind."""
    ds = pd.date_range(START, periods=POINTS, freq="5min")
    hour = ds.hour.to_numpy() + ds.minute.to_numpy() / 60
    level = float(rng.lognormal(3.5, 1.0))
    amplitude = rng.uniform(0.0, 0.6)
    if rng.random() < 0.5:
        daily = np.sin(2 * np.pi * (hour - rng.uniform(6, 10)) / 24)
    else:
        daily = np.clip(1 - np.abs(hour - rng.uniform(12, 16)) / rng.uniform(4, 8), 0, 1) * 2 - 1
    weekend = np.where(ds.dayofweek.to_numpy() >= 5, rng.uniform(0.5, 1.0), 1.0)
    clean = level * (1 + amplitude * daily) * weekend
    kind = rng.choice(["gaussian", "heavy", "counts"], p=[0.5, 0.3, 0.2])
    scale = np.full(POINTS, rng.uniform(0.02, 0.12) * level)
    if kind == "counts":
        values = rng.poisson(np.fmax(clean, 0.5)).astype(float)
        scale = np.sqrt(np.fmax(clean, 0.5))
    elif kind == "heavy":
        values = clean + scale * rng.standard_t(3, POINTS)
    else:
        values = clean + scale * rng.standard_normal(POINTS)
    return values, scale, str(kind)


def _incident(
    values: np.ndarray, scale: np.ndarray, level: float, start: int, kind: str, rng: np.random.Generator
) -> None:
    """Add one incident of ``kind`` at row ``start``, in place."""
    if kind == "spike":
        width = int(rng.integers(1, 4))
        size = max(rng.uniform(12, 25) * scale[start], rng.uniform(0.8, 2.0) * level)
        values[start : start + width] += size * rng.choice([-1, 1]) if level > size else size
    elif kind == "level_shift":
        direction = rng.choice([-1, 1]) if rng.random() < 0.4 else 1
        values[start:] += direction * rng.uniform(0.3, 0.6 if direction < 0 else 1.5) * level
    elif kind == "variance":
        width = int(rng.integers(72, 289))
        values[start : start + width] += (
            rng.uniform(4, 8) * scale[start] * rng.standard_normal(len(values[start : start + width]))
        )
    else:
        width = int(rng.integers(72, 289))
        rise = rng.uniform(0.6, 2.0) * level
        ramp = np.minimum(np.arange(len(values) - start) / width, 1.0) * rise
        values[start:] += ramp


def _windows(starts: list[int]) -> tuple[tuple[int, int], ...]:
    """NAB-style windows: 10 % of the file per incident, centred on its start, overlaps merged."""
    if not starts:
        return ()
    width = int(0.1 * POINTS / len(starts))
    spans = sorted((max(s - width // 2, 0), min(s + width // 2, POINTS - 1)) for s in starts)
    merged = [spans[0]]
    for begin, end in spans[1:]:
        if begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return tuple(merged)


def synthetic_series(index: int, seed: int) -> NabFile:
    """One labelled series; ``index`` and ``seed`` fix it completely."""
    rng = np.random.default_rng([seed, index])
    values, scale, noise = _normal_series(rng)
    level = float(np.median(np.abs(values))) or 1.0
    count = 0 if rng.random() < 0.25 else int(rng.integers(1, 4))
    first = int(FIRST_INCIDENT_DAY * 288)
    slots = np.linspace(first, POINTS - 288, count + 1)
    starts = [int(rng.integers(slots[k], slots[k + 1] - 144)) for k in range(count)]
    kinds = [str(rng.choice(KINDS)) for _ in starts]
    for start, kind in zip(starts, kinds, strict=True):
        _incident(values, scale, level, start, kind, rng)
    if noise == "counts":
        values = np.fmax(values, 0.0)
    frame = pd.DataFrame({"timestamp": pd.date_range(START, periods=POINTS, freq="5min"), "value": values})
    name = f"synthetic/{index:03d}_{noise}_{'-'.join(kinds) or 'none'}.csv"
    return NabFile(name, frame, _windows(starts))


def synthetic_corpus(series: int, seed: int) -> list[NabFile]:
    """``series`` labelled series from ``seed``."""
    return [synthetic_series(index, seed) for index in range(series)]
