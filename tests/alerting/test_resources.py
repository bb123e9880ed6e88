"""The forecast plot's line is the threshold of the rule that applies to the tenant, its own rule first."""

from __future__ import annotations

from intentvision_dagster.alerting.resources import AlertRules
from intentvision_dagster.settings import ASSETS_DIR


def test_a_tenants_own_rule_sets_its_plot_line(tmp_path):
    (tmp_path / "acme.yaml").write_text(
        "rules:\n"
        "  - name: disk-capacity\n"
        "    type: forecast_breach\n"
        "    metric: node_filesystem_usage_percent\n"
        "    threshold: 70\n"
    )
    rules = AlertRules(alert_rules=str(ASSETS_DIR / "alert_rules.yaml"), tenant_rules_dir=str(tmp_path))
    assert rules.threshold("acme", "node_filesystem_usage_percent") == 70
    assert rules.threshold("globex", "node_filesystem_usage_percent") == 85  # the default rule's warning line
    assert rules.threshold("acme", "no_such_metric") is None
