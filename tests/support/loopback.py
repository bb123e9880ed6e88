"""What the loopback stand-ins of SaaS APIs (Slack, TimeGPT) share: an HTTP server on a free 127.0.0.1 port in
a daemon thread, a queue of scripted faults for the next requests, and JSON answers."""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Fault = tuple[str] | tuple[str, float]


class LoopbackStandIn:
    """Context manager serving ``handler`` (a request handler class bound to this stand-in) on loopback.

    Subclasses set ``FAULTS`` (the fault names :meth:`fail_next` accepts) and answer requests themselves,
    taking each request's scripted fault from :meth:`_next_fault`.
    """

    FAULTS: tuple[str, ...] = ()

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._faults: deque[Fault] = deque()
        self._lock = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, *faults: Fault) -> None:
        """Queue faults for the next requests, e.g. ("429", retry_after_s), ("500",) or ("hang", seconds)."""
        self._check(faults)
        with self._lock:
            self._faults.extend(faults)

    def _check(self, faults: tuple[Fault, ...]) -> None:
        for fault in faults:
            if fault[0] not in self.FAULTS:
                raise ValueError(f"unknown fault {fault!r}: expected one of {self.FAULTS}")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None


def send_json(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: Any) -> None:
    """Write one JSON answer; a client that already gave up (timeout) is not an error of the stand-in."""
    payload = json.dumps(body).encode()
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass
