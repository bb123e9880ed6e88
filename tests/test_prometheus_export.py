"""Forecasts and anomaly scores as Prometheus series: the encoding, and a real Prometheus (remote-write
receiver on) that gets them from a Dagster run and returns them through query_range."""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.alerting.kinds import ForecastBreachRule
from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.landing import list_batches
from intentvision_dagster.prometheus_export import (
    RemoteWriteTarget,
    anomaly_samples,
    breach_samples,
    forecast_samples,
    parse_horizon,
    publish,
    tenant_targets,
)
from intentvision_dagster.remote_write import write_request_body
from intentvision_dagster.runs import ingest_file, register_partitions, run_pipeline
from tests.conftest import DEMO_END, settings_for
from tests.support.api_server import free_port
from tests.support.prometheus_server import prometheus_server

METRIC = "node_cpu_utilization_percent"
BUSY = {"warning": 58, "critical": 65}
"""A CPU rule's lines the test series (50 +- 10 daily) reaches at its daily peak, and rarely."""
DASHBOARD = Path(__file__).resolve().parents[1] / "docs" / "grafana" / "intentvision.json"


def _forecast(unique_id: str, labels: str, start: str, steps: int, freq: str = "h") -> pd.DataFrame:
    ds = pd.date_range(start, periods=steps, freq=freq)
    yhat = np.arange(steps, dtype=float)
    return pd.DataFrame(
        {
            "unique_id": unique_id,
            "tenant": "acme",
            "metric": METRIC,
            "labels": labels,
            "ds": ds,
            "yhat": yhat,
            "lo_80": yhat - 1,
            "hi_80": yhat + 1,
            "lo_95": yhat - 2,
            "hi_95": yhat + 2,
        }
    )


def test_forecast_samples_publish_the_step_a_horizon_ahead_as_five_quantiles():
    hourly = _forecast('acme/m{host="a"}', 'host="a",tenant="x"', "2026-12-03 01:00", 48)
    quarter = _forecast('acme/m{host="b"}', 'host="b"', "2026-12-03 00:15", 8, freq="15min")
    samples = forecast_samples(pd.concat([hourly, quarter]), ["1h", "24h"])

    by_key = {(s[1]["host"], s[1]["horizon"], s[1]["quantile"]): s for s in samples}
    # 24 h after the last observed point is the 24th hourly step (yhat 23); 1 h is the 4th quarter-hour.
    assert {q: by_key[("a", "24h", q)][2] for q in ("0.025", "0.1", "0.5", "0.9", "0.975")} == {
        "0.025": 21.0,
        "0.1": 22.0,
        "0.5": 23.0,
        "0.9": 24.0,
        "0.975": 25.0,
    }
    assert by_key[("b", "1h", "0.5")][2] == 3.0
    assert ("b", "24h", "0.5") not in by_key  # past the 2 h forecast: nothing published
    assert len(samples) == 3 * 5
    tenant, labels, _ = by_key[("a", "24h", "0.5")]
    assert tenant == "acme"
    # The series' own `tenant` label cannot pose as the tenant: it is kept as exported_tenant.
    assert labels == {
        "__name__": "intentvision_forecast",
        "host": "a",
        "exported_tenant": "x",
        "tenant": "acme",
        "metric": METRIC,
        "horizon": "24h",
        "quantile": "0.5",
    }


def test_anomaly_samples_publish_the_newest_point_score_and_severity():
    scored = pd.DataFrame(
        {
            "unique_id": ['acme/m{host="a"}'] * 3 + ['acme/m{host="b"}'],
            "tenant": "acme",
            "metric": METRIC,
            "labels": ['host="a"'] * 3 + ['host="b"'],
            "ds": pd.to_datetime(
                ["2026-12-03 02:00", "2026-12-03 03:00", "2026-12-03 01:00", "2026-12-03 03:00"]
            ),
            "anomaly_score": [0.1, 0.9, 0.2, np.nan],
            "severity": ["none", "critical", "none", "none"],
        }
    )
    samples = anomaly_samples(scored)
    assert sorted((s[1]["__name__"], s[1]["host"], s[2]) for s in samples) == [
        ("intentvision_anomaly_score", "a", 0.9),
        ("intentvision_anomaly_severity", "a", 3.0),
    ]


def test_breach_samples_publish_the_probability_and_a_crossing_only_where_there_is_one():
    outlook = pd.DataFrame(
        {
            "tenant": "acme",
            "metric": "node_filesystem_usage_percent",
            "labels": ['host="db-1",severity="page"', 'host="db-1",severity="page"'],
            "rule": "disk-capacity",
            "severity": ["warning", "critical"],
            "horizon": [pd.Timedelta(hours=72), pd.Timedelta(minutes=90)],
            "probability": [0.97, 0.0],
            "crossing_ds": [pd.Timestamp("2026-12-05 17:00"), pd.NaT],
        }
    )
    samples = breach_samples(outlook)
    assert [(s[1]["__name__"], s[1]["severity"], s[1]["horizon"], s[2]) for s in samples] == [
        ("intentvision_breach_probability", "warning", "72h", 0.97),
        ("intentvision_breach_crossing_timestamp_seconds", "warning", "72h", 1796490000.0),
        ("intentvision_breach_probability", "critical", "90m", 0.0),
    ]
    # The series' own `severity` label is kept as exported_severity: the rule's level is the one published.
    expected_labels = {
        "__name__": "intentvision_breach_probability",
        "host": "db-1",
        "exported_severity": "page",
        "tenant": "acme",
        "metric": "node_filesystem_usage_percent",
        "rule": "disk-capacity",
        "severity": "warning",
        "horizon": "72h",
    }
    assert samples[0] == ("acme", expected_labels, 0.97)


def test_a_horizon_that_is_not_a_duration_is_refused_by_name():
    assert parse_horizon("3d") == pd.Timedelta(days=3)
    with pytest.raises(ValueError, match="horizon '24 hours' is not a duration like 30m, 24h"):
        parse_horizon("24 hours")


def test_an_unreachable_endpoint_is_each_tenants_failure_not_an_exception():
    target = RemoteWriteTarget(f"http://127.0.0.1:{free_port()}/api/v1/write", retries=0)
    samples = [("acme", {"__name__": "x"}, 1.0), ("globex", {"__name__": "x"}, 2.0)]
    written, failures = publish({}, target, samples, at_ms=int(time.time() * 1000))
    assert written == 0
    assert set(failures) == {"acme", "globex"}
    assert "ConnectError" in failures["acme"]


def test_a_tenants_own_endpoint_is_read_from_tenants_yaml_and_a_bad_one_fails_only_that_tenant(tmp_path):
    token = tmp_path / "globex-token"
    token.write_text("s3cret\n")
    config = tmp_path / "tenants.yaml"
    config.write_text(
        f"""
tenants:
  acme: {{slack_channel: "#acme"}}
  globex:
    prometheus_remote_write:
      url: http://127.0.0.1:{free_port()}/api/v1/push
      headers: {{X-Scope-OrgID: globex}}
      bearer_token_file: {token}
  initech:
    prometheus_remote_write: {{url: http://127.0.0.1:1/api/v1/write, bearer_token_file: /missing/token}}
"""
    )
    targets = tenant_targets(config)
    assert set(targets) == {"globex", "initech"}
    assert targets["globex"].headers == {"X-Scope-OrgID": "globex", "Authorization": "Bearer s3cret"}
    assert targets["initech"].startswith(f"{config}: tenants.initech.prometheus_remote_write: field")
    assert "'bearer_token_file' is '/missing/token', which cannot be read" in targets["initech"]

    # initech's series never go to the default endpoint instead of its own; acme has none and uses it.
    default = RemoteWriteTarget(f"http://127.0.0.1:{free_port()}/api/v1/write", retries=0)
    samples = [("initech", {"__name__": "x"}, 1.0), ("acme", {"__name__": "x"}, 2.0)]
    written, failures = publish(targets, default, samples, at_ms=int(time.time() * 1000))
    assert written == 0
    assert failures["initech"] == targets["initech"]
    assert failures["acme"].startswith(default.url)


def _land_cpu(settings, tenant: str, hosts: list[str]) -> None:
    ds = pd.date_range(end=DEMO_END, periods=5 * 24, freq="h")
    rng = np.random.default_rng(7)
    rows = [
        {
            "timestamp": stamp.isoformat() + "Z",
            "metric": METRIC,
            "labels": f"host={host}",
            "value": round(50 + 10 * np.sin(2 * np.pi * i / 24) + rng.normal(0, 1), 3),
        }
        for host in hosts
        for i, stamp in enumerate(ds)
    ]
    path = settings.home / f"{tenant}.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    ingest_file(path, tenant, settings)


def _dashboard_expr(expr: str, matchers: str) -> str:
    """A dashboard query with its variables set as a person would pick them."""
    chosen = {
        "$tenant": "acme",
        "$metric": METRIC,
        "$horizon": "24h",
        "$matchers": matchers,
        "$cadence": "1d",
    }
    for variable, value in chosen.items():
        expr = expr.replace(variable, value)
    return expr


def _around(moment: float) -> tuple[float, float]:
    return moment - 60, moment + 1


def _values(series: dict) -> list[float]:
    assert series["values"], series
    return [float(value) for _, value in series["values"]]


def _query_range(prometheus: str, query: str, start: float, end: float | None = None) -> list[dict]:
    answer = httpx.get(
        f"{prometheus}/api/v1/query_range",
        params={"query": query, "start": start, "end": end or time.time() + 1, "step": "1s"},
    ).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


@pytest.mark.slow
def test_a_run_remote_writes_forecasts_and_scores_that_prometheus_returns(tmp_path: Path):
    """A nightly-style range run over two tenants: acme's series reach the configured Prometheus with their
    labels and the warehouse's values; globex's go to its own Prometheus (tenants.yaml) and never to acme's.
    Globex's Prometheus refuses its forecast request (an out-of-order sample planted on one of its series),
    which costs globex that request only, not acme, not the run."""
    receiver = "--web.enable-remote-write-receiver"
    (tmp_path / "default").mkdir()
    (tmp_path / "globex").mkdir()
    with (
        prometheus_server(tmp_path / "default", {"global": {}}, receiver) as prometheus,
        prometheus_server(tmp_path / "globex", {"global": {}}, receiver) as globex_prometheus,
    ):
        tenants = tmp_path / "tenants.yaml"
        tenants.write_text(
            "tenants:\n  globex:\n    prometheus_remote_write:\n"
            f"      url: {globex_prometheus}/api/v1/write\n"
        )
        rules = tmp_path / "alert_rules.yaml"
        rules.write_text(
            f"rules:\n  - {{name: cpu-busy, type: forecast_breach, metric: {METRIC}, "
            f"thresholds: {{warning: {BUSY['warning']}, critical: {BUSY['critical']}}}, horizon: 24h}}\n"
        )
        settings = settings_for(
            tmp_path / "home",
            INTENTVISION_PROMETHEUS_REMOTE_WRITE_URL=f"{prometheus}/api/v1/write",
            INTENTVISION_PROMETHEUS_EXPORT_HORIZONS="1h,24h",
            INTENTVISION_TENANTS=str(tenants),
            INTENTVISION_ALERT_RULES=str(rules),
        )
        settings.ensure_dirs()
        _land_cpu(settings, "acme", ["web-1", "web-2"])
        _land_cpu(settings, "globex", ["db-1"])
        planted = {
            "__name__": "intentvision_forecast",
            "host": "db-1",
            "metric": METRIC,
            "tenant": "globex",
            "horizon": "1h",
            "quantile": "0.5",
        }
        ahead_ms = int((time.time() + 600) * 1000)  # a sample newer than the run's: the run's is out of order
        assert httpx.post(
            f"{globex_prometheus}/api/v1/write",
            content=write_request_body([(planted, [(-1.0, ahead_ms)])]),
            headers={"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"},
        ).is_success
        started = time.time()
        defs = build_definitions(settings)
        with dg.instance_for_test() as instance:
            keys = register_partitions(instance, list_batches(settings.landing_dir))
            [outcome] = run_pipeline(defs, instance, keys, one_run=True)
            assert outcome.success
            [record] = instance.fetch_materializations(dg.AssetKey("forecasts"), limit=1).records
            metadata = record.asset_materialization.metadata
            [anomaly_record] = instance.fetch_materializations(dg.AssetKey("anomalies"), limit=1).records
            anomaly_metadata = anomaly_record.asset_materialization.metadata

        assert set(metadata["prometheus_export_failures"].value) == {"globex"}
        assert "out of order sample" in metadata["prometheus_export_failures"].value["globex"]
        # acme: 2 series x (2 horizons x 5 quantiles + 2 breach levels + their crossings while likely)
        probabilities = _query_range(prometheus, 'intentvision_breach_probability{tenant="acme"}', started)
        crossings = _query_range(
            prometheus, 'intentvision_breach_crossing_timestamp_seconds{tenant="acme"}', started
        )
        assert metadata["prometheus_samples_written"].value == 2 * 2 * 5 + len(probabilities) + len(crossings)
        assert anomaly_metadata["prometheus_export_failures"].value == {}

        with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
            stored = conn.sql("select * from intentvision.forecasts where tenant = 'acme'").df()
            scored = conn.sql("select * from intentvision.anomalies where tenant = 'acme'").df()
        stored = stored.sort_values(["unique_id", "ds"])
        day_ahead = stored.groupby("unique_id").nth(23).set_index("labels")

        forecasts = _query_range(
            prometheus, f'intentvision_forecast{{tenant="acme",metric="{METRIC}",horizon="24h"}}', started
        )
        assert len(forecasts) == 2 * 5
        columns = {"0.025": "lo_95", "0.1": "lo_80", "0.5": "yhat", "0.9": "hi_80", "0.975": "hi_95"}
        for series in forecasts:
            labels = series["metric"]
            assert set(labels) == {"__name__", "host", "metric", "tenant", "horizon", "quantile"}
            expected = day_ahead.loc[f'host="{labels["host"]}"', columns[labels["quantile"]]]
            assert _values(series) == [pytest.approx(expected, rel=1e-12)] * len(series["values"])

        scores = _query_range(prometheus, 'intentvision_anomaly_score{tenant="acme"}', started)
        newest = scored.sort_values("ds").drop_duplicates("unique_id", keep="last").set_index("labels")
        assert {s["metric"]["host"] for s in scores} == {"web-1", "web-2"}
        for series in scores:
            expected = newest.loc[f'host="{series["metric"]["host"]}"', "anomaly_score"]
            assert _values(series) == [pytest.approx(expected, rel=1e-12)] * len(series["values"])

        # The breach outlook is the alert rule's own judgement of each level on the stored forecasts.
        assert len(probabilities) == 2 * 2
        last = newest.reset_index()[["unique_id", "ds", "y"]]
        labels_of = stored.drop_duplicates("unique_id").set_index("unique_id")["labels"]
        outlook = {}
        for severity, line in BUSY.items():
            rule = ForecastBreachRule(name="b", metric=METRIC, threshold=line, horizon=pd.Timedelta("24h"))
            for row in rule.assess(stored, last).itertuples(index=False):
                outlook[(labels_of[row.unique_id], severity)] = row
        for series in probabilities:
            labels = series["metric"]
            assert set(labels) == {"__name__", "host", "metric", "tenant", "rule", "severity", "horizon"}
            assert (labels["rule"], labels["horizon"]) == ("cpu-busy", "24h")
            expected = outlook[(f'host="{labels["host"]}"', labels["severity"])]
            assert _values(series) == [pytest.approx(expected.probability, rel=1e-12)] * len(series["values"])
        assert {s["metric"]["severity"] for s in probabilities} == {"warning", "critical"}
        for series in crossings:
            expected = outlook[(f'host="{series["metric"]["host"]}"', series["metric"]["severity"])]
            assert _values(series)[-1] == pd.Timestamp(expected.crossing_ds).timestamp()
        likely = [key for key, row in outlook.items() if row.probability > 0]
        assert len(crossings) == len(likely) > 0

        # The shipped Grafana dashboard's queries parse with and without extra matchers; 24 h after the run
        # the forecast panel's median line is acme's web-1 forecast for that moment, and now the anomaly
        # and breach panels show web-1's newest score, severity, breach probabilities and crossings.
        later, now = time.time() + 24 * 3600, time.time()
        queries = [
            (panel["id"], query["refId"], query["expr"])
            for panel in json.loads(DASHBOARD.read_text())["panels"]
            for query in panel["targets"]
        ]
        for matchers in ("", 'host="web-1"'):
            answers = {
                (panel, ref): _query_range(
                    prometheus, _dashboard_expr(expr, matchers), *_around(later if panel == 1 else now)
                )
                for panel, ref, expr in queries
            }
        [median] = answers[(1, "B")]
        assert median["metric"]["host"] == "web-1"
        assert _values(median)[-1] == pytest.approx(day_ahead.loc['host="web-1"', "yhat"], rel=1e-12)
        assert len(answers[(2, "A")]) == len(answers[(3, "A")]) == 1
        # web-1's breach probability per level, and its expected crossings in milliseconds for Grafana.
        web_1 = {severity: outlook[('host="web-1"', severity)] for severity in BUSY}
        assert {s["metric"]["host"] for s in answers[(4, "A")]} == {"web-1"}
        assert {s["metric"]["severity"]: _values(s)[-1] for s in answers[(4, "A")]} == {
            severity: pytest.approx(row.probability, rel=1e-12) for severity, row in web_1.items()
        }
        assert {s["metric"]["severity"]: _values(s)[-1] for s in answers[(5, "A")]} == {
            severity: 1000 * pd.Timestamp(row.crossing_ds).timestamp()
            for severity, row in web_1.items()
            if row.probability > 0
        }

        # globex: its forecasts were refused (only the planted sample is there), its scores went through, to
        # its own Prometheus only.
        [only] = _query_range(
            globex_prometheus, 'intentvision_forecast{tenant="globex"}', started, end=ahead_ms / 1000 + 1
        )
        assert only["metric"] == planted and set(_values(only)) == {-1.0}
        [score] = _query_range(globex_prometheus, "intentvision_anomaly_score", started)
        assert score["metric"]["tenant"] == "globex"
        assert _query_range(prometheus, '{tenant="globex"}', started, end=ahead_ms / 1000 + 1) == []
