"""Silences: "do not notify alerts matching these labels between these times" (Alertmanager's silences).

A silence belongs to one tenant and only ever mutes that tenant's alerts. Matchers use the alert's labels:
``alertname`` (the rule), ``tenant``, ``metric``, ``severity``, ``series`` and the series' own labels.
Expiring a silence ends it now; its row stays for the record.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import duckdb
import pandas as pd

from intentvision_dagster.alerting.log import utc_naive
from intentvision_dagster.alerting.matchers import Matcher, matches_all, parse_matcher
from intentvision_dagster.names import validate_tenant
from intentvision_dagster.warehouse import SCHEMA, transaction

TABLE = f"{SCHEMA}.alert_silences"
SILENCE_COLUMNS = ["id", "tenant", "matchers", "starts_at", "ends_at", "created_by", "comment", "created_at"]

_DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {TABLE} (
    id varchar primary key,
    tenant varchar not null,
    matchers varchar not null,
    starts_at timestamp not null,
    ends_at timestamp not null,
    created_by varchar not null,
    comment varchar not null,
    created_at timestamp not null
);
"""


def ensure_table(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(_DDL)


def create_silence(
    conn: duckdb.DuckDBPyConnection,
    tenant: str,
    matchers: list[str],
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    comment: str,
    now: datetime,
) -> dict:
    """Store a silence; refuses one without matchers (it would mute everything) or with an empty window."""
    validate_tenant(tenant)
    if not matchers:
        raise ValueError("a silence needs at least one matcher, e.g. alertname=disk-capacity")
    parsed = [str(parse_matcher(text)) for text in matchers]
    start, end = utc_naive(starts_at), utc_naive(ends_at)
    if end <= start:
        raise ValueError(f"silence ends at {end} which is not after its start {start}")
    if not comment.strip():
        raise ValueError("a silence needs a comment saying why (shown next to muted alerts)")
    row = {
        "id": uuid.uuid4().hex[:12],
        "tenant": tenant,
        "matchers": json.dumps(parsed),
        "starts_at": start,
        "ends_at": end,
        "created_by": created_by,
        "comment": comment,
        "created_at": utc_naive(now),
    }
    ensure_table(conn)
    with transaction(conn):
        conn.execute(
            f"insert into {TABLE} ({', '.join(SILENCE_COLUMNS)}) values ({', '.join('?' * len(row))})",
            list(row.values()),
        )
    return row


def list_silences(
    conn: duckdb.DuckDBPyConnection, tenant: str | None = None, active_at: datetime | None = None
) -> pd.DataFrame:
    """Silences, oldest first; with ``active_at`` only those in force at that moment."""
    ensure_table(conn)
    moment = None if active_at is None else utc_naive(active_at)
    return conn.execute(
        f"select {', '.join(SILENCE_COLUMNS)} from {TABLE} where (? is null or tenant = ?) "
        "and (?::timestamp is null or (starts_at <= ? and ? < ends_at)) order by created_at, id",
        [tenant, tenant, moment, moment, moment],
    ).df()


def expire_silence(conn: duckdb.DuckDBPyConnection, silence_id: str, now: datetime) -> dict:
    """End a silence now (a silence that has not started yet ends before it starts)."""
    ensure_table(conn)
    moment = utc_naive(now)
    with transaction(conn):
        rows = conn.execute(f"select tenant, ends_at from {TABLE} where id = ?", [silence_id]).fetchall()
        if not rows:
            raise KeyError(f"no silence with id {silence_id!r}")
        conn.execute(
            f"update {TABLE} set ends_at = least(ends_at, ?), starts_at = least(starts_at, ?) where id = ?",
            [moment, moment, silence_id],
        )
    return {"id": silence_id, "tenant": rows[0][0], "ends_at": min(pd.Timestamp(rows[0][1]), moment)}


def silencing(silences: pd.DataFrame, tenant: str, labels: dict[str, str]) -> str | None:
    """The id of the first of these (active) silences that mutes an alert of ``tenant`` with ``labels``."""
    for row in silences[silences["tenant"] == tenant].itertuples():
        matchers: list[Matcher] = [parse_matcher(text) for text in json.loads(row.matchers)]
        if matches_all(matchers, labels):
            return row.id
    return None
