"""Alert rule files: read ``alert_rules.yaml`` and each tenant's own file into rule objects.

Which kinds exist and how each entry is parsed lives with the kinds (:mod:`.kinds`); this module reads the
file, checks what every entry shares (name, type, labels) and decides which rules apply to which tenant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from intentvision_dagster.alerting import config
from intentvision_dagster.alerting.config import ConfigError
from intentvision_dagster.alerting.kinds import RULE_KINDS, Rule
from intentvision_dagster.alerting.kinds.forecast_breach import ForecastBreachRule
from intentvision_dagster.names import did_you_mean, validate_tenant
from intentvision_dagster.prometheus_export import BREACH_COLUMNS


def _rule(where: str, entry: Mapping[str, Any]) -> Rule:
    kind = RULE_KINDS[config.one_of(where, "type", entry.get("type"), tuple(RULE_KINDS))]
    common = {
        "name": entry["name"],
        "labels": config.labels(where, entry.get("labels")),
        "description": str(entry.get("description") or ""),
    }
    config.check_fields(where, entry, kind.yaml_fields)
    return kind.from_entry(where, entry, common)


def load_rules(path: Path) -> list[Rule]:
    """Read and validate an alert rules file (see ``assets/alert_rules.yaml`` for the documented format)."""
    source = Path(path).name
    document = config.read_yaml(path) or {}
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
        config.text(where, "name", name)
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

    def breach_outlook(self, forecasts: pd.DataFrame, last_actuals: pd.DataFrame) -> pd.DataFrame:
        """Each tenant's forecast breach rules on its own series, level by level
        (:meth:`ForecastBreachRule.level_outlook`), as :data:`BREACH_COLUMNS` rows."""
        identity = forecasts.drop_duplicates("unique_id").set_index("unique_id")[
            ["tenant", "metric", "labels"]
        ]
        outlooks = [
            rule.level_outlook(frame, last_actuals).assign(rule=rule.name)
            for tenant, frame in forecasts.groupby("tenant", sort=True)
            for rule in self.for_tenant(str(tenant))
            if isinstance(rule, ForecastBreachRule)
        ]
        if not outlooks:
            return pd.DataFrame(columns=BREACH_COLUMNS)
        outlook = pd.concat(outlooks, ignore_index=True)
        return outlook.join(identity, on="unique_id")[BREACH_COLUMNS]

    def rule(self, tenant: str, name: str) -> Rule:
        for rule in self.for_tenant(tenant):
            if rule.name == name:
                return rule
        names = sorted(rule.name for rule in self.for_tenant(tenant))
        raise KeyError(
            f"no rule {name!r} for tenant {tenant!r}; known: {', '.join(names)}{did_you_mean(name, names)}"
        )
