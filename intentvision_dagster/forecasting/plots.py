"""PNG chart of forecasts for alerts and reports: actuals, forecast, 80/95% bands, anomalies, threshold."""

from __future__ import annotations

import base64
import io
import math

import matplotlib.dates as mdates
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

_HISTORY_MULTIPLE = 4
"""Without ``history_points``, show four times the forecast length of actuals: context, still readable."""


def png_markdown(png: bytes, alt: str) -> str:
    """A PNG inlined as Markdown, the form the Dagster UI renders in asset metadata."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def series_title(unique_id: str) -> str:
    """The labels part of ``tenant/metric{labels}`` (the whole id when it has no labels)."""
    start, end = unique_id.find("{"), unique_id.rfind("}")
    return unique_id[start + 1 : end] if 0 <= start < end and end > start + 1 else unique_id


def _levels(forecast: pd.DataFrame) -> list[int]:
    return sorted(int(column[3:]) for column in forecast.columns if column.startswith("lo_"))


def pick_series(forecast: pd.DataFrame, max_series: int) -> list[str]:
    """The series whose forecast reaches highest (widest upper band), ties broken by unique_id."""
    levels = _levels(forecast)
    top = f"hi_{levels[-1]}" if levels else "yhat"
    peaks = forecast.groupby("unique_id")[top].max().reset_index()
    peaks = peaks.sort_values([top, "unique_id"], ascending=[False, True], na_position="last")
    return peaks["unique_id"].head(max_series).tolist()


def _draw_panel(
    ax: Axes,
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    anomalies: pd.DataFrame | None,
    threshold: float | None,
) -> None:
    ax.plot(history["ds"], history["y"], color="#1f77b4", linewidth=1.0, label="actual")
    levels = _levels(forecast)
    for rank, level in enumerate(reversed(levels)):
        ax.fill_between(
            forecast["ds"],
            forecast[f"lo_{level}"],
            forecast[f"hi_{level}"],
            color="#ff7f0e",
            alpha=0.15 + 0.15 * rank,
            linewidth=0,
            label=f"{level}% interval",
        )
    ax.plot(forecast["ds"], forecast["yhat"], color="#d95f02", linewidth=1.4, label="forecast")
    if anomalies is not None and not anomalies.empty:
        ax.scatter(anomalies["ds"], anomalies["y"], color="red", s=22, zorder=5, label="anomaly")
    if threshold is not None:
        ax.axhline(threshold, color="black", linestyle="--", linewidth=1.0, label=f"threshold {threshold:g}")
    _format_axis(ax)


def _format_axis(ax: Axes) -> None:
    ax.xaxis.set_major_locator(mdates.AutoDateLocator())
    # Plain month-day ticks: ConciseDateFormatter's offset label names the month of the last tick, which reads
    # as if the whole panel were in that month.
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    ax.grid(alpha=0.3)


def _grid(panels: int) -> tuple[Figure, list[Axes]]:
    ncols = 1 if panels <= 2 else 2
    nrows = max(1, math.ceil(panels / ncols))
    fig = Figure(figsize=(6.5 * ncols, 2.8 * nrows), layout="constrained")
    return fig, list(fig.subplots(nrows, ncols, squeeze=False).ravel())


def _render(fig: Figure, axes: list[Axes], chosen: list[str], empty_text: str) -> bytes:
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


def forecast_plot_png(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    anomalies: pd.DataFrame | None = None,
    threshold: float | None = None,
    max_series: int = 6,
    history_points: int | None = None,
) -> bytes:
    """One panel per series (at most ``max_series``, highest forecasts first), returned as PNG bytes.

    ``history`` is ``unique_id, ds, y``; ``forecast`` is the output of ``engine.forecast``; ``anomalies`` is
    ``unique_id, ds, y, is_anomaly`` (only flagged rows are drawn). ``history_points`` caps the actuals shown
    per series (default: four times the forecast length). A bare ``Figure`` renders with the Agg canvas and
    never touches pyplot's global state or the process-wide backend, so it is safe in threads and sensors.
    """
    chosen = pick_series(forecast, max_series) if len(forecast) else []
    fig, axes = _grid(len(chosen))
    flagged = anomalies[anomalies["is_anomaly"].astype(bool)] if anomalies is not None else None
    for ax, uid in zip(axes, chosen, strict=False):
        series_fc = forecast[forecast["unique_id"] == uid].sort_values("ds")
        keep = history_points if history_points is not None else _HISTORY_MULTIPLE * len(series_fc)
        series_hist = history[history["unique_id"] == uid].sort_values("ds").tail(keep)
        series_anomalies = None
        if flagged is not None:
            series_anomalies = flagged[
                (flagged["unique_id"] == uid) & (flagged["ds"] >= series_hist["ds"].min())
            ]
        _draw_panel(ax, series_hist, series_fc, series_anomalies, threshold)
        model = series_fc["model"].iloc[0] if "model" in series_fc else ""
        ax.set_title(f"{series_title(uid)}  [{model}]" if model else series_title(uid), fontsize=10)
    return _render(fig, axes, chosen, "no forecast to plot")


SEVERITY_COLORS = {"info": "#9e9e9e", "warning": "#ff9800", "critical": "#d32f2f"}


def anomaly_plot_png(scored: pd.DataFrame, max_series: int = 6, history_points: int = 24 * 14) -> bytes:
    """Recent actuals, the detector's expected value and flagged points coloured by severity, one panel per
    series for the ``max_series`` series with the strongest anomalies (output of ``anomalies.detect``)."""
    strongest = scored.groupby("unique_id")["anomaly_score"].max().sort_values(ascending=False, kind="stable")
    chosen = strongest.head(max_series).index.tolist()
    fig, axes = _grid(len(chosen))
    for ax, uid in zip(axes, chosen, strict=False):
        series = scored[scored["unique_id"] == uid].sort_values("ds").tail(history_points)
        ax.plot(series["ds"], series["y"], color="#1f77b4", linewidth=1.0, label="actual")
        ax.plot(
            series["ds"], series["expected"], color="#555555", linewidth=0.8, linestyle=":", label="expected"
        )
        flagged = series[series["is_anomaly"].astype(bool)]
        for severity, color in SEVERITY_COLORS.items():
            points = flagged[flagged["severity"] == severity]
            if len(points):
                ax.scatter(points["ds"], points["y"], color=color, s=22, zorder=5, label=severity)
        _format_axis(ax)
        ax.set_title(series_title(uid), fontsize=10)
    return _render(fig, axes, chosen, "no series to plot")
