"""Tenant-scoped reads of the warehouse for the API: read-only DuckDB connections that never block a run.

DuckDB lets one process write a file; while a Dagster run holds it, a read-only open fails with a lock error.
Reads take turns and step aside while a writer waits (:func:`~intentvision_dagster.warehouse.reader_turn`),
so concurrent readers never hold the file without a gap; a read that gets no turn, or finds the file locked
after brief retries, tells the client to come back (:class:`WarehouseBusy` -> 503 + Retry-After).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from intentvision_dagster.errors import UnavailableError
from intentvision_dagster.warehouse import SCHEMA, ReaderTurnTimeout, reader_turn, table_exists


@dataclass(frozen=True)
class Table:
    name: str
    time_column: str | None
    order: str
    has_unique_id: bool = True
    json_columns: tuple[str, ...] = ()
    """Columns the writers fill with ``json.dumps`` text; a response carries them as JSON values, so clients
    do not have to parse JSON inside JSON."""


READABLE = {
    "series": Table("validated_series", "ds", "unique_id, ds"),
    "forecasts": Table("forecasts", "ds", "unique_id, ds"),
    "anomalies": Table("anomalies", "ds", "unique_id, ds"),
    "accuracy": Table("forecast_accuracy", None, "unique_id", json_columns=("candidate_scores",)),
    "alerts": Table(
        "alert_log", "created_at", "created_at desc, id", has_unique_id=False, json_columns=("details",)
    ),
}
"""API resource -> warehouse table; every one has a ``tenant`` column, and every query filters on it."""

OPEN_ATTEMPTS = 5
OPEN_BACKOFF_SECONDS = 0.05


class WarehouseBusy(UnavailableError, RuntimeError):
    """A run is writing the warehouse right now; the client should retry shortly."""

    retry_after = 2


def read_rows(
    warehouse: Path,
    resource: str,
    tenant: str,
    metric: str | None = None,
    unique_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 10_000,
) -> list[dict]:
    """Rows of one tenant from the table behind ``resource``, newest filters applied, at most ``limit``."""
    table = READABLE[resource]
    if not Path(warehouse).exists():
        return []
    where, params = ["tenant = ?"], [tenant]
    for column, value in (("metric", metric), ("unique_id", unique_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if table.time_column:
        if start is not None:
            where.append(f"{table.time_column} >= ?")
            params.append(start)
        if end is not None:
            where.append(f"{table.time_column} <= ?")
            params.append(end)
    sql = (
        f"select * from {SCHEMA}.{table.name} where {' and '.join(where)} "
        f"order by {table.order} limit {int(limit)}"
    )
    try:
        with reader_turn(warehouse):
            conn = _open_read_only(warehouse)
            try:
                if not table_exists(conn, table.name):
                    return []
                cursor = conn.execute(sql, params)
                names = [c[0] for c in cursor.description]
                rows = [dict(zip(names, map(_json_value, row), strict=True)) for row in cursor.fetchall()]
            finally:
                conn.close()
    except ReaderTurnTimeout:
        raise WarehouseBusy("a pipeline run is writing the warehouse; retry in a few seconds") from None
    for row in rows:
        for column in table.json_columns:
            if isinstance(row.get(column), str):
                # NaN or Infinity in the text becomes null: the response is strict JSON.
                row[column] = json.loads(row[column], parse_constant=lambda _: None)
    return rows


def _open_read_only(warehouse: Path) -> duckdb.DuckDBPyConnection:
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return duckdb.connect(str(warehouse), read_only=True)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if attempt + 1 < OPEN_ATTEMPTS:
                time.sleep(OPEN_BACKOFF_SECONDS * (attempt + 1))
    raise WarehouseBusy("a pipeline run is writing the warehouse; retry in a few seconds")


def utc_z(moment: datetime) -> str:
    """ISO 8601 with a ``Z``: the warehouse stores naive UTC, and a stamp without an offset would read as the
    client's local time."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return f"{moment.isoformat()}Z"


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return utc_z(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
