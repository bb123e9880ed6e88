"""Rule kinds: the registry, refusing a kind it does not know, and what each kind says, shows and links to."""

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.alerting.config import ConfigError
from intentvision_dagster.alerting.dispatch import partition_url
from intentvision_dagster.alerting.inputs import RuleInputs
from intentvision_dagster.alerting.kinds import RULE_KINDS, AnomalyRule, BudgetRule, ForecastBreachRule, Rule
from intentvision_dagster.alerting.layout import notification_blocks
from intentvision_dagster.alerting.resources import AlertRules
from intentvision_dagster.alerting.rules import load_rule_set
from intentvision_dagster.chart_marks import ThresholdLine

NOW = pd.Timestamp("2026-01-05 00:00")
DISK = "node_filesystem_usage_percent"
CPU = "node_cpu_utilization_percent"
COST = "cloud_cost_usd_daily"


def test_the_registry_holds_every_kind_under_its_type() -> None:
    assert list(RULE_KINDS.items()) == [
        ("forecast_breach", ForecastBreachRule),
        ("anomaly", AnomalyRule),
        ("budget", BudgetRule),
    ]


@pytest.mark.parametrize("where", ["defaults", "tenant"])
def test_an_unknown_rule_type_is_refused_at_load_naming_file_rule_and_value(
    tmp_path: Path, where: str
) -> None:
    valid = "rules:\n  - {name: anomalies, type: anomaly}\n"
    unknown = valid + "  - {name: burn-rate, type: slo_burn, metric: m}\n"
    (tmp_path / "tenants").mkdir()
    (tmp_path / "alert_rules.yaml").write_text(unknown if where == "defaults" else valid)
    (tmp_path / "tenants" / "acme.yaml").write_text(valid if where == "defaults" else unknown)
    source = "alert_rules.yaml" if where == "defaults" else "acme.yaml"
    with pytest.raises(ConfigError) as raised:
        load_rule_set(tmp_path / "alert_rules.yaml", tmp_path / "tenants")
    assert str(raised.value) == (
        f"{source}: rule #2 'burn-rate': field 'type' is 'slo_burn', "
        "expected one of forecast_breach, anomaly, budget"
    )


def test_a_kind_missing_a_part_is_refused_before_it_can_fail_silently() -> None:
    with pytest.raises(TypeError, match="rule kind NoLink must define asset"):

        class NoLink(Rule):
            kind: ClassVar[str] = "no_link"
            yaml_fields: ClassVar[tuple[str, ...]] = ("name", "type")

    class NoEvaluation(Rule):
        kind: ClassVar[str] = "no_evaluation"
        yaml_fields: ClassVar[tuple[str, ...]] = ("name", "type")
        asset: ClassVar[str] = "forecasts"

        @classmethod
        def from_entry(cls, where: str, entry: Any, common: dict[str, Any]) -> "NoEvaluation":
            return cls()

    with pytest.raises(TypeError, match=r"abstract .*\bevaluate\b"):
        NoEvaluation.from_entry("x", {}, {})


def breach_inputs() -> RuleInputs:
    """db-1's disk forecast: hi_95 reaches 90 after 32 h, yhat after 48 h, lo_95 after 64 h."""
    hours = np.arange(1, 73)
    yhat = 78.0 + 0.25 * hours
    frame = pd.DataFrame(
        {
            "tenant": "acme",
            "metric": DISK,
            "labels": 'host="db-1"',
            "unique_id": f'acme/{DISK}{{host="db-1"}}',
            "ds": NOW + pd.to_timedelta(hours, unit="h"),
            "yhat": yhat,
            "lo_95": yhat - 4,
            "hi_95": yhat + 4,
            "model": "MSTL",
        }
    )
    last = pd.DataFrame({"unique_id": [frame["unique_id"][0]], "ds": [NOW], "y": [78.0]})
    return RuleInputs(forecasts=frame, last_actuals=last, anomalies=pd.DataFrame(), units={DISK: "%"})


def anomaly_inputs() -> RuleInputs:
    """web-1's CPU: a critical point at the newest timestamp, so the event is still going on."""
    frame = pd.DataFrame(
        {
            "tenant": "acme",
            "metric": CPU,
            "labels": 'host="web-1"',
            "unique_id": f'acme/{CPU}{{host="web-1"}}',
            "ds": [NOW, NOW + pd.Timedelta(hours=1)],
            "y": [40.0, 97.0],
            "expected": [41.0, 40.0],
            "anomaly_score": [0.2, 6.3],
            "is_anomaly": [False, True],
            "severity": ["none", "critical"],
            "event_id": [None, "ev-1"],
            "reason": ["", "y=97 above expected 40"],
            "detector": "robust_zscore",
        }
    )
    return RuleInputs(forecasts=pd.DataFrame(), last_actuals=pd.DataFrame(), anomalies=frame)


def budget_inputs() -> RuleInputs:
    """1000 USD a day forecast for the last week of January, nothing spent before it."""
    frame = pd.DataFrame(
        {
            "tenant": "acme",
            "metric": COST,
            "labels": 'service="compute"',
            "unique_id": f'acme/{COST}{{service="compute"}}',
            "ds": pd.date_range("2026-01-25", "2026-01-31", freq="D"),
            "yhat": 1000.0,
            "model": "MSTL",
        }
    )
    return RuleInputs(
        forecasts=frame, last_actuals=pd.DataFrame(), anomalies=pd.DataFrame(), units={COST: "USD"}
    )


KIND_CASES = {
    "forecast_breach": (
        ForecastBreachRule(name="disk-capacity", metric=DISK, threshold=90, severity="critical"),
        breach_inputs,
        'node_filesystem_usage_percent{host="db-1"} expected to cross 90 % in 48 h '
        "(2026-01-07 00:00 UTC; 80% interval 38 h – 59 h), probability 100% within 72 h; now 78; model MSTL",
        [
            "*Breach probability*\n100% within 72 h",
            "*Expected*\n2026-01-07 00:00 UTC (in 48 h)",
            "*80% interval*\n2026-01-06 14:00 UTC (in 38 h) – 2026-01-07 11:00 UTC (in 59 h)",
            "*Now*\n78 % (threshold 90)",
            "*Model*\nMSTL",
        ],
    ),
    "anomaly": (
        AnomalyRule(name="anomalies", min_severity="warning"),
        anomaly_inputs,
        'node_cpu_utilization_percent{host="web-1"}: critical anomaly since 2026-01-05 01:00 UTC '
        "(at the newest point) (1 points, peak score 6.3): y=97 above expected 40",
        [],
    ),
    "budget": (
        BudgetRule(name="budget", metric=COST, budget=5000),
        budget_inputs,
        "cloud_cost_usd_daily (sum of 1 series): month spend expected to reach 7k USD by 2026-01-31, "
        "over the budget of 5k USD from 2026-01-29 (0 USD spent so far, forecast yhat)",
        [],
    ),
}


@pytest.mark.parametrize("kind", list(KIND_CASES))
def test_each_kind_writes_its_message_its_slack_fields_and_its_link(kind: str) -> None:
    rule, inputs, summary, fields = KIND_CASES[kind]
    assert type(rule) is RULE_KINDS[kind]
    (row,) = rule.evaluate(inputs())
    details = json.loads(row["details"])
    assert (row["rule"], row["status"], row["summary"], details["kind"]) == (
        rule.name,
        "firing",
        summary,
        kind,
    )
    assert RULE_KINDS[kind].message_fields(details) == fields
    url = partition_url("http://ui", row)
    assert url.startswith(f"http://ui/assets/{RULE_KINDS[kind].asset}?view=partitions&partition=acme%2F")
    alert = {**row, "id": "a1", "details": details, "url": url}
    payload = {"kind": "firing", "tenant": "acme", "group_id": "g1", "group_labels": {}, "firing": [alert]}
    text, blocks = notification_blocks({**payload, "resolved": []})
    assert summary in text and summary in blocks[1]["text"]["text"] and url in blocks[1]["text"]["text"]
    shown = [field["text"] for block in blocks if "fields" in block for field in block["fields"]]
    assert shown == fields


def test_breach_and_budget_rules_draw_their_lines_on_their_metrics_chart() -> None:
    breach = ForecastBreachRule(name="disk", metric=DISK, thresholds={"warning": 80, "critical": 90})
    assert breach.plot_lines(DISK, NOW) == (
        ThresholdLine(80.0, "warning", "warning 80"),
        ThresholdLine(90.0, "critical", "critical 90"),
    )
    assert breach.plot_lines(CPU, NOW) == ()
    shared = ForecastBreachRule(
        name="cpu", metric=CPU, threshold=98, min_probability={"warning": 0.5, "critical": 0.9}
    )
    assert shared.plot_lines(CPU, NOW) == (ThresholdLine(98.0, "critical", "warning/critical 98"),)
    assert AnomalyRule(name="a", metric=DISK).plot_lines(DISK, NOW) == ()
    budget = BudgetRule(name="b", metric=COST, budget=31_000)
    assert budget.plot_lines(COST, NOW) == (  # January: 31 days
        ThresholdLine(1000.0, "budget", "budget pace 1,000/day (31,000/month, all matched series)"),
    )
    assert budget.plot_lines(DISK, NOW) == ()


def test_the_breach_outlook_is_each_tenants_rules_level_by_level_as_the_rule_judges_it(
    tmp_path: Path,
) -> None:
    """What the forecasts publish to Prometheus: per series, rule and level, P(reaching the line) and the
    expected crossing, the figures the alert rule itself pages by."""
    acme = breach_inputs()
    globex_id = f'globex/{DISK}{{host="db-1"}}'
    forecasts = pd.concat([acme.forecasts, acme.forecasts.assign(tenant="globex", unique_id=globex_id)])
    history = pd.concat([acme.last_actuals, acme.last_actuals.assign(unique_id=globex_id)])
    (tmp_path / "tenants").mkdir()
    (tmp_path / "alert_rules.yaml").write_text(
        "rules:\n  - {name: any, type: anomaly}\n"
        f"  - {{name: disk, type: forecast_breach, metric: {DISK}, "
        "thresholds: {warning: 90, critical: 95}}\n"
    )
    (tmp_path / "tenants" / "acme.yaml").write_text(
        f"rules:\n  - {{name: disk, type: forecast_breach, metric: {DISK}, threshold: 70}}\n"
    )
    rules = AlertRules(
        alert_rules=str(tmp_path / "alert_rules.yaml"), tenant_rules_dir=str(tmp_path / "tenants")
    )
    outlook = rules.breach_outlook(forecasts, history).set_index(["tenant", "severity"])

    assert sorted(outlook.index) == [("acme", "warning"), ("globex", "critical"), ("globex", "warning")]
    assert set(outlook["rule"]) == {"disk"}
    assert set(outlook["horizon"]) == {pd.Timedelta(hours=72)}
    assert set(outlook["labels"]) == {'host="db-1"'}
    for severity, line in (("warning", 90), ("critical", 95)):
        [alone] = ForecastBreachRule(name="disk", metric=DISK, threshold=line).assess(
            acme.forecasts, acme.last_actuals
        )["probability"]
        assert outlook.loc[("globex", severity), "probability"] == pytest.approx(alone)
    # yhat reaches 90 after 48 h: the median crossing; acme's own line (70) is behind it already.
    assert outlook.loc[("globex", "warning"), "crossing_ds"] == NOW + pd.Timedelta(hours=48)
    assert 0.5 < outlook.loc[("globex", "warning"), "probability"] < 1
    assert outlook.loc[("acme", "warning"), ["probability", "crossing_ds"]].tolist() == [
        1.0,
        NOW + pd.Timedelta(hours=1),
    ]
