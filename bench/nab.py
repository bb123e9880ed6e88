"""NAB dev-subset benchmark: the product's anomaly detector vs a causal rolling-Gaussian baseline, same run.

    python bench/nab.py [--nab-dir ../shared/data/nab] [--sensitivity medium]

Scoring follows NAB v1.1 (``bench/nab_scoring.py``; 0 = null detector, 100 = perfect) on the 28 files present
(realAWSCloudwatch, artificialWithAnomaly, artificialNoAnomaly). Two settings per detector and profile:

* **default**: the threshold a user gets without tuning. Ours: ``is_anomaly`` at ``--sensitivity``; the
  baseline: a two-sided tail probability of 1 %. Both are reduced to alarm *onsets* (our first row of each
  ``event_id``; the baseline's first flagged row after an unflagged one), because NAB charges every flagged
  row outside a window as a separate false positive, while an operator is paged once per event.
* **hindsight**: NAB's own protocol, the raw ``anomaly_score`` with the best single corpus-wide threshold
  per profile, picked on these same labels (optimistic; there is no held-out split).

Also reported: window recall, false positives per series-day, points/s, and ours/baseline ratios. JSON goes
to ``bench/results/nab-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python bench/nab.py` puts bench/ on the path, not the repo root

from bench.nab_scoring import (  # noqa: E402
    CorpusScore,
    NabFile,
    Profile,
    load_corpus,
    load_profiles,
    optimal_threshold,
    score_corpus,
)
from intentvision_dagster.anomalies.detector import detect  # noqa: E402

DEFAULT_NAB_DIR = ROOT.parent / "shared" / "data" / "nab"
BASELINE_WINDOW_DAYS = 7
"""Rolling window of the baseline: a week, as NAB's windowedGaussian (6400 points) spans most of a file."""
BASELINE_MIN_DAYS = 1
"""History the baseline needs before it scores (the probationary period is ~2 days here)."""
BASELINE_THRESHOLD = 0.99
"""Baseline default: flag when the two-sided tail probability is below 1 % (|z| >= 2.58)."""
ONSET = 1.0
"""Score given to an onset row in the default setting; every other row scores 0."""


def points_per_day(nab_file: NabFile) -> int:
    """Season length in points: one day at the file's median sampling step (288 for 5-minute data)."""
    return round(pd.Timedelta(days=1) / nab_file.frame["timestamp"].diff().median())


def by_file(frame: pd.DataFrame, column: str) -> dict[str, np.ndarray]:
    """One score array per file, in row order, from a long frame sorted by unique_id, ds."""
    return {name: group[column].to_numpy(dtype=float) for name, group in frame.groupby("unique_id")}


def long_frame(nab_file: NabFile) -> pd.DataFrame:
    """``unique_id, ds, y`` for ``detect``, which needs unique stamps: a repeated timestamp (two AWS files
    repeat an hour at a clock change) gets +1 s per repeat, so every NAB row keeps its own score, in order."""
    stamps = nab_file.frame["timestamp"]
    repeat = pd.to_timedelta(nab_file.frame.groupby("timestamp").cumcount(), unit="s")
    return pd.DataFrame({"unique_id": nab_file.name, "ds": stamps + repeat, "y": nab_file.frame["value"]})


def run_ours(corpus: list[NabFile], sensitivity: str) -> tuple[pd.DataFrame, float]:
    """The product detector on every file (one ``detect`` call per season length); returns output, seconds.

    The seconds include building the detector's input frame, as a caller of ``detect`` would pay it.
    """
    groups: dict[int, list[NabFile]] = {}
    for nab_file in corpus:
        groups.setdefault(points_per_day(nab_file), []).append(nab_file)
    start = time.perf_counter()
    outputs = [
        detect(
            pd.concat(long_frame(f) for f in files),
            season_length=season_length,
            sensitivity=sensitivity,
        )
        for season_length, files in groups.items()
    ]
    seconds = time.perf_counter() - start
    scored = pd.concat(outputs, ignore_index=True)
    onset = scored["is_anomaly"].to_numpy() & ~scored.duplicated(["unique_id", "event_id"]).to_numpy()
    return scored.assign(onset=np.where(onset, ONSET, 0.0)), seconds


def rolling_gaussian(values: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    """Causal windowed-Gaussian score: 1 - two-sided tail probability of y under the previous points' N(μ, σ).

    Rows without ``min_periods`` of history score 0; on a flat past (σ = 0) any change scores 1.
    """
    past = pd.Series(values).rolling(window, min_periods=min_periods)
    mean, std = past.mean().shift(1).to_numpy(), past.std().shift(1).to_numpy()
    deviation = np.abs(values - mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(deviation == 0, 0.0, deviation / std)
    tail = np.vectorize(math.erfc, otypes=[float])(np.nan_to_num(z, nan=0.0) / math.sqrt(2))
    return 1.0 - tail


def run_baseline(corpus: list[NabFile]) -> tuple[pd.DataFrame, float]:
    """The baseline on every file; onsets are the first row of each run of rows at or above the threshold."""
    start = time.perf_counter()
    parts = []
    for f in corpus:
        day = points_per_day(f)
        score = rolling_gaussian(
            f.frame["value"].to_numpy(dtype=float), BASELINE_WINDOW_DAYS * day, BASELINE_MIN_DAYS * day
        )
        flagged = score >= BASELINE_THRESHOLD
        onset = flagged & ~np.r_[False, flagged[:-1]]
        parts.append(pd.DataFrame({"unique_id": f.name, "anomaly_score": score, "onset": onset * ONSET}))
    return pd.concat(parts, ignore_index=True), time.perf_counter() - start


def evaluate(
    scored: pd.DataFrame, corpus: list[NabFile], profiles: dict[str, Profile]
) -> list[tuple[str, CorpusScore]]:
    """Default (onset) and hindsight-optimal scores for every profile."""
    onsets, scores = by_file(scored, "onset"), by_file(scored, "anomaly_score")
    results = [("default", score_corpus(onsets, corpus, ONSET, p)) for p in profiles.values()]
    return results + [("hindsight", optimal_threshold(scores, corpus, p)[1]) for p in profiles.values()]


def ratio(ours: float, baseline: float) -> float | None:
    """ours / baseline, or None when the baseline is not positive (a ratio to 0 or to a negative misleads)."""
    return ours / baseline if baseline > 0 else None


def row(label: str, setting: str, result: CorpusScore) -> str:
    """One line of the printed table (fixed widths, so the columns line up)."""
    return (
        f"{label:<17}{setting:<10}{result.profile:<20}{result.threshold:>15.12g}{result.normalised:>8.1f}"
        f"{result.raw:>9.2f}{result.window_recall:>8.2f}{result.false_positives_per_day:>9.2f}"
        f"{result.true_positives:>5}{result.false_negatives:>5}{result.false_positives:>7}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nab-dir", type=Path, default=DEFAULT_NAB_DIR, help="NAB data folder")
    parser.add_argument(
        "--sensitivity", default="medium", help="detector sensitivity for the default setting"
    )
    args = parser.parse_args()
    if not (args.nab_dir / "labels" / "combined_windows.json").is_file():
        sys.exit(
            f"NAB data not found in {args.nab_dir} (expected labels/combined_windows.json); see --nab-dir"
        )

    corpus = load_corpus(args.nab_dir)
    profiles = load_profiles(args.nab_dir)
    n_points = sum(len(f.frame) for f in corpus)
    ours, ours_seconds = run_ours(corpus, args.sensitivity)
    baseline, baseline_seconds = run_baseline(corpus)
    detectors = {
        "intentvision": (evaluate(ours, corpus, profiles), n_points / ours_seconds),
        "rolling_gaussian": (evaluate(baseline, corpus, profiles), n_points / baseline_seconds),
    }

    n_windows = sum(len(f.windows) for f in corpus)
    print(f"NAB dev subset: {len(corpus)} files, {n_points:,} rows, {n_windows} windows ({args.nab_dir})")
    print(
        f"ours = detect(sensitivity={args.sensitivity!r}); baseline = rolling Gaussian over "
        f"{BASELINE_WINDOW_DAYS} days, default tail probability {1 - BASELINE_THRESHOLD:.0%}"
    )
    print(
        "default: alarm onsets only (threshold 1 on a 0/1 onset score); hindsight: best raw-score threshold"
    )
    print("(the baseline's score rounds to 1 in float64 beyond |z| ≈ 8.3; the JSON keeps full thresholds)")
    print()
    header = f"{'detector':<17}{'setting':<10}{'profile':<20}{'threshold':>15}{'NAB':>8}{'raw':>9}"
    print(header + f"{'recall':>8}{'FP/day':>9}{'TP':>5}{'FN':>5}{'FP':>7}")
    for label, (results, _) in detectors.items():
        for setting, result in results:
            print(row(label, setting, result))
    print()
    (ours_results, ours_speed), (base_results, base_speed) = detectors.values()
    ratios = []
    print(f"{'ours / baseline (n/a: baseline <= 0)':<53}{'NAB':>8}{'recall':>8}{'FP/day':>9}{'NAB diff':>10}")
    for (setting, mine), (_, theirs) in zip(ours_results, base_results, strict=True):
        entry = {
            "setting": setting,
            "profile": mine.profile,
            "nab": ratio(mine.normalised, theirs.normalised),
            "nab_difference": mine.normalised - theirs.normalised,
            "window_recall": ratio(mine.window_recall, theirs.window_recall),
            "false_positives_per_day": ratio(mine.false_positives_per_day, theirs.false_positives_per_day),
        }
        ratios.append(entry)
        cells = [entry["nab"], entry["window_recall"], entry["false_positives_per_day"]]
        cells = "".join(
            f"{'n/a' if v is None else f'{v:.2f}':>{w}}" for v, w in zip(cells, (8, 8, 9), strict=True)
        )
        print(f"{'':<17}{setting:<10}{mine.profile:<26}{cells}{entry['nab_difference']:>10.1f}")
    print()
    print(
        f"points/s: ours {ours_speed:,.0f}, baseline {base_speed:,.0f}, ratio {ours_speed / base_speed:.2f}"
    )

    report = {
        "nab_dir": str(args.nab_dir),
        "files": len(corpus),
        "rows": n_points,
        "windows": n_windows,
        "sensitivity": args.sensitivity,
        "baseline": {"window_days": BASELINE_WINDOW_DAYS, "threshold": BASELINE_THRESHOLD},
        "detectors": {
            label: {
                "points_per_s": speed,
                "results": [{"setting": setting, **asdict(result)} for setting, result in results],
            }
            for label, (results, speed) in detectors.items()
        },
        "ratios": {"points_per_s": ours_speed / base_speed, "scores": ratios},
    }
    out = Path(__file__).parent / "results" / f"nab-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
