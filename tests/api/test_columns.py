"""The payload builder every protocol shares, driven directly: its work per item, limits and cache."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from intentvision_dagster.api.protocols import columns
from intentvision_dagster.api.protocols.columns import ColumnBuilder, IdentityCache, Limits
from intentvision_dagster.settings import load_settings

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def _builder() -> ColumnBuilder:
    return ColumnBuilder("acme", Limits.for_settings(load_settings({}), NOW), "series")


def _never_read(position: int) -> tuple[object, object]:
    raise AssertionError(f"the raw point {position} of a clean item was read: the slow path ran")


def test_items_repeating_one_series_are_all_kept_without_the_per_point_slow_path():
    """Thousands of one-sample items of one series (remote_write's usual shape) stay on the fast path:
    the slow path re-read the raw points of every earlier item of the series, per item."""
    builder = _builder()
    items = 3000
    for index in range(items):
        stamp = NOW_MS - (items - index) * 1000
        builder.add_item(index, "node_cpu", (("host", "web-1"),), [stamp], [float(index)], _never_read)
    out = builder.out
    assert (out.items, len(out.value), out.problems) == (items, items, [])
    assert out.value[-1] == items - 1
    assert set(out.unique_id) == {'acme/node_cpu{host="web-1"}'}


def test_a_sample_repeated_by_a_later_item_is_kept_and_merged_by_kind():
    builder = _builder()
    for index in range(500):
        builder.add_item(index, "node_cpu", (), [NOW_MS - (600 - index) * 1000], [1.0], _never_read)
    assert not builder.out.needs_merge
    builder.add_item(500, "node_cpu", (), [NOW_MS - 5000, NOW_MS - 590_000], [1.0, 3.0], _never_read)
    out = builder.out
    assert (out.problems, len(out.value), out.needs_merge) == ([], 502, True)
    repeats = out.repeats(lambda metric: "gauge")
    assert len(out.value) == 502, "the columns stay as sent; validation merges"
    assert repeats.warning() == (
        "1 series: 2 rows at 1 repeated timestamp merged into one row each (gauges: mean; 0 exact repeats), "
        "e.g. acme/node_cpu at 2026-11-27 05:50:10; 1 row out of order put in time order"
    )


def test_the_identity_cache_is_bounded_in_bytes_of_label_text(monkeypatch):
    """Long label values used to stay in the cache for the life of the process (500,000 entries of any
    size): 20 requests of 95 series with 100 KB values grew the API by 600 MB."""
    cache = IdentityCache(max_bytes=1_000_000)
    monkeypatch.setattr(columns, "_IDENTITIES", cache)
    settings = replace(load_settings({}), api_max_label_value_bytes=100_000)
    builder = ColumnBuilder("acme", Limits.for_settings(settings, NOW), "series")
    for index in range(100):
        labels = (("host", f"web-{index}-" + "x" * 90_000),)
        builder.add_item(index, "node_cpu", labels, [NOW_MS - 1000], [1.0], _never_read)
    assert len(builder.out.value) == 100, builder.out.problems[:1]
    assert 0 < cache.bytes <= cache.max_bytes
    assert len(cache) < 10


def test_an_identity_larger_than_the_whole_cache_is_not_kept():
    cache = IdentityCache(max_bytes=1000)
    cache.put(("k",), ("x" * 1000, "y"))
    assert (cache.bytes, cache.get(("k",))) == (0, None)
