"""Tenant routing, read from ``tenants.yaml``: where each tenant's alerts go and how they are grouped,
timed and inhibited (Alertmanager's route, one per tenant), plus the operator channel for run failures.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from intentvision_dagster.alerting import config
from intentvision_dagster.alerting.config import ConfigError
from intentvision_dagster.alerting.inhibition import InhibitRule
from intentvision_dagster.alerting.matchers import Matcher, parse_matcher
from intentvision_dagster.names import LABEL_NAME_PATTERN, validate_tenant

DEFAULT_GROUP_BY = ("alertname",)
# group_wait 0: a sensor tick already batches every partition materialized since the last tick (a nightly
# range run lands all its partitions at once); raise it to also wait for runs that finish later.
# group_interval is Alertmanager's; its repeat_interval (4h) would re-send a capacity forecast that stays open
# for days several times a day, so ours is 3 days: one reminder per forecast horizon.
DEFAULT_GROUP_WAIT = pd.Timedelta(0)
DEFAULT_GROUP_INTERVAL = pd.Timedelta(minutes=5)
DEFAULT_REPEAT_INTERVAL = pd.Timedelta(days=3)
_ROUTE_FIELDS = ("group_by", "group_wait", "group_interval", "repeat_interval", "inhibit_rules")
# holidays_country belongs to forecasting (calendar effects) and prometheus_remote_write to the Prometheus
# export; accepted here so one tenants.yaml serves all.
_TENANT_FIELDS = (
    "slack_channel",
    "channels",
    "holidays_country",
    "prometheus_remote_write",
    *_ROUTE_FIELDS,
)
# A channel name as typed in Slack ("#acme-alerts") or a channel id ("C0123ABCD").
_CHANNEL_PATTERN = re.compile(r"^(#[a-z0-9][a-z0-9._-]{0,79}|[CG][A-Z0-9]{6,})$")


@dataclass(frozen=True)
class TenantRoute:
    """Where a tenant's alerts go and how they are grouped and timed (Alertmanager's route, per tenant)."""

    channels: Mapping[str, str]  # severity -> channel; key "default" for the rest
    group_by: tuple[str, ...] = DEFAULT_GROUP_BY
    group_wait: pd.Timedelta = DEFAULT_GROUP_WAIT
    group_interval: pd.Timedelta = DEFAULT_GROUP_INTERVAL
    repeat_interval: pd.Timedelta = DEFAULT_REPEAT_INTERVAL
    inhibit_rules: tuple[InhibitRule, ...] = ()

    def channel(self, severity: str) -> str | None:
        return self.channels.get(severity, self.channels.get("default"))


@dataclass(frozen=True)
class Routing:
    """Every tenant's route, and the operator channel for the product's own run failures."""

    tenants: Mapping[str, TenantRoute]
    operator_channel: str | None = None

    def route(self, tenant: str) -> TenantRoute:
        """The tenant's route; a tenant missing from tenants.yaml gets defaults and no channel."""
        return self.tenants.get(tenant) or TenantRoute(channels={})

    def unrouted(self, tenant: str) -> bool:
        """True when some severity of the tenant's alerts has no channel: Slack delivery would fail them."""
        route = self.route(tenant)
        return any(route.channel(severity) is None for severity in config.ANOMALY_SEVERITIES)


def unrouted_warning(tenant: str, tenants_config: str, slack_token_set: bool) -> str:
    """What happens to an unrouted tenant's alerts, truthfully for both notifiers.

    The Slack notifier refuses a notification without a channel (the alerts end ``failed``); the outbox,
    used when no bot token is set, takes any notification, so there the problem only shows once Slack is on.
    """
    consequence = (
        "its alerts will be marked failed, not delivered"
        if slack_token_set
        else "its alerts go to the local outbox for now (SLACK_BOT_TOKEN is unset), but will be marked "
        "failed, not delivered, once Slack is configured"
    )
    return f"tenant {tenant!r} has no slack_channel in {tenants_config}: {consequence}"


def _channel(where: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not _CHANNEL_PATTERN.fullmatch(value):
        raise ConfigError(
            f"{where}: field {name!r} is {value!r}, expected '#channel-name' or a channel id like 'C0123ABCD'"
        )
    return value


def _matchers(where: str, name: str, value: Any) -> tuple[Matcher, ...]:
    """A mapping (equality matchers) or a list of matcher strings such as ``severity=~warning|info``."""
    if isinstance(value, Mapping):
        items = [f"{key}={label}" for key, label in value.items()]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = value
    else:
        raise ConfigError(f"{where}: field {name!r} is {value!r}, expected a mapping or a list of matchers")
    try:
        return tuple(parse_matcher(item) for item in items)
    except ValueError as exc:
        raise ConfigError(f"{where}: field {name!r}: {exc}") from None


def _label_names(where: str, name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
        isinstance(item, str) and LABEL_NAME_PATTERN.fullmatch(item) for item in value
    ):
        raise ConfigError(f"{where}: field {name!r} is {value!r}, expected a list of label names")
    return tuple(value)


def _route_settings(where: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The grouping/timing/inhibition keys shared by ``defaults`` and tenant entries."""
    settings: dict[str, Any] = {}
    if "group_by" in entry:
        settings["group_by"] = _label_names(where, "group_by", entry["group_by"])
    for name in ("group_wait", "group_interval", "repeat_interval"):
        if name in entry:
            settings[name] = config.duration(where, name, entry[name], allow_zero=name != "repeat_interval")
    if "inhibit_rules" in entry:
        rules = entry["inhibit_rules"]
        if not isinstance(rules, list):
            raise ConfigError(f"{where}: field 'inhibit_rules' is {rules!r}, expected a list")
        parsed = []
        for number, rule in enumerate(rules, start=1):
            here = f"{where}: inhibit rule #{number}"
            if not isinstance(rule, Mapping):
                raise ConfigError(f"{here}: expected a mapping with source, target, equal")
            config.check_fields(here, rule, ("source", "target", "equal"))
            for required in ("source", "target"):
                if required not in rule:
                    raise ConfigError(f"{here}: field {required!r} is missing")
            parsed.append(
                InhibitRule(
                    source=_matchers(here, "source", rule["source"]),
                    target=_matchers(here, "target", rule["target"]),
                    equal=_label_names(here, "equal", rule.get("equal", [])),
                )
            )
        settings["inhibit_rules"] = tuple(parsed)
    return settings


def load_routing(path: Path) -> Routing:
    """Read ``tenants.yaml``: per tenant channels (one, or per severity), grouping, timing and inhibition."""
    source = Path(path).name
    document = config.read_yaml(path) or {}
    tenants = document.get("tenants") if isinstance(document, Mapping) else None
    if not isinstance(tenants, Mapping):
        raise ConfigError(f"{source}: expected a top-level 'tenants' mapping")
    config.check_fields(source, document, ("tenants", "defaults", "operator"))
    defaults_entry = document.get("defaults") or {}
    if not isinstance(defaults_entry, Mapping):
        raise ConfigError(f"{source}: 'defaults' must be a mapping")
    config.check_fields(f"{source}: defaults", defaults_entry, _ROUTE_FIELDS)
    defaults = _route_settings(f"{source}: defaults", defaults_entry)
    operator = document.get("operator") or {}
    if not isinstance(operator, Mapping):
        raise ConfigError(f"{source}: 'operator' must be a mapping with 'slack_channel'")
    config.check_fields(f"{source}: operator", operator, ("slack_channel",))
    operator_channel = (
        _channel(f"{source}: operator", "slack_channel", operator["slack_channel"])
        if "slack_channel" in operator
        else None
    )
    routes: dict[str, TenantRoute] = {}
    for tenant, entry in tenants.items():
        where = f"{source}: tenant {tenant!r}"
        try:
            validate_tenant(tenant)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: expected a mapping with 'slack_channel', got {entry!r}")
        config.check_fields(where, entry, _TENANT_FIELDS)
        channels: dict[str, str] = {}
        if "slack_channel" in entry:
            channels["default"] = _channel(where, "slack_channel", entry["slack_channel"])
        per_severity = entry.get("channels") or {}
        if not isinstance(per_severity, Mapping):
            raise ConfigError(f"{where}: field 'channels' is {per_severity!r}, expected severity: channel")
        for severity, channel in per_severity.items():
            config.one_of(where, f"channels.{severity}", severity, config.ANOMALY_SEVERITIES)
            channels[severity] = _channel(where, f"channels.{severity}", channel)
        if not channels:
            raise ConfigError(f"{where}: field 'slack_channel' is missing")
        routes[tenant] = TenantRoute(channels=channels, **{**defaults, **_route_settings(where, entry)})
    return Routing(routes, operator_channel)
