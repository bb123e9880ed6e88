"""The series pipeline job, the tags its runs carry, the nightly schedule over all partitions, and the
sweeper that fails runs whose process died.

One place for what ingest, forecasting, alerting and the CLI all need to name: the job, its tenant tag and
how the night is cut into runs.
"""

import socket
from collections import Counter
from collections.abc import Iterable

import dagster as dg

from intentvision_dagster.names import split_partition_key
from intentvision_dagster.partitions import series_partitions
from intentvision_dagster.processes import process_gone, process_identity

PIPELINE_JOB_NAME = "series_pipeline"
PIPELINE_ASSETS = ("raw_series", "validated_series", "anomalies", "forecast_accuracy", "forecasts")
TENANT_TAG = "intentvision/tenant"
NIGHTLY_TAG = "intentvision/nightly"
NIGHTLY_PARTITIONS_PER_RUN = 100
MAX_QUEUED_RUNS_PER_TENANT = 2
"""Runs one tenant may have waiting in the queue; more touched partitions wait for a free place."""
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PROCESS_TAG = "intentvision/process"
"""``host:pid:start`` of the process executing a run in process (the CLI): a sweeper can tell it died."""


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
    # Runs the daemon launches log at INFO on the console (Dagster's default is DEBUG: a line per event);
    # every event is still in the run's log in the UI.
    config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
)


def tenant_ranges(ordered: list[str], keys: Iterable[str]) -> list[list[str]]:
    """``keys`` cut into runs of neighbours in ``ordered`` (the dynamic partitions' order), one tenant each.

    Each range becomes one run over exactly those partitions, so a run never mixes tenants and never
    recomputes a partition nobody touched.
    """
    wanted = set(keys)
    ranges: list[list[str]] = []
    current: list[str] = []
    for key in ordered:
        same_tenant = bool(current) and split_partition_key(current[-1])[0] == split_partition_key(key)[0]
        if key in wanted and (not current or same_tenant):
            current.append(key)
            continue
        if current:
            ranges.append(current)
        current = [key] if key in wanted else []
    if current:
        ranges.append(current)
    return ranges


def range_run_request(keys: list[str], run_key: str | None = None) -> dg.RunRequest:
    """One pipeline run over a contiguous range of one tenant's partitions (a plain partition run for one)."""
    if len(keys) == 1:
        return dg.RunRequest(run_key=run_key, partition_key=keys[0], tags=tenant_tags(keys))
    return dg.RunRequest(
        run_key=run_key, tags={**tenant_tags(keys), RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]}
    )


def waiting_runs(instance: dg.DagsterInstance, ordered: list[str]) -> tuple[set[str], Counter[str]]:
    """The partitions that pipeline runs not started yet will process, and how many such runs each tenant has.

    A run that has not started reads the landing area when it starts, so it covers data landed now.
    """
    position = {key: index for index, key in enumerate(ordered)}
    covered: set[str] = set()
    per_tenant: Counter[str] = Counter()
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=PIPELINE_JOB_NAME,
            statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED],
        )
    )
    for record in records:
        tags = record.dagster_run.tags
        per_tenant[tags.get(TENANT_TAG, "")] += 1
        if "dagster/partition" in tags:
            covered.add(tags["dagster/partition"])
        elif tags.get(RANGE_START_TAG) in position and tags.get(RANGE_END_TAG) in position:
            covered.update(ordered[position[tags[RANGE_START_TAG]] : position[tags[RANGE_END_TAG]] + 1])
    return covered, per_tenant


def landing_run_requests(
    instance: dg.DagsterInstance, ordered: list[str], touched: set[str], batch_id: str
) -> tuple[list[dg.RunRequest], set[str]]:
    """Coalesced runs for the partitions new data touched, and the partitions left waiting.

    Partitions a waiting run already covers get no new run; the rest become one run per contiguous range of
    one tenant's partitions; a tenant with :data:`MAX_QUEUED_RUNS_PER_TENANT` runs waiting gets no more, and
    its partitions are returned to be retried on a later tick (so a flood from one tenant cannot fill the
    queue ahead of the others).
    """
    covered, per_tenant = waiting_runs(instance, ordered)
    requests, deferred = [], set()
    for keys in tenant_ranges(ordered, touched - covered):
        tenant = split_partition_key(keys[0])[0]
        if per_tenant[tenant] >= MAX_QUEUED_RUNS_PER_TENANT:
            deferred.update(keys)
            continue
        per_tenant[tenant] += 1
        requests.append(range_run_request(keys, run_key=f"{keys[0]}..{keys[-1]}@{batch_id}"))
    return requests, deferred


def nightly_run_requests(keys: list[str], per_run: int = NIGHTLY_PARTITIONS_PER_RUN) -> list[dg.RunRequest]:
    """Cover every partition with contiguous key ranges of at most ``per_run`` keys: few, bounded runs."""
    requests = []
    for start in range(0, len(keys), per_run):
        chunk = keys[start : start + per_run]
        requests.append(
            dg.RunRequest(tags={RANGE_START_TAG: chunk[0], RANGE_END_TAG: chunk[-1], NIGHTLY_TAG: "true"})
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


def process_tags() -> dict[str, str]:
    """Tags for a run this process executes itself (``execute_in_process``), naming this very process."""
    return {PROCESS_TAG: process_identity()}


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def orphaned_run_sweeper(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Fail pipeline runs whose executing process died (a CLI run killed with SIGKILL stays STARTED forever,
    holding the ``warehouse`` pool slot so the queue never drains). Dagster's run monitoring cannot see these:
    the default run launcher has no worker health check, and in-process runs have no launcher at all."""
    host = socket.gethostname()
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(job_name=PIPELINE_JOB_NAME, statuses=[dg.DagsterRunStatus.STARTED])
    )
    failed = []
    for record in records:
        run = record.dagster_run
        tag = run.tags.get(PROCESS_TAG)
        if tag and process_gone(tag, host):
            context.instance.report_run_failed(
                run, f"the process that executed this run ({tag}) is gone; its pool slot is freed"
            )
            failed.append(run.run_id[:8])
    return dg.SkipReason(
        f"failed {len(failed)} orphaned run(s): {', '.join(failed)}" if failed else "no orphaned runs"
    )
