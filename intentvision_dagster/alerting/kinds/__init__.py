"""The rule kinds, one class each, and the registry that maps a rules file's ``type:`` to its class.

A new kind is a :class:`~intentvision_dagster.alerting.kinds.base.Rule` subclass in its own module, added
to :data:`RULE_KINDS`; loading, evaluation, alert links and the Slack layout then pick it up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from intentvision_dagster.alerting.kinds.anomaly import AnomalyRule
from intentvision_dagster.alerting.kinds.base import Rule
from intentvision_dagster.alerting.kinds.budget import BudgetRule
from intentvision_dagster.alerting.kinds.forecast_breach import ForecastBreachRule

__all__ = ["RULE_KINDS", "AnomalyRule", "BudgetRule", "ForecastBreachRule", "Rule", "kind_of"]

RULE_KINDS: dict[str, type[Rule]] = {
    kind.kind: kind for kind in (ForecastBreachRule, AnomalyRule, BudgetRule)
}
"""Every rule kind by its ``type:`` value, in the order error messages list them."""


def kind_of(details: Mapping[str, Any]) -> type[Rule] | None:
    """The kind that raised an alert, from its details (None for an alert logged without one)."""
    return RULE_KINDS.get(details.get("kind"))
