"""Driving Dagster from the command line: land files, run partitions, tick the alert sensor.

These go through the real Dagster instance under ``DAGSTER_HOME`` (so runs show in the UI) and the same
definitions the webserver and daemon load.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from intentvision_dagster.catalog import load_catalog
from intentvision_dagster.ingest.files import read_metric_file
from intentvision_dagster.jobs import PIPELINE_JOB_NAME, process_tags, tenant_tags
from intentvision_dagster.landing import LandedBatch, land_batch
from intentvision_dagster.names import partition_key
from intentvision_dagster.partitions import series_partitions
from intentvision_dagster.repeats import merge_repeats
from intentvision_dagster.settings import Settings


def ingest_file(path: Path, tenant: str, settings: Settings) -> LandedBatch:
    """Validate a metric file at the boundary and land it durably; nothing is stored if it is refused.

    Rows land as read; the batch's ``note`` says which repeated timestamps validation will merge per the
    metric's kind (:mod:`intentvision_dagster.repeats`), after checking each row against the metric's bounds.
    """
    catalog = load_catalog(settings.metrics_catalog)
    frame = read_metric_file(path, tenant)
    repeats = merge_repeats(frame, lambda metric: catalog.spec(metric).kind)[1]
    batch = land_batch(frame, settings.landing_dir, tenant)
    return dataclasses.replace(batch, note=repeats.warning())


def register_partitions(instance: dg.DagsterInstance, batches: list[LandedBatch]) -> list[str]:
    """Add the (tenant, metric) partitions these batches introduce; return every key they touch, sorted."""
    keys = sorted({partition_key(batch.tenant, metric) for batch in batches for metric in batch.metrics})
    known = set(instance.get_dynamic_partitions(series_partitions.name))
    new_keys = [key for key in keys if key not in known]
    if new_keys:
        instance.add_dynamic_partitions(series_partitions.name, new_keys)
    return keys


@dataclass(frozen=True)
class RunOutcome:
    partitions: list[str]
    run_id: str
    success: bool
    seconds: float


QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""Keep Dagster's per-event DEBUG lines off the terminal; every event is still in the run's log in the UI."""


def run_pipeline(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    keys: list[str],
    one_run: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> list[RunOutcome]:
    """Materialize the series pipeline: one run per partition, or one run over the whole key range.

    ``one_run`` needs ``keys`` to be a contiguous range of the dynamic partitions (as the nightly schedule
    uses).
    """
    job = defs.resolve_job_def(PIPELINE_JOB_NAME)
    batches = [keys] if one_run else [[key] for key in keys]
    outcomes = []
    for index, batch in enumerate(batches, start=1):
        started = time.perf_counter()
        if len(batch) == 1:
            result = job.execute_in_process(
                instance=instance,
                partition_key=batch[0],
                tags={**tenant_tags(batch), **process_tags()},
                run_config=QUIET_LOGS,
                raise_on_error=False,
            )
        else:
            tags = {
                **tenant_tags(batch),
                **process_tags(),
                "dagster/asset_partition_range_start": batch[0],
                "dagster/asset_partition_range_end": batch[-1],
            }
            result = job.execute_in_process(
                instance=instance, tags=tags, run_config=QUIET_LOGS, raise_on_error=False
            )
        outcome = RunOutcome(batch, result.run_id, result.success, time.perf_counter() - started)
        outcomes.append(outcome)
        label = batch[0] if len(batch) == 1 else f"{batch[0]} .. {batch[-1]} ({len(batch)} partitions)"
        progress(
            f"[{index}/{len(batches)}] {label}: {'ok' if outcome.success else 'FAILED'} "
            f"in {outcome.seconds:.1f} s (run {outcome.run_id[:8]})"
        )
    return outcomes


def tick_alert_sensor(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.SensorResult:
    """Evaluate the alert sensor once, as the daemon would (the alert log deduplicates its deliveries)."""
    sensor = defs.resolve_sensor_def("alert_sensor")
    # A context manager: resources with nested resources (the lake's) are set up around the tick.
    with dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources) as context:
        return sensor(context)
