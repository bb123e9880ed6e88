"""Alertmanager-style label matchers (``name=value``, ``!=``, ``=~``, ``!~``) for silences and inhibition.

Regular expressions are fully anchored, as in Alertmanager: ``host=~db-.*`` matches ``db-1``, not ``xdb-1``.
A missing label matches as the empty string, so ``team!=ops`` matches alerts without a ``team`` label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from intentvision_dagster.names import LABEL_NAME_PATTERN

_MATCHER = re.compile(r"^\s*(?P<name>[^=!~\s]+)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>.*?)\s*$")


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


def parse_matcher(text: str) -> Matcher:
    """``name=value``, ``name!=value``, ``name=~regex`` or ``name!~regex``; quotes around values optional."""
    found = _MATCHER.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"matcher {text!r} is not of the form name=value, name!=value, name=~re or name!~re")
    name, op, value = found.group("name", "op", "value")
    if not LABEL_NAME_PATTERN.fullmatch(name):
        raise ValueError(f"matcher {text!r}: {name!r} is not a valid label name")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"matcher {text!r}: invalid regular expression: {exc}") from None
    return Matcher(name, op, value)


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(matcher.matches(labels) for matcher in matchers)
