"""The API answers any IntentVisionError in one place: the error's HTTP status, the usual JSON body."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from intentvision_dagster.api.app import create_app
from intentvision_dagster.api.protocols.columns import PayloadError
from intentvision_dagster.api.reads import WarehouseBusy
from intentvision_dagster.errors import IntentVisionError, NotFoundError, UnavailableError
from tests.conftest import settings_for


class _Teapot(IntentVisionError):
    http_status = 418


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> TestClient:
    """The real app plus one route that raises whatever error the test names."""
    app = create_app(settings_for(tmp_path_factory.mktemp("home")))
    raised: dict[str, Exception] = {
        "teapot": _Teapot("short and stout"),
        "missing": NotFoundError("no such thing"),
        "down": UnavailableError("try later"),
        "busy": WarehouseBusy("a run is writing"),
        "large": PayloadError("too big", status=413),
    }

    @app.get("/raise/{name}")
    def raise_error(name: str) -> None:
        raise raised[name]

    return TestClient(app)


@pytest.mark.parametrize(
    ("name", "status", "detail", "retry_after"),
    [
        ("teapot", 418, "short and stout", None),
        ("missing", 404, "no such thing", None),
        ("down", 503, "try later", "1"),
        ("busy", 503, "a run is writing", "2"),
        ("large", 413, "too big", None),
    ],
)
def test_an_error_becomes_its_status_with_the_detail_body(client, name, status, detail, retry_after):
    response = client.get(f"/raise/{name}")
    assert response.status_code == status
    assert response.json() == {"detail": detail, "errors": []}
    assert response.headers.get("Retry-After") == retry_after
