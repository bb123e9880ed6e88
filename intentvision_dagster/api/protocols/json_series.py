"""The JSON ``{"series": [...]}`` documents our webhook and Datadog's intake share: body, items, points."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime

from intentvision_dagster.api.protocols.columns import ItemProblem, PayloadError, type_problem


def _number(raw: object) -> float | None:
    """A JSON number as a finite float, else None; a numeric string is refused (it is a client bug)."""
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
        millis = None if seconds is None else seconds * 1000
        return round(millis) if millis is not None and math.isfinite(millis) else None
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.strip().replace("z", "Z"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return round(parsed.timestamp() * 1000)
    return None


def _json_int(text: str) -> int | float:
    """A JSON integer; one too long for a float is infinity, so the field that holds it is refused by name
    (``int()`` itself refuses over 4,300 digits, failing the whole parse)."""
    return int(text) if len(text) <= 400 else float(text)


def json_body(data: bytes) -> object:
    """The parsed document; any way JSON can fail is one 400 naming the cause, never a 500."""
    try:
        return json.loads(data, parse_int=_json_int)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PayloadError(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise PayloadError("the body is not valid JSON: nested too deeply") from None


def series_list(document: object, shape: str) -> list:
    """The ``series`` items; a document of another shape is refused whole (422), showing ``shape``."""
    if not isinstance(document, dict) or not isinstance(document.get("series"), list):
        raise PayloadError(f"the body must be a JSON object with a 'series' list: {shape}", status=422)
    return document["series"]


def shape_problems(index: int, item_name: str, labels: object, points: object) -> list[ItemProblem]:
    """Problems of an item's ``labels`` and ``points`` containers, found before any point is read."""
    where = f"{item_name}[{index}]"
    problems = []
    if not isinstance(labels, dict):
        problems.append(ItemProblem(index, f"{where}.labels", labels, type_problem("an object", labels)))
    if not isinstance(points, list):
        problems.append(
            ItemProblem(index, f"{where}.points", points, type_problem("a list of points", points))
        )
    elif any(not isinstance(p, dict) for p in points):
        position = next(i for i, p in enumerate(points) if not isinstance(p, dict))
        bad = points[position]
        problems.append(
            ItemProblem(index, f"{where}.points[{position}]", bad, type_problem("an object", bad))
        )
    return problems


def json_points(
    points: list[dict],
) -> tuple[list[int | None], list[float | None], Callable[[int], tuple[object, object]]]:
    """Epoch-ms stamps and values (None where unreadable) and the raw point, as ``add_item`` takes them."""
    stamps = [_epoch_seconds_ms(point.get("timestamp")) for point in points]
    values = [_number(point.get("value")) for point in points]
    return stamps, values, lambda i: (points[i].get("timestamp"), points[i].get("value"))
