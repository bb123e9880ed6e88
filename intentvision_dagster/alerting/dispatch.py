"""Alertmanager's dispatch, per tenant: suppress (silences, inhibition), group, time, and queue notifications.

One tick (:func:`dispatch`) at an explicit ``now``:

1. labels every open alert (``alertname``, ``tenant``, ``metric``, ``severity``, ``series`` + series labels),
   marks the ones an active silence or an inhibit rule mutes, and resolves cleared alerts that were notified;
2. puts each unmuted open alert in its group: (tenant, channel for its severity, values of ``group_by``);
3. per group, queues at most one notification: the first after ``group_wait``; an update when alerts joined
   (or escalated) since the last one, at most every ``group_interval``; a reminder after ``repeat_interval``;
   and a resolve message when every alert the group last notified has resolved.

A group's notifications from its first to its resolve are one *incident*, whose id is its first
notification's: the first is posted, every later one edits that message and replies in its thread
(``incident_id`` on each notification; what changed since the last one is in the payload's ``changes``). A
notification is written as ``pending`` with a deterministic id in the same transaction that records it as the
group's latest, *before* anything is sent (:mod:`intentvision_dagster.alerting.delivery` sends it), so a tick
that dies half-way and repeats finds the notification already queued and never queues it twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import duckdb
import pandas as pd

from intentvision_dagster.alerting import log
from intentvision_dagster.alerting.inhibition import inhibited_by
from intentvision_dagster.alerting.kinds import kind_of
from intentvision_dagster.alerting.routing import Routing, TenantRoute
from intentvision_dagster.alerting.silences import list_silences, silencing
from intentvision_dagster.series import parse_labels
from intentvision_dagster.severity import SEVERITY_RANK
from intentvision_dagster.warehouse import SCHEMA, transaction

GROUPS = f"{SCHEMA}.alert_groups"
MOVED = "moved"
"""Severity recorded in a group's ``last_firing`` for an alert it announced that now belongs to another
group (e.g. escalated to critical, routed to another channel): the group said so once, resolves it later."""
NOTIFICATIONS = f"{SCHEMA}.alert_notifications"
NOTIFICATION_COLUMNS = [
    "id",
    "group_id",
    "tenant",
    "channel",
    "kind",
    "alert_ids",
    "resolved_ids",
    "payload",
    "state",
    "attempts",
    "in_doubt",
    "attempted_at",
    "created_at",
    "sent_at",
    "destination",
    "channel_id",
    "ts",
    "last_error",
    "incident_id",
    "action",
    "thread_ts",
    "chart_state",
    "chart_attempts",
    "chart_error",
    "charts",
]
_DDL = f"""
create schema if not exists {SCHEMA};
create table if not exists {GROUPS} (
    group_id varchar primary key,
    tenant varchar not null,
    channel varchar,
    group_labels varchar not null,
    created_at timestamp not null,
    last_notified_at timestamp,
    last_firing varchar not null default '[]',
    notifications integer not null default 0,
    state varchar not null default 'active'
);
alter table {GROUPS} add column if not exists incident_id varchar;
create table if not exists {NOTIFICATIONS} (
    id varchar primary key,
    group_id varchar not null,
    tenant varchar not null,
    channel varchar,
    kind varchar not null check (kind in ('firing', 'resolved', 'run_failure')),
    alert_ids varchar not null,
    resolved_ids varchar not null,
    payload varchar not null,
    state varchar not null check (state in ('pending', 'sent', 'failed')),
    attempts integer not null default 0,
    in_doubt boolean not null default false,
    attempted_at timestamp,
    created_at timestamp not null,
    sent_at timestamp,
    destination varchar,
    channel_id varchar,
    ts varchar,
    last_error varchar
);
alter table {NOTIFICATIONS} add column if not exists incident_id varchar;
alter table {NOTIFICATIONS} add column if not exists action varchar;
alter table {NOTIFICATIONS} add column if not exists thread_ts varchar;
alter table {NOTIFICATIONS} add column if not exists chart_state varchar;
alter table {NOTIFICATIONS} add column if not exists chart_attempts integer default 0;
alter table {NOTIFICATIONS} add column if not exists chart_error varchar;
alter table {NOTIFICATIONS} add column if not exists charts varchar;
"""


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    log.ensure_table(conn)
    conn.execute(_DDL)


def alert_labels(alert: dict[str, Any]) -> dict[str, str]:
    """The label set silences, inhibition and grouping see (Alertmanager's alert labels)."""
    return {
        **parse_labels(alert.get("labels")),
        "alertname": str(alert["rule"]),
        "tenant": str(alert["tenant"]),
        "metric": str(alert["metric"]),
        "severity": str(alert["severity"]),
        "series": str(alert["series"]),
    }


def _digest(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(str(part) for part in parts).encode()).hexdigest()[:16]


def group_key(route: TenantRoute, tenant: str, labels: dict[str, str]) -> tuple[str, str | None, dict]:
    """(group id, channel, group labels): a group never spans tenants or channels."""
    channel = route.channel(labels["severity"])
    values = {name: labels.get(name, "") for name in route.group_by}
    return _digest(tenant, channel, json.dumps(values, sort_keys=True)), channel, values


@dataclass
class DispatchReport:
    queued: int = 0
    resolved: int = 0
    silenced: int = 0
    inhibited: int = 0


def partition_url(ui_url: str, alert: dict) -> str:
    """The alert's partition in the Dagster UI: the asset that raised it, on its tenant/metric partition."""
    kind = kind_of(json.loads(alert.get("details") or "{}"))
    asset = kind.asset if kind is not None else "forecasts"
    key = quote(f"{alert['tenant']}/{alert['metric']}", safe="")
    return f"{ui_url.rstrip('/')}/assets/{asset}?view=partitions&partition={key}"


def _payload_alert(alert: dict, ui_url: str, status: str) -> dict:
    return {
        "id": alert["id"],
        "rule": alert["rule"],
        "severity": alert["severity"],
        "metric": alert["metric"],
        "series": alert["series"],
        "summary": alert["summary"],
        "details": json.loads(alert.get("details") or "{}"),
        "status": status,
        "url": partition_url(ui_url, alert),
    }


def _mark_suppression(
    conn: duckdb.DuckDBPyConnection, routing: Routing, now: datetime, report: DispatchReport
) -> list[dict]:
    """Recompute silence_id / inhibited_by / group_id of every open alert; returns them with labels."""
    silences = list_silences(conn, active_at=now)
    alerts = log.open_alerts(conn).to_dict("records")
    labelled = [(alert, alert_labels(alert)) for alert in alerts]
    firing_by_tenant: dict[str, list[tuple[dict, dict]]] = {}
    for alert, labels in labelled:
        if pd.isna(alert["cleared_at"]):
            firing_by_tenant.setdefault(alert["tenant"], []).append((alert, labels))
    updates = []
    for alert, labels in labelled:
        route = routing.route(alert["tenant"])
        alert["silence_id"] = silencing(silences, alert["tenant"], labels)
        firing = firing_by_tenant.get(alert["tenant"], [])
        alert["inhibited_by"] = inhibited_by(route.inhibit_rules, alert, labels, firing)
        alert["group_id"], alert["_channel"], alert["_group_labels"] = group_key(
            route, alert["tenant"], labels
        )
        report.silenced += alert["silence_id"] is not None
        report.inhibited += alert["inhibited_by"] is not None
        updates.append((alert["id"], alert["silence_id"], alert["inhibited_by"], alert["group_id"]))
    if updates:
        frame = pd.DataFrame(updates, columns=["id", "silence_id", "inhibited_by", "group_id"], dtype=object)
        with transaction(conn):
            conn.register("alert_suppression", frame)
            try:
                conn.execute(
                    f"update {log.TABLE} set silence_id = s.silence_id, inhibited_by = s.inhibited_by, "
                    f"group_id = s.group_id from alert_suppression s where {log.TABLE}.id = s.id"
                )
            finally:
                conn.unregister("alert_suppression")
    return alerts


def _groups(conn: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    rows = conn.execute(f"select * from {GROUPS}").df().to_dict("records")
    return {row["group_id"]: row for row in rows}


def _open_group(
    conn: duckdb.DuckDBPyConnection, group_id: str, old: dict | None, first: dict, now: pd.Timestamp
) -> dict:
    """Start a group (or restart a resolved one: its group_wait starts again, its sequence continues)."""
    group = {
        "group_id": group_id,
        "tenant": first["tenant"],
        "channel": first["_channel"],
        "group_labels": json.dumps(first["_group_labels"], sort_keys=True),
        "created_at": now,
        "last_notified_at": pd.NaT,
        "last_firing": "[]",
        "notifications": 0 if old is None else int(old["notifications"]),
        "state": "active",
    }
    conn.execute(
        f"""
        insert into {GROUPS} (group_id, tenant, channel, group_labels, created_at, notifications)
        values (?, ?, ?, ?, ?, ?)
        on conflict (group_id) do update set created_at = excluded.created_at, last_notified_at = null,
                                             last_firing = '[]', state = 'active', incident_id = null
        """,
        [group_id, group["tenant"], group["channel"], group["group_labels"], now, group["notifications"]],
    )
    return group


def _pending_groups(conn: duckdb.DuckDBPyConnection) -> set[str]:
    rows = conn.execute(f"select distinct group_id from {NOTIFICATIONS} where state = 'pending'").fetchall()
    return {group_id for (group_id,) in rows}


def _decide(
    group: dict,
    firing: list[tuple[str, str]],
    resolved: list[str],
    route: TenantRoute,
    now: pd.Timestamp,
    moved: bool = False,
) -> str | None:
    """Which notification a group needs now: 'firing', 'resolved' or None (Alertmanager's flush rules; an
    alert that moved to another group, e.g. escalated to another channel, is an update like one joining)."""
    last = group["last_notified_at"]
    if pd.isna(last):
        return "firing" if firing and now >= group["created_at"] + route.group_wait else None
    notified = {tuple(item) for item in json.loads(group["last_firing"])}
    if now < last + route.group_interval:
        return None
    if (firing and not set(firing) <= notified) or moved:
        return "firing"
    if not firing and resolved:
        return "resolved"
    if firing and now >= last + route.repeat_interval:
        return "firing"
    return None


def dispatch(
    conn: duckdb.DuckDBPyConnection, routing: Routing, now: datetime, ui_url: str = "http://127.0.0.1:3000"
) -> DispatchReport:
    """One dispatch tick at ``now``; see the module docstring. Returns counts for the sensor's log line."""
    ensure_tables(conn)
    moment = log.utc_naive(now)
    report = DispatchReport()
    alerts = _mark_suppression(conn, routing, moment, report)
    resolved_now = set(log.resolve_cleared(conn, moment)["id"])
    report.resolved = len(resolved_now)
    members: dict[str, list[dict]] = {}
    for alert in alerts:
        if alert["id"] not in resolved_now and alert["silence_id"] is None and alert["inhibited_by"] is None:
            members.setdefault(alert["group_id"], []).append(alert)
    groups = _groups(conn)
    busy = _pending_groups(conn)
    announced = [item[0] for group in groups.values() for item in json.loads(group["last_firing"])]
    states = dict(
        conn.execute(
            f"select id, state from {log.TABLE} where list_contains(?::varchar[], id)", [announced]
        ).fetchall()
    )
    active = {group_id for group_id, group in groups.items() if group["state"] == "active"}
    grouped = {alert["id"]: alert for group_alerts in members.values() for alert in group_alerts}
    for group_id in sorted(set(members) | active):
        group_alerts = members.get(group_id, [])
        group = groups.get(group_id)
        if group is None or group["state"] != "active":
            group = _open_group(conn, group_id, group, group_alerts[0], moment)
        if group_id in busy:
            continue  # its last notification is not delivered yet; decide again after it is
        firing = sorted((alert["id"], alert["severity"]) for alert in group_alerts)
        notified = json.loads(group["last_firing"])
        notified_ids = [alert_id for alert_id, _ in notified]
        resolved = [alert_id for alert_id in notified_ids if states.get(alert_id) == "resolved"]
        moved = [
            grouped[alert_id]
            for alert_id, severity in notified
            if severity != MOVED and alert_id in grouped and grouped[alert_id]["group_id"] != group_id
        ]
        route = routing.route(group["tenant"])
        kind = _decide(group, firing, resolved, route, moment, moved=bool(moved))
        if kind is None:
            if not group_alerts and pd.isna(group["last_notified_at"]):
                conn.execute(f"update {GROUPS} set state = 'resolved' where group_id = ?", [group_id])
            continue
        _queue(conn, group, kind, group_alerts, resolved, ui_url, moment, moved)
        report.queued += 1
    return report


def _queue(
    conn: duckdb.DuckDBPyConnection,
    group: dict,
    kind: str,
    group_alerts: list[dict],
    resolved: list[str],
    ui_url: str,
    now: pd.Timestamp,
    moved: list[dict] | None = None,
) -> None:
    """Record the notification (pending) and the group's new notified state in one transaction.

    ``moved``: alerts the group announced that now belong to another group; the message lists them as
    continued in that group's channel, and the group keeps them (as ``moved``) until they resolve."""
    sequence = int(group["notifications"]) + 1
    notification_id = _digest(group["group_id"], sequence)
    ongoing = not pd.isna(group["last_notified_at"]) and isinstance(group.get("incident_id"), str)
    incident_id = group["incident_id"] if ongoing else notification_id
    resolved_alerts = log.alerts_by_id(conn, resolved).to_dict("records") if resolved else []
    payload = {
        "kind": kind,
        "tenant": group["tenant"],
        "group_id": group["group_id"],
        "group_labels": json.loads(group["group_labels"]),
        "sequence": sequence,
        "firing": [
            _payload_alert(alert, ui_url, "ended" if not pd.isna(alert["cleared_at"]) else "firing")
            for alert in sorted(
                group_alerts, key=lambda a: (-SEVERITY_RANK.get(a["severity"], 0), a["series"])
            )
        ],
        "resolved": [_payload_alert(alert, ui_url, "resolved") for alert in resolved_alerts],
    }
    moved = moved or []
    payload["firing"] += [
        {**_payload_alert(alert, ui_url, MOVED), "moved_to": alert["_channel"]} for alert in moved
    ]
    notified = json.loads(group["last_firing"])
    payload["changes"] = _changes(payload, notified) if ongoing else []
    firing = sorted([alert["id"], alert["severity"]] for alert in group_alerts)
    current = {alert_id for alert_id, _ in firing}
    away = {alert["id"] for alert in moved} | {i for i, severity in notified if severity == MOVED}
    firing += sorted([alert_id, MOVED] for alert_id in away - current)
    with transaction(conn):
        conn.execute(
            f"""
            insert into {NOTIFICATIONS} (id, group_id, tenant, channel, kind, alert_ids, resolved_ids,
                                         payload, state, attempts, in_doubt, created_at, incident_id)
            values (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, false, ?, ?)
            on conflict do nothing
            """,
            [
                notification_id,
                group["group_id"],
                group["tenant"],
                group["channel"],
                kind,
                json.dumps([alert["id"] for alert in group_alerts]),
                json.dumps(resolved),
                json.dumps(payload, default=str),
                now,
                incident_id,
            ],
        )
        conn.execute(
            f"""
            update {GROUPS} set last_notified_at = ?, last_firing = ?, notifications = ?, incident_id = ?,
                                state = case when ? = 'resolved' then 'resolved' else 'active' end
            where group_id = ?
            """,
            [now, json.dumps(firing), sequence, incident_id, kind, group["group_id"]],
        )


def _changes(payload: dict, last_firing: list[list[str]]) -> list[dict]:
    """What an update says in the incident's thread: alerts that are new, changed severity, or resolved."""
    before = {alert_id: severity for alert_id, severity in last_firing if severity != MOVED}
    changes = []
    for alert in payload["firing"]:
        previous = before.get(alert["id"])
        if previous == alert["severity"] and alert["status"] != MOVED:
            continue
        if previous is None:
            change = "new"
        elif previous == alert["severity"]:
            change = MOVED
        elif SEVERITY_RANK.get(alert["severity"], 0) > SEVERITY_RANK.get(previous, 0):
            change = "escalated"
        else:
            change = "de-escalated"
        moved_to = {"moved_to": alert["moved_to"]} if alert["status"] == MOVED else {}
        changes.append({**_change_of(alert), "change": change, "previous_severity": previous, **moved_to})
    changes += [{**_change_of(alert), "change": "resolved"} for alert in payload["resolved"]]
    return changes


def _change_of(alert: dict) -> dict:
    return {key: alert[key] for key in ("id", "series", "severity", "summary")}


def list_notifications(conn: duckdb.DuckDBPyConnection, tenant: str | None = None) -> pd.DataFrame:
    """Every queued/sent notification (optionally one tenant's), oldest first."""
    ensure_tables(conn)
    return conn.execute(
        f"select {', '.join(NOTIFICATION_COLUMNS)} from {NOTIFICATIONS} where ? is null or tenant = ? "
        "order by created_at, rowid",
        [tenant, tenant],
    ).df()


def queue_run_failure(
    conn: duckdb.DuckDBPyConnection,
    run_id: str,
    job: str,
    error: str,
    tenant: str | None,
    routing: Routing,
    now: datetime,
    ui_url: str = "http://127.0.0.1:3000",
) -> str:
    """Queue one notification for a failed run of the product's own jobs; its id is the run's, so once only.

    It goes to the operator channel; without one, only a run tagged with a single tenant goes to that tenant's
    channel (it is that tenant's data that failed), and an untagged or multi-tenant run to no channel at all.
    """
    ensure_tables(conn)
    channel = routing.operator_channel
    if channel is None and tenant and tenant in routing.tenants:
        channel = routing.route(tenant).channel("critical")
    notification_id = f"run-failure-{run_id}"
    payload = {
        "kind": "run_failure",
        "run_id": run_id,
        "job": job,
        "error": error,
        "tenant": tenant,
        "url": f"{ui_url.rstrip('/')}/runs/{run_id}",
    }
    with transaction(conn):
        conn.execute(
            f"""
            insert into {NOTIFICATIONS} (id, group_id, tenant, channel, kind, alert_ids, resolved_ids,
                                         payload, state, attempts, in_doubt, created_at)
            values (?, 'run-failures', ?, ?, 'run_failure', '[]', '[]', ?, 'pending', 0, false, ?)
            on conflict do nothing
            """,
            [notification_id, tenant or "", channel, json.dumps(payload), log.utc_naive(now)],
        )
    return notification_id
