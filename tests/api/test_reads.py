"""Reads go through short read-only DuckDB connections: filters work, a writing run is never blocked, and a
read during a run gets 503 + Retry-After instead of an error or a wait."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import duckdb
import httpx
import pytest

from tests.api.conftest import Api, make_api_home, seed_warehouse
from tests.support.api_server import api_in_thread

HOLD_WRITER = """
import duckdb, sys
conn = duckdb.connect(sys.argv[1])
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def reads_api(tmp_path_factory) -> Api:
    settings, registry, keys = make_api_home(tmp_path_factory.mktemp("reads-home"), api_rate_limit=10_000.0)
    seed_warehouse(settings.warehouse_path)
    with api_in_thread(settings) as url:
        yield Api(url, settings, registry, keys)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/alerts", {"unique_id": "acme/cpu"}, "query.unique_id"),
        ("/v1/accuracy", {"start": "2026-11-01T00:00:00Z"}, "query.start"),
        ("/v1/series", {"start": "0001-01-01T00:00:00+01:00"}, "query.start"),
        ("/v1/series", {"end": "9999-12-31T23:59:59-01:00"}, "query.end"),
    ],
    ids=["alerts-unique-id", "accuracy-start", "start-before-year-1", "end-after-9999"],
)
def test_a_filter_the_resource_cannot_apply_is_a_422_naming_it(reads_api: Api, path, params, field):
    response = httpx.get(f"{reads_api.url}{path}", params=params, headers=reads_api.headers("acme"))
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert error["value"] == next(iter(params.values())).replace("Z", "+00:00")
    assert response.json()["detail"].startswith(f"invalid request: {field}: ")


@pytest.mark.parametrize(
    ("params", "values"),
    [
        ({}, [1.0, 2.0, 3.0]),
        ({"metric": "cpu"}, [1.0, 2.0]),
        ({"unique_id": "acme/mem"}, [3.0]),
        ({"start": "2026-11-01T00:30:00Z"}, [2.0]),
        ({"end": "2026-11-01T02:00:00+02:00"}, [1.0, 3.0]),  # 00:00 UTC
        ({"limit": 1}, [1.0]),
    ],
)
def test_series_filters(reads_api: Api, params: dict, values: list[float]):
    response = httpx.get(f"{reads_api.url}/v1/series", headers=reads_api.headers("acme"), params=params)
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    assert [row["y"] for row in rows] == values
    assert rows[0]["ds"].startswith("2026-11-01T") and rows[0]["ds"].endswith("Z")


def test_tables_not_built_yet_read_as_empty(reads_api: Api):
    response = httpx.get(f"{reads_api.url}/v1/forecasts", headers=reads_api.headers("acme"))
    assert response.json() == {"tenant": "acme", "count": 0, "rows": []}


def test_a_read_during_a_writing_run_gets_503_and_never_blocks_the_writer(reads_api: Api):
    path = str(reads_api.settings.warehouse_path)
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        busy = httpx.get(f"{reads_api.url}/v1/series", headers=reads_api.headers("acme"))
        assert busy.status_code == 503
        assert busy.headers["Retry-After"] == "2"
        assert "a pipeline run is writing the warehouse" in busy.json()["detail"]
    finally:
        writer.communicate("", timeout=30)
    assert httpx.get(f"{reads_api.url}/v1/series", headers=reads_api.headers("acme")).status_code == 200
    # The read above closed its connection: a run can open the file for writing right away.
    opened = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({path!r}).execute('checkpoint')"], timeout=30
    )
    assert opened.returncode == 0


WRITE_THROUGH_RESOURCE = """
import sys, time
from intentvision_dagster.resources import WarehouseResource
started = time.monotonic()
with WarehouseResource(database=sys.argv[1]).get_connection() as conn:
    conn.execute("create table if not exists intentvision.written_by_a_run as select 1 as x")
print(round(time.monotonic() - started, 2), flush=True)
"""


@pytest.fixture(scope="module")
def slow_reads_api(tmp_path_factory) -> Api:
    """A warehouse big enough that one read takes a while, so six readers overlap without a gap."""
    settings, registry, keys = make_api_home(tmp_path_factory.mktemp("slow-home"), api_rate_limit=10_000.0)
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        conn.execute("create schema intentvision")
        conn.execute(
            "create table intentvision.validated_series as select 'acme' as tenant, 'cpu' as metric,"
            " '' as labels, 'acme/cpu' || (i % 1000)::varchar as unique_id,"
            " timestamp '2026-01-01' + to_seconds(i) as ds, random() as y from range(3000000) t(i)"
        )
    with api_in_thread(settings) as url:
        yield Api(url, settings, registry, keys)


def test_six_concurrent_readers_never_lock_out_a_writing_run(slow_reads_api: Api):
    reads_api = slow_reads_api
    stop = threading.Event()
    answers: list[int] = []

    def keep_reading() -> None:
        with httpx.Client(headers=reads_api.headers("acme")) as client:
            while not stop.is_set():
                answers.append(client.get(f"{reads_api.url}/v1/series").status_code)

    readers = [threading.Thread(target=keep_reading) for _ in range(6)]
    for reader in readers:
        reader.start()
    try:
        time.sleep(1.0)  # the readers are in full flow before the run wants the file
        run = subprocess.run(
            [sys.executable, "-c", WRITE_THROUGH_RESOURCE, str(reads_api.settings.warehouse_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert run.returncode == 0, run.stderr[-2000:]
    assert float(run.stdout) < 10, f"the writer waited {run.stdout.strip()} s for the readers"
    assert set(answers) <= {200, 503} and answers.count(200) > 0


def test_no_warehouse_yet_reads_as_empty(tmp_path):
    settings, _, keys = make_api_home(tmp_path / "home")
    with api_in_thread(settings) as url:
        response = httpx.get(f"{url}/v1/anomalies", headers={"Authorization": f"Bearer {keys['acme:read']}"})
    assert response.json() == {"tenant": "acme", "count": 0, "rows": []}


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "query.limit"), ({"start": "yesterday"}, "query.start")],
)
def test_bad_query_parameters_are_named_in_our_error_format(reads_api: Api, params: dict, field: str):
    response = httpx.get(f"{reads_api.url}/v1/series", headers=reads_api.headers("acme"), params=params)
    assert response.status_code == 422
    body = response.json()
    assert body["detail"].startswith(f"invalid request: {field}: ")
    assert body["errors"][0]["field"] == field


def test_openapi_docs_list_every_endpoint(reads_api: Api):
    assert httpx.get(f"{reads_api.url}/docs").status_code == 200
    paths = httpx.get(f"{reads_api.url}/openapi.json").json()["paths"]
    assert set(paths) == {
        "/v1/ingest",
        "/api/v1/write",
        "/api/v2/series",
        "/v1/series",
        "/v1/forecasts",
        "/v1/anomalies",
        "/v1/accuracy",
        "/v1/alerts",
        "/v1/keys",
        "/v1/keys/{key_id}",
        "/v1/audit",
    }
