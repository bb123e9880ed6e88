"""A home folder on a small tmpfs filled to the last byte, to see how the product behaves on a full disk."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def full_mount(where: Path) -> Iterator[Callable[[], None]]:
    """Mount an 8 MiB tmpfs at ``where``; the yielded ``fill()`` then takes its last free byte.

    Skips when this machine does not let us mount (CI runs as root and can).
    """
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({mounted.stderr.strip()}); needs root")

    def fill() -> None:
        with (where / "ballast").open("wb", buffering=0) as ballast, contextlib.suppress(OSError):
            while True:
                ballast.write(b"\0" * 4096)

    try:
        yield fill
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
