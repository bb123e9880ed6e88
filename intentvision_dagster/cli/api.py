"""``intentvision api``: serve the HTTP API."""

from __future__ import annotations

import click

from intentvision_dagster.settings import load_settings


@click.command("api", short_help="Serve the HTTP API (ingest and tenant-scoped reads).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(min=1), help="uvicorn worker processes."
)
def api_command(host: str, port: int, workers: int) -> None:
    """Serve the API with uvicorn; OpenAPI docs at /docs. Keys and tenants come from $INTENTVISION_HOME.

    \b
    Examples:
      intentvision api
      intentvision api --host 0.0.0.0 --port 8080 --workers 2
    """
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
