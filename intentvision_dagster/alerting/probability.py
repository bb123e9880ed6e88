"""Breach probability and crossing-time distribution from a forecast's predictive quantiles.

Each forecast row carries five quantiles of the predictive distribution at its step: ``lo_95, lo_80, yhat,
hi_80, hi_95`` are the 2.5, 10, 50, 90 and 97.5 % quantiles (calibrated per horizon step by the forecasting
engine). Between them the distribution is interpolated linearly in normal-score space (a normal where the
band is symmetric, skewed where it is not), and beyond them extrapolated with the outer segment's slope; a
band pinned to a metric bound (a percentage at 100) puts no probability past it.

Steps are joined as *quantile paths*: the series follows one quantile of its predictive distribution for
the whole horizon (errors fully correlated across steps, as they are when the uncertainty is the trend's).
Then the probability of reaching a line by step ``t`` is the running maximum of the per-step exceedance
probabilities, and that running maximum is the crossing time's distribution function: its median and 80 %
interval, conditional on a crossing within the horizon, say when. A band edge touching the line at some
step is the same event as this probability reaching the edge's tail mass (``hi_95`` touching: P >= 2.5 %),
which is how the old ``edge:`` rules translate (:data:`EDGE_PROBABILITY`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

QUANTILE_COLUMNS = ("lo_95", "lo_80", "yhat", "hi_80", "hi_95")
QUANTILE_LEVELS = np.array([0.025, 0.10, 0.50, 0.90, 0.975])
EDGE_PROBABILITY = {"hi_95": 0.025, "hi_80": 0.10, "yhat": 0.50, "lo_80": 0.90, "lo_95": 0.975}
"""For direction ``above``: the breach probability at which a band edge touches the line (``below``
mirrors it: ``lo_95`` touching is P >= 2.5 %)."""
CROSSING_INTERVAL = (0.10, 0.90)
"""Quantiles of the crossing time reported as its interval (80 %)."""
OUTLOOK_COLUMNS = ["unique_id", "probability", "crossing_ds", "crossing_lo", "crossing_hi"]


def mirrored_edge(edge: str) -> str:
    """The edge of the other tail (``hi_95`` <-> ``lo_95``), for rules that watch a series fall."""
    side, _, level = edge.partition("_")
    return edge if edge == "yhat" else f"{'lo' if side == 'hi' else 'hi'}_{level}"


def exceedance(
    quantiles: np.ndarray, line: np.ndarray, above: bool, levels: np.ndarray = QUANTILE_LEVELS
) -> np.ndarray:
    """P(Y >= line) (``above``) or P(Y <= line) per row of ``quantiles`` (n x k: the quantiles at
    ``levels``, non-decreasing along each row); with the median alone, 1 or 0."""
    q = np.asarray(quantiles, dtype="float64")
    line = np.asarray(line, dtype="float64")
    if q.shape[1] == 1:
        return (q[:, 0] >= line if above else q[:, 0] <= line).astype("float64")
    z_knots = norm.ppf(levels)
    rows = np.arange(len(q))
    below_count = (q < line[:, None]).sum(axis=1)
    segment = np.clip(below_count, 1, q.shape[1] - 1)
    q0, q1 = q[rows, segment - 1], q[rows, segment]
    z0, z1 = z_knots[segment - 1], z_knots[segment]
    width = q1 - q0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = z0 + (line - q0) / width * (z1 - z0)
    # A zero-width outer segment (a band collapsed or pinned to a bound): nothing lies beyond it.
    flat = ~(width > 0)
    z = np.where(flat & (line > q1), np.inf, z)
    z = np.where(flat & (line < q0), -np.inf, z)
    z = np.where(flat & (line >= q0) & (line <= q1), np.where(line >= q1, z1, z0), z)
    p_below = norm.cdf(z)
    return 1.0 - p_below if above else p_below


def breach_outlook(
    frame: pd.DataFrame, lines: pd.Series, above: bool, already: pd.Series | None = None
) -> pd.DataFrame:
    """Per series: P(reaching its line within the rows given) and the crossing time's median and interval.

    ``frame`` holds forecast rows (``unique_id, ds, yhat`` and those of :data:`QUANTILE_COLUMNS` it has),
    ``lines`` the line per unique_id, ``already`` (optional, per unique_id) whether the series is past the
    line now: then the probability is 1 and the crossing the first forecast step.
    Crossing times are conditional on a crossing within the horizon; NaT where the probability is 0.
    Returns :data:`OUTLOOK_COLUMNS`, one row per series of ``frame``.
    """
    if frame.empty:
        return pd.DataFrame(columns=OUTLOOK_COLUMNS)
    rows = frame.sort_values(["unique_id", "ds"])
    line = rows["unique_id"].map(lines).to_numpy(dtype="float64")
    present = [i for i, column in enumerate(QUANTILE_COLUMNS) if column in rows.columns]
    knots = rows[[QUANTILE_COLUMNS[i] for i in present]].to_numpy()
    per_step = exceedance(knots, line, above, QUANTILE_LEVELS[present])
    per_step = np.nan_to_num(per_step, nan=0.0)
    if already is not None:
        now = rows["unique_id"].map(already).fillna(False).to_numpy(dtype=bool)
        per_step = np.where(now, 1.0, per_step)
    cdf = pd.Series(per_step, index=rows.index).groupby(rows["unique_id"], sort=True).cummax()
    probability = cdf.groupby(rows["unique_id"], sort=True).max()
    share = cdf / rows["unique_id"].map(probability).replace(0.0, np.nan)

    def first_reaching(level: float) -> pd.Series:
        return rows["ds"].where(share >= level - 1e-9).groupby(rows["unique_id"], sort=True).min()

    return pd.DataFrame(
        {
            "unique_id": probability.index,
            "probability": probability.to_numpy(),
            "crossing_ds": first_reaching(0.5).reindex(probability.index).to_numpy(),
            "crossing_lo": first_reaching(CROSSING_INTERVAL[0]).reindex(probability.index).to_numpy(),
            "crossing_hi": first_reaching(CROSSING_INTERVAL[1]).reindex(probability.index).to_numpy(),
        }
    )
