"""Commands that feed and drive the pipeline: land a file, run partitions, run the demo end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pandas as pd

from intentvision_dagster.cli.instance import instance_and_defs
from intentvision_dagster.cli.lookup import warn_unrouted
from intentvision_dagster.names import require_known
from intentvision_dagster.settings import load_settings


@click.command(short_help="Validate a CSV/Parquet metric file and land it durably.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", required=True, help="Tenant id (lowercase slug) the data belongs to.")
def ingest(file: Path, tenant: str) -> None:
    """Validate FILE (CSV or Parquet; columns timestamp, metric, labels, value) and land it durably.

    Rows may come in any order and a series may repeat a timestamp (a clock change, a retried write): the
    rows of one timestamp become one, the mean for gauges and the max for counters (the metric's kind in
    the metric catalog), and a warning says what was done.

    The landing sensor picks the batch up and runs the pipeline for its partitions; without the daemon,
    run `intentvision run --all`.

    \b
    Examples:
      intentvision ingest metrics.csv --tenant acme
      intentvision ingest export.parquet --tenant globex
    """
    from intentvision_dagster.runs import ingest_file

    settings = load_settings()
    try:
        batch = ingest_file(file, tenant, settings)
    except ValueError as exc:  # the file's problems (IngestFileError) and landing's refusals alike
        raise click.ClickException(f"refused, nothing stored: {exc}") from None
    if batch.note:
        click.echo(f"warning: {file.name}: {batch.note}", err=True)
    click.echo(
        f"landed {batch.rows} rows for tenant {batch.tenant} as batch {batch.batch_id}: "
        f"{len(batch.metrics)} metric(s) ({', '.join(batch.metrics)}) in {batch.path}"
    )
    warn_unrouted(settings, [batch.tenant])


@click.command(short_help="Run the pipeline for some or all partitions through Dagster.")
@click.option("--partition", "partitions", multiple=True, help="tenant/metric key; repeat for several.")
@click.option("--all", "all_partitions", is_flag=True, help="Every known partition.")
@click.option(
    "--one-run", is_flag=True, help="One run over the whole key range instead of one run per partition."
)
def run(partitions: tuple[str, ...], all_partitions: bool, one_run: bool) -> None:
    """Materialize the pipeline (raw -> validated -> anomalies -> forecasts -> accuracy) through Dagster.

    \b
    Examples:
      intentvision run --all
      intentvision run --partition acme/node_cpu_utilization_percent
      intentvision run --all --one-run
    """
    from intentvision_dagster.landing import list_batches
    from intentvision_dagster.partitions import series_partitions
    from intentvision_dagster.runs import register_partitions, run_pipeline

    instance, defs = instance_and_defs()
    # Without the daemon nobody has made partitions of the landed batches yet: do it as its sensor would.
    register_partitions(instance, list_batches(load_settings().landing_dir))
    known = instance.get_dynamic_partitions(series_partitions.name)
    if all_partitions:
        keys = list(known)
    else:
        hint = "" if known else " (none known yet: land data with `intentvision ingest` first)"
        keys = [require_known("partition", key, known, hint) for key in partitions]
    if not keys:
        raise click.ClickException("no partitions to run: give --partition KEY or --all")
    outcomes = run_pipeline(defs, instance, keys, one_run=one_run, progress=click.echo)
    if not all(outcome.success for outcome in outcomes):
        sys.exit(1)


@click.command(short_help="Generate demo data and run everything end to end.")
@click.option(
    "--end", help="Last timestamp of the demo data (ISO 8601, UTC); default: now, floored to the hour."
)
def demo(end: str | None) -> None:
    """Generate and land demo data, run the whole graph through Dagster, tick the alert sensor, summarize.

    \b
    Examples:
      intentvision demo
      intentvision demo --end 2026-11-27T06:00
    """
    from intentvision_dagster.demo import run_demo

    run_demo(load_settings(), end=pd.Timestamp(end) if end else None, echo=click.echo)
