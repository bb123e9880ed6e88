import json

import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.forecasting.backtest import METRICS
from intentvision_dagster.forecasting.forecast import forecast
from intentvision_dagster.forecasting.selection import (
    group_factors,
    select_models,
    selection_columns,
    step_buckets,
)
from intentvision_dagster.forecasting.spec import ForecastSpec
from tests.forecasting.factories import long_frame

HOURS = np.arange(24 * 21)
HOURLY = ForecastSpec(horizon=24, freq="h")


def trending() -> pd.DataFrame:
    """Growth plus a daily cycle: yesterday's value (seasonal naive) lags the trend by 12 units a step."""
    rng = np.random.default_rng(5)
    return long_frame(
        50 + 0.5 * HOURS + 10 * np.sin(2 * np.pi * HOURS / 24) + rng.normal(0, 1, HOURS.size), "trend"
    )


def seasonal_random_walk() -> pd.DataFrame:
    """y[t] = y[t-24] + noise: yesterday's value is the best forecast there is."""
    rng = np.random.default_rng(6)
    y = np.empty(HOURS.size)
    y[:24] = 100 + rng.normal(0, 10, 24)
    for t in range(24, HOURS.size):
        y[t] = y[t - 24] + rng.normal(0, 3)
    return long_frame(y, "walk")


def calm_then_noisy() -> pd.DataFrame:
    """Noise sd 1 for 17 days, then sd 4: intervals fitted on the calm part are far too narrow."""
    rng = np.random.default_rng(7)
    noise = np.where(HOURS.size - 24 * 4 > HOURS, rng.normal(0, 1, HOURS.size), rng.normal(0, 4, HOURS.size))
    return long_frame(50 + 10 * np.sin(2 * np.pi * HOURS / 24) + noise, "noisy")


@pytest.fixture(scope="module")
def selection() -> pd.DataFrame:
    return select_models(pd.concat([trending(), seasonal_random_walk()]), HOURLY).set_index("unique_id")


def test_selection_picks_the_known_best_model(selection: pd.DataFrame) -> None:
    assert selection.loc["acme/trend", "model"] == "MSTL"
    assert selection.loc["acme/walk", "model"] == "SeasonalNaive"


def test_every_candidates_scores_are_stored_and_the_winner_has_the_lowest(selection: pd.DataFrame) -> None:
    assert list(selection.reset_index().columns) == selection_columns((80, 95))
    for uid, row in selection.iterrows():
        scores = json.loads(row["candidate_scores"])
        assert set(scores) == {"MSTL", "SeasonalNaive", "Ensemble"}, uid
        assert set(scores[row["model"]]) == {*METRICS, "coverage_80", "coverage_95"}
        assert row["mase"] == pytest.approx(min(s["mase"] for s in scores.values()), rel=1e-5)
    assert selection["selection_metric"].eq("mase").all()
    assert not selection["low_confidence"].any()


def test_selection_metric_is_configurable_and_checked() -> None:
    chosen = select_models(trending(), ForecastSpec(horizon=24, freq="h", metric="rmse"))
    assert chosen["selection_metric"].iloc[0] == "rmse"
    scores = json.loads(chosen["candidate_scores"].iloc[0])
    assert chosen["rmse"].iloc[0] == pytest.approx(min(s["rmse"] for s in scores.values()), rel=1e-5)
    with pytest.raises(ValueError, match="selection metric 'r2' is not one of"):
        select_models(trending(), ForecastSpec(horizon=24, freq="h", metric="r2"))


def test_calibration_moves_coverage_toward_nominal_on_a_miscalibrated_series() -> None:
    [row] = select_models(calm_then_noisy(), HOURLY).to_dict(orient="records")
    for level in (80, 95):
        raw, calibrated = row[f"coverage_{level}"], row[f"coverage_{level}_calibrated"]
        assert raw < level / 100 - 0.2  # far too narrow before calibration
        assert abs(calibrated - level / 100) < abs(raw - level / 100) / 3
        assert row[f"calibration_{level}"] > 2


def test_forecast_intervals_are_widened_by_the_calibration_factor_of_their_horizon_bucket() -> None:
    history = calm_then_noisy()
    chosen = select_models(history, HOURLY)
    plain = chosen.assign(calibration_80=1.0, calibration_95=1.0, step_calibration="{}")
    calibrated, uncalibrated = (forecast(history, HOURLY, selection=s) for s in (chosen, plain))
    by_bucket = json.loads(chosen["step_calibration"].iloc[0])
    buckets = step_buckets(np.arange(1, HOURLY.horizon + 1), HOURLY.horizon)
    assert list(buckets[[0, 1, 2, 23]]) == [0, 1, 1, 3]  # 24 steps: h1, h2-4, h5-12, h13-24
    for level in (80, 95):
        ratio = (calibrated[f"hi_{level}"] - calibrated["yhat"]) / (
            uncalibrated[f"hi_{level}"] - uncalibrated["yhat"]
        )
        assert ratio.to_numpy() == pytest.approx(np.array(by_bucket[str(level)])[buckets])
        assert min(by_bucket[str(level)]) > 1  # every bucket was too narrow before


def test_coverage_is_reported_per_horizon_bucket_and_recent_error_beside_the_full_one() -> None:
    [row] = select_models(calm_then_noisy(), HOURLY).to_dict(orient="records")
    by_step = json.loads(row["coverage_by_step"])
    assert list(by_step) == ["h1", "h2-4", "h5-12", "h13-24"]
    assert all(0 <= cell["95"] <= 1 for cell in by_step.values())
    assert row["backtest_hours"] == 24
    assert row["mae_recent"] > 0


def _factor(scores: np.ndarray, level: int) -> float:
    """The calibration factor of one group of scores."""
    return group_factors(pd.DataFrame({"group": 0, "score": scores}), ["group"], level)["factor"].item()


def test_the_conformal_factor_and_when_calibration_leaves_intervals_alone() -> None:
    scores = np.linspace(0.01, 1.0, 100)
    assert _factor(scores * 1.25, 80) == 1.0  # 80% covered at 80%: already calibrated
    assert _factor(scores / 2, 80) == pytest.approx(0.405)  # all covered: narrow to the conformal quantile
    assert _factor(scores[:5] / 2, 95) == 1.0  # too few scores for a 95% quantile
    assert _factor(np.array([np.inf] * 50 + [0.5] * 50), 95) == 1.0  # zero-width: cannot scale


def test_short_series_keep_their_tier_model_with_low_confidence() -> None:
    chosen = select_models(
        pd.concat([long_frame(np.arange(30.0), "thirty"), long_frame([1.0, 2.0], "two")]), HOURLY
    ).set_index("unique_id")
    assert chosen["model"].to_dict() == {"acme/thirty": "AutoETS_short", "acme/two": "Naive"}
    assert chosen["low_confidence"].all()
    assert chosen.loc["acme/two", "n_windows"] == 0 and np.isnan(chosen.loc["acme/two", "mase"])
