import pandas as pd
import pytest

from intentvision_dagster.frequency import horizon_steps, infer_freq, season_lengths
from tests.forecasting.factories import long_frame


def _with_gaps(freq: str, periods: int = 50) -> pd.DataFrame:
    frame = pd.concat(
        [long_frame(range(periods), 'up{host="a"}', freq), long_frame(range(periods), 'up{host="b"}', freq)]
    )
    return frame.drop(index=frame.index[[3, 4, 5, 20]])


@pytest.mark.parametrize("freq", ["5min", "h", "D"])
def test_infer_freq_ignores_gaps(freq: str) -> None:
    assert infer_freq(_with_gaps(freq)) == freq


def test_infer_freq_snaps_scrape_jitter_and_unsorted_rows() -> None:
    frame = long_frame(range(40), "up", "5min")
    frame["ds"] += pd.to_timedelta([(i % 3) - 1 for i in range(40)], unit="s")
    assert infer_freq(frame.sample(frac=1, random_state=1)) == "5min"


def test_infer_freq_series_start_at_different_times() -> None:
    frame = pd.concat(
        [long_frame(range(10), "a", "h"), long_frame(range(10), "b", "h", pd.Timestamp("2024-03-01 00:30"))]
    )
    assert infer_freq(frame) == "h"


def test_infer_freq_needs_two_points() -> None:
    frame = pd.concat([long_frame([1.0], "a"), long_frame([2.0], "b")])
    with pytest.raises(ValueError, match="no series has 2 or more distinct timestamps"):
        infer_freq(frame)


@pytest.mark.parametrize(
    ("freq", "expected"),
    [
        ("1min", [1440, 10080]),
        ("5min", [288, 2016]),
        ("10min", [144, 1008]),
        ("15min", [96, 672]),
        ("30min", [48, 336]),
        ("h", [24, 168]),
        ("D", [7]),
        ("7D", []),
        ("W", []),
    ],
)
def test_season_lengths(freq: str, expected: list[int]) -> None:
    assert season_lengths(freq) == expected


def test_horizon_steps_rounds_up_and_is_at_least_one() -> None:
    assert horizon_steps(pd.Timedelta(hours=72), "h") == 72
    assert horizon_steps(pd.Timedelta(minutes=61), "5min") == 13
    assert horizon_steps(pd.Timedelta(minutes=1), "D") == 1


def test_horizon_steps_rejects_calendar_frequencies() -> None:
    with pytest.raises(ValueError, match="not a fixed-length step"):
        horizon_steps(pd.Timedelta(days=14), "W")
