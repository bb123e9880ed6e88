"""CSV files for ``intentvision detect``: both input shapes round trip in input order; bad files are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.anomalies.files import (
    DetectFileError,
    infer_season_length,
    score_series,
    write_scored,
)
from intentvision_dagster.series_files import SeriesFileError, read_series
from tests.anomalies.test_detector import START, _seasonal

SPIKE = 20 * 24 + 3


def _single(path: Path, values: np.ndarray, freq: str = "h") -> pd.DataFrame:
    """A shuffled ``timestamp,value`` file with ISO 8601 UTC timestamps."""
    stamps = pd.date_range(START, periods=len(values), freq=freq).strftime("%Y-%m-%dT%H:%M:%SZ")
    frame = pd.DataFrame({"timestamp": stamps, "value": values.round(3)}).sample(frac=1, random_state=0)
    frame.to_csv(path, index=False)
    return frame


def _spiked(seed: int = 0) -> np.ndarray:
    values = _seasonal(seed)
    values[SPIKE] += 60
    return values


def test_single_series_round_trip_keeps_input_order_and_text(tmp_path: Path) -> None:
    source = _single(tmp_path / "in.csv", _spiked())
    parsed = read_series(tmp_path / "in.csv")
    assert parsed.columns == ("timestamp", "value") and parsed.series == 1 and not parsed.long_running
    write_scored(
        score_series(parsed, infer_season_length(parsed.frame), "medium"), parsed.columns, tmp_path / "o"
    )
    out = pd.read_csv(tmp_path / "o", dtype={"timestamp": str})
    assert list(out.columns) == [
        "timestamp",
        "value",
        "anomaly_score",
        "is_anomaly",
        "severity",
        "reason",
        "event_id",
    ]
    assert list(out["timestamp"]) == list(source["timestamp"]) and np.allclose(out["value"], source["value"])
    spike = (START + pd.Timedelta(hours=SPIKE)).strftime("%Y-%m-%dT%H:%M:%SZ")
    flagged = out[out["is_anomaly"]]
    assert list(flagged["timestamp"]) == [spike]
    # One point, however far out, is a warning: critical needs the likelihood of a run of points.
    assert flagged["severity"].iloc[0] == "warning" and "MADs above" in flagged["reason"].iloc[0]


def test_long_input_round_trip_with_progress(tmp_path: Path) -> None:
    stamps = pd.date_range(START, periods=28 * 24, freq="h").strftime("%Y-%m-%d %H:%M:%S+00:00")
    frame = pd.concat(
        [pd.DataFrame({"unique_id": f"s{seed}", "ds": stamps, "y": _spiked(seed)}) for seed in range(3)]
    ).sample(frac=1, random_state=1)
    frame.to_csv(tmp_path / "in.csv", index=False)
    parsed = read_series(tmp_path / "in.csv")
    assert parsed.columns == ("unique_id", "ds", "y") and parsed.series == 3
    done: list[int] = []
    scored = score_series(parsed, 24, "medium", on_progress=done.append)
    assert sum(done) == 3
    write_scored(scored, parsed.columns, tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv", dtype={"ds": str})
    assert list(out.columns[:3]) == ["unique_id", "ds", "y"] and len(out) == len(frame)
    assert list(zip(out["unique_id"], out["ds"], strict=True)) == list(
        zip(frame["unique_id"], frame["ds"], strict=True)
    )
    assert out.loc[out["is_anomaly"], "unique_id"].sort_values().tolist() == ["s0", "s1", "s2"]


def test_season_length_is_points_per_day(tmp_path: Path) -> None:
    _single(tmp_path / "five.csv", np.ones(600), freq="5min")
    _single(tmp_path / "daily.csv", np.ones(60), freq="D")
    assert infer_season_length(read_series(tmp_path / "five.csv").frame) == 288
    assert infer_season_length(read_series(tmp_path / "daily.csv").frame) == 7
    (tmp_path / "one.csv").write_text("timestamp,value\n2026-01-01T00:00:00Z,1\n")
    with pytest.raises(DetectFileError, match="give --season-length"):
        infer_season_length(read_series(tmp_path / "one.csv").frame)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,value\n2026-01-01,1\n", "missing column(s) 'timestamp'; expected columns timestamp,value"),
        ("unique_id,ds\na,2026-01-01\n", "in.csv: missing column(s) 'y'; expected columns"),
        (
            "timestamp,value\n2026-01-01T00:00:00Z,1\nyesterday,2\n",
            "in.csv line 3, column 'timestamp': 'yesterday' is not an ISO 8601 timestamp",
        ),
        (
            "unique_id,ds,y\na,2026-01-01T00:00:00Z,1\na,2026-01-01T01:00:00Z,abc\n",
            "in.csv line 3, column 'y': 'abc' is not a finite number",
        ),
        ("timestamp,value\n2026-01-01T00:00:00Z,\n", "line 2, column 'value': '' is not a finite number"),
    ],
)
def test_bad_files_are_refused_naming_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "in.csv").write_text(text)
    with pytest.raises(SeriesFileError) as caught:
        read_series(tmp_path / "in.csv")
    assert message in str(caught.value)


def test_repeated_and_out_of_order_rows_are_taken_one_point_per_timestamp(tmp_path: Path) -> None:
    """The same instant twice (an offset spelling of 00:00), a retried row, and rows out of order."""
    (tmp_path / "in.csv").write_text(
        "unique_id,ds,y\n"
        "a,2026-01-01T02:00:00Z,5\n"
        "a,2026-01-01T00:00:00Z,1\n"
        "a,2026-01-01T01:00:00+01:00,3\n"
        "a,2026-01-01T01:00:00Z,2\n"
        "a,2026-01-01T01:00:00Z,2\n"
        "b,2026-01-01T00:00:00Z,7\n"
    )
    parsed = read_series(tmp_path / "in.csv")
    assert len(parsed.frame) == 6 and parsed.frame["row"].tolist() == list(range(6))
    assert parsed.points.values.tolist() == [
        ["a", pd.Timestamp("2026-01-01 00:00"), 2.0],
        ["a", pd.Timestamp("2026-01-01 01:00"), 2.0],
        ["a", pd.Timestamp("2026-01-01 02:00"), 5.0],
        ["b", pd.Timestamp("2026-01-01 00:00"), 7.0],
    ]
    assert parsed.repeats.warning() == (
        "1 series: 4 rows at 2 repeated timestamps merged into one row each (gauges: mean; 1 exact repeat), "
        "e.g. a at 2026-01-01 00:00:00; 1 row out of order put in time order"
    )
