from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.catalog import MetricSpec
from intentvision_dagster.quality.expectations import ExpectationOutcome, run_expectations
from intentvision_dagster.series import unique_id

CPU = MetricSpec("node_cpu_utilization_percent", min_value=0, max_value=100)
START = pd.Timestamp("2024-03-01")


def hourly(host: str, hours: range | list[int], values: np.ndarray | None = None) -> pd.DataFrame:
    labels = f'host="{host}"'
    hours = list(hours)
    return pd.DataFrame(
        {
            "tenant": "acme",
            "metric": CPU.name,
            "labels": labels,
            "unique_id": unique_id("acme", CPU.name, labels),
            "ds": START + pd.to_timedelta(hours, unit="h"),
            "y": np.linspace(10, 60, len(hours)) if values is None else values,
        }
    )


def outcomes(df: pd.DataFrame, now: pd.Timestamp, spec: MetricSpec = CPU) -> dict[str, ExpectationOutcome]:
    return {o.name: o for o in run_expectations(df, spec, "1h", now)}


def test_clean_frame_passes_everything() -> None:
    df = pd.concat([hourly("web-1", range(48)), hourly("web-2", range(48))], ignore_index=True)
    now = START + pd.Timedelta(hours=50)

    result = outcomes(df, now)

    assert {name: o.success for name, o in result.items()} == {
        "completeness": True,
        "freshness": True,
        "value_range": True,
        "not_null": True,
    }
    assert result["freshness"].observed["max_age_hours"] == 3.0
    assert result["value_range"].observed["min_observed"] == 10.0
    assert result["not_null"].observed == {"null_ds": 0, "null_y": 0}
    json.dumps([o.observed for o in result.values()], allow_nan=False)


def test_gappy_series_fails_completeness_with_the_observed_ratio() -> None:
    gappy = [h for h in range(20) if h not in (3, 4, 5, 9)]
    df = pd.concat([hourly("web-1", range(20)), hourly("web-2", gappy)], ignore_index=True)

    completeness = outcomes(df, START + pd.Timedelta(hours=20))["completeness"]

    assert not completeness.success
    assert completeness.observed == {
        "series": 2,
        "failing_series": 1,
        "worst_gap_ratio": 0.2,
        "worst_series": 'acme/node_cpu_utilization_percent{host="web-2"}',
        "worst_missing": 4,
        "worst_expected": 20,
        "max_gap_ratio": 0.1,
        "freq": "1h",
    }
    assert completeness.description == (
        "1 of 2 series have more than 10.0% of the 1h timestamps missing; "
        'worst: acme/node_cpu_utilization_percent{host="web-2"} misses 20.0% (4 of 20)'
    )


def test_stale_series_fails_freshness() -> None:
    df = pd.concat([hourly("web-1", range(100)), hourly("web-2", range(40))], ignore_index=True)

    freshness = outcomes(df, pd.Timestamp("2024-03-05T04:00:00Z"))["freshness"]

    assert not freshness.success
    assert freshness.observed["stale_series"] == 1
    assert freshness.observed["stalest_series"] == 'acme/node_cpu_utilization_percent{host="web-2"}'
    assert freshness.observed["stalest_newest_ds"] == "2024-03-02T15:00:00"
    assert freshness.observed["max_age_hours"] == 61.0
    assert freshness.observed["newest_ds"] == "2024-03-05T03:00:00"
    assert "1 of 2 series have no point in the 48 h before 2024-03-05 04:00:00" in freshness.description


def test_out_of_range_values_fail_value_range() -> None:
    df = hourly("web-1", range(4), np.array([5.0, 101.0, -1.0, 50.0]))

    value_range = outcomes(df, START + pd.Timedelta(hours=4))["value_range"]

    assert not value_range.success
    assert value_range.observed == {
        "min_observed": -1.0,
        "max_observed": 101.0,
        "min_allowed": 0,
        "max_allowed": 100,
        "unexpected_count": 2,
    }
    assert value_range.description == (
        "2 value(s) of node_cpu_utilization_percent lie outside [0, 100] (observed -1.0 to 101.0)"
    )


def test_unbounded_metric_and_missing_values() -> None:
    spec = MetricSpec(CPU.name)
    df = hourly("web-1", range(3), np.array([1e12, np.nan, -5.0]))

    result = outcomes(df, START + pd.Timedelta(hours=3), spec)

    assert result["value_range"].success
    assert result["value_range"].description == "no bounds declared for node_cpu_utilization_percent"
    assert not result["not_null"].success
    assert result["not_null"].observed == {"null_ds": 0, "null_y": 1}


def test_no_data_is_not_fresh_and_bad_freq_is_refused() -> None:
    assert not outcomes(hourly("web-1", []), START)["freshness"].success
    with pytest.raises(ValueError, match="'MS' is not a fixed sampling interval"):
        run_expectations(hourly("web-1", range(3)), CPU, "MS", START)
