"""Budget rules: fire when a period's spend (actuals so far + forecast to its end) reaches a budget."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import pandas as pd

from intentvision_dagster.alerting import config
from intentvision_dagster.alerting.config import ConfigError
from intentvision_dagster.alerting.inputs import RuleInputs, json_safe, quantity
from intentvision_dagster.alerting.kinds.base import Rule
from intentvision_dagster.chart_marks import ThresholdLine

BUDGET_PERIODS = ("month",)


@dataclass(frozen=True, kw_only=True)
class BudgetRule(Rule):
    """Fire when the period's total (actuals so far + forecast to the period's end) reaches ``budget``.

    The matched series are summed (month-end cloud spend over every service). ``edge`` picks the forecast
    column summed for the future days: ``yhat`` for the expected spend, ``hi_80``/``hi_95`` for a cautious one
    (a sum of per-day upper bounds, wider than the sum's own interval).
    """

    kind: ClassVar[str] = "budget"
    yaml_fields: ClassVar[tuple[str, ...]] = (
        "name",
        "type",
        "metric",
        "budget",
        "period",
        "edge",
        "severity",
        "labels",
        "description",
    )
    asset: ClassVar[str] = "forecasts"
    name: str
    metric: str
    budget: float
    period: str = "month"
    edge: str = "yhat"
    severity: str = "warning"
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    @classmethod
    def from_entry(cls, where: str, entry: Mapping[str, Any], common: dict[str, Any]) -> Self:
        budget = config.number(where, "budget", entry.get("budget"))
        if budget <= 0:
            raise ConfigError(f"{where}: field 'budget' is {budget:g}, expected a positive amount")
        return cls(
            **common,
            metric=config.required_metric(where, entry),
            budget=budget,
            period=config.one_of(where, "period", entry.get("period", "month"), BUDGET_PERIODS),
            edge=config.one_of(where, "edge", entry.get("edge", "yhat"), ("yhat", "hi_80", "hi_95")),
            severity=config.one_of(
                where, "severity", entry.get("severity", "warning"), config.BREACH_SEVERITIES
            ),
        )

    def plot_lines(self, metric: str, now: pd.Timestamp) -> tuple[ThresholdLine, ...]:
        """The budget as a daily pace over the month holding ``now``: spend above it, summed over the
        series the rule matches, runs over the budget."""
        if metric != self.metric:
            return ()
        pace = self.budget / now.days_in_month
        label = f"budget pace {pace:,.0f}/day ({self.budget:,.0f}/month, all matched series)"
        return (ThresholdLine(pace, "budget", label),)

    def evaluate(self, inputs: RuleInputs) -> list[dict[str, Any]]:
        return _budget(self, inputs.forecasts, inputs.actuals, inputs.unit(self.metric))


def _period_end(ds: pd.Timestamp, period: str) -> pd.Timestamp:
    """The first timestamp after the period holding ``ds`` (only calendar months so far)."""
    return (ds.to_period("M") + 1).to_timestamp() if period == "month" else ds


def _budget(
    rule: BudgetRule, forecasts: pd.DataFrame, actuals: pd.DataFrame | None, unit: str
) -> list[dict[str, Any]]:
    """Per tenant: actual spend this period + forecast spend to the period's end, against the budget.

    Where the forecast stops before the period ends, its last day is carried forward (the message says so).
    """
    frame = rule.matching(forecasts)
    if frame.empty:
        return []
    rows = []
    for tenant, tenant_frame in frame.groupby("tenant"):
        daily = tenant_frame.groupby("ds")[rule.edge].sum().sort_index()
        start = daily.index.min()
        period_start = start.to_period("M").to_timestamp() if rule.period == "month" else start
        period_end = _period_end(start, rule.period)
        spent = 0.0
        if actuals is not None and not actuals.empty:
            so_far = actuals[actuals["unique_id"].isin(set(tenant_frame["unique_id"]))]
            so_far = so_far[(so_far["ds"] >= period_start) & (so_far["ds"] < start)]
            spent = float(so_far["y"].sum())
        future = daily[daily.index < period_end]
        step = daily.index.to_series().diff().min() if len(daily) > 1 else pd.Timedelta(days=1)
        covered_to = future.index.max() + step
        carried = max(int((period_end - covered_to) / step), 0)
        cumulative = spent + future.cumsum()
        projected = float(cumulative.iloc[-1] + carried * future.iloc[-1])
        if projected < rule.budget:
            continue
        crossed = cumulative[cumulative >= rule.budget]
        if crossed.empty:  # crosses in the carried-forward days
            steps_needed = math.ceil((rule.budget - float(cumulative.iloc[-1])) / float(future.iloc[-1]))
            crossing = covered_to + step * max(steps_needed - 1, 0)
        else:
            crossing = crossed.index[0]
        display = f"{rule.metric} (sum of {tenant_frame['unique_id'].nunique()} series)"
        carried_text = (
            f"; forecast covers to {covered_to:%Y-%m-%d}, its last day carried forward to the period's end"
            if carried
            else ""
        )
        summary = (
            f"{display}: {rule.period} spend expected to reach {quantity(projected, unit)} by "
            f"{period_end - pd.Timedelta(days=1):%Y-%m-%d}, "
            f"over the budget of {quantity(rule.budget, unit)} "
            f"from {crossing:%Y-%m-%d} ({quantity(spent, unit)} spent so far, forecast {rule.edge})"
            f"{carried_text}"
        )
        details = {
            "kind": rule.kind,
            "budget": rule.budget,
            "unit": unit,
            "period_start": json_safe(period_start),
            "period_end": json_safe(period_end),
            "spent": spent,
            "projected": projected,
            "crossing_ds": json_safe(crossing),
            "edge": rule.edge,
            "description": rule.description,
        }
        series = f"{tenant}/{rule.metric}"
        rows.append(
            {
                "tenant": tenant,
                "metric": rule.metric,
                "series": series,
                "labels": "",
                "rule": rule.name,
                "severity": rule.severity,
                "dedup_key": f"{tenant}:{rule.name}:{period_start:%Y-%m}",
                "summary": summary,
                "details": json.dumps(details),
                "status": "firing",
                "hold_severity": rule.severity,
            }
        )
    return rows
