"""Landing sensor and the ``raw_series`` asset: landed batches become partitions, runs and a merged table;
the Prometheus pull sensor lands PromQL query results like any other batch."""

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from intentvision_dagster.ingest.prometheus_pull import load_sources, pull_source
from intentvision_dagster.jobs import PIPELINE_JOB_NAME, tenant_tags
from intentvision_dagster.landing import read_landed_many, remove_stale_tmp, unseen_batches
from intentvision_dagster.names import partition_key, split_partition_key
from intentvision_dagster.partitions import series_asset, series_partitions
from intentvision_dagster.resources import ProjectConfig
from intentvision_dagster.series import SERIES_COLUMNS


@series_asset(
    kinds={"duckdb", "pandas"},
)
def raw_series(context: dg.AssetExecutionContext, project: ProjectConfig) -> pd.DataFrame:
    """Every landed point of the partition's series, merged across batches; the newest batch wins."""
    landing = Path(project.landing_dir)
    frame = read_landed_many(landing, [split_partition_key(key) for key in context.partition_keys])
    context.add_output_metadata(
        {
            "series": int(frame["unique_id"].nunique()),
            "points": len(frame),
            "first_ds": str(frame["ds"].min()) if len(frame) else "",
            "last_ds": str(frame["ds"].max()) if len(frame) else "",
        }
    )
    return frame[SERIES_COLUMNS]


@dg.sensor(
    job_name=PIPELINE_JOB_NAME, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING
)
def landing_sensor(
    context: dg.SensorEvaluationContext, project: ProjectConfig
) -> dg.SensorResult | dg.SkipReason:
    """Turn newly landed batches into partitions (new tenant/metric pairs) and pipeline runs."""
    landing = Path(project.landing_dir)
    for leftover in remove_stale_tmp(landing):
        context.log.warning(f"removed a half-written batch left by a crashed writer: {leftover.name}")
    batches, cursor = unseen_batches(landing, json.loads(context.cursor or "{}"))
    if not batches:
        return dg.SkipReason("no new landed batches")
    keys = sorted({partition_key(b.tenant, metric) for b in batches for metric in b.metrics})
    known = set(context.instance.get_dynamic_partitions(series_partitions.name))
    new_keys = [key for key in keys if key not in known]
    last_batch = batches[-1].batch_id
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=f"{key}@{last_batch}", partition_key=key, tags=tenant_tags([key]))
            for key in keys
        ],
        dynamic_partitions_requests=[series_partitions.build_add_request(new_keys)] if new_keys else [],
        cursor=json.dumps(cursor),
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
