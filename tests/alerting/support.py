"""Helpers for the alerting tests: alerts as rule evaluation produces them, logged at a time; config files."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd

from intentvision_dagster.alerting.delivery import SlackNotifier
from intentvision_dagster.alerting.evaluate import CANDIDATE_COLUMNS
from intentvision_dagster.alerting.log import list_alerts, record, resolve_missing
from intentvision_dagster.alerting.routing import Routing, TenantRoute

DISK = "node_filesystem_usage_percent"
T0 = pd.Timestamp("2026-01-05 02:00")
TOKEN = "xoxb-standin-token"
CHANNELS = {"#acme-alerts", "#acme-oncall", "#globex-oncall", "#ops"}
"""The channels the Slack stand-in of the alerting tests knows."""


def notifier(slack, token: str = TOKEN, timeout: int = 5) -> SlackNotifier:
    """The real Slack notifier, pointed at the stand-in ``slack``."""
    return SlackNotifier(token=token, base_url=slack.url, timeout=timeout)


class DiesAfterPosting(SlackNotifier):
    """The real notifier, but the process dies right after Slack accepted the post (before it is recorded)."""

    def send(self, notification):
        super().send(notification)
        raise SystemExit("killed after posting")


def candidate(
    host: str = "db-1",
    tenant: str = "acme",
    rule: str = "disk-capacity",
    severity: str = "critical",
    asof: str = "2026-01-05T00:00:00",
) -> dict:
    series = f'{tenant}/{DISK}{{host="{host}"}}'
    details = {
        "kind": "forecast_breach",
        "threshold": 90.0,
        "unit": "%",
        "probability": 0.97,
        "horizon_hours": 72.0,
        "interval_level": 80,
        "last_actual_y": 80.5,
        "earliest_ds": "2026-01-06T08:00:00",
        "expected_ds": "2026-01-07T00:00:00",
        "latest_ds": "2026-01-07T16:00:00",
        "earliest_hours": 32.0,
        "expected_hours": 48.0,
        "latest_hours": 64.0,
        "model": "MSTL",
        "accuracy": {"mae": 2.5, "mae_recent": 1.2, "backtest_hours": 72.0, "mase": 24.0},
    }
    return {
        "tenant": tenant,
        "metric": DISK,
        "series": series,
        "labels": f'host="{host}"',
        "rule": rule,
        "severity": severity,
        "dedup_key": f"{tenant}:{rule}:{series}:{severity}:{asof}",
        "summary": f"{host} expected to cross 90 % in 48 h",
        "details": json.dumps(details),
        "status": "firing",
        "hold_severity": severity,
    }


def log_alerts(conn: duckdb.DuckDBPyConnection, *rows: dict, now: pd.Timestamp = T0) -> pd.DataFrame:
    return record(conn, pd.DataFrame(list(rows), columns=CANDIDATE_COLUMNS), now)


def clear(conn: duckdb.DuckDBPyConnection, tenant: str, still_firing: list[str], now: pd.Timestamp) -> None:
    """The disk rule evaluated again for ``tenant``: only these hosts still fire."""
    series = [f'{tenant}/{DISK}{{host="{host}"}}' for host in still_firing]
    resolve_missing(conn, tenant, DISK, ["disk-capacity"], series, now)


def routing(**route: object) -> Routing:
    acme = {"channels": {"default": "#acme-alerts"}, "group_wait": pd.Timedelta(0), **route}
    return Routing(
        {
            "acme": TenantRoute(**acme),
            "globex": TenantRoute(channels={"default": "#globex-oncall"}, group_wait=pd.Timedelta(0)),
        },
        operator_channel="#ops",
    )


def states(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    alerts = list_alerts(conn)
    return dict(zip(alerts["series"].str.extract(r'host="([^"]+)"')[0], alerts["state"], strict=True))


def write(folder: Path, text: str, name: str = "alert_rules.yaml") -> Path:
    """A config file for the rules and routing tests."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path
