"""End to end with the real daemon: a remote_write acknowledged by `intentvision api` becomes a Dagster run
within 30 s (landing sensor) and the run succeeds."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.remote_write import write_request_body
from tests.support.api_server import free_port, start_api_process, wait_healthy
from tests.test_e2e_dagster import BIN, dagster_services, graphql, raise_if_location_failed, wait_for

pytestmark = pytest.mark.slow
__all__ = ["dagster_services"]  # the fixture, imported for pytest


def test_an_acknowledged_remote_write_becomes_a_successful_run_within_30_s(dagster_services):
    port, env, _ = dagster_services
    home = env["INTENTVISION_HOME"]
    subprocess.run([BIN / "intentvision", "tenants", "create", "acme"], env=env, check=True)
    created = subprocess.run(
        [BIN / "intentvision", "keys", "create", "--tenant", "acme", "--scopes", "ingest", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    key = json.loads(created.stdout)["key"]

    def landing_sensor_ticked() -> bool:
        sensor = graphql(
            port,
            """{ sensorOrError(sensorSelector: {repositoryName: "__repository__",
                  repositoryLocationName: "intentvision", sensorName: "landing_sensor"}) {
                  ... on Sensor { sensorState { ticks(limit: 1) { status } } } } }""",
        )["sensorOrError"]
        if "sensorState" not in sensor:  # not found (yet): the location is loading, or it failed to
            raise_if_location_failed(port)
            return False
        return bool(sensor["sensorState"]["ticks"])

    # The 30 s promise starts once the daemon runs the sensor (it loads the code location first).
    wait_for(landing_sensor_ticked, 180, "the daemon's first landing sensor tick", interval=1)
    api_port = free_port()
    api = start_api_process(home, api_port)
    try:
        url = f"http://127.0.0.1:{api_port}"
        wait_healthy(url, process=api)
        end = pd.Timestamp.now(tz="UTC").floor("h")
        stamps = [int(t.timestamp() * 1000) for t in pd.date_range(end=end, periods=96, freq="h")]
        values = 40 + 10 * np.sin(np.arange(96) * 2 * np.pi / 24)
        body = write_request_body(
            [
                (
                    {"__name__": "node_cpu_utilization_percent", "host": "web-1"},
                    list(zip(values, stamps, strict=True)),
                )
            ]
        )
        response = httpx.post(
            f"{url}/api/v1/write",
            content=body,
            headers={"Authorization": f"Bearer {key}", "Content-Encoding": "snappy"},
        )
        assert response.status_code == 204, response.text
        acknowledged = time.monotonic()
    finally:
        api.terminate()
        api.wait(timeout=30)

    def runs():
        return graphql(
            port,
            """{ runsOrError(filter: {pipelineName: "series_pipeline"}) {
                  ... on Runs { results { runId status tags { key value } } } } }""",
        )["runsOrError"]["results"]

    wait_for(runs, 40, "the landing sensor to request a run", interval=1)
    assert time.monotonic() - acknowledged <= 31, "an acknowledged batch must become a run within 30 s"

    def finished():
        done = [r for r in runs() if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
        return done[0] if done else None

    run = wait_for(finished, 240, "the run to finish", interval=3)
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert run["status"] == "SUCCESS", json.dumps(run)
    assert (tags["dagster/partition"], tags["intentvision/tenant"]) == (
        "acme/node_cpu_utilization_percent",
        "acme",
    )
