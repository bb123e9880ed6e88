from pathlib import Path

import pandas as pd
import pytest

from intentvision_dagster.alerting.rules import (
    AnomalyRule,
    ConfigError,
    ForecastBreachRule,
    load_rules,
    load_tenant_channels,
)
from intentvision_dagster.settings import ASSETS_DIR


def write(tmp_path: Path, text: str, name: str = "alert_rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_rules_and_tenants_load() -> None:
    rules = {rule.name: rule for rule in load_rules(ASSETS_DIR / "alert_rules.yaml")}
    disk = rules["disk-capacity"]
    assert isinstance(disk, ForecastBreachRule) and disk.kind == "forecast_breach"
    assert (disk.metric, disk.threshold, disk.direction, disk.edge, disk.severity) == (
        "node_filesystem_usage_percent",
        90.0,
        "above",
        "hi_95",
        "critical",
    )
    anomaly = next(rule for rule in rules.values() if isinstance(rule, AnomalyRule))
    assert anomaly.metric is None and anomaly.min_severity == "warning"
    assert load_tenant_channels(ASSETS_DIR / "tenants.yaml") == {
        "acme": "#acme-alerts",
        "globex": "#globex-oncall",
    }


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
    assert (low.edge, low.severity, low.labels) == ("lo_95", "warning", {"service": "api"})
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
            "alert_rules.yaml: rule #1 'a': field 'type' is 'page', expected one of forecast_breach, anomaly",
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
            "expected one of name, type, metric, min_severity, lookback, labels, description",
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


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "tenants:\n  acme: {}\n",
            "tenants.yaml: tenant 'acme': field 'slack_channel' is missing",
        ),
        (
            "tenants:\n  acme: {slack_channel: acme-alerts}\n",
            "tenants.yaml: tenant 'acme': field 'slack_channel' is 'acme-alerts', "
            "expected '#channel-name' or a channel id like 'C0123ABCD'",
        ),
        (
            "tenants:\n  acme: {slack_channel: '#a', email: x@y}\n",
            "tenants.yaml: tenant 'acme': unknown field 'email', "
            "expected one of slack_channel, holidays_country",
        ),
        (
            "tenants:\n  Acme: {slack_channel: '#a'}\n",
            "tenants.yaml: tenant 'Acme': tenant 'Acme' is not a valid tenant id: use lowercase letters, "
            "digits and '-', starting with a letter or digit, at most 63 characters",
        ),
        ("tenants: [acme]\n", "tenants.yaml: expected a top-level 'tenants' mapping"),
    ],
)
def test_tenant_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_tenant_channels(write(tmp_path, body, "tenants.yaml"))
    assert str(raised.value) == message


def test_channel_ids_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "tenants:\n  acme: {slack_channel: C0123ABCD}\n", "tenants.yaml")
    assert load_tenant_channels(path) == {"acme": "C0123ABCD"}


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
