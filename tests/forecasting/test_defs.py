"""The forecasting assets through Dagster on one demo partition: stored selections are reused until they are
``reselect_days`` old, and a failing TimeGPT backend falls back to statsforecast with the reason in the
asset metadata."""

from __future__ import annotations

import dagster as dg
import duckdb
import pandas as pd
import pytest

from intentvision_dagster.chart_marks import Crossing, SeriesMarks
from intentvision_dagster.definitions import build_definitions, build_resources
from intentvision_dagster.demo_data import write_demo_files
from intentvision_dagster.forecasting.defs import (
    expected_crossings,
    forecast_accuracy,
    forecasts,
    soonest_crossings,
)
from intentvision_dagster.forecasting.resources import ForecastingConfig
from intentvision_dagster.runs import QUIET_LOGS, ingest_file, register_partitions
from intentvision_dagster.settings import ASSETS_DIR
from tests.conftest import DEMO_END, settings_for
from tests.support.timegpt_standin import TimeGPTStandIn

KEY = "acme/node_cpu_utilization_percent"


@pytest.fixture(scope="module")
def one_partition(tmp_path_factory):
    """The demo's acme CPU partition materialized once through the pipeline job."""
    settings = settings_for(tmp_path_factory.mktemp("forecast-home"))
    instance = dg.DagsterInstance.ephemeral()
    files = write_demo_files(ASSETS_DIR / "demo" / "series.yaml", DEMO_END, settings.home / "demo")
    register_partitions(
        instance, [ingest_file(path, path.stem, settings) for path in files if path.stem == "acme"]
    )
    defs = build_definitions(settings)
    result = defs.resolve_job_def("series_pipeline").execute_in_process(
        instance=instance, partition_key=KEY, run_config=QUIET_LOGS
    )
    assert result.success
    return settings, instance, defs


def materialize(one_partition, selection, forecasting: ForecastingConfig) -> dg.ExecuteInProcessResult:
    settings, instance, defs = one_partition
    assets = list(defs.assets)
    resources = build_resources(settings) | {"forecasting": forecasting}
    return dg.materialize(
        assets,
        selection=selection,
        partition_key=KEY,
        resources=resources,
        instance=instance,
        run_config=QUIET_LOGS,
    )


def metadata(result: dg.ExecuteInProcessResult, asset) -> dict:
    [event] = result.asset_materializations_for_node(asset.op.name)
    return {name: value.value for name, value in event.metadata.items()}


def accuracy_rows(settings) -> pd.DataFrame:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return conn.sql("select * from intentvision.forecast_accuracy order by unique_id").df()


def test_selection_is_reused_until_it_is_due_then_redone(one_partition) -> None:
    first = accuracy_rows(one_partition[0])
    assert len(first) == 4 and first["selected_at"].nunique() == 1
    reused = materialize(one_partition, [forecast_accuracy], ForecastingConfig())
    meta = metadata(reused, forecast_accuracy)
    assert (meta["reused_selections"], meta["reselected_series"]) == (4, 0)
    pd.testing.assert_frame_equal(accuracy_rows(one_partition[0]), first)
    redone = materialize(one_partition, [forecast_accuracy], ForecastingConfig(reselect_days=0))
    meta = metadata(redone, forecast_accuracy)
    assert (meta["reused_selections"], meta["reselected_series"]) == (0, 4)
    assert set(meta["winners"]) <= {"MSTL", "SeasonalNaive", "Ensemble"}
    by_model = meta["by_metric_and_model"]["node_cpu_utilization_percent"]
    assert sum(entry["series"] for entry in by_model.values()) == 4
    assert all(0 <= entry["coverage_95"] <= 1 for entry in by_model.values())
    assert accuracy_rows(one_partition[0])["selected_at"].min() > first["selected_at"].max()


def test_forecasts_use_the_selected_model_per_series(one_partition) -> None:
    settings = one_partition[0]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        chosen = conn.sql(
            "select distinct f.unique_id, f.model, a.model as selected, f.low_confidence "
            "from intentvision.forecasts f join intentvision.forecast_accuracy a using (unique_id)"
        ).df()
    assert len(chosen) == 4
    assert (chosen["model"] == chosen["selected"]).all()
    assert not chosen["low_confidence"].any()


@pytest.mark.parametrize(
    ("fault", "reason"), [(None, "rejected the API key (HTTP 401)"), ("503", "HTTP 503")]
)
def test_timegpt_failure_falls_back_and_the_metadata_says_why(one_partition, fault, reason) -> None:
    with TimeGPTStandIn(api_key="the-right-key" if fault is None else "nixak-test") as api:
        if fault:
            api.fail_next(("hang", 0.0), (fault,))
        config = ForecastingConfig(
            backend="timegpt",
            nixtla_api_key="nixak-test",
            nixtla_base_url=api.url,
            timegpt_timeout_seconds=2,
            timegpt_max_retries=1,
            timegpt_retry_interval_seconds=0,
        )
        result = materialize(one_partition, [forecasts], config)
    assert result.success
    meta = metadata(result, forecasts)
    assert meta["backend"] == "timegpt" and meta["fallbacks"] == 1
    [recorded] = meta["fallback_reasons"]
    assert reason in recorded
    assert set(meta["models"]) <= {"MSTL", "SeasonalNaive", "Ensemble"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (ForecastingConfig(backend="arima"), "forecast backend 'arima' is not one of"),
        (ForecastingConfig(backend="timegpt"), "forecast backend 'timegpt' needs NIXTLA_API_KEY"),
        (ForecastingConfig(selection_metric="r2"), "selection metric 'r2' is not one of"),
    ],
)
def test_bad_forecasting_config_is_refused_by_name(config: ForecastingConfig, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config.validated()


def short_partition(tmp_path) -> tuple:
    """A new acme CPU partition holding six hourly points of one series, landed and registered."""
    settings = settings_for(tmp_path / "home")
    instance = dg.DagsterInstance.ephemeral()
    points = pd.DataFrame(
        {
            "timestamp": pd.date_range("2026-11-20", periods=6, freq="h", tz="UTC").strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "metric": "node_cpu_utilization_percent",
            "labels": 'host="new-1"',
            "value": [20.0, 22.0, 21.0, 23.0, 22.0, 24.0],
        }
    )
    points.to_csv(tmp_path / "new.csv", index=False)
    register_partitions(instance, [ingest_file(tmp_path / "new.csv", "acme", settings)])
    return settings, instance, build_definitions(settings).resolve_job_def("series_pipeline")


def test_a_new_partition_too_short_to_backtest_still_gets_low_confidence_forecasts(tmp_path) -> None:
    """Six points allow no backtest: the series gets the cold-start model, marked low-confidence."""
    settings, instance, job = short_partition(tmp_path)
    result = job.execute_in_process(instance=instance, partition_key=KEY, run_config=QUIET_LOGS)
    assert result.success
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        rows = conn.sql(
            "select model, low_confidence, count(*) from intentvision.forecasts group by all"
        ).fetchall()
    assert [(model, low) for model, low, _ in rows] == [("Naive", True)]
    assert rows[0][2] > 0


def test_accuracy_rows_written_by_an_older_version_are_selected_again(tmp_path) -> None:
    """Rows from before selections were stored (NULL selected_at, low_confidence) must not break a run."""
    settings, instance, job = short_partition(tmp_path)
    assert job.execute_in_process(instance=instance, partition_key=KEY, run_config=QUIET_LOGS).success
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        conn.execute("update intentvision.forecast_accuracy set selected_at = null, low_confidence = null")
    assert job.execute_in_process(instance=instance, partition_key=KEY, run_config=QUIET_LOGS).success
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        [(missing,)] = conn.sql(
            "select count(*) from intentvision.forecast_accuracy where selected_at is null"
        ).fetchall()
    assert missing == 0


def test_the_partition_page_lists_crossings_soonest_first_even_two_rules_on_one_series():
    at = pd.Timestamp("2026-12-05 16:00")
    disk = 'acme/disk{host="db-1"}'

    def crossing(hours: int, note: str) -> Crossing:
        ds = at + pd.Timedelta(hours=hours)
        return Crossing(ds, ds - pd.Timedelta(hours=2), ds + pd.Timedelta(hours=3), 90.0, note)

    marks = {
        disk: SeriesMarks(crossings=(crossing(5, "critical 95: P 92%"), crossing(0, "warning 90: P 99%"))),
        'acme/disk{host="web-1"}': SeriesMarks(crossings=(crossing(0, "warning 90: P 81%"),)),
        'acme/disk{host="idle"}': SeriesMarks(),
    }
    assert [(uid, c.note) for _, uid, c in soonest_crossings(marks)] == [
        (disk, "warning 90: P 99%"),
        ('acme/disk{host="web-1"}', "warning 90: P 81%"),
        (disk, "critical 95: P 92%"),
    ]
    [first, *_] = [row.data for row in expected_crossings(marks).records]
    assert first == {
        "series": disk,
        "crossing_utc": "2026-12-05 16:00",
        "interval_utc": "2026-12-05 14:00 – 2026-12-05 19:00",
        "line": "warning 90: P 99%",
    }
