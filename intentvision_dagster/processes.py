"""Naming a live process so that another process can later tell it died (pid reuse included).

Used for runs executed in process (a killed CLI run must not hold the queue) and for the warehouse writer's
intent marker (a killed writer must not keep API readers away forever).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22); None if it is gone.

    Comparing it, not only the pid, keeps a recycled pid from passing for the original process.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        # No /proc (not Linux): existence is all that can be checked.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def process_identity(pid: int | None = None) -> str:
    """``host:pid:start`` of this process (or of ``pid`` on this host)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or ''}"


def process_gone(identity: str, host: str | None = None) -> bool:
    """True when the process an identity names ran on ``host`` (default: this one) and no longer exists."""
    tag_host, pid, start = identity.rsplit(":", 2)
    if tag_host != (host or socket.gethostname()):
        return False  # another machine's process: not ours to judge
    current = _start_ticks(int(pid))
    return current is None or (bool(start) and bool(current) and current != start)
