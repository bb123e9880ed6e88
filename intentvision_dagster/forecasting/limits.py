"""What one partition may cost the models, so no tenant's data (a 1 s scrape, a stray old sample, a long
horizon) can make a step run for hours while every other tenant's runs wait.

Over a limit the work is made smaller where that keeps the answer useful, and refused where it does not:
- a step finer than the metric's ``min_step``, or so fine that the horizon would take more than
  ``max_horizon_steps``, is coarsened to a common step (samples in one step are averaged for gauges, summed
  for counters' increases: :func:`~.gaps.fill_missing_steps` does it when given the coarser step);
- history older than ``max_history_points`` steps before a series' newest point is left out;
- a partition that would still exceed ``max_partition_points`` grid points, or a tenant whose partitions
  together exceed its per-run budget, is refused with a message naming the figures (the partition is
  skipped and reported; the run's other partitions go on).
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from intentvision_dagster.errors import InputError
from intentvision_dagster.frequency import coarser_step, step_of


class LimitExceeded(InputError):
    """A partition that would cost more than the configured bounds; the message names metric and figures."""


def modelling_step(freq: str, horizon: pd.Timedelta, min_step: pd.Timedelta, max_horizon_steps: int) -> str:
    """The step the models run at: the data's own, unless finer than ``min_step`` or than what keeps the
    horizon within ``max_horizon_steps`` steps; then the smallest common step that satisfies both."""
    needed = max(min_step, pd.Timedelta(horizon) / max_horizon_steps)
    return freq if step_of(freq) >= needed else coarser_step(needed)


def recent_history(rows: pd.DataFrame, step: str, max_points: int) -> pd.DataFrame:
    """Each series' rows within ``max_points`` steps of its newest timestamp."""
    newest = rows.groupby("unique_id", observed=True)["ds"].transform("max")
    return rows[rows["ds"] > newest - step_of(step) * max_points]


def grid_points(rows: pd.DataFrame, step: str) -> int:
    """How many rows the regular grid from each series' first to last timestamp holds (before filling it)."""
    spans = rows.groupby("unique_id", observed=True)["ds"].agg(["min", "max"])
    return int(((spans["max"] - spans["min"]) // step_of(step) + 1).sum())


class TenantBudget:
    """Grid points each tenant may have modelled in one run, charged partition by partition."""

    def __init__(self, points_per_run: int) -> None:
        self.points_per_run = points_per_run
        self.used: Counter[str] = Counter()

    def charge(self, tenant: str, key: str, points: int) -> None:
        """Count ``points`` against ``tenant``, or refuse the partition if they would exceed its budget."""
        if self.used[tenant] + points > self.points_per_run:
            raise LimitExceeded(
                f"{key}: {points} grid points would take tenant {tenant!r} past its budget of "
                f"{self.points_per_run} modelled points per run ({self.used[tenant]} used); "
                "skipped this run (raise INTENTVISION_TENANT_POINTS_PER_RUN or coarsen the metric's min_step)"
            )
        self.used[tenant] += points
