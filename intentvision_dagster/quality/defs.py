"""``validated_series``: pandera schema + quarantine, with the Great Expectations suite as asset checks."""

import time

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from intentvision_dagster.frequency import infer_freq
from intentvision_dagster.names import split_partition_key
from intentvision_dagster.partitions import series_asset, series_partitions
from intentvision_dagster.quality.expectations import run_expectations
from intentvision_dagster.quality.schema import NoValidRowsError, split_valid
from intentvision_dagster.resources import ProjectConfig
from intentvision_dagster.series import SERIES_COLUMNS
from intentvision_dagster.warehouse import SCHEMA, transaction

QUARANTINE_TABLE = f"{SCHEMA}.quarantine"
EXPECTATIONS = ("completeness", "freshness", "value_range", "not_null")


def replace_quarantine(conn, keys: list[str], quarantined: pd.DataFrame) -> None:
    """Replace the quarantined rows of these partitions in one transaction (idempotent reruns)."""
    conn.execute(f"create schema if not exists {SCHEMA}")
    conn.execute(
        f"create table if not exists {QUARANTINE_TABLE} (tenant varchar, metric varchar, labels varchar, "
        "unique_id varchar, ds timestamp, y double, rule varchar, reason varchar, quarantined_at timestamp)"
    )
    with transaction(conn):
        conn.execute(
            f"delete from {QUARANTINE_TABLE} where tenant || '/' || metric in (select unnest(?))", [keys]
        )
        if len(quarantined):
            conn.register(
                "quarantined_rows",
                quarantined.assign(quarantined_at=pd.Timestamp.now(tz="UTC").tz_localize(None)),
            )
            conn.execute(
                f"insert into {QUARANTINE_TABLE} select tenant, metric, labels, unique_id, ds, y, rule, "
                "reason, quarantined_at from quarantined_rows"
            )


@series_asset(
    kinds={"duckdb", "pandas"},
)
def validated_series(
    context: dg.AssetExecutionContext,
    raw_series: pd.DataFrame,
    project: ProjectConfig,
    warehouse: DuckDBResource,
) -> pd.DataFrame:
    """Rows that pass the pandera schema; the rest go to ``intentvision.quarantine`` with the reason."""
    catalog = project.catalog()
    keys = list(context.partition_keys)
    started = time.perf_counter()
    valid_parts, quarantined_parts = [], []
    for key in keys:
        tenant, metric = split_partition_key(key)
        rows = raw_series[(raw_series["tenant"] == tenant) & (raw_series["metric"] == metric)]
        if rows.empty:
            raise dg.Failure(f"tenant {tenant!r}, metric {metric!r}: no landed rows to validate")
        try:
            valid, quarantined = split_valid(rows, catalog.spec(metric))
        except NoValidRowsError as exc:
            raise dg.Failure(str(exc)) from exc
        valid_parts.append(valid)
        quarantined_parts.append(quarantined)
    valid = pd.concat(valid_parts, ignore_index=True)
    quarantined = pd.concat(quarantined_parts, ignore_index=True)
    compute_seconds = time.perf_counter() - started
    with warehouse.get_connection() as conn:
        replace_quarantine(conn, keys, quarantined)
    by_rule = quarantined["rule"].value_counts().to_dict() if len(quarantined) else {}
    context.add_output_metadata(
        {
            "valid_rows": len(valid),
            "compute_seconds": compute_seconds,
            "quarantined_rows": len(quarantined),
            "quarantined_by_rule": dg.MetadataValue.json({str(k): int(v) for k, v in by_rule.items()}),
            "quarantine_table": QUARANTINE_TABLE,
        }
    )
    return valid[SERIES_COLUMNS]


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(name, asset="validated_series", partitions_def=series_partitions)
        for name in EXPECTATIONS
    ],
)
def validated_series_expectations(
    context: dg.AssetCheckExecutionContext, validated_series: pd.DataFrame, project: ProjectConfig
):
    """The Great Expectations suite (completeness, freshness, value range, not-null) per partition."""
    catalog = project.catalog()
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    outcomes: dict[str, list] = {name: [] for name in EXPECTATIONS}
    for (tenant, metric), frame in validated_series.groupby(["tenant", "metric"], sort=True):
        for outcome in run_expectations(frame, catalog.spec(metric), infer_freq(frame), now):
            outcomes[outcome.name].append((f"{tenant}/{metric}", outcome))
    for name in EXPECTATIONS:
        results = outcomes[name]
        failed = [key for key, outcome in results if not outcome.success]
        yield dg.AssetCheckResult(
            check_name=name,
            asset_key="validated_series",
            passed=not failed,
            severity=dg.AssetCheckSeverity.WARN,
            description="; ".join(outcome.description for _, outcome in results if not outcome.success)
            or f"{name} holds for {len(results)} partition(s)",
            metadata={
                "failed_partitions": dg.MetadataValue.json(failed),
                "observed": dg.MetadataValue.json({key: outcome.observed for key, outcome in results}),
            },
        )
