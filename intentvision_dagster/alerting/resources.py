"""Alerting's Dagster resources: where alerts go (Slack or the outbox) and which rules apply per tenant."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from intentvision_dagster.alerting.delivery import OutboxNotifier, SlackNotifier
from intentvision_dagster.alerting.inputs import last_actuals
from intentvision_dagster.alerting.routing import Routing, load_routing
from intentvision_dagster.alerting.rules import RuleSet, load_rule_set
from intentvision_dagster.resources import BreachThresholds


class AlertRules(BreachThresholds):
    """The default rules (``alert_rules.yaml``) and each tenant's own (``tenant_rules/<tenant>.yaml``)."""

    alert_rules: str
    tenant_rules_dir: str | None = None

    def rule_set(self) -> RuleSet:
        return load_rule_set(
            Path(self.alert_rules), Path(self.tenant_rules_dir) if self.tenant_rules_dir else None
        )

    def threshold(self, tenant: str, metric: str) -> float | None:
        """The first threshold the tenant's rules draw on ``metric``'s forecast plot (its own rules win)."""
        lines = (rule.plot_threshold(metric) for rule in self.rule_set().for_tenant(tenant))
        return next((line for line in lines if line is not None), None)

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

    def routing(self) -> Routing:
        """Per-tenant channels, grouping, timing and inhibition, and the operator channel."""
        return load_routing(Path(self.tenants_config))

    def notifier(self) -> SlackNotifier | OutboxNotifier:
        if self.slack_bot_token:
            return SlackNotifier(
                token=self.slack_bot_token, base_url=self.slack_api_url, timeout=self.timeout_seconds
            )
        return OutboxNotifier(Path(self.outbox_path))
