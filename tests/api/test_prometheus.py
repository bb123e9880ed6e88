"""A real Prometheus server remote-writes its own metrics to our API, the data runs through the asset graph,
and the Prometheus pull sensor reads the same server with query_range."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest
import yaml

from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.landing import MULTI_METRIC_FILE, list_batches, read_landed_many
from intentvision_dagster.runs import run_pipeline
from tests.api.conftest import Api, make_api_home
from tests.support.api_server import api_in_thread, free_port
from tests.support.prometheus_server import prometheus_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prometheus_world(tmp_path_factory) -> Iterator[tuple[Api, str, Path]]:
    """Our API (tenant acme) and a Prometheus that scrapes itself every second and remote-writes to it."""
    root = tmp_path_factory.mktemp("prometheus")
    settings, registry, keys = make_api_home(root / "home", api_rate_limit=10_000.0)
    port = free_port()
    with api_in_thread(settings) as url:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            ],
            "remote_write": [
                {
                    "url": f"{url}/api/v1/write",
                    "basic_auth": {"username": "acme", "password": keys["acme:ingest"]},
                    "queue_config": {"batch_send_deadline": "1s", "min_backoff": "100ms"},
                    "metadata_config": {"send": False},
                }
            ],
        }
        with prometheus_server(root, config, port=port) as prometheus_url:
            yield Api(url, settings, registry, keys), prometheus_url, root


def _landed_up_points(api: Api) -> int:
    return len(read_landed_many(api.settings.landing_dir, [("acme", "up")]))


def test_prometheus_remote_write_lands_its_samples_and_they_run_through_dagster(prometheus_world):
    api, prometheus_url, root = prometheus_world
    deadline = time.monotonic() + 90
    while _landed_up_points(api) < 5 and time.monotonic() < deadline:
        time.sleep(1)
    assert _landed_up_points(api) >= 5, (root / "prometheus.log").read_text()[-2000:]

    batches = list_batches(api.settings.landing_dir)
    assert {b.tenant for b in batches} == {"acme"}
    assert all((b.path / MULTI_METRIC_FILE).exists() for b in batches)
    up = read_landed_many(api.settings.landing_dir, [("acme", "up")])
    address = prometheus_url.removeprefix("http://")
    assert set(up["labels"]) == {f'instance="{address}",job="prometheus"'}
    assert set(up["y"]) == {1.0}

    def remote_storage(metric: str) -> float:
        answer = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": f"sum({metric})"}).json()
        return float(answer["data"]["result"][0]["value"][1])

    assert remote_storage("prometheus_remote_storage_samples_total") >= 5
    assert remote_storage("prometheus_remote_storage_samples_failed_total") == 0  # we refused nothing

    defs = build_definitions(api.settings)
    with dg.instance_for_test() as instance:
        sensor = defs.resolve_sensor_def("landing_sensor")
        result = sensor(
            dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
        )
        [added] = result.dynamic_partitions_requests
        assert "acme/up" in added.partition_keys
        assert "acme/prometheus_tsdb_head_series" in added.partition_keys
        instance.add_dynamic_partitions("tenant_metric", list(added.partition_keys))
        [outcome] = run_pipeline(defs, instance, ["acme/prometheus_tsdb_head_series"])
        assert outcome.success
        materialized = instance.fetch_materializations(dg.AssetKey("raw_series"), limit=1).records
        assert materialized[0].asset_materialization.partition == "acme/prometheus_tsdb_head_series"
        assert materialized[0].asset_materialization.metadata["points"].value >= 5


def test_prometheus_pull_sensor_lands_a_query_range(prometheus_world):
    api, prometheus_url, _ = prometheus_world
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until Prometheus has a few seconds of its own data
        answer = httpx.get(
            f"{prometheus_url}/api/v1/query", params={"query": "count_over_time(up[1m])"}
        ).json()
        if answer["data"]["result"] and float(answer["data"]["result"][0]["value"][1]) >= 5:
            break
        time.sleep(1)
    sources = api.settings.prometheus_sources
    sources.write_text(
        yaml.safe_dump(
            {
                "sources": [
                    {
                        "tenant": "globex",
                        "name": "self-up",
                        "url": prometheus_url,
                        "query": 'up{job="prometheus"}',
                        "step": "1s",
                        "lookback": "1m",
                        "metric": "pulled_up",
                    }
                ]
            }
        )
    )
    defs = build_definitions(api.settings)
    sensor = defs.resolve_sensor_def("prometheus_pull_sensor")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
        first = sensor(context)
        assert "globex/self-up: " in first.skip_message and "failed" not in first.skip_message
        pulled = read_landed_many(api.settings.landing_dir, [("globex", "pulled_up")])
        assert len(pulled) >= 5 and set(pulled["y"]) == {1.0}
        assert set(pulled["unique_id"]) == {
            f'globex/pulled_up{{instance="{prometheus_url.removeprefix("http://")}",job="prometheus"}}'
        }
        assert context.cursor and "globex/self-up" in context.cursor
