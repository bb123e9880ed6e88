"""The anomaly likelihood and noise level on hand-checkable cases, and what they change in ``detect``: a
noisy series earns a higher bar, flags that follow an event join it, critical needs agreement."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.anomalies.detector import SUPPRESSION, detect
from intentvision_dagster.anomalies.likelihood import (
    AVERAGING_POINTS,
    ESTIMATION_POINTS,
    VARIANCE_FLOOR,
    anomaly_likelihood,
    likelihood_nines,
    noise_level,
)
from tests.anomalies.test_detector import START, _hourly

DAYS = 28


def _cycle(noise: np.ndarray) -> np.ndarray:
    """A daily cycle between 70 and 130 plus ``noise``."""
    return 100 + 30 * np.sin(2 * np.pi * np.arange(len(noise)) / 24) + noise


def _pages(scored: pd.DataFrame) -> pd.DataFrame:
    return scored[scored["severity"].isin(["warning", "critical"])]


def test_likelihood_of_one_raised_score_after_a_flat_history() -> None:
    """200 scores of 0.1, then one of 0.6: the average of the last 10 is 0.15 against a past of mean 0.1 and
    standard deviation 0, floored to sqrt(0.0003); z = 0.05 / 0.01732 = 2.887, likelihood = Phi(z)."""
    raw = np.r_[np.full(200, 0.1), 0.6]
    likelihood = anomaly_likelihood(raw, np.zeros(len(raw)))
    z = (0.15 - 0.1) / math.sqrt(VARIANCE_FLOOR)
    expected = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    assert likelihood[-1] == pytest.approx(expected, abs=1e-9) and expected == pytest.approx(
        0.99805, abs=1e-5
    )
    assert likelihood_nines(likelihood[-1:])[0] == pytest.approx(-math.log10(1 - expected))
    assert likelihood[-2] == pytest.approx(0.5)  # the average equals the past: as likely as not


def test_likelihood_is_neutral_until_estimated_and_per_series() -> None:
    """0.5 until ``ESTIMATION_POINTS`` averages exist; NaN (warming up) is not history; series are apart."""
    quiet = np.r_[np.full(5, np.nan), np.full(ESTIMATION_POINTS, 0.1), 0.9]
    busy = np.full(len(quiet), 0.9)
    raw, groups = np.r_[quiet, busy], np.repeat(["a", "b"], len(quiet))
    likelihood = anomaly_likelihood(raw, groups)
    assert (likelihood[: 5 + ESTIMATION_POINTS] == 0.5).all()
    assert likelihood[len(quiet) - 1] > 0.9999  # series a: 0.9 after a calm past
    assert likelihood[-1] == pytest.approx(0.5)  # series b: 0.9 is its usual, whatever series a did


def test_a_calm_stretch_is_not_unusual() -> None:
    """One-sided, unlike HTM: recent scores below the usual average give a likelihood below 0.5."""
    raw = np.r_[np.tile([0.1, 0.5], 100), np.zeros(AVERAGING_POINTS)]
    assert anomaly_likelihood(raw, np.zeros(len(raw)))[-1] < 0.01


def test_noise_level_is_the_past_high_quantile() -> None:
    """Strengths of 2 with every 50th at 9: the 99.5 % quantile of the past reaches the 9s."""
    strength = np.where(np.arange(400) % 50 == 49, 9.0, 2.0)
    level = noise_level(strength, np.zeros(len(strength)))
    assert (level[:ESTIMATION_POINTS] == 0).all()  # unknown yet
    assert level[-1] == pytest.approx(9.0)
    assert noise_level(np.full(400, 2.0), np.zeros(400))[-1] == pytest.approx(2.0)


def test_likelihood_is_causal() -> None:
    rng = np.random.default_rng(3)
    raw = rng.uniform(0, 0.3, 600)
    raw[400:410] = 0.95
    full = anomaly_likelihood(raw, np.zeros(len(raw)))
    for cut in (150, 405, 420):
        np.testing.assert_array_equal(anomaly_likelihood(raw[:cut], np.zeros(cut)), full[:cut])


def test_a_noisy_series_earns_a_higher_bar_a_quiet_one_pages_on_a_modest_jump() -> None:
    """Same cycle, same core spread; one series has regular heavy-tailed outliers. Its normal noise pages
    nothing; a four-hour jump of 15 (about 12 % of the level) pages on the quiet series, not the noisy one."""
    rng = np.random.default_rng(7)
    quiet = _cycle(rng.standard_normal(DAYS * 24))
    noisy = _cycle(rng.standard_t(1.5, DAYS * 24))
    assert _pages(detect(_hourly(noisy, "t/noisy"), 24)).empty
    jump = slice(20 * 24 + 3, 20 * 24 + 7)
    quiet[jump] += 15
    noisy[jump] += 15
    paged = _pages(detect(_hourly(quiet, "t/quiet"), 24))
    assert len(paged) >= 1 and set(paged.index) <= set(range(jump.start, jump.stop))
    assert "for this series" in paged["reason"].iloc[0]
    assert _pages(detect(_hourly(noisy, "t/noisy"), 24)).empty


def test_a_flapping_incident_is_one_event_with_one_page() -> None:
    """Spikes every 3 hours for 15 hours: one event (each flag within SUPPRESSION of the previous one)."""
    values = _cycle(np.random.default_rng(1).standard_normal(DAYS * 24))
    burst = list(range(20 * 24, 20 * 24 + 16, 3))
    values[burst] += 60
    scored = detect(_hourly(values), 24)
    flagged = scored[scored["is_anomaly"]]
    assert pd.Timedelta(hours=3) < SUPPRESSION
    assert set(flagged.index) <= set(burst) and len(flagged) >= 4
    assert flagged["event_id"].nunique() == 1
    onset = START + pd.Timedelta(hours=int(flagged.index[0]))
    assert flagged["event_id"].iloc[0].endswith(f"@{onset:%Y-%m-%dT%H:%M:%S}")
    # It pages (reaches warning), and only as that one event.
    assert _pages(flagged)["event_id"].unique().tolist() == [flagged["event_id"].iloc[0]]


def test_critical_needs_detectors_to_agree_and_says_so() -> None:
    """A sustained step far out: the seasonal and one-step detectors both pass the critical bar and the
    likelihood backs them; the reason names them."""
    values = _cycle(np.random.default_rng(2).standard_normal(DAYS * 24))
    values[20 * 24 + 3 : 20 * 24 + 9] += 80
    scored = detect(_hourly(values), 24)
    critical = scored[scored["severity"] == "critical"]
    assert len(critical) >= 1
    assert "(critical: seasonal_mad and forecast_residual agree; likelihood " in critical["reason"].iloc[0]


def test_one_detector_alone_is_not_critical() -> None:
    """Days 15 % apart in level blunt the seasonal detector; a 3-hour jump that only the one-step forecast
    sees clearly is a warning, never critical."""
    rng = np.random.default_rng(4)
    hours = np.arange(DAYS * 24)
    daily = np.repeat(1 + 0.15 * rng.standard_normal(DAYS), 24)
    values = (
        (50 + 30 * np.sin(2 * np.pi * (hours - 8) / 24))
        * daily
        * (1 + 0.005 * rng.standard_normal(len(hours)))
    )
    values[21 * 24 + 3 : 21 * 24 + 6] += 80
    scored = detect(_hourly(values), 24)
    paged = _pages(scored)
    assert len(paged) >= 1 and (paged["severity"] == "warning").all()
    assert (paged["detector"] == "forecast_residual").all()
