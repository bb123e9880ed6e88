"""SIGKILL of the API under load loses no acknowledged sample and never shows a half-written batch."""

from __future__ import annotations

import os
import signal
import threading
import time

import duckdb
import httpx
import pyarrow.parquet as pq
import pytest

from intentvision_dagster.landing import list_batches
from intentvision_dagster.remote_write import write_request_body
from tests.api.conftest import make_api_home, now_s
from tests.support.api_server import free_port, start_api_process, wait_healthy

pytestmark = pytest.mark.slow

SAMPLES_PER_REQUEST = 200
SENDERS = 4


class Sender(threading.Thread):
    """Sends numbered requests (remote_write and JSON alternately) until told to stop; records the acks."""

    def __init__(self, index: int, url: str, key: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.index, self.url, self.key, self.stop = index, url, key, stop
        self.acked: list[str] = []
        self.failed: list[str] = []

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        start_ms = (now_s() - 3600) * 1000
        number = 0
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set():
                request_id = f"{self.index}-{number}"
                stamps = [start_ms + 1000 * i for i in range(SAMPLES_PER_REQUEST)]
                try:
                    if number % 2:
                        body = {
                            "series": [
                                {
                                    "metric": "durability_probe",
                                    "labels": {"req": request_id},
                                    "points": [{"timestamp": s / 1000, "value": 1.0} for s in stamps],
                                }
                            ]
                        }
                        response = client.post(f"{self.url}/v1/ingest", headers=headers, json=body)
                    else:
                        content = write_request_body(
                            [
                                (
                                    {"__name__": "durability_probe", "req": request_id},
                                    [(1.0, s) for s in stamps],
                                )
                            ]
                        )
                        response = client.post(
                            f"{self.url}/api/v1/write",
                            headers={**headers, "Content-Encoding": "snappy"},
                            content=content,
                        )
                    (self.acked if response.status_code in (200, 204) else self.failed).append(request_id)
                except httpx.HTTPError:
                    self.failed.append(request_id)
                    time.sleep(0.05)
                number += 1


def test_sigkill_under_load_loses_no_acknowledged_sample(tmp_path):
    settings, _, keys = make_api_home(tmp_path / "home", api_rate_limit=100_000.0)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_api_process(settings.home, port)
    wait_healthy(url, process=server)
    stop = threading.Event()
    senders = [Sender(i, url, keys["acme:ingest"], stop) for i in range(SENDERS)]
    for sender in senders:
        sender.start()
    time.sleep(2.0)
    acked_before_kill = sum(len(s.acked) for s in senders)
    os.kill(server.pid, signal.SIGKILL)
    server.wait(timeout=10)
    time.sleep(0.5)
    server = start_api_process(settings.home, port)
    try:
        wait_healthy(url, process=server)
        time.sleep(1.5)
    finally:
        stop.set()
        for sender in senders:
            sender.join(timeout=10)
        server.terminate()
        server.wait(timeout=30)

    acked = {r for s in senders for r in s.acked}
    failed = {r for s in senders for r in s.failed}
    assert acked_before_kill > 0 and len(acked) > acked_before_kill, "load must run before and after the kill"
    assert failed, "the kill must interrupt requests in flight"

    files = [str(f) for b in list_batches(settings.landing_dir) for f in b.path.glob("*.parquet")]
    for file in files:
        pq.read_metadata(file)  # every visible file is complete
    counts = dict(
        duckdb.sql(
            'select regexp_extract(labels, \'req="([^"]+)"\', 1) as req, count(*) from read_parquet(?)'
            " group by req",
            params=[files],
        ).fetchall()
    )
    missing = [r for r in acked if counts.get(r) != SAMPLES_PER_REQUEST]
    assert missing == [], f"acknowledged requests not stored exactly once: {missing[:5]}"
    partial = {r: n for r, n in counts.items() if n != SAMPLES_PER_REQUEST}
    assert partial == {}, "a request is stored whole or not at all"
    assert set(counts) <= acked | failed
