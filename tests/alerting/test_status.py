"""The alert-status verdict per partition from alert candidates: worst first, capped table, rule coverage."""

from __future__ import annotations

import json

import pandas as pd

from intentvision_dagster.alerting.evaluate import CANDIDATE_COLUMNS
from intentvision_dagster.alerting.kinds import AnomalyRule, ForecastBreachRule
from intentvision_dagster.alerting.rules import RuleSet
from intentvision_dagster.alerting.status import CAPACITY, MAX_TABLE_ROWS, OPEN_ANOMALIES, partition_statuses

DISK = "node_filesystem_usage_percent"
RULES = RuleSet(
    [
        ForecastBreachRule(name="disk", metric=DISK, thresholds={"warning": 85, "critical": 90}),
        AnomalyRule(name="anomalies"),
    ]
)


def _breach(host: str, severity: str, probability: float, status: str = "firing") -> dict:
    details = {
        "kind": "forecast_breach",
        "threshold": 90.0 if severity == "critical" else 85.0,
        "unit": "%",
        "direction": "above",
        "probability": probability,
        "last_actual_y": 80.0,
        "expected_ds": "2026-01-02T03:00:00",
        "model": "MSTL",
        "accuracy": {"mae_recent": 0.4, "backtest_hours": 72},
    }
    return {
        "tenant": "acme",
        "metric": DISK,
        "series": f'acme/{DISK}{{host="{host}"}}',
        "labels": f'host="{host}"',
        "severity": severity,
        "details": json.dumps(details),
        "status": status,
    }


def test_capacity_rows_are_worst_first_with_readable_numbers_and_capped() -> None:
    rows = [_breach("a", "warning", 0.95), _breach("b", "critical", 0.91), _breach("c", "warning", 0.99)]
    rows += [_breach(f"w{i}", "warning", 0.8) for i in range(MAX_TABLE_ROWS)]
    candidates = pd.DataFrame(rows).reindex(columns=CANDIDATE_COLUMNS)
    [(key, status)] = partition_statuses(CAPACITY, candidates, [f"acme/{DISK}"], RULES).items()
    assert status.severity == "critical" and status.total == MAX_TABLE_ROWS + 3
    assert len(status.rows) == MAX_TABLE_ROWS
    assert list(status.rows["series"][:3]) == [f'{DISK}{{host="{h}"}}' for h in ("b", "c", "a")]
    first = status.rows.iloc[0].to_dict()
    assert first == {
        "series": f'{DISK}{{host="b"}}',
        "severity": "critical",
        "state": "firing",
        "crossing_utc": "2026-01-02 03:00 UTC",
        "probability": 0.91,
        "current": "80 %",
        "threshold": "90 %",
        "model": "MSTL",
        "accuracy": "typical error ±0.4 points over 72 h (recent backtest window)",
    }
    assert status.description == f"1 critical, {MAX_TABLE_ROWS + 2} warning in {key} (rules: disk)"


def test_a_partition_no_rule_watches_passes_and_says_so() -> None:
    candidates = pd.DataFrame([_breach("a", "warning", 0.9)]).reindex(columns=CANDIDATE_COLUMNS)
    statuses = partition_statuses(CAPACITY, candidates, ["acme/node_cpu_utilization_percent"], RULES)
    status = statuses["acme/node_cpu_utilization_percent"]
    assert (status.severity, status.total) == ("", 0)
    assert status.description == "no forecast_breach rule applies to acme/node_cpu_utilization_percent"
    # The anomaly rule watches every metric: clear, and it says which rule looked.
    anomalies = partition_statuses(OPEN_ANOMALIES, candidates, [f"acme/{DISK}"], RULES)[f"acme/{DISK}"]
    assert anomalies.severity == "" and anomalies.description == (
        f"clear: no open anomaly in acme/{DISK} (rules: anomalies)"
    )
