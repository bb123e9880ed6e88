"""The ``intentvision`` command line."""

from __future__ import annotations

import json
import sys
import warnings
from functools import partial
from pathlib import Path

import click
import pandas as pd

from intentvision_dagster.alerting.evaluate import json_safe
from intentvision_dagster.alerting.log import ALERT_COLUMNS
from intentvision_dagster.catalog import SENSITIVITIES
from intentvision_dagster.settings import load_settings, prepare_dagster_home

ALERT_FIELDS = [c for c in ALERT_COLUMNS if c not in ("summary", "details", "updated_at", "last_error")]
"""What ``alerts list --json`` prints per alert (the log's columns less the long texts)."""


def _instance_and_defs():
    """The persistent Dagster instance under INTENTVISION_HOME and the project's definitions."""
    import dagster as dg

    from intentvision_dagster.definitions import defs

    prepare_dagster_home(load_settings())
    return dg.DagsterInstance.get(), defs


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """IntentVision: forecasts, anomalies and alerts for the metrics you already collect.

    State lives under $INTENTVISION_HOME (default .intentvision/ in the repo).
    """
    # Dagster flags the beta/preview APIs used here (single-run backfills, partitioned checks) on every load.
    warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview).*")


@main.command(short_help="Validate a CSV/Parquet metric file and land it durably.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", required=True, help="Tenant id (lowercase slug) the data belongs to.")
def ingest(file: Path, tenant: str) -> None:
    """Validate FILE (CSV or Parquet; columns timestamp, metric, labels, value) and land it durably.

    The landing sensor picks the batch up and runs the pipeline for its partitions; without the daemon,
    run `intentvision run --all`.
    """
    from intentvision_dagster.ingest.files import IngestFileError
    from intentvision_dagster.runs import ingest_file

    try:
        batch = ingest_file(file, tenant, load_settings())
    except (IngestFileError, ValueError) as exc:
        raise click.ClickException(f"refused, nothing stored: {exc}") from None
    click.echo(
        f"landed {batch.rows} rows for tenant {batch.tenant} as batch {batch.batch_id}: "
        f"{len(batch.metrics)} metric(s) ({', '.join(batch.metrics)}) in {batch.path}"
    )


@main.command(short_help="Run the pipeline for some or all partitions through Dagster.")
@click.option("--partition", "partitions", multiple=True, help="tenant/metric key; repeat for several.")
@click.option("--all", "all_partitions", is_flag=True, help="Every known partition.")
@click.option(
    "--one-run", is_flag=True, help="One run over the whole key range instead of one run per partition."
)
def run(partitions: tuple[str, ...], all_partitions: bool, one_run: bool) -> None:
    """Materialize the pipeline (raw -> validated -> anomalies -> forecasts -> accuracy) through Dagster."""
    from intentvision_dagster.partitions import series_partitions
    from intentvision_dagster.runs import run_pipeline

    instance, defs = _instance_and_defs()
    known = instance.get_dynamic_partitions(series_partitions.name)
    if all_partitions:
        keys = list(known)
    else:
        unknown = [key for key in partitions if key not in known]
        if unknown:
            raise click.ClickException(
                f"unknown partition(s) {unknown}; known: {len(known)} (land data first)"
            )
        keys = list(partitions)
    if not keys:
        raise click.ClickException("no partitions to run: give --partition KEY or --all")
    outcomes = run_pipeline(defs, instance, keys, one_run=one_run, progress=click.echo)
    if not all(outcome.success for outcome in outcomes):
        sys.exit(1)


@main.command("detect", short_help="Score a CSV of metric values for anomalies.")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV with columns timestamp,value (one series) or unique_id,ds,y (many).",
)
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV to write.",
)
@click.option(
    "--sensitivity",
    type=click.Choice(SENSITIVITIES),
    default="medium",
    show_default=True,
    help="low: fewer, surer flags; high: more, earlier flags.",
)
@click.option(
    "--season-length",
    type=click.IntRange(min=1),
    help="Points per season; default: points per day from the sampling step (7 for daily data).",
)
def detect_command(input_path: Path, output_path: Path, sensitivity: str, season_length: int | None) -> None:
    """Score every row of INPUT with the causal anomaly detector and write OUTPUT in the same row order.

    OUTPUT keeps the input columns as written and adds anomaly_score, is_anomaly, severity, reason, event_id.
    """
    from intentvision_dagster.anomalies.files import (
        DetectFileError,
        infer_season_length,
        read_series,
        score_series,
        write_scored,
    )

    try:
        source = read_series(input_path)
        season_length = season_length or infer_season_length(source.frame)
    except DetectFileError as exc:
        raise click.ClickException(str(exc)) from None
    if source.long_running:
        with click.progressbar(length=source.series, label="scoring series", file=sys.stderr) as bar:
            scored = score_series(source, season_length, sensitivity, on_progress=bar.update)
    else:
        scored = score_series(source, season_length, sensitivity)
    write_scored(scored, source.columns, output_path)
    flagged = scored[scored["is_anomaly"]]
    click.echo(
        f"scored {len(scored)} rows of {source.series} series (season length {season_length}, "
        f"sensitivity {sensitivity}): {len(flagged)} anomalous rows in {flagged['event_id'].nunique()} "
        f"events, {int(flagged['severity'].isin(['warning', 'critical']).sum())} at warning or above; "
        f"wrote {output_path}"
    )


def _levels(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        levels = tuple(sorted({int(part) for part in value.split(",") if part.strip()}))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected integers like 80,95") from None
    if not levels or any(not 0 < level < 100 for level in levels):
        raise click.BadParameter(f"{value!r}: each level must be between 1 and 99")
    return levels


@main.command("forecast", short_help="Forecast the series of a CSV with the product's engine.")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV with columns unique_id,ds,y (one row per series and timestamp).",
)
@click.option("--horizon", required=True, type=click.IntRange(min=1), help="Steps to forecast per series.")
@click.option("--freq", help="pandas alias of the sampling step (h, 5min, D); inferred when omitted.")
@click.option(
    "--levels",
    default="80,95",
    show_default=True,
    callback=_levels,
    help="Prediction interval levels in %, comma-separated; each adds lo_<level>, hi_<level> columns.",
)
@click.option(
    "--model",
    default="auto",
    show_default=True,
    help="auto: per-series selection by backtest; or one model for every series: "
    "MSTL, SeasonalNaive, Ensemble, AutoETS, Naive, Prophet, TimeGPT.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    help="Worker processes for model fitting; default INTENTVISION_MODEL_JOBS (2); used from 50 series.",
)
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV to write: unique_id, ds, yhat, lo_<level>, hi_<level>..., model.",
)
def forecast_command(
    input_path: Path,
    horizon: int,
    freq: str | None,
    levels: tuple[int, ...],
    model: str,
    jobs: int | None,
    output_path: Path,
) -> None:
    """Forecast every series of INPUT HORIZON steps ahead and write the long frame to OUTPUT.

    Uses the same engine as the nightly assets: each series gets the model its rolling-origin backtest
    selects (MASE), with intervals calibrated on that backtest. Prophet and TimeGPT (needs NIXTLA_API_KEY)
    forecast every series themselves; a failed TimeGPT call falls back to the statsforecast engine.
    """
    from intentvision_dagster.forecasting.backends import TimeGPTOptions
    from intentvision_dagster.forecasting.files import (
        ForecastFileError,
        forecast_input,
        progress_steps,
        read_forecast_input,
    )
    from intentvision_dagster.settings import nixtla_api_key

    settings, key = load_settings(), nixtla_api_key()
    n_jobs = jobs or settings.model_jobs
    timegpt = TimeGPTOptions(api_key=key, base_url=settings.nixtla_base_url) if key else None
    try:
        source = read_forecast_input(input_path, freq)
        run = partial(forecast_input, source, horizon, levels, model, n_jobs, timegpt)
        if source.long_running:
            steps = progress_steps(source, model)
            with click.progressbar(length=steps, label="backtesting and forecasting", file=sys.stderr) as bar:
                result = run(on_progress=bar.update)
        else:
            result = run()
    except ForecastFileError as exc:
        raise click.ClickException(str(exc)) from None
    result.frame.to_csv(output_path, index=False, date_format="%Y-%m-%dT%H:%M:%S")
    fallback = (
        f"; TimeGPT failed ({result.fallback_reason}), statsforecast used" if result.fallback_reason else ""
    )
    counts = ", ".join(f"{name} {count}" for name, count in result.models.items())
    click.echo(
        f"forecast {result.series} series x {horizon} steps at freq {result.freq} "
        f"(models: {counts}){fallback}; wrote {output_path}"
    )


@main.group()
def alerts() -> None:
    """The alert log: what fired, where it went."""


@alerts.command("list", short_help="Print the alert log.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert, one per line.")
@click.option("--tenant", help="Only this tenant's alerts.")
def alerts_list(as_json: bool, tenant: str | None) -> None:
    """Print the alert log (oldest first)."""
    from dagster_duckdb import DuckDBResource

    from intentvision_dagster.alerting.log import list_alerts

    settings = load_settings()
    if not settings.warehouse_path.exists():
        frame = pd.DataFrame(columns=ALERT_FIELDS)
    else:
        with DuckDBResource(database=str(settings.warehouse_path)).get_connection() as conn:
            frame = list_alerts(conn, tenant=tenant)
    if as_json:
        for record in frame.to_dict(orient="records"):
            click.echo(json.dumps({field: json_safe(record.get(field)) for field in ALERT_FIELDS}))
        return
    if frame.empty:
        click.echo("no alerts")
        return
    for row in frame.itertuples():
        click.echo(
            f"{row.created_at:%Y-%m-%d %H:%M} {row.severity:<8} {row.state:<9} {row.tenant:<10} {row.summary}"
        )


@alerts.command("tick", short_help="Evaluate the alert sensor once now.")
def alerts_tick() -> None:
    """Evaluate the alert sensor once now (the daemon does this every 30 s)."""
    from intentvision_dagster.runs import tick_alert_sensor

    instance, defs = _instance_and_defs()
    result = tick_alert_sensor(defs, instance)
    click.echo(result.skip_reason.skip_message if result.skip_reason else "alert sensor ticked")


@main.command(short_help="Generate demo data and run everything end to end.")
@click.option(
    "--end", help="Last timestamp of the demo data (ISO 8601, UTC); default: now, floored to the hour."
)
def demo(end: str | None) -> None:
    """Generate and land demo data, run the whole graph through Dagster, tick the alert sensor, summarize."""
    from intentvision_dagster.demo import run_demo

    run_demo(load_settings(), end=pd.Timestamp(end) if end else None, echo=click.echo)
