"""The ``intentvision`` command line."""

from __future__ import annotations

import json
import sys
import warnings
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
