"""What the commands look up before they work: known tenants, the warehouse, each tenant's Slack channel.

Shared by the command modules so a typo, an empty home or an unrouted tenant reads the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click

from intentvision_dagster.errors import NotFoundError
from intentvision_dagster.names import TENANT_PATTERN, require_known, validate_tenant
from intentvision_dagster.settings import PROJECT_ROOT, Settings


class NoWarehouseError(NotFoundError):
    """The home has no warehouse yet: nothing was ingested and run there."""


def no_warehouse_message(settings: Settings) -> str:
    """One line: which home is empty and what fills it (a newcomer's first command is often the wrong one)."""
    return (
        f"no warehouse in {settings.home} (INTENTVISION_HOME): run `make demo`, or "
        "`intentvision ingest FILE --tenant T` then `intentvision run --all`, first"
    )


def has_warehouse(settings: Settings, nothing: str, as_json: bool) -> bool:
    """Whether a listing has a warehouse to read; if not, a table says ``nothing`` and why on stderr.

    An empty home has nothing to list, which is an answer (exit 0); ``--json`` prints nothing at all, so a
    script reading it sees an empty list.
    """
    if settings.side_tables_path.exists():
        return True
    if not as_json:
        click.echo(no_warehouse_message(settings), err=True)
        click.echo(nothing)
    return False


def require_warehouse(settings: Settings) -> None:
    """Refuse, in one line, a command that cannot work without the warehouse."""
    if not settings.side_tables_path.exists():
        raise NoWarehouseError(no_warehouse_message(settings))


def known_tenants(settings: Settings) -> set[str]:
    """Tenants named in tenants.yaml, registered for API keys, or with landed data: any of them is real."""
    from intentvision_dagster.alerting.routing import load_routing
    from intentvision_dagster.api.registry import Registry

    names = set(load_routing(settings.tenants_config).tenants)
    if settings.registry_path.exists():  # opening the registry creates it; a lookup must not
        names.update(Registry(settings.registry_path).tenants())
    if settings.landing_dir.is_dir():
        names.update(
            path.name
            for path in settings.landing_dir.iterdir()
            if path.is_dir() and TENANT_PATTERN.fullmatch(path.name)
        )
    return names


def require_tenant(tenant: str, settings: Settings) -> str:
    """``tenant`` if valid and known, else one line naming it and the nearest known tenants."""
    validate_tenant(tenant)
    hint = f" (not in {settings.tenants_config.name}, the API registry or the landed data)"
    return require_known("tenant", tenant, known_tenants(settings), hint)


def _shown(path: Path) -> str:
    """A path as the user knows it: relative to the repository when inside it (assets/tenants.yaml)."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def warn_unrouted(settings: Settings, tenants: Iterable[str]) -> None:
    """Warn on stderr about tenants whose alerts have no Slack channel; the command still succeeds.

    A broken tenants.yaml is a warning here too: the data is already landed, the alerts already listed.
    """
    from intentvision_dagster.alerting.config import ConfigError
    from intentvision_dagster.alerting.routing import load_routing, unrouted_warning

    try:
        routing = load_routing(settings.tenants_config)
    except ConfigError as exc:
        click.echo(f"warning: cannot check Slack channels: {exc}", err=True)
        return
    where = _shown(settings.tenants_config)
    for tenant in sorted(set(tenants)):
        if routing.unrouted(tenant):
            click.echo(
                f"warning: {unrouted_warning(tenant, where, settings.slack_token_set)}",
                err=True,
            )
