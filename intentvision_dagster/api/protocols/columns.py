"""What every ingest protocol decodes into: validated columns, per-item problems and the request limits.

A protocol module only walks its own document and hands each item to :class:`ColumnBuilder`, so the rules
for names, timestamps and values (and the wording of every problem) are the same for all of them. A series
repeating a timestamp, or sending it out of order, is not a problem: the builder only notes it
(:attr:`Columns.needs_merge`) so the answer can say what validation will merge
(:mod:`intentvision_dagster.repeats`); the samples land as sent, bounds are checked row by row first.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd

from intentvision_dagster.errors import InputError
from intentvision_dagster.names import LABEL_NAME_PATTERN, METRIC_PATTERN
from intentvision_dagster.repeats import Repeats, merge_repeats
from intentvision_dagster.series import canonical_labels
from intentvision_dagster.settings import Settings

MAX_SAMPLE_AGE = timedelta(days=730)
"""Older samples are refused as a likely unit mistake (milliseconds sent as seconds or the reverse)."""
MAX_SAMPLE_FUTURE = timedelta(hours=1)
"""Samples further ahead than this are refused: a clock or unit error, never a measurement."""


class PayloadError(InputError):
    """The body as a whole cannot be read (bad JSON, protobuf, compression) or is too large.

    ``status`` is the HTTP answer: 400 by default, 413 for too large, 415 for an unsupported encoding.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.http_status = status


MAX_REPORTED_ERRORS = 100
"""Errors listed in one response; a body of many bad items must not answer with a larger body."""


def capped_errors(errors: list, total: int) -> dict:
    """``errors`` (at most the first :data:`MAX_REPORTED_ERRORS` of ``total``) and, when some are left out,
    ``errors_total`` and ``errors_more`` ("...and N more")."""
    body: dict = {"errors": errors[:MAX_REPORTED_ERRORS]}
    if total > MAX_REPORTED_ERRORS:
        body["errors_total"] = total
        body["errors_more"] = f"...and {total - MAX_REPORTED_ERRORS} more"
    return body


@dataclass(frozen=True)
class ItemProblem:
    """One reason an item was refused, with the path and value the client sent so it can fix it."""

    index: int
    field: str
    value: object
    problem: str

    def as_dict(self) -> dict:
        return {
            "index": self.index,
            "field": self.field,
            "value": _jsonable(self.value),
            "problem": self.problem,
        }

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


def _jsonable(value: object) -> object:
    """The offending value as JSON can carry it, cut short: an error echo must not be larger than the body."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        # JSON text may carry lone surrogates, which no response can encode: echo them escaped.
        text = value if len(value) <= 200 else value[:200] + "..."
        return text.encode("utf-8", "backslashreplace").decode()
    if value is None or isinstance(value, bool | int | float):
        return value
    return repr(value)[:200]


@dataclass
class Columns:
    """Validated samples of one request, column by column, ready for :func:`landing.land_columns`."""

    metric: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    unique_id: list[str] = field(default_factory=list)
    timestamp_ms: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    items: int = 0
    problems: list[ItemProblem] = field(default_factory=list)
    stale_markers: int = 0
    needs_merge: bool = False
    """A series repeats a timestamp or goes back in time: the answer says what validation will merge."""
    warnings: list[str] = field(default_factory=list)
    """What was done to the accepted samples (e.g. repeated timestamps merged), for the answer."""

    def repeats(self, kind_of: Callable[[str], str]) -> Repeats:
        """What validation will merge (per ``kind_of(metric)``) and put in order; the columns stay as sent,
        so a row outside the metric's bounds is quarantined rather than averaged into a good one."""
        if not self.needs_merge:
            return Repeats()
        frame = pd.DataFrame(
            {
                "metric": self.metric,
                "labels": self.labels,
                "unique_id": self.unique_id,
                "ds": pd.to_datetime(self.timestamp_ms, unit="ms"),
                "y": self.value,
            }
        )
        return merge_repeats(frame, kind_of)[1]

    @property
    def rejected_items(self) -> list[int]:
        return sorted({p.index for p in self.problems})

    def report(self) -> dict:
        """Per-item outcome for a partial-acceptance response."""
        rejected = self.rejected_items
        return {
            "items": self.items,
            "accepted_items": self.items - len(rejected),
            "rejected_items": len(rejected),
            "accepted_samples": len(self.value),
            "skipped_stale_markers": self.stale_markers,
            **capped_errors([p.as_dict() for p in self.problems[:MAX_REPORTED_ERRORS]], len(self.problems)),
        }


@dataclass(frozen=True)
class Limits:
    """What one request may hold; the label limits follow Prometheus/Mimir (a label is an index key, not a
    place for documents, and every distinct value stays in memory)."""

    max_points: int
    now: datetime
    max_label_name_bytes: int
    max_label_value_bytes: int
    max_labels: int

    @classmethod
    def for_settings(cls, settings: Settings, now: datetime) -> Limits:
        return cls(
            max_points=settings.api_max_points,
            now=now,
            max_label_name_bytes=settings.api_max_label_name_bytes,
            max_label_value_bytes=settings.api_max_label_value_bytes,
            max_labels=settings.api_max_labels,
        )

    @property
    def oldest_ms(self) -> int:
        return int((self.now - MAX_SAMPLE_AGE).timestamp() * 1000)

    @property
    def newest_ms(self) -> int:
        return int((self.now + MAX_SAMPLE_FUTURE).timestamp() * 1000)


class IdentityCache:
    """(tenant, metric, label pairs, label limits) -> (canonical labels, unique_id), shared by all requests of
    this process: remote_write sends the same series over and over, and canonicalising labels is most of a
    sample's cost. Bounded in bytes of text, not entries, so long label values cannot grow the process; when
    full it starts over (the next requests re-canonicalise)."""

    ENTRY_OVERHEAD = 400
    """Bytes of dict slot, tuples and string headers an entry costs beyond its text (an estimate)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: dict[tuple, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple) -> tuple[str, str] | None:
        return self._entries.get(key)

    def put(self, key: tuple, identity: tuple[str, str]) -> None:
        size = self.ENTRY_OVERHEAD + 2 * (len(identity[0]) + len(identity[1]))  # the key holds the same text
        with self._lock:
            if self.bytes + size > self.max_bytes:
                self._entries.clear()
                self.bytes = 0
            if size <= self.max_bytes and key not in self._entries:
                self._entries[key] = identity
                self.bytes += size


IDENTITY_CACHE_BYTES = 64 * 1024 * 1024
_IDENTITIES = IdentityCache(IDENTITY_CACHE_BYTES)


class ColumnBuilder:
    """Collects items one by one; an item with any problem contributes no sample at all."""

    def __init__(self, tenant: str, limits: Limits, item_name: str, points_field: str = "points") -> None:
        self.tenant = tenant
        self.limits = limits
        self.item_name = item_name
        self.points_field = points_field
        self.out = Columns()
        self._seen: dict[str, set[int]] = {}
        """unique_id -> timestamps accepted so far: notes a repeat across items of the same series."""
        self._oldest, self._newest = limits.oldest_ms, limits.newest_ms

    def series_identity(
        self, index: int, metric: object, pairs: tuple, metric_field: str
    ) -> tuple[str, str] | list[ItemProblem]:
        """(canonical labels, unique_id) of an item, or its problems (bad metric or label names/types)."""
        limits = self.limits
        label_limits = (limits.max_label_name_bytes, limits.max_label_value_bytes, limits.max_labels)
        cache_key: tuple | None = (self.tenant, metric, pairs, label_limits)
        try:
            cached = _IDENTITIES.get(cache_key)
        except TypeError:  # a list or object where a name or value belongs: reported below
            cache_key = cached = None
        if cached is not None:
            return cached
        where = f"{self.item_name}[{index}]"
        problems = []
        if not isinstance(metric, str):
            problems.append(
                ItemProblem(index, f"{where}.{metric_field}", metric, type_problem("a string", metric))
            )
        elif not METRIC_PATTERN.fullmatch(metric):
            problems.append(
                ItemProblem(
                    index,
                    f"{where}.{metric_field}",
                    metric,
                    f"{metric!r} is not a valid metric name: letters, digits, '_' and ':', "
                    "not starting with a digit, at most 200 characters",
                )
            )
        if len(pairs) > limits.max_labels:
            problems.append(
                ItemProblem(
                    index,
                    f"{where}.labels",
                    dict(pairs),
                    f"{len(pairs)} labels; a series may have at most {limits.max_labels}",
                )
            )
        names = set()
        for name, value in pairs:
            path = f"{where}.labels.{_jsonable(name)}"
            if isinstance(name, str) and len(name) > limits.max_label_name_bytes:
                problems.append(
                    ItemProblem(
                        index,
                        path,
                        name,
                        f"the label name is {len(name)} bytes; the limit is {limits.max_label_name_bytes}",
                    )
                )
            elif not isinstance(name, str) or not LABEL_NAME_PATTERN.fullmatch(name) or name.startswith("__"):
                problems.append(
                    ItemProblem(
                        index,
                        path,
                        name,
                        f"{name!r} is not a valid label name: letters, digits and '_', "
                        "not starting with a digit or '__'",
                    )
                )
            elif name in names:
                problems.append(ItemProblem(index, path, name, f"label {name!r} is given twice"))
            elif not isinstance(value, str):
                problems.append(ItemProblem(index, path, value, type_problem("a string", value)))
            else:
                problems.extend(_value_text_problems(index, path, value, limits.max_label_value_bytes))
            names.add(name)
        if problems:
            return problems
        labels_text = canonical_labels(dict(pairs))
        identity = (
            labels_text,
            f"{self.tenant}/{metric}{{{labels_text}}}" if labels_text else f"{self.tenant}/{metric}",
        )
        if cache_key is not None:
            _IDENTITIES.put(cache_key, identity)
        return identity

    def reject(self, problems: list[ItemProblem]) -> None:
        """Count an item that was refused before its points were read."""
        self.out.items += 1
        self.out.problems.extend(problems)

    def add_item(
        self,
        index: int,
        metric: object,
        pairs: tuple,
        stamps: list[int | None],
        values: list[float | None],
        raw: Callable[[int], tuple[object, object]],
        metric_field: str = "metric",
    ) -> None:
        """Add one item: epoch-ms ``stamps`` and ``values``, ``None`` where a field could not be parsed
        (``raw(position)`` then gives the sent timestamp and value for the message)."""
        self.out.items += 1
        identity = self.series_identity(index, metric, pairs, metric_field)
        if isinstance(identity, list):
            self.out.problems.extend(identity)
            return
        labels_text, uid = identity
        clean = (
            stamps
            and None not in stamps
            and None not in values
            and min(stamps) >= self._oldest
            and max(stamps) <= self._newest
        )
        if not clean:
            problems = self._point_problems(index, stamps, values, raw)
            if problems:
                self.out.problems.extend(problems)
                return
        count = len(values)
        if len(self.out.value) + count > self.limits.max_points:
            raise PayloadError(
                f"{self.item_name}[{index}]: the request holds more than {self.limits.max_points} "
                "points, the limit per request; split it into smaller requests",
                status=413,
            )
        seen = self._seen.setdefault(uid, set())
        before = len(seen)
        seen.update(stamps)
        if len(seen) - before != count or stamps != sorted(stamps):
            self.out.needs_merge = True
        out = self.out
        out.metric.extend([metric] * count)
        out.labels.extend([labels_text] * count)
        out.unique_id.extend([uid] * count)
        out.timestamp_ms.extend(stamps)
        out.value.extend(values)

    def _point_problems(
        self,
        index: int,
        stamps: list[int | None],
        values: list[float | None],
        raw: Callable[[int], tuple[object, object]],
    ) -> list[ItemProblem]:
        """Every point-level problem of one item, in point order (the slow path, for items with any)."""
        where = f"{self.item_name}[{index}].{self.points_field}"
        if not stamps:
            return [ItemProblem(index, where, [], "the item has no points")]
        problems: list[ItemProblem] = []
        for position, (ts, value) in enumerate(zip(stamps, values, strict=True)):
            path = f"{where}[{position}]"
            raw_ts, raw_value = raw(position)
            if ts is None:
                problems.append(ItemProblem(index, f"{path}.timestamp", raw_ts, _timestamp_problem(raw_ts)))
            elif ts < self._oldest or ts > self._newest:
                problems.append(ItemProblem(index, f"{path}.timestamp", raw_ts, self._bounds_problem(ts)))
            if value is None:
                problems.append(ItemProblem(index, f"{path}.value", raw_value, _value_problem(raw_value)))
        return problems

    def _bounds_problem(self, ts: int) -> str:
        try:
            when = datetime.fromtimestamp(ts / 1000, UTC).isoformat()
        except (ValueError, OverflowError, OSError):  # the OS's gmtime refuses |ts| past ~1e17 s (EOVERFLOW)
            when = f"epoch {ts} ms"
        if ts < self._oldest:
            return f"{when} is too old: samples older than {MAX_SAMPLE_AGE.days} days are refused"
        return f"{when} is too far in the future: more than {MAX_SAMPLE_FUTURE} ahead of the server clock"


def _value_text_problems(index: int, path: str, value: str, max_bytes: int) -> list[ItemProblem]:
    """A label value must be UTF-8 text (JSON can carry lone surrogates) of at most ``max_bytes``."""
    try:
        size = len(value.encode())
    except UnicodeEncodeError as exc:
        return [
            ItemProblem(index, path, repr(value), f"the label value is not valid Unicode text: {exc.reason}")
        ]
    if size > max_bytes:
        return [ItemProblem(index, path, value, f"the label value is {size} bytes; the limit is {max_bytes}")]
    return []


def type_problem(expected: str, value: object) -> str:
    return f"expected {expected}, got {type(value).__name__} {_jsonable(value)!r}"


def _timestamp_problem(raw: object) -> str:
    if isinstance(raw, str):
        return f"{raw!r} is not an ISO-8601 timestamp or epoch seconds"
    if raw is None:
        return "the timestamp is missing"
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return "the number is out of range for epoch seconds"
    return type_problem("epoch seconds (a number) or an ISO-8601 string", raw)


def _value_problem(raw: object) -> str:
    if raw is None:
        return "the value is missing"
    if isinstance(raw, float | int) and not isinstance(raw, bool):
        return f"{raw!r} is not a finite number (NaN and infinity are refused)"
    if isinstance(raw, str):
        return f"{raw!r} is not a number (send a JSON number)"
    return type_problem("a number", raw)
