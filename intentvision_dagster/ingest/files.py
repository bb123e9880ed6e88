"""Read a user's metric file (CSV or Parquet, long format) into the product's series frame.

A file is accepted whole or refused whole: the API must never land half a file, and the user must be able to
fix every reported problem from the message alone (file, line, column, value, what is wrong).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from intentvision_dagster.errors import InputError
from intentvision_dagster.names import validate_metric, validate_tenant
from intentvision_dagster.series import SERIES_COLUMNS, canonical_labels, parse_labels, unique_id

REQUIRED_COLUMNS = ("timestamp", "metric", "value")
OPTIONAL_COLUMNS = ("labels",)
MAX_REPORTED_PROBLEMS = 5
EPOCH_SECONDS_MAX = 4_102_444_800  # 2100-01-01: larger numbers are almost always epoch milliseconds
NAN_LITERALS = frozenset({"nan", "+nan", "-nan"})
# An explicit offset after the time part; parsed apart from naive text because pandas applies a previous row's
# offset to naive rows when both are mixed in one ISO8601 call.
_UTC_OFFSET = re.compile(r"[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.I)
EPOCH_RANGE_PROBLEM = "{value!r} is out of range for epoch seconds (1970..2100; divide milliseconds by 1000)"


class IngestFileError(InputError):
    """A metric file was refused; ``problems`` lists the individual messages shown to the user."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


def read_metric_file(path: Path, tenant: str) -> pd.DataFrame:
    """Parse ``path`` (``.csv`` or ``.parquet``) into ``tenant, metric, labels, unique_id, ds, y``.

    ``timestamp`` is ISO-8601 (offsets converted to UTC, naive means UTC) or epoch seconds; ``labels`` is
    optional and stored canonically; the literal strings ``nan``/``inf`` are numbers and are kept for the
    validation step to quarantine. Rows stay in file order (repeated timestamps too: see
    :mod:`intentvision_dagster.repeats`). Raises :class:`IngestFileError` naming up to five bad cells.
    """
    path = Path(path)
    try:
        validate_tenant(tenant)
    except ValueError as exc:
        raise IngestFileError(f"{path.name}: {exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        raw, missing = _read_csv(path)
    elif suffix == ".parquet":
        raw, missing = _read_parquet(path)
    else:
        raise IngestFileError(
            f"{path.name}: unsupported file type {path.suffix or '(none)'!r}; use .csv or .parquet"
        )
    _check_columns(path, raw)
    parsed, problems = _parse_columns(raw, missing)
    if not problems.empty:
        _raise_problems(path, problems, suffix)
    labels = parsed["labels"] if "labels" in parsed else pd.Series("", index=raw.index, dtype=object)
    frame = pd.DataFrame(
        {
            "tenant": tenant,
            "metric": parsed["metric"],
            "labels": labels,
            "unique_id": [unique_id(tenant, m, lab) for m, lab in zip(parsed["metric"], labels, strict=True)],
            "ds": parsed["timestamp"],
            "y": parsed["value"],
        }
    )
    return frame[SERIES_COLUMNS]


def _read_csv(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read every cell as text so that each value is judged by our rules, not pandas' guesses."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise IngestFileError(f"{path.name}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise IngestFileError(f"{path.name}: not a readable UTF-8 CSV file: {exc}") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    return raw, raw.isna()


def _read_parquet(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a Parquet file; nulls come from Arrow's validity mask, so a stored NaN stays a number."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        if not path.exists():
            raise
        raise IngestFileError(f"{path.name}: not a readable Parquet file: {exc}") from None
    missing = pd.DataFrame(
        {name: table.column(name).is_null().to_numpy(zero_copy_only=False) for name in table.column_names}
    )
    return table.to_pandas(), missing


def _check_columns(path: Path, raw: pd.DataFrame) -> None:
    expected = f"expected columns {', '.join(REQUIRED_COLUMNS)} and optionally {', '.join(OPTIONAL_COLUMNS)}"
    absent = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if absent:
        raise IngestFileError(f"{path.name}: missing required column(s) {_quoted(absent)}; {expected}")
    unknown = [c for c in raw.columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise IngestFileError(f"{path.name}: unknown column(s) {_quoted(unknown)}; {expected}")
    if raw.empty:
        raise IngestFileError(f"{path.name}: the file has a header but no data rows")


def _quoted(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _parse_columns(raw: pd.DataFrame, missing: pd.DataFrame) -> tuple[dict[str, pd.Series], pd.DataFrame]:
    """Parse each column; return the parsed columns and the bad cells as ``row, column, problem``."""
    parsers = {
        "timestamp": _parse_timestamps,
        "metric": _parse_metrics,
        "labels": _parse_labels,
        "value": _parse_values,
    }
    parsed: dict[str, pd.Series] = {}
    problems = []
    for column in raw.columns:
        parsed[column], reasons = parsers[column](raw[column], missing[column])
        bad = reasons.dropna()
        problems.append(pd.DataFrame({"row": bad.index, "column": column, "problem": bad.to_numpy()}))
    found = pd.concat(problems, ignore_index=True)
    return parsed, found.sort_values("row", kind="stable")


def _no_reasons(values: pd.Series) -> pd.Series:
    return pd.Series(None, index=values.index, dtype=object)


def _explain(reasons: pd.Series, mask: pd.Series, values: pd.Series, template: str) -> None:
    """Give cells in ``mask`` that have no reason yet the reason ``template`` (formatted with ``value``)."""
    todo = mask & reasons.isna()
    reasons[todo] = [template.format(value=v) for v in values[todo].tolist()]


def _parse_timestamps(values: pd.Series, missing: pd.Series) -> tuple[pd.Series, pd.Series]:
    """ISO-8601 text, epoch seconds or Parquet timestamps -> naive UTC datetime64[ns]."""
    reasons = _no_reasons(values)
    _explain(reasons, missing, values, "the timestamp is empty")
    if pd.api.types.is_datetime64_any_dtype(values):
        ds = values.dt.tz_convert("UTC").dt.tz_localize(None) if values.dt.tz is not None else values
        return ds.astype("datetime64[ns]"), reasons
    if pd.api.types.is_numeric_dtype(values):
        text, seconds, numeric = None, values.astype("float64"), ~missing
    else:
        text = values.where(~missing, "").astype(str).str.strip()
        seconds = pd.to_numeric(text, errors="coerce")
        numeric = seconds.notna()
    epoch = numeric & seconds.between(0, EPOCH_SECONDS_MAX)
    _explain(reasons, numeric & ~epoch, values, EPOCH_RANGE_PROBLEM)
    ds = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    ds[epoch] = pd.to_datetime(seconds[epoch], unit="s")
    if text is not None:
        iso = ~numeric & ~missing
        offset = iso & text.str.contains(_UTC_OFFSET)
        aware = pd.to_datetime(text[offset], utc=True, format="ISO8601", errors="coerce")
        ds[offset] = aware.dt.tz_localize(None)
        ds[iso & ~offset] = pd.to_datetime(text[iso & ~offset], format="ISO8601", errors="coerce")
        _explain(reasons, iso & ds.isna(), values, "{value!r} is not an ISO-8601 timestamp or epoch seconds")
    return ds, reasons


def _parse_values(values: pd.Series, missing: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers; the literals nan/inf count as numbers so validation can quarantine them with a reason."""
    reasons = _no_reasons(values)
    _explain(reasons, missing, values, "the value is empty")
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64"), reasons
    text = values.where(~missing, "").astype(str).str.strip()
    y = pd.to_numeric(text, errors="coerce").astype("float64")
    _explain(reasons, y.isna() & ~text.str.lower().isin(NAN_LITERALS), values, "{value!r} is not a number")
    return y, reasons


def _parse_metrics(values: pd.Series, missing: pd.Series) -> tuple[pd.Series, pd.Series]:
    reasons = _no_reasons(values)
    _explain(reasons, missing, values, "the metric name is empty")
    text = values.where(~missing, "").astype(str).str.strip()
    invalid = {}
    for name in text[~missing].unique():
        try:
            validate_metric(name)
        except ValueError as exc:
            invalid[name] = str(exc)
    todo = reasons.isna() & text.isin(list(invalid))
    reasons[todo] = text[todo].map(invalid)
    return text, reasons


def _parse_labels(values: pd.Series, missing: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Any form ``series.parse_labels`` accepts (or a Parquet map/struct) -> canonical Prometheus labels."""
    cells = values.where(~missing, "")
    keys = cells.map(lambda v: v if isinstance(v, str) else repr(v))
    canonical: dict[str, str] = {}
    invalid: dict[str, str] = {}
    for key, cell in zip(keys, cells, strict=True):
        if key in canonical or key in invalid:
            continue
        try:
            labels = _label_dict(cell) if isinstance(cell, dict | list) else parse_labels(cell)
            canonical[key] = canonical_labels(labels)
        except ValueError as exc:
            invalid[key] = str(exc)
    return keys.map(canonical), keys.map(invalid)


def _label_dict(cell: dict | list) -> dict[str, str]:
    """A Parquet struct (dict) or map (list of pairs) cell; absent struct fields (None) are not labels."""
    return {str(k): str(v) for k, v in dict(cell).items() if v is not None}


def _raise_problems(path: Path, problems: pd.DataFrame, suffix: str) -> None:
    shown = problems.head(MAX_REPORTED_PROBLEMS)
    lines = _csv_record_lines(path) if suffix == ".csv" else None
    where = "line" if lines is not None else "row"
    messages = [
        f"{path.name} {where} {lines[row] if lines is not None else row}, column {column!r}: {problem}"
        for row, column, problem in shown.itertuples(index=False)
    ]
    if len(problems) == 1:
        raise IngestFileError(messages[0], messages)
    more = f" (showing the first {len(messages)})" if len(problems) > len(messages) else ""
    raise IngestFileError(
        f"{path.name}: {len(problems)} problems{more}:\n" + "\n".join(f"  {m}" for m in messages), messages
    )


def _csv_record_lines(path: Path) -> list[int]:
    """Physical line (header = line 1) on which each data row starts, skipping blank lines as pandas does."""
    starts: list[int] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next_line = 1
        for record in reader:
            if record and not (len(record) == 1 and not record[0].strip()):
                starts.append(next_line)
            next_line = reader.line_num + 1
    return starts[1:]
