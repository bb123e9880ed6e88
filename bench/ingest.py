"""Ingest API benchmark (`make bench-ingest`): sustained samples/s through remote_write and JSON.

Starts `intentvision api` (uvicorn, ``--workers``) as its own process group on a free loopback port against a
scratch INTENTVISION_HOME and drives it from this process with concurrent keep-alive connections, batches of
1,000 samples (100 series x 10 samples by default; every request's (series, timestamp) pairs are new).
Phases, all in the same run:

  baseline    the same snappy bodies written to files with fsync + rename, no HTTP (a durable ack's floor)
  json        POST /v1/ingest
  remote      POST /api/v1/write
  sigkill     remote_write again, the whole API process group killed with SIGKILL half-way, restarted

Each HTTP phase reports samples/s, p50/p99 request latency and the lost-sample check: every acknowledged
sample must be in the landing area exactly once (counted from the Parquet files, without de-duplication).
Results go to bench/results/ingest-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cramjam
import duckdb
import httpx
import numpy as np

from intentvision_dagster.api.registry import Registry
from intentvision_dagster.landing import list_batches
from intentvision_dagster.remote_write_pb2 import WriteRequest
from intentvision_dagster.settings import load_settings

BATCH = 1000
RESULTS = Path(__file__).parent / "results"


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    requests_acked: int = 0
    requests_failed: int = 0
    samples_acked: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    acked_numbers: list[int] = field(default_factory=list)
    lost_acked_samples: int | None = None
    landed_unacked_requests: int | None = None

    def summary(self) -> dict:
        lat = np.array(self.latencies_ms) if self.latencies_ms else np.array([np.nan])
        out = {k: v for k, v in asdict(self).items() if k not in ("latencies_ms", "acked_numbers")}
        out.update(
            samples_per_s=round(self.samples_acked / self.seconds) if self.seconds else 0,
            p50_ms=round(float(np.percentile(lat, 50)), 2),
            p99_ms=round(float(np.percentile(lat, 99)), 2),
        )
        return out


class Bodies:
    """Request bodies with unique timestamps per request: request n covers seconds [n*10, n*10 + 10)."""

    def __init__(self, start_ms: int, metric: str, samples_per_series: int) -> None:
        self.start_ms, self.metric, self.samples_per_series = start_ms, metric, samples_per_series
        self._next = 0
        self._lock = threading.Lock()
        series = BATCH // samples_per_series
        self.labels = [{"instance": f"host-{i:04d}", "job": "bench"} for i in range(series)]

    def take(self) -> int:
        with self._lock:
            self._next += 1
            return self._next - 1

    def stamps(self, number: int) -> list[int]:
        per = self.samples_per_series
        return [self.start_ms + (number * per + i) * 1000 for i in range(per)]

    def remote_write(self, number: int) -> bytes:
        request = WriteRequest()
        stamps = self.stamps(number)
        for labels in self.labels:
            series = request.timeseries.add()
            series.labels.add(name="__name__", value=self.metric)
            for name, value in labels.items():
                series.labels.add(name=name, value=value)
            for i, stamp in enumerate(stamps):
                series.samples.add(value=float(number + i), timestamp=stamp)
        return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))

    def json(self, number: int) -> bytes:
        stamps = self.stamps(number)
        body = {
            "series": [
                {
                    "metric": self.metric,
                    "labels": labels,
                    "points": [
                        {"timestamp": s / 1000, "value": float(number + i)} for i, s in enumerate(stamps)
                    ],
                }
                for labels in self.labels
            ]
        }
        return json.dumps(body).encode()


class Server:
    """`intentvision api` in its own process group, so SIGKILL reaches the uvicorn supervisor and workers."""

    def __init__(self, home: Path, workers: int) -> None:
        self.home, self.workers = home, workers
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [str(Path(sys.executable).parent / "intentvision"), "api", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", str(self.workers)]
        env = {**os.environ, "INTENTVISION_HOME": str(self.home), "INTENTVISION_API_RATE_LIMIT": "1000000"}
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the API did not start within 60 s")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        os.killpg(self.process.pid, sig)
        self.process.wait(timeout=30)


def drive(
    server: Server,
    phase: Phase,
    path: str,
    make_body,
    headers: dict,
    seconds: float,
    connections: int,
    kill_at: float | None = None,
) -> None:
    """Send from ``connections`` threads for ``seconds``; optionally SIGKILL and restart at ``kill_at``."""
    stop = threading.Event()
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                number, content = make_body()
                began = time.perf_counter()
                try:
                    response = client.post(f"{server.url}{path}", content=content, headers=headers)
                    ok = response.status_code in (200, 204)
                except httpx.HTTPError:
                    ok = False
                elapsed = (time.perf_counter() - began) * 1000
                with lock:
                    if ok:
                        phase.acked_numbers.append(number)
                        phase.requests_acked += 1
                        phase.samples_acked += BATCH
                        phase.latencies_ms.append(elapsed)
                    else:
                        phase.requests_failed += 1
                if not ok:
                    time.sleep(0.05)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    if kill_at is not None:
        time.sleep(kill_at)
        server.kill()
        server.start()
        time.sleep(max(0.0, seconds - (time.perf_counter() - started)))
    else:
        time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    phase.seconds = time.perf_counter() - started


def check_landed(landing: Path, phase: Phase, bodies: Bodies) -> None:
    """Count each request's samples in every complete batch, without de-duplication: an acknowledged
    request must have all its samples exactly once; one in flight at a kill landed whole or not at all."""
    files = [
        str(f) for b in list_batches(landing) if bodies.metric in b.metrics for f in b.path.glob("*.parquet")
    ]
    span_ms = 1000 * bodies.samples_per_series
    query = (
        f"select (epoch_ms(ds::timestamp) - {int(bodies.start_ms)}) // {span_ms} as number, count(*)"
        " from read_parquet(?) where metric = ? group by 1"
    )
    counts = dict(duckdb.sql(query, params=[files, bodies.metric]).fetchall()) if files else {}
    acked = set(phase.acked_numbers)
    phase.lost_acked_samples = sum(BATCH - counts.get(n, 0) for n in acked)
    wrong = {n: c for n, c in counts.items() if c != BATCH}
    if wrong:
        raise AssertionError(f"{bodies.metric}: requests stored partly or twice: {list(wrong.items())[:5]}")
    phase.landed_unacked_requests = len(set(counts) - acked)


def baseline(home: Path, bodies: Bodies, seconds: float, connections: int) -> Phase:
    """The same compressed remote_write bodies written as files with fsync + rename + directory fsync, from
    ``connections`` threads: no HTTP and no decoding, the floor under a durable acknowledgement."""
    phase = Phase("baseline: fsync'd file per body")
    target = home / "baseline"
    target.mkdir()
    payloads = [bodies.remote_write(n) for n in range(20)]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def writer(index: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            tmp = target / f".tmp-{index}-{n}"
            with tmp.open("wb") as handle:
                handle.write(payloads[n % len(payloads)])
                handle.flush()
                os.fsync(handle.fileno())
            tmp.rename(target / f"{index}-{n}.bin")
            fd = os.open(target, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
            with lock:
                phase.latencies_ms.append((time.perf_counter() - began) * 1000)
                phase.requests_acked += 1
                phase.samples_acked += BATCH
            n += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    phase.seconds = time.perf_counter() - started
    return phase


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each HTTP phase")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--connections", type=int, default=8, help="concurrent client connections")
    parser.add_argument(
        "--prebuilt",
        type=int,
        default=3000,
        help="request bodies built before each timed phase, so the client's encoding does not compete",
    )
    parser.add_argument(
        "--samples-per-series",
        type=int,
        default=10,
        choices=[1, 10, 100, 1000],
        help="samples per series in a request (1: a scrape's shape, 1,000 series each with one sample)",
    )
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="intentvision-bench-ingest-"))
    settings = load_settings({"INTENTVISION_HOME": str(home)})
    settings.ensure_dirs()
    registry = Registry(settings.registry_path)
    registry.create_tenant("bench", "bench")
    key = registry.create_key("bench", ("ingest",), "bench").key
    auth = {"Authorization": f"Bearer {key}"}
    start_ms = (int(time.time()) - 30 * 86_400) * 1000
    rw_headers = {**auth, "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"}
    json_headers = {**auth, "Content-Type": "application/json"}
    plans = [
        (
            "json",
            "/v1/ingest",
            Bodies(start_ms, "bench_json_total", args.samples_per_series),
            "json",
            json_headers,
            None,
        ),
        (
            "remote_write",
            "/api/v1/write",
            Bodies(start_ms, "bench_remote_total", args.samples_per_series),
            "remote_write",
            rw_headers,
            None,
        ),
        (
            "remote_write + SIGKILL",
            "/api/v1/write",
            Bodies(start_ms, "bench_sigkill_total", args.samples_per_series),
            "remote_write",
            rw_headers,
            args.seconds / 2,
        ),
    ]

    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f} (shared machine)")
    phases = [baseline(home, plans[1][2], args.seconds / 2, args.connections)]
    server = Server(home, args.workers)
    server.start()
    try:
        for name, path, bodies, encoder, headers, kill_at in plans:
            encode = getattr(bodies, encoder)
            print(f"building {args.prebuilt} {name} bodies ahead of the timed phase ...", flush=True)
            ready = [(n, encode(n)) for n in (bodies.take() for _ in range(args.prebuilt))]
            ready.reverse()

            def make(ready=ready, bodies=bodies, encode=encode) -> tuple[int, bytes]:
                try:
                    return ready.pop()  # list.pop is atomic: safe from the sender threads
                except IndexError:  # ran out: build on the fly (the client then competes for CPU)
                    number = bodies.take()
                    return number, encode(number)

            phase = Phase(name)
            print(f"running {name} for {args.seconds:.0f} s ...", flush=True)
            drive(server, phase, path, make, headers, args.seconds, args.connections, kill_at)
            check_landed(settings.landing_dir, phase, bodies)
            phases.append(phase)
    finally:
        server.kill(signal.SIGTERM)
    summaries = [p.summary() for p in phases]
    rw = summaries[2]["samples_per_s"]
    print(
        f"\nbatches of {BATCH} samples ({BATCH // args.samples_per_series} series x "
        f"{args.samples_per_series}), "
        f"{args.connections} connections, {args.workers} uvicorn workers"
    )
    print(
        f"{'phase':<33}{'samples/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'acked':>13}{'failed req':>11}{'lost':>6}"
    )
    for s in summaries:
        lost = "" if s["lost_acked_samples"] is None else s["lost_acked_samples"]
        print(
            f"{s['name']:<33}{s['samples_per_s']:>11,}{s['p50_ms']:>9}{s['p99_ms']:>9}"
            f"{s['samples_acked']:>13,}{s['requests_failed']:>11}{lost!s:>6}"
        )
    print(f"remote_write vs JSON: {rw / max(1, summaries[1]['samples_per_s']):.2f}x the samples/s")
    print(f"remote_write vs fsync'd-file baseline: {rw / max(1, summaries[0]['samples_per_s']):.2f}x")
    print(
        "sigkill phase: requests landed whole but not acknowledged (in flight): "
        f"{summaries[3]['landed_unacked_requests']}"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"ingest-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"args": vars(args), "phases": summaries}, indent=2))
    print(f"wrote {out}")
    lost = sum(s["lost_acked_samples"] or 0 for s in summaries)
    if lost:
        sys.exit(f"LOST {lost} acknowledged samples")


if __name__ == "__main__":
    main()
