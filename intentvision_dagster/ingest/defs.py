"""Landing sensor and the ``raw_series`` asset: landed batches become partitions, runs and a merged table."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from intentvision_dagster.ingest.landing import read_landed_many, remove_stale_tmp, unseen_batches
from intentvision_dagster.names import partition_key, split_partition_key
from intentvision_dagster.partitions import series_asset, series_partitions
from intentvision_dagster.resources import ProjectConfig
from intentvision_dagster.series import SERIES_COLUMNS

PIPELINE_JOB_NAME = "series_pipeline"


def tenant_tags(keys: list[str]) -> dict[str, str]:
    """Tag a run with its tenant so the Dagster UI can filter runs per tenant."""
    tenants = sorted({split_partition_key(key)[0] for key in keys})
    return {"intentvision/tenant": tenants[0] if len(tenants) == 1 else "multiple"}


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
