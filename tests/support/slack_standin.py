"""A loopback stand-in for Slack's Web API, so tests exercise the real slack_sdk client over real HTTP.

It answers ``chat.postMessage`` (top-level or, with ``thread_ts``, a reply in a thread), ``chat.update``,
``chat.getPermalink``, ``conversations.history``, ``conversations.replies`` and ``auth.test`` the way Slack
does (HTTP 200 with ``{"ok": false, "error": ...}`` for API errors such as ``invalid_auth``,
``channel_not_found``, ``message_not_found``, ``cant_update_message``, ``thread_not_found``), records every
request (:attr:`SlackStandIn.requests`) and the messages as they now stand (:attr:`SlackStandIn.messages`),
and can be scripted with faults for the next requests::

    with SlackStandIn(token="xoxb-test", channels={"#acme-alerts"}) as slack:
        slack.fail_next(("429", 1), ("500",), ("hang", 2.0))
        WebClient(token="xoxb-test", base_url=slack.url).chat_postMessage(channel="#acme-alerts", text="hi")
        assert slack.messages[0].text == "hi"

File uploads follow slack-sdk's ``files_upload_v2``: ``files.getUploadURLExternal`` hands out an upload URL on
the stand-in itself (``/upload/v1/<file id>``, where the bytes are POSTed without a token, as to
files.slack.com), and ``files.completeUploadExternal`` shares the uploaded files into a channel or a thread;
:attr:`SlackStandIn.files` holds what was shared, bytes included. :meth:`SlackStandIn.fail_on` scripts faults
for one method only (``"upload"`` names the upload URL), e.g. ``slack.fail_on("files.getUploadURLExternal",
("429", 1))``; the ``invalid_auth`` fault answers as Slack does for a revoked token.

A ``hang`` sleeps and then answers normally (the message is recorded), like a slow Slack that accepted a post
the client had already given up on; :meth:`SlackStandIn.wait_idle` waits for such late answers.
:meth:`SlackStandIn.delete` and :meth:`SlackStandIn.lock` act as a person who deletes a message, or a
workspace that forbids editing it: a later ``chat.update`` answers ``message_not_found`` /
``cant_update_message``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl

from tests.support.loopback import Fault, LoopbackStandIn, send_json

UPLOAD_PATH = "/upload/v1/"


@dataclass(frozen=True)
class PostedMessage:
    channel: str
    text: str | None
    blocks: list[dict[str, Any]] | None
    metadata: dict[str, Any] | None = None
    ts: str = ""
    thread_ts: str | None = None
    """The parent's ts for a reply in a thread; None for a top-level message."""
    edits: int = 0


@dataclass(frozen=True)
class Request:
    """One request as the stand-in saw it, including those answered with a fault."""

    method: str
    status: int
    error: str | None
    channel: str | None = None
    ts: str | None = None
    """The message the request posted (postMessage) or addressed (update, getPermalink, replies)."""
    thread_ts: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class SharedFile:
    """A file uploaded and shared by ``files.completeUploadExternal`` (``thread_ts``: the thread it is in)."""

    file_id: str
    filename: str
    title: str | None
    data: bytes
    channel: str | None
    thread_ts: str | None


class SlackStandIn(LoopbackStandIn):
    """Context manager running the stand-in on 127.0.0.1 on a free port, in a daemon thread."""

    FAULTS = ("429", "500", "hang", "invalid_auth")
    METHODS = (
        "auth.test",
        "chat.postMessage",
        "chat.update",
        "chat.getPermalink",
        "conversations.history",
        "conversations.replies",
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    )
    WORKSPACE_URL = "https://standin.slack.test/"

    def __init__(self, token: str = "xoxb-test-token", channels: Iterable[str] | None = None) -> None:
        super().__init__(_handler_for(self))
        self.token = token
        self.channels = None if channels is None else set(channels)
        self._messages: list[PostedMessage] = []
        self._requests: list[Request] = []
        self._in_flight = 0
        self._locked: set[str] = set()
        self._last_ts = 0.0
        self._method_faults: dict[str, deque[Fault]] = {}
        self._announced: dict[str, tuple[str, int]] = {}  # file id -> (filename, length)
        self._uploaded: dict[str, bytes] = {}
        self._files: list[SharedFile] = []

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

    @property
    def files(self) -> list[SharedFile]:
        """Files shared into channels and threads, in order."""
        with self._lock:
            return list(self._files)

    @property
    def top_level(self) -> list[PostedMessage]:
        """Messages posted to a channel, not in a thread."""
        return [message for message in self.messages if message.thread_ts is None]

    def replies(self, ts: str) -> list[PostedMessage]:
        """The replies in the thread of message ``ts``, oldest first."""
        return [message for message in self.messages if message.thread_ts == ts]

    def calls(self, *methods: str) -> list[Request]:
        """The accepted requests of these methods (all methods when none is given), in order."""
        return [r for r in self.requests if r.error is None and (not methods or r.method in methods)]

    def fail_on(self, method: str, *faults: Fault) -> None:
        """Queue faults for the next requests of ``method`` only (``"upload"``: the upload URL)."""
        self._check(faults)
        with self._lock:
            self._method_faults.setdefault(method, deque()).extend(faults)

    def drop_faults(self, method: str) -> int:
        """Forget the faults still queued for ``method``; returns how many were left (not hit)."""
        with self._lock:
            left = self._method_faults.pop(method, deque())
        return len(left)

    def _fault_for(self, method: str) -> Fault | None:
        with self._lock:
            queued = self._method_faults.get(method)
            if queued:
                return queued.popleft()
        return self._next_fault()

    def delete(self, ts: str) -> None:
        """A person deletes message ``ts`` (and Slack its thread): updates now answer message_not_found."""
        with self._lock:
            self._messages = [m for m in self._messages if ts not in (m.ts, m.thread_ts)]

    def lock(self, ts: str) -> None:
        """The workspace forbids editing message ``ts``: updates now answer cant_update_message."""
        with self._lock:
            self._locked.add(ts)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until no request is being answered (e.g. a hung one finished late)."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._in_flight == 0, timeout):
                raise TimeoutError(f"{self._in_flight} request(s) still in flight after {timeout} s")

    def _log(
        self, method: str, status: int, error: str | None, message: PostedMessage | None = None, **seen: Any
    ) -> None:
        with self._lock:
            self._requests.append(Request(method, status, error, **seen))
            if message is not None:
                self._messages.append(message)

    def _new_ts(self) -> str:
        """Slack's ts: seconds.microseconds, unique within a channel."""
        with self._lock:
            self._last_ts = max(time.time(), self._last_ts + 1e-6)
            return f"{self._last_ts:.6f}"

    def _find(self, channel: str, ts: str | None) -> PostedMessage | None:
        return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    def _error(self, method: str, error: str, **seen: Any) -> tuple[int, dict, dict]:
        self._log(method, 200, error, **seen)
        return 200, {}, {"ok": False, "error": error}

    def _track(self, delta: int) -> None:
        with self._lock:
            self._in_flight += delta
            self._lock.notify_all()

    def answer(self, method: str, authorization: str | None, form: dict[str, Any]) -> tuple[int, dict, dict]:
        """Status, headers and JSON body for one request, after any scripted fault."""
        faulted = self._faulted(method)
        if faulted is not None:
            return faulted
        if method not in self.METHODS:
            self._log(method, 404, "unknown_method")
            return 404, {}, {"ok": False, "error": "unknown_method"}
        if authorization != f"Bearer {self.token}":
            return self._error(method, "invalid_auth")
        if method == "files.getUploadURLExternal":
            return self._upload_url(form)
        if method == "files.completeUploadExternal":
            return self._complete_upload(form)
        if method == "auth.test":
            self._log(method, 200, None)
            body = {"ok": True, "url": self.WORKSPACE_URL, "team": "IntentVision", "user": "bot"}
            return 200, {}, {**body, "team_id": "T0STANDIN", "user_id": "U0STANDIN", "bot_id": "B0STANDIN"}
        channel = form.get("channel")
        if not channel or (self.channels is not None and channel not in self.channels):
            return self._error(method, "channel_not_found", channel=channel)
        if method == "conversations.history":
            return self._history(channel, form)
        if method == "conversations.replies":
            return self._replies(channel, form)
        if method == "chat.getPermalink":
            return self._permalink(channel, form.get("message_ts"))
        blocks = form.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        text = form.get("text")
        if not text and not blocks:
            return self._error(method, "no_text", channel=channel)
        if method == "chat.update":
            return self._update(channel, form.get("ts"), text, blocks)
        metadata = form.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        thread_ts = form.get("thread_ts") or None
        seen = {"channel": channel, "thread_ts": thread_ts, "text": text}
        if thread_ts is not None and self._find(channel, thread_ts) is None:
            return self._error(method, "thread_not_found", **seen)
        ts = self._new_ts()
        message = PostedMessage(channel, text, blocks, metadata, ts, thread_ts)
        self._log(method, 200, None, message, ts=ts, **seen)
        answer = {"text": text, "ts": ts} | ({"thread_ts": thread_ts} if thread_ts else {})
        return 200, {}, {"ok": True, "channel": channel, "ts": ts, "message": answer}

    def _faulted(self, method: str) -> tuple[int, dict, dict] | None:
        """The scripted fault's answer to this request, if any (a hang sleeps, then answers normally)."""
        fault = self._fault_for(method)
        if fault is None:
            return None
        if fault[0] == "429":
            self._log(method, 429, "ratelimited")
            return 429, {"Retry-After": str(int(fault[1]))}, {"ok": False, "error": "ratelimited"}
        if fault[0] == "500":
            self._log(method, 500, "internal_error")
            return 500, {}, {"ok": False, "error": "internal_error"}
        if fault[0] == "invalid_auth":
            return self._error(method, "invalid_auth")
        time.sleep(fault[1])
        return None

    def _upload_url(self, form: dict[str, Any]) -> tuple[int, dict, dict]:
        """files.getUploadURLExternal: a file id and the URL its bytes go to (on this stand-in)."""
        filename, length = form.get("filename"), form.get("length")
        if not filename or not str(length or "").isdigit():
            return self._error("files.getUploadURLExternal", "invalid_arguments")
        with self._lock:
            file_id = f"F{len(self._announced) + 1:08d}"
            self._announced[file_id] = (str(filename), int(length))
        self._log("files.getUploadURLExternal", 200, None)
        return 200, {}, {"ok": True, "file_id": file_id, "upload_url": f"{self.origin}{UPLOAD_PATH}{file_id}"}

    def receive_upload(self, file_id: str, data: bytes) -> tuple[int, dict, dict]:
        """The upload URL: the file's bytes, as many as announced (no token, as on files.slack.com)."""
        faulted = self._faulted("upload")
        if faulted is not None:
            return faulted
        announced = self._announced.get(file_id)
        if announced is None or announced[1] != len(data):
            self._log("upload", 400, "invalid_upload")
            return 400, {}, {"ok": False, "error": "invalid_upload"}
        with self._lock:
            self._uploaded[file_id] = data
        self._log("upload", 200, None)
        return 200, {}, {"ok": True}

    def _complete_upload(self, form: dict[str, Any]) -> tuple[int, dict, dict]:
        """files.completeUploadExternal: share uploaded files into ``channel_id`` (and ``thread_ts``)."""
        method = "files.completeUploadExternal"
        items = json.loads(form.get("files") or "[]")
        channel, thread_ts = form.get("channel_id") or None, form.get("thread_ts") or None
        seen = {"channel": channel, "thread_ts": thread_ts}
        if not items or any(item.get("id") not in self._uploaded for item in items):
            return self._error(method, "file_not_found", **seen)
        if channel is not None and self.channels is not None and channel not in self.channels:
            return self._error(method, "channel_not_found", **seen)
        if thread_ts is not None and self._find(str(channel), thread_ts) is None:
            return self._error(method, "thread_not_found", **seen)
        shared = [
            SharedFile(
                item["id"],
                self._announced[item["id"]][0],
                item.get("title"),
                self._uploaded[item["id"]],
                channel,
                thread_ts,
            )
            for item in items
        ]
        with self._lock:
            self._files.extend(shared)
            self._requests.append(Request(method, 200, None, **seen))
        answer = [
            {"id": f.file_id, "name": f.filename, "title": f.title, "size": len(f.data)} for f in shared
        ]
        return 200, {}, {"ok": True, "files": answer}

    def _update(
        self, channel: str, ts: str | None, text: str | None, blocks: list | None
    ) -> tuple[int, dict, dict]:
        """chat.update: replace the text and blocks of an existing message, keeping its ts and thread."""
        seen = {"channel": channel, "ts": ts, "text": text}
        with self._lock:
            found = self._find(channel, ts)
            if found is None:
                return self._error("chat.update", "message_not_found", **seen)
            if ts in self._locked:
                return self._error("chat.update", "cant_update_message", **seen)
            edited = dataclasses.replace(found, text=text, blocks=blocks, edits=found.edits + 1)
            self._messages[self._messages.index(found)] = edited
            self._requests.append(Request("chat.update", 200, None, **seen))
        return 200, {}, {"ok": True, "channel": channel, "ts": ts, "text": text, "message": {"text": text}}

    def _permalink(self, channel: str, ts: str | None) -> tuple[int, dict, dict]:
        """chat.getPermalink: Slack's https://<workspace>.slack.com/archives/<channel>/p<ts digits> form."""
        if self._find(channel, ts) is None:
            return self._error("chat.getPermalink", "message_not_found", channel=channel, ts=ts)
        self._log("chat.getPermalink", 200, None, channel=channel, ts=ts)
        link = f"{self.WORKSPACE_URL}archives/{channel.lstrip('#')}/p{str(ts).replace('.', '')}"
        return 200, {}, {"ok": True, "channel": channel, "permalink": link}

    def _replies(self, channel: str, form: dict[str, Any]) -> tuple[int, dict, dict]:
        """conversations.replies: the parent then its replies since ``oldest``, oldest first."""
        ts = form.get("ts")
        parent = self._find(channel, ts)
        if parent is None:
            return self._error("conversations.replies", "thread_not_found", channel=channel, ts=ts)
        oldest = float(form.get("oldest") or 0)
        thread = [parent, *(m for m in self.replies(str(ts)) if float(m.ts) >= oldest)]
        self._log("conversations.replies", 200, None, channel=channel, ts=ts)
        found = [_shown(message, form) for message in thread]
        return 200, {}, {"ok": True, "messages": found, "has_more": False}

    def _history(self, channel: str, form: dict[str, Any]) -> tuple[int, dict, dict]:
        """The channel's top-level messages since ``oldest``, newest first (replies stay in their threads)."""
        oldest = float(form.get("oldest") or 0)
        found = [
            _shown(message, form)
            for message in reversed(self.top_level)
            if message.channel == channel and float(message.ts) >= oldest
        ]
        self._log("conversations.history", 200, None, channel=channel)
        return 200, {}, {"ok": True, "channel": channel, "messages": found, "has_more": False}


def _shown(message: PostedMessage, form: dict[str, Any]) -> dict[str, Any]:
    """A message as history and replies list it, its metadata only with ``include_all_metadata``."""
    with_metadata = str(form.get("include_all_metadata")).lower() in ("1", "true")
    shown = {"type": "message", "text": message.text, "ts": message.ts}
    if message.thread_ts:
        shown["thread_ts"] = message.thread_ts
    if with_metadata and message.metadata:
        shown["metadata"] = message.metadata
    return shown


def _handler_for(standin: SlackStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            standin._track(+1)
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path.startswith(UPLOAD_PATH):
                    send_json(self, *standin.receive_upload(self.path.removeprefix(UPLOAD_PATH), body))
                    return
                raw = body.decode("utf-8")
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
