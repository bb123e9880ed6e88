"""What every PNG chart shares: the panel grid, axes in UTC and the metric's unit, the lines and markers the
alert rules put on a series, the legend and title, and Markdown inlining.

Each domain draws its own chart (``forecasting/plots.py``, ``anomalies/plots.py``) on these pieces. The
rules' marks arrive as plain data (:mod:`~intentvision_dagster.chart_marks`, built by alerting's
``AlertRules.marks``), so no domain reads another's configuration. A bare ``Figure`` renders with the Agg
canvas and never touches pyplot's global state or the process-wide backend, so charts are safe in threads
and sensors.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import ParamSpec

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from intentvision_dagster.chart_marks import SeriesMarks

P = ParamSpec("P")
SEVERITY_COLORS = {"info": "#9e9e9e", "warning": "#ff9800", "critical": "#d32f2f"}
LINE_COLORS = {**SEVERITY_COLORS, "budget": "#6a1b9a"}
"""Threshold lines by severity; a budget line in its own colour (it is a spending pace, not a severity)."""
TIME_FORMAT = "%b %d %H:%M"
MAX_TIME_TICKS = 5
"""A ``TIME_FORMAT`` label is about 70 px wide at the tick font: five fit a 6.5-inch panel, not touching."""
CROSSING_LABEL = "expected crossing (80% interval)"
_TICK_STEPS = tuple(
    pd.Timedelta(step)
    for step in (
        *("1min", "2min", "5min", "10min", "15min", "30min", "1h", "2h", "3h", "6h", "12h"),
        *("1D", "2D", "4D", "7D", "14D", "28D", "56D", "91D", "182D", "364D"),
    )
)
_IEC_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def png_markdown(png: bytes, alt: str) -> str:
    """A PNG inlined as Markdown, the form the Dagster UI renders in asset metadata."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def series_title(unique_id: str) -> str:
    """The labels part of ``tenant/metric{labels}`` (the whole id when it has no labels)."""
    start, end = unique_id.find("{"), unique_id.rfind("}")
    return unique_id[start + 1 : end] if 0 <= start < end and end > start + 1 else unique_id


def _iec_exponent(value: float) -> int:
    return 0 if value == 0 else min(max(int(math.log(abs(value), 1024)), 0), len(_IEC_UNITS) - 1)


def iec_bytes(value: float, _position: object = None) -> str:
    """``1.5 GiB`` rather than ``1610612736``: byte ticks a person reads without counting digits."""
    exponent = _iec_exponent(value)
    return f"{value / 1024**exponent:.3g} {_IEC_UNITS[exponent]}"


class IecLocator(MaxNLocator):
    """Round ticks in the axis' binary unit (0.5, 1, 1.5 GiB), not round decimal byte counts (954 MiB)."""

    def tick_values(self, vmin: float, vmax: float) -> np.ndarray:
        scale = 1024 ** _iec_exponent(max(abs(vmin), abs(vmax)))
        return super().tick_values(vmin / scale, vmax / scale) * scale


class EvenTimeLocator(mdates.DateLocator):
    """Fewer than :data:`MAX_TIME_TICKS` ticks at the finest round step, evenly spaced.

    Matplotlib's ``AutoDateLocator`` restarts multi-day steps on each month's 1st, which puts two labels a
    day or two apart around a month's end (Nov 29, Dec 01): they collide at this label width.
    """

    def __call__(self) -> list[float]:
        return self.tick_values(*self.viewlim_to_dt())

    def tick_values(self, vmin: datetime, vmax: datetime) -> list[float]:
        start, end = (pd.Timestamp(value).tz_localize(None) for value in (vmin, vmax))
        step = next((step for step in _TICK_STEPS if (end - start) / step < MAX_TIME_TICKS), _TICK_STEPS[-1])
        ticks = pd.date_range(start.ceil(step), end, freq=step)
        return list(mdates.date2num(ticks.to_numpy()))


def format_axis(ax: Axes, unit: str = "") -> None:
    """UTC dates on x (:class:`EvenTimeLocator`, so labels never collide), the unit on y."""
    ax.xaxis.set_major_locator(EvenTimeLocator())
    # Plain labels: ConciseDateFormatter's offset label names the month of the last tick, which reads as if
    # the whole panel were in that month.
    ax.xaxis.set_major_formatter(mdates.DateFormatter(TIME_FORMAT))
    ax.tick_params(labelsize=8)
    ax.set_xlabel("time (UTC)", fontsize=8)
    if unit == "bytes":
        ax.yaxis.set_major_locator(IecLocator(nbins=6))
        ax.yaxis.set_major_formatter(FuncFormatter(iec_bytes))
    ax.set_ylabel(unit, fontsize=8)
    ax.grid(alpha=0.3)


def draw_marks(ax: Axes, marks: SeriesMarks, now: pd.Timestamp | None) -> None:
    """The rules' threshold and budget lines, a dashed "now" line, and each expected crossing as a marker on
    its line with a horizontal bar over the crossing's interval."""
    for line in marks.lines:
        ax.axhline(
            line.value,
            color=LINE_COLORS.get(line.kind, "black"),
            linestyle="--" if line.kind != "budget" else "-.",
            linewidth=1.1,
            label=line.label,
        )
    if now is not None:
        ax.axvline(now, color="#424242", linestyle="--", linewidth=1.0, label="now")
        ax.annotate(
            "now",
            (now, 0),
            xycoords=("data", "axes fraction"),
            xytext=(2, 3),
            textcoords="offset points",
            fontsize=7,
        )
    for crossing in marks.crossings:
        ax.errorbar(
            [crossing.ds],
            [crossing.value],
            xerr=[[crossing.ds - crossing.lo], [crossing.hi - crossing.ds]],
            fmt="D",
            color="#212121",
            markersize=6,
            capsize=4,
            linewidth=1.4,
            zorder=6,
            label=CROSSING_LABEL,
        )
        ax.annotate(
            crossing.note,
            (crossing.ds, crossing.value),
            xytext=(0, 7),
            textcoords="offset points",
            ha="center",
            fontsize=7,
        )


def grid(panels: int) -> tuple[Figure, list[Axes]]:
    ncols = 1 if panels <= 2 else 2
    nrows = max(1, math.ceil(panels / ncols))
    fig = Figure(figsize=(6.5 * ncols, 3.0 * nrows), layout="constrained")
    FigureCanvasAgg(fig)  # so tests and callers can draw and measure the figure before it is saved
    return fig, list(fig.subplots(nrows, ncols, squeeze=False).ravel())


def finish(fig: Figure, axes: Sequence[Axes], chosen: Sequence[str], empty_text: str) -> Figure:
    """Shared legend and title (the common tenant/metric prefix); unused panels hidden."""
    for ax in axes[len(chosen) :]:
        ax.set_axis_off()
    if chosen:
        entries = {
            label: handle
            for ax in axes
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True)
        }
        columns = min(len(entries), 5)
        fig.legend(entries.values(), entries.keys(), loc="outside lower center", ncols=columns, fontsize=8)
        prefix = chosen[0].split("{", 1)[0]
        fig.suptitle(prefix if all(uid.startswith(prefix) for uid in chosen) else "series", fontsize=11)
    else:
        axes[0].text(0.5, 0.5, empty_text, ha="center", va="center", transform=axes[0].transAxes)
    return fig


def figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def as_png(draw: Callable[P, Figure]) -> Callable[P, bytes]:
    """The PNG form of a chart function, same arguments: tests inspect the Figure, callers send bytes."""

    def png(*args: P.args, **kwargs: P.kwargs) -> bytes:
        return figure_png(draw(*args, **kwargs))

    png.__doc__ = f"PNG bytes of :func:`{draw.__name__}`: {draw.__doc__}"
    return png
