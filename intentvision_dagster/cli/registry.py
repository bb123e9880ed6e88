"""Commands over the API's registry: tenants, their API keys and the audit log."""

from __future__ import annotations

import getpass
import json

import click

from intentvision_dagster.api.registry import Registry, parse_scopes
from intentvision_dagster.settings import load_settings


def _registry() -> Registry:
    """The registry file the running API reads too, so a change here applies to its next request."""
    return Registry(load_settings().registry_path)


def _cli_actor() -> str:
    """Who the audit log names for a command-line change: the local user, as the API names a key."""
    return f"cli:{getpass.getuser()}"


@click.group()
def tenants() -> None:
    """Tenants known to the API (each API key belongs to one).

    \b
    Examples:
      intentvision tenants create acme
      intentvision tenants list
    """


@tenants.command("create", short_help="Register a tenant.")
@click.argument("name")
def tenants_create(name: str) -> None:
    """Register tenant NAME (a lowercase slug) so keys can be created for it.

    \b
    Examples:
      intentvision tenants create acme
    """
    _registry().create_tenant(name, _cli_actor())
    click.echo(f"created tenant {name}")


@tenants.command("list", short_help="List tenants.")
def tenants_list() -> None:
    """Print one tenant per line.

    \b
    Examples:
      intentvision tenants list
    """
    for name in _registry().tenants():
        click.echo(name)


@click.group()
def keys() -> None:
    """API keys: created per tenant with scopes, stored hashed, revocable at once.

    \b
    Examples:
      intentvision keys create --tenant acme --scopes ingest,read
      intentvision keys list --tenant acme
      intentvision keys revoke 3f0c9a1b2d4e
    """


@keys.command("create", short_help="Create an API key (printed once).")
@click.option("--tenant", required=True, help="Tenant the key belongs to.")
@click.option(
    "--scopes", default="ingest,read", show_default=True, help="Comma-separated: ingest, read, admin."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: key_id, tenant, scopes, key.")
def keys_create(tenant: str, scopes: str, as_json: bool) -> None:
    """Create a key for TENANT. The key is printed once and cannot be shown again (only its hash is kept).

    \b
    Examples:
      intentvision keys create --tenant acme
      intentvision keys create --tenant acme --scopes ingest,read,admin --json
    """
    new = _registry().create_key(tenant, parse_scopes(scopes), _cli_actor())
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
    """Print key id, tenant, scopes, creation and revocation times.

    \b
    Examples:
      intentvision keys list
      intentvision keys list --tenant acme --json
    """
    for key in _registry().keys(tenant):
        if as_json:
            click.echo(json.dumps({**vars(key), "scopes": list(key.scopes)}))
        else:
            state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
            click.echo(f"{key.key_id}  {key.tenant:<12} {','.join(key.scopes):<18} {key.created_at}  {state}")


@keys.command("revoke", short_help="Revoke an API key now.")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke KEY_ID; the running API refuses it from the next request on.

    \b
    Examples:
      intentvision keys revoke 3f0c9a1b2d4e
    """
    key = _registry().revoke_key(key_id, _cli_actor())
    click.echo(f"revoked key {key.key_id} of tenant {key.tenant} at {key.revoked_at}")


@click.command("audit", short_help="Show the API audit log (admin actions, failed authentications).")
@click.option("--tenant", help="Only entries about this tenant.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
def audit_command(tenant: str | None, limit: int) -> None:
    """Newest first, one JSON object per line; secrets are never recorded.

    \b
    Examples:
      intentvision audit
      intentvision audit --tenant acme --limit 10
    """
    for entry in _registry().audit_entries(tenant, limit):
        click.echo(json.dumps(entry))
