import time

import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.anomalies.detector import detect
from intentvision_dagster.forecasting.engine import forecast
from intentvision_dagster.forecasting.plots import (
    anomaly_plot_png,
    forecast_plot_png,
    pick_series,
    series_title,
)
from tests.forecasting.factories import seasonal_frame

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def history_and_forecast() -> tuple[pd.DataFrame, pd.DataFrame]:
    history = seasonal_frame(n_series=8, days=7)
    return history, forecast(history, horizon=24, freq="h", lower=0, upper=100)


def test_plot_is_a_png_with_anomalies_and_threshold(history_and_forecast) -> None:
    history, fc = history_and_forecast
    anomalies = history.assign(is_anomaly=np.arange(len(history)) % 50 == 0)
    started = time.perf_counter()
    png = forecast_plot_png(history, fc, anomalies, threshold=90.0, history_points=72)
    assert time.perf_counter() - started < 3  # < 1 s alone; slack for a shared 2-core machine
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 10_000


def test_plot_without_anything_to_draw_still_renders() -> None:
    empty = forecast(seasonal_frame(n_series=1).iloc[:0], horizon=3, freq="h")
    assert forecast_plot_png(seasonal_frame(n_series=1).iloc[:0], empty).startswith(PNG_SIGNATURE)


def test_panels_show_the_highest_forecasts_first(history_and_forecast) -> None:
    _, fc = history_and_forecast
    chosen = pick_series(fc, max_series=3)
    assert chosen == [
        'acme/node_cpu_utilization_percent{host="web-7"}',
        'acme/node_cpu_utilization_percent{host="web-6"}',
        'acme/node_cpu_utilization_percent{host="web-5"}',
    ]


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


def test_anomaly_plot_is_a_png_of_the_series_with_the_strongest_anomalies() -> None:
    history = seasonal_frame(n_series=3)
    spiked = history["unique_id"] == history["unique_id"].iloc[-1]
    history.loc[spiked & (history.index == history[spiked].index[-5]), "y"] += 500
    scored = detect(history, season_length=24)
    assert scored.loc[scored["is_anomaly"], "unique_id"].unique().tolist() == [history["unique_id"].iloc[-1]]
    png = anomaly_plot_png(scored, max_series=1)
    assert png.startswith(PNG_SIGNATURE)
    assert anomaly_plot_png(scored.iloc[:0]).startswith(PNG_SIGNATURE)
