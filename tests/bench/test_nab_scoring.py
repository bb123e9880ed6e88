"""NAB scorer against hand-computed cases from the NAB data folder's SCORING.md."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.nab_scoring import (
    NabFile,
    Profile,
    load_corpus,
    load_profiles,
    normalise,
    optimal_threshold,
    score_corpus,
    score_file,
    sweep,
)

NAB_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "nab"
STANDARD = Profile("standard", tp=1.0, fp=0.11, fn=1.0)
LOW_FN = Profile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0)
N_ROWS = 100  # probation = floor(0.15 * 100) = 15 rows
WINDOW = (40, 49)  # width 10


def nab_file(
    windows: tuple[tuple[int, int], ...] = (WINDOW,), name: str = "f.csv", n: int = N_ROWS
) -> NabFile:
    frame = pd.DataFrame(
        {"timestamp": pd.date_range("2024-01-01", periods=n, freq="5min"), "value": np.zeros(n)}
    )
    return NabFile(name, frame, windows)


def detections(*rows: int, n: int = N_ROWS) -> np.ndarray:
    scores = np.zeros(n)
    scores[list(rows)] = 1.0
    return scores


def raw(*rows: int, profile: Profile = STANDARD, file: NabFile | None = None) -> float:
    return score_file(detections(*rows), file or nab_file(), 0.5, profile).raw


def test_detection_at_window_start_earns_a_tp() -> None:
    score = score_file(detections(40), nab_file(), 0.5, STANDARD)
    assert score.raw == pytest.approx(1.0)
    assert (score.true_positives, score.false_negatives, score.false_positives) == (1, 0, 0)
    assert score.detected_windows == (True,)


def test_detection_before_first_window_costs_full_a_fp_plus_the_miss() -> None:
    score = score_file(detections(20), nab_file(), 0.5, STANDARD)
    assert score.raw == pytest.approx(-0.11 - 1.0)
    assert (score.true_positives, score.false_negatives, score.false_positives) == (0, 1, 1)


def test_detection_in_probationary_period_is_ignored() -> None:
    score = score_file(detections(14), nab_file(), 0.5, STANDARD)
    assert score.raw == pytest.approx(-1.0)
    assert score.false_positives == 0
    assert raw(15) == pytest.approx(-1.11)  # the first scored row counts


def test_only_first_detection_in_window_counts() -> None:
    # x = -(49 - 42 + 1) / 10 = -0.8, value S(-0.8) / S(-1) = tanh(2) / tanh(2.5) ≈ 0.97711
    expected = math.tanh(2.0) / math.tanh(2.5)
    assert raw(42, 45, 49) == pytest.approx(expected)
    assert expected == pytest.approx(0.97711, abs=1e-5)
    assert raw(40, 41, 49) == pytest.approx(1.0)


def test_detection_after_window_is_weighted_by_sigmoid() -> None:
    # y = (54 - 49) / (10 - 1) = 5/9, u = tanh(-2.5 * 5/9) = -tanh(1.38889) ≈ -0.88293
    assert raw(40, 54) == pytest.approx(1.0 - 0.11 * 0.88293, abs=1e-5)
    assert raw(40, 50) == pytest.approx(1.0 - 0.11 * math.tanh(2.5 / 9))  # right after: cheap
    assert raw(40, 77) == pytest.approx(1.0 - 0.11)  # y = 28/9 > 3: full penalty
    assert raw(40, 54, profile=Profile("low_fp", tp=1.0, fp=0.22, fn=1.0)) == pytest.approx(
        1.0 - 0.22 * 0.88293, abs=1e-5
    )


def test_every_flagged_row_outside_windows_is_its_own_false_positive() -> None:
    score = score_file(detections(20, 21, 22), nab_file(), 0.5, STANDARD)
    assert score.false_positives == 3
    assert score.raw == pytest.approx(-1.0 - 3 * 0.11)
    no_windows = nab_file(windows=())
    assert raw(30, 90, file=no_windows) == pytest.approx(-0.22)


def test_perfect_detector_normalises_to_100_and_null_to_0() -> None:
    corpus = [nab_file(((40, 49), (70, 79)), "a.csv"), nab_file((), "b.csv"), nab_file((WINDOW,), "c.csv")]
    perfect = {"a.csv": detections(40, 70), "b.csv": detections(), "c.csv": detections(40)}
    null = {name: np.full(N_ROWS, 0.5) for name in perfect}
    for profile in (STANDARD, LOW_FN):
        assert score_corpus(perfect, corpus, 0.5, profile).normalised == pytest.approx(100.0)
        assert optimal_threshold(null, corpus, profile)[1].normalised == pytest.approx(0.0)
    result = score_corpus(perfect, corpus, 0.5, STANDARD)
    assert (result.true_positives, result.false_negatives, result.window_recall) == (3, 0, 1.0)
    # Low-FN profile: missing one window of three costs 2, raw = 2 - 2 = 0 -> 100 * (0 + 6) / 9.
    one_miss = {**perfect, "c.csv": detections()}
    assert score_corpus(one_miss, corpus, 0.5, LOW_FN).normalised == pytest.approx(100 * 6 / 9)


def test_normalisation_reproduces_a_published_nab_figure() -> None:
    # SCORING.md: ARTime, standard profile, raw 57.661 on the 116 windows of the full corpus -> 74.854.
    assert normalise(57.661, 116, STANDARD) == pytest.approx(74.854, abs=1e-3)


def test_false_positives_per_series_day() -> None:
    corpus = [nab_file((), "a.csv"), nab_file((), "b.csv")]
    scores = {"a.csv": detections(20, 30), "b.csv": detections(5)}
    days = 2 * (N_ROWS - 15) * 5 / (24 * 60)
    assert score_corpus(scores, corpus, 0.5, STANDARD).false_positives_per_day == pytest.approx(2 / days)


def test_optimal_threshold_separates_constructed_scores() -> None:
    corpus = [nab_file(name="a.csv"), nab_file((), "b.csv")]
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.0, 0.6, N_ROWS), rng.uniform(0.0, 0.6, N_ROWS)
    a[42] = 0.8  # the only high score sits in the window
    b[10] = 0.99  # probationary: must not matter
    threshold, best = optimal_threshold({"a.csv": a, "b.csv": b}, corpus, STANDARD)
    assert threshold == pytest.approx(0.8)
    assert best.raw == pytest.approx(math.tanh(2.0) / math.tanh(2.5))
    assert (best.true_positives, best.false_positives) == (1, 0)


def test_sweep_matches_direct_scoring_at_every_candidate() -> None:
    corpus = [nab_file(((20, 29), (50, 69)), "a.csv"), nab_file((), "b.csv"), nab_file((WINDOW,), "c.csv")]
    rng = np.random.default_rng(1)
    scores = {f.name: np.round(rng.uniform(0, 1, N_ROWS), 2) for f in corpus}  # rounding makes ties
    thresholds, raws = sweep(scores, corpus, STANDARD)
    assert thresholds[0] == pytest.approx(1.1) and np.all(np.diff(thresholds) < 0)
    for threshold, total in zip(thresholds, raws, strict=True):
        assert total == pytest.approx(score_corpus(scores, corpus, threshold, STANDARD).raw)
    threshold, best = optimal_threshold(scores, corpus, STANDARD)
    assert best.raw == pytest.approx(raws.max())
    assert best.threshold == threshold


def test_scores_must_match_rows_and_not_be_nan() -> None:
    with pytest.raises(ValueError, match="scores for 100 rows"):
        score_file(np.zeros(3), nab_file(), 0.5, STANDARD)
    with pytest.raises(ValueError, match="NaN"):
        score_file(np.full(N_ROWS, np.nan), nab_file(), 0.5, STANDARD)


@pytest.mark.skipif(not NAB_DIR.exists(), reason=f"NAB dev subset not present: {NAB_DIR} is missing")
def test_dev_corpus_loads_28_files_and_36_windows() -> None:
    corpus = load_corpus(NAB_DIR)
    assert len(corpus) == 28
    assert sum(len(f.windows) for f in corpus) == 36
    assert sum(not f.windows for f in corpus) == 6
    profiles = load_profiles(NAB_DIR)
    assert profiles["reward_low_FP_rate"] == Profile("reward_low_FP_rate", tp=1.0, fp=0.22, fn=1.0)
    assert set(profiles) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}


def test_baseline_is_causal_and_flags_a_change_after_a_flat_past() -> None:
    from bench.nab import rolling_gaussian

    values = np.random.default_rng(2).normal(10, 1, 300)
    changed = values.copy()
    changed[200:] += 50
    before, after = rolling_gaussian(values, 100, 20), rolling_gaussian(changed, 100, 20)
    np.testing.assert_array_equal(before[:200], after[:200])  # the future never moves a past score
    assert after[200] > 0.9999 and np.all(before[:20] == 0)
    flat = rolling_gaussian(np.r_[np.ones(30), 2.0], 100, 20)
    assert flat[-1] == 1.0 and np.all(flat[:-1] == 0)


def test_detector_frame_keeps_every_row_when_timestamps_repeat() -> None:
    from bench.nab import long_frame

    frame = pd.DataFrame(
        {"timestamp": pd.to_datetime(["2024-01-01 03:00"] * 2 + ["2024-01-01 03:05"]), "value": [1, 2, 3]}
    )
    detector_input = long_frame(NabFile("f.csv", frame, ()))
    assert detector_input["ds"].is_unique and detector_input["ds"].is_monotonic_increasing
    assert detector_input["y"].tolist() == [1, 2, 3]
