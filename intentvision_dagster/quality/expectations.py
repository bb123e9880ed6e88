"""The Great Expectations suite of a validated partition: completeness, freshness, value range, not-null.

Completeness and freshness are per-series properties, so pandas first condenses the partition to one summary
row per series (gap ratio, age of the newest point) and GX judges that summary; value range and not-null are
judged on the points themselves. GX runs with an ephemeral context (nothing written to disk, no GX project):
one context and one batch per frame per call, which costs tens of milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import great_expectations as gx
import pandas as pd
from great_expectations.core.expectation_validation_result import ExpectationValidationResult
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.datasource.fluent.interfaces import Batch
from pandas.tseries.frequencies import to_offset

from intentvision_dagster.catalog import MetricSpec

HOUR = pd.Timedelta(hours=1)


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict; ``observed`` holds JSON-able numbers/strings for asset-check metadata."""

    name: str
    success: bool
    observed: dict
    description: str


def run_expectations(
    df: pd.DataFrame, spec: MetricSpec, freq: str, now: pd.Timestamp
) -> list[ExpectationOutcome]:
    """Run the suite on one partition's points (series columns) sampled every ``freq`` (fixed, e.g. '5min').

    Freshness measures each series' newest point against ``now`` (naive means UTC); pass the partition's
    newest ``ds`` instead of the wall clock to judge only the series that fell behind the others.
    """
    step = _fixed_step(freq)
    now = pd.Timestamp(now)
    if now.tz is not None:
        now = now.tz_convert("UTC").tz_localize(None)
    summary = series_summary(df, step, now)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("intentvision")
    points = _batch(source, "points", df[["ds", "y"]])
    per_series = _batch(source, "series", summary[["unique_id", "gap_ratio", "age_hours"]])
    return [
        _completeness(per_series, summary, spec, freq),
        _freshness(per_series, summary, spec, now),
        _value_range(points, df, spec),
        _not_null(points),
    ]


def series_summary(df: pd.DataFrame, step: pd.Timedelta, now: pd.Timestamp) -> pd.DataFrame:
    """Per series: ``unique_id, first_ds, newest_ds, present, expected, gap_ratio, age_hours``.

    ``expected`` counts the ``step`` grid slots from the first to the newest point; ``present`` the slots that
    hold at least one point, so off-grid jitter does not count as a gap.
    """
    slots = df.assign(slot=df["ds"].dt.floor(step))
    summary = slots.groupby("unique_id", sort=True).agg(
        first_ds=("slot", "min"),
        newest_ds=("ds", "max"),
        last_slot=("slot", "max"),
        present=("slot", "nunique"),
    )
    summary["expected"] = (summary["last_slot"] - summary["first_ds"]) // step + 1
    summary["gap_ratio"] = 1.0 - summary["present"] / summary["expected"]
    summary["age_hours"] = (now - summary["newest_ds"]) / HOUR
    return summary.drop(columns="last_slot").reset_index()


def _fixed_step(freq: str) -> pd.Timedelta:
    try:
        return pd.Timedelta(to_offset(freq))
    except ValueError:
        raise ValueError(
            f"freq {freq!r} is not a fixed sampling interval such as '1min', '5min', '1h' or '1D'"
        ) from None


def _batch(source, name: str, frame: pd.DataFrame) -> Batch:
    asset = source.add_dataframe_asset(name)
    return asset.add_batch_definition_whole_dataframe(name).get_batch(batch_parameters={"dataframe": frame})


def _between(batch: Batch, column: str, low: float | None, high: float | None) -> ExpectationValidationResult:
    return batch.validate(
        gx.expectations.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high)
    )


def _completeness(batch: Batch, summary: pd.DataFrame, spec: MetricSpec, freq: str) -> ExpectationOutcome:
    result = _between(batch, "gap_ratio", 0.0, spec.max_gap_ratio)
    limit = f"at most {spec.max_gap_ratio:.1%} of the {freq} timestamps missing"
    if summary.empty:
        return ExpectationOutcome("completeness", True, {"series": 0}, f"no series to check ({limit})")
    worst = summary.loc[summary["gap_ratio"].idxmax()]
    failing = int(result.result["unexpected_count"])
    observed = {
        "series": len(summary),
        "failing_series": failing,
        "worst_gap_ratio": round(float(worst["gap_ratio"]), 6),
        "worst_series": str(worst["unique_id"]),
        "worst_missing": int(worst["expected"] - worst["present"]),
        "worst_expected": int(worst["expected"]),
        "max_gap_ratio": spec.max_gap_ratio,
        "freq": freq,
    }
    worst_text = (
        f"{worst['unique_id']} misses {worst['gap_ratio']:.1%} "
        f"({observed['worst_missing']} of {observed['worst_expected']})"
    )
    description = (
        f"every series has {limit}; worst: {worst_text}"
        if result.success
        else f"{failing} of {len(summary)} series have more than {spec.max_gap_ratio:.1%} of the {freq} "
        f"timestamps missing; worst: {worst_text}"
    )
    return ExpectationOutcome("completeness", bool(result.success), observed, description)


def _freshness(
    batch: Batch, summary: pd.DataFrame, spec: MetricSpec, now: pd.Timestamp
) -> ExpectationOutcome:
    limit_hours = spec.max_staleness / HOUR
    result = _between(batch, "age_hours", None, limit_hours)
    if summary.empty:
        return ExpectationOutcome(
            "freshness", False, {"series": 0, "now": now.isoformat()}, "no data points: nothing is fresh"
        )
    stalest = summary.loc[summary["age_hours"].idxmax()]
    stale = int(result.result["unexpected_count"])
    observed = {
        "series": len(summary),
        "stale_series": stale,
        "newest_ds": summary["newest_ds"].max().isoformat(),
        "stalest_series": str(stalest["unique_id"]),
        "stalest_newest_ds": stalest["newest_ds"].isoformat(),
        "max_age_hours": round(float(stalest["age_hours"]), 3),
        "max_staleness_hours": float(limit_hours),
        "now": now.isoformat(),
    }
    stalest_text = (
        f"{stalest['unique_id']} last reported {stalest['newest_ds']} ({stalest['age_hours']:.1f} h old)"
    )
    description = (
        f"every series reported within {limit_hours:g} h of {now}; stalest: {stalest_text}"
        if result.success
        else f"{stale} of {len(summary)} series have no point in the {limit_hours:g} h before {now}; "
        f"stalest: {stalest_text}"
    )
    return ExpectationOutcome("freshness", bool(result.success), observed, description)


def _value_range(batch: Batch, df: pd.DataFrame, spec: MetricSpec) -> ExpectationOutcome:
    observed = {
        "min_observed": float(df["y"].min()) if df["y"].notna().any() else None,
        "max_observed": float(df["y"].max()) if df["y"].notna().any() else None,
        "min_allowed": spec.min_value,
        "max_allowed": spec.max_value,
    }
    if spec.min_value is None and spec.max_value is None:
        return ExpectationOutcome(
            "value_range", True, {**observed, "unexpected_count": 0}, f"no bounds declared for {spec.name}"
        )
    result = _between(batch, "y", spec.min_value, spec.max_value)
    unexpected = int(result.result["unexpected_count"])
    low = "-inf" if spec.min_value is None else f"{spec.min_value:g}"
    high = "inf" if spec.max_value is None else f"{spec.max_value:g}"
    bounds = f"[{low}, {high}]"
    description = (
        f"all values of {spec.name} lie within {bounds}"
        if result.success
        else f"{unexpected} value(s) of {spec.name} lie outside {bounds} "
        f"(observed {observed['min_observed']} to {observed['max_observed']})"
    )
    return ExpectationOutcome(
        "value_range", bool(result.success), {**observed, "unexpected_count": unexpected}, description
    )


def _not_null(batch: Batch) -> ExpectationOutcome:
    results = {
        column: batch.validate(gx.expectations.ExpectColumnValuesToNotBeNull(column=column))
        for column in ("ds", "y")
    }
    nulls = {f"null_{column}": int(r.result["unexpected_count"]) for column, r in results.items()}
    success = all(r.success for r in results.values())
    description = (
        "no missing timestamps or values"
        if success
        else f"{nulls['null_ds']} missing timestamp(s) and {nulls['null_y']} missing value(s)"
    )
    return ExpectationOutcome("not_null", success, nulls, description)
