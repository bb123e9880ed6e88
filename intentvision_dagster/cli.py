"""The ``intentvision`` command line."""

from __future__ import annotations

import json
import sys
import warnings
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import click
import pandas as pd

from intentvision_dagster.alerting.evaluate import json_safe
from intentvision_dagster.alerting.log import ALERT_COLUMNS
from intentvision_dagster.catalog import SENSITIVITIES
from intentvision_dagster.settings import load_settings, prepare_dagster_home

ALERT_FIELDS = [
    c
    for c in ALERT_COLUMNS
    if c not in ("summary", "details", "updated_at", "last_error", "labels", "cleared_at")
]
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
    from intentvision_dagster.anomalies.files import infer_season_length, score_series, write_scored
    from intentvision_dagster.series_files import SeriesFileError, read_series

    try:
        source = read_series(input_path)
        season_length = season_length or infer_season_length(source.frame)
    except SeriesFileError as exc:
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


@contextmanager
def _warehouse():
    """A connection to the warehouse, with a clear error when a run holds its write lock."""
    import duckdb

    settings = load_settings()
    settings.ensure_dirs()
    try:
        conn = duckdb.connect(str(settings.warehouse_path))
    except duckdb.IOException as exc:
        raise click.ClickException(
            f"cannot open the warehouse {settings.warehouse_path} (a run may be writing it; retry): {exc}"
        ) from None
    try:
        yield conn
    finally:
        conn.close()


def _utc_time(text: str | None, option: str) -> pd.Timestamp:
    """An ISO 8601 time (an offset is converted to UTC, none means UTC) or now."""
    if text is None:
        return pd.Timestamp.now(tz="UTC").tz_localize(None)
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint=option) from None
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp


@alerts.group("silence")
def alerts_silence() -> None:
    """Mute a tenant's alerts matching labels for a while (Alertmanager-style silences)."""


@alerts_silence.command("create", short_help="Mute matching alerts of a tenant for a while.")
@click.option("--tenant", required=True, help="Tenant whose alerts to mute (never another tenant's).")
@click.option(
    "--matcher",
    "matchers",
    multiple=True,
    required=True,
    help="label=value, label!=value, label=~regex or label!~regex; repeat, all must match. Labels: "
    "alertname, metric, severity, series and the series' labels (host, mountpoint, ...).",
)
@click.option("--duration", help="How long, e.g. 2h or 30m (or give --ends).")
@click.option("--starts", help="Start, ISO 8601 (default now).")
@click.option("--ends", help="End, ISO 8601 (instead of --duration).")
@click.option("--comment", required=True, help="Why: shown with the muted alerts.")
@click.option("--created-by", default="cli", show_default=True, help="Who asked for it.")
def silence_create(
    tenant: str,
    matchers: tuple[str, ...],
    duration: str | None,
    starts: str | None,
    ends: str | None,
    comment: str,
    created_by: str,
) -> None:
    """Create a silence: matching alerts of TENANT are not notified between --starts and the end."""
    from intentvision_dagster.alerting.silences import create_silence

    if (duration is None) == (ends is None):
        raise click.UsageError("give exactly one of --duration or --ends")
    start = _utc_time(starts, "--starts")
    if duration is not None:
        try:
            length = pd.Timedelta(duration)
        except ValueError:
            raise click.BadParameter(
                f"{duration!r} is not a duration such as 2h", param_hint="--duration"
            ) from None
        end = start + length
    else:
        end = _utc_time(ends, "--ends")
    with _warehouse() as conn:
        try:
            silence = create_silence(
                conn, tenant, list(matchers), start, end, created_by, comment, _utc_time(None, "")
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(
        f"silence {silence['id']} for tenant {tenant}: {' '.join(json.loads(silence['matchers']))} "
        f"from {silence['starts_at']:%Y-%m-%d %H:%M} to {silence['ends_at']:%Y-%m-%d %H:%M} UTC"
    )


@alerts_silence.command("list", short_help="Print silences.")
@click.option("--tenant", help="Only this tenant's silences.")
@click.option("--all", "show_all", is_flag=True, help="Include expired ones.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per silence, one per line.")
def silence_list(tenant: str | None, show_all: bool, as_json: bool) -> None:
    """Print active and future silences (with --all, expired ones too), oldest first."""
    from intentvision_dagster.alerting.silences import list_silences

    with _warehouse() as conn:
        frame = list_silences(conn, tenant=tenant)
    now = _utc_time(None, "")
    if not show_all:
        frame = frame[frame["ends_at"] > now]
    for record in frame.to_dict(orient="records"):
        record["matchers"] = json.loads(record["matchers"])
        record["state"] = (
            "active"
            if record["starts_at"] <= now < record["ends_at"]
            else ("pending" if record["starts_at"] > now else "expired")
        )
        if as_json:
            click.echo(
                json.dumps(
                    {key: value if key == "matchers" else json_safe(value) for key, value in record.items()}
                )
            )
        else:
            click.echo(
                f"{record['id']} {record['state']:<8} {record['tenant']:<10} {' '.join(record['matchers'])} "
                f"until {record['ends_at']:%Y-%m-%d %H:%M} UTC by {record['created_by']}: {record['comment']}"
            )
    if frame.empty and not as_json:
        click.echo("no silences")


@alerts_silence.command("expire", short_help="End a silence now.")
@click.argument("silence_id")
def silence_expire(silence_id: str) -> None:
    """End the silence SILENCE_ID now; alerts it muted are notified on the next tick if still firing."""
    from intentvision_dagster.alerting.silences import expire_silence

    with _warehouse() as conn:
        try:
            expired = expire_silence(conn, silence_id, _utc_time(None, ""))
        except KeyError as exc:
            raise click.ClickException(exc.args[0]) from None
    click.echo(
        f"silence {silence_id} of tenant {expired['tenant']} ended at {expired['ends_at']:%Y-%m-%d %H:%M} UTC"
    )


@alerts.command("test-rule", short_help="Evaluate one rule on the current data; send nothing.")
@click.argument("rule")
@click.option("--tenant", required=True, help="Whose rules and data.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert that would fire.")
def alerts_test_rule(rule: str, tenant: str, as_json: bool) -> None:
    """Evaluate RULE (as it applies to TENANT) on the warehouse's current data and print what would fire.

    Nothing is written or sent; the output says which alerts are already open and which a silence mutes.
    """
    from intentvision_dagster.alerting.config import ConfigError
    from intentvision_dagster.alerting.preview import preview_rule
    from intentvision_dagster.alerting.rules import load_rule_set
    from intentvision_dagster.catalog import load_catalog
    from intentvision_dagster.names import validate_tenant

    settings = load_settings()
    try:
        validate_tenant(tenant)
        chosen = load_rule_set(settings.alert_rules, settings.tenant_rules_dir).rule(tenant, rule)
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyError as exc:
        raise click.ClickException(exc.args[0]) from None
    if not settings.warehouse_path.exists():
        raise click.ClickException(f"no warehouse at {settings.warehouse_path}: run the pipeline first")
    catalog = load_catalog(settings.metrics_catalog)
    with _warehouse() as conn:
        preview = preview_rule(conn, chosen, tenant, catalog, _utc_time(None, ""))
    for line in preview.lines(as_json):
        click.echo(line)


@main.command(short_help="Generate demo data and run everything end to end.")
@click.option(
    "--end", help="Last timestamp of the demo data (ISO 8601, UTC); default: now, floored to the hour."
)
def demo(end: str | None) -> None:
    """Generate and land demo data, run the whole graph through Dagster, tick the alert sensor, summarize."""
    from intentvision_dagster.demo import run_demo

    run_demo(load_settings(), end=pd.Timestamp(end) if end else None, echo=click.echo)


@main.command("api", short_help="Serve the HTTP API (ingest and tenant-scoped reads).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(min=1), help="uvicorn worker processes."
)
def api_command(host: str, port: int, workers: int) -> None:
    """Serve the API with uvicorn; OpenAPI docs at /docs. Keys and tenants come from $INTENTVISION_HOME."""
    import uvicorn

    settings = load_settings()
    settings.ensure_dirs()
    click.echo(f"IntentVision API on http://{host}:{port} (docs at /docs), state in {settings.home}")
    uvicorn.run(
        "intentvision_dagster.api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
    )


def _registry():
    from intentvision_dagster.api.registry import Registry

    return Registry(load_settings().registry_path)


def _cli_actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


@main.group()
def tenants() -> None:
    """Tenants known to the API (each API key belongs to one)."""


@tenants.command("create", short_help="Register a tenant.")
@click.argument("name")
def tenants_create(name: str) -> None:
    """Register tenant NAME (a lowercase slug) so keys can be created for it."""
    from intentvision_dagster.api.registry import RegistryError

    try:
        _registry().create_tenant(name, _cli_actor())
    except (RegistryError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created tenant {name}")


@tenants.command("list", short_help="List tenants.")
def tenants_list() -> None:
    """Print one tenant per line."""
    for name in _registry().tenants():
        click.echo(name)


@main.group()
def keys() -> None:
    """API keys: created per tenant with scopes, stored hashed, revocable at once."""


@keys.command("create", short_help="Create an API key (printed once).")
@click.option("--tenant", required=True, help="Tenant the key belongs to.")
@click.option(
    "--scopes", default="ingest,read", show_default=True, help="Comma-separated: ingest, read, admin."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: key_id, tenant, scopes, key.")
def keys_create(tenant: str, scopes: str, as_json: bool) -> None:
    """Create a key for TENANT. The key is printed once and cannot be shown again (only its hash is kept)."""
    from intentvision_dagster.api.registry import RegistryError, parse_scopes

    try:
        new = _registry().create_key(tenant, parse_scopes(scopes), _cli_actor())
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(
            json.dumps(
                {"key_id": new.key_id, "tenant": new.tenant, "scopes": list(new.scopes), "key": new.key}
            )
        )
    else:
        click.echo(
            f"key {new.key_id} for tenant {new.tenant} (scopes {','.join(new.scopes)}); shown only once:"
        )
        click.echo(new.key)


@keys.command("list", short_help="List API keys (never their secrets).")
@click.option("--tenant", help="Only this tenant's keys.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def keys_list(tenant: str | None, as_json: bool) -> None:
    """Print key id, tenant, scopes, creation and revocation times."""
    for key in _registry().keys(tenant):
        if as_json:
            click.echo(json.dumps({**vars(key), "scopes": list(key.scopes)}))
        else:
            state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
            click.echo(f"{key.key_id}  {key.tenant:<12} {','.join(key.scopes):<18} {key.created_at}  {state}")


@keys.command("revoke", short_help="Revoke an API key now.")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke KEY_ID; the running API refuses it from the next request on."""
    from intentvision_dagster.api.registry import RegistryError

    try:
        key = _registry().revoke_key(key_id, _cli_actor())
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revoked key {key.key_id} of tenant {key.tenant} at {key.revoked_at}")


@main.command("audit", short_help="Show the API audit log (admin actions, failed authentications).")
@click.option("--tenant", help="Only entries about this tenant.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
def audit_command(tenant: str | None, limit: int) -> None:
    """Newest first, one JSON object per line; secrets are never recorded."""
    for entry in _registry().audit_entries(tenant, limit):
        click.echo(json.dumps(entry))
