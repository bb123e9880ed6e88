"""One partition's failure stays that partition's: per-(tenant, metric) work with failures collected.

A range run (the nightly schedule, a coalesced landing run) holds many tenants' partitions. An exception in
one of them (a partition with nothing valid, a series the models cannot take) must not cost the others their
night: each partition's work runs on its own, and a failure is kept with its reason for the asset to report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import pandas as pd

from intentvision_dagster.names import split_partition_key

T = TypeVar("T")


@dataclass
class PerPartition(Generic[T]):
    """What each partition's work returned, and why the others failed (partition key -> reason)."""

    results: dict[str, T] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def each_partition(
    keys: Iterable[str], frame: pd.DataFrame, work: Callable[[str, str, pd.DataFrame], T | None]
) -> PerPartition[T]:
    """``work(tenant, metric, rows)`` for each partition key, on that partition's rows of ``frame`` only.

    ``None`` means nothing to report (no result kept). Any exception is this partition's failure: it is
    recorded with its message and the next partition goes on (this is the isolation boundary, so it catches
    broadly on purpose).
    """
    groups = dict(iter(frame.groupby(["tenant", "metric"], sort=False, observed=True))) if len(frame) else {}
    outcome: PerPartition[T] = PerPartition()
    for key in keys:
        tenant, metric = split_partition_key(key)
        rows = groups.get((tenant, metric), frame.iloc[:0])
        try:
            result = work(tenant, metric, rows)
        except Exception as exc:
            outcome.failed[key] = str(exc) or type(exc).__name__
            continue
        if result is not None:
            outcome.results[key] = result
    return outcome
