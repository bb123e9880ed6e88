"""The charts an incident's first message carries: one per partition and chart among its firing alerts, over
the series those alerts concern.

Alerting does not draw: the chart of an alert comes from the domain whose asset raised it (its rule kind's
``asset``: ``forecasts`` or ``anomalies``), passed in as a :data:`ChartDrawer` per asset (the alert sensor
binds the domains' ``AlertChart`` resources). This module picks the series and reads their rows from the
warehouse, only ever the notification's own tenant's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from intentvision_dagster.alerting.kinds import kind_of
from intentvision_dagster.warehouse import SCHEMA, arrow_frame, table_exists

ChartDrawer = Callable[[str, str, pd.DataFrame, pd.DataFrame], bytes | None]
"""(tenant, metric, the series' ``anomalies`` rows, their ``forecasts`` rows) -> PNG, or None."""
MAX_CHARTS = 3
"""Charts per message: a group spanning many partitions shows its first ones (worst alerts first)."""
MAX_SERIES = 6
"""Series per chart, as on the asset pages."""
_TITLES = {"forecasts": "forecast", "anomalies": "anomalies"}


@dataclass(frozen=True)
class Chart:
    filename: str
    title: str
    png: bytes


@dataclass
class _Wanted:
    tenant: str
    metric: str
    asset: str
    series: list[str]


def _wanted(payload: Mapping[str, Any], tenant: str, assets: set[str]) -> list[_Wanted]:
    """(asset, partition) pairs of the firing alerts in message order (worst first), with their series."""
    wanted: dict[tuple[str, str], _Wanted] = {}
    for alert in payload.get("firing", []):
        details = alert.get("details") or {}
        kind = kind_of(details)
        series = str(alert["series"])
        if kind is None or kind.asset not in assets or not series.startswith(f"{tenant}/"):
            continue
        key = (kind.asset, str(alert["metric"]))
        if key not in wanted:
            if len(wanted) == MAX_CHARTS:
                continue
            wanted[key] = _Wanted(tenant, key[1], kind.asset, [])
        if series not in wanted[key].series and len(wanted[key].series) < MAX_SERIES:
            wanted[key].series.append(series)
    return list(wanted.values())


def _rows(conn: duckdb.DuckDBPyConnection, table: str, wanted: _Wanted) -> pd.DataFrame:
    if not table_exists(conn, table):
        return pd.DataFrame(columns=["unique_id", "ds"])
    query = (
        f"select * from {SCHEMA}.{table} where tenant = ? and metric = ? "
        "and list_contains(?::varchar[], unique_id) order by unique_id, ds"
    )
    return arrow_frame(conn.sql(query, params=[wanted.tenant, wanted.metric, wanted.series]))


def notification_charts(
    conn: duckdb.DuckDBPyConnection, notification: Mapping[str, Any], drawers: Mapping[str, ChartDrawer]
) -> list[Chart]:
    """The charts of a queued notification (a row of alert_notifications), drawn from the warehouse's current
    rows; empty when none of its alerts has a chart (e.g. a run failure)."""
    tenant = notification["tenant"]
    charts = []
    for wanted in _wanted(json.loads(notification["payload"]), tenant, set(drawers)):
        png = drawers[wanted.asset](
            tenant, wanted.metric, _rows(conn, "anomalies", wanted), _rows(conn, "forecasts", wanted)
        )
        if png is None:
            continue
        what = _TITLES.get(wanted.asset, wanted.asset)
        shown = wanted.series[0] if len(wanted.series) == 1 else f"{tenant}/{wanted.metric}"
        charts.append(
            Chart(
                filename=f"{notification['id']}-{wanted.metric}-{what}.png",
                title=f"{shown}: {what} ({len(wanted.series)} series)",
                png=png,
            )
        )
    return charts
