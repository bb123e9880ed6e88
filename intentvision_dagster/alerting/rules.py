"""Alert rules and tenant routing, loaded from YAML and validated at the boundary.

Every error names the file, the entry and the field, so an operator editing ``alert_rules.yaml`` or
``tenants.yaml`` knows exactly what to fix without reading code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import yaml

from intentvision_dagster.alerting.matchers import Matcher, parse_matcher
from intentvision_dagster.errors import ConfigurationError
from intentvision_dagster.names import LABEL_NAME_PATTERN, validate_metric, validate_tenant

EDGES = ("hi_80", "hi_95", "yhat", "lo_80", "lo_95")
DIRECTIONS = ("above", "below")
BREACH_SEVERITIES = ("warning", "critical")
SEVERITY_RANK = {"none": 0, "info": 1, "warning": 2, "critical": 3}
ANOMALY_SEVERITIES = ("info", "warning", "critical")
RULE_TYPES = ("forecast_breach", "anomaly", "budget")
ALL_METRICS = "*"
BUDGET_PERIODS = ("month",)

_BREACH_FIELDS = (
    "name",
    "type",
    "metric",
    "threshold",
    "direction",
    "edge",
    "severity",
    "thresholds",
    "recovery",
    "horizon",
    "labels",
    "description",
)
_ANOMALY_FIELDS = (
    "name",
    "type",
    "metric",
    "min_severity",
    "min_points",
    "window_points",
    "lookback",
    "labels",
    "description",
)
_BUDGET_FIELDS = ("name", "type", "metric", "budget", "period", "edge", "severity", "labels", "description")
DEFAULT_ANOMALY_LOOKBACK = pd.Timedelta(days=4)
DEFAULT_GROUP_BY = ("alertname",)
# group_wait 0: a sensor tick already batches every partition materialized since the last tick (a nightly
# range run lands all its partitions at once); raise it to also wait for runs that finish later.
# group_interval is Alertmanager's; its repeat_interval (4h) would re-send a capacity forecast that stays open
# for days several times a day, so ours is 3 days: one reminder per forecast horizon.
DEFAULT_GROUP_WAIT = pd.Timedelta(0)
DEFAULT_GROUP_INTERVAL = pd.Timedelta(minutes=5)
DEFAULT_REPEAT_INTERVAL = pd.Timedelta(days=3)
_ROUTE_FIELDS = ("group_by", "group_wait", "group_interval", "repeat_interval", "inhibit_rules")
# holidays_country belongs to forecasting (calendar effects); accepted here so one tenants.yaml serves both.
_TENANT_FIELDS = ("slack_channel", "channels", "holidays_country", *_ROUTE_FIELDS)
# A channel name as typed in Slack ("#acme-alerts") or a channel id ("C0123ABCD").
_CHANNEL_PATTERN = re.compile(r"^(#[a-z0-9][a-z0-9._-]{0,79}|[CG][A-Z0-9]{6,})$")


class ConfigError(ConfigurationError):
    """A rules or tenants file that cannot be used; the message says where and why."""


class _SeriesMatcher:
    """Which series a rule watches: ``metric`` (None = every metric) and exact-match ``labels``."""

    metric: str | None
    labels: Mapping[str, str]

    def matches(self, metric: str, labels: Mapping[str, str]) -> bool:
        if self.metric is not None and metric != self.metric:
            return False
        return all(labels.get(name) == value for name, value in self.labels.items())


@dataclass(frozen=True, kw_only=True)
class ForecastBreachRule(_SeriesMatcher):
    """Fire when the forecast's ``edge`` reaches a threshold (>= above, <= below) within the horizon.

    ``thresholds`` maps severity to threshold (warning and/or critical); the single ``threshold`` +
    ``severity`` form is the one-level shorthand. ``recovery`` maps severity to the level the series must get
    back to (forecast edge and current value) before an open alert of that severity clears: hysteresis, so a
    series hovering at the line does not flap. ``threshold`` is always the first level to trip.
    """

    kind: ClassVar[str] = "forecast_breach"
    name: str
    metric: str
    threshold: float | None = None
    direction: str = "above"
    edge: str = "hi_95"
    severity: str = "warning"
    thresholds: Mapping[str, float] = field(default_factory=dict)
    recovery: Mapping[str, float] = field(default_factory=dict)
    horizon: pd.Timedelta | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        thresholds = dict(self.thresholds) or (
            {} if self.threshold is None else {self.severity: float(self.threshold)}
        )
        if not thresholds:
            raise ValueError(f"rule {self.name!r}: give 'threshold' or 'thresholds'")
        ordered = sorted(thresholds, key=SEVERITY_RANK.__getitem__)
        first = thresholds[ordered[0]]
        set_field = object.__setattr__  # frozen dataclass: normalise once, here
        set_field(self, "thresholds", {severity: float(thresholds[severity]) for severity in ordered})
        set_field(self, "recovery", {s: float(self.recovery.get(s, thresholds[s])) for s in ordered})
        set_field(self, "threshold", float(first))
        set_field(self, "severity", ordered[-1])


@dataclass(frozen=True, kw_only=True)
class AnomalyRule(_SeriesMatcher):
    """Fire once per anomaly event whose worst point reaches ``min_severity``.

    Only events that began within ``lookback`` of the series' newest point count: a first backfill of a month
    of history should not page anyone about last month's incidents.
    """

    kind: ClassVar[str] = "anomaly"
    name: str
    metric: str | None = None
    min_severity: str = "warning"
    min_points: int = 1
    window_points: int = 1
    lookback: pd.Timedelta = field(default_factory=lambda: DEFAULT_ANOMALY_LOOKBACK)
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class BudgetRule(_SeriesMatcher):
    """Fire when the period's total (actuals so far + forecast to the period's end) reaches ``budget``.

    The matched series are summed (month-end cloud spend over every service). ``edge`` picks the forecast
    column summed for the future days: ``yhat`` for the expected spend, ``hi_80``/``hi_95`` for a cautious one
    (a sum of per-day upper bounds, wider than the sum's own interval).
    """

    kind: ClassVar[str] = "budget"
    name: str
    metric: str
    budget: float
    period: str = "month"
    edge: str = "yhat"
    severity: str = "warning"
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


Rule = ForecastBreachRule | AnomalyRule | BudgetRule


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{Path(path).name}: not valid YAML: {exc}") from None


def _one_of(where: str, name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{where}: field {name!r} is {value!r}, expected one of {', '.join(allowed)}")
    return value


def _text(where: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: field {name!r} is {value!r}, expected a non-empty string")
    return value


def _check_fields(where: str, entry: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in entry:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown field {key!r}, expected one of {', '.join(allowed)}")


def _labels(where: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: field 'labels' is {value!r}, expected a mapping of label name to value")
    for name, label_value in value.items():
        if not isinstance(name, str) or not LABEL_NAME_PATTERN.match(name) or name.startswith("__"):
            raise ConfigError(f"{where}: field 'labels' has invalid label name {name!r}")
        if isinstance(label_value, (Mapping, list)) or label_value is None:
            raise ConfigError(
                f"{where}: field 'labels' value for {name!r} is {label_value!r}, expected a string"
            )
    return {name: str(label_value) for name, label_value in value.items()}


def _duration(where: str, name: str, value: Any, allow_zero: bool = False) -> pd.Timedelta:
    try:
        duration = pd.Timedelta(value)
    except (TypeError, ValueError):
        duration = pd.NaT
    if pd.isna(duration) or duration < pd.Timedelta(0) or (duration == pd.Timedelta(0) and not allow_zero):
        kind = "a duration of 0s or more" if allow_zero else "a positive duration"
        raise ConfigError(f"{where}: field {name!r} is {value!r}, expected {kind} such as '4d' or '36h'")
    return duration


def _metric(where: str, value: Any) -> str:
    try:
        return validate_metric(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: field 'metric': {exc}") from None


def _number(where: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigError(f"{where}: field {name!r} is {value!r}, expected a number")
    return float(value)


def _count(where: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: field {name!r} is {value!r}, expected a whole number >= 1")
    return value


def _levels(where: str, name: str, value: Any) -> dict[str, float]:
    """A {warning: x, critical: y} mapping of severity to number."""
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{where}: field {name!r} is {value!r}, expected a mapping like {{warning: 80}}")
    for severity in value:
        _one_of(where, f"{name}.{severity}", severity, BREACH_SEVERITIES)
    return {severity: _number(where, f"{name}.{severity}", level) for severity, level in value.items()}


def _required_metric(where: str, entry: Mapping[str, Any]) -> str:
    if "metric" not in entry:
        raise ConfigError(f"{where}: field 'metric' is missing")
    return _metric(where, entry["metric"])


def _anomaly_rule(where: str, entry: Mapping[str, Any], common: dict[str, Any]) -> AnomalyRule:
    _check_fields(where, entry, _ANOMALY_FIELDS)
    metric = entry.get("metric", ALL_METRICS)
    min_points = _count(where, "min_points", entry.get("min_points", 1))
    window_points = _count(where, "window_points", entry.get("window_points", min_points))
    if window_points < min_points:
        raise ConfigError(
            f"{where}: field 'window_points' is {window_points}, expected at least min_points ({min_points})"
        )
    return AnomalyRule(
        **common,
        metric=None if metric in (None, ALL_METRICS) else _metric(where, metric),
        min_severity=_one_of(where, "min_severity", entry.get("min_severity", "warning"), ANOMALY_SEVERITIES),
        min_points=min_points,
        window_points=window_points,
        lookback=_duration(where, "lookback", entry.get("lookback", DEFAULT_ANOMALY_LOOKBACK)),
    )


def _budget_rule(where: str, entry: Mapping[str, Any], common: dict[str, Any]) -> BudgetRule:
    _check_fields(where, entry, _BUDGET_FIELDS)
    budget = _number(where, "budget", entry.get("budget"))
    if budget <= 0:
        raise ConfigError(f"{where}: field 'budget' is {budget:g}, expected a positive amount")
    return BudgetRule(
        **common,
        metric=_required_metric(where, entry),
        budget=budget,
        period=_one_of(where, "period", entry.get("period", "month"), BUDGET_PERIODS),
        edge=_one_of(where, "edge", entry.get("edge", "yhat"), ("yhat", "hi_80", "hi_95")),
        severity=_one_of(where, "severity", entry.get("severity", "warning"), BREACH_SEVERITIES),
    )


def _breach_rule(where: str, entry: Mapping[str, Any], common: dict[str, Any]) -> ForecastBreachRule:
    _check_fields(where, entry, _BREACH_FIELDS)
    metric = _required_metric(where, entry)
    if ("threshold" in entry) == ("thresholds" in entry):
        raise ConfigError(f"{where}: give exactly one of field 'threshold' or field 'thresholds'")
    severity = _one_of(where, "severity", entry.get("severity", "warning"), BREACH_SEVERITIES)
    if "threshold" in entry:
        thresholds = {severity: _number(where, "threshold", entry["threshold"])}
    else:
        thresholds = _levels(where, "thresholds", entry["thresholds"])
    recovery = _levels(where, "recovery", entry["recovery"]) if "recovery" in entry else {}
    direction = _one_of(where, "direction", entry.get("direction", "above"), DIRECTIONS)
    above = direction == "above"
    for level, value in recovery.items():
        if level not in thresholds:
            raise ConfigError(f"{where}: field 'recovery.{level}' has no matching threshold for {level!r}")
        if (value > thresholds[level]) if above else (value < thresholds[level]):
            raise ConfigError(
                f"{where}: field 'recovery.{level}' is {value:g}, expected "
                f"{'at most' if above else 'at least'} the {level} threshold {thresholds[level]:g} "
                f"(a series recovers on the safe side of the line)"
            )
    if {"warning", "critical"} <= set(thresholds) and (
        (thresholds["critical"] < thresholds["warning"])
        if above
        else (thresholds["critical"] > thresholds["warning"])
    ):
        raise ConfigError(
            f"{where}: field 'thresholds.critical' is {thresholds['critical']:g}, expected it "
            f"{'above' if above else 'below'} thresholds.warning ({thresholds['warning']:g})"
        )
    return ForecastBreachRule(
        **common,
        metric=metric,
        thresholds=thresholds,
        recovery=recovery,
        direction=direction,
        edge=_one_of(where, "edge", entry.get("edge", "hi_95" if above else "lo_95"), EDGES),
        horizon=_duration(where, "horizon", entry["horizon"]) if "horizon" in entry else None,
    )


def _rule(where: str, entry: Mapping[str, Any]) -> Rule:
    kind = _one_of(where, "type", entry.get("type"), RULE_TYPES)
    common = {
        "name": entry["name"],
        "labels": _labels(where, entry.get("labels")),
        "description": str(entry.get("description") or ""),
    }
    if kind == "anomaly":
        return _anomaly_rule(where, entry, common)
    if kind == "budget":
        return _budget_rule(where, entry, common)
    return _breach_rule(where, entry, common)


def load_rules(path: Path) -> list[Rule]:
    """Read and validate an alert rules file (see ``assets/alert_rules.yaml`` for the documented format)."""
    source = Path(path).name
    document = _read_yaml(path) or {}
    entries = document.get("rules") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: expected a top-level 'rules' list")
    rules: list[Rule] = []
    first_use: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{source}: rule #{number}: expected a mapping, got {entry!r}")
        name = entry.get("name")
        where = f"{source}: rule #{number}" + (f" {name!r}" if isinstance(name, str) else "")
        if "name" not in entry:
            raise ConfigError(f"{where}: field 'name' is missing")
        _text(where, "name", name)
        if name in first_use:
            raise ConfigError(f"{where}: field 'name' is {name!r}, already used by rule #{first_use[name]}")
        first_use[name] = number
        rules.append(_rule(where, entry))
    return rules


def load_rule_set(default_path: Path, tenant_dir: Path | None = None) -> RuleSet:
    """The default rules plus each tenant's own file ``<tenant_dir>/<tenant>.yaml`` (same format).

    A tenant rule with the name of a default rule replaces it for that tenant only; other tenants keep the
    default. A tenant file's name must be a valid tenant id.
    """
    defaults = load_rules(default_path)
    per_tenant: dict[str, list[Rule]] = {}
    if tenant_dir is not None and Path(tenant_dir).is_dir():
        for path in sorted(Path(tenant_dir).glob("*.yaml")):
            try:
                tenant = validate_tenant(path.stem)
            except ValueError as exc:
                raise ConfigError(f"{path.name}: the file name must be a tenant id: {exc}") from None
            per_tenant[tenant] = load_rules(path)
    return RuleSet(defaults, per_tenant)


@dataclass(frozen=True)
class RuleSet:
    """Which rules apply to which tenant."""

    defaults: list[Rule]
    per_tenant: Mapping[str, list[Rule]] = field(default_factory=dict)

    def for_tenant(self, tenant: str) -> list[Rule]:
        own = list(self.per_tenant.get(tenant, []))
        replaced = {rule.name for rule in own}
        return [rule for rule in self.defaults if rule.name not in replaced] + own

    def rule(self, tenant: str, name: str) -> Rule:
        for rule in self.for_tenant(tenant):
            if rule.name == name:
                return rule
        known = ", ".join(sorted(rule.name for rule in self.for_tenant(tenant)))
        raise KeyError(f"no rule {name!r} for tenant {tenant!r}; known: {known}")


@dataclass(frozen=True)
class InhibitRule:
    """While an alert matching ``source`` fires, alerts matching ``target`` with the same ``equal`` labels
    are not notified (Alertmanager's inhibit_rules)."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


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


def _channel(where: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not _CHANNEL_PATTERN.match(value):
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
        isinstance(item, str) and LABEL_NAME_PATTERN.match(item) for item in value
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
            settings[name] = _duration(where, name, entry[name], allow_zero=name != "repeat_interval")
    if "inhibit_rules" in entry:
        rules = entry["inhibit_rules"]
        if not isinstance(rules, list):
            raise ConfigError(f"{where}: field 'inhibit_rules' is {rules!r}, expected a list")
        parsed = []
        for number, rule in enumerate(rules, start=1):
            here = f"{where}: inhibit rule #{number}"
            if not isinstance(rule, Mapping):
                raise ConfigError(f"{here}: expected a mapping with source, target, equal")
            _check_fields(here, rule, ("source", "target", "equal"))
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
    document = _read_yaml(path) or {}
    tenants = document.get("tenants") if isinstance(document, Mapping) else None
    if not isinstance(tenants, Mapping):
        raise ConfigError(f"{source}: expected a top-level 'tenants' mapping")
    _check_fields(source, document, ("tenants", "defaults", "operator"))
    defaults_entry = document.get("defaults") or {}
    if not isinstance(defaults_entry, Mapping):
        raise ConfigError(f"{source}: 'defaults' must be a mapping")
    _check_fields(f"{source}: defaults", defaults_entry, _ROUTE_FIELDS)
    defaults = _route_settings(f"{source}: defaults", defaults_entry)
    operator = document.get("operator") or {}
    if not isinstance(operator, Mapping):
        raise ConfigError(f"{source}: 'operator' must be a mapping with 'slack_channel'")
    _check_fields(f"{source}: operator", operator, ("slack_channel",))
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
        _check_fields(where, entry, _TENANT_FIELDS)
        channels: dict[str, str] = {}
        if "slack_channel" in entry:
            channels["default"] = _channel(where, "slack_channel", entry["slack_channel"])
        per_severity = entry.get("channels") or {}
        if not isinstance(per_severity, Mapping):
            raise ConfigError(f"{where}: field 'channels' is {per_severity!r}, expected severity: channel")
        for severity, channel in per_severity.items():
            _one_of(where, f"channels.{severity}", severity, ANOMALY_SEVERITIES)
            channels[severity] = _channel(where, f"channels.{severity}", channel)
        if not channels:
            raise ConfigError(f"{where}: field 'slack_channel' is missing")
        routes[tenant] = TenantRoute(channels=channels, **{**defaults, **_route_settings(where, entry)})
    return Routing(routes, operator_channel)
