"""Read responses over the demo warehouse are plain JSON: columns the pipeline stores as JSON text arrive as
objects, and every timestamp is ISO 8601 UTC ending in ``Z``."""

from __future__ import annotations

import re
from datetime import datetime

import httpx
import pytest

from tests.api.conftest import Api

READS = ("series", "forecasts", "anomalies", "accuracy", "alerts")
UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
TIMESTAMP_COLUMNS = {
    "series": {"ds"},
    "forecasts": {"ds"},
    "anomalies": {"ds"},
    "accuracy": {"selected_at"},
    "alerts": {"created_at", "updated_at", "delivered_at", "cleared_at"},
}


def _rows(api: Api, resource: str) -> list[dict]:
    response = httpx.get(f"{api.url}/v1/{resource}", headers=api.headers("acme"), params={"limit": 50})
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    assert rows, f"the demo world has acme {resource}"
    return rows


@pytest.mark.parametrize(("resource", "column"), [("alerts", "details"), ("accuracy", "candidate_scores")])
def test_columns_stored_as_json_text_are_returned_as_objects(world_api: Api, resource: str, column: str):
    for row in _rows(world_api, resource):
        assert isinstance(row[column], dict), row[column]
    if resource == "alerts":
        assert {row["details"]["kind"] for row in _rows(world_api, resource)} >= {"forecast_breach"}
    else:
        for row in _rows(world_api, resource):
            assert row["model"] in row["candidate_scores"]


@pytest.mark.parametrize("resource", READS)
def test_every_timestamp_is_utc_with_a_z(world_api: Api, resource: str):
    rows = _rows(world_api, resource)
    stamps = [row[c] for row in rows for c in TIMESTAMP_COLUMNS[resource] if row.get(c) is not None]
    assert stamps
    for stamp in stamps:
        assert UTC_Z.match(stamp), stamp
        assert datetime.fromisoformat(stamp).utcoffset().total_seconds() == 0
    # No other column carries a naive ISO timestamp.
    naive = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?$")
    assert not [v for row in rows for v in row.values() if isinstance(v, str) and naive.match(v)]
