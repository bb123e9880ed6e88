"""The writer-first protocol: readers take turns and step aside while a live writer waits; a dead writer's
announcement does not keep them away."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from intentvision_dagster.processes import process_identity
from intentvision_dagster.warehouse import ReaderTurnTimeout, reader_turn, writer_intent, writer_waiting


def test_a_writer_is_announced_for_exactly_its_block(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    assert not writer_waiting(db)
    with writer_intent(db):
        assert writer_waiting(db)
        with pytest.raises(ReaderTurnTimeout), reader_turn(db, wait_seconds=0.1):
            pass
    assert not writer_waiting(db)
    with reader_turn(db, wait_seconds=0.1):
        pass


def test_a_dead_writers_announcement_is_dropped(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    identity = process_identity(child.pid)
    child.kill()
    child.wait()
    folder = tmp_path / ".warehouse.duckdb.writers"
    folder.mkdir()
    (folder / uuid.uuid4().hex).write_text(identity)
    assert not writer_waiting(db)
    assert list(folder.iterdir()) == []


def test_readers_take_turns(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    with reader_turn(db), pytest.raises(ReaderTurnTimeout), reader_turn(db, wait_seconds=0.1):
        pass
