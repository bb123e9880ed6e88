"""The API's surface for a newcomer: unknown query parameters are refused on every route, ``/`` leads to the
docs, the docs load only from this server, and admin timestamps read as UTC with ``Z``."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute

from intentvision_dagster.api.app import create_app
from tests.api.conftest import Api, json_body
from tests.conftest import settings_for


def _routes() -> list[tuple[str, str]]:
    """Every (method, path) the app answers, path parameters filled in."""
    with tempfile.TemporaryDirectory(prefix="intentvision-routes-") as home:
        app = create_app(settings_for(Path(home)))
    return [
        (method, route.path.replace("{key_id}", "ffffffffffff"))
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in sorted(route.methods)
    ]


ROUTES = _routes()


def _key_for(api: Api, path: str) -> dict[str, str]:
    admin = path.startswith(("/v1/keys", "/v1/audit"))
    return api.headers("acme", "admin" if admin else "ingest,read")


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_an_unknown_query_parameter_is_a_422_naming_it_on_every_route(api: Api, method: str, path: str):
    before = len(api.batches())
    response = httpx.request(
        method,
        f"{api.url}{path}",
        params={"metrc": "cpu", "partial": "true"} if method == "POST" else {"metrc": "cpu"},
        headers=_key_for(api, path),
        json=json_body() if method == "POST" else None,
    )
    assert response.status_code == 422, response.text
    body = response.json()
    [error] = body["errors"]
    assert error["field"] == "query.metrc"
    assert error["value"] == "cpu"
    assert error["problem"].startswith("unknown query parameter 'metrc'")
    assert body["detail"].startswith("invalid request: query.metrc: unknown query parameter 'metrc'")
    assert len(api.batches()) == before, "a refused request stores nothing"


def test_the_422_lists_what_the_endpoint_takes_and_every_unknown_name(api: Api):
    response = httpx.get(
        f"{api.url}/v1/series", params={"metrc": "cpu", "lmit": "5"}, headers=api.headers("acme")
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["query.metrc", "query.lmit"]
    assert response.json()["errors"][0]["problem"] == (
        "unknown query parameter 'metrc'; this endpoint takes end, limit, metric, start, tenant, unique_id"
    )


def test_the_parameters_are_checked_before_the_key(api: Api):
    response = httpx.get(f"{api.url}/v1/series", params={"metrc": "cpu"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.metrc"


def test_known_parameters_still_work(api: Api):
    series = httpx.get(
        f"{api.url}/v1/series", params={"metric": "cpu", "tenant": "acme"}, headers=api.headers("acme")
    )
    assert series.status_code == 200, series.text
    ingest = httpx.post(
        f"{api.url}/v1/ingest", params={"partial": "true"}, json=json_body(), headers=api.headers("acme")
    )
    assert ingest.status_code == 200, ingest.text
    assert ingest.json()["report"]["accepted_items"] == 1


def test_root_redirects_to_the_docs(api: Api):
    response = httpx.get(f"{api.url}/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/docs"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_their_assets_from_this_server_only(api: Api, page: str):
    response = httpx.get(f"{api.url}{page}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "cdn.jsdelivr.net" not in html and "fonts.googleapis.com" not in html
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert urls and all(url.startswith("/") for url in urls), urls
    for url in urls:
        asset = httpx.get(f"{api.url}{url}")
        assert asset.status_code == 200, url
        assert asset.content
    assert "url: '/openapi.json'" in html or 'spec-url="/openapi.json"' in html


def test_key_and_audit_timestamps_end_with_z(api: Api):
    admin = api.headers("acme", "admin")
    keys = httpx.get(f"{api.url}/v1/keys", headers=admin).json()["keys"]
    assert keys and all(key["created_at"].endswith("Z") for key in keys)
    entries = httpx.get(f"{api.url}/v1/audit", headers=admin).json()["entries"]
    assert entries and all(entry["at"].endswith("Z") for entry in entries)
