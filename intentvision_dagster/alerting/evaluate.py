"""Turn forecasts and anomalies into alert candidates, one row per (rule, series problem).

Candidates are not alerts yet: :mod:`intentvision_dagster.alerting.log` decides which are new. The dedup key
is a pure function of the inputs, so evaluating the same forecast twice yields the same key. Each rule kind
(:mod:`intentvision_dagster.alerting.kinds`) computes its own rows from :class:`~.inputs.RuleInputs`.

``status`` says what the candidate means for an open alert: ``firing`` (the condition holds now), ``holding``
(a forecast breach back inside its threshold but not past its recovery level: keeps an open alert open at
``hold_severity``, never opens one) or ``ended`` (an anomaly episode that happened within the lookback but is
over: alerted once if it was never alerted, then resolved).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import pandas as pd

from intentvision_dagster.alerting.inputs import RuleInputs

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
