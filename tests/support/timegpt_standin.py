"""A loopback stand-in for the TimeGPT HTTP API, so tests exercise the real ``nixtla.NixtlaClient`` over HTTP.

It answers the two endpoints ``NixtlaClient.forecast`` calls (nixtla 0.9):

- ``GET /model_params?model=...&freq=...`` -> ``{"detail": {"input_size": N, "horizon": H}}``
- ``POST /v2/forecast`` with ``{"series": {"y": [...], "sizes": [...]}, "h": H, "level": [...], ...}``
  (zstd-compressed when over 1 MB) -> ``{"mean": [...], "intervals": {"lo-80": [...], ...}}``

The "model" is a naive forecast (each series' last value) with intervals of +-z * the series' step std, so
tests can recognise TimeGPT output. A wrong ``Authorization`` header gets 401 like the real API. Faults for
the next requests can be scripted::

    with TimeGPTStandIn(api_key="nixak-test") as api:
        api.fail_next(("429", 1), ("503",), ("hang", 2.0))
        NixtlaClient(api_key="nixak-test", base_url=api.url, max_retries=1).forecast(df, h=24, freq="h")
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import zstandard

from tests.support.loopback import LoopbackStandIn, send_json

_Z = {80: 1.2816, 90: 1.6449, 95: 1.96, 99: 2.5758}


@dataclass(frozen=True)
class Request:
    """One request as the stand-in saw it, including those answered with a fault."""

    method: str
    path: str
    status: int


class TimeGPTStandIn(LoopbackStandIn):
    """Context manager running the stand-in on 127.0.0.1 on a free port, in a daemon thread."""

    FAULTS = ("401", "429", "500", "502", "503", "hang")

    def __init__(self, api_key: str = "nixak-test-key", input_size: int = 96, horizon: int = 48) -> None:
        super().__init__(_handler_for(self))
        self.api_key = api_key
        self.model_params = {"input_size": input_size, "horizon": horizon}
        self._requests: list[Request] = []

    @property
    def url(self) -> str:
        return self.origin

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def _log(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self._requests.append(Request(method, path, status))

    def answer(self, method: str, path: str, authorization: str | None, body: Any) -> tuple[int, dict, Any]:
        """Status, headers and JSON body for one request, after any scripted fault."""
        fault = self._next_fault()
        status, headers, payload = 200, {}, None
        if fault is not None and fault[0] == "hang":
            time.sleep(fault[1])
        elif fault is not None and fault[0] == "429":
            status, headers = 429, {"Retry-After": str(int(fault[1]))}
            payload = {"detail": "Too many requests"}
        elif fault is not None:
            status, payload = int(fault[0]), {"detail": f"stand-in fault {fault[0]}"}
        if payload is None and authorization != f"Bearer {self.api_key}":
            status, payload = 401, {"detail": "Invalid API key"}
        if payload is None and method == "GET" and path == "/model_params":
            payload = {"detail": self.model_params}
        elif payload is None and method == "POST" and path == "/v2/forecast":
            payload = {"data": naive_forecast(body)}
        elif payload is None:
            status, payload = 404, {"detail": "Not Found"}
        self._log(method, path, status)
        return status, headers, payload


def naive_forecast(body: dict[str, Any]) -> dict[str, Any]:
    """Last value per series, intervals of +-z * std of the series' one-step changes."""
    series, horizon = body["series"], int(body["h"])
    ends = np.cumsum(series["sizes"])
    values = np.asarray(series["y"], dtype="float64")
    mean, spread = [], []
    for start, end in zip(np.concatenate([[0], ends[:-1]]), ends, strict=True):
        y = values[start:end]
        mean.extend([float(y[-1])] * horizon)
        spread.extend([float(np.std(np.diff(y))) if len(y) > 2 else 0.0] * horizon)
    intervals = None
    if body.get("level"):
        intervals = {}
        for level in body["level"]:
            z = _Z.get(int(level), 1.96)
            intervals[f"lo-{level}"] = [m - z * s for m, s in zip(mean, spread, strict=True)]
            intervals[f"hi-{level}"] = [m + z * s for m, s in zip(mean, spread, strict=True)]
    return {"mean": mean, "intervals": intervals, "weights_x": None, "feature_contributions": None}


def _handler_for(standin: TimeGPTStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            body: Any = dict(parse_qsl(parts.query))
            length = int(self.headers.get("Content-Length") or 0)
            if method == "POST":
                raw = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "zstd":
                    raw = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
                body = json.loads(raw or b"{}")
            status, headers, payload = standin.answer(
                method, parts.path, self.headers.get("Authorization"), body
            )
            send_json(self, status, headers, payload)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler
