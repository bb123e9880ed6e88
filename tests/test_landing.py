from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from intentvision_dagster.landing import (
    BATCH_ID_PATTERN,
    MULTI_METRIC_FILE,
    land_batch,
    land_columns,
    list_batches,
    new_batch_id,
    read_landed,
    read_landed_many,
    remove_stale_tmp,
    unseen_batches,
)
from intentvision_dagster.series import SERIES_COLUMNS, unique_id


def series(tenant: str, metric: str, host: str, hours: list[int], values: list[float]) -> pd.DataFrame:
    labels = f'host="{host}"'
    return pd.DataFrame(
        {
            "tenant": tenant,
            "metric": metric,
            "labels": labels,
            "unique_id": unique_id(tenant, metric, labels),
            "ds": pd.Timestamp("2024-03-01") + pd.to_timedelta(hours, unit="h"),
            "y": [float(v) for v in values],
        }
    )[SERIES_COLUMNS]


def test_batch_is_visible_complete_and_tmp_leftovers_are_ignored(tmp_path: Path) -> None:
    frame = pd.concat([series("acme", "cpu", "a", [0, 1], [1, 2]), series("acme", "mem", "a", [0], [5])])
    leftover = tmp_path / "acme" / ".tmp-20990101T000000000000Z-deadbeef"
    leftover.mkdir(parents=True)
    (leftover / "cpu.parquet").write_bytes(b"half written")

    batch = land_batch(frame, tmp_path, "acme")

    assert BATCH_ID_PATTERN.match(batch.batch_id)
    assert batch.path == tmp_path / "acme" / batch.batch_id
    assert (batch.metrics, batch.rows, batch.tenant) == (["cpu", "mem"], 3, "acme")
    assert sorted(p.name for p in batch.path.iterdir()) == ["cpu.parquet", "mem.parquet"]
    assert not [p for p in (tmp_path / "acme").iterdir() if p.name.startswith(".tmp-") and p != leftover]
    assert list_batches(tmp_path) == [batch]
    assert read_landed(tmp_path, "acme", "cpu")["y"].tolist() == [1.0, 2.0]


def test_list_batches_sorts_by_batch_id_and_skips_seen_ones(tmp_path: Path) -> None:
    first = land_batch(series("beta", "cpu", "a", [0], [1]), tmp_path, "beta")
    second = land_batch(series("acme", "cpu", "a", [0], [1]), tmp_path, "acme")
    third = land_batch(series("beta", "mem", "a", [0, 1], [1, 2]), tmp_path, "beta")

    assert [b.batch_id for b in list_batches(tmp_path)] == [first.batch_id, second.batch_id, third.batch_id]
    assert list_batches(tmp_path, after=first.batch_id) == [second, third]
    assert list_batches(tmp_path / "nothing-here") == []


def test_read_landed_merges_batches_newest_wins_keeping_its_repeats_for_validation(tmp_path: Path) -> None:
    land_batch(series("acme", "cpu", "a", [0, 1, 2], [1, 2, 3]), tmp_path, "acme")
    land_batch(series("acme", "cpu", "a", [2, 3], [30, 40]), tmp_path, "acme")
    land_batch(
        pd.concat([series("acme", "cpu", "b", [0], [7]), series("acme", "cpu", "a", [1, 1], [20, 21])]),
        tmp_path,
        "acme",
    )

    merged = read_landed(tmp_path, "acme", "cpu")

    assert list(merged.columns) == SERIES_COLUMNS
    assert merged["ds"].dtype == "datetime64[ns]" and merged["y"].dtype == "float64"
    assert [
        (uid[-3:-2], ds.hour, y) for uid, ds, y in zip(merged.unique_id, merged.ds, merged.y, strict=True)
    ] == [
        ("a", 0, 1.0),
        ("a", 1, 20.0),
        ("a", 1, 21.0),
        ("a", 2, 30.0),
        ("a", 3, 40.0),
        ("b", 0, 7.0),
    ]


def test_read_landed_is_isolated_per_tenant_and_metric(tmp_path: Path) -> None:
    land_batch(series("acme", "cpu", "a", [0], [1]), tmp_path, "acme")
    land_batch(series("beta", "cpu", "a", [0], [99]), tmp_path, "beta")
    land_batch(series("acme", "mem", "a", [0], [5]), tmp_path, "acme")

    acme_cpu = read_landed(tmp_path, "acme", "cpu")
    both = read_landed_many(tmp_path, [("acme", "cpu"), ("beta", "cpu")])

    assert acme_cpu[["tenant", "metric", "y"]].values.tolist() == [["acme", "cpu", 1.0]]
    assert both[["tenant", "y"]].values.tolist() == [["acme", 1.0], ["beta", 99.0]]
    assert read_landed(tmp_path, "gamma", "cpu").empty
    assert list(read_landed(tmp_path, "gamma", "cpu").columns) == SERIES_COLUMNS
    with pytest.raises(ValueError, match="is not a valid tenant id"):
        read_landed(tmp_path, "../beta", "cpu")
    with pytest.raises(ValueError, match="is not a valid metric name"):
        read_landed(tmp_path, "acme", "*")


def test_land_batch_refuses_foreign_rows_and_bad_input(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"tenant 'acme': the frame holds rows of other tenant\(s\) \['beta'\]"
    ):
        land_batch(series("beta", "cpu", "a", [0], [1]), tmp_path, "acme")
    with pytest.raises(ValueError, match="is not a valid tenant id"):
        land_batch(series("acme", "cpu", "a", [0], [1]), tmp_path, "../acme")
    with pytest.raises(ValueError, match="nothing to land"):
        land_batch(series("acme", "cpu", "a", [], []), tmp_path, "acme")
    with pytest.raises(ValueError, match="is not a valid metric name"):
        land_batch(series("acme", "cpu", "a", [0], [1]).assign(metric="../cpu"), tmp_path, "acme")
    assert list_batches(tmp_path) == []
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_a_batch_that_becomes_visible_late_is_still_reported_once(tmp_path: Path) -> None:
    """Ids are taken when a write starts: an earlier id renamed after a later one must not be skipped."""
    later = land_batch(series("acme", "cpu", "a", [0], [1]), tmp_path, "acme")
    reported, cursor = unseen_batches(tmp_path, None)
    assert reported == [later]

    slow = land_batch(series("acme", "mem", "a", [0], [2]), tmp_path, "acme")
    slow_id = new_batch_id(
        datetime.now(UTC) - timedelta(minutes=2)
    )  # began before `later`, finished after it
    slow.path.rename(tmp_path / "acme" / slow_id)
    reported, cursor = unseen_batches(tmp_path, cursor)
    assert [b.batch_id for b in reported] == [slow_id] and slow_id < later.batch_id
    assert unseen_batches(tmp_path, cursor) == ([], cursor)


def test_half_written_batches_older_than_an_hour_are_removed(tmp_path: Path) -> None:
    landed = land_batch(series("acme", "cpu", "a", [0], [1]), tmp_path, "acme")
    old = tmp_path / "acme" / ".tmp-20260101T000000000000Z-deadbeef"
    fresh = tmp_path / "acme" / ".tmp-20260101T000000000001Z-cafef00d"
    for leftover in (old, fresh):
        leftover.mkdir()
        (leftover / "cpu.parquet").write_bytes(b"half written")
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    os.utime(old, (two_hours_ago, two_hours_ago))

    assert remove_stale_tmp(tmp_path) == [old]
    assert not old.exists() and fresh.exists() and landed.path.exists()


def test_land_columns_writes_one_file_for_many_metrics_that_merges_with_file_batches(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    older = land_batch(series("acme", "cpu", "web-1", [0, 1], [1.0, 2.0]), landing, "acme")
    stamp = int(datetime(2024, 3, 1, 1, tzinfo=UTC).timestamp() * 1000)
    newer = land_columns(
        landing,
        "acme",
        metric=["cpu", "mem", "mem"],
        labels=['host="web-1"', 'host="web-1"', 'host="web-2"'],
        unique_ids=[
            unique_id("acme", m, lab)
            for m, lab in [("cpu", 'host="web-1"'), ("mem", 'host="web-1"'), ("mem", 'host="web-2"')]
        ],
        timestamp_ms=[stamp, stamp, stamp],
        value=[20.0, 5.0, 6.0],
    )
    assert [p.name for p in newer.path.iterdir()] == [MULTI_METRIC_FILE]
    assert (newer.metrics, newer.rows) == (["cpu", "mem"], 3)
    listed = list_batches(landing)
    assert [(b.batch_id, b.metrics, b.rows) for b in listed] == [
        (older.batch_id, ["cpu"], 2),
        (newer.batch_id, ["cpu", "mem"], 3),
    ]
    cpu = read_landed(landing, "acme", "cpu")
    assert cpu["y"].tolist() == [1.0, 20.0]  # the newer batch wins at 01:00
    assert cpu["ds"].tolist() == [pd.Timestamp("2024-03-01 00:00"), pd.Timestamp("2024-03-01 01:00")]
    assert read_landed(landing, "acme", "mem")["y"].tolist() == [5.0, 6.0]
    assert read_landed(landing, "globex", "mem").empty
    with pytest.raises(ValueError, match="nothing to land"):
        land_columns(landing, "acme", [], [], [], [], [])
