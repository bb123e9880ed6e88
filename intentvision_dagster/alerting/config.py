"""Validation of YAML config entries, shared by the rule kinds and tenant routing.

Every error names the file, the entry and the field, so an operator editing ``alert_rules.yaml`` or
``tenants.yaml`` knows exactly what to fix without reading code.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from intentvision_dagster.errors import ConfigurationError
from intentvision_dagster.names import LABEL_NAME_PATTERN, validate_metric
from intentvision_dagster.severity import SEVERITIES

BREACH_SEVERITIES = SEVERITIES[2:]  # warning, critical: levels a threshold can page at
ANOMALY_SEVERITIES = SEVERITIES[1:]  # info, warning, critical: what the detector flags


class ConfigError(ConfigurationError):
    """A rules or tenants file that cannot be used; the message says where and why."""


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{Path(path).name}: not valid YAML: {exc}") from None


def one_of(where: str, name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{where}: field {name!r} is {value!r}, expected one of {', '.join(allowed)}")
    return value


def text(where: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: field {name!r} is {value!r}, expected a non-empty string")
    return value


def check_fields(where: str, entry: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in entry:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown field {key!r}, expected one of {', '.join(allowed)}")


def labels(where: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: field 'labels' is {value!r}, expected a mapping of label name to value")
    for name, label_value in value.items():
        if not isinstance(name, str) or not LABEL_NAME_PATTERN.fullmatch(name) or name.startswith("__"):
            raise ConfigError(f"{where}: field 'labels' has invalid label name {name!r}")
        if isinstance(label_value, (Mapping, list)) or label_value is None:
            raise ConfigError(
                f"{where}: field 'labels' value for {name!r} is {label_value!r}, expected a string"
            )
    return {name: str(label_value) for name, label_value in value.items()}


def duration(where: str, name: str, value: Any, allow_zero: bool = False) -> pd.Timedelta:
    try:
        parsed = pd.Timedelta(value)
    except (TypeError, ValueError):
        parsed = pd.NaT
    if pd.isna(parsed) or parsed < pd.Timedelta(0) or (parsed == pd.Timedelta(0) and not allow_zero):
        kind = "a duration of 0s or more" if allow_zero else "a positive duration"
        raise ConfigError(f"{where}: field {name!r} is {value!r}, expected {kind} such as '4d' or '36h'")
    return parsed


def metric(where: str, value: Any) -> str:
    try:
        return validate_metric(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: field 'metric': {exc}") from None


def required_metric(where: str, entry: Mapping[str, Any]) -> str:
    if "metric" not in entry:
        raise ConfigError(f"{where}: field 'metric' is missing")
    return metric(where, entry["metric"])


def number(where: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigError(f"{where}: field {name!r} is {value!r}, expected a number")
    return float(value)


def count(where: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: field {name!r} is {value!r}, expected a whole number >= 1")
    return value


def levels(where: str, name: str, value: Any) -> dict[str, float]:
    """A {warning: x, critical: y} mapping of severity to number."""
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{where}: field {name!r} is {value!r}, expected a mapping like {{warning: 80}}")
    for severity in value:
        one_of(where, f"{name}.{severity}", severity, BREACH_SEVERITIES)
    return {severity: number(where, f"{name}.{severity}", level) for severity, level in value.items()}
