"""The alert-status asset checks and per-partition plots after a nightly-style range run: real Dagster, real
DuckDB, the shipped rules plus one tenant's own."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.alerting.dispatch import partition_url
from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.landing import land_batch
from intentvision_dagster.runs import run_pipeline
from intentvision_dagster.series import SERIES_COLUMNS, unique_id
from tests.conftest import settings_for

pytestmark = pytest.mark.slow

METRIC = "node_filesystem_usage_percent"
CRITICAL = f"acme/{METRIC}"  # at 95 %: past the shipped critical line (90)
WARNING = f"globex/{METRIC}"  # at 50 %: past globex's own warning line (40), below its critical (60)
CLEAR = f"initech/{METRIC}"  # at 50 %: below the shipped lines; its last point drops to 10 (an anomaly)
KEYS = [CRITICAL, WARNING, CLEAR]
GLOBEX_RULES = """rules:
  - name: disk-capacity
    type: forecast_breach
    metric: node_filesystem_usage_percent
    thresholds: {warning: 40, critical: 60}
    min_probability: {warning: 0.8, critical: 0.9}
"""


def _series(tenant: str, level: float, spike: float | None = None) -> pd.DataFrame:
    """A week of hourly disk usage, flat at ``level`` with small noise (last point ``spike`` when given)."""
    hours = 24 * 7
    end = pd.Timestamp.now(tz="UTC").floor("h").tz_localize(None)
    noise = np.random.default_rng(len(tenant)).normal(0, 0.05, hours)
    values = level + noise
    if spike is not None:
        values[-1] = spike
    labels = 'host="db-1",mountpoint="/data"'
    frame = pd.DataFrame({"ds": pd.date_range(end=end, periods=hours, freq="h"), "y": values})
    identity = {"tenant": tenant, "metric": METRIC, "labels": labels}
    return frame.assign(**identity, unique_id=unique_id(tenant, METRIC, labels))[SERIES_COLUMNS]


@pytest.fixture(scope="module")
def range_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("status-home")
    rules_dir = home / "tenant_rules"
    rules_dir.mkdir()
    (rules_dir / "globex.yaml").write_text(GLOBEX_RULES)
    settings = settings_for(home, INTENTVISION_TENANT_RULES=str(rules_dir))
    settings.ensure_dirs()
    for tenant, level, spike in (("acme", 95.0, None), ("globex", 50.0, None), ("initech", 50.0, 10.0)):
        land_batch(_series(tenant, level, spike), settings.landing_dir, tenant)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenant_metric", KEYS)
    defs = build_definitions(settings)
    [outcome] = run_pipeline(defs, instance, KEYS, one_run=True)
    assert outcome.success
    return instance, outcome.run_id, defs


def test_a_single_partition_run_gets_the_same_verdict_for_its_partition(range_run):
    instance, _, defs = range_run
    [outcome] = run_pipeline(defs, instance, [WARNING])
    assert outcome.success
    capacity = _evaluations(instance, outcome.run_id, "capacity")
    assert list(capacity) == [WARNING]
    assert (capacity[WARNING].passed, capacity[WARNING].severity) == (False, dg.AssetCheckSeverity.WARN)
    [record] = [
        r
        for r in instance.fetch_materializations(dg.AssetKey("forecasts"), limit=20).records
        if r.run_id == outcome.run_id
    ]
    assert record.partition_key == WARNING
    assert record.asset_materialization.metadata["plot"].value.startswith(
        "![forecast](data:image/png;base64,"
    )


def _evaluations(instance: dg.DagsterInstance, run_id: str, check: str) -> dict[str, dg.AssetCheckEvaluation]:
    events = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    found = [e.event_log_entry.dagster_event.event_specific_data for e in events]
    return {e.partition: e for e in found if e.check_name == check}


def _table(evaluation: dg.AssetCheckEvaluation) -> list[dict]:
    return [record.data for record in evaluation.metadata["series"].value.records]


def test_capacity_check_follows_the_worst_alert_per_partition(range_run):
    instance, run_id, _ = range_run
    capacity = _evaluations(instance, run_id, "capacity")
    assert set(capacity) == set(KEYS)
    assert (capacity[CRITICAL].passed, capacity[CRITICAL].severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert (capacity[WARNING].passed, capacity[WARNING].severity) == (False, dg.AssetCheckSeverity.WARN)
    assert capacity[CLEAR].passed and _table(capacity[CLEAR]) == []
    assert capacity[CLEAR].description == f"clear: no series of {CLEAR} at risk (rules: disk-capacity)"

    [critical] = _table(capacity[CRITICAL])
    assert critical["series"] == f'{METRIC}{{host="db-1",mountpoint="/data"}}'
    assert (critical["severity"], critical["state"], critical["threshold"]) == ("critical", "firing", "90 %")
    assert critical["probability"] == 1.0
    assert critical["current"] == f"{round(_series('acme', 95.0)['y'].iloc[-1], 2):g} %"
    assert critical["crossing_utc"] == "already above"
    assert critical["model"] and critical["accuracy"].startswith("typical error ±")
    assert " points over " in critical["accuracy"]
    assert capacity[CRITICAL].metadata["worst_severity"].value == "critical"
    assert capacity[CRITICAL].metadata["series_concerned"].value == 1

    [warning] = _table(capacity[WARNING])  # globex's own rule: warning at 40, critical at 60
    last = _series("globex", 50.0)["y"].iloc[-1]
    assert (warning["severity"], warning["threshold"]) == ("warning", "40 %")
    assert warning["current"] == f"{round(last, 2):g} %" and warning["probability"] == 1.0
    assert capacity[WARNING].description == f"1 warning in {WARNING} (rules: disk-capacity)"

    # The check's verdicts are stored per partition, so the partition list shows them.
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("forecasts"), "capacity"), limit=10
    )
    assert {r.partition: r.status.value for r in records if r.run_id == run_id} == {
        CRITICAL: "FAILED",
        WARNING: "FAILED",
        CLEAR: "SUCCEEDED",
    }


def test_open_anomalies_check_lists_the_ongoing_event(range_run):
    instance, run_id, _ = range_run
    anomalies = _evaluations(instance, run_id, "open_anomalies")
    assert set(anomalies) == set(KEYS)
    assert anomalies[CRITICAL].passed and anomalies[WARNING].passed
    assert anomalies[CRITICAL].description == f"clear: no open anomaly in {CRITICAL} (rules: anomalies)"
    assert (anomalies[CLEAR].passed, anomalies[CLEAR].severity) == (False, dg.AssetCheckSeverity.WARN)
    [event] = _table(anomalies[CLEAR])
    assert (event["severity"], event["points"]) == ("warning", 1)
    assert event["since_utc"] == f"{pd.Timestamp.now(tz='UTC').floor('h'):%Y-%m-%d %H:%M} UTC"
    assert event["peak_score"] > 0.5 and "below the usual range" in event["reason"]


@pytest.mark.parametrize("asset", ["forecasts", "anomalies"])
def test_each_partition_of_a_range_run_carries_its_own_plot(range_run, asset):
    instance, run_id, _ = range_run
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=20).records
    metadata = {r.partition_key: r.asset_materialization.metadata for r in records if r.run_id == run_id}
    assert set(metadata) == set(KEYS)
    plots = {key: meta["plot"].value for key, meta in metadata.items()}
    assert all(
        plot.startswith(f"![{asset[:-1] if asset == 'forecasts' else asset}](data:image/png;base64,")
        for plot in plots.values()
    )
    assert len(set(plots.values())) == len(KEYS), "one chart per partition, not one shared"
    for key, meta in metadata.items():
        tenant, metric = key.split("/")
        assert meta["plot_path"].value.endswith(
            f"/reports/{tenant}/{metric}{'' if asset == 'forecasts' else '.anomalies'}.png"
        )
    count = "points" if asset == "anomalies" else "rows"
    rows = {key: meta[count].value for key, meta in metadata.items()}
    if asset == "anomalies":
        assert rows == dict.fromkeys(KEYS, 24 * 7)  # each partition's own rows, not the range's
    else:
        assert len(set(rows.values())) == 1 and rows[CLEAR] > 0
        assert {meta["series"].value for meta in metadata.values()} == {1}


@pytest.mark.parametrize(("kind", "asset"), [("forecast_breach", "forecasts"), ("anomaly", "anomalies")])
def test_an_alert_links_to_the_partition_whose_materialization_holds_its_plot(range_run, kind, asset):
    instance, run_id, _ = range_run
    tenant, metric = CLEAR.split("/")
    url = partition_url(
        "http://dagster:3000", {"tenant": tenant, "metric": metric, "details": json.dumps({"kind": kind})}
    )
    parsed = urlsplit(url)
    assert parsed.path == f"/assets/{asset}"
    query = parse_qs(parsed.query)
    assert query == {"view": ["partitions"], "partition": [CLEAR]}
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=query["partition"]), limit=1
    ).records
    assert (
        record.run_id == run_id
        and "data:image/png;base64," in record.asset_materialization.metadata["plot"].value
    )


def test_each_partitions_page_lists_the_expected_crossings_its_capacity_check_gives(range_run):
    """The partition page every alert opens shows, next to the chart, the series a rule pages on and when
    they cross: the same series and times as the capacity check (one fewer click)."""
    instance, run_id, _ = range_run
    capacity = _evaluations(instance, run_id, "capacity")
    records = instance.fetch_materializations(dg.AssetKey("forecasts"), limit=20).records
    tables = {
        r.partition_key: [row.data for row in r.asset_materialization.metadata["expected_crossings"].records]
        for r in records
        if r.run_id == run_id
    }
    assert set(tables) == set(KEYS)
    for key in KEYS:
        ahead = {
            f"{key.split('/')[0]}/{row['series']}": row["crossing_utc"].removesuffix(" UTC")
            for row in _table(capacity[key])
            if row["crossing_utc"] != "already above"
        }
        assert {row["series"]: row["crossing_utc"] for row in tables[key]} == ahead, key
        assert all("P " in row["line"] and " – " in row["interval_utc"] for row in tables[key])
