"""A throwaway Postgres cluster (the Debian `postgresql` package `make postgres-server` installs) for the
distributed profile's tests; they skip without it.

The cluster lives in a fresh temporary folder, listens on a free loopback port (its socket in that folder
too), and is stopped and deleted when the block ends, whatever happened inside. Postgres refuses to run as
root, so as root (CI) every server command runs as the `postgres` system user through `runuser`.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.api_server import free_port

SKIP_REASON = "postgresql not installed: run `make postgres-server` (Debian package; CI does)"
SERVER_USER = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    db: str

    def dagster_env(self) -> dict[str, str]:
        """The ``DAGSTER_PG_*`` variables the distributed profile's ``dagster.yaml`` reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.db,
        }


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        pytest.skip(SKIP_REASON)
    return Path(found[-1]).parent


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser") is None:
        pytest.skip(f"running as root without `runuser` to start Postgres as {SERVER_USER}")
    return ["runuser", "-u", SERVER_USER, "--", *command]


def _run(command: list[str], env: dict[str, str] | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr or done.stdout}")


@contextmanager
def postgres_server(db: str = "dagster") -> Iterator[PostgresServer]:
    """A running cluster with password login for user ``intentvision`` and an empty database ``db``."""
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="intentvision-pg-"))
    data = root / "data"
    server = PostgresServer("127.0.0.1", free_port(), "intentvision", "throwaway-test-password", db)
    (root / "password").write_text(server.password)
    if os.geteuid() == 0:
        for path in (root, root / "password"):
            shutil.chown(path, SERVER_USER)
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
    try:
        _run(
            _as_server_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    f"--username={server.user}",
                    f"--pwfile={root / 'password'}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                ]
            )
        )
        options = f"-c listen_addresses={server.host} -p {server.port} -k {root} -c fsync=off"
        _run(_as_server_user([*pg_ctl, "-l", str(root / "server.log"), "-o", options, "-w", "start"]))
        _run(
            [str(bin_dir / "createdb"), "-h", server.host, "-p", str(server.port), "-U", server.user, db],
            env={**os.environ, "PGPASSWORD": server.password},
        )
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_server_user([*pg_ctl, "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
