"""Runs always end: a run whose executing process died is failed by the sweeper, freeing its pool slot."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from intentvision_dagster.demo_data import write_demo_files
from intentvision_dagster.jobs import PROCESS_TAG, orphaned_run_sweeper, process_gone, process_tags
from intentvision_dagster.runs import ingest_file
from intentvision_dagster.settings import ASSETS_DIR, load_settings
from tests.conftest import DEMO_END


def test_a_live_process_is_not_gone_and_a_dead_one_is() -> None:
    host = socket.gethostname()
    assert not process_gone(process_tags()[PROCESS_TAG], host)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        tag = (
            f"{host}:{child.pid}:{Path(f'/proc/{child.pid}/stat').read_text().rsplit(')', 1)[1].split()[19]}"
        )
        assert not process_gone(tag, host)
    finally:
        child.kill()
        child.wait()
    assert process_gone(tag, host)


def test_a_recycled_pid_with_another_start_time_counts_as_gone() -> None:
    host = socket.gethostname()
    assert process_gone(f"{host}:{os.getpid()}:1", host)


def test_another_hosts_process_is_never_judged() -> None:
    assert not process_gone("some-other-host:1:1", socket.gethostname())


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
    # Any command sets up the instance under DAGSTER_HOME; without the daemon nobody registers partitions.
    subprocess.run([*cli, "alerts", "list"], env=env, check=True, capture_output=True)
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
