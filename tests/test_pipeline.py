"""The whole asset graph on the demo data, materialized through real Dagster runs into a real DuckDB file."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from intentvision_dagster.alerting.log import list_alerts
from intentvision_dagster.demo_data import demo_incidents
from intentvision_dagster.runs import run_pipeline, tick_alert_sensor
from intentvision_dagster.settings import ASSETS_DIR
from tests.conftest import DEMO_END


def read(world, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(world.settings.warehouse_path), read_only=True) as conn:
        return conn.execute(sql).fetchdf()


def test_every_demo_partition_run_succeeds(demo_world):
    assert len(demo_world.keys) >= 10
    assert {key.split("/")[0] for key in demo_world.keys} == {"acme", "globex"}
    assert [o.partitions[0] for o in demo_world.outcomes if not o.success] == []


def test_validated_rows_match_landed_rows_and_nothing_is_quarantined(demo_world):
    raw = read(demo_world, "select count(*) n from intentvision.raw_series")["n"][0]
    valid = read(demo_world, "select count(*) n from intentvision.validated_series")["n"][0]
    quarantined = read(demo_world, "select count(*) n from intentvision.quarantine")["n"][0]
    assert raw == valid > 0
    assert quarantined == 0


def test_forecast_intervals_are_ordered_bounded_and_span_the_horizon(demo_world):
    fc = read(demo_world, "select * from intentvision.forecasts")
    assert (fc["lo_95"] <= fc["lo_80"] + 1e-9).all()
    assert (fc["lo_80"] <= fc["yhat"] + 1e-9).all()
    assert (fc["yhat"] <= fc["hi_80"] + 1e-9).all()
    assert (fc["hi_80"] <= fc["hi_95"] + 1e-9).all()
    percent = fc[fc["metric"].str.endswith("_percent")]
    assert percent["hi_95"].max() <= 100 and percent["lo_95"].min() >= 0
    steps = fc.groupby("metric")["unique_id"].value_counts().groupby("metric").unique()
    assert list(steps["node_cpu_utilization_percent"]) == [72]  # 72 h of hourly steps
    assert list(steps["cloud_cost_usd_daily"]) == [7]  # 7 d of daily steps
    validated = read(demo_world, "select distinct unique_id from intentvision.validated_series")
    assert set(fc["unique_id"]) == set(validated["unique_id"])


def test_backtest_metrics_are_finite_for_every_series(demo_world):
    acc = read(demo_world, "select * from intentvision.forecast_accuracy")
    metrics = ["mae", "rmse", "mape", "smape", "mase", "coverage_80", "coverage_95"]
    assert np.isfinite(acc[metrics].to_numpy()).all()
    assert acc["coverage_95"].between(0, 1).all()
    assert acc.groupby("metric")["mase"].median().lt(2).all()


def test_injected_request_incident_is_flagged(demo_world):
    incidents = demo_incidents(ASSETS_DIR / "demo" / "series.yaml", DEMO_END)
    flags = read(demo_world, "select * from intentvision.anomalies where is_anomaly")
    for incident in incidents.itertuples():
        hits = flags[
            (flags["tenant"] == incident.tenant)
            & (flags["metric"] == incident.metric)
            & flags["ds"].between(incident.start, incident.end)
            & flags["severity"].isin(["warning", "critical"])
        ]
        assert len(hits) > 0, f"incident {incident} not flagged"


def test_asset_checks_ran_and_passed_for_the_demo(demo_world):
    key = dg.AssetKey("validated_series")
    for check in ("completeness", "freshness", "value_range", "not_null"):
        record = demo_world.instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(key, check)]
        )[dg.AssetCheckKey(key, check)]
        assert record is not None, check
        assert record.status.value == "SUCCEEDED", (check, record)


def test_alert_sensor_alerts_the_disk_breach_and_the_incident_exactly_once(demo_world):
    tick_alert_sensor(demo_world.defs, demo_world.instance)
    with duckdb.connect(str(demo_world.settings.warehouse_path)) as conn:
        alerts = list_alerts(conn)
    disk = alerts[alerts["metric"] == "node_filesystem_usage_percent"]
    assert len(disk) == 1 and disk["tenant"].iloc[0] == "acme"
    assert disk["severity"].iloc[0] == "critical"
    requests = alerts[(alerts["metric"] == "http_requests_per_second") & (alerts["tenant"] == "acme")]
    assert len(requests) >= 1
    # Every alert was notified; the request spike is already over, so it may have resolved since.
    assert alerts["delivered_at"].notna().all() and set(alerts["state"]) <= {"delivered", "resolved"}
    lines = [json.loads(line) for line in demo_world.settings.outbox_path.read_text().splitlines()]
    outbox = [line for line in lines if line["action"] == "post"]
    assert len(outbox) == alerts["group_id"].nunique(), "one message per group, not per alert"
    # A group whose alert resolved by the time of the tick (the request spike, on a slow machine) edits its
    # message: every other line is an update of a posted message or its chart.
    updates = [line for line in lines if line["action"] == "update"]
    assert {line["thread_ts"] for line in updates} <= {line["id"] for line in outbox}
    charts = [line for line in lines if line["action"] == "chart"]
    assert len(outbox) + len(updates) + len(charts) == len(lines)
    assert sorted(line["thread_ts"] for line in charts) == sorted(line["id"] for line in outbox)
    assert all(Path(c["path"]).read_bytes().startswith(b"\x89PNG") for line in charts for c in line["charts"])
    assert {Path(c["path"]).parent for line in charts for c in line["charts"]} == {
        demo_world.settings.outbox_path.parent / "charts"
    }, "the charts are written next to the outbox"

    tick_alert_sensor(demo_world.defs, demo_world.instance)  # a repeated tick sends nothing twice
    outbox_again = demo_world.settings.outbox_path.read_text().splitlines()
    assert len(outbox_again) == len(lines)


def test_rematerializing_a_partition_gives_the_same_rows(demo_world):
    key = next(k for k in demo_world.keys if k.endswith("node_cpu_utilization_percent"))
    tenant, metric = key.split("/")
    query = (
        "select * from intentvision.{table} where tenant = '" + tenant + "' and metric = '" + metric + "' "
        "order by unique_id, ds"
    )
    before = {
        t: read(demo_world, query.format(table=t)) for t in ("raw_series", "validated_series", "forecasts")
    }
    [outcome] = run_pipeline(demo_world.defs, demo_world.instance, [key])
    assert outcome.success
    for table, frame in before.items():
        pd.testing.assert_frame_equal(frame, read(demo_world, query.format(table=table)))


def test_a_partition_range_runs_in_one_run(demo_world):
    keys = demo_world.keys[:3]
    counts_before = read(demo_world, "select count(*) n from intentvision.forecasts")["n"][0]
    [outcome] = run_pipeline(demo_world.defs, demo_world.instance, keys, one_run=True)
    assert outcome.success and outcome.partitions == keys
    run = demo_world.instance.get_run_by_id(outcome.run_id)
    assert run.tags["dagster/asset_partition_range_start"] == keys[0]
    assert run.tags["dagster/asset_partition_range_end"] == keys[-1]
    materialized = demo_world.instance.fetch_materializations(dg.AssetKey("forecasts"), limit=1000)
    in_run = {r.partition_key for r in materialized.records if r.run_id == outcome.run_id}
    assert in_run == set(keys)
    assert read(demo_world, "select count(*) n from intentvision.forecasts")["n"][0] == counts_before


def test_single_partition_runs_show_plots_and_severity_counts_in_metadata(demo_world):
    key = "acme/http_requests_per_second"
    [demo_run] = [o.run_id for o in demo_world.outcomes if o.partitions == [key]]

    def metadata_of(asset: str) -> dict:
        records = demo_world.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=20
        ).records
        [record] = [r for r in records if r.run_id == demo_run]
        return record.asset_materialization.metadata

    forecast_meta, anomaly_meta = metadata_of("forecasts"), metadata_of("anomalies")
    assert forecast_meta["plot"].value.startswith("![forecast](data:image/png;base64,")
    assert forecast_meta["series"].value == 3
    assert anomaly_meta["plot"].value.startswith("![anomalies](data:image/png;base64,")
    assert anomaly_meta["points_critical"].value >= 3 and anomaly_meta["events"].value >= 1
    assert 'service="checkout"' in anomaly_meta["latest_events"].value


def test_materializations_carry_the_table_and_partition_row_counts(demo_world):
    keys = demo_world.keys[3:5]
    [outcome] = run_pipeline(demo_world.defs, demo_world.instance, keys, one_run=True)
    assert outcome.success
    for asset in ("raw_series", "validated_series", "anomalies", "forecast_accuracy", "forecasts"):
        records = demo_world.instance.fetch_materializations(dg.AssetKey(asset), limit=20).records
        in_run = [r.asset_materialization.metadata for r in records if r.run_id == outcome.run_id]
        assert len(in_run) == len(keys)
        stored = read(demo_world, f"select tenant || '/' || metric as key from intentvision.{asset}")
        for metadata in in_run:
            assert metadata["dagster/row_count"].value == len(stored)
            assert metadata["dagster/partition_row_count"].value == stored["key"].isin(keys).sum() > 0
            assert metadata["dagster/storage_kind"].value == "duckdb"
