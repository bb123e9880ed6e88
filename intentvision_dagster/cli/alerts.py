"""``intentvision alerts``: the alert log, a sensor tick, silences and a dry run of one rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

import click
import pandas as pd

from intentvision_dagster.alerting.inputs import json_safe
from intentvision_dagster.alerting.log import ALERT_COLUMNS, ALERT_STATES
from intentvision_dagster.cli.instance import instance_and_defs
from intentvision_dagster.cli.lookup import (
    has_warehouse,
    require_tenant,
    require_warehouse,
    warn_unrouted,
)
from intentvision_dagster.errors import UnavailableError
from intentvision_dagster.settings import load_settings

if TYPE_CHECKING:
    import duckdb

ALERT_FIELDS = [
    c
    for c in ALERT_COLUMNS
    if c not in ("summary", "details", "updated_at", "last_error", "labels", "cleared_at", "incident_id")
]
"""What ``alerts list --json`` prints per alert (the log's columns less the long texts and plumbing)."""


@click.group()
def alerts() -> None:
    """The alert log: what fired, where it went.

    \b
    Examples:
      intentvision alerts list
      intentvision alerts tick
      intentvision alerts test-rule disk-capacity --tenant acme
    """


@alerts.command("list", short_help="Print the alert log, newest first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert, one per line.")
@click.option("--tenant", help="Only this tenant's alerts.")
@click.option("--state", type=click.Choice(ALERT_STATES), help="Only alerts in this state.")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(min=1), help="At most this many alerts."
)
def alerts_list(as_json: bool, tenant: str | None, state: str | None, limit: int) -> None:
    """Print the alert log, newest first; a cut list says how many older alerts matched.

    \b
    Examples:
      intentvision alerts list
      intentvision alerts list --tenant acme --state failed
      intentvision alerts list --json --limit 500 > alerts.jsonl
    """
    from intentvision_dagster.alerting.log import latest_alerts

    settings = load_settings()
    if not has_warehouse(settings, "no alerts", as_json):
        return
    with _warehouse() as conn:
        page = latest_alerts(conn, tenant=tenant, state=state, limit=limit)
    if not as_json:
        warn_unrouted(settings, page.alerts["tenant"])
    more = f"... {page.more} more (older); raise --limit or filter with --tenant/--state" if page.more else ""
    if as_json:
        for record in page.alerts.to_dict(orient="records"):
            click.echo(json.dumps({field: json_safe(record.get(field)) for field in ALERT_FIELDS}))
        if more:
            click.echo(more, err=True)
        return
    if page.alerts.empty:
        click.echo("no alerts")
        return
    click.echo(f"{'CREATED (UTC)':<16} {'SEVERITY':<8} {'STATE':<9} {'TENANT':<10} SUMMARY")
    for row in page.alerts.itertuples():
        click.echo(
            f"{row.created_at:%Y-%m-%d %H:%M} {row.severity:<8} {row.state:<9} {row.tenant:<10} {row.summary}"
        )
    if more:
        click.echo(more)


@alerts.command("tick", short_help="Evaluate the alert sensor once now.")
def alerts_tick() -> None:
    """Evaluate the alert sensor once now (the daemon does this every 30 s).

    \b
    Examples:
      intentvision alerts tick
    """
    from intentvision_dagster.runs import tick_alert_sensor

    require_warehouse(load_settings())
    instance, defs = instance_and_defs()
    result = tick_alert_sensor(defs, instance)
    click.echo(result.skip_reason.skip_message if result.skip_reason else "alert sensor ticked")


@contextmanager
def _warehouse() -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse (the side tables, and the asset tables of the DuckDB file or the lake),
    with a clear error when a run holds its write lock."""
    import duckdb

    from intentvision_dagster.definitions import storage_resources

    settings = load_settings()
    settings.ensure_dirs()
    with ExitStack() as stack:
        try:
            conn = stack.enter_context(storage_resources(settings)["warehouse"].get_connection())
        except duckdb.IOException as exc:
            raise UnavailableError(
                f"cannot open the warehouse {settings.side_tables_path} "
                f"(a run may be writing it; retry): {exc}"
            ) from None
        yield conn


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
    """Mute a tenant's alerts matching labels for a while (Alertmanager-style silences).

    \b
    Examples:
      intentvision alerts silence create --tenant acme --matcher host=db-1 --duration 2h --comment 'resizing'
      intentvision alerts silence list --all
    """


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
    """Create a silence: matching alerts of TENANT are not notified between --starts and the end.

    \b
    Examples:
      intentvision alerts silence create --tenant acme --matcher host=db-1 --duration 2h --comment 'resizing'
      intentvision alerts silence create --tenant acme --matcher severity=info --duration 1h --comment noisy
    """
    from intentvision_dagster.alerting.silences import create_silence

    if (duration is None) == (ends is None):
        raise click.UsageError("give exactly one of --duration or --ends")
    require_tenant(tenant, load_settings())
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
    """Print active and future silences (with --all, expired ones too), oldest first.

    \b
    Examples:
      intentvision alerts silence list
      intentvision alerts silence list --tenant acme --all --json
    """
    from intentvision_dagster.alerting.silences import list_silences

    if not has_warehouse(load_settings(), "no silences", as_json):
        return
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
    """End the silence SILENCE_ID now; alerts it muted are notified on the next tick if still firing.

    \b
    Examples:
      intentvision alerts silence expire 3f0c9a1b2d4e
    """
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

    \b
    Examples:
      intentvision alerts test-rule disk-capacity --tenant acme
      intentvision alerts test-rule disk-capacity --tenant acme --json
    """
    from intentvision_dagster.alerting.config import ConfigError
    from intentvision_dagster.alerting.preview import preview_rule
    from intentvision_dagster.alerting.rules import load_rule_set
    from intentvision_dagster.catalog import load_catalog

    settings = load_settings()
    require_tenant(tenant, settings)
    try:
        chosen = load_rule_set(settings.alert_rules, settings.tenant_rules_dir).rule(tenant, rule)
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyError as exc:
        raise click.ClickException(exc.args[0]) from None
    require_warehouse(settings)
    catalog = load_catalog(settings.metrics_catalog)
    with _warehouse() as conn:
        preview = preview_rule(conn, chosen, tenant, catalog, _utc_time(None, ""))
    for line in preview.lines(as_json):
        click.echo(line)
