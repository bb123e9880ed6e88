"""The seasonal_mad detector on synthetic series: what it flags, what it leaves alone, that it is causal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.anomalies.detector import (
    DETECTOR,
    OUTPUT_COLUMNS,
    default_seasons,
    detect,
)

START = pd.Timestamp("2026-01-05")  # a Monday
DAYS = 28
WARMUP = 2 * 24  # hourly data with a daily season is judged from its third day (WARM_SEASONS = 2)


def _hourly(values: np.ndarray, uid: str = 'acme/cpu{host="a"}') -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": uid,
            "ds": pd.date_range(START, periods=len(values), freq="h"),
            "y": values.astype(float),
        }
    )


def _seasonal(seed: int = 0, days: int = DAYS) -> np.ndarray:
    """A daily cycle between ~20 and ~80 with 2 % noise: a busy-afternoon CPU."""
    hours = np.arange(days * 24)
    rng = np.random.default_rng(seed)
    return (50 + 30 * np.sin(2 * np.pi * (hours - 8) / 24)) * (1 + 0.02 * rng.standard_normal(len(hours)))


def _at_least_warning(scored: pd.DataFrame) -> pd.DataFrame:
    return scored[scored["severity"].isin(["warning", "critical"])]


def test_output_has_one_row_per_input_row_with_passthrough_columns() -> None:
    frame = pd.concat([_hourly(_seasonal(1), "b/x"), _hourly(_seasonal(2), "a/x")], ignore_index=True)
    frame["tenant"] = frame["unique_id"].str[0]
    scored = detect(frame.sample(frac=1, random_state=0), season_length=24)
    assert list(scored.columns) == [*OUTPUT_COLUMNS, "tenant"]
    assert len(scored) == len(frame)
    assert list(scored["unique_id"].unique()) == ["a/x", "b/x"]
    assert scored.groupby("unique_id")["ds"].is_monotonic_increasing.all()
    assert (scored["tenant"] == scored["unique_id"].str[0]).all()
    assert scored["anomaly_score"].between(0, 1).all()
    assert set(scored["severity"]) <= {"none", "info", "warning", "critical"}


def test_the_normal_daily_cycle_is_not_flagged() -> None:
    scored = detect(_hourly(_seasonal()), season_length=24)
    assert _at_least_warning(scored).empty
    peaks = scored[scored["ds"].dt.hour == 14]
    assert (peaks["severity"] == "none").all()
    assert (scored["reason"][~scored["is_anomaly"]] == "").all()
    assert scored["event_id"][~scored["is_anomaly"]].isna().all()


def test_a_spike_on_a_seasonal_series_is_flagged_with_a_reason() -> None:
    values = _seasonal()
    spike = 20 * 24 + 3  # 03:00, a quiet hour
    values[spike] += 40
    scored = detect(_hourly(values), season_length=24)
    point = scored.iloc[spike]
    # Far past the series' noise, one point pages; critical would need a run the likelihood backs.
    assert point["is_anomaly"] and point["severity"] == "warning"
    assert point["detector"] == DETECTOR
    assert point["anomaly_score"] > 0.7
    assert point["reason"].startswith(f"{point['y']:.4g} is ")
    assert "MADs above the usual range" in point["reason"] and "at 03:00" in point["reason"]
    assert "for this series" in point["reason"]
    assert list(_at_least_warning(scored).index) == [spike]


def test_a_drop_is_flagged_below() -> None:
    values = _seasonal()
    values[20 * 24 + 14] = 5.0
    point = detect(_hourly(values), season_length=24).iloc[20 * 24 + 14]
    assert point["severity"] == "warning" and "below the usual range" in point["reason"]


def test_a_level_shift_is_flagged_at_its_onset() -> None:
    values = _seasonal()
    onset = 18 * 24 + 10
    values[onset:] += 40
    scored = detect(_hourly(values), season_length=24)
    flagged = _at_least_warning(scored)
    assert flagged.index[0] - onset <= 1  # the page goes out at once, or one point later
    assert set(scored.loc[scored["is_anomaly"], "event_id"]) == {
        f"{scored['unique_id'].iloc[0]}@{scored['ds'].iloc[onset].isoformat()}"
    }
    assert not scored.iloc[onset + 3 * 24 :]["is_anomaly"].any()  # the new level becomes the usual one


def test_constant_series_give_no_flags_and_no_nans() -> None:
    frame = pd.concat([_hourly(np.full(DAYS * 24, 5.0), "t/c"), _hourly(np.zeros(DAYS * 24), "t/z")])
    scored = detect(frame, season_length=24)
    assert not scored["is_anomaly"].any()
    assert scored["anomaly_score"].eq(0).all()
    first = scored["ds"] == START  # nothing precedes the first point, so nothing is expected of it
    assert scored.loc[first, "expected"].isna().all() and scored.loc[~first, "expected"].notna().all()
    assert (scored.loc[~first & (scored["unique_id"] == "t/c"), "expected"] == 5.0).all()


def test_no_flags_while_warming_up() -> None:
    values = _seasonal()
    values[1 * 24 + 14] += 100
    scored = detect(_hourly(values), season_length=24)
    assert not scored.iloc[:WARMUP]["is_anomaly"].any()
    assert (scored.iloc[:WARMUP]["severity"] == "none").all()


def test_appending_future_points_never_changes_past_rows() -> None:
    values_a, values_b = _seasonal(1), _seasonal(2)
    for index in (15 * 24, 20 * 24 + 5, 20 * 24 + 7):
        values_a[index] += 50
    values_b[20 * 24 + 6 :] += 40
    frame = pd.concat([_hourly(values_a, "t/a"), _hourly(values_b, "t/b")], ignore_index=True)
    full = detect(frame, season_length=24)
    assert full["is_anomaly"].sum() >= 4
    for cutoff in (START + pd.Timedelta(hours=20 * 24 + 6), START + pd.Timedelta(hours=20 * 24 + 7)):
        prefix = detect(frame[frame["ds"] < cutoff], season_length=24)
        pd.testing.assert_frame_equal(prefix, full[full["ds"] < cutoff].reset_index(drop=True))


def test_a_three_point_spike_is_one_event() -> None:
    values = _seasonal()
    first = 21 * 24 + 13
    values[first : first + 3] *= 4
    scored = detect(_hourly(values), season_length=24)
    flagged = scored[scored["is_anomaly"]]
    assert list(flagged.index) == [first, first + 1, first + 2]
    onset = scored["ds"].iloc[first].isoformat()
    assert set(flagged["event_id"]) == {f"{scored['unique_id'].iloc[0]}@{onset}"}


def test_flags_within_the_suppression_window_join_the_event_a_longer_quiet_spell_opens_a_new_one() -> None:
    values = _seasonal()
    for index in (600, 602, 610, 613):  # 2 h, then 8 h, then 3 h apart; SUPPRESSION is 6 h
        values[index] += 50
    scored = detect(_hourly(values), season_length=24)
    flagged = scored[scored["is_anomaly"]]
    assert list(flagged.index) == [600, 602, 610, 613]
    assert flagged["event_id"].nunique() == 2
    assert flagged.loc[600, "event_id"] == flagged.loc[602, "event_id"]
    assert flagged.loc[610, "event_id"] == flagged.loc[613, "event_id"]
    assert not scored.loc[601, "is_anomaly"] and pd.isna(scored.loc[601, "event_id"])


def test_weekly_pattern_on_daily_data() -> None:
    days = pd.date_range(START, periods=70, freq="D")
    rng = np.random.default_rng(3)
    cost = np.where(days.dayofweek >= 5, 300.0, 420.0) * (1 + 0.02 * rng.standard_normal(len(days)))
    cost[60] *= 2.5
    scored = detect(pd.DataFrame({"unique_id": "acme/cost", "ds": days, "y": cost}), season_length=7)
    assert list(_at_least_warning(scored).index) == [60]
    assert f"on {days[60]:%A}s" in scored.loc[60, "reason"]


def test_sensitivity_orders_the_number_of_flags() -> None:
    values = _seasonal()
    values[500:520] += np.linspace(0, 12, 20)
    counts = [
        detect(_hourly(values), 24, sensitivity)["is_anomaly"].sum()
        for sensitivity in ("low", "medium", "high")
    ]
    assert counts[0] <= counts[1] <= counts[2] and counts[2] > counts[0]
    with pytest.raises(ValueError, match="sensitivity 'extreme' is not one of"):
        detect(_hourly(values), 24, "extreme")


def test_bad_input_is_rejected_with_a_message() -> None:
    frame = _hourly(_seasonal())
    with pytest.raises(ValueError, match=r"missing \['y'\]"):
        detect(frame.drop(columns="y"), 24)
    with pytest.raises(ValueError, match="repeats"):
        detect(pd.concat([frame, frame.tail(1)]), 24)


def test_empty_frame() -> None:
    scored = detect(_hourly(np.array([])), 24)
    assert scored.empty and list(scored.columns) == OUTPUT_COLUMNS


def test_default_seasons_cover_a_week() -> None:
    assert default_seasons(24, pd.Timedelta(hours=1)) == 7
    assert default_seasons(7, pd.Timedelta(days=1)) == 4
    assert default_seasons(1, pd.Timedelta(minutes=5)) == 7
