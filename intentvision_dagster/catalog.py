"""Metric catalog: what kind of quantity a metric is, its bounds, and its forecast horizon.

Loaded from ``assets/metrics.yaml`` (override with ``INTENTVISION_METRICS``). Metrics not listed get the
``defaults`` entry, so new metrics work without configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from intentvision_dagster.errors import ConfigurationError


class CatalogError(ConfigurationError):
    """The metric catalog file cannot be used; the message names the file, metric and field."""


METRIC_KINDS = ("gauge", "counter")
SENSITIVITIES = ("low", "medium", "high")
"""Anomaly detector sensitivity per metric (thresholds in ``anomalies.detector.SENSITIVITY_THRESHOLDS``)."""


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str = "gauge"
    unit: str = ""
    min_value: float | None = None
    max_value: float | None = None
    horizon: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(hours=72))
    max_gap_ratio: float = 0.1
    max_staleness: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(days=2))
    sensitivity: str = "medium"
    min_step: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(seconds=10))
    max_history_points: int = 10_000
    max_horizon_steps: int = 2_000

    @property
    def non_negative(self) -> bool:
        return self.min_value is not None and self.min_value >= 0


@dataclass(frozen=True)
class MetricCatalog:
    defaults: MetricSpec
    metrics: dict[str, MetricSpec]

    def spec(self, metric: str) -> MetricSpec:
        found = self.metrics.get(metric)
        if found is not None:
            return found
        return MetricSpec(**{**self.defaults.__dict__, "name": metric})


_KEYS = {
    "kind",
    "unit",
    "min",
    "max",
    "horizon",
    "max_gap_ratio",
    "max_staleness",
    "sensitivity",
    "min_step",
    "max_history_points",
    "max_horizon_steps",
    "description",
}


def _spec(name: str, entry: dict, base: MetricSpec | None, source: Path) -> MetricSpec:
    unknown = set(entry) - _KEYS
    if unknown:
        raise CatalogError(
            f"{source}: metric {name!r}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}"
        )
    kind = entry.get("kind", base.kind if base else "gauge")
    if kind not in METRIC_KINDS:
        raise CatalogError(
            f"{source}: metric {name!r}: field 'kind' is {kind!r}, expected one of {METRIC_KINDS}"
        )
    sensitivity = entry.get("sensitivity", base.sensitivity if base else "medium")
    if sensitivity not in SENSITIVITIES:
        raise CatalogError(
            f"{source}: metric {name!r}: field 'sensitivity' is {sensitivity!r}, "
            f"expected one of {SENSITIVITIES}"
        )
    fallback = base or MetricSpec(name)

    def given(key: str, attribute: str, convert):
        return convert(entry[key]) if key in entry else getattr(fallback, attribute)

    try:
        spec = MetricSpec(
            name=name,
            kind=kind,
            unit=str(given("unit", "unit", str)),
            min_value=given("min", "min_value", lambda value: value),
            max_value=given("max", "max_value", lambda value: value),
            horizon=given("horizon", "horizon", pd.Timedelta),
            max_gap_ratio=given("max_gap_ratio", "max_gap_ratio", float),
            max_staleness=given("max_staleness", "max_staleness", pd.Timedelta),
            sensitivity=sensitivity,
            min_step=given("min_step", "min_step", pd.Timedelta),
            max_history_points=given("max_history_points", "max_history_points", int),
            max_horizon_steps=given("max_horizon_steps", "max_horizon_steps", int),
        )
    except (TypeError, ValueError) as exc:
        raise CatalogError(f"{source}: metric {name!r}: {exc}") from None
    if spec.min_step <= pd.Timedelta(0) or spec.max_history_points < 1 or spec.max_horizon_steps < 1:
        raise CatalogError(
            f"{source}: metric {name!r}: min_step, max_history_points and max_horizon_steps must be positive"
        )
    return spec


def load_catalog(path: Path) -> MetricCatalog:
    document = yaml.safe_load(path.read_text()) or {}
    defaults = _spec("*", document.get("defaults") or {}, None, path)
    metrics = {
        name: _spec(name, entry or {}, defaults, path)
        for name, entry in (document.get("metrics") or {}).items()
    }
    return MetricCatalog(defaults=defaults, metrics=metrics)
