from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from intentvision_dagster.ingest.files import IngestFileError, read_metric_file
from intentvision_dagster.series import SERIES_COLUMNS

GOOD_CSV = """timestamp,metric,labels,value
2024-03-01T00:00:00Z,node_cpu_utilization_percent,"host=web-1,az=eu-1",12.5

2024-03-01T02:00:00+01:00,node_cpu_utilization_percent,"{""host"": ""web-2""}",nan
2024-03-01 02:00:00,node_cpu_utilization_percent,host=web-1,inf
1709254800,http_requests_per_second,,7
"""


def write(tmp_path: Path, text: str, name: str = "metrics.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def refusal(path: Path, tenant: str = "acme") -> str:
    with pytest.raises(IngestFileError) as caught:
        read_metric_file(path, tenant)
    return str(caught.value)


def test_good_csv_lands_as_canonical_series(tmp_path: Path) -> None:
    frame = read_metric_file(write(tmp_path, GOOD_CSV), "acme")

    assert list(frame.columns) == SERIES_COLUMNS
    assert frame["ds"].dtype == "datetime64[ns]" and frame["y"].dtype == "float64"
    rows = {(r.unique_id, r.ds.isoformat()): r.y for r in frame.itertuples()}
    cpu = "acme/node_cpu_utilization_percent"
    assert set(rows) == {
        (f'{cpu}{{az="eu-1",host="web-1"}}', "2024-03-01T00:00:00"),
        (f'{cpu}{{host="web-1"}}', "2024-03-01T02:00:00"),
        (f'{cpu}{{host="web-2"}}', "2024-03-01T01:00:00"),
        ("acme/http_requests_per_second", "2024-03-01T01:00:00"),
    }
    assert rows[(f'{cpu}{{az="eu-1",host="web-1"}}', "2024-03-01T00:00:00")] == 12.5
    assert math.isnan(rows[(f'{cpu}{{host="web-2"}}', "2024-03-01T01:00:00")])
    assert rows[(f'{cpu}{{host="web-1"}}', "2024-03-01T02:00:00")] == math.inf
    assert rows[("acme/http_requests_per_second", "2024-03-01T01:00:00")] == 7.0
    assert set(frame["labels"]) == {'az="eu-1",host="web-1"', 'host="web-1"', 'host="web-2"', ""}
    assert set(frame["tenant"]) == {"acme"}


def test_parquet_with_typed_columns_round_trips(tmp_path: Path) -> None:
    stamps = pd.to_datetime(["2024-03-01T01:00:00+01:00", "2024-03-01T02:00:00+01:00"], utc=True)
    table = pa.table(
        {
            "timestamp": pa.array(stamps).cast(pa.timestamp("us", tz="Europe/Paris")),
            "metric": ["container_memory_working_set_bytes"] * 2,
            "labels": pa.array(
                [[("pod", "api-0")], [("pod", "api-1"), ("ns", "prod")]], pa.map_(pa.string(), pa.string())
            ),
            "value": pa.array([1.5e9, float("nan")]),
        }
    )
    path = tmp_path / "memory.parquet"
    pq.write_table(table, path)

    frame = read_metric_file(path, "acme")

    assert frame["ds"].dtype == "datetime64[ns]"
    assert frame[["labels", "ds"]].to_dict("records") == [
        {"labels": 'pod="api-0"', "ds": pd.Timestamp("2024-03-01T00:00:00")},
        {"labels": 'ns="prod",pod="api-1"', "ds": pd.Timestamp("2024-03-01T01:00:00")},
    ], "file order: ingest sorts when it merges repeats"
    assert frame["unique_id"].iloc[0] == 'acme/container_memory_working_set_bytes{pod="api-0"}'
    assert frame["y"].iloc[0] == 1.5e9 and math.isnan(frame["y"].iloc[1])


def test_csv_and_parquet_of_the_same_rows_agree(tmp_path: Path) -> None:
    from_csv = read_metric_file(write(tmp_path, GOOD_CSV), "acme")
    raw = pd.read_csv(tmp_path / "metrics.csv", dtype=str, keep_default_na=False)
    pq.write_table(pa.Table.from_pandas(raw, preserve_index=False), tmp_path / "metrics.parquet")

    pd.testing.assert_frame_equal(read_metric_file(tmp_path / "metrics.parquet", "acme"), from_csv)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "2024-03-01T00:00:00Z,node_cpu,,abc",
            "metrics.csv line 4, column 'value': 'abc' is not a number",
        ),
        (
            "2024-03-01T00:00:00Z,node_cpu,,",
            "metrics.csv line 4, column 'value': the value is empty",
        ),
        (
            "yesterday,node_cpu,,1",
            "metrics.csv line 4, column 'timestamp': 'yesterday' is not an ISO-8601 timestamp",
        ),
        (
            "1709254800000,node_cpu,,1",
            "metrics.csv line 4, column 'timestamp': '1709254800000' is out of range for epoch seconds",
        ),
        (
            "2024-03-01T00:00:00Z,node-cpu,,1",
            "metrics.csv line 4, column 'metric': metric 'node-cpu' is not a valid metric name",
        ),
        (
            "2024-03-01T00:00:00Z,node_cpu,1host=a,1",
            "metrics.csv line 4, column 'labels': label name '1host' is not valid",
        ),
        (
            '2024-03-01T00:00:00Z,node_cpu,"{""host"": ",1',
            "metrics.csv line 4, column 'labels': labels '{\"host\":' is not a valid JSON object",
        ),
    ],
)
def test_bad_cell_is_refused_with_line_and_column(tmp_path: Path, line: str, expected: str) -> None:
    text = f"timestamp,metric,labels,value\n2024-03-01T00:00:00Z,node_cpu,,1\n\n{line}\n"

    message = refusal(write(tmp_path, text))

    assert message.startswith(expected)


def test_up_to_five_problems_are_reported_at_once(tmp_path: Path) -> None:
    bad = "\n".join(f"2024-03-01T0{i}:00:00Z,node_cpu,,x{i}" for i in range(7))
    message = refusal(write(tmp_path, f"timestamp,metric,labels,value\n{bad}\n"))

    assert message.startswith("metrics.csv: 7 problems (showing the first 5):")
    assert "metrics.csv line 2, column 'value': 'x0' is not a number" in message
    assert "metrics.csv line 6, column 'value': 'x4' is not a number" in message
    assert "'x5'" not in message


def test_line_numbers_follow_multiline_quoted_cells(tmp_path: Path) -> None:
    text = (
        'timestamp,metric,labels,value\n2024-03-01,node_cpu,"host=a,\nzone=b",1\n2024-03-02,node_cpu,,oops\n'
    )

    assert refusal(write(tmp_path, text)) == "metrics.csv line 4, column 'value': 'oops' is not a number"


def test_parquet_problems_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    pq.write_table(
        pa.table({"timestamp": ["2024-03-01", "2024-03-02"], "metric": ["m", "m"], "value": ["1", "?"]}), path
    )

    assert refusal(path) == "m.parquet row 1, column 'value': '?' is not a number"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "metrics.csv: the file is empty"),
        ("timestamp,metric,labels,value\n", "metrics.csv: the file has a header but no data rows"),
        ("timestamp,labels,value\n2024-03-01,,1\n", "metrics.csv: missing required column(s) 'metric'"),
        ("timestamp,metric,value,host\n2024-03-01,m,1,a\n", "metrics.csv: unknown column(s) 'host'"),
    ],
)
def test_bad_file_shape_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    assert refusal(write(tmp_path, text)).startswith(expected)


def test_unknown_extension_and_bad_tenant_are_refused(tmp_path: Path) -> None:
    assert refusal(write(tmp_path, GOOD_CSV, "metrics.json")).startswith(
        "metrics.json: unsupported file type '.json'; use .csv or .parquet"
    )
    assert "tenant 'Acme Corp' is not a valid tenant id" in refusal(write(tmp_path, GOOD_CSV), "Acme Corp")
