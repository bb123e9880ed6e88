"""Capacity scoring and baselines on hand-computed cases."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from bench.capacity import FRESH_RAMPS, not_forecastable, scores_by_split
from bench.capacity_baselines import (
    linear_regression,
    predict_linear,
    predict_linear_decisions,
    prophet_decision,
)
from bench.capacity_scenarios import START, evaluations, labelled
from bench.capacity_scoring import judged, score


def hour(h: float) -> pd.Timestamp:
    return START + pd.Timedelta(hours=h)


@pytest.fixture
def truth() -> pd.DataFrame:
    """A: crosses at hour 100, cutoffs 90/66/42/18 h before it; B: never crosses, three cutoffs."""
    values_a = np.r_[np.zeros(100), 95.0, np.zeros(20)]
    a = labelled("a", "p", "a", values_a, 90.0, "above", (10, 34, 58, 82))
    b = labelled("b", "p", "b", np.zeros(121), 90.0, "above", (10, 34, 58))
    return evaluations([a, b])


def decisions(truth: pd.DataFrame, pages: dict[str, bool], predicted: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": truth["unique_id"],
            "pages": [pages[uid] for uid in truth["unique_id"]],
            "crossing_ds": [
                hour(predicted[uid]) if uid in predicted else pd.NaT for uid in truth["unique_id"]
            ],
        }
    )


def test_truth_marks_breaches_within_72_hours(truth: pd.DataFrame) -> None:
    assert truth["unique_id"].tolist() == [
        "a@20260105T1000",
        "a@20260106T1000",
        "a@20260107T1000",
        "a@20260108T1000",
        "b@20260105T1000",
        "b@20260106T1000",
        "b@20260107T1000",
    ]
    assert truth["hours_to_crossing"].iloc[:4].tolist() == [90, 66, 42, 18]
    assert truth["breach"].tolist() == [False, True, True, True, False, False, False]


def test_precision_recall_false_pages_lead_and_crossing_error(truth: pd.DataFrame) -> None:
    ids = truth["unique_id"].tolist()
    pages = dict(zip(ids, [True, False, True, True, False, True, False], strict=True))
    predicted = {ids[0]: 30.0, ids[2]: 103.0, ids[3]: 98.0, ids[5]: 50.0}
    result = score(judged(truth, decisions(truth, pages, predicted)))
    assert (result.true_pages, result.false_pages, result.missed) == (2, 2, 1)
    assert result.precision == pytest.approx(0.5)
    assert result.recall == pytest.approx(2 / 3)
    assert result.series_weeks == pytest.approx(1.0)  # 7 daily evaluations
    assert result.false_pages_per_series_week == pytest.approx(2.0)
    # the page at 90 h is a false page, so A's first page is the one 42 h ahead
    assert (result.breaches_24h_ahead, result.paged_24h_ahead) == (1, 1)
    assert result.median_lead_hours == pytest.approx(42.0)
    assert result.median_crossing_error_hours == pytest.approx(2.5)  # |103-100| and |98-100|
    assert result.crossing_errors == 2


def test_a_breach_first_paged_18_hours_ahead_is_late(truth: pd.DataFrame) -> None:
    ids = truth["unique_id"].tolist()
    pages = dict.fromkeys(ids, False) | {ids[3]: True}
    result = score(judged(truth, decisions(truth, pages, {})))
    assert (result.breaches_24h_ahead, result.paged_24h_ahead, result.share_paged_24h_ahead) == (1, 0, 0.0)
    assert result.median_lead_hours == pytest.approx(18.0)
    assert np.isnan(result.median_crossing_error_hours)  # no predicted time
    assert result.precision == pytest.approx(1.0) and result.recall == pytest.approx(1 / 3)


def test_no_page_at_all_has_no_precision(truth: pd.DataFrame) -> None:
    result = score(judged(truth, decisions(truth, dict.fromkeys(truth["unique_id"], False), {})))
    assert np.isnan(result.precision) and result.recall == 0.0 and result.false_pages_per_series_week == 0.0


def test_a_missing_decision_is_an_error(truth: pd.DataFrame) -> None:
    partial = decisions(truth, dict.fromkeys(truth["unique_id"], False), {}).iloc[1:]
    with pytest.raises(ValueError, match=r"no decision for 1 evaluations, e\.g\. a@20260105T1000"):
        judged(truth, partial)


# --- predict_linear, checked by hand ----------------------------------------------------------------------


SIX_HOURS = pd.date_range("2026-01-05 00:00", periods=6, freq="h")
VALUES = np.array([0.0, 1.0, 1.0, 3.0, 4.0, 4.0])


def test_predict_linear_extrapolates_from_the_evaluation_time() -> None:
    # x in hours from 00:00: sum x = 15, sum y = 13, sum xy = 48, sum x^2 = 55, n = 6
    # slope = (48 - 15*13/6) / (55 - 15^2/6) = 15.5 / 17.5 per hour; the line at x = 2.5 is 13/6
    # evaluated at 05:30 (x = 5.5): 13/6 + 3 * 15.5/17.5; 72 h later: + 72 * 15.5/17.5
    now = pd.Timestamp("2026-01-05 05:30")
    value, slope, intercept = predict_linear(
        SIX_HOURS, VALUES, now, pd.Timedelta(hours=6), pd.Timedelta(hours=72)
    )
    per_hour = 15.5 / 17.5
    assert slope * 3600 == pytest.approx(per_hour)
    assert intercept == pytest.approx(13 / 6 + 3 * per_hour)
    assert value == pytest.approx(13 / 6 + 75 * per_hour)  # 68.595..., not the last sample + 72 h of slope


def test_predict_linear_range_is_left_open() -> None:
    # at 06:00 a 6 h range is (00:00, 06:00]: the 00:00 sample is out, x = 1..5, y = 1,1,3,4,4
    # slope = (48 - 15*13/5) / (55 - 15^2/5) = 0.9 per hour; line at x = 3 is 2.6; at x = 6: 5.3; +72 h: 70.1
    now = pd.Timestamp("2026-01-05 06:00")
    value, slope, intercept = predict_linear(
        SIX_HOURS, VALUES, now, pd.Timedelta(hours=6), pd.Timedelta(hours=72)
    )
    assert (slope * 3600, intercept, value) == pytest.approx((0.9, 5.3, 70.1))


def test_linear_regression_of_a_constant_is_flat_and_too_few_samples_give_nothing() -> None:
    assert linear_regression(np.array([-7200.0, -3600.0, 0.0]), np.array([4.0, 4.0, 4.0])) == (0.0, 4.0)
    one = predict_linear(
        SIX_HOURS[:1], VALUES[:1], SIX_HOURS[0], pd.Timedelta(hours=6), pd.Timedelta(hours=72)
    )
    assert np.isnan(one).all()


def test_predict_linear_rule_pages_at_the_threshold_and_says_where_the_line_meets_it() -> None:
    history = pd.DataFrame({"unique_id": "s", "ds": SIX_HOURS[1:], "y": VALUES[1:]})
    history = pd.concat([history, pd.DataFrame({"unique_id": ["s"], "ds": [hour(6)], "y": [5.0]})])
    # the window (00:00, 06:00] holds x = 1..6 h; thresholds just below and above the prediction decide
    value, _, intercept = predict_linear(
        pd.DatetimeIndex(history["ds"]),
        history["y"].to_numpy(),
        hour(6),
        pd.Timedelta(hours=6),
        pd.Timedelta(hours=72),
    )
    for threshold, expected in ((value - 0.01, True), (value + 0.01, False)):
        limits = pd.DataFrame({"unique_id": ["s"], "threshold": [threshold], "direction": ["above"]})
        decision = predict_linear_decisions(history, limits, window_hours=6).iloc[0]
        assert bool(decision["pages"]) is expected
    limits = pd.DataFrame({"unique_id": ["s"], "threshold": [value - 0.01], "direction": ["above"]})
    crossing = predict_linear_decisions(history, limits, window_hours=6).iloc[0]["crossing_ds"]
    assert (crossing - hour(6)) / pd.Timedelta(hours=1) == pytest.approx(
        72 - 0.01 / ((value - intercept) / 72)
    )
    below = pd.DataFrame({"unique_id": ["s"], "threshold": [0.5], "direction": ["below"]})
    assert not predict_linear_decisions(history, below, window_hours=6).iloc[0]["pages"]


def test_prophet_pages_on_a_steep_ramp_and_not_on_a_flat_line() -> None:
    ds = pd.date_range("2026-01-05", periods=14 * 24, freq="h").to_numpy()
    rng = np.random.default_rng(0)
    ramp = 20 + 0.2 * np.arange(len(ds)) + rng.normal(0, 0.2, len(ds))  # at 87 now, 90 in ~15 h
    paged = prophet_decision(("ramp", ds, ramp, 90.0, "above"))
    assert paged["pages"] and 5 <= (paged["crossing_ds"] - ds[-1]) / pd.Timedelta(hours=1) <= 25
    flat = 40 + rng.normal(0, 0.5, len(ds))
    assert not prophet_decision(("flat", ds, flat, 90.0, "above"))["pages"]


def test_a_breach_whose_ramp_starts_after_the_cutoff_is_left_out_for_every_system() -> None:
    # the ramp starts at hour 60 and crosses at 98: the cutoff at 58 sees none of it, the one at 82 does
    values = np.r_[np.zeros(60), np.linspace(0, 95, 41), np.zeros(20)]
    ramp = replace(
        labelled("r", "nab_ramp", "r", values, 90.0, "above", (10, 58, 82)), onset=60, split="tune"
    )
    flat = replace(labelled("f", "p", "f", np.zeros(121), 90.0, "above", (10, 34)), split="tune")
    truth = evaluations([ramp, flat])
    assert truth["forecastable"].tolist() == [False, False, True, True, True]
    assert truth["breach"].tolist() == [False, True, True, False, False]
    assert truth["hours_since_onset"].iloc[:3].tolist() == [-50.0, -2.0, 22.0]
    assert not_forecastable(truth, "tune") == 1
    never = decisions(truth, dict.fromkeys(truth["unique_id"], False), {})
    always = decisions(truth, dict.fromkeys(truth["unique_id"], True), {})
    results, patterns = scores_by_split(
        {"never": judged(truth, never), "always": judged(truth, always)}, ["tune"]
    )
    # the cutoff at 10 is 88 h ahead (no breach, kept), 58 is unforeseeable, 82 is the one breach scored
    assert results["tune"]["never"].evaluations == results["tune"]["always"].evaluations == 4
    assert (results["tune"]["never"].missed, results["tune"]["always"].true_pages) == (1, 1)
    assert results["tune"]["always"].false_pages == 3
    assert patterns["tune"][FRESH_RAMPS]["always"]["true_pages"] == 1  # the ramp 22 h into the history
