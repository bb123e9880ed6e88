"""The Slack layout: one queued notification -> a Block Kit message and its plain-text fallback.

Kept apart from delivery (:mod:`intentvision_dagster.alerting.delivery`: posting, idempotence, retries) so a
new message layout changes this module only. What a rule kind adds under an alert's summary comes from the
kind itself (``message_fields``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from intentvision_dagster.alerting.kinds import kind_of
from intentvision_dagster.severity import SEVERITY_RANK

SEVERITY_EMOJI = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}
_HEADER_LIMIT = 150  # Slack's limit for a header block's text
_TEXT_LIMIT = 3000  # Slack's limit for a section or context text
_FIELD_LIMIT = 2000  # Slack's limit for one section field
MAX_LISTED_ALERTS = 10
"""A grouped message shows this many alerts in full and counts the rest (Slack allows 50 blocks)."""
MAX_PARTITION_LINKS = 5
"""Links to partitions in the Dagster UI under a message (a context block holds at most 10 elements)."""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _worst(alerts: list[Mapping[str, Any]]) -> str:
    return max((alert["severity"] for alert in alerts), key=lambda s: SEVERITY_RANK.get(s, 0), default="info")


def _alert_blocks(alert: Mapping[str, Any]) -> list[dict[str, Any]]:
    marker = {
        "ended": " (already over)",
        "resolved": " :white_check_mark: resolved",
        "moved": f" :arrow_right: continued in {alert.get('moved_to')}",
    }.get(alert["status"], "")
    text = (
        f"{SEVERITY_EMOJI.get(alert['severity'], ':bell:')} *{alert['severity']}* "
        f"<{alert['url']}|{_escape(str(alert['series']))}>{marker}\n{_escape(str(alert['summary']))}"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, _TEXT_LIMIT)}}
    ]
    details = alert.get("details") or {}
    kind = kind_of(details)
    fields = kind.message_fields(details) if kind is not None and alert["status"] != "resolved" else []
    if fields:
        blocks.append(
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": _clip(text, _FIELD_LIMIT)} for text in fields],
            }
        )
    return blocks


def _partition_links(alerts: list[Mapping[str, Any]], tenant: str) -> list[str]:
    """One link per partition (asset page) the alerts were raised on, in message order."""
    links: dict[str, str] = {}
    for alert in alerts:
        links.setdefault(alert["url"], f"{tenant}/{alert['metric']}")
    shown = [f":bar_chart: <{url}|{_escape(name)}> in Dagster" for url, name in links.items()]
    return shown[:MAX_PARTITION_LINKS]


def notification_blocks(payload: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Block Kit message and its plain-text fallback for one queued notification."""
    if payload["kind"] == "run_failure":
        header = f":x: Run failed: {payload['job']}"
        summary = f"{payload['job']} run {payload['run_id'][:8]} failed: {payload['error']}"
        body = f"<{payload['url']}|Open the run in Dagster>\n{_escape(payload['error'])}"
        context = [f"*run* `{payload['run_id']}`", f"*tenant* {payload.get('tenant') or 'none'}"]
        return summary, [
            {"type": "header", "text": {"type": "plain_text", "text": _clip(header, _HEADER_LIMIT)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(body, _TEXT_LIMIT)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": item} for item in context]},
        ]
    firing, resolved = payload["firing"], payload["resolved"]
    shown = firing or resolved
    rules = ", ".join(sorted({alert["rule"] for alert in shown}))
    if payload["kind"] == "resolved":
        header = f":white_check_mark: RESOLVED: {rules} ({len(resolved)} alert{'s' * (len(resolved) != 1)})"
    else:
        severity = _worst(firing)
        header = (
            f"{SEVERITY_EMOJI.get(severity, ':bell:')} {severity.upper()}: {rules} "
            f"({len(firing)} firing" + (f", {len(resolved)} resolved" if resolved else "") + ")"
        )
    listed = (firing + resolved)[:MAX_LISTED_ALERTS]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(header, _HEADER_LIMIT), "emoji": True},
        }
    ]
    for alert in listed:
        blocks.extend(_alert_blocks(alert))
    hidden = len(firing) + len(resolved) - len(listed)
    if hidden:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"… and {hidden} more alerts"}})
    group = ", ".join(f"{name}={value}" for name, value in payload["group_labels"].items())
    context = [
        _escape(f"*tenant* {payload['tenant']}"),
        _escape(f"*group* {group} (`{payload['group_id']}`)"),
        *_partition_links(listed, payload["tenant"]),
    ]
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": item} for item in context]})
    text = f"{header}: " + "; ".join(str(alert["summary"]) for alert in listed)
    return _clip(_escape(text), _TEXT_LIMIT), blocks


def thread_reply(payload: Mapping[str, Any], moved_link: str | None = None) -> str:
    """The reply an update posts in its incident's thread: what changed since the last message
    (``moved_link``: the message in the channel an alert moved to)."""
    changes = payload.get("changes") or []
    if not changes:
        return f":repeat: still firing: {len(payload['firing'])} alert{'s' * (len(payload['firing']) != 1)}"
    lines = []
    for change in changes[:MAX_LISTED_ALERTS]:
        severity = change["severity"]
        moved = f"{change['previous_severity']} → {severity}" if change.get("previous_severity") else severity
        emoji = (
            ":white_check_mark:" if change["change"] == "resolved" else SEVERITY_EMOJI.get(severity, ":bell:")
        )
        where = change.get("moved_to")
        if where:
            where = f", continued in <{moved_link}|{where}>" if moved_link else f", continued in {where}"
        lines.append(
            f"{emoji} {change['change']} ({moved}){where or ''}: "
            f"{_escape(str(change['series']))}: {_escape(str(change['summary']))}"
        )
    if len(changes) > MAX_LISTED_ALERTS:
        lines.append(f"… and {len(changes) - MAX_LISTED_ALERTS} more changes")
    return _clip("\n".join(lines), _TEXT_LIMIT)


def earlier_message_block(permalink: str | None, channel: str | None) -> dict[str, Any]:
    """A context line linking the message that announced these alerts before (e.g. in another channel)."""
    where = f"in {_escape(channel)}" if channel else "elsewhere"
    text = f"<{permalink}|Earlier message {where}>" if permalink else f"Earlier message {where}"
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": f":link: {text}"}]}
