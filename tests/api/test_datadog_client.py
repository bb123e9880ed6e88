"""The official datadog-api-client submits series to our /api/v2/series, compressed as Datadog clients do."""

from __future__ import annotations

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

from intentvision_dagster.ingest.landing import read_landed_many
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
