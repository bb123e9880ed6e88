import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from intentvision_dagster.alerting.probability import (
    QUANTILE_COLUMNS,
    QUANTILE_LEVELS,
    breach_outlook,
    exceedance,
    mirrored_edge,
)

NOW = pd.Timestamp("2026-01-05 00:00")


def normal_quantiles(mean: np.ndarray, sd: float) -> np.ndarray:
    return np.asarray(mean, dtype="float64")[:, None] + sd * norm.ppf(QUANTILE_LEVELS)[None, :]


def test_exceedance_of_normal_quantiles_is_the_normal_tail() -> None:
    quantiles = normal_quantiles(np.full(5, 80.0), 4.0)
    lines = np.array([80.0, 84.0, 88.0, 90.0, 70.0])
    expected = 1 - norm.cdf((lines - 80.0) / 4.0)
    assert exceedance(quantiles, lines, above=True) == pytest.approx(expected, abs=1e-9)
    assert exceedance(quantiles, lines, above=False) == pytest.approx(1 - expected, abs=1e-9)


def test_a_band_pinned_to_a_bound_puts_nothing_past_it() -> None:
    pinned = np.array([[95.0, 98.0, 100.0, 100.0, 100.0]])  # a percentage at its upper bound
    assert exceedance(pinned, np.array([100.5]), above=True) == pytest.approx([0.0])
    assert exceedance(pinned, np.array([99.0]), above=True)[0] > 0.5


def test_edges_translate_to_the_tail_mass_they_cut() -> None:
    quantiles = normal_quantiles(np.array([50.0]), 10.0)
    for column, level in zip(QUANTILE_COLUMNS, QUANTILE_LEVELS, strict=True):
        line = quantiles[:, QUANTILE_COLUMNS.index(column)]
        assert exceedance(quantiles, line, above=True) == pytest.approx([1 - level])
    assert (mirrored_edge("hi_95"), mirrored_edge("lo_80"), mirrored_edge("yhat")) == (
        "lo_95",
        "hi_80",
        "yhat",
    )


def test_outlook_probability_is_the_running_maximum_and_crossing_times_its_quantiles() -> None:
    hours = np.arange(1, 73)
    mean = 78 + 0.25 * hours  # reaches 90 at 48 h
    frame = pd.DataFrame(normal_quantiles(mean, 3.0), columns=list(QUANTILE_COLUMNS))
    frame.insert(0, "ds", NOW + pd.to_timedelta(hours, unit="h"))
    frame.insert(0, "unique_id", "disk")
    flat = frame.assign(unique_id="flat")
    flat[list(QUANTILE_COLUMNS)] = normal_quantiles(np.full(72, 60.0), 3.0)
    outlook = breach_outlook(pd.concat([frame, flat]), pd.Series({"disk": 90.0, "flat": 90.0}), above=True)
    disk, never = outlook.set_index("unique_id").loc["disk"], outlook.set_index("unique_id").loc["flat"]
    assert disk["probability"] == pytest.approx(1 - norm.cdf((90 - 96) / 3.0))
    assert disk["crossing_ds"] == NOW + pd.Timedelta(hours=48)
    # 10 % / 90 % of the crossings (given one) happen by the step where P reaches 0.1 / 0.9 of its maximum
    # (P = 97.7 % at 72 h: 0.098 at 33 h, 0.879 at 63 h)
    assert disk["crossing_lo"] == NOW + pd.Timedelta(hours=33)
    assert disk["crossing_hi"] == NOW + pd.Timedelta(hours=63)
    assert never["probability"] < 1e-6  # 30 sd below the line


def test_a_series_already_past_the_line_is_certain_from_the_first_step() -> None:
    hours = np.arange(1, 25)
    frame = pd.DataFrame(normal_quantiles(np.full(24, 80.0), 3.0), columns=list(QUANTILE_COLUMNS))
    frame.insert(0, "ds", NOW + pd.to_timedelta(hours, unit="h"))
    frame.insert(0, "unique_id", "full")
    outlook = breach_outlook(frame, pd.Series({"full": 75.0}), True, pd.Series({"full": True}))
    assert outlook["probability"].tolist() == [1.0]
    assert outlook["crossing_ds"].tolist() == [NOW + pd.Timedelta(hours=1)]
