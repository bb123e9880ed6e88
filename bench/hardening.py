"""Reproductions of the hardening probe's findings, each printing the figure the closing note quotes.

    python bench/hardening.py fine-step        # 10 series of 1 s samples + one sample 12 h earlier, one run
    python bench/hardening.py landing-flood    # one batch of 200 metric names: run requests in one tick
    python bench/hardening.py readers-writer   # 6 API-style readers on 3M rows while a run's writer connects

Run the same command on two checkouts to compare (the scripts use only interfaces both sides have); run
``fine-step`` under ``/usr/bin/time -v`` for peak memory.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd

from intentvision_dagster.api.reads import WarehouseBusy, read_rows
from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.runs import ingest_file, register_partitions, run_pipeline
from intentvision_dagster.settings import load_settings

WRITER = """
import sys, time
try:
    from intentvision_dagster.resources import WarehouseResource as Resource
except ImportError:  # a checkout from before writer announcements
    from dagster_duckdb import DuckDBResource as Resource
started = time.monotonic()
try:
    with Resource(database=sys.argv[1]).get_connection() as conn:
        conn.execute("create table intentvision.written_by_a_run as select 1")
    print(f"writer_in_after={time.monotonic() - started:.1f}s")
except Exception as exc:
    print(f"writer_failed_after={time.monotonic() - started:.1f}s {type(exc).__name__}")
"""


def _home() -> tuple[Path, object]:
    home = Path(tempfile.mkdtemp())
    return home, load_settings({"INTENTVISION_HOME": str(home / "home")})


def fine_step() -> None:
    home, settings = _home()
    end = pd.Timestamp.now().floor("s")
    stamps = [end - pd.Timedelta(hours=12), *pd.date_range(end=end, periods=100, freq="s")]
    rows = [
        (ds.strftime("%Y-%m-%dT%H:%M:%SZ"), "probe_metric", f"i={i}", 1.5) for i in range(10) for ds in stamps
    ]
    pd.DataFrame(rows, columns=["timestamp", "metric", "labels", "value"]).to_csv(home / "p.csv", index=False)
    instance = dg.DagsterInstance.ephemeral()
    keys = register_partitions(instance, [ingest_file(home / "p.csv", "acme", settings)])
    started = time.perf_counter()
    [outcome] = run_pipeline(build_definitions(settings), instance, keys)
    seconds = time.perf_counter() - started
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        [(count,)] = conn.execute("select count(*) from intentvision.forecasts").fetchall()
    print(f"success={outcome.success} seconds={seconds:.1f} forecast_rows={count}")


def landing_flood() -> None:
    home, settings = _home()
    rows = [("2026-11-01T00:00:00Z", f"stream_metric_{i:03d}", "host=a", 1) for i in range(200)]
    pd.DataFrame(rows, columns=["timestamp", "metric", "labels", "value"]).to_csv(home / "s.csv", index=False)
    ingest_file(home / "s.csv", "acme", settings)
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
        result = defs.resolve_sensor_def("landing_sensor")(context)
    print(f"run_requests_per_tick={len(result.run_requests)}")


def readers_writer() -> None:
    database = Path(tempfile.mkdtemp()) / "warehouse.duckdb"
    with duckdb.connect(str(database)) as conn:
        conn.execute("create schema intentvision")
        conn.execute(
            "create table intentvision.validated_series as select 'acme' as tenant, 'cpu' as metric,"
            " '' as labels, 'acme/cpu' || (i % 1000)::varchar as unique_id,"
            " timestamp '2026-01-01' + to_seconds(i) as ds, random() as y from range(3000000) t(i)"
        )
    stop = threading.Event()
    counts = {"ok": 0, "busy": 0}

    def read() -> None:
        while not stop.is_set():
            try:
                read_rows(database, "series", "acme")
                counts["ok"] += 1
            except WarehouseBusy:
                counts["busy"] += 1

    readers = [threading.Thread(target=read) for _ in range(6)]
    for reader in readers:
        reader.start()
    time.sleep(1)
    writer = subprocess.run(
        [sys.executable, "-c", WRITER, str(database)], capture_output=True, text=True, timeout=600
    )
    stop.set()
    for reader in readers:
        reader.join()
    print(writer.stdout.strip(), f"reads_ok={counts['ok']} reads_busy={counts['busy']}")


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("case", choices=["fine-step", "landing-flood", "readers-writer"])
    {"fine-step": fine_step, "landing-flood": landing_flood, "readers-writer": readers_writer}[
        parser.parse_args().case
    ]()
