"""``validated_series``: pandera schema + quarantine, with the Great Expectations suite as asset checks."""

import time

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from intentvision_dagster.frequency import sampling_freq
from intentvision_dagster.isolation import each_partition
from intentvision_dagster.partitions import keep_failed_partitions, series_asset, series_partitions
from intentvision_dagster.quality.expectations import ExpectationOutcome, run_expectations
from intentvision_dagster.quality.schema import QUARANTINE_COLUMNS, NoValidRowsError, Split, split_valid
from intentvision_dagster.resources import ProjectConfig
from intentvision_dagster.series import SERIES_COLUMNS
from intentvision_dagster.warehouse import SCHEMA, transaction

QUARANTINE_TABLE = f"{SCHEMA}.quarantine"
EXPECTATIONS = {
    "completeness": "Each series misses at most the metric's max_gap_ratio of its sampling steps "
    "(assets/metrics.yaml).",
    "freshness": "Each series' newest point is younger than the metric's max_staleness.",
    "value_range": "Every value lies within the metric's min and max (when the catalog sets them).",
    "not_null": "No validated point lacks a timestamp or value.",
}
"""The Great Expectations suite run on each partition of ``validated_series``: name -> what it checks."""


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
    """Rows that pass the pandera schema; the rest go to ``intentvision.quarantine`` with the reason.

    Repeated timestamps of a series are merged per the metric's kind and logged as a warning per partition,
    with counts only (a range run's log is shared by its tenants). A partition with nothing valid (or nothing
    landed) is skipped and reported, its quarantined rows still stored; the run's other partitions go on (see
    :func:`~.partitions.keep_failed_partitions`).
    """
    catalog = project.catalog()
    keys = list(context.partition_keys)
    started = time.perf_counter()
    refused: list[pd.DataFrame] = []

    def validate(tenant: str, metric: str, rows: pd.DataFrame) -> Split:
        if rows.empty:
            raise ValueError(f"tenant {tenant!r}, metric {metric!r}: no landed rows to validate")
        try:
            return split_valid(rows, catalog.spec(metric))
        except NoValidRowsError as exc:
            refused.append(exc.quarantined)
            raise

    done = each_partition(keys, raw_series, validate)
    refused.extend(split.quarantined for split in done.results.values())
    merged = {
        key: split.repeats.warning(with_example=False) for key, split in done.results.items() if split.repeats
    }
    for key, note in merged.items():
        context.log.warning(f"{key}: {note}")
    quarantined = (
        pd.concat(refused, ignore_index=True) if refused else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    )
    with warehouse.get_connection() as conn:
        replace_quarantine(conn, keys, quarantined)
    kept, skipped = keep_failed_partitions(context, done.failed, len(done.results), warehouse)
    valid = pd.concat([*(split.valid for split in done.results.values()), *kept], ignore_index=True)
    compute_seconds = time.perf_counter() - started
    by_rule = quarantined["rule"].value_counts().to_dict() if len(quarantined) else {}
    context.add_output_metadata(
        {
            "valid_rows": len(valid),
            "compute_seconds": compute_seconds,
            "quarantined_rows": len(quarantined),
            "quarantined_by_rule": dg.MetadataValue.json({str(k): int(v) for k, v in by_rule.items()}),
            "quarantine_table": QUARANTINE_TABLE,
            "merged_repeats": dg.MetadataValue.json(merged),
            **skipped,
        }
    )
    return valid[SERIES_COLUMNS]


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            name, asset="validated_series", partitions_def=series_partitions, description=description
        )
        for name, description in EXPECTATIONS.items()
    ],
)
def validated_series_expectations(
    context: dg.AssetCheckExecutionContext, validated_series: pd.DataFrame, project: ProjectConfig
):
    """The Great Expectations suite (completeness, freshness, value range, not-null) per partition.

    A partition whose series have one timestamp each is warming up (no step to judge gaps by yet): every
    expectation passes with that said. A partition the suite cannot run on fails each expectation with the
    reason, without hiding the other partitions' verdicts.
    """
    catalog = project.catalog()
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)

    def check(tenant: str, metric: str, frame: pd.DataFrame) -> list[ExpectationOutcome]:
        freq = sampling_freq(frame)
        if freq is None:
            note = f"{tenant}/{metric}: warming up ({len(frame)} point(s), waiting for a second timestamp)"
            return [ExpectationOutcome(name, True, {"points": len(frame)}, note) for name in EXPECTATIONS]
        return run_expectations(frame, catalog.spec(metric), freq, now)

    keys = sorted(
        f"{tenant}/{metric}" for tenant, metric in validated_series.groupby(["tenant", "metric"]).groups
    )
    done = each_partition(keys, validated_series, check)
    outcomes: dict[str, list] = {name: [] for name in EXPECTATIONS}
    for key, results in done.results.items():
        for outcome in results:
            outcomes[outcome.name].append((key, outcome))
    for key, reason in done.failed.items():
        for name in EXPECTATIONS:
            outcomes[name].append(
                (key, ExpectationOutcome(name, False, {}, f"{key}: could not check: {reason}"))
            )
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
