"""CSV in, scored CSV out, for ``intentvision detect``: pure functions, no click.

Two input shapes: ``timestamp,value`` (one series) or ``unique_id,ds,y`` (the long format, many series).
The output has one row per input row in input order, with the input's own timestamp and value text kept as
they were (so a round trip never reformats a timestamp), followed by the detector's verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from intentvision_dagster.anomalies.detector import detect
from intentvision_dagster.frequency import infer_freq, season_lengths

SINGLE = ("timestamp", "value")
LONG = ("unique_id", "ds", "y")
VERDICT = ["anomaly_score", "is_anomaly", "severity", "reason", "event_id"]
SINGLE_SERIES_ID = "series"
"""``unique_id`` given to the one series of a ``timestamp,value`` file (it is not written back)."""
BATCH_SERIES = 50
"""Series scored per detector call, so a progress bar moves on files with many series."""
PROGRESS_SERIES = 50
PROGRESS_ROWS = 100_000


class DetectFileError(ValueError):
    """An input file the detector cannot take; the message names the file, line and column."""


@dataclass(frozen=True)
class SeriesFile:
    """A parsed input file: the long frame (plus the input text and row order) and the columns it came in."""

    frame: pd.DataFrame
    columns: tuple[str, ...]

    @property
    def series(self) -> int:
        return self.frame["unique_id"].nunique()

    @property
    def long_running(self) -> bool:
        """Worth a progress bar."""
        return self.series > PROGRESS_SERIES or len(self.frame) > PROGRESS_ROWS


def _first_bad(path: Path, text: pd.Series, bad: pd.Series, column: str, problem: str) -> DetectFileError:
    index = int(np.flatnonzero(bad.to_numpy())[0])
    return DetectFileError(f"{path.name} line {index + 2}, column {column!r}: {text.iat[index]!r} {problem}")


def read_series(path: Path) -> SeriesFile:
    """Parse ``path``; timestamps become naive UTC (an offset is converted, none means UTC)."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DetectFileError(f"{path.name}: not a readable CSV file ({exc})") from None
    columns = LONG if "unique_id" in raw.columns else SINGLE
    missing = [column for column in columns if column not in raw.columns]
    if missing:
        raise DetectFileError(
            f"{path.name}: missing column(s) {', '.join(map(repr, missing))}; "
            f"expected columns {','.join(SINGLE)} (one series) or {','.join(LONG)} (many); "
            f"found {','.join(raw.columns)}"
        )
    id_column, time_column, value_column = LONG if columns == LONG else (None, *SINGLE)
    times, values = raw[time_column], raw[value_column]
    ds = pd.to_datetime(times, utc=True, errors="coerce", format="ISO8601")
    if ds.isna().any():
        raise _first_bad(path, times, ds.isna(), time_column, "is not an ISO 8601 timestamp")
    y = pd.to_numeric(values, errors="coerce")
    bad = ~np.isfinite(y.to_numpy(dtype=float))
    if bad.any():
        raise _first_bad(path, values, pd.Series(bad), value_column, "is not a finite number")
    frame = pd.DataFrame(
        {
            "unique_id": raw[id_column] if id_column else SINGLE_SERIES_ID,
            "ds": ds.dt.tz_localize(None),
            "y": y.astype(float),
            "row": np.arange(len(raw)),
            "time_text": times,
            "value_text": values,
        }
    )
    repeated = frame.duplicated(["unique_id", "ds"])
    if repeated.any():
        raise _first_bad(
            path, times, repeated, time_column, "repeats an earlier timestamp of the same series"
        )
    return SeriesFile(frame, columns)


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
    ids = source.frame["unique_id"].unique()
    parts = []
    for start in range(0, len(ids), BATCH_SERIES):
        batch = source.frame[source.frame["unique_id"].isin(ids[start : start + BATCH_SERIES])]
        parts.append(detect(batch, season_length=season_length, sensitivity=sensitivity))
        if on_progress:
            on_progress(len(ids[start : start + BATCH_SERIES]))
    return pd.concat(parts, ignore_index=True).sort_values("row", ignore_index=True)


def write_scored(scored: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    """The input's columns (as they were written) and the verdict, one row per input row."""
    out = pd.DataFrame({columns[-2]: scored["time_text"], columns[-1]: scored["value_text"]})
    if columns == LONG:
        out.insert(0, "unique_id", scored["unique_id"])
    out[VERDICT] = scored[VERDICT].assign(anomaly_score=scored["anomaly_score"].round(4))
    out.to_csv(path, index=False)
