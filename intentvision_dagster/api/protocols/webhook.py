"""Our own JSON webhook body (:data:`JSON_SHAPE`), as ``POST /v1/ingest`` takes it."""

from __future__ import annotations

from intentvision_dagster.api.protocols.columns import (
    ColumnBuilder,
    Columns,
    ItemProblem,
    Limits,
    type_problem,
)
from intentvision_dagster.api.protocols.json_series import json_body, json_points, series_list, shape_problems

JSON_SHAPE = (
    '{"series": [{"metric": "node_cpu", "labels": {"host": "web-1"}, '
    '"points": [{"timestamp": "2026-11-27T06:00:00Z" or epoch seconds, "value": 0.5}]}]}'
)


def decode_json(data: bytes, tenant: str, limits: Limits) -> Columns:
    """Our webhook format (:data:`JSON_SHAPE`)."""
    builder = ColumnBuilder(tenant, limits, "series")
    for index, item in enumerate(series_list(json_body(data), JSON_SHAPE)):
        if not isinstance(item, dict):
            builder.reject([ItemProblem(index, f"series[{index}]", item, type_problem("an object", item))])
            continue
        labels = item.get("labels") or {}
        points = item.get("points")
        problems = shape_problems(index, "series", labels, points)
        if problems:
            builder.reject(problems)
            continue
        builder.add_item(index, item.get("metric"), tuple(labels.items()), *json_points(points))
    return builder.out
