"""End to end with the real ``dagster-webserver`` and ``dagster-daemon``: a landed file becomes a run."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import requests

from intentvision_dagster.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    response = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def raise_if_location_failed(port: int) -> None:
    """Raise with the code location's load error (Dagster's PythonError: message and stack) if it failed to
    load; return while it is loading or loaded. For queries that found no repository or sensor."""
    entry = graphql(
        port,
        """{ workspaceLocationEntryOrError(name: "intentvision") {
              ... on WorkspaceLocationEntry { locationOrLoadError { ... on PythonError { message stack } } }
              ... on PythonError { message stack } } }""",
    )["workspaceLocationEntryOrError"]
    error = entry.get("locationOrLoadError", entry) if entry else None  # the entry's, or the query's own
    if error and "message" in error:
        raise AssertionError(f"the code location failed to load: {error['message']}{''.join(error['stack'])}")


def wait_for(predicate, timeout: float, what: str, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def dagster_services(tmp_path):
    home = tmp_path / "home"
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    # Create the SQLite storage once before both processes start: on a fresh home each would stamp the schema
    # at the same moment, leaving two alembic heads, and the code location would never load.
    dg.DagsterInstance.from_config(str(dagster_home)).dispose()
    env = {**os.environ, "INTENTVISION_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    port = free_port()
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("webserver", "daemon")}  # noqa: SIM115
    procs = [
        subprocess.Popen(
            [BIN / "dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=logs["webserver"],
            stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [BIN / "dagster-daemon", "run", "-w", "workspace.yaml"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=logs["daemon"],
            stderr=subprocess.STDOUT,
        ),
    ]
    try:

        def up():
            for name, proc in zip(logs, procs, strict=True):
                if proc.poll() is not None:
                    log = (tmp_path / f"{name}.log").read_text()[-4000:]
                    raise AssertionError(f"dagster-{name} exited with {proc.returncode}:\n{log}")
            try:
                return requests.get(f"http://127.0.0.1:{port}/server_info", timeout=5).ok
            except requests.ConnectionError:
                return False

        wait_for(up, 120, "the webserver to answer")
        yield port, env, tmp_path
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs.values():
            log.close()


def test_webserver_and_daemon_load_the_project_and_run_a_landed_file(dagster_services):
    port, env, tmp_path = dagster_services

    def repositories():
        """The loaded repositories: the webserver answers before the location has loaded (slower if busy)."""
        nodes = graphql(
            port,
            """{ repositoriesOrError { ... on RepositoryConnection { nodes { name
              schedules { name scheduleState { status } }
              sensors { name sensorState { status } }
              assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } }
        } } } }""",
        )["repositoriesOrError"]["nodes"]
        if not nodes:
            raise_if_location_failed(port)
        return nodes

    [repo] = wait_for(repositories, 120, "the code location to load")
    assert {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]} == {
        "nightly_forecasts": "RUNNING"
    }
    assert {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]} == {
        "landing_sensor": "RUNNING",
        "alert_sensor": "RUNNING",
        "orphaned_run_sweeper": "RUNNING",
        "prometheus_pull_sensor": "RUNNING",
        "run_failure_alert_sensor": "RUNNING",
    }
    assets = {node["assetKey"]["path"][0]: node for node in repo["assetNodes"]}
    assert set(assets) == {"raw_series", "validated_series", "anomalies", "forecasts", "forecast_accuracy"}
    checks = {c["name"] for c in assets["validated_series"]["assetChecksOrError"]["checks"]}
    assert checks == {"completeness", "freshness", "value_range", "not_null"}

    end = pd.Timestamp.now(tz="UTC").floor("h")
    stamps = pd.date_range(end=end, periods=96, freq="h")
    values = 40 + 10 * np.sin(np.arange(96) * 2 * np.pi / 24)
    source = tmp_path / "cpu.csv"
    pd.concat(
        pd.DataFrame(
            {
                "timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "metric": metric,
                "labels": "host=web-1",
                "value": values,
            }
        )
        for metric in ("node_cpu_utilization_percent", "node_memory_utilization_percent")
    ).to_csv(source, index=False)
    subprocess.run([BIN / "intentvision", "ingest", str(source), "--tenant", "acme"], env=env, check=True)

    def finished_run():
        runs = graphql(
            port,
            """{ runsOrError(filter: {pipelineName: "series_pipeline"}) {
                  ... on Runs { results { runId status tags { key value } } } } }""",
        )["runsOrError"]["results"]
        done = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
        return done[0] if done else None

    run = wait_for(finished_run, 240, "the landing sensor's run to finish", interval=3)
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert run["status"] == "SUCCESS", json.dumps(run)
    # Both metrics of the batch go in one run over the tenant's key range, not one run each.
    assert tags["dagster/asset_partition_range_start"] == "acme/node_cpu_utilization_percent"
    assert tags["dagster/asset_partition_range_end"] == "acme/node_memory_utilization_percent"
    assert tags["intentvision/tenant"] == "acme"


def _processes_matching(text: str) -> set[int]:
    """Pids of live processes whose command line contains ``text``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.add(int(entry.name))
            except OSError:
                continue  # the process ended while we looked
    return found


def test_a_daemon_run_that_used_the_worker_pool_leaves_no_process_behind(dagster_services):
    """60 label-series make the step fit on a 2-worker pool; the run worker and its pool must all exit."""
    port, env, tmp_path = dagster_services
    forkservers_before = _processes_matching("multiprocessing.forkserver")
    end = pd.Timestamp.now(tz="UTC").floor("h")
    stamps = pd.date_range(end=end, periods=72, freq="h").strftime("%Y-%m-%dT%H:%M:%SZ")
    rng = np.random.default_rng(60)
    source = tmp_path / "many.csv"
    pd.concat(
        pd.DataFrame(
            {
                "timestamp": stamps,
                "metric": "node_cpu_utilization_percent",
                "labels": f"host=web-{i}",
                "value": 40 + 10 * np.sin(np.arange(72) * 2 * np.pi / 24) + rng.normal(0, 1, 72),
            }
        )
        for i in range(60)
    ).to_csv(source, index=False)
    subprocess.run([BIN / "intentvision", "ingest", str(source), "--tenant", "acme"], env=env, check=True)

    def finished_run():
        runs = graphql(
            port,
            """{ runsOrError(filter: {pipelineName: "series_pipeline"}) {
                  ... on Runs { results { runId status } } } }""",
        )["runsOrError"]["results"]
        done = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
        return done[0] if done else None

    run = wait_for(finished_run, 300, "the landing sensor's run to finish", interval=3)
    assert run["status"] == "SUCCESS", json.dumps(run)
    wait_for(
        lambda: (
            not _processes_matching(run["runId"])
            and _processes_matching("multiprocessing.forkserver") <= forkservers_before
        ),
        90,
        "the run worker and its pool workers to exit",
        interval=1,
    )
