"""How unusual a point is for *its own* series: the anomaly likelihood and the adaptive bar.

The detectors say how far a point is from its expected value, in MADs. That alone pages on every series that
is always jumpy. Two per-series corrections, both causal (a point uses only the points before it and itself)
and vectorised over all series with grouped rolling windows:

* **Anomaly likelihood**, after Numenta's HTM anomaly likelihood (nupic ``anomaly_likelihood.py``; Ahmad et
  al., "Unsupervised real-time anomaly detection for streaming data", Neurocomputing 2017): the raw score of
  each point (0..1) is averaged over the last ``AVERAGING_POINTS`` points; the series' own long-run
  distribution of that average is a normal with the mean and standard deviation of the averages over the
  previous ``HISTORY_POINTS`` points (at least ``ESTIMATION_POINTS`` of them), floored as HTM floors them
  (mean 0.03, variance 0.0003) so a perfectly quiet past does not turn the first wobble into a page. The
  likelihood is ``1 - Q(z)`` of the recent average under that normal. Unlike HTM it is one-sided: a recent
  average *below* the usual one is calm, not unusual. ``likelihood_nines`` turns it into "nines"
  (0.999 -> 3), the unit the thresholds use.
* **Noise level** (the adaptive bar): the ``NOISE_QUANTILE`` of the series' own past strengths over the
  same history, times ``NOISE_FACTOR``. The detector stretches its thresholds by it, so a series whose normal
  noise regularly reaches 8 MADs needs more than that to page.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr

AVERAGING_POINTS = 10
"""Raw scores averaged before the likelihood (HTM: 10 records)."""
HISTORY_POINTS = 8640
"""Points of history behind the long-run distribution (HTM: 8640, a month of 5-minute data)."""
ESTIMATION_POINTS = 30
"""Averages needed before the distribution is trusted (HTM: 100); before that the likelihood is 0.5."""
MEAN_FLOOR = 0.03
VARIANCE_FLOOR = 0.0003
NOISE_QUANTILE = 0.995
NOISE_FACTOR = 1.0
MAX_NINES = 10.0
"""``likelihood_nines`` caps here: beyond 10 nines float64 cannot tell likelihoods apart."""


def _grouped(values: np.ndarray, groups: np.ndarray) -> pd.core.groupby.SeriesGroupBy:
    return pd.Series(values).groupby(groups, sort=False)


def anomaly_likelihood(raw: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per point, the HTM-style likelihood that the recent raw scores are unusual for this series (0..1).

    ``raw`` are scores in [0, 1] (NaN while a series warms up: not part of its history), ``groups`` the series
    of each point; rows are sorted by series, then time.
    """
    recent = _grouped(raw, groups).rolling(AVERAGING_POINTS, min_periods=1).mean().to_numpy(dtype=float)
    history = _grouped(recent, groups).rolling(HISTORY_POINTS, min_periods=ESTIMATION_POINTS)
    mean = _grouped(history.mean().to_numpy(dtype=float), groups).shift(1).to_numpy(dtype=float)
    std = _grouped(history.std(ddof=0).to_numpy(dtype=float), groups).shift(1).to_numpy(dtype=float)
    # np.maximum, not fmax: a distribution not yet estimated (NaN) stays unknown, and the likelihood 0.5.
    mean = np.maximum(mean, MEAN_FLOOR)
    std = np.sqrt(np.maximum(np.square(std), VARIANCE_FLOOR))
    likelihood = ndtr((recent - mean) / std)
    return np.where(np.isfinite(likelihood) & np.isfinite(raw), likelihood, 0.5)


def likelihood_nines(likelihood: np.ndarray) -> np.ndarray:
    """``-log10(1 - likelihood)``: 2 at 0.99, 5 at 0.99999; capped at ``MAX_NINES``."""
    with np.errstate(divide="ignore"):
        return np.fmin(-np.log10(np.fmax(1.0 - likelihood, 0.0)), MAX_NINES)


def noise_level(strength: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per point, how far this series' own normal noise reaches: ``NOISE_FACTOR`` times the
    ``NOISE_QUANTILE`` of its past strengths (NaN while warming up: not history); 0 until known."""
    noise = (
        _grouped(strength, groups)
        .rolling(HISTORY_POINTS, min_periods=ESTIMATION_POINTS)
        .quantile(NOISE_QUANTILE)
        .to_numpy(dtype=float)
    )
    return np.nan_to_num(NOISE_FACTOR * _grouped(noise, groups).shift(1).to_numpy(dtype=float))
