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
    try:
        return MetricSpec(
            name=name,
            kind=kind,
            unit=str(entry.get("unit", base.unit if base else "")),
            min_value=entry.get("min", base.min_value if base else None),
            max_value=entry.get("max", base.max_value if base else None),
            horizon=pd.Timedelta(entry["horizon"])
            if "horizon" in entry
            else (base.horizon if base else MetricSpec(name).horizon),
            max_gap_ratio=float(entry.get("max_gap_ratio", base.max_gap_ratio if base else 0.1)),
            max_staleness=pd.Timedelta(entry["max_staleness"])
            if "max_staleness" in entry
            else (base.max_staleness if base else MetricSpec(name).max_staleness),
            sensitivity=sensitivity,
        )
    except (TypeError, ValueError) as exc:
        raise CatalogError(f"{source}: metric {name!r}: {exc}") from None


def load_catalog(path: Path) -> MetricCatalog:
    document = yaml.safe_load(path.read_text()) or {}
    defaults = _spec("*", document.get("defaults") or {}, None, path)
    metrics = {
        name: _spec(name, entry or {}, defaults, path)
        for name, entry in (document.get("metrics") or {}).items()
    }
    return MetricCatalog(defaults=defaults, metrics=metrics)
