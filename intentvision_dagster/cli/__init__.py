"""The ``intentvision`` command line: the root group, and the one place errors become exit codes.

Each command group lives in its own module and calls domain functions; this module only assembles them.
Domain code raises :class:`~intentvision_dagster.errors.IntentVisionError` subclasses and
:class:`IntentVisionGroup` prints them as one ``Error: ...`` line with the class's exit code, so commands do
not catch them one by one.
"""

from __future__ import annotations

import warnings
from typing import Any

import click

from intentvision_dagster.cli.alerts import alerts
from intentvision_dagster.cli.api import api_command
from intentvision_dagster.cli.capacity import capacity_command
from intentvision_dagster.cli.files import detect_command, forecast_command
from intentvision_dagster.cli.pipeline import demo, ingest, run
from intentvision_dagster.cli.registry import audit_command, keys, tenants
from intentvision_dagster.errors import IntentVisionError, StorageUnavailable
from intentvision_dagster.settings import load_settings


class IntentVisionGroup(click.Group):
    """A click group that reports its commands' :class:`IntentVisionError` the way click reports its own."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except IntentVisionError as exc:
            raise _one_line(exc) from None
        except OSError as exc:
            # A full or read-only home: one line naming the path, not a traceback.
            raise _one_line(StorageUnavailable.from_os_error(exc, load_settings().home)) from None


def _one_line(exc: IntentVisionError) -> click.ClickException:
    error = click.ClickException(str(exc))
    error.exit_code = exc.exit_code
    return error


@click.group(cls=IntentVisionGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="intentvision", prog_name="intentvision", message="%(prog)s %(version)s")
def main() -> None:
    """IntentVision: forecasts, anomalies and alerts for the metrics you already collect.

    State lives under $INTENTVISION_HOME (default .intentvision/ in the repo).

    \b
    Examples:
      intentvision demo
      intentvision ingest metrics.csv --tenant acme && intentvision run --all
      intentvision alerts list --tenant acme
    """
    # Dagster flags the beta/preview APIs used here (single-run backfills, partitioned checks) on every load.
    warnings.filterwarnings("ignore", message=r".*is currently in (beta|preview).*")


for command in (
    ingest,
    run,
    detect_command,
    forecast_command,
    capacity_command,
    alerts,
    demo,
    api_command,
    tenants,
    keys,
    audit_command,
):
    main.add_command(command)
