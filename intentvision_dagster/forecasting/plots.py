"""The forecast chart for alerts and reports: actuals, forecast, 80/95% bands, anomalies, and the marks of the
rules that apply (threshold and budget lines, expected crossings), a "now" line, UTC and the metric's unit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from intentvision_dagster.chart_marks import NO_MARKS, SeriesMarks
from intentvision_dagster.plotting import (
    as_png,
    draw_marks,
    finish,
    format_axis,
    grid,
    series_title,
)

MAX_PANELS = 6
"""Panels in one chart when no ``series`` are named: the highest forecasts of the partition."""
_HISTORY_MULTIPLE = 4
"""Without ``history_points``, show four times the forecast length of actuals: context, still readable."""


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
    ax: Axes, history: pd.DataFrame, forecast: pd.DataFrame, anomalies: pd.DataFrame | None
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


def forecast_figure(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    anomalies: pd.DataFrame | None = None,
    marks: Mapping[str, SeriesMarks] | None = None,
    unit: str = "",
    now: pd.Timestamp | None = None,
    series: Sequence[str] | None = None,
    max_series: int = MAX_PANELS,
    history_points: int | None = None,
) -> Figure:
    """The forecast chart, one panel per series.

    ``history`` is ``unique_id, ds, y`` (ds naive UTC); ``forecast`` is the output of ``forecast.forecast``;
    ``anomalies`` is ``unique_id, ds, y, is_anomaly`` (only flagged rows are drawn). ``marks`` maps a
    unique_id to the lines and crossings its rules draw (alerting's ``AlertRules.marks``); ``unit`` labels
    the y axis (the catalog's unit; ``bytes`` ticks in KiB/MiB/GiB). ``now`` is where the "now" line goes
    (default: each series' last actual). ``series`` picks the panels; without it, the ``max_series`` with
    the highest forecasts. ``history_points`` caps the actuals shown per series (default: four times the
    forecast length).
    """
    if series is None:
        series = pick_series(forecast, max_series) if len(forecast) else []
    chosen = list(series)
    fig, axes = grid(len(chosen))
    flagged = anomalies[anomalies["is_anomaly"].astype(bool)] if anomalies is not None else None
    for ax, uid in zip(axes, chosen, strict=False):
        series_fc = forecast[forecast["unique_id"] == uid].sort_values("ds")
        keep = history_points if history_points is not None else _HISTORY_MULTIPLE * len(series_fc)
        series_hist = history[history["unique_id"] == uid].sort_values("ds").tail(keep)
        last_actual = series_hist["ds"].iloc[-1] if len(series_hist) else None
        series_anomalies = None
        if flagged is not None:
            series_anomalies = flagged[
                (flagged["unique_id"] == uid) & (flagged["ds"] >= series_hist["ds"].min())
            ]
        _draw_panel(ax, series_hist, series_fc, series_anomalies)
        draw_marks(ax, (marks or {}).get(uid, NO_MARKS), now if now is not None else last_actual)
        format_axis(ax, unit)
        model = series_fc["model"].iloc[0] if "model" in series_fc and len(series_fc) else ""
        ax.set_title(f"{series_title(uid)}  [{model}]" if model else series_title(uid), fontsize=10)
    return finish(fig, axes, chosen, "no forecast to plot")


forecast_plot_png = as_png(forecast_figure)
