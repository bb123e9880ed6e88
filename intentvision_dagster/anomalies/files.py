"""CSV in, scored CSV out, for ``intentvision detect``: pure functions, no click.

Two input shapes: ``timestamp,value`` (one series) or ``unique_id,ds,y`` (the long format, many series).
The output has one row per input row in input order, with the input's own timestamp and value text kept as
they were (so a round trip never reformats a timestamp), followed by the detector's verdict. The detector
scores :attr:`~intentvision_dagster.series_files.SeriesFile.points` (time order, one point per timestamp);
rows that shared a timestamp share its verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from intentvision_dagster.anomalies.detector import detect
from intentvision_dagster.frequency import infer_freq, season_lengths
from intentvision_dagster.series_files import LONG, SeriesFile, SeriesFileError

VERDICT = ["anomaly_score", "is_anomaly", "severity", "reason", "event_id"]
BATCH_SERIES = 50
"""Series scored per detector call, so a progress bar moves on files with many series."""


class DetectFileError(SeriesFileError):
    """Options the detector cannot take for a parsed file (e.g. no season length can be inferred)."""


def infer_season_length(frame: pd.DataFrame) -> int:
    """Points per day from the sampling step (288 for 5-minute data), 7 for daily data, 1 otherwise."""
    try:
        seasons = season_lengths(infer_freq(frame))
    except ValueError as exc:
        raise DetectFileError(f"cannot infer the season length; give --season-length ({exc})") from None
    return seasons[0] if seasons else 1


def score_series(
    source: SeriesFile,
    season_length: int,
    sensitivity: str,
    on_progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Detector verdict for every row, back in input order; ``on_progress(n)`` after each n series."""
    points = source.points
    ids = points["unique_id"].unique()
    parts = []
    for start in range(0, len(ids), BATCH_SERIES):
        batch = points[points["unique_id"].isin(ids[start : start + BATCH_SERIES])]
        parts.append(detect(batch, season_length=season_length, sensitivity=sensitivity))
        if on_progress:
            on_progress(len(ids[start : start + BATCH_SERIES]))
    verdicts = pd.concat(parts, ignore_index=True)[["unique_id", "ds", *VERDICT]]
    scored = source.frame.merge(verdicts, on=["unique_id", "ds"], how="left", validate="many_to_one")
    return scored.sort_values("row", ignore_index=True)


def write_scored(scored: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    """The input's columns (as they were written) and the verdict, one row per input row."""
    out = pd.DataFrame({columns[-2]: scored["time_text"], columns[-1]: scored["value_text"]})
    if columns == LONG:
        out.insert(0, "unique_id", scored["unique_id"])
    out[VERDICT] = scored[VERDICT].assign(anomaly_score=scored["anomaly_score"].round(4))
    out.to_csv(path, index=False)
