"""What every PNG chart shares: the panel grid, axis format, legend and title, and Markdown inlining.

Each domain draws its own chart (``forecasting/plots.py``, ``anomalies/plots.py``) on these pieces. A bare
``Figure`` renders with the Agg canvas and never touches pyplot's global state or the process-wide backend,
so charts are safe in threads and sensors.
"""

from __future__ import annotations

import base64
import io
import math

import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

SEVERITY_COLORS = {"info": "#9e9e9e", "warning": "#ff9800", "critical": "#d32f2f"}


def png_markdown(png: bytes, alt: str) -> str:
    """A PNG inlined as Markdown, the form the Dagster UI renders in asset metadata."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def series_title(unique_id: str) -> str:
    """The labels part of ``tenant/metric{labels}`` (the whole id when it has no labels)."""
    start, end = unique_id.find("{"), unique_id.rfind("}")
    return unique_id[start + 1 : end] if 0 <= start < end and end > start + 1 else unique_id


def format_axis(ax: Axes) -> None:
    ax.xaxis.set_major_locator(mdates.AutoDateLocator())
    # Plain month-day ticks: ConciseDateFormatter's offset label names the month of the last tick, which reads
    # as if the whole panel were in that month.
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    ax.grid(alpha=0.3)


def grid(panels: int) -> tuple[Figure, list[Axes]]:
    ncols = 1 if panels <= 2 else 2
    nrows = max(1, math.ceil(panels / ncols))
    fig = Figure(figsize=(6.5 * ncols, 2.8 * nrows), layout="constrained")
    return fig, list(fig.subplots(nrows, ncols, squeeze=False).ravel())


def render(fig: Figure, axes: list[Axes], chosen: list[str], empty_text: str) -> bytes:
    """Shared legend and title (the common tenant/metric prefix), then the PNG bytes."""
    for ax in axes[len(chosen) :]:
        ax.set_axis_off()
    if chosen:
        entries = {
            label: handle
            for ax in axes
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True)
        }
        fig.legend(
            entries.values(), entries.keys(), loc="outside lower center", ncols=len(entries), fontsize=8
        )
        prefix = chosen[0].split("{", 1)[0]
        fig.suptitle(prefix if all(uid.startswith(prefix) for uid in chosen) else "series", fontsize=11)
    else:
        axes[0].text(0.5, 0.5, empty_text, ha="center", va="center", transform=axes[0].transAxes)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()
