"""Repeated and out-of-order timestamps: taken, merged per the metric's kind, and said so.

Real feeds repeat timestamps (a clock change that repeats an hour of local time, a retried write that sends a
row twice) and send rows out of order. Such input is never refused: rows are put in time order per series and
the rows of one series at one timestamp become one row, by the metric's kind (``assets/metrics.yaml``):

* **gauge** (a level: CPU %, queue depth): the **mean**. A repeated hour holds two real samples of the level,
  and the mean keeps both; a retried write (the same row twice) averages to itself.
* **counter** (a running total): the **max**. A counter only grows between resets, so the largest sample is
  the latest one, whatever order the rows came in.

:class:`Repeats` counts what was done; its :meth:`~Repeats.warning` is the sentence the CLI, the API and the
pipeline show. It holds counts, and at most one example series and timestamp, so callers decide whether an
example may be shown: the CLI and the API answer the tenant who sent the data; the pipeline's run log is
shared by the tenants of a range run, so it gets counts only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

AGGREGATION = {"gauge": "mean", "counter": "max"}
"""How the rows of one series at one timestamp become one row, per metric kind."""


@dataclass(frozen=True)
class Repeats:
    """What :func:`merge_repeats` did to a frame: counts, and one example of a repeated timestamp."""

    repeated_timestamps: int = 0
    """(series, timestamp) pairs that came more than once."""
    merged_rows: int = 0
    """Rows folded into another row of the same series and timestamp."""
    identical_rows: int = 0
    """Of those, rows equal to one already there (retried writes)."""
    out_of_order: int = 0
    """Rows earlier than the row before them of the same series."""
    series: int = 0
    """Series with a repeated timestamp or a row out of order."""
    kinds: tuple[str, ...] = ()
    """Metric kinds whose repeated timestamps were merged."""
    example: str = ""
    """The first repeated timestamp, as ``<series> at <timestamp>``."""

    def __bool__(self) -> bool:
        return bool(self.merged_rows or self.out_of_order)

    def warning(self, with_example: bool = True) -> str:
        """One sentence saying what was done, e.g. for ``ingest``, the API's answer, or a run log."""
        parts = []
        if self.merged_rows:
            how = ", ".join(f"{kind}s: {AGGREGATION[kind]}" for kind in self.kinds)
            rows = self.merged_rows + self.repeated_timestamps
            parts.append(
                f"{rows} rows at {self.repeated_timestamps} repeated timestamp{_s(self.repeated_timestamps)} "
                f"merged into one row each ({how}; {self.identical_rows} exact "
                f"repeat{_s(self.identical_rows)})"
                + (f", e.g. {self.example}" if with_example and self.example else "")
            )
        if self.out_of_order:
            parts.append(f"{self.out_of_order} row{_s(self.out_of_order)} out of order put in time order")
        return f"{self.series} series: {'; '.join(parts)}" if parts else ""


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def merge_repeats(frame: pd.DataFrame, kind_of: Callable[[str], str]) -> tuple[pd.DataFrame, Repeats]:
    """``frame`` (``unique_id, ds, y`` plus any columns constant per series, e.g. ``tenant, metric, labels``)
    sorted by ``unique_id, ds`` with one row per series and timestamp, and what was done to get there.

    ``kind_of(metric)`` gives each metric's kind (a frame without a ``metric`` column is all gauges). Only
    finite values are merged: a NaN or infinite row stays as it is, for validation to quarantine with its
    reason. Returns the frame untouched (but sorted) when nothing repeats.
    """
    out_of_order = frame["ds"].groupby(frame["unique_id"], sort=False).diff() < pd.Timedelta(0)
    ordered = frame.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    finite = pd.Series(np.isfinite(ordered["y"].to_numpy(dtype=float)), index=ordered.index)
    key = ["unique_id", "ds"]
    repeated = ordered[finite].duplicated(key, keep=False).reindex(ordered.index, fill_value=False)
    touched = set(frame.loc[out_of_order.to_numpy(), "unique_id"]) | set(ordered.loc[repeated, "unique_id"])
    if not repeated.any():
        summary = Repeats(out_of_order=int(out_of_order.sum()), series=len(touched))
        return ordered, summary
    metrics = ordered["metric"] if "metric" in ordered else pd.Series("", index=ordered.index)
    kinds = metrics.map({metric: kind_of(metric) for metric in metrics.unique()})
    groups = ordered[repeated]
    merged = pd.concat(
        [
            groups[kinds[repeated] == kind].groupby(key, sort=False)["y"].agg(how)
            for kind, how in AGGREGATION.items()
        ]
    )
    folded = ordered[finite].duplicated(key).reindex(ordered.index, fill_value=False)
    keep = ordered[~folded]
    at = pd.MultiIndex.from_frame(keep[key])
    target = at.isin(merged.index) & finite[keep.index].to_numpy()
    keep = keep.assign(y=keep["y"].mask(target, merged.reindex(at).to_numpy())).reset_index(drop=True)
    first = groups.iloc[0]
    summary = Repeats(
        repeated_timestamps=len(merged),
        merged_rows=int(folded.sum()),
        identical_rows=int(ordered[finite].duplicated([*key, "y"]).sum()),
        out_of_order=int(out_of_order.sum()),
        series=len(touched),
        kinds=tuple(kind for kind in AGGREGATION if (kinds[repeated] == kind).any()),
        example=f"{first['unique_id']} at {first['ds']}",
    )
    return keep, summary
