"""A real Prometheus server (the Debian package `make prometheus-server` installs) for tests; they skip
without it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.support.api_server import free_port, serving


@contextmanager
def prometheus_server(root: Path, config: dict, *flags: str, port: int | None = None) -> Iterator[str]:
    """Prometheus with ``config`` (prometheus.yml as a dict) and extra command-line ``flags``, storing under
    ``root`` and listening on ``port`` (a free one by default); yields its base URL once it answers
    /-/ready. The log is ``root/prometheus.log``."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed: run `make prometheus-server` (Debian package; CI does)")
    port = port or free_port()
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    command = [
        binary,
        f"--config.file={root / 'prometheus.yml'}",
        f"--storage.tsdb.path={root / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        *flags,
    ]
    with serving(
        command, root / "prometheus.log", f"http://127.0.0.1:{port}", "/-/ready", "prometheus", 60.0
    ) as url:
        yield url
