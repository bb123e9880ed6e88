"""Repeated and out-of-order samples over real HTTP: taken, merged by the metric's kind, and said so."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest

from intentvision_dagster.catalog import load_catalog
from intentvision_dagster.landing import read_landed
from intentvision_dagster.quality.schema import split_valid
from intentvision_dagster.remote_write import write_request_body
from tests.api.conftest import Api, make_api_home, now_s, post_remote_write
from tests.support.api_server import api_in_thread

GAUGE = 'acme/node_cpu_utilization_percent{host="web-1"}'
CATALOG = """
defaults: {kind: gauge}
metrics:
  requests_total: {kind: counter}
  node_cpu_utilization_percent: {min: 0, max: 100}
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Api:
    """The API with a metric catalog that declares a counter and a bounded gauge."""
    home = tmp_path_factory.mktemp("repeats-home")
    (home / "metrics.yaml").write_text(CATALOG)
    settings, registry, keys = make_api_home(home, metrics_catalog=home / "metrics.yaml")
    with api_in_thread(settings) as url:
        yield Api(url, settings, registry, keys)


def _series(metric: str, points: list[tuple[int, float]]) -> dict:
    return {
        "metric": metric,
        "labels": {"host": "web-1"},
        "points": [{"timestamp": t, "value": v} for t, v in points],
    }


def test_json_repeats_and_disorder_are_landed_as_sent_with_a_warning(api: Api) -> None:
    t = now_s() - 3600
    body = {
        "series": [
            # a repeated timestamp (two samples of the level) and a row out of order
            _series(
                "node_cpu_utilization_percent", [(t, 10.0), (t + 60, 30.0), (t + 60, 50.0), (t - 60, 5.0)]
            ),
            # a retried write of the same item, and a counter repeating a timestamp
            _series("node_cpu_utilization_percent", [(t, 10.0)]),
            _series("requests_total", [(t, 100.0), (t, 120.0)]),
        ]
    }
    response = httpx.post(f"{api.url}/v1/ingest", json=body, headers=api.headers("acme"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted_samples"] == 7
    assert answer["warnings"] == [
        "2 series: 6 rows at 3 repeated timestamps merged into one row each (gauges: mean, counters: max; "
        f"1 exact repeat), e.g. {GAUGE} at {_utc(t)}; 1 row out of order put in time order"
    ]
    # Landed as sent; validation checks each row's bounds, then merges (see the next test).
    gauge = read_landed(api.settings.landing_dir, "acme", "node_cpu_utilization_percent")
    assert sorted(gauge["y"].tolist()) == [5.0, 10.0, 10.0, 30.0, 50.0]
    counter = read_landed(api.settings.landing_dir, "acme", "requests_total")
    assert sorted(counter["y"].tolist()) == [100.0, 120.0]


def test_a_repeat_outside_the_bounds_is_quarantined_not_averaged_into_the_good_row(api: Api) -> None:
    t = now_s() - 7200
    body = {"series": [_series("node_cpu_utilization_percent", [(t, 10.0), (t, -5.0)])]}
    response = httpx.post(f"{api.url}/v1/ingest", json=body, headers=api.headers("acme"))
    assert response.status_code == 200, response.text
    landed = read_landed(api.settings.landing_dir, "acme", "node_cpu_utilization_percent")
    landed = landed[landed["ds"] == pd.Timestamp(t, unit="s")]
    catalog = load_catalog(api.settings.metrics_catalog)
    split = split_valid(landed, catalog.spec("node_cpu_utilization_percent"))
    assert split.valid["y"].tolist() == [10.0], "not the mean 2.5 of a good and a bad row"
    assert split.quarantined["y"].tolist() == [-5.0]


def test_a_clean_request_has_no_warning_and_another_tenant_never_sees_one(api: Api) -> None:
    t = now_s() - 1800
    repeated = {"series": [_series("node_cpu_utilization_percent", [(t, 1.0), (t, 2.0)])]}
    acme = httpx.post(f"{api.url}/v1/ingest", json=repeated, headers=api.headers("acme"))
    assert "acme/" in acme.json()["warnings"][0]
    clean = {"series": [_series("node_cpu_utilization_percent", [(t, 1.0), (t + 60, 2.0)])]}
    globex = httpx.post(f"{api.url}/v1/ingest", json=clean, headers=api.headers("globex"))
    assert globex.status_code == 200 and "warnings" not in globex.json()


def test_remote_write_and_datadog_repeats_are_taken(api: Api) -> None:
    t_ms = (now_s() - 600) * 1000
    labels = {"__name__": "node_cpu_utilization_percent", "host": "web-2"}
    body = write_request_body([(labels, [(1.0, t_ms), (3.0, t_ms)]), (labels, [(1.0, t_ms)])])
    response = post_remote_write(api, body, api.headers("globex"))
    assert response.status_code == 204
    assert response.headers["X-IntentVision-Warning"].startswith(
        "1 series: 3 rows at 1 repeated timestamp merged into one row each (gauges: mean; 1 exact repeat)"
    )
    t = now_s() - 600
    series = [
        {"metric": "node.load", "points": [{"timestamp": t, "value": 2.0}, {"timestamp": t, "value": 4.0}]}
    ]
    response = httpx.post(
        f"{api.url}/api/v2/series", json={"series": series}, headers={"DD-API-KEY": api.key("globex")}
    )
    assert response.status_code == 202, response.text
    assert response.json()["warnings"][0].startswith("1 series: 2 rows at 1 repeated timestamp merged")


def _utc(epoch_s: int) -> str:
    return str(pd.Timestamp(epoch_s, unit="s"))
