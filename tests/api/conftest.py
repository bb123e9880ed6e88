"""A real API on loopback HTTP against a scratch INTENTVISION_HOME with two tenants and their keys."""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx
import pytest

from intentvision_dagster.api.registry import Registry
from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.landing import list_batches
from intentvision_dagster.runs import tick_alert_sensor
from intentvision_dagster.settings import Settings
from tests.conftest import settings_for
from tests.support.api_server import api_in_thread

MAX_POINTS = 50
MAX_BODY_BYTES = 64 * 1024


@dataclass
class Api:
    url: str
    settings: Settings
    registry: Registry
    keys: dict[str, str]
    """``"<tenant>:<scopes>"`` -> key, e.g. ``"acme:ingest,read"``."""

    def key(self, tenant: str, scopes: str = "ingest,read") -> str:
        return self.keys[f"{tenant}:{scopes}"]

    def headers(self, tenant: str, scopes: str = "ingest,read") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key(tenant, scopes)}"}

    def batches(self, tenant: str | None = None) -> list:
        return [b for b in list_batches(self.settings.landing_dir) if tenant in (None, b.tenant)]


def make_api_home(home: Path, **limits) -> tuple[Settings, Registry, dict[str, str]]:
    settings = dataclasses.replace(settings_for(home), **limits)
    settings.ensure_dirs()
    registry = Registry(settings.registry_path)
    keys = {}
    for tenant in ("acme", "globex"):
        registry.create_tenant(tenant, "test")
        for scopes in ("ingest,read", "ingest", "read", "admin"):
            keys[f"{tenant}:{scopes}"] = registry.create_key(tenant, tuple(scopes.split(",")), "test").key
    return settings, registry, keys


def seed_warehouse(warehouse: Path) -> None:
    """Two tenants' series rows and an (empty) alert log, for the read endpoints."""
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("create schema intentvision")
        conn.execute(
            "create table intentvision.validated_series as select * from (values"
            " ('acme', 'cpu', 'host=\"a\"', 'acme/cpu{host=\"a\"}', timestamp '2026-11-01 00:00', 1.0),"
            " ('acme', 'cpu', 'host=\"a\"', 'acme/cpu{host=\"a\"}', timestamp '2026-11-01 01:00', 2.0),"
            " ('acme', 'mem', '', 'acme/mem', timestamp '2026-11-01 00:00', 3.0),"
            " ('globex', 'cpu', '', 'globex/cpu', timestamp '2026-11-01 00:00', 9.0)"
            ") t(tenant, metric, labels, unique_id, ds, y)"
        )
        conn.execute("alter table intentvision.validated_series alter y type double")
        conn.execute(
            "create table intentvision.alert_log (id varchar, tenant varchar, metric varchar,"
            " series varchar, created_at timestamp)"
        )


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Api:
    settings, registry, keys = make_api_home(
        tmp_path_factory.mktemp("api-home"),
        api_max_points=MAX_POINTS,
        api_max_body_bytes=MAX_BODY_BYTES,
        api_rate_limit=10_000.0,
        api_auth_failure_rate=10_000.0,
    )
    with api_in_thread(settings) as url:
        yield Api(url, settings, registry, keys)


@pytest.fixture(scope="module")
def world_api(demo_world, tmp_path_factory) -> Api:
    """The API over a copy of the demo warehouse (both tenants materialized, alerts evaluated)."""
    settings, registry, keys = make_api_home(tmp_path_factory.mktemp("world-home"), api_rate_limit=10_000.0)
    for path in demo_world.settings.home.glob("warehouse.duckdb*"):
        shutil.copy(path, settings.home / path.name)
    tick_alert_sensor(build_definitions(settings), demo_world.instance)
    with api_in_thread(settings) as url:
        yield Api(url, settings, registry, keys)


def now_s() -> int:
    return int(time.time())


def json_body(metric: str = "node_cpu", labels: dict | None = None, points: list | None = None) -> dict:
    return {
        "series": [
            {
                "metric": metric,
                "labels": {"host": "web-1"} if labels is None else labels,
                "points": points if points is not None else [{"timestamp": now_s() - 60, "value": 1.5}],
            }
        ]
    }


def post_remote_write(api: Api, body: bytes, headers: dict, **params) -> httpx.Response:
    return httpx.post(
        f"{api.url}/api/v1/write",
        content=body,
        headers={**headers, "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"},
        params=params,
    )
