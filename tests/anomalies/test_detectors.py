"""Each detector on a constructed series: what it flags (once, with a reason) and what it must leave alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.anomalies.detector import DETECTORS, detect, duration_text, stale_points
from tests.anomalies.test_detector import START, WARMUP, _hourly, _seasonal

DAYS = 35


def _noisy(level: float = 120.0, days: int = 21, seed: int = 5) -> np.ndarray:
    """No daily pattern, 4 % noise: a queue depth or a latency."""
    return level * (1 + 0.04 * np.random.default_rng(seed).standard_normal(days * 24))


def _business_hours(phase_shift_from: pd.Timestamp | None = None) -> pd.DataFrame:
    """Weekday business-hours CPU (peak 14:00 local, weekends at 55 %); local time is UTC until DST."""
    ds = pd.date_range(START, periods=DAYS * 24, freq="h")
    local = (
        ds.hour if phase_shift_from is None else np.where(ds < phase_shift_from, ds.hour, (ds.hour + 1) % 24)
    )
    bump = np.clip(1 - np.abs((np.asarray(local) - 14 + 12) % 24 - 12) / 8, 0, 1) ** 1.5
    weekend = np.where(ds.dayofweek >= 5, 0.55, 1.0)
    noise = 1 + 0.03 * np.random.default_rng(1).standard_normal(len(ds))
    return pd.DataFrame({"unique_id": "acme/cpu", "ds": ds, "y": (12 + 48 * bump * weekend) * noise})


def _events(scored: pd.DataFrame) -> pd.DataFrame:
    return scored[scored["is_anomaly"]].drop_duplicates("event_id")


def test_a_sustained_level_shift_is_one_event_from_its_onset_named_as_a_shift() -> None:
    values = _noisy()
    onset = 20 * 24 - 100
    values[onset:] += 220
    for season_length in (1, 24):
        scored = detect(_hourly(values), season_length)
        events = _events(scored)
        assert list(events.index) == [onset]
        shifts = scored[scored["detector"] == "level_shift"]
        assert len(shifts) == 1 and shifts.index[0] - onset < 6
        reason = shifts["reason"].iloc[0]
        assert reason.startswith("level shifted from 1") and "to 3" in reason and "(x2.9)" in reason
        assert f"at {scored['ds'].iloc[onset]:%Y-%m-%d %H:%M}" in reason
        assert not scored.iloc[onset + 24 :]["is_anomaly"].any()


def test_a_stuck_exporter_is_flagged_once_as_a_flatline() -> None:
    values = _noisy()
    stuck = 18 * 24 + 5
    values[stuck : stuck + 30] = values[stuck - 1]  # the last real value, repeated: inside the usual range
    scored = detect(_hourly(values), 24)
    flagged = scored[scored["is_anomaly"]]
    points = stale_points(24)
    assert list(flagged.index) == [
        stuck + points - 2
    ]  # the 6th identical point (the one before the run is 1st)
    point = flagged.iloc[0]
    assert point["detector"] == "flatline" and point["severity"] == "warning"
    assert (
        point["reason"] == f"flat at {values[stuck - 1]:.4g} for 5 h ({points} identical points) after moving"
    )


def test_a_series_that_is_always_zero_at_night_is_not_a_flatline() -> None:
    hours = np.arange(DAYS * 24)
    values = np.where(
        hours % 24 < 8, 0.0, 40 * (1 + 0.02 * np.random.default_rng(2).standard_normal(len(hours)))
    )
    scored = detect(_hourly(values), 24)
    assert not (scored["detector"] == "flatline").any()
    assert not scored["severity"].isin(["warning", "critical"]).any()


def test_the_first_point_after_a_gap_says_how_long_data_was_missing() -> None:
    frame = _hourly(_seasonal())
    frame = frame.drop(index=range(20 * 24 + 5, 20 * 24 + 15)).reset_index(drop=True)
    scored = detect(frame, 24)
    flagged = scored[scored["is_anomaly"]]
    assert len(flagged) == 1
    point = flagged.iloc[0]
    assert point["ds"] == START + pd.Timedelta(hours=20 * 24 + 15)
    assert point["detector"] == "no_data" and point["severity"] == "info"
    assert point["reason"] == "no data for 11 h"


def test_short_gaps_are_not_flagged() -> None:
    frame = _hourly(_seasonal())
    frame = frame.drop(index=[*range(20 * 24, 20 * 24 + 4), 22 * 24 + 7])
    assert not detect(frame, 24)["is_anomaly"].any()


def test_business_hours_peaks_and_weekends_do_not_fire_once_a_week_is_known() -> None:
    """Judged from day 3, the first Saturday (day 6) is new to the series: one event, then never again."""
    scored = detect(_business_hours(), 24)
    flagged = scored[scored["is_anomaly"]]
    assert flagged["event_id"].nunique() <= 1
    assert (flagged["ds"] < START + pd.Timedelta(days=7)).all()


def test_a_dst_change_stays_below_warning() -> None:
    """UTC data of a local-time pattern: a DST change moves every peak by one hour overnight."""
    scored = detect(_business_hours(phase_shift_from=START + pd.Timedelta(days=21)), 24)
    later = scored[scored["ds"] >= START + pd.Timedelta(days=7)]
    assert not later["severity"].isin(["warning", "critical"]).any()


def test_a_spike_on_a_noisy_series_is_caught_by_a_one_step_detector() -> None:
    values = _noisy()
    values[19 * 24 + 7] *= 2.5
    scored = detect(_hourly(values), 1)
    flagged = scored[scored["is_anomaly"]]
    assert list(flagged.index) == [19 * 24 + 7]
    assert flagged["detector"].iloc[0] in DETECTORS and flagged["severity"].iloc[0] == "critical"


def test_a_spike_on_a_series_whose_days_differ_in_level_is_a_forecast_residual() -> None:
    """Days 15 % apart in level widen the usual range; the one-step forecast knows today's level."""
    rng = np.random.default_rng(4)
    hours = np.arange(28 * 24)
    daily = np.repeat(1 + 0.15 * rng.standard_normal(28), 24)
    values = (
        (50 + 30 * np.sin(2 * np.pi * (hours - 8) / 24))
        * daily
        * (1 + 0.005 * rng.standard_normal(len(hours)))
    )
    spike = 21 * 24 + 3
    values[spike : spike + 3] += 80  # three hours: one point of 5 MADs alone is not unlikely enough
    scored = detect(_hourly(values), 24)
    flagged = scored[scored["severity"].isin(["warning", "critical"])]
    assert len(flagged) >= 1 and set(flagged.index) <= {spike, spike + 1, spike + 2}
    assert (flagged["detector"] == "forecast_residual").all()
    assert "MADs above the one-step forecast" in flagged["reason"].iloc[0]


def test_warming_up_points_say_so_instead_of_flagging() -> None:
    values = _seasonal()
    values[1 * 24 + 3] += 100
    scored = detect(_hourly(values), 24)
    point = scored.loc[1 * 24 + 3]
    assert not point["is_anomaly"] and point["severity"] == "none"
    assert point["reason"] == f"warming up: {1 * 24 + 4} of {WARMUP} points"


def test_every_detector_is_causal() -> None:
    """Prefixes score exactly like the full frame: spikes, a shift, a flatline and a gap in three series."""
    shift, stuck, gap = _noisy(seed=1), _noisy(seed=2), _hourly(_seasonal(3), "t/gap")
    shift[19 * 24 + 3 :] += 200
    stuck[19 * 24 + 1 : 19 * 24 + 20] = stuck[19 * 24]
    shift[18 * 24 + 2] *= 2
    gap = gap.drop(index=range(19 * 24 + 2, 19 * 24 + 12))
    frame = pd.concat([_hourly(shift, "t/shift"), _hourly(stuck, "t/stuck"), gap], ignore_index=True)
    full = detect(frame, 24)
    assert set(full.loc[full["is_anomaly"], "detector"]) >= {"level_shift", "flatline", "no_data"}
    for hours in (18 * 24 + 3, 19 * 24 + 5, 19 * 24 + 7, 19 * 24 + 13, 20 * 24):
        cutoff = START + pd.Timedelta(hours=hours)
        prefix = detect(frame[frame["ds"] < cutoff], 24)
        pd.testing.assert_frame_equal(prefix, full[full["ds"] < cutoff].reset_index(drop=True))


@pytest.mark.parametrize("value", [0.0, 5.0, 1e12])
def test_constant_series_with_gaps_give_no_flags(value: float) -> None:
    frame = _hourly(np.full(DAYS * 24, value))
    scored = detect(frame.iloc[::2], 24)  # every other hour: the median step is 2 h, so no gap
    assert not scored["is_anomaly"].any() and scored["anomaly_score"].eq(0).all()


def test_duration_text() -> None:
    assert duration_text(pd.Timedelta(hours=2, minutes=35)) == "2 h 35 min"
    assert duration_text(pd.Timedelta(days=3, hours=4, minutes=5)) == "3 d 4 h"
    assert duration_text(pd.Timedelta(seconds=45)) == "45 s"


def _five_minute(
    extra: np.ndarray | None = None, noise_factor: np.ndarray | None = None, seed: int = 1
) -> pd.DataFrame:
    """14 days of 5-minute data (NAB's shape): a daily cycle around 100 with Gaussian noise of 4."""
    points = 14 * 288
    t = np.arange(points)
    noise = 4.0 * np.random.default_rng(seed).standard_normal(points)
    values = (
        100 + 20 * np.sin(2 * np.pi * (t / 288 - 0.3)) + noise * (1 if noise_factor is None else noise_factor)
    )
    values = values + (0 if extra is None else extra)
    return pd.DataFrame(
        {"unique_id": "acme/queue", "ds": pd.date_range(START, periods=points, freq="5min"), "y": values}
    )


ONSET_5MIN = 10 * 288 + 100  # day 10, 08:20: a week of history for the window detectors


def _pages(scored: pd.DataFrame) -> pd.DataFrame:
    return scored[scored["severity"].isin(["warning", "critical"])].drop_duplicates("event_id")


def test_a_variance_change_inside_the_usual_range_pages_once_as_a_variance_change() -> None:
    """Noise 2.5x for 12 h: no single point is far out, the spread of the last 2 h is."""
    factor = np.ones(14 * 288)
    factor[ONSET_5MIN : ONSET_5MIN + 144] = 2.5
    pages = _pages(detect(_five_minute(noise_factor=factor), 288))
    assert len(pages) == 1
    assert pages["detector"].iloc[0] == "variance_change"
    assert 0 <= pages.index[0] - ONSET_5MIN <= 48  # within 4 h
    assert "spread of the last 2 h" in pages["reason"].iloc[0]


def test_a_steady_ramp_from_the_start_does_not_page() -> None:
    """A disk filling at the same pace all along: steady growth is the series' normal, a capacity matter."""
    ramp = 60 * np.arange(14 * 288) / (14 * 288)
    scored = detect(_five_minute(extra=ramp), 288)
    assert _pages(scored).empty


def test_a_change_of_slope_pages_once_as_a_sustained_shift() -> None:
    """Flat until day 10, then +40 a day: the residuals drift off both the usual day and last week."""
    t = np.arange(14 * 288)
    slope = np.where(t >= ONSET_5MIN, 40 * (t - ONSET_5MIN) / 288, 0.0)
    pages = _pages(detect(_five_minute(extra=slope, seed=3), 288))
    assert len(pages) == 1
    assert pages["detector"].iloc[0] == "sustained_shift"
    assert 0 < pages.index[0] - ONSET_5MIN <= 96  # within 8 h: +13 by then, 3 noise deviations
    assert "same time last week" in pages["reason"].iloc[0]
