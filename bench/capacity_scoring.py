"""Scores of capacity pages against the truth of ``bench/capacity_scenarios.py``.

A *decision* is one row per evaluation (``unique_id`` = ``scenario@cutoff``): ``pages`` and the predicted
``crossing_ds`` (NaT when none). Figures, over the evaluations of one split:

* precision and recall of "breach within 72 h" (a page is right when the first crossing is within HORIZON
  hours after the cutoff);
* false pages per series-week: pages without a crossing within HORIZON hours, per 7 evaluated series-days
  (one evaluation per series per day);
* lead time: per breach, its *first page* is the page at the earliest cutoff within HORIZON hours before the
  crossing; the share of breaches with a cutoff 24-72 h before them whose first page came >= 24 h ahead, and
  the median lead of the first pages;
* median |predicted - true| crossing time in hours, over the right pages that predicted a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.capacity_scenarios import CUTOFF_EVERY

EARLY = 24.0
"""Hours ahead a page must come to count as early enough for the lead-time figure."""


@dataclass(frozen=True)
class CapacityScore:
    evaluations: int
    series: int
    series_weeks: float
    true_pages: int
    false_pages: int
    missed: int
    precision: float
    recall: float
    false_pages_per_series_week: float
    breaches_24h_ahead: int
    paged_24h_ahead: int
    share_paged_24h_ahead: float
    median_lead_hours: float
    median_crossing_error_hours: float
    crossing_errors: int


def judged(truth: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """The truth with each evaluation's decision (``pages``, ``predicted_ds``); every evaluation needs one."""
    decided = decisions[["unique_id", "pages", "crossing_ds"]].rename(columns={"crossing_ds": "predicted_ds"})
    frame = truth.merge(decided, on="unique_id", how="left", validate="one_to_one")
    missing = frame["pages"].isna()
    if missing.any():
        example = frame.loc[missing, "unique_id"].iloc[0]
        raise ValueError(f"no decision for {int(missing.sum())} evaluations, e.g. {example}")
    return frame.assign(pages=frame["pages"].astype(bool))


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def first_page_leads(frame: pd.DataFrame) -> pd.DataFrame:
    """Per breaching scenario: whether a cutoff was 24-72 h before the crossing, and the first page's lead."""
    breaching = frame[frame["breach"]]
    paged = breaching[breaching["pages"]]
    return pd.DataFrame(
        {
            "has_early_cutoff": breaching.groupby("scenario")["hours_to_crossing"].max() >= EARLY,
            "lead": paged.groupby("scenario")["hours_to_crossing"].max(),
        }
    )


def score(frame: pd.DataFrame) -> CapacityScore:
    """All figures for ``frame`` (the output of ``judged``, possibly one split or pattern of it)."""
    pages, breach = frame["pages"].to_numpy(), frame["breach"].to_numpy()
    true_pages = int((pages & breach).sum())
    false_pages = int((pages & ~breach).sum())
    missed = int((~pages & breach).sum())
    series_weeks = len(frame) * CUTOFF_EVERY / (7 * 24)
    leads = first_page_leads(frame)
    early = leads[leads["has_early_cutoff"]]
    paged_early = int((early["lead"] >= EARLY).sum())
    right = frame[pages & breach & frame["predicted_ds"].notna()]
    errors = (right["predicted_ds"] - right["crossing_ds"]).abs() / pd.Timedelta(hours=1)
    return CapacityScore(
        evaluations=len(frame),
        series=frame["scenario"].nunique(),
        series_weeks=series_weeks,
        true_pages=true_pages,
        false_pages=false_pages,
        missed=missed,
        precision=ratio(true_pages, true_pages + false_pages),
        recall=ratio(true_pages, true_pages + missed),
        false_pages_per_series_week=ratio(false_pages, series_weeks),
        breaches_24h_ahead=len(early),
        paged_24h_ahead=paged_early,
        share_paged_24h_ahead=ratio(paged_early, len(early)),
        median_lead_hours=float(leads["lead"].median()) if leads["lead"].notna().any() else math.nan,
        median_crossing_error_hours=float(np.median(errors)) if len(errors) else math.nan,
        crossing_errors=len(errors),
    )
