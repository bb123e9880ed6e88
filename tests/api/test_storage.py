"""A full home folder: the API answers 503 + Retry-After (nothing stored, nothing half-written), not 500,
for a batch to land and for a rejected login (whose audit row cannot be written)."""

from __future__ import annotations

import httpx

from tests.api.conftest import json_body, make_api_home
from tests.support.api_server import api_in_thread
from tests.support.full_disk import full_mount


def test_ingest_into_a_full_home_is_503_with_retry_after(tmp_path):
    with full_mount(tmp_path / "disk") as fill:
        settings, _, keys = make_api_home(tmp_path / "disk" / "home")
        fill()
        with api_in_thread(settings) as url:
            response = httpx.post(
                f"{url}/v1/ingest",
                headers={"Authorization": f"Bearer {keys['acme:ingest']}"},
                json=json_body(),
            )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.json()["detail"] == "the server cannot store data right now; nothing was stored, retry"


def test_a_rejected_login_on_a_full_home_is_503_not_500(tmp_path):
    with full_mount(tmp_path / "disk") as fill:
        settings, _, _ = make_api_home(tmp_path / "disk" / "home")
        fill()
        with api_in_thread(settings) as url:
            response = httpx.get(f"{url}/v1/series", headers={"Authorization": "Bearer iv_000000000000_nope"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
