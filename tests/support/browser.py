"""Headless Chromium (the Debian package `make chromium` installs) driven over the Chrome DevTools Protocol,
for tests that look at the Dagster UI as a person does; they skip without it.

The protocol is JSON over one websocket (the `websockets` client the webserver's stack already installs), so
the tests need no browser-automation dependency: navigate, evaluate JavaScript in the page, capture a PNG.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect


class Page:
    """One browser tab: a DevTools Protocol session on its websocket."""

    def __init__(self, socket: ClientConnection, timeout: float) -> None:
        self._socket = socket
        self._timeout = timeout
        self._next_id = 0

    def call(self, method: str, **params: Any) -> dict:
        """Send one command and return its result; the events the browser sends meanwhile are skipped."""
        self._next_id += 1
        self._socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        deadline = time.monotonic() + self._timeout
        while True:
            message = json.loads(self._socket.recv(timeout=max(deadline - time.monotonic(), 0.001)))
            if message.get("id") != self._next_id:
                continue
            if "error" in message:
                raise RuntimeError(f"{method}: {message['error']}")
            return message["result"]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable values only)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float = 30.0) -> Any:
        """Poll ``expression`` until it is truthy (the React app renders after its GraphQL answers)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        text = self.evaluate("document.body ? document.body.innerText : ''") or ""
        raise AssertionError(
            f"timed out after {timeout:.0f} s waiting for {what}; the page shows:\n{text[:3000]}"
        )

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'", f"{url} to load")

    def text(self) -> str:
        return self.evaluate("document.body.innerText")

    def screenshot(self, path: Path) -> bytes:
        """The viewport as a PNG, written to ``path``."""
        png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(png)
        return png


def _devtools_port(profile: Path, process: subprocess.Popen, timeout: float) -> int:
    """The port Chromium picked for ``--remote-debugging-port=0``: the first line of DevToolsActivePort."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode} before opening DevTools")
        if marker.is_file() and marker.read_text().strip():
            return int(marker.read_text().split()[0])
        time.sleep(0.1)
    raise TimeoutError(f"chromium opened no DevTools port in {timeout} s")


def require_chromium() -> str:
    """The chromium binary, or skip the test naming the make target that installs it."""
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("chromium not installed: run `make chromium` (Debian package; CI does)")
    return binary


@contextmanager
def headless_chromium(
    root: Path, width: int = 1440, height: int = 1000, timeout: float = 60.0
) -> Iterator[Page]:
    """A headless Chromium with its profile and log (``chromium.log``) under ``root``; yields its first tab.
    Chromium and every process it started are stopped on the way out, whatever happened."""
    binary = require_chromium()
    profile = root / "chromium-profile"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "DevToolsActivePort").unlink(missing_ok=True)  # a previous browser's port
    with (root / "chromium.log").open("w") as log:
        browser = subprocess.Popen(
            [
                binary,
                "--headless=new",
                # The sandbox refuses to run as root (CI) and in most containers; it only loads loopback.
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its renderer and GPU processes share the group, stopped together below
        )
        try:
            port = _devtools_port(profile, browser, timeout)
            [tab] = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"]
            with connect(tab["webSocketDebuggerUrl"], max_size=None, open_timeout=timeout) as socket:
                page = Page(socket, timeout)
                page.call(
                    "Emulation.setDeviceMetricsOverride",
                    width=width,
                    height=height,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                yield page
        finally:
            _signal_group(browser.pid, signal.SIGTERM)
            try:
                browser.wait(timeout=20)
            finally:
                _signal_group(browser.pid, signal.SIGKILL)  # whatever of its group is still there
                browser.wait()


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is gone already
        os.killpg(group, signum)
