"""The official datadog-api-client submits series to our /api/v2/series, compressed as Datadog clients do,
and they run through the asset graph."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException
from datadog_api_client.v2.api.metrics_api import MetricsApi
from datadog_api_client.v2.model.metric_content_encoding import MetricContentEncoding
from datadog_api_client.v2.model.metric_intake_type import MetricIntakeType
from datadog_api_client.v2.model.metric_payload import MetricPayload
from datadog_api_client.v2.model.metric_point import MetricPoint
from datadog_api_client.v2.model.metric_resource import MetricResource
from datadog_api_client.v2.model.metric_series import MetricSeries

from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.landing import read_landed_many
from intentvision_dagster.runs import run_pipeline
from tests.api.conftest import Api, now_s


def _submit(api: Api, key: str, encoding: str, metric: str, values: list[float]) -> object:
    configuration = Configuration(host=api.url)
    configuration.api_key["apiKeyAuth"] = key
    start = now_s() - 600
    payload = MetricPayload(
        series=[
            MetricSeries(
                metric=metric,
                type=MetricIntakeType.GAUGE,
                points=[MetricPoint(timestamp=start + 60 * i, value=v) for i, v in enumerate(values)],
                resources=[MetricResource(name="web-1", type="host")],
                tags=["env:prod", "team:sre", "canary"],
            )
        ]
    )
    with ApiClient(configuration) as client:
        return MetricsApi(client).submit_metrics(
            body=payload, content_encoding=MetricContentEncoding(encoding)
        )


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd1"])
def test_datadog_client_series_land_with_tags_and_resources_as_labels(api: Api, encoding: str):
    metric = f"system.load.{encoding}"
    accepted = _submit(api, api.key("globex", "ingest"), encoding, metric, [0.5, 0.75, 1.25])
    assert accepted.errors == []
    landed = read_landed_many(api.settings.landing_dir, [("globex", f"system_load_{encoding}")])
    assert landed["y"].tolist() == [0.5, 0.75, 1.25]
    assert set(landed["labels"]) == {'canary="true",env="prod",host="web-1",team="sre"'}
    assert set(landed["tenant"]) == {"globex"}


def test_datadog_client_with_a_bad_key_gets_an_error_and_nothing_lands(api: Api):
    before = len(api.batches())
    with pytest.raises(ApiException) as refused:
        _submit(api, "iv_000000000000_nope", "gzip", "system.load.bad", [1.0])
    assert refused.value.status == 401
    assert len(api.batches()) == before


@pytest.mark.slow
def test_datadog_series_flow_through_the_asset_graph(api: Api):
    hourly = [40.0 + (i % 24) for i in range(48)]
    configuration = Configuration(host=api.url)
    configuration.api_key["apiKeyAuth"] = api.key("globex", "ingest")
    start = (now_s() // 3600 - 48) * 3600
    payload = MetricPayload(
        series=[
            MetricSeries(
                metric="system.cpu.user",
                type=MetricIntakeType.GAUGE,
                points=[MetricPoint(timestamp=start + 3600 * i, value=v) for i, v in enumerate(hourly)],
                tags=["host:db-1"],
            )
        ]
    )
    with ApiClient(configuration) as client:
        assert MetricsApi(client).submit_metrics(body=payload).errors == []

    defs = build_definitions(api.settings)
    with dg.instance_for_test() as instance:
        sensor = defs.resolve_sensor_def("landing_sensor")
        result = sensor(
            dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
        )
        [added] = result.dynamic_partitions_requests
        keys = list(added.partition_keys)
        assert "globex/system_cpu_user" in keys
        assert {r.tags["intentvision/tenant"] for r in result.run_requests} == {"globex"}
        instance.add_dynamic_partitions("tenant_metric", keys)
        [outcome] = run_pipeline(defs, instance, ["globex/system_cpu_user"])
        assert outcome.success
    with duckdb.connect(str(api.settings.warehouse_path), read_only=True) as conn:
        [(series, points)] = conn.execute(
            "select count(distinct unique_id), count(*) from intentvision.validated_series"
            " where tenant = 'globex' and metric = 'system_cpu_user'"
        ).fetchall()
        [(forecast_rows,)] = conn.execute(
            "select count(*) from intentvision.forecasts where unique_id = ?",
            ['globex/system_cpu_user{host="db-1"}'],
        ).fetchall()
    assert (series, points) == (1, 48)
    assert forecast_rows > 0
