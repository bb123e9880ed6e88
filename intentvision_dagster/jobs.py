"""The series pipeline job, the tags its runs carry, and the nightly schedule over all partitions.

One place for what ingest, forecasting, alerting and the CLI all need to name: the job, its tenant tag and
how the night is cut into runs.
"""

import dagster as dg

from intentvision_dagster.names import split_partition_key
from intentvision_dagster.partitions import series_partitions

PIPELINE_JOB_NAME = "series_pipeline"
PIPELINE_ASSETS = ("raw_series", "validated_series", "anomalies", "forecast_accuracy", "forecasts")
TENANT_TAG = "intentvision/tenant"
NIGHTLY_TAG = "intentvision/nightly"
NIGHTLY_PARTITIONS_PER_RUN = 100


def tenant_tags(keys: list[str]) -> dict[str, str]:
    """Tag a run with its tenant so the Dagster UI can filter runs per tenant."""
    tenants = sorted({split_partition_key(key)[0] for key in keys})
    return {TENANT_TAG: tenants[0] if len(tenants) == 1 else "multiple"}


pipeline_job = dg.define_asset_job(
    PIPELINE_JOB_NAME,
    selection=dg.AssetSelection.assets(*PIPELINE_ASSETS),
    partitions_def=series_partitions,
    executor_def=dg.in_process_executor,
    description="Ingest, validate, detect anomalies, forecast and backtest the selected partitions.",
)


def nightly_run_requests(keys: list[str], per_run: int = NIGHTLY_PARTITIONS_PER_RUN) -> list[dg.RunRequest]:
    """Cover every partition with contiguous key ranges of at most ``per_run`` keys: few, bounded runs."""
    requests = []
    for start in range(0, len(keys), per_run):
        chunk = keys[start : start + per_run]
        requests.append(
            dg.RunRequest(
                tags={
                    "dagster/asset_partition_range_start": chunk[0],
                    "dagster/asset_partition_range_end": chunk[-1],
                    NIGHTLY_TAG: "true",
                }
            )
        )
    return requests


def build_nightly_schedule(cron: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        job_name=PIPELINE_JOB_NAME,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        name="nightly_forecasts",
    )
    def nightly_forecasts(context: dg.ScheduleEvaluationContext):
        """Refresh forecasts, accuracy and anomalies for every active partition."""
        keys = context.instance.get_dynamic_partitions(series_partitions.name)
        return nightly_run_requests(keys) or dg.SkipReason("no partitions yet: land some data first")

    return nightly_forecasts
