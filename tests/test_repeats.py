"""Repeated and out-of-order timestamps merged per metric kind, and the sentence that says so."""

from __future__ import annotations

import math

import pandas as pd

from intentvision_dagster.repeats import Repeats, merge_repeats

KINDS = {"cpu": "gauge", "requests_total": "counter"}


def _frame(rows: list[tuple[str, str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "unique_id": f"acme/{metric}{{{host}}}",
                "metric": metric,
                "ds": pd.Timestamp("2026-10-25") + pd.Timedelta(hours=h),
                "y": y,
            }
            for metric, host, h, y in rows
        ]
    )


def test_gauges_average_counters_keep_the_max_and_bad_values_stay_for_validation() -> None:
    rows = [
        ("cpu", "a", 1, 40.0),
        ("cpu", "a", 0, 30.0),
        ("cpu", "a", 1, 50.0),
        ("cpu", "a", 1, math.nan),
        ("requests_total", "a", 0, 120.0),
        ("requests_total", "a", 0, 100.0),
    ]
    merged, repeats = merge_repeats(_frame(rows), KINDS.__getitem__)
    assert merged["ds"].dt.hour.tolist() == [0, 1, 1, 0]
    assert merged["y"].iloc[:2].tolist() == [30.0, 45.0], "cpu at 01:00: the mean of 40 and 50"
    assert math.isnan(merged["y"].iloc[2]) and merged["ds"].iloc[2].hour == 1, (
        "NaN kept apart, not averaged in"
    )
    assert merged["y"].iloc[3:].tolist() == [120.0]
    assert repeats == Repeats(
        repeated_timestamps=2,
        merged_rows=2,
        identical_rows=0,
        out_of_order=1,
        series=2,
        kinds=("gauge", "counter"),
        example="acme/cpu{a} at 2026-10-25 01:00:00",
    )
    assert repeats.warning(with_example=False) == (
        "2 series: 4 rows at 2 repeated timestamps merged into one row each (gauges: mean, counters: max; "
        "0 exact repeats); 1 row out of order put in time order"
    )


def test_clean_input_is_only_sorted_and_says_nothing() -> None:
    merged, repeats = merge_repeats(_frame([("cpu", "a", 0, 1.0), ("cpu", "b", 0, 2.0)]), KINDS.__getitem__)
    assert len(merged) == 2 and not repeats and repeats.warning() == ""
    merged, repeats = merge_repeats(_frame([("cpu", "a", 1, 1.0), ("cpu", "a", 0, 2.0)]), KINDS.__getitem__)
    assert merged["y"].tolist() == [2.0, 1.0]
    assert repeats.warning() == "1 series: 1 row out of order put in time order"
