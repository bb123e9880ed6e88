"""The bench's paging score on tiny hand-made cases: when a page goes out, false pages per series-day on
real files, critical precision, the tune/report split and the synthetic generator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.nab import page_rows, paging_score, split_of
from bench.nab_scoring import NabFile, Profile
from bench.synthetic_ops import POINTS, synthetic_corpus, synthetic_series
from tests.bench.test_nab_scoring import N_ROWS, STANDARD, nab_file

PROFILES = {
    "standard": STANDARD,
    "reward_low_FP_rate": Profile("reward_low_FP_rate", tp=1.0, fp=0.22, fn=1.0),
}


def scored_rows(severities: list[str], events: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "severity": severities,
            "is_anomaly": [s != "none" for s in severities],
            "event_id": pd.array(events, dtype="string"),
        }
    )


def test_a_page_goes_out_when_an_event_first_reaches_the_severity() -> None:
    """Event a: info, warning, critical -> the page at its warning row; event b never reaches warning."""
    scored = scored_rows(
        ["info", "warning", "critical", "none", "info", "info", "warning"],
        ["a", "a", "a", None, "b", "b", "c"],
    )
    assert page_rows(scored, "warning").tolist() == [0, 1, 0, 0, 0, 0, 1]
    assert page_rows(scored, "critical").tolist() == [0, 0, 1, 0, 0, 0, 0]
    assert page_rows(scored, "info").tolist() == [1, 0, 0, 0, 1, 0, 1]


def pages_at(*rows: int, n: int = N_ROWS) -> np.ndarray:
    flags = np.zeros(n)
    flags[list(rows)] = 1.0
    return flags


def test_paging_score_counts_false_pages_on_real_files_and_critical_precision() -> None:
    """Two files of 100 5-minute rows (probation 15 rows, 85 scored rows = 0.295 days each). The real file
    has a window at 40-49: pages at 10 (probation), 42 (hit) and 70 (false). The artificial file has no window
    and one page at 60, which counts in the NAB score but not in the false pages per real series-day."""
    real = nab_file(name="realAWSCloudwatch/a.csv")
    artificial = nab_file(windows=(), name="artificialNoAnomaly/b.csv")
    pages = {real.name: pages_at(10, 42, 70), artificial.name: pages_at(60)}
    critical = {real.name: pages_at(42, 70), artificial.name: pages_at(60)}
    score = paging_score("ours", "nab", "report", pages, critical, [real, artificial], PROFILES)
    assert (score.files, score.windows, score.window_recall) == (2, 1, 1.0)
    assert score.false_pages == 1
    assert score.false_pages_per_series_day == pytest.approx(1 / (85 * 5 / 1440))
    assert score.critical_pages == 3 and score.critical_precision == pytest.approx(1 / 3)
    # standard: the hit at x = -(49 - 42 + 1) / 10 earns S(-0.8) / S(-1); the false page at 70 is y = 21 / 9
    # window widths after it and costs 0.11 S(y); the artificial file's costs the full 0.11.
    raw = np.tanh(2.0) / np.tanh(2.5) + 0.11 * np.tanh(-2.5 * 21 / 9) - 0.11
    assert score.scores["standard"] == pytest.approx(100 * (raw + 1) / 2)


def test_no_critical_pages_give_no_precision() -> None:
    file = nab_file()
    score = paging_score("ours", "nab", "tune", {file.name: pages_at(41)}, None, [file], PROFILES)
    assert score.critical_pages == 0 and score.critical_precision is None
    # one detection at row 41 of the window 40-49: x = -0.9, worth S(-0.9) / S(-1); no false pages
    assert score.scores["standard"] == pytest.approx(100 * (np.tanh(2.25) / np.tanh(2.5) + 1) / 2)


def test_split_alternates_files_by_name_within_each_folder() -> None:
    files = [nab_file(name=f"{folder}/{name}.csv") for folder in ("x", "y") for name in "dcba"]
    split = split_of(files)
    assert [split[f"x/{name}.csv"] for name in "abcd"] == ["tune", "report", "tune", "report"]
    assert [split[f"y/{name}.csv"] for name in "abcd"] == ["tune", "report", "tune", "report"]
    assert split == split_of(list(reversed(files)))


def test_synthetic_series_are_deterministic_and_labelled_like_nab() -> None:
    first, again = synthetic_series(3, seed=11), synthetic_series(3, seed=11)
    assert first.name == again.name and first.frame.equals(again.frame) and first.windows == again.windows
    assert len(first.frame) == POINTS and first.frame["timestamp"].diff().iloc[1] == pd.Timedelta(minutes=5)
    corpus = synthetic_corpus(40, seed=11)
    labelled = [f for f in corpus if f.windows]
    assert 0 < len(labelled) < len(corpus)  # some series have no incident at all
    for nab in labelled:
        incidents = len(nab.name.split("_", 2)[2].removesuffix(".csv").split("-"))
        widths = [end - start + 1 for start, end in nab.windows]
        # about 10 % of the file per incident, merged where incidents are close
        assert sum(widths) <= int(0.1 * POINTS) + len(widths)
        assert all(start > nab.probation for start, _ in nab.windows)
        assert len(nab.windows) <= incidents
    assert isinstance(corpus[0], NabFile)
