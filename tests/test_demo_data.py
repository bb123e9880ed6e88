"""The demo generator: deterministic, ingest file format, and the injected events where the config says."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from intentvision_dagster.demo_data import (
    INCIDENT_COLUMNS,
    INGEST_COLUMNS,
    demo_events,
    demo_incidents,
    generate_demo,
    write_demo_files,
)
from intentvision_dagster.settings import ASSETS_DIR

CONFIG = ASSETS_DIR / "demo" / "series.yaml"
END = pd.Timestamp("2026-11-27T06:00:00")
GIB = 2**30
METRICS = {
    "node_cpu_utilization_percent",
    "container_memory_working_set_bytes",
    "node_filesystem_usage_percent",
    "http_requests_per_second",
    "cloud_cost_usd_daily",
}


@pytest.fixture(scope="module")
def demo() -> dict[str, pd.DataFrame]:
    return generate_demo(CONFIG, END)


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return demo_events(CONFIG, END)


def _series(frame: pd.DataFrame, metric: str, labels: str) -> pd.Series:
    rows = frame[(frame["metric"] == metric) & (frame["labels"] == labels)]
    return pd.Series(rows["value"].to_numpy(), index=pd.to_datetime(rows["timestamp"]).dt.tz_localize(None))


def test_same_config_and_end_give_identical_frames(demo: dict[str, pd.DataFrame]) -> None:
    again = generate_demo(CONFIG, END)
    assert demo.keys() == again.keys()
    for tenant, frame in demo.items():
        pd.testing.assert_frame_equal(frame, again[tenant])
    assert not generate_demo(CONFIG, END + pd.Timedelta(hours=1))["acme"].equals(demo["acme"])


def test_tenants_differ(demo: dict[str, pd.DataFrame]) -> None:
    assert set(demo) == {"acme", "globex"}
    assert not np.allclose(demo["acme"]["value"], demo["globex"]["value"])


def test_frames_are_in_the_ingest_file_format(demo: dict[str, pd.DataFrame]) -> None:
    for frame in demo.values():
        assert list(frame.columns) == INGEST_COLUMNS
        assert frame["value"].dtype == np.float64
        assert frame["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:00:00Z").all()
        assert frame["labels"].str.fullmatch(r"[a-z_]+=[^,=]+(,[a-z_]+=[^,=]+)*").all()
        assert set(frame["metric"]) == METRICS
        per_metric = frame.groupby("metric")["labels"].nunique()
        assert per_metric.between(3, 4).all(), per_metric
        counts = frame.groupby(["metric", "labels"]).size()
        assert (counts.drop("cloud_cost_usd_daily") == 35 * 24).all()
        assert (counts["cloud_cost_usd_daily"] == 35).all()
        hourly = frame[frame["metric"] != "cloud_cost_usd_daily"]
        assert hourly["timestamp"].max() == "2026-11-27T06:00:00Z"
        assert hourly["timestamp"].min() == "2026-10-23T07:00:00Z"
        daily = frame[frame["metric"] == "cloud_cost_usd_daily"]
        assert daily["timestamp"].str.endswith("T00:00:00Z").all()
        assert daily["timestamp"].max() == "2026-11-27T00:00:00Z"


def test_timezone_aware_end_is_taken_as_utc(demo: dict[str, pd.DataFrame]) -> None:
    aware = generate_demo(CONFIG, pd.Timestamp("2026-11-27T07:00:00+01:00"))
    pd.testing.assert_frame_equal(aware["acme"], demo["acme"])


def test_cpu_stays_within_0_and_100_and_is_busier_on_weekday_afternoons(
    demo: dict[str, pd.DataFrame],
) -> None:
    for frame in demo.values():
        cpu = frame[frame["metric"] == "node_cpu_utilization_percent"]["value"]
        assert cpu.between(0, 100).all()
    web = _series(demo["acme"], "node_cpu_utilization_percent", "host=web-1")
    weekday_afternoon = web[(web.index.dayofweek < 5) & (web.index.hour == 14)]
    weekend_afternoon = web[(web.index.dayofweek >= 5) & (web.index.hour == 14)]
    night = web[web.index.hour == 2]
    assert weekday_afternoon.median() > 1.5 * weekend_afternoon.median() > 1.5 * night.median()


def test_memory_grows_and_drops_back_on_restarts(demo: dict[str, pd.DataFrame]) -> None:
    memory = demo["acme"][demo["acme"]["metric"] == "container_memory_working_set_bytes"]
    assert memory["value"].between(0.8 * GIB, 4 * GIB).all()
    for _, rows in memory.groupby("labels"):
        values = rows["value"].to_numpy()
        steps = np.diff(values)
        restarts = steps < -0.3 * (values.max() - values.min())
        assert 35 * 24 / 72 <= restarts.sum() <= 35 * 24 / 36 + 1
        assert (steps > 0).mean() > 0.6


def test_one_acme_disk_crosses_90_percent_about_two_days_after_end(
    demo: dict[str, pd.DataFrame], events: pd.DataFrame
) -> None:
    ramp = events[events["kind"] == "ramp"].iloc[0]
    disk = _series(demo["acme"], ramp["metric"], ramp["labels"])
    last_3_days = disk.iloc[-72:]
    hours = (last_3_days.index - END) / pd.Timedelta(hours=1)
    slope, intercept = np.polyfit(hours, last_3_days.to_numpy(), 1)
    assert 36 <= (90 - intercept) / slope <= 60
    assert 75 <= disk.iloc[-1] <= 85
    assert ramp["end"] == END


def test_other_disks_stay_low_and_far_from_90(demo: dict[str, pd.DataFrame], events: pd.DataFrame) -> None:
    ramp = events[events["kind"] == "ramp"].iloc[0]
    for tenant, frame in demo.items():
        disks = frame[frame["metric"] == "node_filesystem_usage_percent"]
        for labels, rows in disks.groupby("labels"):
            if (tenant, labels) == (ramp["tenant"], ramp["labels"]):
                continue
            values = rows["value"].to_numpy()
            slope = np.polyfit(np.arange(72), values[-72:], 1)[0]
            assert values.max() < 75
            assert values[-1] + 72 * max(slope, 0) < 80


def test_incident_window_is_far_above_the_same_hours_before(demo: dict[str, pd.DataFrame]) -> None:
    incidents = demo_incidents(CONFIG, END)
    assert list(incidents.columns) == INCIDENT_COLUMNS
    assert len(incidents) == 1
    spike = incidents.iloc[0]
    assert spike["kind"] == "spike"
    assert spike["tenant"] == "acme"
    assert spike["end"] - spike["start"] == pd.Timedelta(hours=2)
    assert pd.Timedelta(hours=60) <= END - spike["start"] <= pd.Timedelta(hours=84)
    rates = _series(demo["acme"], spike["metric"], spike["labels"])
    for ds in pd.date_range(spike["start"], spike["end"], freq="h"):
        same_hour_before = rates.reindex([ds - pd.Timedelta(days=d) for d in range(1, 8)])
        assert rates[ds] > 3 * same_hour_before.max()
    after = rates[spike["end"] + pd.Timedelta(hours=1)]
    assert after < 2 * rates.reindex([spike["end"] + pd.Timedelta(hours=1) - pd.Timedelta(days=1)]).iloc[0]


def test_write_demo_files_round_trips(tmp_path: Path, demo: dict[str, pd.DataFrame]) -> None:
    paths = write_demo_files(CONFIG, END, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["acme.csv", "globex.csv"]
    read = pd.read_csv(tmp_path / "out" / "acme.csv")
    assert list(read.columns) == INGEST_COLUMNS
    pd.testing.assert_frame_equal(read, demo["acme"], rtol=1e-9)


def test_event_on_an_unknown_series_is_rejected(tmp_path: Path) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    config["tenants"]["acme"]["events"][0]["labels"] = {"service": "nope"}
    path = tmp_path / "series.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(
        ValueError, match=re.escape("names no configured series http_requests_per_second{service=nope}")
    ):
        generate_demo(path, END)
