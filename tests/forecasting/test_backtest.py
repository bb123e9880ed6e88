import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.forecasting.backtest import backtest, window_plan
from intentvision_dagster.forecasting.spec import ForecastSpec
from tests.forecasting.factories import long_frame, seasonal_frame

COLUMNS = [
    "unique_id",
    "model",
    "mae",
    "rmse",
    "mape",
    "smape",
    "mase",
    "coverage_80",
    "coverage_95",
    "n_windows",
]
METRICS = COLUMNS[2:9]


@pytest.fixture(scope="module")
def seasonal_scores() -> pd.DataFrame:
    return backtest(seasonal_frame(), ForecastSpec(horizon=24, freq="h"))


def test_seasonal_backtest_metrics(seasonal_scores: pd.DataFrame) -> None:
    assert list(seasonal_scores.columns) == COLUMNS
    assert len(seasonal_scores) == 6 * 3
    assert seasonal_scores["unique_id"].is_monotonic_increasing
    assert seasonal_scores["n_windows"].eq(3).all()
    assert (
        seasonal_scores.groupby("unique_id")["model"].apply(tuple).tolist()
        == [("Ensemble", "MSTL", "SeasonalNaive")] * 6
    )
    seasonal_scores = seasonal_scores[seasonal_scores["model"] == "MSTL"]
    assert np.isfinite(seasonal_scores[METRICS].to_numpy()).all()
    assert seasonal_scores["mase"].lt(1).all()
    assert seasonal_scores["coverage_95"].between(0.75, 1).all()
    assert seasonal_scores["coverage_80"].le(seasonal_scores["coverage_95"]).all()
    # noise sd 2 around a sin of amplitude 15: MAE close to the noise's mean absolute deviation (~1.6)
    assert seasonal_scores["mae"].between(1.0, 3.0).all()
    assert seasonal_scores["rmse"].ge(seasonal_scores["mae"]).all()


def test_percentage_scales(seasonal_scores: pd.DataFrame) -> None:
    """mape and smape are fractions: ~2 units off on values of 40-65 is a few percent."""
    seasonal_scores = seasonal_scores[seasonal_scores["model"] == "MSTL"]
    assert seasonal_scores["mape"].between(0.01, 0.15).all()
    assert seasonal_scores["smape"].between(0.005, 0.08).all()


def test_short_series_get_shorter_windows_or_none() -> None:
    history = pd.concat(
        [
            long_frame(10 + np.arange(30.0) + np.random.default_rng(1).normal(0, 0.5, 30), "thirty"),
            long_frame([1.0, 2.0, 3.0], "three"),
        ]
    )
    scores = backtest(history, ForecastSpec(horizon=72, freq="h")).set_index("unique_id")
    assert scores.loc["acme/thirty", "n_windows"] == 3
    assert scores.loc["acme/thirty", "model"] == "AutoETS_short"
    assert np.isfinite(scores.loc["acme/thirty", ["mae", "rmse", "mape", "smape"]].astype(float)).all()
    assert scores.loc["acme/three", "n_windows"] == 0
    assert scores.loc["acme/three", "model"] == "Naive"
    assert scores.loc["acme/three", METRICS].isna().all()


def test_bounds_apply_to_backtest_forecasts() -> None:
    unbounded = backtest(
        long_frame(np.arange(100.0) + 1, "ramp"), ForecastSpec(horizon=10, freq="h", n_windows=2)
    )
    capped = backtest(
        long_frame(np.arange(100.0) + 1, "ramp"), ForecastSpec(horizon=10, freq="h", n_windows=2, upper=80)
    )
    unbounded, capped = (frame.set_index("model").loc["MSTL"] for frame in (unbounded, capped))
    assert unbounded["mae"] < 1
    assert capped["mae"] > 5


@pytest.mark.parametrize(
    ("n_points", "horizon", "n_windows", "seasons", "plan"),
    [
        (500, 24, 3, (), (24, 3, 24)),
        (40, 72, 3, (), (10, 3, 10)),
        (12, 72, 3, (), (1, 2, 1)),
        (11, 72, 3, (), (1, 1, 1)),
        (10, 72, 3, (), (0, 0, 0)),
        (1000, 72, 3, (24, 168), (72, 3, 72)),  # 6 weeks hourly: back-to-back windows keep daily + weekly
        (720, 72, 3, (24, 168), (72, 3, 24)),  # 30 days: overlapping windows keep the weekly season
        (
            35,
            7,
            3,
            (7,),
            (7, 3, 2),
        ),  # 35 days: overlapping windows keep the weekly MSTL instead of cold start
    ],
)
def test_window_plan(
    n_points: int, horizon: int, n_windows: int, seasons, plan: tuple[int, int, int]
) -> None:
    assert window_plan(n_points, horizon, n_windows, seasons) == plan


def test_empty_input_gives_empty_frame_with_columns() -> None:
    scores = backtest(long_frame([], "none"), ForecastSpec(horizon=5, freq="h"))
    assert list(scores.columns) == COLUMNS
    assert scores.empty
