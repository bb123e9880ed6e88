"""Send pending alerts to Slack (slack_sdk) or to a local JSON-lines outbox, recording each outcome.

Delivery is at least once: an alert is marked delivered immediately after the send succeeds, and a failed send
stays retryable. Slack's own transient answers (429 with Retry-After, 5xx, dropped connections) are retried
inside slack_sdk by its retry handlers before a send counts as failed.
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
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from intentvision_dagster.alerting.evaluate import json_safe
from intentvision_dagster.alerting.log import mark_delivered, mark_failed, pending

SEVERITY_EMOJI = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}
_HEADER_LIMIT = 150  # Slack's limit for a header block's text
_TEXT_LIMIT = 3000  # Slack's limit for a section or context text


class NoChannelError(LookupError):
    """The alert's tenant has no Slack channel; raised instead of guessing a channel of another tenant."""


class Notifier(Protocol):
    def send(self, alert: Mapping[str, Any]) -> str:
        """Deliver one alert (a row of the alert log) and return where it went."""
        ...


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_blocks(alert: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Block Kit layout: what fired and how bad in the header, the summary, then where it comes from."""
    severity = str(alert["severity"])
    header = f"{SEVERITY_EMOJI.get(severity, ':bell:')} {severity.upper()}: {alert['rule']}"
    context = [
        f"*tenant* {alert['tenant']}",
        f"*metric* {alert['metric']}",
        f"*series* `{alert['series']}`",
        f"*dedup key* `{alert['dedup_key']}`",
    ]
    return [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(header, _HEADER_LIMIT), "emoji": True},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _clip(_escape(str(alert["summary"])), _TEXT_LIMIT)},
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _clip(_escape(item), _TEXT_LIMIT)} for item in context],
        },
    ]


class SlackNotifier:
    """Posts each alert to its tenant's channel through slack_sdk's WebClient."""

    def __init__(
        self,
        token: str,
        channels: Mapping[str, str],
        base_url: str = "https://slack.com/api/",
        timeout: int = 10,
        max_retries: int = 2,
    ) -> None:
        self.channels = dict(channels)
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

    def send(self, alert: Mapping[str, Any]) -> str:
        channel = self.channels.get(alert["tenant"])
        if channel is None:
            raise NoChannelError(
                f"no Slack channel configured for tenant {alert['tenant']!r} (add it to tenants.yaml)"
            )
        self.client.chat_postMessage(
            channel=channel,
            text=_escape(f"[{alert['severity']}] {alert['rule']}: {alert['summary']}"),
            blocks=slack_blocks(alert),
        )
        return f"slack:{channel}"


class OutboxNotifier:
    """Appends alerts as JSON lines to a local file: the channel when no Slack token is configured."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def send(self, alert: Mapping[str, Any]) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({key: json_safe(value) for key, value in alert.items()}, ensure_ascii=False)
        with self.path.open("a", encoding="utf-8") as outbox:
            outbox.write(line + "\n")
            outbox.flush()
            os.fsync(outbox.fileno())
        return f"outbox:{self.path}"


@dataclass
class DeliveryReport:
    """Outcome of one delivery pass: counts, and one message per failed alert."""

    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def _describe(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        return f"slack: {error.response.get('error', 'unknown_error')} (HTTP {error.response.status_code})"
    return f"{type(error).__name__}: {error}"


def deliver_pending(
    conn: duckdb.DuckDBPyConnection,
    notifier: Notifier,
    now: datetime,
    max_attempts: int = 5,
) -> DeliveryReport:
    """Send every pending or retryable alert, oldest first, recording each outcome as soon as it is known."""
    report = DeliveryReport()
    for alert in pending(conn, max_attempts=max_attempts).to_dict("records"):
        try:
            destination = notifier.send(alert)
        except (SlackClientError, OSError, NoChannelError) as error:
            message = _describe(error)
            mark_failed(conn, alert["id"], message, now)
            report.failed += 1
            report.errors.append(f"alert {alert['id']} ({alert['dedup_key']}): {message}")
            continue
        mark_delivered(conn, alert["id"], destination, now)
        report.sent += 1
    return report
