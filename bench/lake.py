"""Storage benchmark (`make bench-lake`): one asset of N series written and read through Dagster with the
Delta Lake IO manager (the distributed profile's storage) and with the DuckDB warehouse IO manager (the
embedded baseline), in the same run on the same frame.

The asset is forecast-shaped (``unique_id, ds, yhat, lo/hi_80/95, model, tenant, metric, labels``; 10,000
series x 72 steps by default) over P partitions written by one range run, as a nightly run writes them.
Each repeat, per storage: ``write`` (the first materialization, creating the table), ``rewrite`` (the same
range again: the idempotent replace a nightly rerun pays) and ``read`` (a downstream asset loading the range).
Medians over the repeats; the ratio is lake / DuckDB (below 1 is faster). Dagster's own per-run overhead is in
both. Results go to bench/results/lake-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from intentvision_dagster.lake_resources import LakeIOManager, LakeStorage
from intentvision_dagster.partitions import PARTITION_EXPR
from intentvision_dagster.resources import WarehouseIOManager
from intentvision_dagster.runs import QUIET_LOGS

RESULTS = Path(__file__).parent / "results"
STEPS = 72


def forecast_frame(series: int, partitions: int, seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    """``series`` forecast-shaped series spread evenly over ``partitions`` (tenant, metric) pairs."""
    rng = np.random.default_rng(seed)
    keys = [f"tenant{p % 10:02d}/metric_{p:04d}" for p in range(partitions)]
    key_of = np.array(keys)[np.arange(series) % partitions]
    tenants, metrics = zip(*(key.split("/") for key in key_of), strict=True)
    ids = [f'{key}{{host="h{i}"}}' for i, key in enumerate(key_of)]
    rows = series * STEPS
    yhat = rng.normal(100, 10, rows)
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(ids, STEPS),
            "ds": np.tile(pd.date_range("2026-01-01", periods=STEPS, freq="h").to_numpy(), series),
            "yhat": yhat,
            "lo_80": yhat - 5,
            "hi_80": yhat + 5,
            "lo_95": yhat - 9,
            "hi_95": yhat + 9,
            "model": "MSTL",
            "tenant": np.repeat(tenants, STEPS),
            "metric": np.repeat(metrics, STEPS),
            "labels": np.repeat([f'{{"host": "h{i}"}}' for i in range(series)], STEPS),
        }
    )
    return frame, sorted(keys)


def time_storage(io_manager, frame: pd.DataFrame, keys: list[str]) -> dict[str, float]:
    """Seconds to write, rewrite and read ``frame`` as one range run over ``keys`` through ``io_manager``."""
    partitions = dg.StaticPartitionsDefinition(keys)
    policy = {"partitions_def": partitions, "backfill_policy": dg.BackfillPolicy.single_run()}

    @dg.asset(metadata={"partition_expr": PARTITION_EXPR}, **policy)
    def forecasts() -> pd.DataFrame:
        return frame

    @dg.asset(**policy)
    def reader(forecasts: pd.DataFrame) -> None:
        assert len(forecasts) == len(frame)

    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
    instance = dg.DagsterInstance.ephemeral()
    seconds = {}
    for phase, selection in (("write", [forecasts]), ("rewrite", [forecasts]), ("read", [reader])):
        started = time.perf_counter()
        result = dg.materialize(
            [forecasts, reader],
            selection=selection,
            resources={"io_manager": io_manager},
            tags=tags,
            instance=instance,
            run_config=QUIET_LOGS,
        )
        seconds[phase] = time.perf_counter() - started
        assert result.success
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    frame, keys = forecast_frame(args.series, args.partitions)
    samples: dict[str, list[dict[str, float]]] = {"duckdb": [], "delta": []}
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="bench-lake-") as scratch:
            root = Path(scratch)
            storages = {
                "duckdb": WarehouseIOManager(database=str(root / f"warehouse-{repeat}.duckdb")),
                "delta": LakeIOManager(storage=LakeStorage(uri=f"file://{root}/lake-{repeat}")),
            }
            for name, io_manager in storages.items():
                samples[name].append(time_storage(io_manager, frame, keys))
                print(f"repeat {repeat + 1} {name}: {samples[name][-1]}", flush=True)
    medians = {
        name: {phase: statistics.median(s[phase] for s in runs) for phase in runs[0]}
        for name, runs in samples.items()
    }
    ratios = {phase: medians["delta"][phase] / medians["duckdb"][phase] for phase in medians["duckdb"]}
    report = {
        "series": args.series,
        "rows": len(frame),
        "partitions": args.partitions,
        "repeats": args.repeats,
        "median_seconds": medians,
        "delta_over_duckdb": ratios,
        "samples": samples,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"lake-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    for phase in ratios:
        print(
            f"{phase:<8} duckdb {medians['duckdb'][phase]:6.2f} s  delta {medians['delta'][phase]:6.2f} s  "
            f"delta/duckdb {ratios[phase]:.2f}x"
        )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
