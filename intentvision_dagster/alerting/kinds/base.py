"""The base every rule kind extends: which series a rule watches and what the rest of alerting asks of it.

Loading, evaluation, alert links, the Slack layout and the forecast plot ask the rule (or its class) instead
of comparing kind strings, so a new kind is one class plus one registry entry (:mod:`.kinds`). A kind that
forgets a required part fails when its class is defined (a class attribute) or when a rule of it is loaded
(a method), not silently at delivery.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

import pandas as pd

from intentvision_dagster.chart_marks import Crossing, ThresholdLine
from intentvision_dagster.series import parse_labels

if TYPE_CHECKING:
    from intentvision_dagster.alerting.inputs import RuleInputs


class Rule(ABC):
    """One alert rule; concrete kinds are frozen dataclasses with these fields.

    ``kind`` is the YAML ``type:`` value (also written to each alert's details), ``yaml_fields`` the keys
    its entry may hold and ``asset`` the asset whose partition an alert links to in the Dagster UI.
    """

    kind: ClassVar[str]
    yaml_fields: ClassVar[tuple[str, ...]]
    asset: ClassVar[str]
    name: str
    metric: str | None  # None = every metric
    labels: Mapping[str, str]  # exact-match labels
    description: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [name for name in ("kind", "yaml_fields", "asset") if not hasattr(cls, name)]
        if missing:
            raise TypeError(f"rule kind {cls.__name__} must define {', '.join(missing)}")

    @classmethod
    @abstractmethod
    def from_entry(cls, where: str, entry: Mapping[str, Any], common: dict[str, Any]) -> Self:
        """The rule from its validated YAML entry (``common``: name, labels, description already parsed)."""

    @abstractmethod
    def evaluate(self, inputs: RuleInputs) -> list[dict[str, Any]]:
        """Candidate rows (see ``CANDIDATE_COLUMNS``) for what this rule fires on."""

    @classmethod
    def message_fields(cls, details: Mapping[str, Any]) -> list[str]:
        """Numbers shown under an alert's summary in Slack (mrkdwn, one field each); none by default."""
        return []

    def plot_lines(self, metric: str, now: pd.Timestamp) -> tuple[ThresholdLine, ...]:
        """The horizontal lines a chart of ``metric`` draws for this rule (on the series it matches)."""
        return ()

    def plot_crossings(self, forecasts: pd.DataFrame, last_actuals: pd.DataFrame) -> dict[str, Crossing]:
        """Per unique_id, the expected crossing a chart marks for this rule (none by default)."""
        return {}

    def matches(self, metric: str, labels: Mapping[str, str]) -> bool:
        if self.metric is not None and metric != self.metric:
            return False
        return all(labels.get(name) == value for name, value in self.labels.items())

    def matching(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rows of the series the rule watches; labels are parsed once per series, not per row."""
        if frame.empty:
            return frame
        series = frame[["unique_id", "metric", "labels"]].drop_duplicates("unique_id")
        keep = [
            uid
            for uid, metric, labels in series.itertuples(index=False)
            if self.matches(metric, parse_labels(labels))
        ]
        return frame[frame["unique_id"].isin(keep)]
