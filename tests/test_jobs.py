"""Runs always end: a run whose executing process died is failed by the sweeper, freeing its pool slot."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from intentvision_dagster.demo_data import write_demo_files
from intentvision_dagster.jobs import orphaned_run_sweeper
from intentvision_dagster.runs import ingest_file
from intentvision_dagster.settings import ASSETS_DIR, PROJECT_ROOT, load_settings
from tests.conftest import DEMO_END


def _wait_for(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@pytest.mark.slow
def test_a_sigkilled_cli_run_is_failed_by_the_sweeper(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = load_settings({"INTENTVISION_HOME": str(home)})
    for path in write_demo_files(ASSETS_DIR / "demo" / "series.yaml", DEMO_END, tmp_path / "demo"):
        ingest_file(path, path.stem, settings)
    env = {**os.environ, "INTENTVISION_HOME": str(home), "DAGSTER_HOME": str(settings.dagster_home)}
    cli = [sys.executable, "-c", "from intentvision_dagster.cli import main; main()"]
    settings.dagster_home.mkdir(parents=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", settings.dagster_home / "dagster.yaml")
    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(settings.dagster_home)))
    instance.add_dynamic_partitions("tenant_metric", ["acme/node_cpu_utilization_percent"])
    process = subprocess.Popen(
        [*cli, "run", "--all"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        run = _wait_for(
            lambda: next(
                iter(instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))), None
            ),
            120,
            "the CLI's run to start",
        )
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED

    result = orphaned_run_sweeper(dg.build_sensor_context(instance=instance))

    assert f"failed 1 orphaned run(s): {run.run_id[:8]}" in result.skip_message
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    again = orphaned_run_sweeper(dg.build_sensor_context(instance=instance))
    assert again.skip_message == "no orphaned runs"
