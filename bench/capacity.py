"""Capacity pages benchmark: would the product page right about "this series crosses its line within 72 h"?

    python bench/capacity.py [--split both|tune|report] [--series N | --quick] [--jobs 2] [--seed 0]
                             [--systems ours,prophet,predict_linear_6h,predict_linear_24h]
                             [--nab-dir ../shared/data/nab] [--output bench/results] [--keep-inputs]

The scenarios (``bench/capacity_scenarios.py``): 390 hourly series by default, nine synthetic patterns (disks
filling under a log-rotation sawtooth, late-onset filling, memory leaks cut by restarts, spiky and flat-noisy
series that never reach the line, weekly request peaks growing into a limit, growth into a daily peak, level
shifts after a cleanup, incidents in the history) and the NAB AWS CloudWatch files as negatives and as bases
with injected ramps; each is evaluated at one cutoff a day (about 2,300 evaluations), with the history up
to the cutoff as input and the real continuation as truth.

Systems, in the same run, on the same evaluations:

* **ours**: ``intentvision capacity --input HISTORY.csv --thresholds THRESHOLDS.csv --horizon 72 --output
  PAGES.csv``, called once with every evaluation as its own series (``scenario@cutoff``): the product's
  engine and rule evaluation at the shipped defaults; its ``pages`` and ``crossing_ds`` are scored.
* **prophet**: Prophet with defaults, 95 % interval, paging when the band edge on the threshold's side
  reaches the line within 72 h; every evaluation, ``--jobs`` worker processes.
* **predict_linear_6h / _24h**: Prometheus' ``predict_linear(y[6h], 72 * 3600) >= threshold`` and over 24 h.

Scores (``bench/capacity_scoring.py``) per split, the report split being the headline: precision and recall
of "breach within 72 h", false pages per series-week, the share of breaches >= 24 h away paged >= 24 h ahead,
the median lead of the first page and the median |predicted - true| crossing time. A breach whose cause (an
injected ramp) begins after the cutoff is left out of every system's scores (counted under each table), and
evaluations whose ramp has been in the history for less than a day get a row of their own in the pattern
table. Results go to
``<output>/capacity-<time>.json`` (all figures, also per pattern) and ``capacity-<time>-decisions.csv`` (every
evaluation's truth and each system's decision); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python bench/capacity.py` puts bench/ on the path, not the repo root

from bench.capacity_baselines import predict_linear_decisions, prophet_decisions  # noqa: E402
from bench.capacity_scenarios import HORIZON, build_suite, evaluations, histories  # noqa: E402
from bench.capacity_scoring import EARLY, CapacityScore, judged, score  # noqa: E402
from bench.m4 import timed  # noqa: E402

DEFAULT_NAB_DIR = ROOT.parent / "shared" / "data" / "nab"
SYSTEMS = ("ours", "prophet", "predict_linear_6h", "predict_linear_24h")
QUICK_SERIES = 4
FRESH_RAMPS = f"(any pattern, cause in the history < {EARLY:.0f} h)"
"""Extra row of the pattern table: evaluations whose injected ramp began less than a day before the cutoff."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_ours(workdir: Path, jobs: int) -> pd.DataFrame:
    """The product CLI on every evaluation in one call; its PAGES.csv as a decision frame (UTC, naive)."""
    cli = Path(sys.executable).with_name("intentvision")
    pages = workdir / "PAGES.csv"
    command = [
        str(cli if cli.exists() else "intentvision"),
        "capacity",
        "--input",
        str(workdir / "HISTORY.csv"),
        "--thresholds",
        str(workdir / "THRESHOLDS.csv"),
        "--horizon",
        str(HORIZON),
        "--output",
        str(pages),
    ]
    log("ours: " + " ".join(command))
    done = subprocess.run(
        command,
        env={**os.environ, "INTENTVISION_MODEL_JOBS": str(jobs)},
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    log(done.stdout.strip())  # the CLI's summary; its progress and errors went to stderr as they came
    if done.returncode:
        sys.exit(f"`intentvision capacity` failed with exit code {done.returncode}; see its message above")
    decisions = pd.read_csv(pages)
    if decisions["pages"].dtype != bool:
        sys.exit(
            f"{pages}: column pages is not true/false: {sorted(decisions['pages'].astype(str).unique())[:5]}"
        )
    crossing = pd.to_datetime(decisions["crossing_ds"], utc=True).dt.tz_convert(None)
    return decisions.assign(crossing_ds=crossing)


def run_system(
    name: str, history: pd.DataFrame, thresholds: pd.DataFrame, workdir: Path, jobs: int
) -> pd.DataFrame:
    """One system's decisions on every evaluation (``unique_id, pages, crossing_ds``)."""
    if name == "ours":
        return run_ours(workdir, jobs)
    if name == "prophet":
        step = max(1, thresholds["unique_id"].nunique() // 20)

        def progress(done: int, total: int) -> None:
            if done % step == 0 or done == total:
                log(f"prophet: {done}/{total} evaluations")

        return prophet_decisions(history, thresholds, jobs, progress)
    window = int(name.removeprefix("predict_linear_").removesuffix("h"))
    return predict_linear_decisions(history, thresholds, window)


def run_systems(
    systems: list[str], history: pd.DataFrame, thresholds: pd.DataFrame, workdir: Path, jobs: int
) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """Every system on the same inputs, one after the other; decisions and wall seconds by system."""
    workdir.mkdir(exist_ok=True)
    history.to_csv(workdir / "HISTORY.csv", index=False)
    thresholds.to_csv(workdir / "THRESHOLDS.csv", index=False)
    decisions, seconds = {}, {}
    for name in systems:
        log(f"{name}: running on {len(thresholds)} evaluations")
        decisions[name], seconds[name] = timed(partial(run_system, name, history, thresholds, workdir, jobs))
        log(f"{name}: {seconds[name]:.1f} s (load average {os.getloadavg()[0]:.1f})")
    return decisions, seconds


def scores_by_split(
    judged_by: dict[str, pd.DataFrame], splits: list[str]
) -> tuple[dict[str, dict[str, CapacityScore]], dict[str, dict[str, dict[str, dict]]]]:
    """Per split: each system's score, and per pattern each system's figures (JSON-safe)."""
    results: dict[str, dict[str, CapacityScore]] = {split: {} for split in splits}
    by_pattern: dict[str, dict[str, dict[str, dict]]] = {split: {} for split in splits}
    for split in splits:
        for name, frame in judged_by.items():
            part = scored(frame[frame["split"] == split])
            results[split][name] = score(part)
            for pattern, rows in part.groupby("pattern"):
                by_pattern[split].setdefault(pattern, {})[name] = plain(score(rows))
            fresh = part[part["hours_since_onset"] < EARLY]
            if len(fresh):
                by_pattern[split].setdefault(FRESH_RAMPS, {})[name] = plain(score(fresh))
    return results, by_pattern


def scored(frame: pd.DataFrame) -> pd.DataFrame:
    """The evaluations every system is scored on: all but the breaches whose cause (an injected ramp)
    begins after the cutoff, which no system can forecast (the same rule for every system)."""
    return frame[frame["forecastable"] | ~frame["breach"]]


def not_forecastable(truth: pd.DataFrame, split: str) -> int:
    """How many breaches of ``split`` are left out of the scores because their cause begins later."""
    part = truth[truth["split"] == split]
    return int((part["breach"] & ~part["forecastable"]).sum())


def cell(value: float, digits: int) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def table(split: str, scores: dict[str, CapacityScore], seconds: dict[str, float]) -> str:
    """One markdown table of a split: one row per system."""
    first = next(iter(scores.values()))
    lines = [
        f"### {split} split: {first.series} series, {first.evaluations} evaluations "
        f"({first.true_pages + first.missed} within {HORIZON} h), {first.series_weeks:.0f} series-weeks",
        "",
        "| system | precision | recall | false pages / series-week | paged >= 24 h ahead | median lead h "
        "| median abs crossing error h | TP | FP | FN | seconds (all splits) |",
        "|---|" + "---:|" * 10,
    ]
    for name, s in scores.items():
        cells = [
            name,
            cell(s.precision, 3),
            cell(s.recall, 3),
            cell(s.false_pages_per_series_week, 3),
            f"{cell(s.share_paged_24h_ahead, 3)} ({s.paged_24h_ahead}/{s.breaches_24h_ahead})",
            cell(s.median_lead_hours, 0),
            cell(s.median_crossing_error_hours, 1),
            str(s.true_pages),
            str(s.false_pages),
            str(s.missed),
            f"{seconds[name]:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pattern_table(split: str, patterns: dict[str, dict[str, dict]]) -> str:
    """Right pages / false pages / missed breaches per pattern and system, to see where each one fails."""
    systems = list(next(iter(patterns.values())))
    lines = [
        f"{split} split by pattern: right pages / false pages / missed breaches",
        "",
        "| pattern | evaluations | breaches | " + " | ".join(systems) + " |",
        "|---|---:|---:|" + "---:|" * len(systems),
    ]
    for pattern, by_system in patterns.items():
        first = next(iter(by_system.values()))
        cells = [f"{s['true_pages']} / {s['false_pages']} / {s['missed']}" for s in by_system.values()]
        breaches = first["true_pages"] + first["missed"]
        lines.append(f"| {pattern} | {first['evaluations']} | {breaches} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plain(result: CapacityScore) -> dict:
    """The figures as a JSON-safe dict: NaN becomes null."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(result).items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", choices=("both", "tune", "report"), default="both")
    parser.add_argument(
        "--series", type=int, help="at most N series per synthetic pattern and N NAB files (a fixed subset)"
    )
    parser.add_argument("--quick", action="store_true", help=f"same as --series {QUICK_SERIES}")
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="worker processes for ours (INTENTVISION_MODEL_JOBS) and for Prophet",
    )
    parser.add_argument("--seed", type=int, default=0, help="scenario seed (the documented figures use 0)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {SYSTEMS}")
    parser.add_argument("--nab-dir", type=Path, default=DEFAULT_NAB_DIR, help="NAB data folder")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results", help="results folder")
    parser.add_argument(
        "--keep-inputs", action="store_true", help="keep HISTORY/THRESHOLDS/PAGES.csv in the results folder"
    )
    args = parser.parse_args(argv)
    systems = [name.strip() for name in args.systems.split(",") if name.strip()]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        parser.error(f"--systems: unknown {unknown}; choose from {SYSTEMS}")
    if not (args.nab_dir / "data" / "realAWSCloudwatch").is_dir():
        sys.exit(f"NAB data not found in {args.nab_dir} (expected data/realAWSCloudwatch); see --nab-dir")
    per_pattern = QUICK_SERIES if args.quick else args.series

    started = time.perf_counter()
    suite = build_suite(args.seed, args.nab_dir, per_pattern)
    truth = evaluations(suite)
    if args.split != "both":
        truth = truth[truth["split"] == args.split].reset_index(drop=True)
    history = histories(suite, truth)
    thresholds = truth[["unique_id", "threshold", "direction"]]
    splits = [split for split in ("report", "tune") if split in set(truth["split"])]
    log(
        f"capacity: {truth['scenario'].nunique()} series, {len(truth)} evaluations, "
        f"{len(history):,} history rows (split {args.split}); systems {systems}"
    )

    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S")
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="capacity-") as scratch:
        workdir = args.output / f"capacity-{stamp}-inputs" if args.keep_inputs else Path(scratch)
        decisions, seconds = run_systems(systems, history, thresholds, workdir, args.jobs)
    judged_by = {name: judged(truth, frame) for name, frame in decisions.items()}
    results, by_pattern = scores_by_split(judged_by, splits)
    wall = time.perf_counter() - started
    command = "python bench/capacity.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n\n".join(
        [
            f"## Capacity pages, breach within {HORIZON} h (`{command.strip()}`, {args.jobs} jobs, "
            f"{wall:.0f} s wall, load average {os.getloadavg()[0]:.1f} at the end)"
        ]
        + [
            table(split, results[split], seconds)
            + "\n\nBreaches left out of every system's scores, their cause beginning after the cutoff "
            f"(not yet forecastable): {not_forecastable(truth, split)}."
            for split in splits
        ]
        + [pattern_table(split, by_pattern[split]) for split in splits]
    )
    print(text)

    wide = truth.copy()
    for name, frame in judged_by.items():
        wide[f"{name}_pages"] = frame["pages"].to_numpy()
        wide[f"{name}_crossing_ds"] = frame["predicted_ds"].to_numpy()
    csv_path = args.output / f"capacity-{stamp}-decisions.csv"
    wide.to_csv(csv_path, index=False)
    report = {
        "command": command.strip(),
        "seed": args.seed,
        "split": args.split,
        "jobs": args.jobs,
        "horizon_hours": HORIZON,
        "wall_seconds": wall,
        "seconds": seconds,
        "load_average_1min_at_end": os.getloadavg()[0],
        "series": int(truth["scenario"].nunique()),
        "evaluations": len(truth),
        "scores": {split: {name: plain(s) for name, s in results[split].items()} for split in splits},
        "by_pattern": by_pattern,
        "not_forecastable_breaches": {split: not_forecastable(truth, split) for split in splits},
    }
    json_path = args.output / f"capacity-{stamp}.json"
    json_path.write_text(json.dumps(report, indent=2))
    (args.output / f"capacity-{stamp}.md").write_text(text + "\n")
    print(f"\nwrote {json_path}, {json_path.with_suffix('.md')} and {csv_path}")


if __name__ == "__main__":
    main()
