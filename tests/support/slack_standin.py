"""A loopback stand-in for Slack's Web API, so tests exercise the real slack_sdk client over real HTTP.

It answers ``chat.postMessage``, ``conversations.history`` and ``auth.test`` the way Slack does (HTTP 200
with ``{"ok": false, "error": ...}`` for API errors), records accepted messages, and can be scripted with
faults for the next requests::

    with SlackStandIn(token="xoxb-test", channels={"#acme-alerts"}) as slack:
        slack.fail_next(("429", 1), ("500",), ("hang", 2.0))
        WebClient(token="xoxb-test", base_url=slack.url).chat_postMessage(channel="#acme-alerts", text="hi")
        assert slack.messages[0].text == "hi"

A ``hang`` sleeps and then answers normally (the message is recorded), like a slow Slack that accepted a post
the client had already given up on; :meth:`SlackStandIn.wait_idle` waits for such late answers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl

from tests.support.loopback import LoopbackStandIn, send_json


@dataclass(frozen=True)
class PostedMessage:
    channel: str
    text: str | None
    blocks: list[dict[str, Any]] | None
    metadata: dict[str, Any] | None = None
    ts: str = ""


@dataclass(frozen=True)
class Request:
    """One request as the stand-in saw it, including those answered with a fault."""

    method: str
    status: int
    error: str | None


class SlackStandIn(LoopbackStandIn):
    """Context manager running the stand-in on 127.0.0.1 on a free port, in a daemon thread."""

    FAULTS = ("429", "500", "hang")

    def __init__(self, token: str = "xoxb-test-token", channels: Iterable[str] | None = None) -> None:
        super().__init__(_handler_for(self))
        self.token = token
        self.channels = None if channels is None else set(channels)
        self._messages: list[PostedMessage] = []
        self._requests: list[Request] = []
        self._in_flight = 0

    @property
    def url(self) -> str:
        return f"{self.origin}/api/"

    @property
    def messages(self) -> list[PostedMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until no request is being answered (e.g. a hung one finished late)."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._in_flight == 0, timeout):
                raise TimeoutError(f"{self._in_flight} request(s) still in flight after {timeout} s")

    def _log(self, method: str, status: int, error: str | None, message: PostedMessage | None = None) -> None:
        with self._lock:
            self._requests.append(Request(method, status, error))
            if message is not None:
                self._messages.append(message)

    def _track(self, delta: int) -> None:
        with self._lock:
            self._in_flight += delta
            self._lock.notify_all()

    def answer(self, method: str, authorization: str | None, form: dict[str, Any]) -> tuple[int, dict, dict]:
        """Status, headers and JSON body for one request, after any scripted fault."""
        fault = self._next_fault()
        if fault is not None and fault[0] == "429":
            self._log(method, 429, "ratelimited")
            return 429, {"Retry-After": str(int(fault[1]))}, {"ok": False, "error": "ratelimited"}
        if fault is not None and fault[0] == "500":
            self._log(method, 500, "internal_error")
            return 500, {}, {"ok": False, "error": "internal_error"}
        if fault is not None:
            time.sleep(fault[1])
        if method not in ("chat.postMessage", "auth.test", "conversations.history"):
            self._log(method, 404, "unknown_method")
            return 404, {}, {"ok": False, "error": "unknown_method"}
        if authorization != f"Bearer {self.token}":
            self._log(method, 200, "invalid_auth")
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        if method == "auth.test":
            self._log(method, 200, None)
            body = {"ok": True, "url": "https://standin.slack.test/", "team": "IntentVision", "user": "bot"}
            return 200, {}, {**body, "team_id": "T0STANDIN", "user_id": "U0STANDIN", "bot_id": "B0STANDIN"}
        channel = form.get("channel")
        if method == "conversations.history":
            return self._history(channel, form)
        if not channel or (self.channels is not None and channel not in self.channels):
            self._log(method, 200, "channel_not_found")
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        blocks = form.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        text = form.get("text")
        if not text and not blocks:
            self._log(method, 200, "no_text")
            return 200, {}, {"ok": False, "error": "no_text"}
        metadata = form.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        ts = f"{time.time():.6f}"
        self._log(method, 200, None, PostedMessage(channel, text, blocks, metadata, ts))
        return 200, {}, {"ok": True, "channel": channel, "ts": ts, "message": {"text": text, "ts": ts}}

    def _history(self, channel: str | None, form: dict[str, Any]) -> tuple[int, dict, dict]:
        """The channel's messages since ``oldest``, newest first, with metadata on request."""
        if not channel or (self.channels is not None and channel not in self.channels):
            self._log("conversations.history", 200, "channel_not_found")
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        oldest = float(form.get("oldest") or 0)
        with_metadata = str(form.get("include_all_metadata")).lower() in ("1", "true")
        found = [
            {"type": "message", "text": message.text, "ts": message.ts}
            | ({"metadata": message.metadata} if with_metadata and message.metadata else {})
            for message in reversed(self.messages)
            if message.channel == channel and float(message.ts) >= oldest
        ]
        self._log("conversations.history", 200, None)
        return 200, {}, {"ok": True, "channel": channel, "messages": found, "has_more": False}


def _handler_for(standin: SlackStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            standin._track(+1)
            try:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8")
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    form = json.loads(raw or "{}")
                else:
                    form = dict(parse_qsl(raw))
                path, _, query = self.path.partition("?")
                form.update(parse_qsl(query))
                method = path.removeprefix("/api/")
                status, headers, body = standin.answer(method, self.headers.get("Authorization"), form)
                send_json(self, status, headers, body)
            finally:
                standin._track(-1)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler
