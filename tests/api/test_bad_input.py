"""Every kind of bad input gets a clear 4xx naming the item and the field, and nothing is stored.

Long on purpose: most of it is one table of cases (protocol, body, status, field, message), read as a list.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import cramjam
import httpx
import pytest

from intentvision_dagster.remote_write import write_request_body
from tests.api.conftest import (
    MAX_BODY_BYTES,
    MAX_POINTS,
    Api,
    json_body,
    now_s,
    post_remote_write,
)

DAY_S = 86_400


@dataclass(frozen=True)
class Case:
    id: str
    path: str
    request: Callable[[], dict]
    status: int
    field: str | None
    says: str


def _json(document: object, encoding: str | None = None) -> Callable[[], dict]:
    def build() -> dict:
        raw = document() if callable(document) else document
        data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
        headers = {"Content-Type": "application/json"}
        if encoding == "gzip":
            data = gzip.compress(data)
        if encoding:
            headers["Content-Encoding"] = encoding
        return {"content": data, "headers": headers}

    return build


def _points(*points: dict) -> Callable[[], dict]:
    return _json(lambda: json_body(points=list(points)))


def _rw(series_fn: Callable[[], list]) -> Callable[[], dict]:
    return lambda: {
        "content": write_request_body(series_fn()),
        "headers": {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"},
    }


def _rw_raw(content: bytes) -> Callable[[], dict]:
    return lambda: {"content": content, "headers": {"Content-Encoding": "snappy"}}


def _dd(series: Callable[[], list], encoding: str = "gzip") -> Callable[[], dict]:
    def build() -> dict:
        data = json.dumps({"series": series()}).encode()
        data = gzip.compress(data) if encoding == "gzip" else zlib.compress(data)
        return {
            "content": data,
            "headers": {"Content-Encoding": encoding, "Content-Type": "application/json"},
        }

    return build


def _dd_point(value: object = 1.0, metric: str = "system.load.1", **extra) -> list:
    return [{"metric": metric, "points": [{"timestamp": now_s() - 60, "value": value}], **extra}]


def _ms(seconds_ago: int) -> int:
    return (now_s() - seconds_ago) * 1000


TOO_MANY = [{"timestamp": now_s() - 3600 + i, "value": float(i)} for i in range(MAX_POINTS + 1)]

CASES = [
    # our JSON
    Case(
        "json-metric-name",
        "/v1/ingest",
        _json(json_body(metric="9cpu")),
        422,
        "series[0].metric",
        "metric name",
    ),
    Case(
        "json-metric-trailing-newline",
        "/v1/ingest",
        _json(json_body(metric="cpu\n")),
        422,
        "series[0].metric",
        "metric name",
    ),
    Case(
        "json-label-trailing-newline",
        "/v1/ingest",
        _json(json_body(labels={"host\n": "a"})),
        422,
        "series[0].labels.host\n",
        "not a valid label name",
    ),
    Case(
        "rw-metric-trailing-newline",
        "/api/v1/write",
        _rw(lambda: [({"__name__": "up\n"}, [(1.0, _ms(5))])]),
        422,
        "timeseries[0].labels.__name__",
        "is not a valid metric name",
    ),
    Case(
        "dd-metric-trailing-newline",
        "/api/v2/series",
        _dd(lambda: _dd_point(metric="system.load.1\n")),
        422,
        "series[0].metric",
        "",
    ),
    Case(
        "json-metric-type",
        "/v1/ingest",
        _json(json_body(metric=5)),
        422,
        "series[0].metric",
        "expected a string",
    ),
    Case(
        "json-label-name",
        "/v1/ingest",
        _json(json_body(labels={"0host": "a"})),
        422,
        "series[0].labels.0host",
        "not a valid label name",
    ),
    Case(
        "json-label-reserved",
        "/v1/ingest",
        _json(json_body(labels={"__job": "a"})),
        422,
        "series[0].labels.__job",
        "'__'",
    ),
    Case(
        "json-label-value-type",
        "/v1/ingest",
        _json(json_body(labels={"host": 3})),
        422,
        "series[0].labels.host",
        "expected a string, got int",
    ),
    Case(
        "json-label-value-list",
        "/v1/ingest",
        _json(json_body(labels={"host": ["a", "b"]})),
        422,
        "series[0].labels.host",
        "expected a string, got list",
    ),
    Case(
        "json-labels-type",
        "/v1/ingest",
        _json(json_body(labels=["host"])),
        422,
        "series[0].labels",
        "expected an object",
    ),
    Case(
        "json-too-old",
        "/v1/ingest",
        _json(lambda: json_body(points=[{"timestamp": now_s() - 800 * DAY_S, "value": 1}])),
        422,
        "series[0].points[0].timestamp",
        "too old",
    ),
    Case(
        "json-future",
        "/v1/ingest",
        _json(lambda: json_body(points=[{"timestamp": now_s() + 2 * DAY_S, "value": 1}])),
        422,
        "series[0].points[0].timestamp",
        "too far in the future",
    ),
    Case(
        "json-millis-as-seconds",
        "/v1/ingest",
        _json(lambda: json_body(points=[{"timestamp": now_s() * 1000, "value": 1}])),
        422,
        "series[0].points[0].timestamp",
        "too far in the future",
    ),
    Case(
        "json-timestamp-past-the-os-calendar",
        "/v1/ingest",
        _points({"timestamp": 10**17, "value": 1}),
        422,
        "series[0].points[0].timestamp",
        "epoch 100000000000000000000 ms is too far in the future",
    ),
    Case(
        "json-timestamp-text",
        "/v1/ingest",
        _points({"timestamp": "yesterday", "value": 1}),
        422,
        "series[0].points[0].timestamp",
        "not an ISO-8601 timestamp",
    ),
    Case(
        "json-timestamp-type",
        "/v1/ingest",
        _points({"timestamp": [1], "value": 1}),
        422,
        "series[0].points[0].timestamp",
        "expected epoch seconds",
    ),
    Case(
        "json-timestamp-missing",
        "/v1/ingest",
        _points({"value": 1}),
        422,
        "series[0].points[0].timestamp",
        "missing",
    ),
    Case(
        "json-nan",
        "/v1/ingest",
        _json(
            lambda: json.dumps(json_body(points=[{"timestamp": now_s() - 5, "value": float("nan")}])).encode()
        ),
        422,
        "series[0].points[0].value",
        "not a finite number",
    ),
    Case(
        "json-inf",
        "/v1/ingest",
        _json(
            lambda: json.dumps(json_body(points=[{"timestamp": now_s() - 5, "value": float("inf")}])).encode()
        ),
        422,
        "series[0].points[0].value",
        "not a finite number",
    ),
    Case(
        "json-value-huge-integer",
        "/v1/ingest",
        _json(lambda: json.dumps(json_body()).replace('"value": 1.5', '"value": 1' + "0" * 400).encode()),
        422,
        "series[0].points[0].value",
        "not a finite number",
    ),
    Case(
        "json-timestamp-huge-integer",
        "/v1/ingest",
        _points({"timestamp": 10**400, "value": 1}),
        422,
        "series[0].points[0].timestamp",
        "out of range for epoch seconds",
    ),
    Case("json-nested-too-deeply", "/v1/ingest", _json(b"[" * 20_000), 400, None, "nested too deeply"),
    Case(
        "json-value-text",
        "/v1/ingest",
        _points({"timestamp": now_s() - 5, "value": "abc"}),
        422,
        "series[0].points[0].value",
        "'abc' is not a number",
    ),
    Case(
        "json-value-bool",
        "/v1/ingest",
        _points({"timestamp": now_s() - 5, "value": True}),
        422,
        "series[0].points[0].value",
        "expected a number, got bool",
    ),
    Case(
        "json-value-missing",
        "/v1/ingest",
        _points({"timestamp": now_s() - 5}),
        422,
        "series[0].points[0].value",
        "missing",
    ),
    Case(
        "json-points-type",
        "/v1/ingest",
        _json(json_body(points={"timestamp": 1})),
        422,
        "series[0].points",
        "expected a list",
    ),
    Case(
        "json-point-type",
        "/v1/ingest",
        _json(json_body(points=[[1, 2]])),
        422,
        "series[0].points[0]",
        "expected an object",
    ),
    Case("json-no-points", "/v1/ingest", _json(json_body(points=[])), 422, "series[0].points", "no points"),
    Case("json-item-type", "/v1/ingest", _json({"series": ["cpu"]}), 422, "series[0]", "expected an object"),
    Case("json-no-series", "/v1/ingest", _json({"metrics": []}), 422, None, "'series' list"),
    Case("json-malformed", "/v1/ingest", _json(b'{"series": [}'), 400, None, "not valid JSON"),
    Case(
        "json-bad-gzip",
        "/v1/ingest",
        lambda: {"content": b"not gzip", "headers": {"Content-Encoding": "gzip"}},
        400,
        None,
        "not valid gzip",
    ),
    Case(
        "json-unknown-encoding",
        "/v1/ingest",
        lambda: {"content": b"{}", "headers": {"Content-Encoding": "br"}},
        415,
        None,
        "unsupported Content-Encoding",
    ),
    Case(
        "json-too-many-points",
        "/v1/ingest",
        _json(lambda: json_body(points=TOO_MANY)),
        413,
        None,
        f"more than {MAX_POINTS} points",
    ),
    Case("json-oversized", "/v1/ingest", _json(b" " * (MAX_BODY_BYTES + 1)), 413, None, "limit"),
    Case(
        "json-gzip-bomb",
        "/v1/ingest",
        _json(b" " * (MAX_BODY_BYTES * 20) + b"{}", "gzip"),
        413,
        None,
        "decompressed body exceeds",
    ),
    # Prometheus remote_write
    Case(
        "rw-bad-snappy",
        "/api/v1/write",
        _rw_raw(b"\x08\xff\xffnot snappy"),
        400,
        None,
        "not valid snappy",
    ),
    Case(
        "rw-bad-protobuf",
        "/api/v1/write",
        _rw_raw(bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff"))),
        400,
        None,
        "not a Prometheus remote_write WriteRequest",
    ),
    Case(
        "rw-snappy-bomb",
        "/api/v1/write",
        _rw_raw(bytes(cramjam.snappy.compress_raw(b"\0" * (MAX_BODY_BYTES + 1)))),
        413,
        None,
        "decompressed body exceeds",
    ),
    Case(
        "rw-no-name",
        "/api/v1/write",
        _rw(lambda: [({"job": "x"}, [(1.0, _ms(5))])]),
        422,
        "timeseries[0].labels.__name__",
        "not a valid metric name",
    ),
    Case(
        "rw-metric-name",
        "/api/v1/write",
        _rw(lambda: [({"__name__": "up-time"}, [(1.0, _ms(5))])]),
        422,
        "timeseries[0].labels.__name__",
        "'up-time' is not a valid metric name",
    ),
    Case(
        "rw-label-name",
        "/api/v1/write",
        _rw(lambda: [({"__name__": "up", "a.b": "x"}, [(1.0, _ms(5))])]),
        422,
        "timeseries[0].labels.a.b",
        "not a valid label name",
    ),
    Case(
        "rw-too-old",
        "/api/v1/write",
        _rw(lambda: [({"__name__": "up"}, [(1.0, _ms(800 * DAY_S))])]),
        422,
        "timeseries[0].samples[0].timestamp",
        "too old",
    ),
    Case(
        "rw-seconds-as-millis",
        "/api/v1/write",
        _rw(lambda: [({"__name__": "up"}, [(1.0, now_s())])]),
        422,
        "timeseries[0].samples[0].timestamp",
        "too old",
    ),
    Case(
        "rw-future",
        "/api/v1/write",
        _rw(lambda: [({"__name__": "up"}, [(1.0, _ms(-2 * DAY_S))])]),
        422,
        "timeseries[0].samples[0].timestamp",
        "future",
    ),
    Case(
        "rw-version-2",
        "/api/v1/write",
        lambda: {
            "content": write_request_body([({"__name__": "up"}, [(1.0, _ms(5))])]),
            "headers": {
                "Content-Encoding": "snappy",
                "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            },
        },
        415,
        None,
        "remote write 2.0",
    ),
    # Datadog series intake
    Case(
        "dd-metric-name",
        "/api/v2/series",
        _dd(lambda: _dd_point(metric="1load")),
        422,
        "series[0].metric",
        "not a valid Datadog metric name",
    ),
    Case(
        "dd-value-text",
        "/api/v2/series",
        _dd(lambda: _dd_point(value="high")),
        422,
        "series[0].points[0].value",
        "'high' is not a number",
    ),
    Case(
        "dd-tags-type",
        "/api/v2/series",
        _dd(lambda: _dd_point(tags="env:prod")),
        422,
        "series[0].tags",
        "expected a list of strings",
    ),
    Case(
        "dd-resources-type",
        "/api/v2/series",
        _dd(lambda: _dd_point(resources=[{"name": "web-1"}])),
        422,
        "series[0].resources",
        "expected",
    ),
    Case(
        "dd-bad-deflate",
        "/api/v2/series",
        lambda: {"content": b"\x78\x9cgarbage", "headers": {"Content-Encoding": "deflate"}},
        400,
        None,
        "not valid deflate",
    ),
    Case(
        "dd-deflate-ok-but-null",
        "/api/v2/series",
        _dd(lambda: _dd_point(value=None), "deflate"),
        422,
        "series[0].points[0].value",
        "missing",
    ),
    Case(
        "dd-tags-colliding-after-mangling",
        "/api/v2/series",
        _dd(lambda: _dd_point(tags=["env.name:a", "env_name:b"])),
        422,
        "series[0].tags",
        "'env.name:a' and 'env_name:b' both become label 'env_name' with different values",
    ),
    Case(
        "dd-tag-colliding-with-a-resource",
        "/api/v2/series",
        _dd(lambda: _dd_point(tags=["host:x"], resources=[{"type": "host", "name": "y"}])),
        422,
        "series[0].resources",
        "'host:x' and 'host:y' both become label 'host'",
    ),
    Case(
        "json-label-value-too-long",
        "/v1/ingest",
        _json(lambda: json_body(labels={"host": "x" * 2049})),
        422,
        "series[0].labels.host",
        "the label value is 2049 bytes; the limit is 2048",
    ),
    Case(
        "json-label-name-too-long",
        "/v1/ingest",
        _json(lambda: json_body(labels={"h" * 1025: "x"})),
        422,
        "series[0].labels." + "h" * 200 + "...",
        "the label name is 1025 bytes; the limit is 1024",
    ),
    Case(
        "json-too-many-labels",
        "/v1/ingest",
        _json(lambda: json_body(labels={f"l{i}": "x" for i in range(31)})),
        422,
        "series[0].labels",
        "31 labels; a series may have at most 30",
    ),
    Case(
        "rw-label-value-too-long",
        "/api/v1/write",
        _rw(lambda: [({"__name__": "up", "job": "j" * 3000}, [(1.0, _ms(5))])]),
        422,
        "timeseries[0].labels.job",
        "the label value is 3000 bytes; the limit is 2048",
    ),
    Case(
        "dd-tag-value-too-long",
        "/api/v2/series",
        _dd(lambda: _dd_point(tags=["env:" + "e" * 2049])),
        422,
        "series[0].labels.env",
        "the label value is 2049 bytes",
    ),
    Case(
        "json-label-lone-surrogate",
        "/v1/ingest",
        _json(json_body(labels={"host": "web-\ud800"})),
        422,
        "series[0].labels.host",
        "the label value is not valid Unicode text",
    ),
    Case(
        "json-timestamp-huge",
        "/v1/ingest",
        _points({"timestamp": 1e308, "value": 1}),
        422,
        "series[0].points[0].timestamp",
        "out of range for epoch seconds",
    ),
    Case(
        "json-timestamp-huge-negative",
        "/v1/ingest",
        _points({"timestamp": -1e308, "value": 1}),
        422,
        "series[0].points[0].timestamp",
        "out of range for epoch seconds",
    ),
    Case(
        "json-value-over-4300-digits",
        "/v1/ingest",
        _json(lambda: json.dumps(json_body()).replace("1.5", "9" * 5000).encode()),
        422,
        "series[0].points[0].value",
        "not a finite number",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_whole_with_the_item_and_field_named(api: Api, case: Case):
    before = len(api.batches())
    request = case.request()
    headers = {**api.headers("acme"), **request.pop("headers")}
    response = httpx.post(f"{api.url}{case.path}", headers=headers, **request)
    assert response.status_code == case.status, response.text
    body = response.json()
    assert case.says in response.text
    if case.field is not None:
        assert case.field in [e["field"] for e in body["errors"]], body
        assert body["errors"][0]["index"] == int(case.field.split("[")[1].split("]")[0])
        assert body["detail"].startswith("refused, nothing stored")
    assert len(api.batches()) == before, "a refused request must store nothing"


def test_one_bad_item_refuses_the_whole_batch(api: Api):
    good = json_body(metric="disk_used")["series"][0]
    bad = json_body(
        metric="disk_used", labels={"host": "web-2"}, points=[{"timestamp": now_s(), "value": "x"}]
    )
    before = len(api.batches())
    response = httpx.post(
        f"{api.url}/v1/ingest", headers=api.headers("acme"), json={"series": [good, bad["series"][0]]}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "index": 1,
            "field": "series[1].points[0].value",
            "value": "x",
            "problem": "'x' is not a number (send a JSON number)",
        }
    ]
    assert "1 of 2 items are invalid" in response.json()["detail"]
    assert len(api.batches()) == before


def test_partial_acceptance_stores_the_valid_items_and_reports_each_rejected_one(api: Api):
    stamp = now_s() - 30
    body = {
        "series": [
            {"metric": "queue_depth", "labels": {"q": "a"}, "points": [{"timestamp": stamp, "value": 3}]},
            {"metric": "queue depth", "labels": {"q": "b"}, "points": [{"timestamp": stamp, "value": 4}]},
            {"metric": "queue_depth", "labels": {"q": "c"}, "points": [{"timestamp": stamp, "value": "?"}]},
            {"metric": "queue_depth", "labels": {"q": "d"}, "points": [{"timestamp": stamp, "value": 5}]},
        ]
    }
    response = httpx.post(
        f"{api.url}/v1/ingest", headers=api.headers("acme"), json=body, params={"partial": "true"}
    )
    assert response.status_code == 200, response.text
    report = response.json()["report"]
    assert (report["items"], report["accepted_items"], report["rejected_items"]) == (4, 2, 2)
    assert report["accepted_samples"] == 2
    assert [(e["index"], e["field"]) for e in report["errors"]] == [
        (1, "series[1].metric"),
        (2, "series[2].points[0].value"),
    ]
    batch = next(b for b in api.batches("acme") if b.batch_id == response.json()["batch_id"])
    assert batch.rows == 2 and batch.metrics == ["queue_depth"]


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/ingest", lambda items: {"series": items}), ("/api/v2/series", lambda items: {"series": items})],
    ids=["json", "datadog"],
)
def test_a_partial_report_lists_the_first_100_rejected_items_and_counts_the_rest(api: Api, path, body):
    """A 9.5 MB body of bad items answered with a 20.7 MB report listing every one of them."""
    stamp = now_s() - 30
    good = {"metric": "report_cap", "points": [{"timestamp": stamp, "value": 1}]}
    bad = [{"metric": "report_cap", "points": [{"timestamp": stamp, "value": "x"}]} for _ in range(150)]
    response = httpx.post(
        f"{api.url}{path}", headers=api.headers("acme"), json=body([good, *bad]), params={"partial": "true"}
    )
    assert response.status_code in (200, 202), response.text
    report = response.json()["report"]
    assert (report["rejected_items"], report["accepted_samples"]) == (150, 1)
    assert [e["index"] for e in report["errors"]] == list(range(1, 101))
    assert (report["errors_total"], report["errors_more"]) == (150, "...and 50 more")
    assert len(response.json().get("errors", [])) <= 100  # Datadog's own error strings, capped alike


def test_partial_acceptance_with_nothing_valid_is_refused(api: Api):
    before = len(api.batches())
    response = httpx.post(
        f"{api.url}/v1/ingest",
        headers=api.headers("acme"),
        json=json_body(metric="bad name"),
        params={"partial": "true"},
    )
    assert (
        response.status_code == 422
        and response.json()["detail"] == "refused, nothing stored: no item is valid"
    )
    assert len(api.batches()) == before


def test_remote_write_skips_staleness_markers_and_keeps_other_nan_for_quarantine(api: Api):
    import struct

    stale = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
    body = write_request_body(
        [
            (
                {"__name__": "rpc_latency_seconds", "quantile": "0.5"},
                [(float("nan"), _ms(10)), (0.2, _ms(5))],
            ),
            ({"__name__": "rpc_latency_seconds", "quantile": "0.9"}, [(stale, _ms(5))]),
        ]
    )
    response = post_remote_write(api, body, api.headers("acme"), partial="true")
    assert response.status_code == 200, response.text
    report = response.json()["report"]
    assert (report["accepted_samples"], report["skipped_stale_markers"], report["errors"]) == (2, 1, [])
    [batch] = [b for b in api.batches("acme") if "rpc_latency_seconds" in b.metrics]
    assert batch.rows == 2
