"""The Delta Lake core on a folder and on an S3-compatible server: slices replaced exactly, idempotent reruns,
concurrent writers of disjoint partitions, awkward keys, schema evolution, and reads shaped like the
DuckDB warehouse's."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pandas as pd
import pytest

from intentvision_dagster.lake import (
    PARTITION_COLUMN,
    Lake,
    read_slice,
    s3_storage_options,
    stored_row_count,
    write_slice,
)
from tests.support.s3_server import CREDENTIALS, s3_server


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory) -> str:
    with s3_server(tmp_path_factory.mktemp("moto")) as endpoint:
        yield endpoint


@pytest.fixture(params=["folder", "s3"])
def lake(request, tmp_path) -> Lake:
    if request.param == "folder":
        return Lake(f"file://{tmp_path}/lake")
    endpoint = request.getfixturevalue("s3_endpoint")
    options = s3_storage_options(
        CREDENTIALS["AWS_REGION"],
        endpoint,
        CREDENTIALS["AWS_ACCESS_KEY_ID"],
        CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    return Lake(f"s3://lake/{tmp_path.name}", options)


def series(key: str, points: int = 3, value: float = 1.0) -> pd.DataFrame:
    tenant, metric = key.split("/")
    return pd.DataFrame(
        {
            "unique_id": f'{key}{{host="a"}}',
            "ds": pd.date_range("2026-01-01", periods=points, freq="h"),
            "y": value + pd.Series(range(points), dtype=float),
            "tenant": tenant,
            "metric": metric,
            PARTITION_COLUMN: key,
        }
    )


def test_a_slice_round_trips_with_the_warehouse_dtypes(lake: Lake) -> None:
    written = pd.concat([series("acme/cpu"), series("globex/cpu", value=5.0)], ignore_index=True)
    write_slice(lake, "raw_series", written, ["acme/cpu", "globex/cpu"])

    read = read_slice(lake, "raw_series", ["globex/cpu"])

    expected = written[written[PARTITION_COLUMN] == "globex/cpu"].drop(columns=PARTITION_COLUMN)
    pd.testing.assert_frame_equal(read, expected.reset_index(drop=True))
    assert str(read["ds"].dtype) == "datetime64[ns]"
    assert len(read_slice(lake, "raw_series", None)) == 6
    assert read_slice(lake, "raw_series", ["acme/cpu"], columns=["y"]).columns.tolist() == ["y"]


def test_rewriting_a_range_replaces_exactly_its_slice(lake: Lake) -> None:
    keys = ["acme/cpu", "acme/disk"]
    everything = [*keys, "globex/cpu"]
    write_slice(lake, "forecasts", pd.concat([series(k) for k in everything]), everything)
    again = pd.concat([series(k, value=9.0) for k in keys])
    write_slice(lake, "forecasts", again, keys)
    stored = write_slice(lake, "forecasts", again, keys)  # a rerun of the same range

    assert stored_row_count(stored) == 9
    assert read_slice(lake, "forecasts", keys)["y"].min() == 9.0
    assert read_slice(lake, "forecasts", ["globex/cpu"])["y"].tolist() == [1.0, 2.0, 3.0]
    write_slice(lake, "forecasts", series("acme/cpu", points=1), ["acme/cpu"])
    assert len(read_slice(lake, "forecasts", ["acme/cpu"])) == 1


def test_keys_with_slashes_and_quotes_stay_apart(lake: Lake) -> None:
    odd = ["o'brien/disk", "acme/x'); delete from t; --", "a b/c%d=e"]
    write_slice(lake, "anomalies", pd.concat([series(k) for k in odd]), odd)
    write_slice(lake, "anomalies", series(odd[0], points=1, value=7.0), [odd[0]])

    assert read_slice(lake, "anomalies", [odd[0]])["y"].tolist() == [7.0]
    for key in odd[1:]:
        assert read_slice(lake, "anomalies", [key])["tenant"].tolist() == [key.split("/")[0]] * 3


def test_an_empty_output_clears_its_slice_and_a_missing_table_reads_empty(lake: Lake) -> None:
    assert read_slice(lake, "forecasts", ["acme/cpu"]).shape == (0, 0)  # like the warehouse: no table yet
    assert write_slice(lake, "forecasts", pd.DataFrame(), ["acme/cpu"]) is None

    keys = ["acme/cpu", "acme/disk"]
    write_slice(lake, "forecasts", pd.concat([series(key) for key in keys]), keys)
    stored = write_slice(lake, "forecasts", pd.DataFrame(), ["acme/cpu"])

    assert stored_row_count(stored) == 3
    empty = read_slice(lake, "forecasts", ["acme/cpu"])
    assert empty.empty and empty.columns.tolist() == ["unique_id", "ds", "y", "tenant", "metric"]


def test_an_asset_that_gains_a_column_keeps_its_older_rows(lake: Lake) -> None:
    write_slice(lake, "forecast_accuracy", series("acme/cpu"), ["acme/cpu"])
    newer = series("acme/disk").assign(candidate_scores='{"MSTL": 0.8}', note=None)
    write_slice(lake, "forecast_accuracy", newer, ["acme/disk"])

    both = read_slice(lake, "forecast_accuracy", None).sort_values("metric", ignore_index=True)
    assert both.columns.tolist()[-2:] == ["candidate_scores", "note"]
    assert both["candidate_scores"].isna().tolist() == [True] * 3 + [False] * 3
    assert both["note"].isna().all()


def test_rows_outside_the_written_partitions_are_refused(lake: Lake) -> None:
    with pytest.raises(ValueError, match=r"outside this write: \['globex/cpu'\]"):
        write_slice(lake, "forecasts", series("globex/cpu"), ["acme/cpu"])
    assert read_slice(lake, "forecasts", None).empty


def _write_rounds(uri: str, options: dict[str, str], key: str, rounds: int, start) -> None:
    """One writer process: wait for the others, then replace its own partition of the shared table ``rounds``
    times (the first round creates the table, racing the other writers)."""
    lake = Lake(uri, options)
    start.wait()
    for round_ in range(rounds):
        write_slice(lake, "forecasts", series(key, points=4, value=float(round_)), [key])


@pytest.mark.slow  # four spawned interpreters per store
def test_processes_writing_disjoint_partitions_all_commit(lake: Lake) -> None:
    keys = ["acme/cpu", "globex/cpu", "initech/cpu", "o'brien/cpu"]
    rounds = 3
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(len(keys))
    writers = [
        spawn.Process(target=_write_rounds, args=(lake.uri, dict(lake.storage_options), key, rounds, start))
        for key in keys
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert [writer.exitcode for writer in writers] == [0] * len(keys)

    stored = read_slice(lake, "forecasts", None)
    assert sorted(stored["tenant"].unique()) == sorted(key.split("/")[0] for key in keys)
    assert stored.groupby("tenant")["y"].min().tolist() == [float(rounds - 1)] * len(keys)  # last rounds
    assert len(stored) == stored_row_count(lake.table("forecasts")) == 4 * len(keys)


def test_s3_options_allow_plain_http_only_for_an_http_endpoint() -> None:
    assert s3_storage_options("eu-west-1", "http://127.0.0.1:9000")["AWS_ALLOW_HTTP"] == "true"
    assert "AWS_ALLOW_HTTP" not in s3_storage_options("eu-west-1", "https://s3.example.com")
    assert s3_storage_options() == {}


def test_lake_tables_live_under_the_root(tmp_path: Path) -> None:
    assert Lake(f"file://{tmp_path}/lake/").table_uri("forecasts") == f"file://{tmp_path}/lake/forecasts"
