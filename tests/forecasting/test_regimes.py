import numpy as np
import pandas as pd

from intentvision_dagster.forecasting.regimes import current_regime, hinge_start, persistent_jumps

HOURS = 24 * 21
T = np.arange(HOURS, dtype="float64")


def frame(**series: np.ndarray) -> pd.DataFrame:
    ds = pd.Timestamp("2026-01-01") + pd.to_timedelta(T, unit="h")
    return pd.concat(pd.DataFrame({"unique_id": name, "ds": ds, "y": y}) for name, y in series.items())


def test_one_lasting_drop_is_levelled_out_and_the_trend_kept() -> None:
    rng = np.random.default_rng(1)
    cleanup = 50 + 0.05 * T + rng.normal(0, 0.3, HOURS)
    cleanup[-48:] -= 30
    assert persistent_jumps(cleanup).tolist() == [HOURS - 48]
    levelled = current_regime(frame(cleanup=cleanup), [24])
    slope = np.polyfit(np.arange(len(levelled)), levelled["y"], 1)[0]
    assert abs(slope - 0.05) < 0.01  # one line through the new level, at the old rate
    assert levelled["y"].iloc[-1] == cleanup[-1]  # now is untouched
    assert levelled["y"].max() < 70  # the pre-cleanup level (up to ~75) is gone


def test_a_sawtooth_of_restarts_is_the_pattern_and_left_alone() -> None:
    restarts = 35 + (T % 60) * (50 / 60)
    assert len(persistent_jumps(restarts)) > 2
    pd.testing.assert_frame_equal(current_regime(frame(restarts=restarts), [24]), frame(restarts=restarts))


def test_a_spike_is_not_a_shift() -> None:
    spiky = 50 + np.sin(2 * np.pi * T / 24)
    spiky[200:202] += 40
    assert persistent_jumps(spiky).tolist() == []


def test_a_recent_bend_in_the_trend_cuts_the_history_there() -> None:
    rng = np.random.default_rng(2)
    late = 40 + rng.normal(0, 0.5, HOURS) + 3 * np.sin(2 * np.pi * T / 24)
    late[-120:] += 0.3 * np.arange(120)
    start = hinge_start(late, 24)
    assert start is not None and abs(start - (HOURS - 120)) <= 6
    assert len(current_regime(frame(late=late), [24])) == HOURS - start


def test_a_steady_trend_with_a_daily_swing_has_no_bend() -> None:
    rng = np.random.default_rng(3)
    steady = 30 + 0.05 * T + 8 * np.sin(2 * np.pi * T / 24) + rng.normal(0, 1, HOURS)
    assert hinge_start(steady, 24) is None
    assert len(current_regime(frame(steady=steady), [24])) == HOURS
