"""Decode and validate ingest bodies (our JSON, Prometheus remote_write, Datadog series) into landing columns.

Pure functions, no HTTP and no Dagster. Every problem is reported per item (a JSON ``series`` entry, a
remote_write ``timeseries`` entry) with the field path and the offending value, e.g.
``series[3].points[0].value: 'abc' is not a number``. The caller refuses the whole request when any item is
invalid, unless the client asked for partial acceptance; then only the valid items are kept and the report
says which items were rejected and why.
"""

from __future__ import annotations

import json
import math
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import cramjam
import zstandard
from google.protobuf.message import DecodeError

from intentvision_dagster.api.remote_write_pb2 import WriteRequest
from intentvision_dagster.names import LABEL_NAME_PATTERN, METRIC_PATTERN
from intentvision_dagster.series import canonical_labels

MAX_SAMPLE_AGE = timedelta(days=730)
"""Older samples are refused as a likely unit mistake (milliseconds sent as seconds or the reverse)."""
MAX_SAMPLE_FUTURE = timedelta(hours=1)
"""Samples further ahead than this are refused: a clock or unit error, never a measurement."""
PROMETHEUS_STALE_NAN = 0x7FF0000000000002
"""The NaN bit pattern Prometheus writes as a staleness marker: the series ended, not a sample."""
DATADOG_METRIC = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,199}$")


class PayloadError(ValueError):
    """The body as a whole cannot be read (bad JSON, protobuf, compression) or is too large."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ItemProblem:
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
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value if not isinstance(value, str) or len(value) <= 200 else value[:200] + "..."
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
            "errors": [p.as_dict() for p in self.problems],
        }


@dataclass(frozen=True)
class Limits:
    max_points: int
    now: datetime

    @property
    def oldest_ms(self) -> int:
        return int((self.now - MAX_SAMPLE_AGE).timestamp() * 1000)

    @property
    def newest_ms(self) -> int:
        return int((self.now + MAX_SAMPLE_FUTURE).timestamp() * 1000)


_IDENTITIES: dict[tuple, tuple[str, str]] = {}
"""(tenant, metric, label pairs) -> (canonical labels, unique_id), shared by all requests of this process:
remote_write sends the same series over and over, and canonicalising labels is most of a sample's cost."""
_IDENTITIES_MAX = 500_000


class _Builder:
    """Collects items one by one; an item with any problem contributes no sample at all."""

    def __init__(self, tenant: str, limits: Limits, item_name: str, points_field: str = "points") -> None:
        self.tenant = tenant
        self.limits = limits
        self.item_name = item_name
        self.points_field = points_field
        self.out = Columns()
        self._seen: dict[str, list[tuple[int, list[int]]]] = {}
        self._oldest, self._newest = limits.oldest_ms, limits.newest_ms

    def series_identity(
        self, index: int, metric: object, pairs: tuple, metric_field: str
    ) -> tuple[str, str] | list[ItemProblem]:
        """(canonical labels, unique_id) of an item, or its problems (bad metric or label names/types)."""
        cache_key: tuple | None = (self.tenant, metric, pairs)
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
                ItemProblem(index, f"{where}.{metric_field}", metric, _type_problem("a string", metric))
            )
        elif not METRIC_PATTERN.match(metric):
            problems.append(
                ItemProblem(
                    index,
                    f"{where}.{metric_field}",
                    metric,
                    f"{metric!r} is not a valid metric name: letters, digits, '_' and ':', "
                    "not starting with a digit, at most 200 characters",
                )
            )
        names = set()
        for name, value in pairs:
            path = f"{where}.labels.{name}"
            if not isinstance(name, str) or not LABEL_NAME_PATTERN.match(name) or name.startswith("__"):
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
                problems.append(ItemProblem(index, path, value, _type_problem("a string", value)))
            names.add(name)
        if problems:
            return problems
        labels_text = canonical_labels(dict(pairs))
        identity = (
            labels_text,
            f"{self.tenant}/{metric}{{{labels_text}}}" if labels_text else f"{self.tenant}/{metric}",
        )
        if len(_IDENTITIES) >= _IDENTITIES_MAX:
            _IDENTITIES.clear()
        if cache_key is not None:
            _IDENTITIES[cache_key] = identity
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
            and len(set(stamps)) == len(stamps)
            and uid not in self._seen
        )
        if not clean:
            problems = self._point_problems(index, uid, stamps, values, raw)
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
        self._seen.setdefault(uid, []).append((index, stamps))
        out = self.out
        out.metric.extend([metric] * count)
        out.labels.extend([labels_text] * count)
        out.unique_id.extend([uid] * count)
        out.timestamp_ms.extend(stamps)
        out.value.extend(values)

    def _point_problems(
        self,
        index: int,
        uid: str,
        stamps: list[int | None],
        values: list[float | None],
        raw: Callable[[int], tuple[object, object]],
    ) -> list[ItemProblem]:
        """Every point-level problem of one item, in point order (the slow path, for items with any)."""
        where = f"{self.item_name}[{index}].{self.points_field}"
        if not stamps:
            return [ItemProblem(index, where, [], "the item has no points")]
        earlier = [(i, points, set(points)) for i, points in self._seen.get(uid, [])]
        problems: list[ItemProblem] = []
        here: dict[int, str] = {}
        for position, (ts, value) in enumerate(zip(stamps, values, strict=True)):
            path = f"{where}[{position}]"
            raw_ts, raw_value = raw(position)
            if ts is None:
                problems.append(ItemProblem(index, f"{path}.timestamp", raw_ts, _timestamp_problem(raw_ts)))
            elif ts < self._oldest or ts > self._newest:
                problems.append(ItemProblem(index, f"{path}.timestamp", raw_ts, self._bounds_problem(ts)))
            if value is None:
                problems.append(ItemProblem(index, f"{path}.value", raw_value, _value_problem(raw_value)))
            if ts is None or value is None:
                continue
            first = here.get(ts) or next(
                (
                    f"{self.item_name}[{i}].{self.points_field}[{points.index(ts)}]"
                    for i, points, members in earlier
                    if ts in members
                ),
                None,
            )
            if first is not None:
                problems.append(
                    ItemProblem(
                        index, f"{path}.timestamp", raw_ts, f"duplicate sample of this series, as {first}"
                    )
                )
            here.setdefault(ts, path)
        return problems

    def _bounds_problem(self, ts: int) -> str:
        try:
            when = datetime.fromtimestamp(ts / 1000, UTC).isoformat()
        except (ValueError, OverflowError):
            when = f"epoch {ts} ms"
        if ts < self._oldest:
            return f"{when} is too old: samples older than {MAX_SAMPLE_AGE.days} days are refused"
        return f"{when} is too far in the future: more than {MAX_SAMPLE_FUTURE} ahead of the server clock"


def _type_problem(expected: str, value: object) -> str:
    return f"expected {expected}, got {type(value).__name__} {_jsonable(value)!r}"


def _timestamp_problem(raw: object) -> str:
    if isinstance(raw, str):
        return f"{raw!r} is not an ISO-8601 timestamp or epoch seconds"
    if raw is None:
        return "the timestamp is missing"
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return "the number is out of range for epoch seconds"
    return _type_problem("epoch seconds (a number) or an ISO-8601 string", raw)


def _value_problem(raw: object) -> str:
    if raw is None:
        return "the value is missing"
    if isinstance(raw, float | int) and not isinstance(raw, bool):
        return f"{raw!r} is not a finite number (NaN and infinity are refused)"
    if isinstance(raw, str):
        return f"{raw!r} is not a number (send a JSON number)"
    return _type_problem("a number", raw)


def _number(raw: object) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    try:
        value = float(raw)
    except OverflowError:  # a JSON integer beyond float range
        return None
    return value if math.isfinite(value) else None


def _epoch_seconds_ms(raw: object) -> int | None:
    """Epoch seconds (number) or ISO 8601 text (offset converted to UTC, none means UTC) -> epoch ms."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        seconds = _number(raw)
        return None if seconds is None else round(seconds * 1000)
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.strip().replace("z", "Z"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return round(parsed.timestamp() * 1000)
    return None


# --- bodies ---


def decompress(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate, zstd, snappy block format), never past ``max_bytes``."""
    encoding = (encoding or "identity").strip().lower()
    try:
        if encoding in ("identity", ""):
            return body
        if encoding in ("gzip", "deflate"):
            # wbits 47 = gzip or zlib header auto-detected; Datadog's deflate is zlib-wrapped.
            inflater = zlib.decompressobj(47)
            data = inflater.decompress(body, max_bytes + 1)
            if len(data) > max_bytes or inflater.unconsumed_tail:
                raise PayloadError(f"the decompressed body exceeds {max_bytes} bytes", status=413)
            if not inflater.eof:
                raise PayloadError(f"the {encoding} body is truncated")
            return data
        if encoding == "snappy":
            if cramjam.snappy.decompress_raw_len(body) > max_bytes:
                raise PayloadError(f"the decompressed body exceeds {max_bytes} bytes", status=413)
            return bytes(cramjam.snappy.decompress_raw(body))
        if encoding in ("zstd", "zstd1"):  # datadog-api-client says zstd1
            chunks, size = [], 0
            with zstandard.ZstdDecompressor().stream_reader(body) as reader:
                while chunk := reader.read(1 << 20):
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadError(f"the decompressed body exceeds {max_bytes} bytes", status=413)
                    chunks.append(chunk)
            return b"".join(chunks)
    except (zlib.error, cramjam.DecompressionError, zstandard.ZstdError) as exc:
        raise PayloadError(f"the body is not valid {encoding} data: {exc}") from None
    raise PayloadError(
        f"unsupported Content-Encoding {encoding!r}; use gzip, deflate, zstd or snappy", status=415
    )


def _json_body(data: bytes) -> object:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PayloadError(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise PayloadError("the body is not valid JSON: nested too deeply") from None


def _series_list(document: object, shape: str) -> list:
    if not isinstance(document, dict) or not isinstance(document.get("series"), list):
        raise PayloadError(f"the body must be a JSON object with a 'series' list: {shape}", status=422)
    return document["series"]


JSON_SHAPE = (
    '{"series": [{"metric": "node_cpu", "labels": {"host": "web-1"}, '
    '"points": [{"timestamp": "2026-11-27T06:00:00Z" or epoch seconds, "value": 0.5}]}]}'
)


def decode_json(data: bytes, tenant: str, limits: Limits) -> Columns:
    """Our webhook format (:data:`JSON_SHAPE`)."""
    builder = _Builder(tenant, limits, "series")
    for index, item in enumerate(_series_list(_json_body(data), JSON_SHAPE)):
        if not isinstance(item, dict):
            builder.reject([ItemProblem(index, f"series[{index}]", item, _type_problem("an object", item))])
            continue
        labels = item.get("labels") or {}
        points = item.get("points")
        problems = _shape_problems(index, "series", labels, points)
        if problems:
            builder.reject(problems)
            continue
        builder.add_item(index, item.get("metric"), tuple(labels.items()), *_json_points(points))
    return builder.out


def _shape_problems(index: int, item_name: str, labels: object, points: object) -> list[ItemProblem]:
    where = f"{item_name}[{index}]"
    problems = []
    if not isinstance(labels, dict):
        problems.append(ItemProblem(index, f"{where}.labels", labels, _type_problem("an object", labels)))
    if not isinstance(points, list):
        problems.append(
            ItemProblem(index, f"{where}.points", points, _type_problem("a list of points", points))
        )
    elif any(not isinstance(p, dict) for p in points):
        position = next(i for i, p in enumerate(points) if not isinstance(p, dict))
        bad = points[position]
        problems.append(
            ItemProblem(index, f"{where}.points[{position}]", bad, _type_problem("an object", bad))
        )
    return problems


def _json_points(
    points: list[dict],
) -> tuple[list[int | None], list[float | None], Callable[[int], tuple[object, object]]]:
    stamps = [_epoch_seconds_ms(point.get("timestamp")) for point in points]
    values = [_number(point.get("value")) for point in points]
    return stamps, values, lambda i: (points[i].get("timestamp"), points[i].get("value"))


def decode_datadog(data: bytes, tenant: str, limits: Limits) -> Columns:
    """Datadog ``/api/v2/series``: names' dots become ``_``, ``tags`` (``key:value``) and ``resources``
    (``{"type": "host", "name": "web-1"}``) become labels, a tag without a value becomes ``tag="true"``."""
    builder = _Builder(tenant, limits, "series")
    for index, item in enumerate(_series_list(_json_body(data), "Datadog's v2 series payload")):
        where = f"series[{index}]"
        if not isinstance(item, dict):
            builder.reject([ItemProblem(index, where, item, _type_problem("an object", item))])
            continue
        name = item.get("metric")
        problems = _shape_problems(index, "series", {}, item.get("points"))
        labels, label_problems = _datadog_labels(index, item)
        problems += label_problems
        if isinstance(name, str) and not DATADOG_METRIC.match(name):
            problems.append(
                ItemProblem(
                    index,
                    f"{where}.metric",
                    name,
                    f"{name!r} is not a valid Datadog metric name: "
                    "a letter, then letters, digits, '_' and '.'",
                )
            )
        if problems:
            builder.reject(problems)
            continue
        metric = name.replace(".", "_") if isinstance(name, str) else name
        builder.add_item(index, metric, tuple(sorted(labels.items())), *_json_points(item["points"]))
    return builder.out


def _datadog_labels(index: int, item: dict) -> tuple[dict[str, str], list[ItemProblem]]:
    labels: dict[str, str] = {}
    problems = []
    tags = item.get("tags") or []
    resources = item.get("resources") or []
    where = f"series[{index}]"
    if not isinstance(tags, list) or any(not isinstance(t, str) for t in tags):
        problems.append(ItemProblem(index, f"{where}.tags", tags, _type_problem("a list of strings", tags)))
        tags = []
    if not isinstance(resources, list) or any(
        not isinstance(r, dict) or not isinstance(r.get("type"), str) or not isinstance(r.get("name"), str)
        for r in resources
    ):
        problems.append(
            ItemProblem(
                index,
                f"{where}.resources",
                resources,
                _type_problem('[{"type": ..., "name": ...}]', resources),
            )
        )
        resources = []
    for tag in tags:
        key, sep, value = tag.partition(":")
        labels[_label_name(key)] = value if sep else "true"
    for resource in resources:
        labels[_label_name(resource["type"])] = resource["name"]
    return labels, problems


def _label_name(text: str) -> str:
    """A Datadog tag key as a Prometheus label name: other characters become ``_``."""
    name = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in text.strip()) or "_"
    return f"_{name}" if name[0].isdigit() else name.lstrip("_") or "_"


def decode_remote_write(data: bytes, tenant: str, limits: Limits) -> Columns:
    """Prometheus remote_write 1.0 ``WriteRequest`` (already snappy-decoded). The metric is ``__name__``;
    staleness markers are skipped (counted in ``stale_markers``); other NaN/inf samples are stored, as
    Prometheus itself does, and quarantined by validation with a reason."""
    request = WriteRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as exc:
        raise PayloadError(
            f"the body is not a Prometheus remote_write WriteRequest protobuf: {exc}"
        ) from None
    builder = _Builder(tenant, limits, "timeseries", points_field="samples")
    stale = 0
    for index, series in enumerate(request.timeseries):
        metric = ""
        labels = []
        for label in series.labels:
            if label.name == "__name__":
                metric = label.value
            else:
                labels.append((label.name, label.value))
        samples = series.samples
        stamps = [sample.timestamp for sample in samples]
        values = [sample.value for sample in samples]
        if any(value != value for value in values):  # NaN: drop staleness markers, keep other NaN
            keep = [i for i, value in enumerate(values) if not _is_stale_marker(value)]
            stale += len(values) - len(keep)
            stamps, values = [stamps[i] for i in keep], [values[i] for i in keep]
        if not stamps:  # only staleness markers, or no float samples at all (a native histogram)
            builder.out.items += 1
            continue
        builder.add_item(
            index,
            metric,
            tuple(labels),
            stamps,
            values,
            lambda i, stamps=stamps, values=values: (stamps[i], values[i]),
            "labels.__name__",
        )
    builder.out.stale_markers = stale
    return builder.out


def _is_stale_marker(value: float) -> bool:
    return value != value and struct.unpack("<Q", struct.pack("<d", value))[0] == PROMETHEUS_STALE_NAN
