"""PNG chart of scored series: recent actuals, the detector's expected value, flagged points by severity."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from intentvision_dagster.plotting import (
    SEVERITY_COLORS,
    as_png,
    finish,
    format_axis,
    grid,
    series_title,
)


def anomaly_figure(
    scored: pd.DataFrame, unit: str = "", max_series: int = 6, history_points: int = 24 * 14
) -> Figure:
    """Recent actuals, the detector's expected value and flagged points coloured by severity, one panel per
    series for the ``max_series`` series with the strongest anomalies (output of ``anomalies.detect``);
    ``unit`` labels the y axis."""
    strongest = scored.groupby("unique_id")["anomaly_score"].max().sort_values(ascending=False, kind="stable")
    chosen = strongest.head(max_series).index.tolist()
    fig, axes = grid(len(chosen))
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
        format_axis(ax, unit)
        ax.set_title(series_title(uid), fontsize=10)
    return finish(fig, axes, chosen, "no series to plot")


anomaly_plot_png = as_png(anomaly_figure)
