"""NAB dev-subset benchmark: the product's anomaly detector vs a causal rolling-Gaussian baseline, same run.

    python bench/nab.py [--nab-dir ../shared/data/nab] [--sensitivity medium] [--min-severity warning]
                        [--synthetic 160] [--old-detector FILE]

Scoring follows NAB v1.1 (``bench/nab_scoring.py``; 0 = null detector, 100 = perfect) on the 28 files present
(realAWSCloudwatch, artificialWithAnomaly, artificialNoAnomaly). Two settings per detector and profile:

* **default**: the threshold a user gets without tuning. Ours: ``is_anomaly`` at ``--sensitivity``; the
  baseline: a two-sided tail probability of 1 %. Both are reduced to alarm *onsets* (our first row of each
  ``event_id``; the baseline's first flagged row after an unflagged one), because NAB charges every flagged
  row outside a window as a separate false positive, while an operator is paged once per event.
* **hindsight**: NAB's own protocol, the raw ``anomaly_score`` with the best single corpus-wide threshold
  per profile, picked on these same labels (optimistic; there is no held-out split).

Also reported: window recall, false positives per series-day, points/s, and ours/baseline ratios.

**Paging** (the headline): scored as the product pages. A page is the row at which an event first reaches
``--min-severity`` (the shipped ``anomalies`` rule's ``min_severity``, ``warning``): the moment the alert
goes out, not the event's earlier onset. Reported for all three profiles with window recall, false pages per
series-day (on the real, non-artificial files for NAB), and the precision of ``critical`` (the share of
critical pages inside a labelled window). Corpora: the NAB dev files and ``--synthetic`` labelled synthetic
ops series (``bench/synthetic_ops.py``), each split deterministically into a **tune** part (the only part the
detector's constants were tuned on) and a **report** part (the headline): NAB files alternate by name within
each folder (even positions tune), synthetic series by index. The baseline pages at its default onsets and
has no severity. ``--old-detector FILE`` also scores a ``detect`` loaded from FILE in the same run, e.g.
``git show main:intentvision_dagster/anomalies/detector.py > /tmp/old_detector.py``.

NAB files that repeat a timestamp (two AWS files repeat an hour at a clock change) are read with +1 s per
repeat (``long_frame``), so no file is refused and every NAB row keeps its own score. JSON goes to
``bench/results/nab-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.util import module_from_spec, spec_from_file_location
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
from bench.synthetic_ops import synthetic_corpus  # noqa: E402
from intentvision_dagster.anomalies.detector import detect  # noqa: E402
from intentvision_dagster.severity import SEVERITY_RANK  # noqa: E402

DEFAULT_NAB_DIR = ROOT.parent / "shared" / "data" / "nab"
BASELINE_WINDOW_DAYS = 7
"""Rolling window of the baseline: a week, as NAB's windowedGaussian (6400 points) spans most of a file."""
BASELINE_MIN_DAYS = 1
"""History the baseline needs before it scores (the probationary period is ~2 days here)."""
BASELINE_THRESHOLD = 0.99
"""Baseline default: flag when the two-sided tail probability is below 1 % (|z| >= 2.58)."""
ONSET = 1.0
"""Score given to an onset row in the default setting; every other row scores 0."""
SYNTHETIC_SEED = 11
REAL_FOLDER = "realAWSCloudwatch"
SPLITS = ("report", "tune")
Detect = Callable[..., pd.DataFrame]


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


def run_ours(
    corpus: list[NabFile], sensitivity: str, detector: Detect = detect
) -> tuple[pd.DataFrame, float]:
    """A detector on every file (one ``detector`` call per season length); returns output, seconds.

    The seconds include building the detector's input frame, as a caller of ``detect`` would pay it.
    """
    groups: dict[int, list[NabFile]] = {}
    for nab_file in corpus:
        groups.setdefault(points_per_day(nab_file), []).append(nab_file)
    start = time.perf_counter()
    outputs = [
        detector(
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


def split_of(corpus: list[NabFile]) -> dict[str, str]:
    """File name -> "tune" or "report": within each folder, files sorted by name alternate, even positions
    tune. Deterministic, and both parts get artificial and real files."""
    folders: dict[str, list[str]] = {}
    for nab_file in corpus:
        folders.setdefault(nab_file.name.rsplit("/", 1)[0], []).append(nab_file.name)
    return {
        name: SPLITS[1 - position % 2]
        for names in folders.values()
        for position, name in enumerate(sorted(names))
    }


def page_rows(scored: pd.DataFrame, min_severity: str) -> np.ndarray:
    """1.0 at the row where an event first reaches ``min_severity`` (when its page goes out), else 0."""
    reached = scored["is_anomaly"].astype(bool) & (
        scored["severity"].map(SEVERITY_RANK).fillna(0) >= SEVERITY_RANK[min_severity]
    )
    first = reached & ~scored["event_id"].where(reached).duplicated()
    return first.to_numpy(dtype=float)


@dataclass(frozen=True)
class PagingScore:
    """One detector on one part of a corpus, scored as it pages."""

    detector: str
    corpus: str
    split: str
    files: int
    windows: int
    scores: dict[str, float]
    window_recall: float
    false_pages: int
    false_pages_per_series_day: float
    critical_pages: int
    critical_precision: float | None


def inside_window(flags: np.ndarray, nab_file: NabFile) -> tuple[int, int]:
    """Scored (post-probation) flagged rows of one file: (inside a labelled window, all)."""
    rows = np.flatnonzero(flags)
    rows = rows[rows >= nab_file.probation]
    inside = sum(((rows >= start) & (rows <= end)).sum() for start, end in nab_file.windows)
    return int(inside), len(rows)


def critical_precision(critical: dict[str, np.ndarray], corpus: list[NabFile]) -> tuple[int, float | None]:
    """Critical pages after probation, and the share of them inside a labelled window (None without any)."""
    counts = np.array([inside_window(critical[f.name], f) for f in corpus]).reshape(-1, 2).sum(axis=0)
    return int(counts[1]), (counts[0] / counts[1] if counts[1] else None)


def paging_score(
    label: str,
    corpus_name: str,
    split: str,
    pages: dict[str, np.ndarray],
    critical: dict[str, np.ndarray] | None,
    corpus: list[NabFile],
    profiles: dict[str, Profile],
) -> PagingScore:
    """Pages scored with NAB's rules (threshold 1 on the 0/1 page rows) for every profile; false pages per
    series-day on the real files only when the corpus has any (NAB's artificial files are not ops data)."""
    results = {name: score_corpus(pages, corpus, ONSET, p) for name, p in profiles.items()}
    real = [f for f in corpus if f.name.startswith(REAL_FOLDER)] or corpus
    false_pages = sum(n - inside for inside, n in (inside_window(pages[f.name], f) for f in real))
    first = next(iter(results.values()))
    count, precision = critical_precision(critical, corpus) if critical else (0, None)
    return PagingScore(
        detector=label,
        corpus=corpus_name,
        split=split,
        files=len(corpus),
        windows=first.true_positives + first.false_negatives,
        scores={name: result.normalised for name, result in results.items()},
        window_recall=first.window_recall,
        false_pages=false_pages,
        false_pages_per_series_day=false_pages / sum(f.scored_days for f in real),
        critical_pages=count,
        critical_precision=precision,
    )


def paging_table(
    label: str,
    scored: pd.DataFrame,
    corpora: dict[str, list[NabFile]],
    min_severity: str,
    profiles: dict[str, Profile],
) -> list[PagingScore]:
    """Every corpus and split for one detector; ``scored`` has ``severity`` and ``event_id`` (ours) or only
    ``onset`` (the baseline, which pages at its onsets and has no critical)."""
    if "severity" in scored:
        pages = by_file(scored.assign(page=page_rows(scored, min_severity)), "page")
        critical = by_file(scored.assign(page=page_rows(scored, "critical")), "page")
    else:
        pages, critical = by_file(scored, "onset"), None
    table = []
    for corpus_name, corpus in corpora.items():
        split = split_of(corpus)
        for part in SPLITS:
            files = [f for f in corpus if split[f.name] == part]
            table.append(paging_score(label, corpus_name, part, pages, critical, files, profiles))
    return table


def paging_row(score: PagingScore) -> str:
    """One line of the printed paging table."""
    precision = "n/a" if score.critical_precision is None else f"{score.critical_precision:.2f}"
    cells = "".join(f"{value:>9.1f}" for value in score.scores.values())
    return (
        f"{score.detector:<17}{score.corpus:<10}{score.split:<7}{score.files:>6}{score.windows:>5}{cells}"
        f"{score.window_recall:>8.2f}{score.false_pages:>7}{score.false_pages_per_series_day:>10.3f}"
        f"{score.critical_pages:>7}{precision:>9}"
    )


def load_detector(path: Path) -> Detect:
    """``detect`` from a detector module file (an older version of ours, for a same-run comparison)."""
    spec = spec_from_file_location("old_detector", path)
    module = module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module.detect


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
    parser.add_argument(
        "--min-severity", default="warning", help="severity that pages (the anomalies rule's min_severity)"
    )
    parser.add_argument("--synthetic", type=int, default=160, help="labelled synthetic ops series")
    parser.add_argument("--old-detector", type=Path, help="also score detect() from this detector file")
    args = parser.parse_args()
    if not (args.nab_dir / "labels" / "combined_windows.json").is_file():
        sys.exit(
            f"NAB data not found in {args.nab_dir} (expected labels/combined_windows.json); see --nab-dir"
        )

    corpus = load_corpus(args.nab_dir)
    corpora = {"nab": corpus, "synthetic": synthetic_corpus(args.synthetic, SYNTHETIC_SEED)}
    every_file = [f for files in corpora.values() for f in files]
    all_points = sum(len(f.frame) for f in every_file)
    profiles = load_profiles(args.nab_dir)
    cpu = time.process_time()
    ours, ours_seconds = run_ours(every_file, args.sensitivity)
    cpu_seconds = {"intentvision": time.process_time() - cpu}
    cpu = time.process_time()
    baseline, baseline_seconds = run_baseline(every_file)
    cpu_seconds["rolling_gaussian"] = time.process_time() - cpu
    detectors = {
        "intentvision": (evaluate(ours, corpus, profiles), all_points / ours_seconds),
        "rolling_gaussian": (evaluate(baseline, corpus, profiles), all_points / baseline_seconds),
    }
    paging = [
        *paging_table("intentvision", ours, corpora, args.min_severity, profiles),
        *paging_table("rolling_gaussian", baseline, corpora, args.min_severity, profiles),
    ]
    speeds = {"intentvision": all_points / ours_seconds, "rolling_gaussian": all_points / baseline_seconds}
    if args.old_detector:
        old_detect = load_detector(args.old_detector)
        cpu = time.process_time()
        old, old_seconds = run_ours(every_file, args.sensitivity, old_detect)
        cpu_seconds["old_detector"] = time.process_time() - cpu
        paging[4:4] = paging_table("old_detector", old, corpora, args.min_severity, profiles)
        speeds["old_detector"] = all_points / old_seconds

    n_points = sum(len(f.frame) for f in corpus)
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
    print()
    print(
        f"PAGING: a page is the row where an event first reaches {args.min_severity!r}; "
        "NAB score per profile; "
        f"false pages per series-day on {REAL_FOLDER} files for NAB; critical precision = share of critical "
        "pages inside a labelled window; tune = the part tuned on, report = held out (headline)"
    )
    names = "".join(f"{name[:8]:>9}" for name in profiles)
    print(
        f"{'detector':<17}{'corpus':<10}{'split':<7}{'files':>6}{'win':>5}{names}{'recall':>8}{'FP':>7}"
        f"{'FP/s-day':>10}{'crit':>7}{'crit prec':>9}"
    )
    for score in paging:
        print(paging_row(score))
    print()
    print(
        f"points/s over {all_points:,} points (NAB + synthetic): "
        + ", ".join(f"{label} {speed:,.0f}" for label, speed in speeds.items())
        + f"; ours / baseline {ours_speed / base_speed:.2f}"
    )
    per_core = {label: all_points / seconds for label, seconds in cpu_seconds.items()}
    print(
        "points/s per core (process CPU time, steady on a shared machine): "
        + ", ".join(f"{label} {speed:,.0f}" for label, speed in per_core.items())
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
        "paging": {
            "min_severity": args.min_severity,
            "synthetic_series": args.synthetic,
            "points": all_points,
            "points_per_s": speeds,
            "points_per_cpu_s": per_core,
            "results": [asdict(score) for score in paging],
        },
    }
    out = Path(__file__).parent / "results" / f"nab-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
