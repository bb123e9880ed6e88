"""The alert sensor: new forecasts/anomalies -> rule evaluation -> alert log -> Slack or the outbox.

Delivery is idempotent: every alert is keyed by a dedup key in the DuckDB alert log and marked delivered right
after it is sent, so a tick that raises and repeats (its cursor not advanced) re-evaluates but sends nothing
twice. The sensor pages through materialization records itself instead of using ``@asset_sensor``, which only
sees the newest materialization after its cursor.
"""

import json

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from intentvision_dagster.alerting.delivery import deliver_pending
from intentvision_dagster.alerting.evaluate import evaluate
from intentvision_dagster.alerting.log import record, resolve_missing
from intentvision_dagster.names import split_partition_key
from intentvision_dagster.resources import AlertDelivery, ProjectConfig
from intentvision_dagster.warehouse import SCHEMA, arrow_frame, table_exists

WATCHED_ASSETS = ("forecasts", "anomalies")
PAGE_SIZE = 200


def new_materialized_partitions(
    instance: dg.DagsterInstance, cursor: dict[str, str | None]
) -> tuple[set[str], dict[str, str | None]]:
    """Partition keys materialized since the cursor, for every watched asset, and the advanced cursor."""
    keys: set[str] = set()
    advanced = dict(cursor)
    for asset in WATCHED_ASSETS:
        has_more = True
        while has_more:
            page = instance.fetch_materializations(
                dg.AssetKey(asset), limit=PAGE_SIZE, cursor=advanced.get(asset), ascending=True
            )
            keys.update(record.partition_key for record in page.records if record.partition_key)
            if page.records:
                advanced[asset] = page.cursor
            has_more = page.has_more
    return keys, advanced


def _select(
    conn, table: str, keys: list[str], query: str = "select * from {table} where {where}"
) -> pd.DataFrame:
    if not table_exists(conn, table):
        return pd.DataFrame()
    where = "tenant || '/' || metric in (select unnest(?))"
    return arrow_frame(conn.sql(query.format(table=f"{SCHEMA}.{table}", where=where), params=[keys]))


def load_alert_inputs(conn, keys: list[str]) -> dict[str, pd.DataFrame]:
    """What rule evaluation needs for these partitions, read from the warehouse."""
    return {
        "forecasts": _select(conn, "forecasts", keys),
        "anomalies": _select(conn, "anomalies", keys),
        "accuracy": _select(conn, "forecast_accuracy", keys),
        "last_actuals": _select(  # the modelled series: a counter's increase, like its forecast
            conn,
            "anomalies",
            keys,
            "select unique_id, ds, y from {table} where {where} "
            "qualify row_number() over (partition by unique_id order by ds desc) = 1",
        ),
    }


def evaluate_partitions(
    conn, keys: list[str], rules: list, units: dict[str, str], now: pd.Timestamp
) -> pd.DataFrame:
    """Evaluate every rule on these partitions, log new alerts and resolve the ones that cleared."""
    candidates = evaluate(rules, **load_alert_inputs(conn, keys), units=units)
    created = record(conn, candidates, now)
    for key in keys:
        tenant, metric = split_partition_key(key)
        firing = candidates[(candidates["tenant"] == tenant) & (candidates["metric"] == metric)]
        resolve_missing(conn, tenant, metric, [rule.name for rule in rules], set(firing["series"]), now)
    return created


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def alert_sensor(
    context: dg.SensorEvaluationContext,
    project: ProjectConfig,
    delivery: AlertDelivery,
    warehouse: DuckDBResource,
) -> dg.SensorResult:
    """Evaluate rules on partitions with new forecasts or anomalies; deliver new and retryable alerts."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    keys, advanced = new_materialized_partitions(context.instance, cursor)
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    with warehouse.get_connection() as conn:
        catalog = project.catalog()
        units = {
            metric: catalog.spec(metric).unit for metric in {split_partition_key(key)[1] for key in keys}
        }
        created = (
            evaluate_partitions(conn, sorted(keys), project.rules(), units, now) if keys else pd.DataFrame()
        )
        report = deliver_pending(conn, delivery.notifier(), now)
    summary = (
        f"{len(keys)} partition(s) evaluated: {len(created)} new alert(s), "
        f"{report.sent} sent, {report.failed} failed"
    )
    context.log.info(summary)
    return dg.SensorResult(cursor=json.dumps(advanced), skip_reason=None if keys or report.sent else summary)
