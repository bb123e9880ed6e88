"""Shared chart pieces: panel titles name the series' labels, time axes in UTC whose tick labels never
collide, the unit on the y axis (bytes in IEC units)."""

import itertools

import pandas as pd
import pytest

from intentvision_dagster.plotting import finish, format_axis, grid, iec_bytes, series_title


@pytest.mark.parametrize(
    ("uid", "title"),
    [
        ('acme/node_cpu{host="web-1",mode="idle"}', 'host="web-1",mode="idle"'),
        ("acme/node_cpu", "acme/node_cpu"),
        ("acme/node_cpu{}", "acme/node_cpu{}"),
    ],
)
def test_series_title(uid: str, title: str) -> None:
    assert series_title(uid) == title


@pytest.mark.parametrize("panels", [1, 3])
@pytest.mark.parametrize(
    ("span", "step"),
    [("90min", "1min"), ("7h", "10min"), ("3D", "1h"), ("15D", "1h"), ("35D", "1D"), ("400D", "1D")],
)
def test_time_tick_labels_never_overlap_and_say_utc(panels: int, span: str, step: str) -> None:
    fig, axes = grid(panels)
    ds = pd.date_range("2026-11-27 13:00", periods=int(pd.Timedelta(span) / pd.Timedelta(step)), freq=step)
    for ax in axes[:panels]:
        ax.plot(ds, range(len(ds)), label="actual")
        format_axis(ax, "%")
    finish(fig, axes, [f"acme/m{{i={i}}}" for i in range(panels)], "")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in axes[:panels]:
        labels = [label for label in ax.get_xticklabels() if label.get_visible() and label.get_text()]
        boxes = sorted((label.get_window_extent(renderer) for label in labels), key=lambda box: box.x0)
        assert len(boxes) >= 2, f"{span}: a time axis needs at least two labelled ticks"
        gaps = [right.x0 - left.x1 for left, right in itertools.pairwise(boxes)]
        assert min(gaps) > 0, f"{span}: tick labels overlap ({[label.get_text() for label in labels]})"
        assert ax.get_xlabel() == "time (UTC)" and ax.get_ylabel() == "%"


def test_byte_axes_tick_in_iec_units() -> None:
    assert [iec_bytes(v) for v in (0, 512, 1536, 3 * 1024**3, 2.5 * 1024**4)] == [
        "0 B",
        "512 B",
        "1.5 KiB",
        "3 GiB",
        "2.5 TiB",
    ]
    fig, (ax,) = grid(1)
    ax.plot(pd.date_range("2026-12-01", periods=3, freq="h"), [1e9, 2e9, 3e9])
    format_axis(ax, "bytes")
    fig.canvas.draw()
    assert ax.get_ylabel() == "bytes"
    ticks = [label.get_text() for label in ax.get_yticklabels()]  # round steps of 0.4 GiB
    assert ticks == ["819 MiB", "1.2 GiB", "1.6 GiB", "2 GiB", "2.4 GiB", "2.8 GiB", "3.2 GiB"], (
        "round GiB steps"
    )
