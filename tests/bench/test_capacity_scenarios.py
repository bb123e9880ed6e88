"""The capacity scenarios: labels that match the data, the promised mix, a deterministic split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.capacity_scenarios import (
    HORIZON,
    NAB_FOLDER,
    PATTERNS,
    START,
    Scenario,
    build_suite,
    crossed,
    evaluations,
    histories,
    labelled,
)

NAB_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "nab"
needs_nab = pytest.mark.skipif(
    not (NAB_DIR / "data" / NAB_FOLDER).is_dir(),
    reason=f"NAB dev subset not present: {NAB_DIR / 'data' / NAB_FOLDER} is missing",
)


@pytest.fixture(scope="module")
def synthetic() -> list[Scenario]:
    return build_suite(seed=0)


@pytest.fixture(scope="module")
def with_nab() -> list[Scenario]:
    return build_suite(seed=0, nab_dir=NAB_DIR)


def assert_labels_match_the_data(scenarios: list[Scenario]) -> None:
    for s in scenarios:
        hits = np.flatnonzero(crossed(s.values, s.threshold, s.direction))
        if s.first_crossing is None:
            assert hits.size == 0, f"{s.name} is labelled 'never' but crosses at {hits[:3]}"
        else:
            assert hits[0] == s.first_crossing, s.name
        assert len(s.cutoffs) >= 2, s.name
        assert s.first_crossing is None or max(s.cutoffs) < s.first_crossing, s.name


def test_labelled_takes_the_first_crossing_from_the_values_and_drops_later_cutoffs() -> None:
    values = np.array([50.0, 70.0, 89.9, 90.0, 40.0, 95.0])
    up = labelled("u", "p", "u", values, 90.0, "above", cutoffs=range(6))
    assert (up.first_crossing, up.cutoffs) == (3, (0, 1, 2))
    down = labelled("d", "p", "d", values, 45.0, "below", cutoffs=range(6))
    assert (down.first_crossing, down.cutoffs) == (4, (0, 1, 2, 3))
    never = labelled("n", "p", "n", values, 96.0, "above", cutoffs=range(6))
    assert (never.first_crossing, never.cutoffs) == (None, (0, 1, 2, 3, 4, 5))


def test_synthetic_labels_match_the_data(synthetic: list[Scenario]) -> None:
    assert len(synthetic) == sum(count for _, count in PATTERNS.values())
    assert_labels_match_the_data(synthetic)


@needs_nab
def test_the_full_suite_has_300_plus_series_with_nab_negatives_and_ramps(with_nab: list[Scenario]) -> None:
    assert len(with_nab) >= 300
    assert_labels_match_the_data(with_nab)
    nab = [s for s in with_nab if s.pattern.startswith("nab_")]
    assert {s.pattern for s in nab} == {"nab_negative", "nab_ramp"}
    assert all(s.first_crossing is None for s in nab if s.pattern == "nab_negative")
    assert all(s.first_crossing is not None for s in nab if s.pattern == "nab_ramp")
    assert len({s.family for s in nab}) == 16  # every realAWSCloudwatch file but the 104-hour one


def test_series_meant_never_to_reach_the_line_never_do(synthetic: list[Scenario]) -> None:
    never = [s for s in synthetic if s.pattern in ("spiky_never", "flat_cpu")]
    assert never and all(s.first_crossing is None for s in never)
    spiky_peaks = [s.values.max() / s.threshold for s in synthetic if s.pattern == "spiky_never"]
    assert max(spiky_peaks) > 0.97  # the spikes come close


def test_every_pattern_breaches_and_the_mix_covers_near_far_and_never(synthetic: list[Scenario]) -> None:
    truth = evaluations(synthetic)
    breaching = truth[truth["breach"]].groupby("pattern")["scenario"].nunique()
    assert set(breaching.index) == set(PATTERNS) - {"spiky_never", "flat_cpu"}
    ahead = truth["hours_to_crossing"]
    assert (ahead <= 24).sum() > 50
    assert ((ahead > 24) & (ahead <= HORIZON)).sum() > 100
    assert (ahead > HORIZON).sum() > 100
    assert ahead.isna().sum() > 500
    assert truth["breach"].eq(ahead <= HORIZON).all()
    assert (ahead.dropna() > 0).all()


def test_histories_are_two_to_four_weeks_hourly_and_stop_at_the_cutoff(synthetic: list[Scenario]) -> None:
    scenario = synthetic[0]
    truth = evaluations([scenario])
    history = histories([scenario], truth)
    for row in truth.itertuples():
        rows = history[history["unique_id"] == row.unique_id]
        assert len(rows) == row.cutoff + 1
        assert rows["ds"].iloc[-1] == row.cutoff_ds == START + pd.Timedelta(hours=row.cutoff)
        assert rows["ds"].diff().dropna().eq(pd.Timedelta(hours=1)).all()
        np.testing.assert_array_equal(rows["y"].to_numpy(), scenario.values[: row.cutoff + 1])
    first_history_days = min(s.cutoffs[0] for s in synthetic) / 24
    assert 14 <= first_history_days < 29


def test_the_suite_is_deterministic_and_a_quick_run_is_a_balanced_subset(synthetic: list[Scenario]) -> None:
    quick = build_suite(seed=0, per_pattern=2)
    by_name = {s.name: s for s in synthetic}
    assert len(quick) == 2 * len(PATTERNS)
    for s in quick:
        np.testing.assert_array_equal(s.values, by_name[s.name].values)
        assert (s.threshold, s.cutoffs, s.split) == (
            by_name[s.name].threshold,
            by_name[s.name].cutoffs,
            by_name[s.name].split,
        )
    halves = pd.DataFrame([(s.pattern, s.split) for s in quick], columns=["pattern", "split"])
    assert (halves.groupby("pattern")["split"].nunique() == 2).all()
    other_seed = build_suite(seed=1, per_pattern=1)
    assert not np.array_equal(other_seed[0].values, by_name[other_seed[0].name].values)


@needs_nab
def test_split_halves_cover_every_pattern_and_share_no_family(with_nab: list[Scenario]) -> None:
    frame = pd.DataFrame(
        [(s.pattern, s.family, s.split) for s in with_nab], columns=["pattern", "family", "split"]
    )
    assert set(frame["split"]) == {"tune", "report"}
    per_pattern = frame.groupby("pattern")["split"].nunique()
    assert (per_pattern == 2).all()
    assert (frame.groupby("family")["split"].nunique() == 1).all()
    counts = frame.drop_duplicates("family").groupby(["pattern", "split"]).size().unstack()
    assert ((counts["tune"] - counts["report"]).abs() <= 1).all()
