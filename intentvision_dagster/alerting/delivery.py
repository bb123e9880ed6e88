"""Send queued notifications to Slack (slack_sdk) or to a local JSON-lines outbox, recording each outcome.

One incident is one message. An incident's first notification is posted (``chat.postMessage``) and its channel
and ts recorded in the alert log (:func:`intentvision_dagster.alerting.log.record_message`); every later one
(escalation, alerts joining, reminder, resolve) edits that message to the incident's current state
(``chat.update``) and replies in its thread with what changed (``chat.postMessage`` with ``thread_ts``). If
the message is gone or may not be edited (``message_not_found``, ``cant_update_message``,
``edit_window_closed``) the update is posted as a new message, which becomes the incident's message. An
incident whose alerts were announced before by another incident's message (an escalation routed to another
channel, e.g. critical to the on-call channel) is posted once in its own channel with a link to that earlier
message (``chat.getPermalink``; without a link if Slack cannot give one). The outbox writes the same
structure: ``"action": "post"`` lines and ``"action": "update"`` lines that name the posted line they edit
(``thread_ts``) and carry the reply.

Each notification (one per alert group, see :mod:`intentvision_dagster.alerting.dispatch`) was queued as
``pending`` with a deterministic id before anything is sent. Sending marks it ``in_doubt`` first (committed),
posts, then marks it ``sent``. If the process dies between the post and that mark, or the answer is lost
(timeout), the next pass finds it in doubt and first looks for it where it would have landed: its incident's
thread or the channel's history (the message carries the id in its metadata), or the outbox file. Only if it
is not there, and its last attempt is older than a grace period (2 min, so a slow answer gets time to land),
is it sent again (an edit repeated is harmless: it sets the same content).
Slack's transient answers (429 with Retry-After, 5xx, dropped connections) are retried inside slack_sdk by
its retry handlers before a send counts as failed. What remains at least once: a post Slack accepted whose
answer was lost *and* that its history still does not show after the grace period. What a message looks
like is :mod:`intentvision_dagster.alerting.layout`'s business, not this module's.

Charts (:mod:`intentvision_dagster.alerting.charts`) are best-effort and never put the text at risk: an
incident's first post is recorded as sent *before* its charts are drawn and uploaded into its thread
(slack-sdk's ``files_upload_v2``; the outbox writes PNG files under ``charts/`` next to it), so a failed
upload can neither lose nor repeat the message. The outcome is kept per notification (``chart_state``:
``pending`` -> ``attached``, ``none`` when nothing could be drawn, ``failed`` with ``chart_error``); an upload
that timed out or met a server error stays ``pending`` and is tried again on the next pass, up to
``CHART_ATTEMPTS`` times. Updates carry no chart: the incident's thread has it. An upload whose last answer
was lost (a process killed, ``files.completeUploadExternal`` timing out after Slack shared the file) may show
the chart twice in the thread, never the text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pandas as pd
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from intentvision_dagster.alerting import log
from intentvision_dagster.alerting.charts import Chart, ChartDrawer, notification_charts
from intentvision_dagster.alerting.dispatch import NOTIFICATIONS, ensure_tables, list_notifications
from intentvision_dagster.alerting.inputs import json_safe
from intentvision_dagster.alerting.layout import earlier_message_block, notification_blocks, thread_reply
from intentvision_dagster.alerting.log import IncidentMessage, mark_delivered, mark_failed, utc_naive
from intentvision_dagster.errors import NotFoundError
from intentvision_dagster.warehouse import transaction

METADATA_EVENT = "intentvision_notification"
IN_DOUBT_GRACE = pd.Timedelta(minutes=2)
"""How long an in-doubt post may take to show in the channel's history before it is posted again."""
MESSAGE_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
"""chat.update errors after which the update is posted as a new message instead."""
CHART_ATTEMPTS = 3
"""Passes that try to attach an incident's charts before giving up (a missing chart is logged, not paged)."""
TOKEN_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"})


class NoChannelError(NotFoundError):
    """The notification's tenant has no Slack channel; raised instead of guessing another tenant's channel."""


@dataclass(frozen=True)
class Delivered:
    """Where a notification went: ``ts`` is what was posted, ``thread_ts`` the message it edited and replied
    to (None for a new message)."""

    destination: str
    channel_id: str | None = None
    ts: str | None = None
    thread_ts: str | None = None

    @property
    def action(self) -> str:
        return "post" if self.thread_ts is None else "update"


class Notifier(Protocol):
    def send(self, notification: Mapping[str, Any]) -> Delivered:
        """Deliver one notification and say where it went: a row of alert_notifications, plus ``message``
        (its incident's message, if posted), ``earlier`` (for a first post, the message that announced its
        alerts before) and ``later`` (for an update, the message its moved alerts continue in)."""
        ...

    def find(self, notification: Mapping[str, Any]) -> Delivered | None:
        """Where an in-doubt notification already landed, or None if it did not."""
        ...

    def attach(self, notification: Mapping[str, Any], charts: list[Chart]) -> list[str]:
        """Put charts in the thread of a sent notification's message (a row of alert_notifications with its
        ``channel_id`` and ``ts``); returns where they are (Slack file ids, outbox paths)."""
        ...


class SlackNotifier:
    """Posts each notification to its channel through slack_sdk's WebClient, its id in the metadata."""

    def __init__(
        self,
        token: str,
        base_url: str = "https://slack.com/api/",
        timeout: int = 10,
        max_retries: int = 2,
    ) -> None:
        self.client = WebClient(
            token=token,
            base_url=base_url,
            timeout=timeout,
            retry_handlers=[
                RateLimitErrorRetryHandler(max_retry_count=max_retries),
                ServerErrorRetryHandler(max_retry_count=max_retries),
                ConnectionErrorRetryHandler(max_retry_count=max_retries),
            ],
        )

    @staticmethod
    def _channel(notification: Mapping[str, Any]) -> str:
        channel = notification.get("channel")
        if not channel or pd.isna(channel):
            raise NoChannelError(
                f"no Slack channel configured for tenant {notification['tenant']!r} (add it to tenants.yaml)"
            )
        return str(channel)

    def send(self, notification: Mapping[str, Any]) -> Delivered:
        channel = self._channel(notification)
        payload = json.loads(notification["payload"])
        text, blocks = notification_blocks(payload)
        metadata = {
            "event_type": METADATA_EVENT,
            "event_payload": {"notification_id": notification["id"], "group_id": notification["group_id"]},
        }
        message: IncidentMessage | None = notification.get("message")
        if message is not None and message.channel_id:
            try:
                self.client.chat_update(channel=message.channel_id, ts=message.ts, text=text, blocks=blocks)
            except SlackApiError as error:
                if error.response.get("error") not in MESSAGE_GONE:
                    raise
            else:
                later: IncidentMessage | None = notification.get("later")
                reply = self.client.chat_postMessage(
                    channel=message.channel_id,
                    thread_ts=message.ts,
                    text=thread_reply(payload, self._permalink(later) if later else None),
                    metadata=metadata,
                )
                return Delivered(f"slack:{channel}", reply.get("channel"), reply.get("ts"), message.ts)
        earlier: IncidentMessage | None = notification.get("earlier")
        if earlier is not None:
            blocks = [*blocks, earlier_message_block(self._permalink(earlier), earlier.channel)]
        response = self.client.chat_postMessage(channel=channel, text=text, blocks=blocks, metadata=metadata)
        return Delivered(f"slack:{channel}", response.get("channel"), response.get("ts"))

    def attach(self, notification: Mapping[str, Any], charts: list[Chart]) -> list[str]:
        """One ``files_upload_v2`` call (getUploadURLExternal, the upload, completeUploadExternal) sharing
        every chart into the message's thread."""
        response = self.client.files_upload_v2(
            file_uploads=[
                {"file": chart.png, "filename": chart.filename, "title": chart.title, "alt_txt": chart.title}
                for chart in charts
            ],
            channel=notification["channel_id"],
            thread_ts=notification["ts"],
        )
        return [str(shared.get("id")) for shared in response.get("files") or []]

    def _permalink(self, message: IncidentMessage) -> str | None:
        """Slack's link to a message; None when Slack cannot give one (the post goes out without it)."""
        if not message.channel_id:
            return None
        try:
            return self.client.chat_getPermalink(channel=message.channel_id, message_ts=message.ts).get(
                "permalink"
            )
        except (SlackClientError, OSError):
            return None

    def find(self, notification: Mapping[str, Any]) -> Delivered | None:
        """Look for the notification's id in its incident's thread, then in the channel's recent history
        (Slack has no idempotency key)."""
        channel = self._channel(notification)
        oldest = f"{utc_naive(notification['created_at']).tz_localize('UTC').timestamp() - 60:.6f}"
        message: IncidentMessage | None = notification.get("message")
        if message is not None and message.channel_id:
            reply = self._with_id(
                self.client.conversations_replies,
                notification["id"],
                channel=message.channel_id,
                ts=message.ts,
                oldest=oldest,
            )
            if reply is not None:
                return Delivered(f"slack:{channel}", message.channel_id, reply.get("ts"), message.ts)
        known_id = notification.get("channel_id")
        channel_id = known_id if isinstance(known_id, str) else channel
        posted = self._with_id(
            self.client.conversations_history, notification["id"], channel=channel_id, oldest=oldest
        )
        return None if posted is None else Delivered(f"slack:{channel}", channel_id, posted.get("ts"))

    @staticmethod
    def _with_id(listing, notification_id: str, **query: str) -> dict | None:
        """The message of a history/replies listing whose metadata carries the notification's id."""
        try:
            answer = listing(**query, include_all_metadata=True, limit=200)
        except SlackApiError:  # e.g. a '#name' Slack cannot read history by: cannot tell, so post again
            return None
        for message in answer.get("messages", []):
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if (
                metadata.get("event_type") == METADATA_EVENT
                and payload.get("notification_id") == notification_id
            ):
                return message
        return None


class OutboxNotifier:
    """Appends notifications as JSON lines to a local file: the channel when no Slack token is configured."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _append(self, record: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as outbox:
            outbox.write(json.dumps(record, ensure_ascii=False) + "\n")
            outbox.flush()
            os.fsync(outbox.fileno())

    def attach(self, notification: Mapping[str, Any], charts: list[Chart]) -> list[str]:
        """Each chart as a PNG file in ``charts/`` next to the outbox (written whole, then renamed), and one
        ``"action": "chart"`` line naming the post it belongs to (``thread_ts``) and the files."""
        folder = self.path.parent / "charts"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for chart in charts:
            path = folder / chart.filename
            partial = path.with_suffix(".partial")
            partial.write_bytes(chart.png)
            partial.replace(path)
            paths.append(str(path))
        self._append(
            {
                "action": "chart",
                "notification_id": notification["id"],
                "thread_ts": notification["ts"],
                "tenant": notification["tenant"],
                "channel": json_safe(notification["channel"]),
                "charts": [
                    {"path": path, "title": chart.title} for path, chart in zip(paths, charts, strict=True)
                ],
            }
        )
        return paths

    def send(self, notification: Mapping[str, Any]) -> Delivered:
        """One line per notification; an update names the line it edits (``thread_ts``, that line's id)."""
        record = {
            key: json_safe(value)
            for key, value in notification.items()
            if key not in ("payload", "message", "earlier", "later")
        }
        record["payload"] = json.loads(notification["payload"])
        message: IncidentMessage | None = notification.get("message")
        if message is not None:
            record |= {"action": "update", "thread_ts": message.ts, "reply": thread_reply(record["payload"])}
        else:
            record["action"] = "post"
        for link in ("earlier", "later"):
            linked: IncidentMessage | None = notification.get(link)
            if linked is not None:
                record[link] = {"channel": linked.channel, "channel_id": linked.channel_id, "ts": linked.ts}
        self._append(record)
        return Delivered(f"outbox:{self.path}", None, notification["id"], record.get("thread_ts"))

    def find(self, notification: Mapping[str, Any]) -> Delivered | None:
        if not self.path.exists():
            return None
        marker = f'"id": "{notification["id"]}"'
        with self.path.open(encoding="utf-8") as outbox:
            line = next((line for line in outbox if marker in line), None)
        if line is None:
            return None
        return Delivered(f"outbox:{self.path}", None, notification["id"], json.loads(line).get("thread_ts"))


@dataclass
class DeliveryReport:
    """Outcome of one delivery pass: counts, one message per failed notification, one per chart that could
    not be attached (a warning: its message was delivered)."""

    sent: int = 0
    failed: int = 0
    reconciled: int = 0
    deferred: int = 0
    charts: int = 0
    errors: list[str] = field(default_factory=list)
    chart_errors: list[str] = field(default_factory=list)


def _describe(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        return f"slack: {error.response.get('error', 'unknown_error')} (HTTP {error.response.status_code})"
    return f"{type(error).__name__}: {error}"


def _set(conn: duckdb.DuckDBPyConnection, notification_id: str, assignments: str, params: list) -> None:
    with transaction(conn):
        conn.execute(f"update {NOTIFICATIONS} set {assignments} where id = ?", [*params, notification_id])


def _mark_sent(
    conn: duckdb.DuckDBPyConnection,
    notification: Mapping[str, Any],
    where: Delivered,
    now,
    charts: bool = False,
) -> None:
    """The notification and the alerts it announced as firing are delivered, and a posted message is recorded
    as its incident's, in one transaction. A new message of firing alerts gets its charts next."""
    alert_ids = json.loads(notification["alert_ids"])
    incident_id = _incident(notification)
    chart_state = (
        "pending" if charts and where.action == "post" and notification["kind"] == "firing" else None
    )
    with transaction(conn):
        conn.execute(
            f"update {NOTIFICATIONS} set state = 'sent', in_doubt = false, sent_at = ?, destination = ?, "
            "channel_id = ?, ts = ?, action = ?, thread_ts = ?, last_error = null, chart_state = ? "
            "where id = ?",
            [
                now,
                where.destination,
                where.channel_id,
                where.ts,
                where.action,
                where.thread_ts,
                chart_state,
                notification["id"],
            ],
        )
        mark_delivered(conn, alert_ids, where.destination, now, incident_id)
        if incident_id is not None and where.action == "post" and where.ts is not None:
            log.record_message(
                conn,
                incident_id,
                notification["tenant"],
                notification["group_id"],
                notification["channel"] if isinstance(notification["channel"], str) else None,
                (where.destination, where.channel_id, where.ts),
                now,
            )


def _incident(notification: Mapping[str, Any]) -> str | None:
    incident_id = notification.get("incident_id")
    return incident_id if isinstance(incident_id, str) else None


def _with_messages(conn: duckdb.DuckDBPyConnection, notification: dict[str, Any]) -> dict[str, Any]:
    """The notification plus its incident's message (to edit), and the other incidents' messages to link:
    for a first post, the ``earlier`` one that announced its alerts; for an update whose alerts moved to
    another group, the ``later`` one that announces them now."""
    incident_id = _incident(notification)
    if incident_id is None:
        return {**notification, "message": None, "earlier": None, "later": None}
    message = log.incident_messages(conn, [incident_id]).get(incident_id)
    if message is None:
        alert_ids = json.loads(notification["alert_ids"])
    else:
        changes = json.loads(notification["payload"]).get("changes") or []
        alert_ids = [change["id"] for change in changes if change.get("moved_to")]
    others = log.other_incidents(conn, alert_ids, incident_id)
    found = log.incident_messages(conn, others)
    linked = next((found[other] for other in others if other in found), None)
    return {
        **notification,
        "message": message,
        "earlier": linked if message is None else None,
        "later": linked if message is not None else None,
    }


def _mark_failed(
    conn: duckdb.DuckDBPyConnection, notification: Mapping[str, Any], error: str, in_doubt: bool, now
) -> None:
    alert_ids = json.loads(notification["alert_ids"])
    with transaction(conn):
        conn.execute(
            f"update {NOTIFICATIONS} set state = 'failed', in_doubt = ?, last_error = ? where id = ?",
            [in_doubt, error, notification["id"]],
        )
        mark_failed(conn, alert_ids, error, now)


def _chart_failure(error: Exception) -> tuple[str, bool]:
    """What went wrong with an upload, and whether a later pass may succeed (timeouts, 429 and 5xx that
    slack-sdk's retries did not get through, a failed upload of the bytes)."""
    if isinstance(error, SlackApiError):
        code = error.response.get("error", "unknown_error")
        status = error.response.status_code
        if code in TOKEN_ERRORS:
            return (
                f"slack: {code} (HTTP {status}): Slack rejected the bot token (SLACK_BOT_TOKEN) on the chart "
                "upload; the message was delivered without its chart",
                False,
            )
        if code == "missing_scope":
            return f"slack: {code} (HTTP {status}): the bot token lacks the files:write scope", False
        return _describe(error), status == 429 or status >= 500
    return _describe(error), isinstance(error, (SlackClientError, OSError))


def _attach_charts(
    conn: duckdb.DuckDBPyConnection,
    notifier: Notifier,
    drawers: Mapping[str, ChartDrawer],
    report: DeliveryReport,
    only: list[str] | None,
) -> None:
    """Draw and attach the charts of sent messages still waiting for them; record each outcome."""
    queue = list_notifications(conn)
    queue = queue[(queue["state"] == "sent") & (queue["chart_state"] == "pending")]
    if only is not None:
        queue = queue[queue["id"].isin(only)]
    for notification in queue.to_dict("records"):
        attempts = int(notification["chart_attempts"] or 0) + 1
        _set(conn, notification["id"], "chart_attempts = ?", [attempts])
        try:
            charts = notification_charts(conn, notification, drawers)
            where = notifier.attach(notification, charts) if charts else []
        except Exception as error:  # a chart is best-effort: no failure of it may stall delivery
            failure, transient = _chart_failure(error)
            state = "pending" if transient and attempts < CHART_ATTEMPTS else "failed"
            _set(conn, notification["id"], "chart_state = ?, chart_error = ?", [state, failure])
            retry = "; trying again next pass" if state == "pending" else ""
            report.chart_errors.append(
                f"chart for notification {notification['id']} (attempt {attempts}): {failure}{retry}"
            )
            continue
        state = "attached" if charts else "none"
        _set(
            conn,
            notification["id"],
            "chart_state = ?, chart_error = null, charts = ?",
            [state, json.dumps(where)],
        )
        report.charts += len(charts)


def _too_recent(attempted_at: Any, now: pd.Timestamp, grace: pd.Timedelta) -> bool:
    return attempted_at is not None and not pd.isna(attempted_at) and now - attempted_at < grace


def deliver_notifications(
    conn: duckdb.DuckDBPyConnection,
    notifier: Notifier,
    now: datetime,
    max_attempts: int = 5,
    only: list[str] | None = None,
    in_doubt_grace: pd.Timedelta = IN_DOUBT_GRACE,
    charts: Mapping[str, ChartDrawer] | None = None,
) -> DeliveryReport:
    """Send every pending or retryable notification (or only the ``only`` ids), oldest first, recording each
    outcome as soon as it is known. A notification whose incident has an earlier one not sent yet waits for
    it (so an old update never overwrites a newer one).

    An in-doubt notification not found where it would have landed is posted again only once
    ``in_doubt_grace`` has passed since its last attempt, so a slow answer gets time to show up first.
    ``charts`` (a drawer per asset; none: no charts) draws the charts new messages carry, attached after
    every send of the pass is recorded.
    """
    ensure_tables(conn)
    moment = utc_naive(now)
    report = DeliveryReport()
    queue = list_notifications(conn)
    # Slack answers a post with the channel's id; history can only be read by id, so remember them.
    sent = queue.dropna(subset=["channel_id"]).drop_duplicates("channel")
    queue = queue.assign(
        channel_id=queue["channel_id"].fillna(
            queue["channel"].map(dict(zip(sent["channel"], sent["channel_id"], strict=True)))
        )
    )
    if only is not None:
        queue = queue[queue["id"].isin(only)]
    queue = queue[
        (queue["state"] == "pending") | ((queue["state"] == "failed") & (queue["attempts"] < max_attempts))
    ]
    # Of notifications queued together, incidents' first posts go before updates, so an update can link to
    # the message its alerts moved to.
    queue = queue.assign(_update=queue["incident_id"].ne(queue["id"]) & queue["incident_id"].notna())
    queue = queue.sort_values(["created_at", "_update"], kind="stable").drop(columns="_update")
    waiting: set[str] = set()  # incidents whose earlier notification is not sent: later ones keep their order
    for row in queue.to_dict("records"):
        incident_id = _incident(row)
        if incident_id is not None and incident_id in waiting:
            report.deferred += 1
            continue
        notification = _with_messages(conn, row)
        label = (
            f"notification {notification['id']} ({notification['kind']}, group {notification['group_id']})"
        )
        try:
            if notification["in_doubt"]:
                found = notifier.find(notification)
                if found is not None:
                    _mark_sent(conn, notification, found, moment, charts=bool(charts))
                    report.reconciled += 1
                    continue
                if _too_recent(notification["attempted_at"], moment, in_doubt_grace):
                    report.deferred += 1  # its answer may still be on the way: look again next pass
                    waiting.add(incident_id)
                    continue
            _set(
                conn,
                notification["id"],
                "in_doubt = true, attempts = attempts + 1, attempted_at = ?",
                [moment],
            )
            delivered = notifier.send(notification)
        except (SlackApiError, NoChannelError) as error:  # a definite answer: nothing was posted
            failure, in_doubt = _describe(error), False
        except (SlackClientError, OSError) as error:  # no answer: it may have been posted
            failure, in_doubt = _describe(error), True
        else:
            _mark_sent(conn, notification, delivered, moment, charts=bool(charts))
            report.sent += 1
            continue
        _mark_failed(conn, notification, failure, in_doubt, moment)
        report.failed += 1
        report.errors.append(f"{label}: {failure}")
        waiting.add(incident_id)
    if charts:
        _attach_charts(conn, notifier, charts, report, only)
    return report
