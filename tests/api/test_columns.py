"""The payload builder every protocol shares, driven directly: its work per item, limits and cache."""

from __future__ import annotations

from datetime import UTC, datetime

from intentvision_dagster.api.protocols.columns import ColumnBuilder, Limits

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def _builder(**limits) -> ColumnBuilder:
    return ColumnBuilder("acme", Limits(max_points=100_000, now=NOW, **limits), "series")


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


def test_a_sample_repeated_by_a_later_item_names_the_first_one():
    builder = _builder()
    raw = lambda i: (NOW_MS - 1000, 1.0)  # noqa: E731
    for index in range(500):
        builder.add_item(index, "node_cpu", (), [NOW_MS - (600 - index) * 1000], [1.0], raw)
    builder.add_item(500, "node_cpu", (), [NOW_MS - 5000, NOW_MS - 590_000], [1.0, 2.0], raw)
    [problem] = builder.out.problems
    assert (problem.index, problem.field) == (500, "series[500].points[1].timestamp")
    assert problem.problem == "duplicate sample of this series, as series[10].points[0]"
    assert len(builder.out.value) == 500
