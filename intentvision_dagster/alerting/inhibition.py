"""Alertmanager's inhibition: while a source alert fires, matching target alerts of its tenant stay quiet."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from intentvision_dagster.alerting.matchers import Matcher, matches_all


@dataclass(frozen=True)
class InhibitRule:
    """While an alert matching ``source`` fires, alerts matching ``target`` with the same ``equal`` labels
    are not notified (Alertmanager's inhibit_rules)."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


def inhibited_by(
    rules: Iterable[InhibitRule], alert: dict, labels: dict, firing: list[tuple[dict, dict]]
) -> str | None:
    """The id of a firing alert of the same tenant that inhibits this one under the tenant's inhibit rules."""
    for rule in rules:
        if not matches_all(rule.target, labels):
            continue
        for source, source_labels in firing:
            if source["id"] == alert["id"] or not matches_all(rule.source, source_labels):
                continue
            if all(source_labels.get(name, "") == labels.get(name, "") for name in rule.equal):
                return source["id"]
    return None
