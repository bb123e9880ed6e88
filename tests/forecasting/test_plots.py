import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.container import ErrorbarContainer

from intentvision_dagster.chart_marks import Crossing, SeriesMarks, ThresholdLine
from intentvision_dagster.forecasting.forecast import forecast
from intentvision_dagster.forecasting.plots import forecast_figure, forecast_plot_png, pick_series
from intentvision_dagster.forecasting.spec import ForecastSpec
from intentvision_dagster.plotting import CROSSING_LABEL
from tests.forecasting.factories import long_frame, seasonal_frame

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DISK = 'node_filesystem_usage_percent{host="db-1"}'
DISK_UID = f"acme/{DISK}"


@pytest.fixture(scope="module")
def history_and_forecast() -> tuple[pd.DataFrame, pd.DataFrame]:
    history = seasonal_frame(n_series=8, days=7)
    return history, forecast(history, ForecastSpec(horizon=24, freq="h", lower=0, upper=100))


def filling_disk() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three days of a disk filling 0.25 points an hour from 70 %, and a 48 h forecast that carries on."""
    history = long_frame(70 + 0.25 * np.arange(72), DISK)
    steps = np.arange(1, 49)
    yhat = history["y"].iloc[-1] + 0.25 * steps
    spread = 0.05 * steps
    return history, pd.DataFrame(
        {
            "unique_id": DISK_UID,
            "metric": "node_filesystem_usage_percent",
            "labels": 'host="db-1"',
            "ds": history["ds"].iloc[-1] + pd.to_timedelta(steps, unit="h"),
            "yhat": yhat,
            "lo_80": yhat - spread,
            "hi_80": yhat + spread,
            "lo_95": yhat - 1.6 * spread,
            "hi_95": yhat + 1.6 * spread,
            "model": "AutoETS",
        }
    )


def as_time(x: object) -> pd.Timestamp:
    """An x coordinate as a naive UTC timestamp (matplotlib keeps some as given, converts others to days)."""
    return (
        pd.Timestamp(x) if isinstance(x, pd.Timestamp) else pd.Timestamp(mdates.num2date(x)).tz_localize(None)
    )


def horizontal_lines(ax: Axes) -> dict[str, float]:
    """Label -> y of every horizontal line on the panel."""
    return {
        line.get_label(): line.get_ydata()[0]
        for line in ax.get_lines()
        if len(set(line.get_ydata())) == 1 and len(line.get_xdata()) == 2 and line.get_xdata()[0] == 0
    }


def test_the_chart_draws_every_rule_line_now_and_the_crossing_with_its_interval() -> None:
    history, fc = filling_disk()
    crossing = Crossing(
        ds=pd.Timestamp("2024-03-04 04:00"),
        lo=pd.Timestamp("2024-03-04 02:00"),
        hi=pd.Timestamp("2024-03-04 07:00"),
        value=90.0,
        note="critical 90: P 93%",
    )
    marks = {
        DISK_UID: SeriesMarks(
            lines=(
                ThresholdLine(85.0, "warning", "warning 85"),
                ThresholdLine(90.0, "critical", "critical 90"),
            ),
            crossings=(crossing,),
        )
    }
    fig = forecast_figure(history, fc, marks=marks, unit="%")
    (ax,) = fig.axes
    assert horizontal_lines(ax) == {"warning 85": 85.0, "critical 90": 90.0}
    (now,) = [line for line in ax.get_lines() if line.get_label() == "now"]
    assert as_time(now.get_xdata()[0]) == history["ds"].iloc[-1] and now.get_linestyle() == "--"
    (bar,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert bar.get_label() == CROSSING_LABEL
    marker, _, (xerr,) = bar.lines
    assert as_time(marker.get_xdata()[0]) == crossing.ds
    assert marker.get_ydata()[0] == 90.0
    ((start, _), (end, _)) = xerr.get_segments()[0]
    assert [as_time(x) for x in (start, end)] == [crossing.lo, crossing.hi]
    assert [text.get_text() for text in ax.texts] == ["now", "critical 90: P 93%"]
    assert ax.get_ylabel() == "%" and "UTC" in ax.get_xlabel()
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert {"actual", "forecast", "80% interval", "95% interval", "now", CROSSING_LABEL} <= set(legend)


def test_series_picks_the_panels_and_now_can_be_given(history_and_forecast) -> None:
    history, fc = history_and_forecast
    wanted = ['acme/node_cpu_utilization_percent{host="web-2"}']
    run_time = history["ds"].max() + pd.Timedelta(minutes=30)
    fig = forecast_figure(history, fc, series=wanted, now=run_time)
    assert [ax.get_title() for ax in fig.axes] == ['host="web-2"  [' + fc["model"].iloc[0] + "]"]
    (now,) = [line for line in fig.axes[0].get_lines() if line.get_label() == "now"]
    assert as_time(now.get_xdata()[0]) == run_time
    assert horizontal_lines(fig.axes[0]) == {}, "no rules given, no lines"


def test_plot_is_a_png_with_anomalies(history_and_forecast) -> None:
    history, fc = history_and_forecast
    anomalies = history.assign(is_anomaly=np.arange(len(history)) % 50 == 0)
    png = forecast_plot_png(history, fc, anomalies, unit="%", history_points=72)
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
