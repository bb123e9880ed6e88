"""Alerting's Dagster resources: where alerts go (Slack or the outbox) and which rules apply per tenant."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import dagster as dg
import pandas as pd

from intentvision_dagster.alerting.delivery import OutboxNotifier, SlackNotifier
from intentvision_dagster.alerting.inputs import last_actuals
from intentvision_dagster.alerting.routing import Routing, load_routing
from intentvision_dagster.alerting.rules import RuleSet, load_rule_set
from intentvision_dagster.chart_marks import Crossing, SeriesMarks, ThresholdLine
from intentvision_dagster.resources import BreachThresholds


class AlertRules(BreachThresholds):
    """The default rules (``alert_rules.yaml``) and each tenant's own (``tenant_rules/<tenant>.yaml``)."""

    alert_rules: str
    tenant_rules_dir: str | None = None

    def rule_set(self) -> RuleSet:
        return load_rule_set(
            Path(self.alert_rules), Path(self.tenant_rules_dir) if self.tenant_rules_dir else None
        )

    def marks(
        self, tenant: str, metric: str, forecasts: pd.DataFrame, history: pd.DataFrame
    ) -> dict[str, SeriesMarks]:
        """Per series, what the tenant's rules (its own first) draw on ``metric``'s forecast chart: every
        threshold and budget line of the rules matching the series, and the expected crossing of each breach
        rule that pages on it. ``forecasts`` carries ``unique_id, metric, labels`` and the forecast columns;
        ``history`` is ``unique_id, ds, y``, its newest point per series the value now."""
        history = history[history["unique_id"].isin(forecasts["unique_id"].unique())]
        last = history.sort_values("ds").drop_duplicates("unique_id", keep="last")
        forecasts = forecasts[forecasts["unique_id"].isin(last["unique_id"])]
        if forecasts.empty:
            return {}
        now = pd.Timestamp(last["ds"].max())
        lines: dict[str, list[ThresholdLine]] = defaultdict(list)
        crossings: dict[str, list[Crossing]] = defaultdict(list)
        for rule in self.rule_set().for_tenant(tenant):
            drawn = rule.plot_lines(metric, now)
            for uid in rule.matching(forecasts)["unique_id"].unique() if drawn else []:
                lines[uid].extend(drawn)
            for uid, crossing in rule.plot_crossings(forecasts, last).items():
                crossings[uid].append(crossing)
        return {
            uid: SeriesMarks(tuple(lines[uid]), tuple(crossings[uid]))
            for uid in sorted(set(lines) | set(crossings))
        }

    def breach_outlook(self, forecasts: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
        """Each tenant's forecast breach rules on its series, level by level (see ``RuleSet``)."""
        return self.rule_set().breach_outlook(forecasts, last_actuals(history))


class AlertDelivery(dg.ConfigurableResource):
    """Slack when a bot token is configured, else the local outbox under INTENTVISION_HOME."""

    outbox_path: str
    tenants_config: str
    slack_bot_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    timeout_seconds: int = 10
    dagster_ui_url: str = "http://127.0.0.1:3000"
    charts: bool = True
    """Attach the charts of an incident's series to its first message."""

    def routing(self) -> Routing:
        """Per-tenant channels, grouping, timing and inhibition, and the operator channel."""
        return load_routing(Path(self.tenants_config))

    def notifier(self) -> SlackNotifier | OutboxNotifier:
        if self.slack_bot_token:
            return SlackNotifier(
                token=self.slack_bot_token, base_url=self.slack_api_url, timeout=self.timeout_seconds
            )
        return OutboxNotifier(Path(self.outbox_path))
