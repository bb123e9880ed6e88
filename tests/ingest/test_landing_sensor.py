"""The landing sensor turns landed batches into dynamic partitions and pipeline run requests."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from dagster._core.utils import make_new_run_id

from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.runs import ingest_file, register_partitions, run_pipeline
from tests.conftest import settings_for

CSV = """timestamp,metric,labels,value
2026-11-01T00:00:00Z,node_cpu_utilization_percent,host=web-1,41.5
2026-11-01T01:00:00Z,node_cpu_utilization_percent,host=web-1,43.0
2026-11-01T00:00:00Z,http_requests_per_second,service=api,120
"""


def _tick(sensor, instance, defs, cursor=None):
    return sensor(
        dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources, cursor=cursor)
    )


def test_new_batches_add_partitions_and_request_one_run_per_tenant_range(tmp_path):
    settings = settings_for(tmp_path / "home")
    defs = build_definitions(settings)
    source = tmp_path / "metrics.csv"
    source.write_text(CSV)
    batch = ingest_file(source, "acme", settings)
    sensor = defs.resolve_sensor_def("landing_sensor")
    with dg.instance_for_test() as instance:
        result = sensor(
            dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
        )
        [added] = result.dynamic_partitions_requests
        assert sorted(added.partition_keys) == [
            "acme/http_requests_per_second",
            "acme/node_cpu_utilization_percent",
        ]
        [request] = result.run_requests
        assert request.tags["dagster/asset_partition_range_start"] == "acme/http_requests_per_second"
        assert request.tags["dagster/asset_partition_range_end"] == "acme/node_cpu_utilization_percent"
        assert request.tags["intentvision/tenant"] == "acme"
        assert json.loads(result.cursor)["newest"] == batch.batch_id

        instance.add_dynamic_partitions("tenant_metric", added.partition_keys)
        again = sensor(
            dg.build_sensor_context(
                instance=instance, definitions=defs, resources=defs.resources, cursor=result.cursor
            )
        )
        assert isinstance(again, dg.SkipReason) and again.skip_message == "no new landed batches"

        second = ingest_file(source, "globex", settings)
        later = sensor(
            dg.build_sensor_context(
                instance=instance, definitions=defs, resources=defs.resources, cursor=result.cursor
            )
        )
        [added_later] = later.dynamic_partitions_requests
        assert sorted(added_later.partition_keys) == [
            "globex/http_requests_per_second",
            "globex/node_cpu_utilization_percent",
        ]
        assert json.loads(later.cursor)["newest"] == second.batch_id


@pytest.fixture
def landing(tmp_path):
    """A home with the CSV ready to land, its definitions and the landing sensor."""
    settings = settings_for(tmp_path / "home")
    defs = build_definitions(settings)
    source = tmp_path / "metrics.csv"
    source.write_text(CSV)
    return settings, defs, source, defs.resolve_sensor_def("landing_sensor")


def _waiting_run(instance, key: str) -> None:
    """A pipeline run for ``key`` that the queue has not started yet."""
    instance.add_run(
        dg.DagsterRun(
            job_name="series_pipeline",
            run_id=make_new_run_id(),
            status=dg.DagsterRunStatus.NOT_STARTED,
            tags={"dagster/partition": key, "intentvision/tenant": key.split("/")[0]},
        )
    )


def _many_metrics_csv(path, count: int) -> None:
    rows = [f"2026-11-01T00:00:00Z,stream_metric_{i:03d},host=a,1" for i in range(count)]
    path.write_text("timestamp,metric,labels,value\n" + "\n".join(rows) + "\n")


def test_a_stream_of_200_metric_names_makes_one_run_not_200(tmp_path):
    settings = settings_for(tmp_path / "home")
    defs = build_definitions(settings)
    source = tmp_path / "stream.csv"
    _many_metrics_csv(source, 200)
    ingest_file(source, "acme", settings)
    sensor = defs.resolve_sensor_def("landing_sensor")
    with dg.instance_for_test() as instance:
        result = _tick(sensor, instance, defs)
        [request] = result.run_requests
        assert request.tags["dagster/asset_partition_range_start"] == "acme/stream_metric_000"
        assert request.tags["dagster/asset_partition_range_end"] == "acme/stream_metric_199"


def test_partitions_a_waiting_run_covers_get_no_second_run(landing):
    settings, defs, source, sensor = landing
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(
            "tenant_metric", ["acme/http_requests_per_second", "acme/node_cpu_utilization_percent"]
        )
        _waiting_run(instance, "acme/http_requests_per_second")
        ingest_file(source, "acme", settings)
        result = _tick(sensor, instance, defs)
        assert [r.partition_key for r in result.run_requests] == ["acme/node_cpu_utilization_percent"]
        _waiting_run(instance, "acme/node_cpu_utilization_percent")
        ingest_file(source, "acme", settings)
        again = _tick(sensor, instance, defs, cursor=result.cursor)
        assert again.run_requests == []
        assert again.skip_reason.skip_message == "2 touched partition(s) already have waiting runs"


def test_a_tenant_with_full_queue_waits_without_holding_back_another_tenant(landing):
    settings, defs, source, sensor = landing
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant_metric", ["acme/a", "acme/b"])
        _waiting_run(instance, "acme/a")
        _waiting_run(instance, "acme/b")
        ingest_file(source, "acme", settings)
        ingest_file(source, "globex", settings)
        result = _tick(sensor, instance, defs)
        assert [r.tags["intentvision/tenant"] for r in result.run_requests] == ["globex"]
        assert json.loads(result.cursor)["pending"] == [
            "acme/http_requests_per_second",
            "acme/node_cpu_utilization_percent",
        ]
        for run in instance.get_runs():
            instance.delete_run(run.run_id)
        later = _tick(sensor, instance, defs, cursor=result.cursor)
        [request] = later.run_requests
        assert request.tags["intentvision/tenant"] == "acme"
        assert json.loads(later.cursor)["pending"] == []


def test_a_first_tick_after_a_demo_like_run_requests_only_data_that_run_did_not_read(tmp_path):
    """`make demo` (or `intentvision run`) processes landed batches outside the daemon; the daemon's landing
    sensor then starts with an empty cursor. It must not run those partitions again, but must run data
    landed after them."""
    settings = settings_for(tmp_path / "home")
    defs = build_definitions(settings)
    source = tmp_path / "metrics.csv"
    source.write_text(CSV)
    sensor = defs.resolve_sensor_def("landing_sensor")
    with dg.instance_for_test() as instance:
        processed = ingest_file(source, "acme", settings)
        keys = register_partitions(instance, [processed])
        assert all(outcome.success for outcome in run_pipeline(defs, instance, keys))
        [record] = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("raw_series"), asset_partitions=["acme/node_cpu_utilization_percent"]
            ),
            limit=1,
        ).records
        metadata = record.asset_materialization.metadata
        assert metadata["landed_batches"].value == {
            "newest": processed.batch_id,
            "seen": [processed.batch_id],
        }

        first = _tick(sensor, instance, defs)
        assert isinstance(first, dg.SkipReason) and first.skip_message == "no new landed batches"

        later = ingest_file(source, "globex", settings)
        restarted = _tick(sensor, instance, defs)  # a daemon reset: empty cursor again
        [request] = restarted.run_requests
        assert request.tags["intentvision/tenant"] == "globex"
        assert json.loads(restarted.cursor)["seen"] == [processed.batch_id, later.batch_id]
