"""PNG chart of forecasts for alerts and reports: actuals, forecast, 80/95% bands, anomalies, threshold."""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes

from intentvision_dagster.plotting import format_axis, grid, render, series_title

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
    format_axis(ax)


def forecast_plot_png(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    anomalies: pd.DataFrame | None = None,
    threshold: float | None = None,
    max_series: int = 6,
    history_points: int | None = None,
) -> bytes:
    """One panel per series (at most ``max_series``, highest forecasts first), returned as PNG bytes.

    ``history`` is ``unique_id, ds, y``; ``forecast`` is the output of ``forecast.forecast``; ``anomalies`` is
    ``unique_id, ds, y, is_anomaly`` (only flagged rows are drawn). ``history_points`` caps the actuals shown
    per series (default: four times the forecast length).
    """
    chosen = pick_series(forecast, max_series) if len(forecast) else []
    fig, axes = grid(len(chosen))
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
    return render(fig, axes, chosen, "no forecast to plot")
