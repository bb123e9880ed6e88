"""The alert log: one DuckDB row per alert, the memory that makes at-least-once sensors deliver once.

An alert is inserted only when its dedup key is new and no alert for the same (tenant, rule, series) is still
open, so an ongoing problem raises one alert rather than one per nightly forecast. States:
``pending`` (not notified yet) -> ``delivered`` | ``failed`` (its group's notification was sent / failed)
-> ``resolved``. Alerts are notified in groups (:mod:`intentvision_dagster.alerting.dispatch`); ``group_id``,
``silence_id`` and ``inhibited_by`` say which group an alert is in and what suppresses it. When its condition
clears, a notified alert resolves; one never notified gets ``cleared_at`` and resolves after its first
notification, so a problem that started and ended between two evaluations is still reported once.
Times are naive UTC timestamps; ``updated_at`` is the time of the last state change (resolve, failure).

An incident (one episode of a group, from its first notification to its resolve) is one Slack message.
``alert_messages`` remembers, per incident, where that message is (channel id and ts, or the outbox line), so
escalations, updates and the resolve edit it and reply in its thread after any restart; each alert's
``incident_id`` says which incident's message announced it last, so an alert routed to another channel can
link back to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from intentvision_dagster.severity import SEVERITY_RANK
from intentvision_dagster.warehouse import SCHEMA, transaction

TABLE = f"{SCHEMA}.alert_log"
MESSAGES = f"{SCHEMA}.alert_messages"
OPEN_STATES = ("pending", "delivered", "failed")
ALERT_STATES = (*OPEN_STATES, "resolved")
ALERT_COLUMNS = [
    "id",
    "tenant",
    "metric",
    "series",
    "rule",
    "severity",
    "state",
    "dedup_key",
    "summary",
    "details",
    "created_at",
    "delivered_at",
    "updated_at",
    "attempts",
    "destination",
    "last_error",
    "labels",
    "group_id",
    "silence_id",
    "inhibited_by",
    "cleared_at",
    "incident_id",
]
_OPEN = "state in ('pending', 'delivered', 'failed')"

_DDL = f"""
create schema if not exists intentvision;
create table if not exists {TABLE} (
    id varchar primary key,
    tenant varchar not null,
    metric varchar not null,
    series varchar not null,
    rule varchar not null,
    severity varchar not null,
    state varchar not null check (state in ('pending', 'delivered', 'failed', 'resolved')),
    dedup_key varchar not null unique,
    summary varchar not null,
    details varchar,
    created_at timestamp not null,
    delivered_at timestamp,
    updated_at timestamp not null,
    attempts integer not null default 0,
    destination varchar,
    last_error varchar
);
alter table {TABLE} add column if not exists labels varchar;
alter table {TABLE} add column if not exists group_id varchar;
alter table {TABLE} add column if not exists silence_id varchar;
alter table {TABLE} add column if not exists inhibited_by varchar;
alter table {TABLE} add column if not exists cleared_at timestamp;
alter table {TABLE} add column if not exists incident_id varchar;
create table if not exists {MESSAGES} (
    incident_id varchar primary key, tenant varchar not null, group_id varchar not null,
    destination varchar not null, channel varchar, channel_id varchar, ts varchar not null,
    posted_at timestamp not null, reposts integer not null default 0
);
"""


def utc_naive(now: datetime) -> pd.Timestamp:
    """Naive UTC, how every alerting table stores time (an aware time is converted)."""
    stamp = pd.Timestamp(now)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp


def ensure_table(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the schema and table on first use, so a fresh warehouse needs no migration step."""
    conn.execute(_DDL)


def _select(
    conn: duckdb.DuckDBPyConnection,
    where: str,
    params: list,
    order: str = "created_at, rowid",
    limit: int | None = None,
) -> pd.DataFrame:
    """Alerts matching ``where``, in ``order``; ``limit`` None means all (DuckDB's ``limit null``)."""
    ensure_table(conn)
    columns = ", ".join(ALERT_COLUMNS)
    return conn.execute(
        f"select {columns} from {TABLE} where {where} order by {order} limit ?", [*params, limit]
    ).df()


def _statuses(candidates: pd.DataFrame) -> pd.Series:
    """A candidate without a status (older callers) is firing."""
    if "status" not in candidates.columns:
        return pd.Series("firing", index=candidates.index)
    return candidates["status"].fillna("firing")


def record(conn: duckdb.DuckDBPyConnection, candidates: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Insert the candidates that are new problems; returns the inserted alerts (state ``pending``).

    ``holding`` candidates never open an alert; ``ended`` ones are inserted already cleared.
    """
    ensure_table(conn)
    if candidates.empty:
        return _select(conn, "false", [])
    status = _statuses(candidates)
    batch = candidates[status != "holding"].assign(_ended=status[status != "holding"] == "ended")
    # Within one batch, keep the first candidate per key and per ongoing problem, as the table would.
    batch = batch.drop_duplicates("dedup_key").drop_duplicates(["tenant", "rule", "series"])
    batch = batch.assign(id=[uuid.uuid4().hex[:12] for _ in range(len(batch))], created_at=utc_naive(now))
    if "labels" not in batch.columns:
        batch = batch.assign(labels="")
    with transaction(conn):
        conn.register("alert_candidates", batch)
        try:
            conn.execute(
                f"""
                insert into {TABLE} (id, tenant, metric, series, rule, severity, state, dedup_key, summary,
                                     details, created_at, updated_at, attempts, labels, cleared_at)
                select c.id, c.tenant, c.metric, c.series, c.rule, c.severity, 'pending', c.dedup_key,
                       c.summary, c.details, c.created_at, c.created_at, 0, c.labels,
                       case when c._ended then c.created_at end
                from alert_candidates c
                where not exists (select 1 from {TABLE} a where a.dedup_key = c.dedup_key)
                  and not exists (
                      select 1 from {TABLE} a
                      where a.tenant = c.tenant and a.rule = c.rule and a.series = c.series and a.{_OPEN}
                  )
                """
            )
        finally:
            conn.unregister("alert_candidates")
    return alerts_by_id(conn, batch["id"].tolist())


def update_open(conn: duckdb.DuckDBPyConnection, candidates: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Carry fresh evaluations onto the open alerts they describe: severity (with hysteresis), text, clearing.

    An open alert at severity p, evaluated firing at f (0 when not firing) and not recovered up to h, moves to
    ``max(f, min(p, h))``: it escalates at once, de-escalates only past the recovery level. An ``ended``
    candidate clears its alert. Returns the open alerts whose severity changed.
    """
    ensure_table(conn)
    if candidates.empty:
        return _select(conn, "false", [])
    status = _statuses(candidates)
    fresh = candidates.assign(
        _firing=status.eq("firing").astype(int)
        * candidates["severity"].map(SEVERITY_RANK).fillna(0).astype(int),
        _hold=candidates.get("hold_severity", candidates["severity"])
        .map(SEVERITY_RANK)
        .fillna(0)
        .astype(int),
        _ended=status.eq("ended"),
    ).drop_duplicates(["tenant", "rule", "series"])
    columns = ["tenant", "rule", "series", "summary", "details", "_firing", "_hold", "_ended"]
    with transaction(conn):
        conn.register("alert_updates", fresh[columns])
        try:
            moves = conn.execute(
                f"""
                with ranks(name, value) as (values ('info', 1), ('warning', 2), ('critical', 3)),
                ranked as (
                    select a.id, a.severity as old_severity, a.cleared_at as old_cleared, u.summary,
                           u.details, u._ended, greatest(u._firing, least(r.value, u._hold)) as new_rank
                    from {TABLE} a
                    join alert_updates u using (tenant, rule, series)
                    join ranks r on r.name = a.severity
                    where a.{_OPEN}
                )
                select id, old_severity, summary, details,
                       coalesce((select name from ranks where value = new_rank), old_severity) as severity,
                       case when _ended or new_rank = 0 then coalesce(old_cleared, ?::timestamp) end
                           as cleared_at
                from ranked
                """,
                [utc_naive(now)],
            ).df()
        finally:
            conn.unregister("alert_updates")
        conn.register("alert_moves", moves)
        try:
            conn.execute(
                f"""
                update {TABLE} set severity = m.severity, summary = m.summary, details = m.details,
                                   cleared_at = m.cleared_at
                from alert_moves m where {TABLE}.id = m.id
                """
            )
        finally:
            conn.unregister("alert_moves")
    moved = moves[moves["old_severity"] != moves["severity"]]
    return alerts_by_id(conn, moved["id"].tolist())


def resolve_missing(
    conn: duckdb.DuckDBPyConnection,
    tenant: str,
    metric: str,
    rules_evaluated: Iterable[str],
    firing_series: Iterable[str],
    now: datetime,
) -> pd.DataFrame:
    """Clear this tenant+metric's open alerts of the evaluated rules whose series stopped firing.

    Only rules that were evaluated are touched, so a partial evaluation never resolves another rule's alerts.
    A notified (``delivered``) alert resolves now; one not notified yet is marked cleared and resolves once
    its group has been notified (see :func:`resolve_cleared`). Returns the alerts it touched, as they are now.
    """
    ensure_table(conn)
    where = (
        "tenant = ? and metric = ? and list_contains(?::varchar[], rule)"
        f" and not list_contains(?::varchar[], series) and {_OPEN}"
    )
    params = [tenant, metric, list(rules_evaluated), list(firing_series)]
    with transaction(conn):
        touched = _select(conn, where, params)
        conn.execute(
            f"update {TABLE} set cleared_at = coalesce(cleared_at, ?) where list_contains(?::varchar[], id)",
            [utc_naive(now), touched["id"].tolist()],
        )
    resolve_cleared(conn, now)
    return alerts_by_id(conn, touched["id"].tolist())


def resolve_cleared(conn: duckdb.DuckDBPyConnection, now: datetime, max_attempts: int = 5) -> pd.DataFrame:
    """Resolve cleared alerts that were notified, are suppressed (silence, inhibition) or gave up sending."""
    ensure_table(conn)
    where = (
        f"cleared_at is not null and {_OPEN} and (state = 'delivered' or silence_id is not null"
        " or inhibited_by is not null or (state = 'failed' and attempts >= ?))"
    )
    with transaction(conn):
        resolved = _select(conn, where, [max_attempts])
        conn.execute(
            f"update {TABLE} set state = 'resolved', updated_at = ? where list_contains(?::varchar[], id)",
            [utc_naive(now), resolved["id"].tolist()],
        )
    return resolved.assign(state="resolved", updated_at=utc_naive(now))


def _update(
    conn: duckdb.DuckDBPyConnection, alert_ids: list[str], assignments: str, where: str, params: list, now
) -> int:
    """One UPDATE statement (atomic on its own, and part of the caller's transaction if one is open)."""
    ensure_table(conn)
    (count,) = conn.execute(
        f"update {TABLE} set {assignments}, updated_at = ? where list_contains(?::varchar[], id) and {where}",
        [*params, utc_naive(now), alert_ids],
    ).fetchone()
    return count


def mark_delivered(
    conn: duckdb.DuckDBPyConnection,
    alert_ids: list[str],
    destination: str,
    now: datetime,
    incident_id: str | None = None,
) -> int:
    """Record that a notification announcing these alerts was sent (as part of ``incident_id``'s message);
    resolved alerts stay resolved."""
    return _update(
        conn,
        alert_ids,
        "state = 'delivered', delivered_at = ?, destination = ?, attempts = attempts + 1, last_error = null, "
        "incident_id = coalesce(?, incident_id)",
        "state != 'resolved'",
        [utc_naive(now), destination, incident_id],
        now,
    )


@dataclass(frozen=True)
class IncidentMessage:
    """Where an incident's one message is: Slack's channel id and ts, or (outbox) the posting line's id."""

    incident_id: str
    channel: str | None
    channel_id: str | None
    ts: str
    destination: str


def record_message(
    conn: duckdb.DuckDBPyConnection,
    incident_id: str,
    tenant: str,
    group_id: str,
    channel: str | None,
    where: tuple[str, str | None, str],
    now: datetime,
) -> None:
    """Remember the incident's message (``where`` = destination, channel id, ts); a repost replaces it.

    Idempotent: recording the same message twice changes nothing, so a repeated delivery pass is harmless.
    """
    ensure_table(conn)
    destination, channel_id, ts = where
    conn.execute(
        f"""
        insert into {MESSAGES} (incident_id, tenant, group_id, channel, channel_id, ts, destination,
                                posted_at)
        values (?, ?, ?, ?, ?, ?, ?, ?)
        on conflict (incident_id) do update set
            reposts = reposts + case when ts = excluded.ts then 0 else 1 end,
            channel_id = excluded.channel_id, ts = excluded.ts, destination = excluded.destination,
            posted_at = excluded.posted_at
        """,
        [incident_id, tenant, group_id, channel, channel_id, ts, destination, utc_naive(now)],
    )


def incident_messages(
    conn: duckdb.DuckDBPyConnection, incident_ids: Iterable[str]
) -> dict[str, IncidentMessage]:
    """The recorded message of each of these incidents that has one."""
    ensure_table(conn)
    rows = conn.execute(
        f"select incident_id, channel, channel_id, ts, destination from {MESSAGES} "
        "where list_contains(?::varchar[], incident_id)",
        [sorted({i for i in incident_ids if isinstance(i, str)})],
    ).fetchall()
    return {row[0]: IncidentMessage(*row) for row in rows}


def other_incidents(conn: duckdb.DuckDBPyConnection, alert_ids: list[str], incident_id: str) -> list[str]:
    """Other incidents whose messages announced these alerts last, oldest alert first: before a post that
    continues them in another channel, the earlier message; after it, the later one."""
    found = _select(conn, "list_contains(?::varchar[], id) and incident_id != ?", [alert_ids, incident_id])
    return list(dict.fromkeys(found["incident_id"]))


def mark_failed(conn: duckdb.DuckDBPyConnection, alert_ids: list[str], error: str, now: datetime) -> int:
    """Record a failed notification on alerts not yet delivered (its retry is the notification's)."""
    return _update(
        conn,
        alert_ids,
        "state = 'failed', attempts = attempts + 1, last_error = ?",
        "state in ('pending', 'failed')",
        [error],
        now,
    )


def open_alerts(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Alerts not resolved yet, every tenant's: what dispatch works on each tick."""
    return _select(conn, _OPEN, [])


def alerts_by_id(conn: duckdb.DuckDBPyConnection, alert_ids: list[str]) -> pd.DataFrame:
    return _select(conn, "list_contains(?::varchar[], id)", [alert_ids])


def list_alerts(conn: duckdb.DuckDBPyConnection, tenant: str | None = None) -> pd.DataFrame:
    """Every alert (optionally one tenant's), oldest first: the demo summary, previews and tests read it."""
    return _select(conn, "? is null or tenant = ?", [tenant, tenant])


@dataclass(frozen=True)
class AlertPage:
    """The newest matching alerts, and how many matched in all (so a cut list can say what it left out)."""

    alerts: pd.DataFrame
    total: int

    @property
    def more(self) -> int:
        """Matching alerts older than the page."""
        return self.total - len(self.alerts)


def latest_alerts(
    conn: duckdb.DuckDBPyConnection,
    tenant: str | None = None,
    state: str | None = None,
    limit: int | None = None,
) -> AlertPage:
    """Newest first, optionally one tenant's or one state's, at most ``limit``: what ``alerts list`` shows.

    The newest first because the question at the terminal is "what just fired"; the total is counted in the
    same query's filter so the page and the count never disagree.
    """
    if state is not None and state not in ALERT_STATES:
        raise ValueError(f"unknown alert state {state!r}; use one of {', '.join(ALERT_STATES)}")
    where = "(? is null or tenant = ?) and (? is null or state = ?)"
    params = [tenant, tenant, state, state]
    ensure_table(conn)
    (total,) = conn.execute(f"select count(*) from {TABLE} where {where}", params).fetchone()
    page = _select(conn, where, params, order="created_at desc, rowid desc", limit=limit)
    return AlertPage(page, total)
