"""Turn forecasts and anomalies into alert candidates, one row per (rule, series problem).

Candidates are not alerts yet: :mod:`intentvision_dagster.alerting.log` decides which are new. The dedup key
is a pure function of the inputs, so evaluating the same forecast twice yields the same key. Each rule kind
(:mod:`intentvision_dagster.alerting.kinds`) computes its own rows; this module holds what they share.

``status`` says what the candidate means for an open alert: ``firing`` (the condition holds now), ``holding``
(a forecast breach back inside its threshold but not past its recovery level: keeps an open alert open at
``hold_severity``, never opens one) or ``ended`` (an anomaly episode that happened within the lookback but is
over: alerted once if it was never alerted, then resolved).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from intentvision_dagster.alerting.kinds import Rule

CANDIDATE_COLUMNS = [
    "tenant",
    "metric",
    "series",
    "labels",
    "rule",
    "severity",
    "dedup_key",
    "summary",
    "details",
    "status",
    "hold_severity",
]


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


def evaluate(
    rules: Iterable[Rule],
    forecasts: pd.DataFrame,
    last_actuals: pd.DataFrame,
    anomalies: pd.DataFrame,
    accuracy: pd.DataFrame | None = None,
    units: Mapping[str, str] | None = None,
    actuals: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Evaluate every rule; ``units`` (metric -> unit, e.g. from the metric catalog) only affects wording.

    ``actuals`` (``unique_id, ds, y`` of the period so far) is only needed by budget rules; without it they
    count the forecast alone.
    """
    inputs = RuleInputs(forecasts, last_actuals, anomalies, accuracy, actuals, units or {})
    rows = [row for rule in rules for row in rule.evaluate(inputs)]
    return pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)


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


def json_safe(value: Any) -> Any:
    """JSON-safe scalar: NaN/NaT become null, timestamps ISO strings, numpy numbers Python numbers."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isinf(value) else value
