"""A process named by host, pid and start time can be told dead later, even if its pid is reused."""

import os
import socket
import subprocess
import sys

from intentvision_dagster.processes import process_gone, process_identity


def test_a_live_process_is_not_gone_and_a_dead_one_is() -> None:
    assert not process_gone(process_identity())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        identity = process_identity(child.pid)
        assert not process_gone(identity)
    finally:
        child.kill()
        child.wait()
    assert process_gone(identity)


def test_a_recycled_pid_with_another_start_time_counts_as_gone() -> None:
    assert process_gone(f"{socket.gethostname()}:{os.getpid()}:1")


def test_another_hosts_process_is_never_judged() -> None:
    assert not process_gone("some-other-host:1:1")
