"""What every rule kind evaluates on (:class:`RuleInputs`) and how alerts word their numbers.

Below the kinds and :mod:`~.evaluate`, so a kind never imports the module that dispatches to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class RuleInputs:
    """What rules are evaluated on; each kind reads the frames it needs."""

    forecasts: pd.DataFrame
    last_actuals: pd.DataFrame
    anomalies: pd.DataFrame
    accuracy: pd.DataFrame | None = None
    actuals: pd.DataFrame | None = None
    units: Mapping[str, str] = field(default_factory=dict)

    def unit(self, metric: str | None) -> str:
        """The metric's unit, for wording only ("" when unknown)."""
        return self.units.get(metric, "") if metric is not None else ""


def last_actuals(history: pd.DataFrame) -> pd.DataFrame:
    """Each series' newest point (``unique_id, ds, y``): where its forecast starts from."""
    if history.empty:
        return pd.DataFrame(columns=["unique_id", "ds", "y"])
    return history.sort_values("ds").drop_duplicates("unique_id", keep="last")[["unique_id", "ds", "y"]]


def display_name(metric: str, labels: object) -> str:
    text = "" if labels is None or pd.isna(labels) else str(labels)
    return f"{metric}{{{text}}}" if text else metric


def number(value: float) -> str:
    """Short human form: 80.4, 0.125, 3.2G; alerts are read on phones."""
    magnitude = abs(value)
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{round(value, 2):g}"


def quantity(value: float, unit: str) -> str:
    return f"{number(value)} {unit}".strip()


def utc_time(value: Any) -> str:
    """An absolute time as alerts print it (every timestamp in the warehouse is UTC)."""
    return f"{pd.Timestamp(value):%Y-%m-%d %H:%M} UTC"


def duration(delta: pd.Timedelta) -> str:
    """A relative time as alerts print it: minutes under an hour, hours up to three days, then days."""
    hours = delta / pd.Timedelta(hours=1)
    if hours < 1:
        return f"{max(round(hours * 60), 1)} min"
    if hours <= 72:
        return f"{round(hours)} h"
    return f"{round(hours / 24, 1):g} d"


def json_safe(value: Any) -> Any:
    """JSON-safe scalar: NaN/NaT become null, timestamps ISO strings, numpy numbers Python numbers."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isinf(value) else value
