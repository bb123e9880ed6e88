"""The series pipeline job, the tags its runs carry, the nightly schedule over all partitions, and the
sweeper that fails runs whose process died.

One place for what ingest, forecasting, alerting and the CLI all need to name: the job, its tenant tag and
how the night is cut into runs.
"""

import os
import socket
from pathlib import Path

import dagster as dg

from intentvision_dagster.names import split_partition_key
from intentvision_dagster.partitions import series_partitions

PIPELINE_JOB_NAME = "series_pipeline"
PIPELINE_ASSETS = ("raw_series", "validated_series", "anomalies", "forecast_accuracy", "forecasts")
TENANT_TAG = "intentvision/tenant"
NIGHTLY_TAG = "intentvision/nightly"
NIGHTLY_PARTITIONS_PER_RUN = 100
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


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22); None if it is gone.

    Comparing it, not only the pid, keeps a recycled pid from passing for the original process.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        # No /proc (not Linux): existence is all that can be checked.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def process_tags() -> dict[str, str]:
    """Tags for a run this process executes itself (``execute_in_process``), naming this very process."""
    pid = os.getpid()
    return {PROCESS_TAG: f"{socket.gethostname()}:{pid}:{_process_start(pid) or ''}"}


def process_gone(tag: str, host: str) -> bool:
    """True when the process a :data:`PROCESS_TAG` names ran on ``host`` and no longer exists."""
    tag_host, pid, start = tag.rsplit(":", 2)
    if tag_host != host:
        return False  # another machine's process: not ours to judge
    current = _process_start(int(pid))
    return current is None or (bool(start) and bool(current) and current != start)


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
