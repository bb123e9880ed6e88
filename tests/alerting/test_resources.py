"""What the rules draw on a tenant's forecast chart: every line of the rules matching a series (the tenant's
own rule first), the expected crossing of a rule that pages, a budget's daily pace."""

from __future__ import annotations

import pandas as pd

from intentvision_dagster.alerting.resources import AlertRules
from intentvision_dagster.chart_marks import ThresholdLine
from intentvision_dagster.settings import ASSETS_DIR
from tests.forecasting.test_plots import DISK_UID, filling_disk

DISK = "node_filesystem_usage_percent"


def shipped_rules(tenant_rules_dir: str = str(ASSETS_DIR / "tenant_rules")) -> AlertRules:
    return AlertRules(alert_rules=str(ASSETS_DIR / "alert_rules.yaml"), tenant_rules_dir=tenant_rules_dir)


def test_a_filling_disk_shows_both_lines_and_where_it_crosses_critical() -> None:
    history, fc = filling_disk()  # 87.75 % now, +0.25 points an hour: the median reaches 90 in 9 h
    (marks,) = shipped_rules().marks("globex", DISK, fc, history).items()
    uid, shown = marks
    assert uid == DISK_UID
    assert shown.lines == (
        ThresholdLine(85.0, "warning", "warning 85"),
        ThresholdLine(90.0, "critical", "critical 90"),
    )
    (crossing,) = shown.crossings
    assert crossing.value == 90.0 and crossing.note == "critical 90: P 100%"
    assert crossing.ds == history["ds"].iloc[-1] + pd.Timedelta(hours=9)
    assert crossing.lo < crossing.ds < crossing.hi


def test_a_tenants_own_rule_and_label_matchers_decide_which_lines_a_series_gets(tmp_path) -> None:
    (tmp_path / "acme.yaml").write_text(
        "rules:\n"
        f"  - {{name: disk-capacity, type: forecast_breach, metric: {DISK}, threshold: 99.9}}\n"
        f"  - {{name: other-host, type: forecast_breach, metric: {DISK}, threshold: 50,\n"
        '     labels: {host: "db-2"}}\n'
    )
    history, fc = filling_disk()
    (shown,) = shipped_rules(str(tmp_path)).marks("acme", DISK, fc, history).values()
    assert shown.lines == (ThresholdLine(99.9, "warning", "warning 99.9"),)
    assert shown.crossings == (), "P(reaching 99.9 within 48 h) is below the rule's 0.8: no page, no marker"
    assert shipped_rules(str(tmp_path)).marks("acme", "no_such_metric", fc, history) == {}


def test_a_cost_series_gets_its_tenants_budget_as_a_daily_pace() -> None:
    history, fc = filling_disk()
    cost = {"unique_id": 'acme/cloud_cost_usd_daily{service="compute"}', "metric": "cloud_cost_usd_daily"}
    history, fc = history.assign(unique_id=cost["unique_id"]), fc.assign(**cost, labels='service="compute"')
    (shown,) = shipped_rules().marks("acme", "cloud_cost_usd_daily", fc, history).values()
    assert shown.lines == (  # acme's 25,000 a month over March's 31 days
        ThresholdLine(25_000 / 31, "budget", "budget pace 806/day (25,000/month, all matched series)"),
    )
    assert shipped_rules().marks("globex", "cloud_cost_usd_daily", fc, history) == {}
