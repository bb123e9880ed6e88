"""Long-format series files (``unique_id,ds,y``, or ``timestamp,value`` for one series) as the CLIs read them.

``intentvision detect`` and ``intentvision forecast`` take the same files; the parsed frame keeps each row's
input text and order, so a command can write its verdict back beside the input exactly as it was given.
Repeated timestamps of a series (a clock change that repeats an hour, a row written twice) and rows out of
order are taken: the models get :attr:`SeriesFile.points`, one point per series and timestamp in time order
(repeated timestamps averaged, the file's values being levels), and :attr:`SeriesFile.repeats` says what was
done (see :mod:`intentvision_dagster.repeats`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from intentvision_dagster.errors import InputError
from intentvision_dagster.repeats import Repeats, merge_repeats

SINGLE = ("timestamp", "value")
LONG = ("unique_id", "ds", "y")
SINGLE_SERIES_ID = "series"
"""``unique_id`` given to the one series of a ``timestamp,value`` file (it is not written back)."""
PROGRESS_SERIES = 50
PROGRESS_ROWS = 100_000


class SeriesFileError(InputError):
    """An input file a command cannot take; the message names the file, line and column."""


@dataclass(frozen=True)
class SeriesFile:
    """A parsed input file: the long frame (plus the input text and row order) and the columns it came in."""

    frame: pd.DataFrame
    columns: tuple[str, ...]
    points: pd.DataFrame
    """``unique_id, ds, y``: one point per series and timestamp, sorted: what the models take."""
    repeats: Repeats

    @property
    def series(self) -> int:
        return self.frame["unique_id"].nunique()

    @property
    def long_running(self) -> bool:
        """Worth a progress bar."""
        return self.series > PROGRESS_SERIES or len(self.frame) > PROGRESS_ROWS


def _first_bad(path: Path, text: pd.Series, bad: pd.Series, column: str, problem: str) -> SeriesFileError:
    index = int(np.flatnonzero(bad.to_numpy())[0])
    return SeriesFileError(f"{path.name} line {index + 2}, column {column!r}: {text.iat[index]!r} {problem}")


def read_series(path: Path) -> SeriesFile:
    """Parse ``path``; timestamps become naive UTC (an offset is converted, none means UTC)."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SeriesFileError(f"{path.name}: not a readable CSV file ({exc})") from None
    columns = LONG if "unique_id" in raw.columns else SINGLE
    missing = [column for column in columns if column not in raw.columns]
    if missing:
        raise SeriesFileError(
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
    points, repeats = merge_repeats(frame[["unique_id", "ds", "y"]], lambda _: "gauge")
    return SeriesFile(frame, columns, points, repeats)
