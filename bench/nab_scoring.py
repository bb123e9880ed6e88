"""NAB (Numenta Anomaly Benchmark v1.1) scoring, implemented from ``SCORING.md`` in the NAB data folder.

Pure functions, no detector inside: the benchmark script feeds them anomaly scores. Why our own scorer rather
than NAB's code: NAB is Python 2-era and not installable here, and its rules fit in a page (probationary
period, window-relative sigmoid weights, one corpus-wide threshold picked in hindsight, 0..100 normalisation
between the null and the perfect detector).

Reported counts: ``true_positives`` / ``false_negatives`` count *windows* (detected / missed), while
``false_positives`` counts *rows*, because NAB charges every flagged row outside a window separately.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

PROBATION_SHARE = 0.15
PROBATION_MAX_ROWS = 750
NO_DETECTION_THRESHOLD = 1.1
"""NAB's extra sweep candidate above every score in [0, 1]: the threshold that detects nothing."""
DATA_FOLDERS = ("realAWSCloudwatch", "artificialWithAnomaly", "artificialNoAnomaly")


def scaled_sigmoid(x: np.ndarray | float) -> np.ndarray:
    """NAB's S(x) = 2 / (1 + exp(5x)) - 1 = tanh(-2.5 x): +0.987 at -1, 0 at 0, -0.987 at 1."""
    return np.tanh(-2.5 * np.asarray(x, dtype=float))


@dataclass(frozen=True)
class Profile:
    """Cost weights of one NAB application profile (A_TN is never used by the score, so it is not kept)."""

    name: str
    tp: float
    fp: float
    fn: float


@dataclass(frozen=True)
class NabFile:
    """One data file: ``frame`` has ``timestamp``, ``value``; ``windows`` are inclusive (start, end) rows."""

    name: str
    frame: pd.DataFrame
    windows: tuple[tuple[int, int], ...]

    @property
    def probation(self) -> int:
        """Rows at the start that are never scored: min(floor(0.15 n), 750)."""
        return min(int(np.floor(PROBATION_SHARE * len(self.frame))), PROBATION_MAX_ROWS)

    @property
    def scored_days(self) -> float:
        """Days of scored (post-probation) data, for false positives per series-day."""
        step = self.frame["timestamp"].diff().median()
        return (len(self.frame) - self.probation) * step / pd.Timedelta(days=1)


@dataclass(frozen=True)
class FileScore:
    """Score of one file at one threshold: TP / FN count windows, FP counts flagged rows outside windows."""

    name: str
    raw: float
    true_positives: int
    false_positives: int
    false_negatives: int
    detected_windows: tuple[bool, ...]


@dataclass(frozen=True)
class CorpusScore:
    """Corpus total at one threshold and profile, with the 0..100 normalisation and operational figures."""

    profile: str
    threshold: float
    raw: float
    normalised: float
    true_positives: int
    false_positives: int
    false_negatives: int
    window_recall: float
    false_positives_per_day: float
    files: tuple[FileScore, ...]


def load_profiles(nab_dir: Path) -> dict[str, Profile]:
    """Profiles from ``config/profiles.json`` (standard, reward_low_FP_rate, reward_low_FN_rate)."""
    raw = json.loads((nab_dir / "config" / "profiles.json").read_text())
    weights = {name: entry["CostMatrix"] for name, entry in raw.items()}
    return {
        name: Profile(name, tp=float(w["tpWeight"]), fp=float(w["fpWeight"]), fn=float(w["fnWeight"]))
        for name, w in weights.items()
    }


def _window_rows(timestamps: pd.Series, window: list[str], name: str) -> tuple[int, int]:
    """Row indices of a window's inclusive ends; label stamps carry a ``.000000`` suffix, so parse them."""
    ends = pd.to_datetime(pd.Series(window))
    rows = np.searchsorted(timestamps.to_numpy(), ends.to_numpy())
    if (rows >= len(timestamps)).any() or (timestamps.to_numpy()[rows] != ends.to_numpy()).any():
        raise ValueError(f"{name}: window {window} does not match rows of the file")
    return int(rows[0]), int(rows[1])


def load_corpus(nab_dir: Path) -> list[NabFile]:
    """Every CSV present under ``data/`` with its windows from ``labels/combined_windows.json``, by name."""
    labels = json.loads((nab_dir / "labels" / "combined_windows.json").read_text())
    corpus = []
    for path in sorted((nab_dir / "data").glob("*/*.csv")):
        name = f"{path.parent.name}/{path.name}"
        if name not in labels:
            raise ValueError(f"{name} has no entry in labels/combined_windows.json")
        frame = pd.read_csv(path, parse_dates=["timestamp"])
        windows = tuple(sorted(_window_rows(frame["timestamp"], w, name) for w in labels[name]))
        corpus.append(NabFile(name, frame, windows))
    return corpus


def row_weights(nab_file: NabFile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: window index (-1 outside), unweighted TP value S(x)/S(-1) inside, FP value u outside.

    Why precompute: every threshold of the sweep reuses them, so scoring is a masked sum, not a loop.
    """
    n = len(nab_file.frame)
    rows = np.arange(n)
    window = np.full(n, -1)
    tp_value = np.zeros(n)
    for k, (start, end) in enumerate(nab_file.windows):
        window[start : end + 1] = k
        x = -(end - rows[start : end + 1] + 1) / (end - start + 1)
        tp_value[start : end + 1] = scaled_sigmoid(x) / scaled_sigmoid(-1.0)
    bounds = np.array(nab_file.windows, dtype=int).reshape(-1, 2)
    ended = np.searchsorted(bounds[:, 1], rows, side="left")  # windows that ended before each row
    last_end = np.r_[0, bounds[:, 1]][ended]
    last_width = np.r_[2, bounds[:, 1] - bounds[:, 0] + 1][ended]  # the 0 / 2 pads are masked by ended > 0
    with np.errstate(divide="ignore"):
        y = (rows - last_end) / (last_width - 1)
    fp_value = np.where((ended > 0) & (y <= 3), scaled_sigmoid(y), -1.0)
    return window, tp_value, np.where(window < 0, fp_value, 0.0)


def _checked(scores: np.ndarray, nab_file: NabFile) -> np.ndarray:
    """Scores as floats, one per row and none NaN (a NaN would silently never detect and break the sweep)."""
    scores = np.asarray(scores, dtype=float)
    if scores.shape != (len(nab_file.frame),):
        raise ValueError(f"{nab_file.name}: {scores.shape} scores for {len(nab_file.frame)} rows")
    if np.isnan(scores).any():
        raise ValueError(f"{nab_file.name}: NaN scores; give rows without a score 0")
    return scores


def score_file(scores: np.ndarray, nab_file: NabFile, threshold: float, profile: Profile) -> FileScore:
    """One file: a window's first detection earns A_TP·S(x)/S(-1), a miss costs A_FN, each FP A_FP·u."""
    detected = _checked(scores, nab_file) >= threshold
    detected[: nab_file.probation] = False
    window, tp_value, fp_value = row_weights(nab_file)
    raw = 0.0
    hits = []
    for k in range(len(nab_file.windows)):
        in_window = detected & (window == k)
        hits.append(bool(in_window.any()))
        raw += profile.tp * tp_value[np.argmax(in_window)] if hits[-1] else -profile.fn
    false_alarms = detected & (window < 0)
    raw += profile.fp * float(fp_value[false_alarms].sum())
    return FileScore(
        nab_file.name, raw, sum(hits), int(false_alarms.sum()), len(hits) - sum(hits), tuple(hits)
    )


def normalise(raw: float, n_windows: int, profile: Profile) -> float:
    """100 · (S - S_null) / (S_perfect - S_null); S_null = -A_FN·N, S_perfect = A_TP·N (NaN if N = 0)."""
    if n_windows == 0:
        return float("nan")
    null, perfect = -profile.fn * n_windows, profile.tp * n_windows
    return 100.0 * (raw - null) / (perfect - null)


def score_corpus(
    scores_by_file: dict[str, np.ndarray], corpus: list[NabFile], threshold: float, profile: Profile
) -> CorpusScore:
    """Sum of the file scores at one corpus-wide threshold, normalised over all windows of the corpus."""
    files = tuple(score_file(scores_by_file[f.name], f, threshold, profile) for f in corpus)
    raw = sum(f.raw for f in files)
    tp = sum(f.true_positives for f in files)
    fp = sum(f.false_positives for f in files)
    fn = sum(f.false_negatives for f in files)
    n_windows = tp + fn
    return CorpusScore(
        profile=profile.name,
        threshold=float(threshold),
        raw=raw,
        normalised=normalise(raw, n_windows, profile),
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        window_recall=tp / n_windows if n_windows else float("nan"),
        false_positives_per_day=fp / sum(f.scored_days for f in corpus),
        files=files,
    )


def sweep(
    scores_by_file: dict[str, np.ndarray], corpus: list[NabFile], profile: Profile
) -> tuple[np.ndarray, np.ndarray]:
    """Raw corpus score at every candidate threshold (1.1, then each distinct score, descending), as NAB does.

    All scored rows are sorted by score, descending; each row adds its FP value, or raises its window's best
    TP value (starting from -A_FN, the missed window). The cumulative sum at the last row of each distinct
    score is Score(that score).
    """
    parts = []
    n_windows = 0
    for nab_file in corpus:
        window, tp_value, fp_value = row_weights(nab_file)
        scored = slice(nab_file.probation, None)
        parts.append(
            pd.DataFrame(
                {
                    "score": _checked(scores_by_file[nab_file.name], nab_file)[scored],
                    "window": np.where(window[scored] >= 0, window[scored] + n_windows, -1),
                    "tp": profile.tp * tp_value[scored],
                    "fp": profile.fp * fp_value[scored],
                }
            )
        )
        n_windows += len(nab_file.windows)
    rows = pd.concat(parts, ignore_index=True).sort_values("score", ascending=False, kind="stable")
    inside = rows[rows["window"] >= 0]
    best = inside.groupby("window")["tp"].cummax()
    before = best.groupby(inside["window"]).shift(1).fillna(-profile.fn)
    delta = rows["fp"].copy()
    delta.loc[inside.index] = best - before
    total = -profile.fn * n_windows + delta.cumsum().to_numpy()
    last_of_value = np.r_[rows["score"].to_numpy()[1:] != rows["score"].to_numpy()[:-1], True]
    thresholds = np.r_[NO_DETECTION_THRESHOLD, rows["score"].to_numpy()[last_of_value]]
    return thresholds, np.r_[-profile.fn * n_windows, total[last_of_value]]


def optimal_threshold(
    scores_by_file: dict[str, np.ndarray], corpus: list[NabFile], profile: Profile
) -> tuple[float, CorpusScore]:
    """Hindsight-optimal corpus-wide threshold for one profile and its full score (highest θ among ties)."""
    thresholds, raws = sweep(scores_by_file, corpus, profile)
    best = float(thresholds[int(np.argmax(raws))])
    return best, score_corpus(scores_by_file, corpus, best, profile)
