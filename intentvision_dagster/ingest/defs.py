"""Landing sensor and the ``raw_series`` asset: landed batches become partitions, runs and a merged table;
the Prometheus pull sensor lands PromQL query results like any other batch."""

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from intentvision_dagster.ingest.prometheus_pull import load_sources, pull_source
from intentvision_dagster.jobs import PIPELINE_JOB_NAME, landing_run_requests
from intentvision_dagster.landing import (
    LandedBatch,
    cursor_covers,
    cursor_of,
    list_batches,
    read_landed_many,
    remove_stale_tmp,
    unseen_batches,
)
from intentvision_dagster.names import partition_key, split_partition_key
from intentvision_dagster.partitions import series_asset, series_partitions
from intentvision_dagster.resources import ProjectConfig
from intentvision_dagster.series import SERIES_COLUMNS

READ_BATCHES = "landed_batches"
"""``raw_series`` metadata: a landing cursor of the batches the materialization read."""
MAX_SEEN_IN_METADATA = 200
"""Recent batch ids kept in that cursor; a busier partition's older recent batches count as unread."""


@series_asset(
    kinds={"duckdb", "pandas"},
)
def raw_series(context: dg.AssetExecutionContext, project: ProjectConfig) -> pd.DataFrame:
    """Every landed point of the partition's series, merged across batches; the newest batch wins."""
    landing = Path(project.landing_dir)
    keys = [split_partition_key(key) for key in context.partition_keys]
    wanted = set(keys)
    # Listed before reading, so every batch listed is read: the landing sensor skips these batches when it
    # starts without a cursor (the first `make ui` after `make demo` or `intentvision run`).
    listed = [
        batch
        for batch in list_batches(landing, tenants={tenant for tenant, _ in keys})
        if any((batch.tenant, metric) in wanted for metric in batch.metrics)
    ]
    frame = read_landed_many(landing, keys)
    context.add_output_metadata(
        {
            "series": int(frame["unique_id"].nunique()),
            "points": len(frame),
            "first_ds": str(frame["ds"].min()) if len(frame) else "",
            "last_ds": str(frame["ds"].max()) if len(frame) else "",
            READ_BATCHES: dg.MetadataValue.json(
                cursor_of((batch.batch_id for batch in listed), max_seen=MAX_SEEN_IN_METADATA)
            ),
        }
    )
    return frame[SERIES_COLUMNS]


def already_read(instance: dg.DagsterInstance, batches: list[LandedBatch]) -> set[str]:
    """The ids of the batches that the latest ``raw_series`` materialization of every partition they touch
    has read (its ``landed_batches`` metadata): data a run outside the daemon (``make demo``,
    ``intentvision run``) processed already."""
    read_by: dict[str, dict] = {}

    def cursor(key: str) -> dict:
        if key not in read_by:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_series"), asset_partitions=[key]), limit=1
            ).records
            entry = records[0].asset_materialization.metadata.get(READ_BATCHES) if records else None
            read_by[key] = entry.value if entry is not None else {}
        return read_by[key]

    return {
        batch.batch_id
        for batch in batches
        if all(cursor_covers(cursor(partition_key(batch.tenant, m)), batch.batch_id) for m in batch.metrics)
    }


@dg.sensor(
    job_name=PIPELINE_JOB_NAME, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING
)
def landing_sensor(
    context: dg.SensorEvaluationContext, project: ProjectConfig
) -> dg.SensorResult | dg.SkipReason:
    """Turn newly landed batches into partitions (new tenant/metric pairs) and coalesced pipeline runs.

    One run per contiguous range of a tenant's touched partitions, none for partitions a waiting run already
    covers, and a few waiting runs per tenant at most (see :func:`~.jobs.landing_run_requests`):
    a stream of many metric names makes a handful of runs, not one per metric per tick. Partitions held back
    stay in the cursor and are requested on a later tick.
    """
    landing = Path(project.landing_dir)
    for leftover in remove_stale_tmp(landing):
        context.log.warning(f"removed a half-written batch left by a crashed writer: {leftover.name}")
    state = json.loads(context.cursor or "{}")
    batches, cursor = unseen_batches(landing, state)
    if not context.cursor:  # a first tick: batches that runs outside the daemon processed are not new
        done = already_read(context.instance, batches)
        batches = [batch for batch in batches if batch.batch_id not in done]
    touched = {partition_key(b.tenant, metric) for b in batches for metric in b.metrics}
    touched |= set(state.get("pending", []))
    if not touched:
        return dg.SkipReason("no new landed batches")
    known = context.instance.get_dynamic_partitions(series_partitions.name)
    new_keys = sorted(touched - set(known))
    requests, deferred = landing_run_requests(
        context.instance, [*known, *new_keys], touched, cursor["newest"]
    )
    if deferred:
        context.log.info(
            f"{len(deferred)} partition(s) wait for their tenant's queued runs: {sorted(deferred)[:5]}"
        )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[series_partitions.build_add_request(new_keys)] if new_keys else [],
        cursor=json.dumps({**cursor, "pending": sorted(deferred)}),
        skip_reason=None if requests else f"{len(touched)} touched partition(s) already have waiting runs",
    )


class PrometheusPull(dg.ConfigurableResource):
    """Where the pull sources are configured and where pulled batches land."""

    sources_path: str
    landing_dir: str


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def prometheus_pull_sensor(
    context: dg.SensorEvaluationContext, prometheus_pull: PrometheusPull
) -> dg.SkipReason:
    """Pull every configured PromQL source into the landing area; the landing sensor then requests runs.

    The cursor holds each source's last pulled end time; a failing source is logged and retried next tick
    without holding the others back.
    """
    sources = load_sources(Path(prometheus_pull.sources_path))
    if not sources:
        return dg.SkipReason(f"no Prometheus sources configured in {prometheus_pull.sources_path}")
    cursor = json.loads(context.cursor or "{}")
    outcomes = []
    for source in sources:
        last = cursor.get(source.key)
        try:
            batch, end = pull_source(
                source, Path(prometheus_pull.landing_dir), datetime.fromisoformat(last) if last else None
            )
        except Exception as exc:  # one source down must not stop the others
            context.log.warning(f"Prometheus source {source.key} failed: {exc}")
            outcomes.append(f"{source.key}: failed")
            continue
        cursor[source.key] = end.astimezone(UTC).isoformat()
        outcomes.append(f"{source.key}: {batch.rows if batch else 0} points")
    context.update_cursor(json.dumps(cursor))
    return dg.SkipReason("pulled " + "; ".join(outcomes))
