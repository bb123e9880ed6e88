"""One alerting tick, without Dagster: evaluate rules on partitions -> alert log -> dispatch -> delivery.

The alert sensor, ``intentvision alerts tick`` and the replay benchmark all run this, with their own clock.
Every step writes its outcome to DuckDB before the next one acts on it, so a tick that dies anywhere and is
repeated (a sensor whose cursor did not advance) re-evaluates, finds the alerts and queued notifications
already recorded, and sends nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pandas as pd

from intentvision_dagster.alerting.charts import ChartDrawer
from intentvision_dagster.alerting.delivery import DeliveryReport, Notifier, deliver_notifications
from intentvision_dagster.alerting.dispatch import DispatchReport, dispatch
from intentvision_dagster.alerting.evaluate import CANDIDATE_COLUMNS, evaluate
from intentvision_dagster.alerting.inputs import last_actuals
from intentvision_dagster.alerting.log import record, resolve_missing, update_open
from intentvision_dagster.alerting.routing import Routing
from intentvision_dagster.alerting.rules import RuleSet
from intentvision_dagster.names import split_partition_key
from intentvision_dagster.warehouse import SCHEMA, arrow_frame, table_exists


def _select(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    keys: list[str],
    query: str = "select * from {table} where {where}",
) -> pd.DataFrame:
    if not table_exists(conn, table):
        return pd.DataFrame()
    where = "tenant || '/' || metric in (select unnest(?))"
    return arrow_frame(conn.sql(query.format(table=f"{SCHEMA}.{table}", where=where), params=[keys]))


def load_alert_inputs(conn: duckdb.DuckDBPyConnection, keys: list[str]) -> dict[str, pd.DataFrame]:
    """What rule evaluation needs for these partitions, read from the warehouse."""
    anomalies = _select(conn, "anomalies", keys)
    return {
        "forecasts": _select(conn, "forecasts", keys),
        "anomalies": anomalies,
        "accuracy": _select(conn, "forecast_accuracy", keys),
        # The modelled series (a counter's increase, like its forecast) is what the anomalies table holds.
        "last_actuals": last_actuals(anomalies),
        "actuals": anomalies[["unique_id", "ds", "y"]] if not anomalies.empty else None,
    }


def _for_tenant(inputs: Mapping[str, pd.DataFrame | None], tenant: str) -> dict[str, pd.DataFrame | None]:
    prefix = f"{tenant}/"
    picked = {}
    for name, frame in inputs.items():
        if frame is None or frame.empty:
            picked[name] = frame
        else:
            picked[name] = frame[frame["unique_id"].str.startswith(prefix)]
    return picked


def _metrics_by_tenant(keys: list[str]) -> dict[str, list[str]]:
    by_tenant: dict[str, list[str]] = {}
    for key in keys:
        tenant, metric = split_partition_key(key)
        by_tenant.setdefault(tenant, []).append(metric)
    return by_tenant


def partition_candidates(
    conn: duckdb.DuckDBPyConnection, keys: list[str], rules: RuleSet, units: Mapping[str, str]
) -> pd.DataFrame:
    """Each tenant's rules evaluated on its partitions, nothing logged: the candidates the alert sensor
    records, and what the pipeline's alert-status asset checks show."""
    inputs = load_alert_inputs(conn, keys)
    frames = [
        evaluate(rules.for_tenant(tenant), **_for_tenant(inputs, tenant), units=units)
        for tenant in sorted(_metrics_by_tenant(keys))
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CANDIDATE_COLUMNS)


def evaluate_partitions(
    conn: duckdb.DuckDBPyConnection,
    keys: list[str],
    rules: RuleSet,
    units: Mapping[str, str],
    now: datetime,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate each tenant's rules on its partitions; log new alerts, update and clear open ones.

    Returns (candidates, newly created alerts).
    """
    by_tenant = _metrics_by_tenant(keys)
    candidates = partition_candidates(conn, keys, rules, units)
    update_open(conn, candidates, now)
    created = record(conn, candidates, now)
    for tenant, metrics in by_tenant.items():
        names = [rule.name for rule in rules.for_tenant(tenant)]
        for metric in metrics:
            present = candidates[(candidates["tenant"] == tenant) & (candidates["metric"] == metric)]
            resolve_missing(conn, tenant, metric, names, set(present["series"]), now)
    return candidates, created


@dataclass
class TickReport:
    partitions: int = 0
    created: int = 0
    dispatch: DispatchReport = field(default_factory=DispatchReport)
    delivery: DeliveryReport = field(default_factory=DeliveryReport)

    def summary(self) -> str:
        return (
            f"{self.partitions} partition(s) evaluated: {self.created} new alert(s); "
            f"{self.dispatch.queued} notification(s) queued, {self.dispatch.resolved} alert(s) resolved, "
            f"{self.dispatch.silenced} silenced, {self.dispatch.inhibited} inhibited; "
            f"{self.delivery.sent} sent, {self.delivery.reconciled} found already sent, "
            f"{self.delivery.failed} failed; {self.delivery.charts} chart(s) attached"
        )


def run_tick(
    conn: duckdb.DuckDBPyConnection,
    keys: list[str],
    rules: RuleSet,
    routing: Routing,
    units: Mapping[str, str],
    notifier: Notifier,
    now: datetime,
    ui_url: str = "http://127.0.0.1:3000",
    charts: Mapping[str, ChartDrawer] | None = None,
) -> TickReport:
    """Evaluate the partitions with new data (may be none), then dispatch and deliver for every tenant
    (``charts``: a chart drawer per asset, for the charts new messages carry)."""
    report = TickReport(partitions=len(keys))
    if keys:
        _, created = evaluate_partitions(conn, sorted(keys), rules, units, now)
        report.created = len(created)
    report.dispatch = dispatch(conn, routing, now, ui_url)
    report.delivery = deliver_notifications(conn, notifier, now, charts=charts)
    return report
