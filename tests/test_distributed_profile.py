"""The distributed profile end to end: a real pipeline run with the Dagster instance on a throwaway Postgres
cluster and model fitting on a Dask cluster, data still in the embedded DuckDB warehouse."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.forecasting.workers import local_cluster
from intentvision_dagster.runs import ingest_file, register_partitions, run_pipeline
from intentvision_dagster.settings import load_settings, prepare_dagster_home
from intentvision_dagster.warehouse import SCHEMA
from tests.conftest import DEMO_END
from tests.support.postgres_server import postgres_server

distributed = pytest.importorskip(
    "distributed", reason="the distributed extra is not installed: pip install '.[distributed]'"
)

pytestmark = pytest.mark.slow
SERIES = 50  # two shares of 25: the smallest partition the engine splits between two workers
METRIC = "node_cpu_utilization_percent"


def _cpu_file(path: Path) -> Path:
    """Ten days of hourly CPU for ``SERIES`` hosts, ending at the demo's end (so freshness holds)."""
    rng = np.random.default_rng(12)
    stamps = pd.date_range(end=DEMO_END, periods=24 * 10, freq="h")
    hours = np.arange(stamps.size)
    pd.concat(
        pd.DataFrame(
            {
                "timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "metric": METRIC,
                "labels": f"host=web-{host:02d}",
                "value": 30 + host + 10 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 2, stamps.size),
            }
        )
        for host in range(SERIES)
    ).to_csv(path, index=False)
    return path


def test_a_pipeline_run_keeps_its_runs_in_postgres_and_fits_on_dask(tmp_path, monkeypatch) -> None:
    # A scheduler the test owns (rather than `local`, which the run would start and stop inside itself), so
    # the test can see which share functions its workers ran.
    with (
        postgres_server() as postgres,
        local_cluster(2) as cluster,
    ):
        env = {
            "INTENTVISION_HOME": str(tmp_path / "home"),
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
            "INTENTVISION_PROFILE": "distributed",
            "INTENTVISION_DASK_ADDRESS": cluster.scheduler_address,
            "INTENTVISION_MODEL_JOBS": "2",
            **postgres.dagster_env(),
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = load_settings()
        instance = dg.DagsterInstance.from_config(str(prepare_dagster_home(settings)))
        try:
            batch = ingest_file(_cpu_file(tmp_path / "cpu.csv"), "acme", settings)
            keys = register_partitions(instance, [batch])
            [outcome] = run_pipeline(build_definitions(settings), instance, keys)

            assert outcome.success
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            [run] = instance.get_runs()
            assert (run.run_id, run.status) == (outcome.run_id, dg.DagsterRunStatus.SUCCESS)
            assert run.tags["dagster/partition"] == f"acme/{METRIC}"
            for asset in ("validated_series", "forecast_accuracy", "forecasts"):
                event = instance.get_latest_materialization_event(dg.AssetKey(asset))
                assert event is not None and event.run_id == run.run_id, asset
                assert event.asset_materialization.partition == f"acme/{METRIC}"
            ran_on_dask = set(cluster.scheduler.task_prefixes)
            assert {"cross_validate_share", "fit_predict_share"} <= ran_on_dask  # Dask drops the "_"
            with distributed.Client(cluster) as client:  # the workers run without Dask's malloc trimming
                assert list(client.run(os.getenv, "MALLOC_TRIM_THRESHOLD_").values()) == [None, None]
        finally:
            instance.dispose()
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        stored = conn.execute(f"SELECT count(DISTINCT unique_id) FROM {SCHEMA}.forecasts").fetchone()
    assert stored == (SERIES,)
