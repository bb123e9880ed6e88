"""The alert sensors: new forecasts/anomalies -> rules -> alert log -> groups -> Slack or the outbox, and
failed runs of the product's own jobs -> the operator channel; and the per-partition alert-status checks on
``forecasts`` (``capacity``) and ``anomalies`` (``open_anomalies``) that show in the Dagster UI where to look.

Delivery is idempotent: alerts are keyed by a dedup key in the DuckDB alert log and each group notification
is queued under a deterministic id before it is sent (see :mod:`intentvision_dagster.alerting.engine`), so a
tick that raises and repeats (its cursor not advanced) re-evaluates but sends nothing twice. The sensor pages
through materialization records itself instead of using ``@asset_sensor``, which only sees the newest
materialization after its cursor, and it dispatches on every tick, so group timers (group_wait,
repeat_interval) and silences expiring take effect without new data.
"""

import json

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from intentvision_dagster.alerting.delivery import deliver_notifications
from intentvision_dagster.alerting.dispatch import queue_run_failure
from intentvision_dagster.alerting.engine import partition_candidates, run_tick
from intentvision_dagster.alerting.resources import AlertDelivery, AlertRules
from intentvision_dagster.alerting.status import STATUS_KINDS, PartitionStatus, partition_statuses
from intentvision_dagster.jobs import TENANT_TAG
from intentvision_dagster.names import split_partition_key
from intentvision_dagster.partitions import series_partitions
from intentvision_dagster.resources import ProjectConfig

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


def metric_units(project: ProjectConfig, keys: set[str] | list[str]) -> dict[str, str]:
    """metric -> unit from the catalog, for the metrics of these partitions (alert wording only)."""
    catalog = project.catalog()
    return {metric: catalog.spec(metric).unit for metric in {split_partition_key(key)[1] for key in keys}}


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def alert_sensor(
    context: dg.SensorEvaluationContext,
    project: ProjectConfig,
    alert_rules: AlertRules,
    delivery: AlertDelivery,
    warehouse: DuckDBResource,
) -> dg.SensorResult:
    """Evaluate rules on partitions with new forecasts or anomalies; group, suppress and deliver."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    keys, advanced = new_materialized_partitions(context.instance, cursor)
    units = metric_units(project, keys)
    with warehouse.get_connection() as conn:
        report = run_tick(
            conn,
            sorted(keys),
            alert_rules.rule_set(),
            delivery.routing(),
            units,
            delivery.notifier(),
            _utc_now(),
            delivery.dagster_ui_url,
        )
    summary = report.summary()
    context.log.info(summary)
    for error in report.delivery.errors:
        context.log.warning(error)
    busy = keys or report.dispatch.queued or report.delivery.sent or report.delivery.failed
    return dg.SensorResult(cursor=json.dumps(advanced), skip_reason=None if busy else summary)


@dg.run_failure_sensor(name="run_failure_alert_sensor", default_status=dg.DefaultSensorStatus.RUNNING)
def run_failure_alert_sensor(
    context: dg.RunFailureSensorContext, delivery: AlertDelivery, warehouse: DuckDBResource
) -> None:
    """Tell the operators (Slack or the outbox) when one of the product's runs fails, once per run."""
    run = context.dagster_run
    error = context.failure_event.message or "run failed"
    tenant = run.tags.get(TENANT_TAG)
    with warehouse.get_connection() as conn:
        notification_id = queue_run_failure(
            conn,
            run.run_id,
            run.job_name,
            error,
            None if tenant in (None, "multiple") else tenant,
            delivery.routing(),
            _utc_now(),
            delivery.dagster_ui_url,
        )
        report = deliver_notifications(conn, delivery.notifier(), _utc_now(), only=[notification_id])
    for failure in report.errors:
        context.log.warning(failure)


CHECK_ASSETS = {"capacity": "forecasts", "open_anomalies": "anomalies"}
CHECK_SEVERITY = {"critical": dg.AssetCheckSeverity.ERROR}
"""Check severity per worst alert severity; anything else that alerts (warning, info) is a WARN."""


def status_evaluation(check_name: str, key: str, status: PartitionStatus) -> dg.AssetCheckEvaluation:
    """One partition's check result, with the series concerned as a Dagster table."""
    columns = [
        dg.TableColumn(name, "float" if name in ("probability", "peak_score") else "string")
        for name in status.rows.columns
    ]
    records = [dg.TableRecord(row) for row in status.rows.astype(object).to_dict("records")]
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(CHECK_ASSETS[check_name]),
        check_name=check_name,
        passed=not status.severity,
        severity=CHECK_SEVERITY.get(status.severity, dg.AssetCheckSeverity.WARN),
        description=status.description,
        partition=key,
        metadata={
            "worst_severity": status.severity or "clear",
            "series_concerned": status.total,
            "series": dg.MetadataValue.table(records, schema=dg.TableSchema(columns=columns)),
        },
    )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            kind.check_name,
            asset=CHECK_ASSETS[kind.check_name],
            partitions_def=series_partitions,
            description=kind.description,
        )
        for kind in STATUS_KINDS
    ],
    can_subset=True,
    pool="warehouse",
)
def alert_status(
    context: dg.AssetCheckExecutionContext,
    project: ProjectConfig,
    alert_rules: AlertRules,
    warehouse: DuckDBResource,
):
    """Per partition, the worst alert the rules raise on the run's fresh forecasts and anomalies.

    One result per partition of the run, a range run included: Dagster's ``AssetCheckResult`` takes no
    partition and a range run's step has none to give it, so the check yields ``AssetCheckEvaluation``
    events that each name their partition (see docs/known-limits.md).
    """
    keys = sorted(context.partition_keys)
    rules = alert_rules.rule_set()
    with warehouse.get_connection() as conn:
        candidates = partition_candidates(conn, keys, rules, metric_units(project, keys))
    selected = {check_key.name for check_key in context.selected_asset_check_keys}
    for kind in STATUS_KINDS:
        if kind.check_name not in selected:
            continue
        for key, status in partition_statuses(kind, candidates, keys, rules).items():
            yield status_evaluation(kind.check_name, key, status)
