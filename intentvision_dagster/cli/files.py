"""Commands that run the product's detector and forecaster on a CSV file, outside the pipeline."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import click

from intentvision_dagster.catalog import SENSITIVITIES
from intentvision_dagster.settings import load_settings


def input_file(help_text: str, name: str = "--input", dest: str = "input_path"):
    """A required CSV the command reads (it must exist)."""
    return click.option(
        name,
        dest,
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help=help_text,
    )


def output_file(help_text: str):
    """The required ``--output`` CSV the command writes."""
    return click.option(
        "--output",
        "output_path",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help=help_text,
    )


freq_option = click.option(
    "--freq", help="pandas alias of the sampling step (h, 5min, D); inferred when omitted."
)
jobs_option = click.option(
    "--jobs",
    type=click.IntRange(min=1),
    help="Worker processes for model fitting; default INTENTVISION_MODEL_JOBS (2); used from 50 series.",
)


@click.command("detect", short_help="Score a CSV of metric values for anomalies.")
@input_file("CSV with columns timestamp,value (one series) or unique_id,ds,y (many).")
@output_file("CSV to write.")
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
    Rows may come in any order and a timestamp may repeat (a clock change, a row written twice): the
    detector scores each series in time order with one point per timestamp (repeats averaged), every input
    row gets the verdict of its timestamp, and a warning on stderr says what was done.

    \b
    Examples:
      intentvision detect --input cpu.csv --output scored.csv
      intentvision detect --input many.csv --output scored.csv --sensitivity high --season-length 24
    """
    from intentvision_dagster.anomalies.files import infer_season_length, score_series, write_scored
    from intentvision_dagster.series_files import read_series

    source = read_series(input_path)
    if source.repeats:
        click.echo(
            f"warning: {input_path.name}: {source.repeats.warning()}; each input row gets the verdict of its "
            "timestamp",
            err=True,
        )
    season_length = season_length or infer_season_length(source.points)
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


@click.command("forecast", short_help="Forecast the series of a CSV with the product's engine.")
@input_file("CSV with columns unique_id,ds,y (one row per series and timestamp).")
@click.option("--horizon", required=True, type=click.IntRange(min=1), help="Steps to forecast per series.")
@freq_option
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
@jobs_option
@output_file("CSV to write: unique_id, ds, yhat, lo_<level>, hi_<level>..., model.")
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

    \b
    Examples:
      intentvision forecast --input series.csv --horizon 24 --output forecast.csv
      intentvision forecast --input daily.csv --horizon 14 --freq D --model AutoETS --output out.csv
    """
    from intentvision_dagster.forecasting.backends import TimeGPTOptions
    from intentvision_dagster.forecasting.files import forecast_input, progress_steps, read_forecast_input
    from intentvision_dagster.settings import nixtla_api_key

    settings, key = load_settings(), nixtla_api_key()
    n_jobs = jobs or settings.model_jobs
    timegpt = TimeGPTOptions(api_key=key, base_url=settings.nixtla_base_url) if key else None
    source = read_forecast_input(input_path, freq)
    if source.warning:
        click.echo(f"warning: {input_path.name}: {source.warning}", err=True)
    run = partial(forecast_input, source, horizon, levels, model, n_jobs, timegpt)
    if source.long_running:
        steps = progress_steps(source, model)
        with click.progressbar(length=steps, label="backtesting and forecasting", file=sys.stderr) as bar:
            result = run(on_progress=bar.update)
    else:
        result = run()
    result.frame.to_csv(output_path, index=False, date_format="%Y-%m-%dT%H:%M:%S")
    fallback = (
        f"; TimeGPT failed ({result.fallback_reason}), statsforecast used" if result.fallback_reason else ""
    )
    counts = ", ".join(f"{name} {count}" for name, count in result.models.items())
    click.echo(
        f"forecast {result.series} series x {horizon} steps at freq {result.freq} "
        f"(models: {counts}){fallback}; wrote {output_path}"
    )
