"""Alert rule files: entries parsed by their kind, errors naming file, rule and field, tenant overrides."""

from pathlib import Path

import pandas as pd
import pytest

from intentvision_dagster.alerting.config import ConfigError
from intentvision_dagster.alerting.kinds import AnomalyRule, ForecastBreachRule
from intentvision_dagster.alerting.rules import load_rule_set, load_rules
from intentvision_dagster.settings import ASSETS_DIR
from tests.alerting.support import write


def test_shipped_rules_load() -> None:
    rules = {rule.name: rule for rule in load_rules(ASSETS_DIR / "alert_rules.yaml")}
    disk = rules["disk-capacity"]
    assert isinstance(disk, ForecastBreachRule) and disk.kind == "forecast_breach"
    assert (disk.metric, disk.thresholds, disk.recovery, disk.direction, disk.edge, disk.severity) == (
        "node_filesystem_usage_percent",
        {"warning": 85.0, "critical": 90.0},
        {"warning": 82.0, "critical": 87.0},
        "above",
        None,
        "critical",
    )
    assert disk.min_probability == {"warning": 0.8, "critical": 0.9}
    assert disk.threshold == 85.0, "the first line to trip (forecast plots draw it)"
    anomaly = next(rule for rule in rules.values() if isinstance(rule, AnomalyRule))
    assert anomaly.metric is None and anomaly.min_severity == "warning"
    shipped = load_rule_set(ASSETS_DIR / "alert_rules.yaml", ASSETS_DIR / "tenant_rules")
    assert "cloud-budget" in {rule.name for rule in shipped.for_tenant("acme")}
    assert "cloud-budget" not in {rule.name for rule in shipped.for_tenant("globex")}


def test_defaults_follow_direction(tmp_path: Path) -> None:
    rules = load_rules(
        write(
            tmp_path,
            """
rules:
  - {name: low-rps, type: forecast_breach, metric: http_requests_per_second, threshold: 5, direction: below,
     labels: {service: api}}
  - {name: anomalies, type: anomaly, metric: "*"}
  - {name: cpu-anomalies, type: anomaly, metric: node_cpu_utilization_percent, min_severity: critical}
""",
        )
    )
    low, every, cpu = rules
    assert (low.edge, low.min_probability, low.severity, low.labels) == (
        None,
        {"warning": 0.8},
        "warning",
        {"service": "api"},
    )
    assert low.matches("http_requests_per_second", {"service": "api", "pod": "a"})
    assert not low.matches("http_requests_per_second", {"service": "web"})
    assert every.metric is None and every.matches("anything", {})
    assert (cpu.metric, cpu.min_severity) == ("node_cpu_utilization_percent", "critical")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "rules:\n  - {name: a, type: anomaly}\n  - {name: disk-capacity, type: forecast_breach, "
            "metric: node_filesystem_usage_percent, threshold: 90, edge: hi_99}\n",
            "alert_rules.yaml: rule #2 'disk-capacity': field 'edge' is 'hi_99', "
            "expected one of hi_80, hi_95, yhat, lo_80, lo_95",
        ),
        (
            "rules:\n  - {name: disk, type: forecast_breach, metric: m, threshold: 90, edge: hi_95, "
            "min_probability: 0.5}\n",
            "alert_rules.yaml: rule #1 'disk': give field 'min_probability' or the older field 'edge', "
            "not both (edge hi_95 is min_probability 0.025, hi_80 0.1, yhat 0.5)",
        ),
        (
            "rules:\n  - {name: disk, type: forecast_breach, metric: m, threshold: 90, "
            "min_probability: 1.5}\n",
            "alert_rules.yaml: rule #1 'disk': field 'min_probability' is 1.5, expected a probability in "
            "(0, 1] such as 0.5",
        ),
        (
            "rules:\n  - {name: disk, type: forecast_breach, metric: m, "
            "thresholds: {warning: 85, critical: 90}, min_probability: {critical: 0.9}}\n",
            "alert_rules.yaml: rule #1 'disk': field 'min_probability' has severities ['critical'], expected "
            "the severities of 'thresholds' (['critical', 'warning']) or one number for all",
        ),
        (
            "rules:\n  - {name: disk, type: forecast_breach, metric: m, threshold: 90, severity: critical, "
            "min_probability: {warning: 0.5, critical: 0.9}}\n",
            "alert_rules.yaml: rule #1 'disk': field 'severity' and a 'min_probability' mapping both name "
            "severities; the mapping's keys are the severities of the one threshold",
        ),
        (
            "rules:\n  - {name: disk, type: forecast_breach, metric: m, threshold: high}\n",
            "alert_rules.yaml: rule #1 'disk': field 'threshold' is 'high', expected a number",
        ),
        (
            "rules:\n  - {name: disk, type: forecast_breach, threshold: 90}\n",
            "alert_rules.yaml: rule #1 'disk': field 'metric' is missing",
        ),
        (
            "rules:\n  - {type: anomaly}\n",
            "alert_rules.yaml: rule #1: field 'name' is missing",
        ),
        (
            "rules:\n  - {name: a, type: anomaly}\n  - {name: a, type: anomaly}\n",
            "alert_rules.yaml: rule #2 'a': field 'name' is 'a', already used by rule #1",
        ),
        (
            "rules:\n  - {name: a, type: page}\n",
            "alert_rules.yaml: rule #1 'a': field 'type' is 'page', "
            "expected one of forecast_breach, anomaly, budget",
        ),
        (
            "rules:\n  - {name: a, type: forecast_breach, metric: m, threshold: 1, direction: up}\n",
            "alert_rules.yaml: rule #1 'a': field 'direction' is 'up', expected one of above, below",
        ),
        (
            "rules:\n  - {name: a, type: forecast_breach, metric: m, threshold: 1, severity: info}\n",
            "alert_rules.yaml: rule #1 'a': field 'severity' is 'info', expected one of warning, critical",
        ),
        (
            "rules:\n  - {name: a, type: anomaly, min_severity: high}\n",
            "alert_rules.yaml: rule #1 'a': field 'min_severity' is 'high', "
            "expected one of info, warning, critical",
        ),
        (
            "rules:\n  - {name: a, type: anomaly, treshold: 3}\n",
            "alert_rules.yaml: rule #1 'a': unknown field 'treshold', "
            "expected one of name, type, metric, min_severity, min_points, window_points, lookback, labels, "
            "description",
        ),
        (
            "rules:\n  - {name: a, type: anomaly, labels: [host]}\n",
            "alert_rules.yaml: rule #1 'a': field 'labels' is ['host'], "
            "expected a mapping of label name to value",
        ),
        (
            "rules:\n  - {name: a, type: anomaly, metric: 2xx-rate}\n",
            "alert_rules.yaml: rule #1 'a': field 'metric': metric '2xx-rate' is not a valid metric name: "
            "use letters, digits, '_' and ':', not starting with a digit (the Prometheus metric-name rule)",
        ),
        ("rules: {name: a}\n", "alert_rules.yaml: expected a top-level 'rules' list"),
        ("rules:\n  - just-a-name\n", "alert_rules.yaml: rule #1: expected a mapping, got 'just-a-name'"),
    ],
)
def test_rule_errors_name_file_rule_and_field(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_rules(write(tmp_path, body))
    assert str(raised.value) == message


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^alert_rules\.yaml: not valid YAML: "):
        load_rules(write(tmp_path, "rules: [\n"))


def test_anomaly_lookback_defaults_to_four_days_and_rejects_nonsense(tmp_path):
    path = tmp_path / "alert_rules.yaml"
    path.write_text("rules:\n  - {name: a, type: anomaly}\n  - {name: b, type: anomaly, lookback: 36h}\n")
    first, second = load_rules(path)
    assert first.lookback == pd.Timedelta(days=4) and second.lookback == pd.Timedelta(hours=36)
    path.write_text("rules:\n  - {name: a, type: anomaly, lookback: soon}\n")
    with pytest.raises(ConfigError) as error:
        load_rules(path)
    assert str(error.value) == (
        "alert_rules.yaml: rule #1 'a': field 'lookback' is 'soon', "
        "expected a positive duration such as '4d' or '36h'"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "rules:\n  - {name: a, type: forecast_breach, metric: m}\n",
            "alert_rules.yaml: rule #1 'a': give exactly one of field 'threshold' or field 'thresholds'",
        ),
        (
            "rules:\n  - {name: a, type: forecast_breach, metric: m, thresholds: {page: 3}}\n",
            "alert_rules.yaml: rule #1 'a': field 'thresholds.page' is 'page', "
            "expected one of warning, critical",
        ),
        (
            "rules:\n  - {name: a, type: forecast_breach, metric: m,"
            " thresholds: {warning: 90, critical: 80}}\n",
            "alert_rules.yaml: rule #1 'a': field 'thresholds.critical' is 80, expected it above "
            "thresholds.warning (90)",
        ),
        (
            "rules:\n  - {name: a, type: forecast_breach, metric: m, thresholds: {warning: 80},"
            " recovery: {warning: 85}}\n",
            "alert_rules.yaml: rule #1 'a': field 'recovery.warning' is 85, expected at most the warning "
            "threshold 80 (a series recovers on the safe side of the line)",
        ),
        (
            "rules:\n  - {name: a, type: forecast_breach, metric: m, threshold: 1, horizon: -3h}\n",
            "alert_rules.yaml: rule #1 'a': field 'horizon' is '-3h', expected a positive duration such as "
            "'4d' or '36h'",
        ),
        (
            "rules:\n  - {name: a, type: anomaly, min_points: 3, window_points: 2}\n",
            "alert_rules.yaml: rule #1 'a': field 'window_points' is 2, expected at least min_points (3)",
        ),
        (
            "rules:\n  - {name: a, type: anomaly, min_points: 0}\n",
            "alert_rules.yaml: rule #1 'a': field 'min_points' is 0, expected a whole number >= 1",
        ),
        (
            "rules:\n  - {name: a, type: budget, metric: cost, budget: often}\n",
            "alert_rules.yaml: rule #1 'a': field 'budget' is 'often', expected a number",
        ),
        (
            "rules:\n  - {name: a, type: budget, metric: cost, budget: 10, period: week}\n",
            "alert_rules.yaml: rule #1 'a': field 'period' is 'week', expected one of month",
        ),
    ],
)
def test_new_rule_fields_are_validated(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_rules(write(tmp_path, body))
    assert str(raised.value) == message


def test_levels_and_recovery_load(tmp_path: Path) -> None:
    (rule,) = load_rules(
        write(
            tmp_path,
            "rules:\n  - {name: a, type: forecast_breach, metric: m, thresholds: {critical: 95, warning: 85},"
            " recovery: {warning: 80}, horizon: 48h}\n",
        )
    )
    assert rule.thresholds == {"warning": 85.0, "critical": 95.0}
    assert rule.recovery == {"warning": 80.0, "critical": 95.0}, "no recovery given: the threshold itself"
    assert (rule.threshold, rule.severity, rule.horizon) == (85.0, "critical", pd.Timedelta(hours=48))


def test_tenant_rule_files_replace_defaults_by_name_for_that_tenant_only(tmp_path: Path) -> None:
    defaults = write(
        tmp_path,
        "rules:\n  - {name: disk, type: forecast_breach, metric: m, threshold: 90}\n"
        "  - {name: anomalies, type: anomaly}\n",
    )
    (tmp_path / "tenants").mkdir()
    write(
        tmp_path / "tenants",
        "rules:\n  - {name: disk, type: forecast_breach, metric: m, threshold: 70}\n",
        "acme.yaml",
    )
    rules = load_rule_set(defaults, tmp_path / "tenants")
    assert [r.threshold for r in rules.for_tenant("acme") if r.name == "disk"] == [70.0]
    assert [r.threshold for r in rules.for_tenant("globex") if r.name == "disk"] == [90.0]
    assert {r.name for r in rules.for_tenant("acme")} == {"disk", "anomalies"}
    write(tmp_path / "tenants", "rules: []\n", "Bad_Name.yaml")
    with pytest.raises(ConfigError, match=r"^Bad_Name\.yaml: the file name must be a tenant id"):
        load_rule_set(defaults, tmp_path / "tenants")
