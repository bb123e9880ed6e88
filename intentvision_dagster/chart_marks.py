"""What alert rules draw on a series' chart, as plain data: threshold and budget lines, expected crossings.

Alerting builds them from its rules (``AlertRules.marks``), the forecasting chart draws them
(:func:`~intentvision_dagster.plotting.draw_marks`): neither domain reads the other's code or configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class ThresholdLine:
    """A horizontal line a rule draws: ``kind`` is its severity (``warning``, ``critical``) or ``budget``."""

    value: float
    kind: str
    label: str


@dataclass(frozen=True)
class Crossing:
    """When a series is expected to reach a rule's line: the median time and its interval (80 %); ``note``
    is written next to the marker (which line, how likely)."""

    ds: pd.Timestamp
    lo: pd.Timestamp
    hi: pd.Timestamp
    value: float
    note: str


@dataclass(frozen=True)
class SeriesMarks:
    """What the rules that apply to one series draw on its chart."""

    lines: tuple[ThresholdLine, ...] = ()
    crossings: tuple[Crossing, ...] = ()


NO_MARKS = SeriesMarks()
