"""What one rule would fire on the warehouse's current data, without writing or sending anything.

``intentvision alerts test-rule`` prints this; it lives here so the query and the rule logic stay with
alerting, and the command only formats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from intentvision_dagster.alerting.dispatch import alert_labels
from intentvision_dagster.alerting.engine import load_alert_inputs
from intentvision_dagster.alerting.evaluate import evaluate
from intentvision_dagster.alerting.kinds import Rule
from intentvision_dagster.alerting.log import list_alerts
from intentvision_dagster.alerting.silences import list_silences, silencing
from intentvision_dagster.catalog import MetricCatalog
from intentvision_dagster.warehouse import SCHEMA, table_exists


@dataclass(frozen=True)
class RulePreview:
    """The candidates a rule would fire (``holding`` left out: they never open an alert), each marked
    ``already_open`` and with the ``silence_id`` that would mute it."""

    rule: Rule
    tenant: str
    partitions: int
    alerts: pd.DataFrame

    def lines(self, as_json: bool) -> list[str]:
        """One line per alert (a JSON object each with ``as_json``), then a summary line without it."""
        if as_json:
            return [
                json.dumps({**row, "details": json.loads(row["details"])})
                for row in self.alerts.to_dict(orient="records")
            ]
        lines = []
        for row in self.alerts.to_dict(orient="records"):
            muted = row["silence_id"]
            notes = [
                note
                for note in (
                    "already open" if row["already_open"] else "",
                    f"silenced by {muted}" if muted else "",
                )
                if note
            ]
            suffix = f" [{', '.join(notes)}]" if notes else ""
            lines.append(f"{row['severity']:<8} {row['status']:<7} {row['summary']}{suffix}")
        lines.append(
            f"rule {self.rule.name!r} ({self.rule.kind}) on {self.partitions} partition(s) of tenant "
            f"{self.tenant}: {len(self.alerts)} alert(s) would fire; nothing was sent"
        )
        return lines


def preview_rule(
    conn: duckdb.DuckDBPyConnection, rule: Rule, tenant: str, catalog: MetricCatalog, now: datetime
) -> RulePreview:
    """Evaluate ``rule`` on every partition of ``tenant`` in the warehouse, with the silences active at
    ``now``; nothing is written."""
    keys = []
    if table_exists(conn, "anomalies"):
        keys = [
            f"{tenant}/{metric}"
            for (metric,) in conn.execute(
                f"select distinct metric from {SCHEMA}.anomalies where tenant = ? order by metric",
                [tenant],
            ).fetchall()
        ]
    inputs = load_alert_inputs(conn, keys)
    open_alerts = (
        list_alerts(conn, tenant=tenant).query("state != 'resolved'")
        if table_exists(conn, "alert_log")
        else None
    )
    silences = list_silences(conn, tenant, active_at=now) if table_exists(conn, "alert_silences") else None
    units = {key.split("/", 1)[1]: catalog.spec(key.split("/", 1)[1]).unit for key in keys}
    candidates = evaluate([rule], **inputs, units=units)
    candidates = candidates[candidates["status"] != "holding"]
    rows = candidates.to_dict(orient="records")
    already_open = [
        open_alerts is not None
        and bool(((open_alerts["rule"] == row["rule"]) & (open_alerts["series"] == row["series"])).any())
        for row in rows
    ]
    muted = [None if silences is None else silencing(silences, tenant, alert_labels(row)) for row in rows]
    return RulePreview(
        rule, tenant, len(keys), candidates.assign(already_open=already_open, silence_id=muted)
    )
