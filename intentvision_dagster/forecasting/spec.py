"""The frame contract every forecasting layer shares: long input in, forecast columns out, bounds applied.

It sits below everything else in the package (pandas only), so the backtest, the forecast and the backends
shape and clip their frames the same way without importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def nixtla_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Only ``unique_id, ds, y`` of the rows with a value, sorted; statsforecast rejects NaN targets."""
    data = df.loc[df["y"].notna(), ["unique_id", "ds", "y"]].astype({"unique_id": str, "y": "float64"})
    return data.sort_values(["unique_id", "ds"], ignore_index=True)


def interval_columns(levels: Sequence[int]) -> list[str]:
    return [f"{side}_{level}" for level in sorted(levels) for side in ("lo", "hi")]


def forecast_columns(levels: Sequence[int]) -> list[str]:
    """Output columns of a forecast, one ``lo_``/``hi_`` pair per level."""
    return ["unique_id", "ds", "yhat", *interval_columns(levels), "model"]


def empty_forecast(levels: Sequence[int]) -> pd.DataFrame:
    columns = forecast_columns(levels)
    return pd.DataFrame({column: pd.Series(dtype="float64") for column in columns}).astype(
        {"unique_id": str, "ds": "datetime64[ns]", "model": str}
    )


def bound_and_order(
    frame: pd.DataFrame, levels: Sequence[int], lower: float | None, upper: float | None
) -> pd.DataFrame:
    """Clip to the metric's bounds, then enforce ``lo_95 <= lo_80 <= yhat <= hi_80 <= hi_95``.

    Intervals a model cannot estimate (a constant series, one point) collapse onto ``yhat``.
    """
    tidy = frame.copy()
    value_cols = ["yhat", *interval_columns(levels)]
    tidy[value_cols] = tidy[value_cols].astype("float64").clip(lower=lower, upper=upper)
    lo, hi = tidy["yhat"], tidy["yhat"]
    for level in sorted(levels):
        lo = tidy[f"lo_{level}"] = tidy[f"lo_{level}"].fillna(lo).clip(upper=lo)
        hi = tidy[f"hi_{level}"] = tidy[f"hi_{level}"].fillna(hi).clip(lower=hi)
    return tidy
