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

from intentvision_dagster.names import LABEL_NAME_PATTERN, validate_metric, validate_tenant

EDGES = ("hi_80", "hi_95", "yhat", "lo_80", "lo_95")
DIRECTIONS = ("above", "below")
BREACH_SEVERITIES = ("warning", "critical")
SEVERITY_RANK = {"none": 0, "info": 1, "warning": 2, "critical": 3}
ANOMALY_SEVERITIES = ("info", "warning", "critical")
RULE_TYPES = ("forecast_breach", "anomaly")
ALL_METRICS = "*"

_BREACH_FIELDS = (
    "name",
    "type",
    "metric",
    "threshold",
    "direction",
    "edge",
    "severity",
    "labels",
    "description",
)
_ANOMALY_FIELDS = ("name", "type", "metric", "min_severity", "lookback", "labels", "description")
DEFAULT_ANOMALY_LOOKBACK = pd.Timedelta(days=4)
_TENANT_FIELDS = ("slack_channel", "holidays_country")
# A channel name as typed in Slack ("#acme-alerts") or a channel id ("C0123ABCD").
_CHANNEL_PATTERN = re.compile(r"^(#[a-z0-9][a-z0-9._-]{0,79}|[CG][A-Z0-9]{6,})$")


class ConfigError(ValueError):
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
    """Fire when the forecast's ``edge`` reaches ``threshold`` (>= above, <= below) within the horizon."""

    kind: ClassVar[str] = "forecast_breach"
    name: str
    metric: str
    threshold: float
    direction: str = "above"
    edge: str = "hi_95"
    severity: str = "warning"
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


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
    lookback: pd.Timedelta = field(default_factory=lambda: DEFAULT_ANOMALY_LOOKBACK)
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


Rule = ForecastBreachRule | AnomalyRule


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


def _duration(where: str, name: str, value: Any) -> pd.Timedelta:
    try:
        duration = pd.Timedelta(value)
    except (TypeError, ValueError):
        duration = pd.NaT
    if pd.isna(duration) or duration <= pd.Timedelta(0):
        raise ConfigError(
            f"{where}: field {name!r} is {value!r}, expected a positive duration such as '4d' or '36h'"
        )
    return duration


def _metric(where: str, value: Any) -> str:
    try:
        return validate_metric(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: field 'metric': {exc}") from None


def _rule(where: str, entry: Mapping[str, Any]) -> Rule:
    kind = _one_of(where, "type", entry.get("type"), RULE_TYPES)
    labels = _labels(where, entry.get("labels"))
    description = str(entry.get("description") or "")
    if kind == "anomaly":
        _check_fields(where, entry, _ANOMALY_FIELDS)
        metric = entry.get("metric", ALL_METRICS)
        return AnomalyRule(
            name=entry["name"],
            metric=None if metric in (None, ALL_METRICS) else _metric(where, metric),
            labels=labels,
            min_severity=_one_of(
                where, "min_severity", entry.get("min_severity", "warning"), ANOMALY_SEVERITIES
            ),
            lookback=_duration(where, "lookback", entry.get("lookback", DEFAULT_ANOMALY_LOOKBACK)),
            description=description,
        )
    _check_fields(where, entry, _BREACH_FIELDS)
    if "metric" not in entry:
        raise ConfigError(f"{where}: field 'metric' is missing")
    threshold = entry.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ConfigError(f"{where}: field 'threshold' is {threshold!r}, expected a number")
    direction = _one_of(where, "direction", entry.get("direction", "above"), DIRECTIONS)
    default_edge = "hi_95" if direction == "above" else "lo_95"
    return ForecastBreachRule(
        name=entry["name"],
        metric=_metric(where, entry["metric"]),
        labels=labels,
        threshold=float(threshold),
        direction=direction,
        edge=_one_of(where, "edge", entry.get("edge", default_edge), EDGES),
        severity=_one_of(where, "severity", entry.get("severity", "warning"), BREACH_SEVERITIES),
        description=description,
    )


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


def load_tenant_channels(path: Path) -> dict[str, str]:
    """Read ``tenants.yaml`` into {tenant: slack channel}; each tenant's alerts go only to its own channel."""
    source = Path(path).name
    document = _read_yaml(path) or {}
    tenants = document.get("tenants") if isinstance(document, Mapping) else None
    if not isinstance(tenants, Mapping):
        raise ConfigError(f"{source}: expected a top-level 'tenants' mapping")
    channels: dict[str, str] = {}
    for tenant, entry in tenants.items():
        where = f"{source}: tenant {tenant!r}"
        try:
            validate_tenant(tenant)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: expected a mapping with 'slack_channel', got {entry!r}")
        _check_fields(where, entry, _TENANT_FIELDS)
        if "slack_channel" not in entry:
            raise ConfigError(f"{where}: field 'slack_channel' is missing")
        channel = entry["slack_channel"]
        if not isinstance(channel, str) or not _CHANNEL_PATTERN.match(channel):
            raise ConfigError(
                f"{where}: field 'slack_channel' is {channel!r}, "
                "expected '#channel-name' or a channel id like 'C0123ABCD'"
            )
        channels[tenant] = channel
    return channels
