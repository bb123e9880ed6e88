"""Isolation matrix: over every endpoint, one tenant's key can neither read nor write another tenant's data,
and the answers do not reveal whether the other tenant (or its series) exists."""

from __future__ import annotations

import gzip
import json

import dagster as dg
import httpx
import pytest

from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.landing import read_landed_many
from intentvision_dagster.remote_write import write_request_body
from tests.api.conftest import Api, json_body, make_api_home, now_s
from tests.support.api_server import api_in_thread

TENANTS = ("acme", "globex")
READS = ("series", "forecasts", "anomalies", "accuracy", "alerts")


def _request(api: Api, endpoint: str, attacker: str) -> dict:
    """Method, path and body for ``endpoint`` sent with the attacker's full set of scopes."""
    key = api.key(attacker)
    admin = api.key(attacker, "admin")
    if endpoint == "json":
        return {"method": "POST", "url": "/v1/ingest", "json": json_body(metric="iso_probe"), "key": key}
    if endpoint == "remote_write":
        body = write_request_body([({"__name__": "iso_probe", "job": "x"}, [(1.0, (now_s() - 5) * 1000)])])
        return {
            "method": "POST",
            "url": "/api/v1/write",
            "content": body,
            "key": key,
            "headers": {"Content-Encoding": "snappy"},
        }
    if endpoint == "datadog":
        series = [{"metric": "iso.probe", "points": [{"timestamp": now_s() - 5, "value": 1.0}]}]
        return {
            "method": "POST",
            "url": "/api/v2/series",
            "key": key,
            "content": gzip.compress(json.dumps({"series": series}).encode()),
            "headers": {"Content-Encoding": "gzip"},
        }
    if endpoint in READS:
        return {"method": "GET", "url": f"/v1/{endpoint}", "key": key}
    if endpoint == "keys":
        return {"method": "GET", "url": "/v1/keys", "key": admin}
    if endpoint == "revoke":
        return {"method": "DELETE", "url": "/v1/keys/ffffffffffff", "key": admin}
    return {"method": "GET", "url": "/v1/audit", "key": admin}


ENDPOINTS = ("json", "remote_write", "datadog", *READS, "keys", "revoke", "audit")
CLAIMS = ("query", "header")


def _send(api: Api, spec: dict, claim: str, tenant: str) -> httpx.Response:
    spec = dict(spec)
    headers = {"Authorization": f"Bearer {spec.pop('key')}", **spec.pop("headers", {})}
    params = {}
    if claim == "query":
        params["tenant"] = tenant
    else:
        headers["X-Scope-OrgID"] = tenant
    method, url = spec.pop("method"), spec.pop("url")
    return httpx.request(method, f"{api.url}{url}", headers=headers, params=params, **spec)


@pytest.mark.parametrize("claim", CLAIMS)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(("attacker", "victim"), [("acme", "globex"), ("globex", "acme")])
def test_a_key_cannot_act_for_another_tenant_and_cannot_tell_if_it_exists(
    world_api: Api, attacker: str, victim: str, endpoint: str, claim: str
):
    before = {t: len(world_api.batches(t)) for t in TENANTS}
    spec = _request(world_api, endpoint, attacker)
    existing = _send(world_api, spec, claim, victim)
    made_up = _send(world_api, spec, claim, "no-such-tenant")
    assert existing.status_code == made_up.status_code == 403
    assert (
        existing.json()
        == made_up.json()
        == {
            "detail": "this API key is not valid for the requested tenant",
            "errors": [],
        }
    )
    assert {t: len(world_api.batches(t)) for t in TENANTS} == before
    own = _send(world_api, spec, claim, attacker)
    assert own.status_code in (200, 202, 204, 404), own.text  # 404: revoking a key id that does not exist


@pytest.mark.parametrize("resource", READS)
@pytest.mark.parametrize("tenant", TENANTS)
def test_reads_return_only_the_keys_tenant(world_api: Api, tenant: str, resource: str):
    response = httpx.get(f"{world_api.url}/v1/{resource}", headers=world_api.headers(tenant))
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    assert {row["tenant"] for row in rows} <= {tenant}
    if resource != "alerts" or tenant == "acme":  # the demo's alerts are all acme's
        assert rows, f"{tenant} should see its own {resource}"
    else:
        assert rows == []


@pytest.mark.parametrize("resource", ("series", "forecasts", "anomalies", "accuracy"))
def test_asking_for_another_tenants_series_looks_exactly_like_asking_for_nothing(
    world_api: Api, resource: str
):
    theirs = httpx.get(
        f"{world_api.url}/v1/{resource}", headers=world_api.headers("acme"), params={"limit": 1}
    )
    victim_id = theirs.json()["rows"][0]["unique_id"]
    metric = victim_id.split("/")[1].split("{")[0]
    probe = world_api.headers("globex")
    by_id = httpx.get(f"{world_api.url}/v1/{resource}", headers=probe, params={"unique_id": victim_id})
    by_ghost = httpx.get(f"{world_api.url}/v1/{resource}", headers=probe, params={"unique_id": "acme/ghost"})
    assert by_id.status_code == by_ghost.status_code == 200
    assert by_id.json() == by_ghost.json() == {"tenant": "globex", "count": 0, "rows": []}
    own_metric = httpx.get(f"{world_api.url}/v1/{resource}", headers=probe, params={"metric": metric})
    assert {row["tenant"] for row in own_metric.json()["rows"]} == {"globex"}


def test_writes_land_in_the_keys_tenant_and_become_its_partitions_only(tmp_path):
    settings, _, keys = make_api_home(tmp_path / "home")
    stamp = now_s() - 30
    with api_in_thread(settings) as url:
        for tenant in TENANTS:
            body = json_body(
                metric="shared_name", labels={"owner": tenant}, points=[{"timestamp": stamp, "value": 1}]
            )
            response = httpx.post(
                f"{url}/v1/ingest", headers={"Authorization": f"Bearer {keys[f'{tenant}:ingest']}"}, json=body
            )
            assert response.status_code == 200
    for tenant in TENANTS:
        landed = read_landed_many(settings.landing_dir, [(tenant, "shared_name")])
        assert landed["labels"].tolist() == [f'owner="{tenant}"']
        assert landed["unique_id"].tolist() == [f'{tenant}/shared_name{{owner="{tenant}"}}']
    defs = build_definitions(settings)
    landing_sensor = defs.resolve_sensor_def("landing_sensor")
    assert landing_sensor.minimum_interval_seconds <= 30, "API batches must become runs within 30 s"
    with dg.instance_for_test() as instance:
        result = landing_sensor(
            dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
        )
    runs = {r.partition_key: r.tags["intentvision/tenant"] for r in result.run_requests}
    assert runs == {"acme/shared_name": "acme", "globex/shared_name": "globex"}
