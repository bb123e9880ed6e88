import time

import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.forecasting.forecast import forecast
from intentvision_dagster.forecasting.plots import forecast_plot_png, pick_series
from intentvision_dagster.forecasting.spec import ForecastSpec
from tests.forecasting.factories import seasonal_frame

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def history_and_forecast() -> tuple[pd.DataFrame, pd.DataFrame]:
    history = seasonal_frame(n_series=8, days=7)
    return history, forecast(history, ForecastSpec(horizon=24, freq="h", lower=0, upper=100))


def test_plot_is_a_png_with_anomalies_and_threshold(history_and_forecast) -> None:
    history, fc = history_and_forecast
    anomalies = history.assign(is_anomaly=np.arange(len(history)) % 50 == 0)
    started = time.perf_counter()
    png = forecast_plot_png(history, fc, anomalies, threshold=90.0, history_points=72)
    assert time.perf_counter() - started < 3  # < 1 s alone; slack for a shared 2-core machine
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 10_000


def test_plot_without_anything_to_draw_still_renders() -> None:
    empty = forecast(seasonal_frame(n_series=1).iloc[:0], ForecastSpec(horizon=3, freq="h"))
    assert forecast_plot_png(seasonal_frame(n_series=1).iloc[:0], empty).startswith(PNG_SIGNATURE)


def test_panels_show_the_highest_forecasts_first(history_and_forecast) -> None:
    _, fc = history_and_forecast
    chosen = pick_series(fc, max_series=3)
    assert chosen == [
        'acme/node_cpu_utilization_percent{host="web-7"}',
        'acme/node_cpu_utilization_percent{host="web-6"}',
        'acme/node_cpu_utilization_percent{host="web-5"}',
    ]
