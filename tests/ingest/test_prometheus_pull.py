"""Prometheus pull configuration and failure handling (the real-server pull is in test_prometheus.py)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
import yaml

from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.ingest.prometheus_pull import (
    PromSource,
    load_sources,
    matrix_frame,
    pull_source,
    pull_window,
)
from tests.conftest import settings_for
from tests.support.api_server import free_port

SOURCE = {"tenant": "acme", "name": "up", "url": "http://127.0.0.1:9", "query": "up", "step": "30s"}


def _write(path, sources) -> None:
    path.write_text(yaml.safe_dump({"sources": sources}))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**SOURCE, "step": None}, "sources[0]: missing field(s) step"),
        ({**SOURCE, "step": "soon"}, "sources[0].step: 'soon' is not a duration"),
        ({**SOURCE, "step": "-5s"}, "must be positive"),
        ({**SOURCE, "tenant": "Acme Corp"}, "is not a valid tenant id"),
        ({**SOURCE, "metric": "cpu-busy"}, "is not a valid metric name"),
    ],
)
def test_bad_sources_are_refused_naming_the_source_and_field(tmp_path, entry, message):
    path = tmp_path / "sources.yaml"
    _write(path, [entry])
    with pytest.raises(ValueError, match=r"sources\.yaml sources\[0\]") as refused:
        load_sources(path)
    assert message in str(refused.value)


def test_a_name_used_twice_for_a_tenant_is_refused_and_no_file_means_no_sources(tmp_path):
    path = tmp_path / "sources.yaml"
    _write(path, [SOURCE, SOURCE])
    with pytest.raises(ValueError, match="source name 'up' is used twice for tenant acme"):
        load_sources(path)
    assert load_sources(tmp_path / "absent.yaml") == []


def test_pull_window_starts_at_the_cursor_and_never_asks_for_more_than_10000_steps():
    [source] = [PromSource("acme", "up", "http://x", "up", timedelta(seconds=30), timedelta(hours=1))]
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert pull_window(source, None, now) == (now - timedelta(hours=1), now)
    assert pull_window(source, now - timedelta(minutes=5), now) == (now - timedelta(minutes=5), now)
    assert pull_window(source, now - timedelta(days=30), now)[0] == now - timedelta(seconds=30 * 10_000)


def test_matrix_result_becomes_series_rows_and_expressions_need_a_metric_name():
    source = PromSource("acme", "up", "http://x", "up", timedelta(seconds=30), timedelta(hours=1))
    frame = matrix_frame(
        source,
        [{"metric": {"__name__": "up", "job": "node"}, "values": [[1764244800, "1"], [1764244830, "NaN"]]}],
    )
    assert frame["unique_id"].tolist() == ['acme/up{job="node"}'] * 2
    assert frame["ds"].tolist() == [datetime(2025, 11, 27, 12), datetime(2025, 11, 27, 12, 0, 30)]
    assert frame["y"].iloc[0] == 1.0 and frame["y"].isna().iloc[1]
    with pytest.raises(RuntimeError, match="have no __name__ \\(an expression\\); set 'metric'"):
        matrix_frame(source, [{"metric": {"job": "node"}, "values": [[1764244800, "1"]]}])


def test_a_failing_source_is_reported_and_keeps_its_cursor_for_the_next_tick(tmp_path):
    settings = settings_for(tmp_path / "home")
    settings.ensure_dirs()
    _write(settings.prometheus_sources, [{**SOURCE, "url": f"http://127.0.0.1:{free_port()}"}])
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def("prometheus_pull_sensor")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
        result = sensor(context)
    assert result.skip_message == "pulled acme/up: failed"
    assert "acme/up" not in json.loads(context.cursor or "{}")


def test_a_source_with_a_token_file_sends_it_as_bearer_token(tmp_path):
    seen: list[str | None] = []

    class QueryApi(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            body = json.dumps(
                {
                    "status": "success",
                    "data": {
                        "resultType": "matrix",
                        "result": [
                            {"metric": {"__name__": "up", "job": "api"}, "values": [[1764244800, "1"]]}
                        ],
                    },
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), QueryApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    sources = tmp_path / "sources.yaml"
    _write(
        sources,
        [{**SOURCE, "url": f"http://127.0.0.1:{server.server_port}", "bearer_token_file": str(token)}],
    )
    [source] = load_sources(sources)
    try:
        batch, end = pull_source(
            source, tmp_path / "landing", None, now=datetime(2025, 11, 27, 13, tzinfo=UTC)
        )
    finally:
        server.shutdown()
    assert seen == ["Bearer s3cret"]
    assert (batch.tenant, batch.metrics, batch.rows) == ("acme", ["up"], 1)
    assert end == datetime(2025, 11, 27, 13, tzinfo=UTC)
