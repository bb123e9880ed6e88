import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.forecasting.forecast import forecast
from intentvision_dagster.forecasting.models import MODEL_LOW_CONFIDENCE
from intentvision_dagster.forecasting.spec import ForecastSpec
from tests.forecasting.factories import long_frame, seasonal_frame

COLUMNS = ["unique_id", "ds", "yhat", "lo_80", "hi_80", "lo_95", "hi_95", "model"]


def _assert_ordered(fc: pd.DataFrame) -> None:
    assert (fc["lo_95"] <= fc["lo_80"]).all()
    assert (fc["lo_80"] <= fc["yhat"]).all()
    assert (fc["yhat"] <= fc["hi_80"]).all()
    assert (fc["hi_80"] <= fc["hi_95"]).all()
    assert fc[COLUMNS[2:7]].notna().all().all()


@pytest.fixture(scope="module")
def seasonal_forecast() -> tuple[pd.DataFrame, pd.DataFrame]:
    history = seasonal_frame()
    return history, forecast(history, ForecastSpec(horizon=48, freq="h"))


def test_seasonal_forecast_shape_and_intervals(seasonal_forecast) -> None:
    history, fc = seasonal_forecast
    assert list(fc.columns) == COLUMNS
    assert len(fc) == 6 * 48
    assert fc.groupby("unique_id").size().eq(48).all()
    assert fc["ds"].dtype == "datetime64[ns]"
    assert fc["ds"].min() == history["ds"].max() + pd.Timedelta(hours=1)
    assert fc.equals(fc.sort_values(["unique_id", "ds"], ignore_index=True))
    assert set(fc["model"]) == {"MSTL"}
    _assert_ordered(fc)
    assert (fc["hi_95"] - fc["lo_95"] > fc["hi_80"] - fc["lo_80"]).all()


def test_seasonal_forecast_follows_the_daily_cycle(seasonal_forecast) -> None:
    _, fc = seasonal_forecast
    web0 = fc[fc["unique_id"].str.endswith('"web-0"}')]
    hours = np.arange(24 * 21, 24 * 21 + 48)
    truth = 40 + 15 * np.sin(2 * np.pi * hours / 24)
    assert np.abs(web0["yhat"].to_numpy() - truth).mean() < 2.0


def test_linear_growth_is_extrapolated() -> None:
    hours = np.arange(24 * 21)
    history = long_frame(
        100 + 0.3 * hours + np.random.default_rng(3).normal(0, 0.5, hours.size), 'disk_used_gb{mount="/"}'
    )
    fc = forecast(history, ForecastSpec(horizon=72, freq="h"))
    yhat = fc["yhat"].to_numpy()
    assert fc["model"].iloc[0] == "MSTL"
    assert yhat[-1] - yhat[0] > 0.2 * 71
    assert yhat[-1] == pytest.approx(100 + 0.3 * (24 * 21 + 71), abs=5)


def test_percentages_stay_within_bounds() -> None:
    hours = np.arange(24 * 21)
    rng = np.random.default_rng(4)
    history = long_frame(
        np.minimum(100, 96 + 3 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 1.5, hours.size)), "cpu"
    )
    fc = forecast(history, ForecastSpec(horizon=48, freq="h", lower=0, upper=100))
    assert fc[COLUMNS[2:7]].max().max() <= 100
    assert fc["hi_95"].max() == 100
    assert fc[COLUMNS[2:7]].min().min() >= 0
    _assert_ordered(fc)


def test_flat_and_tiny_series_get_flat_forecasts() -> None:
    history = pd.concat(
        [
            long_frame([7.0] * 200, "flat"),
            long_frame([1.0, 2.0], "two"),
            long_frame([3.0], "one"),
            long_frame([5.0, 5.0, 5.0], "three"),
        ]
    )
    fc = forecast(history, ForecastSpec(horizon=6, freq="h"))
    assert fc.groupby("unique_id").size().to_dict() == {
        "acme/flat": 6,
        "acme/one": 6,
        "acme/three": 6,
        "acme/two": 6,
    }
    _assert_ordered(fc)
    by_id = fc.groupby("unique_id")
    expected = {"acme/flat": 7.0, "acme/one": 3.0, "acme/three": 5.0, "acme/two": 2.0}
    assert by_id["yhat"].min().to_dict() == pytest.approx(expected)
    assert by_id["yhat"].max().to_dict() == pytest.approx(expected)
    assert fc.loc[fc["unique_id"] == "acme/flat", ["lo_95", "hi_95"]].to_numpy() == pytest.approx(7.0)
    assert by_id["model"].first().to_dict() == {
        "acme/flat": "SeasonalNaive",
        "acme/one": "Naive",
        "acme/three": "Naive",
        "acme/two": "Naive",
    }
    assert {"Naive", "AutoETS_short"} == MODEL_LOW_CONFIDENCE


def test_tiers_follow_history_length() -> None:
    history = pd.concat(
        [long_frame(np.arange(24 * 3.0), "three_days"), long_frame(np.arange(30.0), "thirty_hours")]
    )
    fc = forecast(history, ForecastSpec(horizon=3, freq="h"))
    assert fc.groupby("unique_id")["model"].first().to_dict() == {
        "acme/thirty_hours": "AutoETS_short",
        "acme/three_days": "MSTL",
    }


def test_missing_values_are_dropped_and_extra_columns_ignored() -> None:
    history = long_frame(np.r_[np.arange(60.0), np.nan], "with_nan")
    fc = forecast(history, ForecastSpec(horizon=2, freq="h", levels=(90,)))
    assert list(fc.columns) == ["unique_id", "ds", "yhat", "lo_90", "hi_90", "model"]
    assert fc["ds"].iloc[0] == history["ds"].iloc[-1]
    assert fc["yhat"].notna().all()


def test_empty_input_gives_empty_frame_with_columns() -> None:
    fc = forecast(long_frame([], "none"), ForecastSpec(horizon=3, freq="h"))
    assert list(fc.columns) == COLUMNS
    assert fc.empty
