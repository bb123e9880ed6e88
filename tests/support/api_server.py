"""Run the real API over loopback HTTP for tests: in a thread (fast) or as an ``intentvision api`` process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from intentvision_dagster.api.app import create_app
from intentvision_dagster.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(
    base_url: str,
    timeout: float = 30.0,
    process: subprocess.Popen | None = None,
    path: str = "/healthz",
    what: str = "the API",
) -> None:
    """Wait until ``base_url + path`` answers 200 (the API's health check by default)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} process exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} at {base_url} did not become healthy in {timeout} s")


@contextmanager
def serving(
    command: list[str], log: Path, url: str, path: str, what: str, timeout: float, **popen: object
) -> Iterator[str]:
    """``command`` as a child process writing to ``log``; yields ``url`` once ``url + path`` answers 200.
    The process is stopped on the way out whatever happened (killed if SIGTERM has not ended it in 30 s)."""
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, **popen)
        try:
            wait_healthy(url, timeout, server, path=path, what=what)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@contextmanager
def api_in_thread(settings: Settings) -> Iterator[str]:
    """uvicorn serving ``create_app(settings)`` on a free loopback port here; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def start_api_process(home: Path, port: int, workers: int = 1, **env: str) -> subprocess.Popen:
    """``intentvision api`` as a child process against ``home`` (for SIGKILL and cross-process tests)."""
    environment = {**os.environ, "INTENTVISION_HOME": str(home), **env}
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "intentvision"),
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
