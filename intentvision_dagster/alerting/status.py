"""What the per-partition alert-status checks show in the Dagster UI: the worst severity among a partition's
alert candidates and a table of the series concerned.

The candidates are the alert sensor's own (:func:`~intentvision_dagster.alerting.engine.partition_candidates`,
so a capacity row is :meth:`ForecastBreachRule.assess`'s decision), read before anything is logged: the
check tells on-call where to look as soon as the run ends, and the sensor pages from the same figures.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from intentvision_dagster.alerting.inputs import display_name, quantity
from intentvision_dagster.alerting.kinds import AnomalyRule, ForecastBreachRule, Rule
from intentvision_dagster.alerting.kinds.forecast_breach import accuracy_text
from intentvision_dagster.alerting.rules import RuleSet
from intentvision_dagster.names import partition_key, split_partition_key
from intentvision_dagster.severity import SEVERITY_RANK

MAX_TABLE_ROWS = 50
"""Rows a check's table shows (worst first); the count of every series concerned is reported beside it."""


def _utc(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d %H:%M} UTC"


def _capacity_row(candidate: Mapping[str, Any], details: Mapping[str, Any]) -> dict[str, Any]:
    unit = details.get("unit", "")
    now, line, direction = float(details["last_actual_y"]), float(details["threshold"]), details["direction"]
    past = now >= line if direction == "above" else now <= line
    return {
        "series": display_name(candidate["metric"], candidate["labels"]),
        "severity": candidate["severity"],
        "state": candidate["status"],
        "crossing_utc": f"already {direction}"
        if past
        else _utc(details["expected_ds"]) or "after the horizon",
        "probability": float(details["probability"]),
        "current": quantity(now, unit),
        "threshold": quantity(line, unit),
        "model": str(details.get("model")),
        "accuracy": accuracy_text(details.get("accuracy") or {}, unit) or "no backtest yet",
    }


def _anomaly_row(candidate: Mapping[str, Any], details: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "series": display_name(candidate["metric"], candidate["labels"]),
        "severity": candidate["severity"],
        "since_utc": _utc(details.get("onset_ds")),
        "points": int(details.get("points") or 0),
        "peak_score": round(float(details.get("peak_score") or 0.0), 2),
        "reason": str(details.get("reason") or ""),
    }


@dataclass(frozen=True)
class StatusKind:
    """One alert-status check: the rule kind it follows and how its table reads a candidate."""

    check_name: str
    rule_kind: type[Rule]
    columns: tuple[str, ...]
    row: Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]
    sort_by: str
    clear: str
    description: str

    def applies(self, rule: Rule, metric: str) -> bool:
        return isinstance(rule, self.rule_kind) and rule.metric in (None, metric)


CAPACITY = StatusKind(
    check_name="capacity",
    rule_kind=ForecastBreachRule,
    columns=(
        "series",
        "severity",
        "state",
        "crossing_utc",
        "probability",
        "current",
        "threshold",
        "model",
        "accuracy",
    ),
    row=_capacity_row,
    sort_by="probability",
    clear="no series of {key} at risk",
    description=(
        "Capacity outlook of the partition's series under the forecast_breach rules that apply to its tenant "
        "and metric (tenant rules included), decided as the alert sensor decides (ForecastBreachRule.assess):"
        " ERROR when a series is critical, WARN when the worst is a warning (or an alert held open short of "
        "its recovery level), passing when clear. The table lists the series at risk with the expected "
        "crossing time (UTC), the breach probability within the horizon, the value now, the model and its "
        "typical backtest error."
    ),
)
OPEN_ANOMALIES = StatusKind(
    check_name="open_anomalies",
    rule_kind=AnomalyRule,
    columns=("series", "severity", "since_utc", "points", "peak_score", "reason"),
    row=_anomaly_row,
    sort_by="points",
    clear="no open anomaly in {key}",
    description=(
        "Ongoing anomaly events of the partition's series that the tenant's anomaly rules alert on: ERROR "
        "when one is critical, WARN when the worst is a warning, passing when none is ongoing (events that "
        "ended are resolved by the alert sensor and not listed). The table gives each event's onset (UTC), "
        "flagged points, peak score and the detector's reason."
    ),
)
STATUS_KINDS = (CAPACITY, OPEN_ANOMALIES)


@dataclass(frozen=True)
class PartitionStatus:
    """One partition's verdict for one check: ``severity`` "" when clear."""

    severity: str
    rows: pd.DataFrame
    total: int
    description: str


def partition_statuses(
    kind: StatusKind, candidates: pd.DataFrame, keys: list[str], rules: RuleSet
) -> dict[str, PartitionStatus]:
    """The verdict of ``kind``'s check for every partition in ``keys``, from the sensor's candidates.

    Capacity counts firing and holding rows (a held alert stays open at its hold severity); the anomaly check
    counts ongoing events only.
    """
    wanted = candidates[
        candidates["details"].map(lambda text: json.loads(text).get("kind") == kind.rule_kind.kind)
        & (candidates["status"] != "ended")
    ]
    grouped = {
        partition_key(tenant, metric): group
        for (tenant, metric), group in wanted.groupby(["tenant", "metric"], sort=False)
    }
    statuses = {}
    for key in keys:
        tenant, metric = split_partition_key(key)
        names = [rule.name for rule in rules.for_tenant(tenant) if kind.applies(rule, metric)]
        group = grouped.get(key, wanted.iloc[0:0])
        rows = pd.DataFrame(
            [kind.row(c, json.loads(c["details"])) for c in group.to_dict("records")],
            columns=list(kind.columns),
        )
        rank = rows["severity"].map(SEVERITY_RANK)
        rows = rows.assign(_rank=rank).sort_values(["_rank", kind.sort_by], ascending=False)
        worst = str(rows["severity"].iloc[0]) if len(rows) else ""
        if not names:
            description = f"no {kind.rule_kind.kind} rule applies to {key}"
        elif not len(rows):
            description = f"clear: {kind.clear.format(key=key)} (rules: {', '.join(names)})"
        else:
            counts = rows.groupby("_rank", sort=True)["severity"].agg(["first", "size"])[::-1]
            listed = ", ".join(f"{size} {severity}" for severity, size in counts.itertuples(index=False))
            description = f"{listed} in {key} (rules: {', '.join(names)})"
        shown = rows.drop(columns="_rank").head(MAX_TABLE_ROWS).reset_index(drop=True)
        statuses[key] = PartitionStatus(worst, shown, len(rows), description)
    return statuses
