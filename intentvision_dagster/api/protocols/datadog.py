"""Datadog's ``/api/v2/series`` intake body, so Datadog agents and clients can send to us unchanged."""

from __future__ import annotations

import re

from intentvision_dagster.api.protocols.columns import (
    ColumnBuilder,
    Columns,
    ItemProblem,
    Limits,
    type_problem,
)
from intentvision_dagster.api.protocols.json_series import json_body, json_points, series_list, shape_problems

DATADOG_METRIC = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,199}$")


def decode_datadog(data: bytes, tenant: str, limits: Limits) -> Columns:
    """Datadog ``/api/v2/series``: names' dots become ``_``, ``tags`` (``key:value``) and ``resources``
    (``{"type": "host", "name": "web-1"}``) become labels, a tag without a value becomes ``tag="true"``."""
    builder = ColumnBuilder(tenant, limits, "series")
    for index, item in enumerate(series_list(json_body(data), "Datadog's v2 series payload")):
        where = f"series[{index}]"
        if not isinstance(item, dict):
            builder.reject([ItemProblem(index, where, item, type_problem("an object", item))])
            continue
        name = item.get("metric")
        problems = shape_problems(index, "series", {}, item.get("points"))
        labels, label_problems = _datadog_labels(index, item)
        problems += label_problems
        if isinstance(name, str) and not DATADOG_METRIC.fullmatch(name):
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
        builder.add_item(index, metric, tuple(sorted(labels.items())), *json_points(item["points"]))
    return builder.out


def _datadog_labels(index: int, item: dict) -> tuple[dict[str, str], list[ItemProblem]]:
    labels: dict[str, str] = {}
    problems = []
    tags = item.get("tags") or []
    resources = item.get("resources") or []
    where = f"series[{index}]"
    if not isinstance(tags, list) or any(not isinstance(t, str) for t in tags):
        problems.append(ItemProblem(index, f"{where}.tags", tags, type_problem("a list of strings", tags)))
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
                type_problem('[{"type": ..., "name": ...}]', resources),
            )
        )
        resources = []
    sources: dict[str, str] = {}
    given = []  # (field, the tag as sent, key, value)
    for tag in tags:
        key, sep, value = tag.partition(":")
        given.append((f"{where}.tags", tag, key, value if sep else "true"))
    for resource in resources:
        text = f"{resource['type']}:{resource['name']}"
        given.append((f"{where}.resources", text, resource["type"], resource["name"]))
    for path, text, key, value in given:
        name = _label_name(key)
        if name in labels and labels[name] != value:
            # Two tags that differ only in characters a label name cannot hold would merge distinct series.
            problems.append(
                ItemProblem(
                    index,
                    path,
                    [sources[name], text],
                    f"{sources[name]!r} and {text!r} both become label {name!r} with different values; "
                    "rename one of the tags",
                )
            )
        labels[name], sources[name] = value, text
    return labels, problems


def _label_name(text: str) -> str:
    """A Datadog tag key as a Prometheus label name: other characters become ``_``."""
    name = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in text.strip()) or "_"
    return f"_{name}" if name[0].isdigit() else name.lstrip("_") or "_"
