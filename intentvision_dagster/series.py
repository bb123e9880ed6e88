"""Series identity: (tenant, metric, labels) -> ``unique_id``: Prometheus's data model, Nixtla's long format.

Every frame in the product is long: ``unique_id, ds, y`` plus ``tenant, metric, labels`` where needed.
``labels`` is stored in canonical Prometheus form (``host="web-1",mount="/"``, keys sorted), and
``unique_id`` is ``tenant/metric{labels}`` so that frames holding several partitions stay unambiguous.
"""

from __future__ import annotations

import json
import re

import pandas as pd

from intentvision_dagster.names import LABEL_NAME_PATTERN, validate_metric, validate_tenant

SERIES_COLUMNS = ["tenant", "metric", "labels", "unique_id", "ds", "y"]

# One `name=value` or `name="value"` pair and its separator; quoted values may hold commas and escaped quotes.
_LABEL_PAIR = re.compile(
    r'\s*(?P<name>[^=,\s]+)\s*=\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<plain>[^,"]*))\s*(?:,|$)'
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def canonical_labels(labels: dict[str, str]) -> str:
    for name in labels:
        if not LABEL_NAME_PATTERN.fullmatch(name) or name.startswith("__"):
            raise ValueError(
                f"label name {name!r} is not valid: use letters, digits and '_', "
                "not starting with a digit or '__'"
            )
    return ",".join(f'{name}="{_escape(str(labels[name]))}"' for name in sorted(labels))


def parse_labels(text: object) -> dict[str, str]:
    """Parse a ``labels`` cell: a JSON object, ``k=v,k2=v2``, canonical ``k="v"`` pairs, or empty."""
    if text is None or (isinstance(text, float) and text != text):
        return {}
    raw = str(text).strip()
    if raw in ("", "{}"):
        return {}
    if raw.startswith("{"):
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"labels {raw!r} is not a valid JSON object: {exc.msg}") from None
        if not isinstance(parsed, dict):
            raise ValueError(f"labels {raw!r} must be a JSON object")
        return {str(k): str(v) for k, v in parsed.items()}
    labels: dict[str, str] = {}
    position = 0
    while position < len(raw):
        pair = _LABEL_PAIR.match(raw, position)
        if pair is None:
            raise ValueError(
                f'labels {raw!r}: {raw[position:]!r} is not of the form name=value or name="value"'
            )
        name, quoted, plain = pair.group("name", "quoted", "plain")
        labels[name] = _unescape(quoted) if quoted is not None else plain.strip()
        position = pair.end()
    return labels


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def unique_id(tenant: str, metric: str, labels: str) -> str:
    validate_tenant(tenant)
    validate_metric(metric)
    return f"{tenant}/{metric}{{{labels}}}" if labels else f"{tenant}/{metric}"


def counter_increase(df: pd.DataFrame) -> pd.DataFrame:
    """A counter's per-step increase, the quantity worth modelling for a monotonically growing total.

    A drop means the counter restarted from zero (a process restart), so that step's increase is the new
    value, as Prometheus' ``increase()`` counts it. The first point of each series has no increase: dropped.
    """
    frame = df.sort_values(["unique_id", "ds"], ignore_index=True)
    previous = frame.groupby("unique_id", sort=False)["y"].shift()
    step = frame["y"] - previous
    increase = step.where(step >= 0, frame["y"])
    return frame.assign(y=increase)[previous.notna()].reset_index(drop=True)
