"""The Dagster side of the commands that run jobs or sensors (``run``, ``alerts tick``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from intentvision_dagster.settings import load_settings, prepare_dagster_home

if TYPE_CHECKING:
    import dagster as dg


def instance_and_defs() -> tuple[dg.DagsterInstance, dg.Definitions]:
    """The persistent Dagster instance under INTENTVISION_HOME and the project's definitions.

    Dagster and the definitions are imported here, when a command needs them, so ``--help`` and the file
    commands start without loading the whole graph.
    """
    import dagster as dg

    from intentvision_dagster.definitions import defs

    prepare_dagster_home(load_settings())
    return dg.DagsterInstance.get(), defs
