"""The validated-series schema (pandera) and the split of a partition into valid and quarantined rows.

Bad rows are never dropped silently: each goes to the quarantine frame with the rule it broke and a sentence
naming the value. A row breaking several rules is quarantined once, under the first rule in :data:`RULES`.
Repeated timestamps are not bad rows: the good rows of one series and timestamp are merged per the metric's
kind (:mod:`intentvision_dagster.repeats`: gauges the mean, counters the max) and the split says so.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing.pandas import Series

from intentvision_dagster.catalog import MetricSpec
from intentvision_dagster.errors import InputError
from intentvision_dagster.repeats import Repeats, merge_repeats
from intentvision_dagster.series import SERIES_COLUMNS

RULES = ("missing", "finite", "non_negative", "min", "max")
"""Quarantine rules, in the order that decides which one a row is filed under."""
QUARANTINE_COLUMNS = [*SERIES_COLUMNS, "rule", "reason"]
INCREASING_CHECK = "ds_strictly_increasing"


class SeriesSchema(pa.DataFrameModel):
    """A validated partition: finite values and strictly increasing (so unique) timestamps per series."""

    tenant: Series[str]
    metric: Series[str]
    labels: Series[str]
    unique_id: Series[str]
    ds: Series[pa.DateTime]
    y: Series[float]

    @pa.check("ds", name="nanoseconds")
    def nanoseconds(cls, ds: Series) -> bool:
        """pandera's DateTime accepts any unit; the product's one data shape is datetime64[ns]."""
        return ds.dtype == "datetime64[ns]"

    @pa.check("y", name="finite")
    def finite(cls, y: Series[float]) -> Series[bool]:
        return pd.Series(np.isfinite(y.to_numpy()), index=y.index)

    @pa.dataframe_check(name=INCREASING_CHECK)
    def ds_strictly_increasing(cls, df: pd.DataFrame) -> Series[bool]:
        """Each point is strictly before the next point of its series; of duplicates only the last passes."""
        following = df.groupby("unique_id", sort=False)["ds"].shift(-1)
        return following.isna() | (df["ds"] < following)

    class Config:
        strict = True


class NoValidRowsError(InputError):
    """Every row of a partition was quarantined; the partition must fail rather than publish nothing."""

    def __init__(
        self,
        tenant: str,
        metric: str,
        rules: dict[str, int],
        example: str,
        quarantined: pd.DataFrame | None = None,
    ) -> None:
        self.tenant, self.metric, self.rules = tenant, metric, rules
        self.quarantined = quarantined
        counts = ", ".join(f"{rule}: {count}" for rule, count in rules.items())
        super().__init__(
            f"tenant {tenant!r}, metric {metric!r}: no valid rows, all {sum(rules.values())} were "
            f"quarantined by rule ({counts}); e.g. {example}"
        )


class Split(NamedTuple):
    valid: pd.DataFrame
    quarantined: pd.DataFrame
    repeats: Repeats
    """What merging the valid rows' repeated timestamps did (falsy when nothing repeated)."""


def split_valid(df: pd.DataFrame, spec: MetricSpec) -> Split:
    """Split one partition's rows into (valid, quarantined, repeats) using ``spec``'s bounds and kind.

    ``valid`` has the series columns sorted by ``unique_id, ds`` and passes :class:`SeriesSchema`;
    ``quarantined`` adds ``rule`` and ``reason``. The valid rows of one series and timestamp become one row
    (the mean for a gauge, the max for a counter), so a bad row never spoils a good one at its timestamp.
    Raises :class:`NoValidRowsError` when rows were given but none is valid, and pandera's ``SchemaErrors``
    for frame-level problems (wrong dtypes); other columns are ignored.
    """
    absent = [c for c in SERIES_COLUMNS if c not in df.columns]
    if absent:
        raise ValueError(f"split_valid needs the columns {SERIES_COLUMNS}; missing {absent}")
    others = sorted(set(df["metric"]) - {spec.name})
    if others:
        raise ValueError(f"split_valid got rows of metric(s) {others} with the spec of {spec.name!r}")
    rows = df[SERIES_COLUMNS].sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    failures = _failures(_row_schema(spec), rows).sort_index()
    quarantined = rows.loc[failures.index].assign(
        rule=failures["rule"].to_numpy(),
        reason=[
            _reason(rule, column, row, spec)
            for rule, column, row in zip(
                failures["rule"], failures["column"], rows.loc[failures.index].itertuples(), strict=True
            )
        ],
    )
    valid, repeats = merge_repeats(rows.drop(index=failures.index), lambda _: spec.kind)
    if valid.empty and not rows.empty:
        tenants = ",".join(sorted(set(rows["tenant"])))
        counts = quarantined["rule"].value_counts()
        by_rule = {rule: int(counts[rule]) for rule in RULES if rule in counts}
        quarantined = quarantined[QUARANTINE_COLUMNS].reset_index(drop=True)
        raise NoValidRowsError(tenants, spec.name, by_rule, quarantined["reason"].iloc[0], quarantined)
    SeriesSchema.validate(valid)
    return Split(valid, quarantined[QUARANTINE_COLUMNS].reset_index(drop=True), repeats)


def _row_schema(spec: MetricSpec) -> pa.DataFrameSchema:
    """SeriesSchema's column rules plus the metric's declared bounds, without the frame-level order check."""
    base = SeriesSchema.to_schema()
    bounds = []
    if spec.non_negative:
        bounds.append(pa.Check(lambda y: y >= 0, name="non_negative"))
    if spec.min_value is not None and spec.min_value != 0:
        bounds.append(pa.Check(lambda y: y >= spec.min_value, name="min"))
    if spec.max_value is not None:
        bounds.append(pa.Check(lambda y: y <= spec.max_value, name="max"))
    with_bounds = base.update_column("y", checks=[*base.columns["y"].checks, *bounds])
    return pa.DataFrameSchema(columns=with_bounds.columns, strict=True)


def _failures(schema: pa.DataFrameSchema, rows: pd.DataFrame) -> pd.DataFrame:
    """Rows failing ``schema``, indexed by row, with the ``rule`` to file each under and the column."""
    try:
        schema.validate(rows, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        rule = [_rule(column, check) for column, check in zip(cases["column"], cases["check"], strict=True)]
        if cases["index"].isna().any() or not set(rule) <= set(RULES):
            raise
        found = pd.DataFrame(
            {"rule": rule, "column": cases["column"].to_numpy()},
            index=cases["index"].astype("int64").to_numpy(),
        )
        found = found.sort_values("rule", key=lambda s: s.map(RULES.index), kind="stable")
        return found[~found.index.duplicated()]
    return pd.DataFrame({"rule": pd.Series(dtype=object), "column": pd.Series(dtype=object)})


def _rule(column: str, check: str) -> str:
    if check == "not_nullable":
        return "finite" if column == "y" else "missing"
    return check


def _reason(rule: str, column: str, row: tuple, spec: MetricSpec) -> str:
    """One sentence naming the offending value and the rule, for the quarantine table."""
    y = float(row.y)
    match rule:
        case "missing":
            return f"{column} is missing"
        case "finite":
            return f"y={y!r} is not a finite number"
        case "non_negative":
            return f"y={y!r} is negative but {spec.name} is declared non-negative (min {spec.min_value:g})"
        case "min":
            return f"y={y!r} is below the minimum {spec.min_value:g} declared for {spec.name}"
    return f"y={y!r} is above the maximum {spec.max_value:g} declared for {spec.name}"
