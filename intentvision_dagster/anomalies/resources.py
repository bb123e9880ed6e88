"""Anomalies' Dagster resource: the anomaly chart alert messages carry."""

from __future__ import annotations

import pandas as pd

from intentvision_dagster.anomalies.plots import anomaly_plot_png
from intentvision_dagster.chart_marks import SeriesMarks
from intentvision_dagster.resources import AlertChart


class AnomalyChart(AlertChart):
    """An anomaly alert's chart: the ``anomalies`` asset's plot, drawn for the alert's series only."""

    def png(
        self, scored: pd.DataFrame, forecasts: pd.DataFrame, marks: dict[str, SeriesMarks], unit: str
    ) -> bytes | None:
        if scored.empty:
            return None
        return anomaly_plot_png(scored, unit, max_series=scored["unique_id"].nunique())
