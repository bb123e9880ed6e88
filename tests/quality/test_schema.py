from __future__ import annotations

import math

import pandas as pd
import pandera.pandas as pa
import pytest

from intentvision_dagster.catalog import MetricSpec
from intentvision_dagster.quality.schema import (
    QUARANTINE_COLUMNS,
    NoValidRowsError,
    SeriesSchema,
    split_valid,
)
from intentvision_dagster.series import SERIES_COLUMNS, unique_id

CPU = MetricSpec("node_cpu_utilization_percent", min_value=0, max_value=100)


def frame(values: list[float], hours: list[int] | None = None, host: str = "web-1", spec: MetricSpec = CPU):
    labels = f'host="{host}"'
    return pd.DataFrame(
        {
            "tenant": "acme",
            "metric": spec.name,
            "labels": labels,
            "unique_id": unique_id("acme", spec.name, labels),
            "ds": pd.Timestamp("2024-03-01") + pd.to_timedelta(hours or list(range(len(values))), unit="h"),
            "y": [float(v) for v in values],
        }
    )


def test_bad_rows_are_quarantined_with_rule_and_reason() -> None:
    rows = pd.concat([frame([1, math.nan, math.inf, -3, 150, 99.5]), frame([2, 3], host="web-2")])

    valid, quarantined, repeats = split_valid(rows.iloc[::-1], CPU)

    assert list(valid.columns) == SERIES_COLUMNS
    assert list(quarantined.columns) == QUARANTINE_COLUMNS
    SeriesSchema.validate(valid)
    assert valid["y"].tolist() == [1.0, 99.5, 2.0, 3.0]
    assert quarantined[["rule", "reason"]].values.tolist() == [
        ["finite", "y=nan is not a finite number"],
        ["finite", "y=inf is not a finite number"],
        [
            "non_negative",
            "y=-3.0 is negative but node_cpu_utilization_percent is declared non-negative (min 0)",
        ],
        ["max", "y=150.0 is above the maximum 100 declared for node_cpu_utilization_percent"],
    ]
    assert quarantined["ds"].dt.hour.tolist() == [1, 2, 3, 4]
    assert not repeats, (
        "rows out of input order are sorted, not reported: the order of a landed frame is not the input's"
    )


def test_min_above_zero_and_negative_minimum() -> None:
    spec = MetricSpec("disk_free_bytes", min_value=10)
    _, quarantined, _ = split_valid(frame([-1, 5, 20], spec=spec), spec)
    assert quarantined[["rule", "reason"]].values.tolist() == [
        ["non_negative", "y=-1.0 is negative but disk_free_bytes is declared non-negative (min 10)"],
        ["min", "y=5.0 is below the minimum 10 declared for disk_free_bytes"],
    ]

    temperature = MetricSpec("temperature_celsius", min_value=-40)
    valid, quarantined, _ = split_valid(frame([-50, -10], spec=temperature), temperature)
    assert valid["y"].tolist() == [-10.0]
    assert quarantined["rule"].tolist() == ["min"]


def test_repeated_timestamps_of_a_gauge_are_averaged_and_reported() -> None:
    """A clock change repeating 01:00 (2 and 3), and a retried write repeating 02:00 exactly (4 and 4)."""
    rows = frame([1, 2, 3, 4, 4], hours=[0, 1, 1, 2, 2])

    valid, quarantined, repeats = split_valid(rows, CPU)

    assert valid["y"].tolist() == [1.0, 2.5, 4.0] and valid["ds"].dt.hour.tolist() == [0, 1, 2]
    assert quarantined.empty
    assert repeats.warning(with_example=False) == (
        "1 series: 4 rows at 2 repeated timestamps merged into one row each (gauges: mean; 1 exact repeat)"
    )
    SeriesSchema.validate(valid)


def test_repeated_timestamps_of_a_counter_keep_the_largest_total() -> None:
    requests = MetricSpec("http_requests_total", kind="counter", min_value=0)
    valid, _, repeats = split_valid(frame([10, 25, 20, 30], hours=[0, 1, 1, 2], spec=requests), requests)
    assert valid["y"].tolist() == [10.0, 25.0, 30.0]
    assert repeats.kinds == ("counter",) and repeats.merged_rows == 1


def test_a_bad_duplicate_does_not_evict_a_good_one() -> None:
    valid, quarantined, repeats = split_valid(frame([5, math.nan], hours=[0, 0]), CPU)

    assert valid["y"].tolist() == [5.0]
    assert quarantined["rule"].tolist() == ["finite"]
    assert not repeats


def test_nothing_valid_names_tenant_metric_and_rules() -> None:
    with pytest.raises(NoValidRowsError) as caught:
        split_valid(frame([math.nan, -1, math.inf]), CPU)

    assert str(caught.value) == (
        "tenant 'acme', metric 'node_cpu_utilization_percent': no valid rows, all 3 were quarantined by rule "
        "(finite: 2, non_negative: 1); e.g. y=nan is not a finite number"
    )
    assert caught.value.rules == {"finite": 2, "non_negative": 1}
    assert isinstance(caught.value, ValueError)


def test_schema_refuses_unordered_or_non_finite_frames() -> None:
    with pytest.raises(pa.errors.SchemaError, match="ds_strictly_increasing"):
        SeriesSchema.validate(frame([1, 2], hours=[1, 0]))
    with pytest.raises(pa.errors.SchemaError, match="finite"):
        SeriesSchema.validate(frame([1, math.inf]))


def test_frame_level_problems_raise_instead_of_quarantining() -> None:
    with pytest.raises(pa.errors.SchemaErrors, match="nanoseconds"):
        split_valid(frame([1]).astype({"ds": "datetime64[us]"}), CPU)
    with pytest.raises(ValueError, match=r"missing \['y'\]"):
        split_valid(frame([1]).drop(columns="y"), CPU)
    with pytest.raises(ValueError, match=r"rows of metric\(s\) \['node_cpu_utilization_percent'\]"):
        split_valid(frame([1]), MetricSpec("other"))
