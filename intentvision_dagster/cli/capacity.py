"""``intentvision capacity``: would the shipped capacity rule page on these series? One row per series.

The history is cleaned as the pipeline cleans it (anomalies replaced by expected values) and forecast by
the engine the ``forecasts`` asset uses (backtest selection, per-step calibrated bands, the metric's
bounds), then judged by :meth:`ForecastBreachRule.assess`, the decision the alert sensor
makes, with the shipped rule's probability bars and each series' own threshold from the thresholds file.
This module is application glue: the only place both domains meet for this command.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click
import pandas as pd

from intentvision_dagster.cli.files import freq_option, input_file, jobs_option, output_file
from intentvision_dagster.errors import InputError
from intentvision_dagster.settings import load_settings

DIRECTIONS = ("above", "below")


class CapacityInputError(InputError):
    """A thresholds file or option the command cannot take; the message names the file, field and value."""


def read_thresholds(path: Path) -> pd.DataFrame:
    """``unique_id, threshold, direction`` (direction defaults to ``above``), one row per series."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CapacityInputError(f"{path.name}: not a readable CSV file ({exc})") from None
    for column in ("unique_id", "threshold"):
        if column not in raw.columns:
            raise CapacityInputError(
                f"{path.name}: column {column!r} is missing (expected unique_id,threshold[,direction])"
            )
    frame = raw.assign(direction=raw["direction"].str.strip() if "direction" in raw else "above")
    frame["direction"] = frame["direction"].replace("", "above")
    threshold = pd.to_numeric(frame["threshold"], errors="coerce")
    checks = (
        (threshold.isna(), "threshold", "is not a number"),
        (~frame["direction"].isin(DIRECTIONS), "direction", "is not one of above, below"),
        (frame["unique_id"].duplicated(), "unique_id", "appears twice"),
    )
    for bad, column, problem in checks:
        if bad.any():
            index = int(bad.to_numpy().nonzero()[0][0])
            raise CapacityInputError(
                f"{path.name} line {index + 2}, column {column!r}: {frame[column].iat[index]!r} {problem}"
            )
    return pd.DataFrame(
        {"unique_id": frame["unique_id"], "threshold": threshold, "direction": frame["direction"]}
    )


def capacity_pages(
    history: pd.DataFrame, forecasts: pd.DataFrame, thresholds: pd.DataFrame, rule: object
) -> pd.DataFrame:
    """The decision per series (``DECISION_COLUMNS`` of the breach kind): ``rule`` (a forecast_breach rule)
    judging each series' forecast against its own threshold and direction with the rule's probability bars."""
    from intentvision_dagster.alerting.kinds.forecast_breach import DECISION_COLUMNS

    last = history.sort_values("ds").drop_duplicates("unique_id", keep="last")[["unique_id", "ds", "y"]]
    frame = forecasts.assign(metric=rule.metric, labels="", tenant="")
    parts = []
    for direction, group in thresholds.groupby("direction", sort=True):
        judge = dataclasses.replace(rule, direction=direction, horizon=None, recovery={}, labels={})
        lines = group.set_index("unique_id")["threshold"]
        parts.append(judge.assess(frame[frame["unique_id"].isin(lines.index)], last, lines))
    assessed = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=DECISION_COLUMNS)
    return assessed[DECISION_COLUMNS].sort_values("unique_id", ignore_index=True)


def modelled_history(history: pd.DataFrame, freq: str, sensitivity: str) -> pd.DataFrame:
    """What the ``forecasts`` asset fits on: the history with the points the anomaly detector flags (at
    warning or above) replaced by their expected values, so an incident is not a pattern to repeat."""
    from intentvision_dagster.anomalies.detector import detect
    from intentvision_dagster.forecasting.cleaning import without_anomalies
    from intentvision_dagster.frequency import season_lengths

    seasons = season_lengths(freq)
    scored = detect(history, season_length=seasons[0] if seasons else 1, sensitivity=sensitivity)
    return without_anomalies(scored)[["unique_id", "ds", "y"]]


def shipped_rule(rules_path: Path, name: str | None) -> object:
    """The forecast_breach rule named ``name``, or the first one of the rules file (the shipped default)."""
    from intentvision_dagster.alerting.kinds import ForecastBreachRule
    from intentvision_dagster.alerting.rules import load_rules

    breach = [rule for rule in load_rules(rules_path) if isinstance(rule, ForecastBreachRule)]
    picked = [rule for rule in breach if name is None or rule.name == name]
    if not picked:
        names = ", ".join(rule.name for rule in breach) or "none"
        raise CapacityInputError(
            f"--rule {name!r}: no forecast_breach rule of that name in {rules_path.name} (there: {names})"
        )
    return picked[0]


@click.command("capacity", short_help="Would the capacity rule page? Breach probability per series.")
@input_file("History CSV with columns unique_id,ds,y.")
@input_file(
    "CSV with columns unique_id,threshold[,direction] (direction above (default) or below).",
    name="--thresholds",
    dest="thresholds_path",
)
@click.option(
    "--horizon", default=72, show_default=True, type=click.IntRange(min=1), help="Steps to look ahead."
)
@freq_option
@click.option(
    "--metric",
    help="Metric name whose catalog bounds (min/max in assets/metrics.yaml) clip the bands, e.g. "
    "node_filesystem_usage_percent for [0, 100]; default: no bounds.",
)
@click.option(
    "--rule",
    "rule_name",
    help="forecast_breach rule whose probability bars decide (default: the first one in the alert rules "
    "file, the shipped disk-capacity rule).",
)
@jobs_option
@output_file(
    "CSV to write: unique_id, pages, severity, probability, crossing_ds, crossing_lo, crossing_hi, "
    "current, model."
)
def capacity_command(
    input_path: Path,
    thresholds_path: Path,
    horizon: int,
    freq: str | None,
    metric: str | None,
    rule_name: str | None,
    jobs: int | None,
    output_path: Path,
) -> None:
    """Forecast every series of INPUT HORIZON steps and write whether the capacity rule would page.

    Same engine and rule evaluation as the pipeline and the alert sensor: each series' breach probability
    within the horizon, the crossing time (median and 80% interval, UTC) and the severity the rule's
    min_probability bars give, against that series' threshold from THRESHOLDS.

    \b
    Examples:
      intentvision capacity --input history.csv --thresholds limits.csv --horizon 72 --output pages.csv
    """
    from intentvision_dagster.catalog import load_catalog
    from intentvision_dagster.forecasting.files import (
        ForecastInput,
        forecast_input,
        progress_steps,
        read_forecast_input,
    )

    settings = load_settings()
    rule = shipped_rule(settings.alert_rules, rule_name)
    thresholds = read_thresholds(thresholds_path)
    source = read_forecast_input(input_path, freq)
    unknown = sorted(set(source.frame["unique_id"]) - set(thresholds["unique_id"]))
    if unknown:
        raise CapacityInputError(
            f"{thresholds_path.name}: no threshold for {len(unknown)} series of {input_path.name}, "
            f"e.g. {', '.join(unknown[:3])}"
        )
    catalog = load_catalog(settings.metrics_catalog)
    entry = catalog.spec(metric) if metric else catalog.defaults
    bounds = (entry.min_value, entry.max_value) if metric else (None, None)
    cleaned = ForecastInput(modelled_history(source.frame, source.freq, entry.sensitivity), source.freq)
    run_args = (cleaned, horizon, (80, 95), "auto", jobs or settings.model_jobs)
    if source.long_running:
        label = f"forecasting {source.series} series"
        with click.progressbar(length=progress_steps(source, "auto"), label=label, file=sys.stderr) as bar:
            result = forecast_input(*run_args, on_progress=bar.update, bounds=bounds)
    else:
        result = forecast_input(*run_args, bounds=bounds)
    pages = capacity_pages(source.frame, result.frame, thresholds, rule)
    pages.to_csv(output_path, index=False, date_format="%Y-%m-%dT%H:%M:%S")
    click.echo(
        f"{int(pages['pages'].sum())} of {len(pages)} series would page (rule {rule.name}, "
        f"horizon {horizon} steps at {source.freq}); wrote {output_path}"
    )
