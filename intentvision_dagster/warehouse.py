"""Small DuckDB helpers shared by the warehouse IO manager, the quarantine, the alert log and the sensors,
and the writer-first protocol that keeps API readers from locking a run out of the file.

DuckDB lets one process write a file and any number read it, but not both at once. A writer announces itself
(:func:`writer_intent`) before it opens the file; readers (:func:`reader_turn`) take turns one at a time and
step aside while a writer waits, so a stream of reads leaves gaps a writer's connect retries can use.
"""

import fcntl
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from intentvision_dagster.processes import process_gone, process_identity

SCHEMA = "intentvision"


def arrow_frame(relation: duckdb.DuckDBPyRelation) -> pd.DataFrame:
    """A DuckDB result as a pandas frame, through Arrow.

    About twice as fast as ``fetchdf`` and with one Python object per distinct string, so the tenant, metric,
    labels and unique_id columns of millions of rows cost a pointer per cell instead of a string per cell.
    """
    return relation.to_arrow_table().to_pandas(coerce_temporal_nanoseconds=True)


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All statements inside commit together or not at all."""
    conn.begin()
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def table_exists(conn: duckdb.DuckDBPyConnection, table: str, schema: str = SCHEMA) -> bool:
    """A table, or a view (a lake table read through DuckDB, see :mod:`~intentvision_dagster.lake`)."""
    # fetchall, not fetchone: a half-read result blocks the connection's next ``sql()`` call in DuckDB 2.
    [(count,)] = conn.execute(
        "select (select count(*) from duckdb_tables() where schema_name = $1 and table_name = $2)"
        " + (select count(*) from duckdb_views() where schema_name = $1 and view_name = $2)",
        [schema, table],
    ).fetchall()
    return count > 0


def _sidecar(database: str | Path, suffix: str) -> Path:
    """A hidden file or folder beside the database (``.warehouse.duckdb.writers``), never a copy target."""
    path = Path(database)
    return path.with_name(f".{path.name}.{suffix}")


@contextmanager
def writer_intent(database: str | Path) -> Iterator[None]:
    """Announce a writer for as long as it wants or holds ``database``; readers back off meanwhile.

    One marker file per writer (named by a fresh id, holding the writer's process identity), so overlapping
    writers never remove each other's marker, and a marker left by a killed writer is ignored.
    """
    folder = _sidecar(database, "writers")
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / uuid.uuid4().hex
    # Written aside and renamed in, so a reader never sees a half-written (empty) marker and drops it.
    staged = folder.with_name(f"{folder.name}.{marker.name}.tmp")
    staged.write_text(process_identity())
    staged.rename(marker)
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def writer_waiting(database: str | Path) -> bool:
    """True while a live process has announced it wants to write ``database``."""
    folder = _sidecar(database, "writers")
    if not folder.is_dir():
        return False
    for marker in folder.iterdir():
        try:
            identity = marker.read_text()
        except FileNotFoundError:
            continue  # its writer finished while we looked
        if identity and not process_gone(identity):
            return True
        marker.unlink(missing_ok=True)
    return False


class ReaderTurnTimeout(TimeoutError):
    """No turn to read came up in time: a writer is waiting or other readers hold the file."""


@contextmanager
def reader_turn(database: str | Path, wait_seconds: float = 2.0) -> Iterator[None]:
    """One reader at a time across processes, and none while a writer waits (:class:`ReaderTurnTimeout`).

    DuckDB holds its file lock while any connection of a process is open; readers that overlap keep it held
    without a gap, and a writer's connect fails until it gives up. Taking turns through an ``flock`` leaves a
    gap after every read, and checking :func:`writer_waiting` inside the turn lets a waiting writer in next.
    """
    lock_path = _sidecar(database, "readers")
    deadline = time.monotonic() + wait_seconds
    with lock_path.open("a") as handle:
        while True:
            if not writer_waiting(database):
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass
                else:
                    if not writer_waiting(database):
                        break
                    fcntl.flock(handle, fcntl.LOCK_UN)
            if time.monotonic() >= deadline:
                raise ReaderTurnTimeout(f"no turn to read {database} within {wait_seconds:g} s")
            time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
