"""The landing sensor turns landed batches into dynamic partitions and pipeline run requests."""

from __future__ import annotations

import json

import dagster as dg

from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.runs import ingest_file
from tests.conftest import settings_for

CSV = """timestamp,metric,labels,value
2026-11-01T00:00:00Z,node_cpu_utilization_percent,host=web-1,41.5
2026-11-01T01:00:00Z,node_cpu_utilization_percent,host=web-1,43.0
2026-11-01T00:00:00Z,http_requests_per_second,service=api,120
"""


def test_new_batches_add_partitions_and_request_one_run_per_partition(tmp_path):
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
        assert sorted(r.partition_key for r in result.run_requests) == sorted(added.partition_keys)
        assert {r.tags["intentvision/tenant"] for r in result.run_requests} == {"acme"}
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
