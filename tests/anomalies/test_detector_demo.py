"""The detector on the shipped demo data: the injected incident is caught, the normal patterns are not."""

from __future__ import annotations

import pandas as pd
import pytest

from intentvision_dagster.anomalies.detector import detect
from intentvision_dagster.demo_data import demo_incidents, generate_demo
from intentvision_dagster.series import canonical_labels, parse_labels, unique_id
from intentvision_dagster.settings import ASSETS_DIR

CONFIG = ASSETS_DIR / "demo" / "series.yaml"
END = pd.Timestamp("2026-11-27T06:00:00")
SEASON_LENGTHS = {"cloud_cost_usd_daily": 7}  # every other demo metric is hourly with a daily cycle


def _long(tenant: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Ingest file format -> the long frame the detector takes, with the product's series identity."""
    canonical = {text: canonical_labels(parse_labels(text)) for text in frame["labels"].unique()}
    long = pd.DataFrame(
        {
            "tenant": tenant,
            "metric": frame["metric"],
            "labels": frame["labels"].map(canonical),
            "ds": pd.to_datetime(frame["timestamp"]).dt.tz_localize(None),
            "y": frame["value"],
        }
    )
    long["unique_id"] = [
        unique_id(tenant, m, labels) for m, labels in zip(long["metric"], long["labels"], strict=True)
    ]
    return long


@pytest.fixture(scope="module")
def scored() -> pd.DataFrame:
    demo = pd.concat([_long(tenant, frame) for tenant, frame in generate_demo(CONFIG, END).items()])
    return pd.concat(
        [
            detect(frame, season_length=SEASON_LENGTHS.get(metric, 24))
            for metric, frame in demo.groupby("metric")
        ],
        ignore_index=True,
    )


def _incident_series(scored: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    incident = demo_incidents(CONFIG, END).iloc[0]
    labels = canonical_labels(parse_labels(incident["labels"]))
    series = scored["unique_id"] == unique_id(incident["tenant"], incident["metric"], labels)
    return series, series & scored["ds"].between(incident["start"], incident["end"])


def test_the_injected_incident_is_one_critical_event(scored: pd.DataFrame) -> None:
    _, window = _incident_series(scored)
    hits = scored[window]
    assert len(hits) == 3
    assert (hits["severity"] == "critical").all()
    assert hits["event_id"].nunique() == 1
    assert hits["event_id"].iloc[0].endswith(f"@{hits['ds'].min().isoformat()}")


def test_normal_patterns_of_every_other_series_stay_below_warning(scored: pd.DataFrame) -> None:
    series, _ = _incident_series(scored)
    others = scored[~series]
    assert others["unique_id"].nunique() == 2 * 17 - 1
    assert not (others["severity"] == "critical").any()
    # Over 14 end times tried, the other 33 series had at most 1 warning point and 0-6 info points in total.
    assert (others["severity"] == "warning").sum() <= 2
    assert others["is_anomaly"].mean() < 0.001
