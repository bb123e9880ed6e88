"""Shared fixtures: a throwaway INTENTVISION_HOME and the demo world materialized through Dagster once."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Tests never touch the developer's .intentvision/: point the product at a scratch home before it is imported.
os.environ["INTENTVISION_HOME"] = tempfile.mkdtemp(prefix="intentvision-test-home-")
os.environ.pop("SLACK_BOT_TOKEN", None)
os.environ.pop("NIXTLA_API_KEY", None)  # TimeGPT only through the loopback stand-in
os.environ.pop("INTENTVISION_FORECAST_BACKEND", None)

import dagster as dg
import pandas as pd
import pytest

from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.demo_data import write_demo_files
from intentvision_dagster.runs import ingest_file, register_partitions, run_pipeline
from intentvision_dagster.settings import ASSETS_DIR, Settings, load_settings

# The demo data ends now (floored to the hour) so freshness holds; the generator is deterministic given `end`.
DEMO_END = pd.Timestamp.now(tz="UTC").floor("h").tz_localize(None)


def settings_for(home: Path, **env: str) -> Settings:
    return load_settings({"INTENTVISION_HOME": str(home), **env})


@dataclass
class World:
    settings: Settings
    defs: dg.Definitions
    instance: dg.DagsterInstance
    keys: list[str]
    outcomes: list


@pytest.fixture(scope="session")
def demo_world(tmp_path_factory) -> World:
    """Demo data landed and the whole graph materialized, one run per partition, on an ephemeral instance."""
    settings = settings_for(tmp_path_factory.mktemp("demo-home"))
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    files = write_demo_files(ASSETS_DIR / "demo" / "series.yaml", DEMO_END, settings.home / "demo")
    batches = [ingest_file(path, path.stem, settings) for path in files]
    keys = register_partitions(instance, batches)
    outcomes = run_pipeline(defs, instance, keys)
    return World(settings, defs, instance, keys, outcomes)
