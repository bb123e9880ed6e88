"""What a forecasting call is asked for (:class:`ForecastSpec`) and the frame contract that follows from it.

Every layer (backtest, selection, forecast, backends) takes one spec instead of repeating horizon, frequency,
levels, bounds and worker count as keywords, and shapes and clips its frames with these helpers. This module
sits below everything else in the package (pandas only), so no layer has to import another to share them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class ForecastSpec:
    """One forecasting request: ``horizon`` steps at pandas frequency ``freq``, intervals at ``levels`` %.

    ``lower``/``upper`` are the metric's bounds (forecasts, intervals and backtest forecasts are clipped to
    them); ``n_jobs`` worker processes fit the models; ``metric`` (one of the backtest's ``METRICS``, lower
    wins) and ``n_windows`` rolling-origin windows drive model selection. Frozen, so one spec can be passed
    down every layer and to worker processes without anyone changing it on the way.
    """

    horizon: int
    freq: str
    levels: tuple[int, ...] = (80, 95)
    lower: float | None = None
    upper: float | None = None
    n_jobs: int = 1
    metric: str = "mase"
    n_windows: int = 3


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


def bound_and_order(frame: pd.DataFrame, spec: ForecastSpec) -> pd.DataFrame:
    """Clip to the spec's bounds, then enforce ``lo_95 <= lo_80 <= yhat <= hi_80 <= hi_95``.

    Intervals a model cannot estimate (a constant series, one point) collapse onto ``yhat``.
    """
    tidy = frame.copy()
    value_cols = ["yhat", *interval_columns(spec.levels)]
    tidy[value_cols] = tidy[value_cols].astype("float64").clip(lower=spec.lower, upper=spec.upper)
    lo, hi = tidy["yhat"], tidy["yhat"]
    for level in sorted(spec.levels):
        lo = tidy[f"lo_{level}"] = tidy[f"lo_{level}"].fillna(lo).clip(upper=lo)
        hi = tidy[f"hi_{level}"] = tidy[f"hi_{level}"].fillna(hi).clip(lower=hi)
    return tidy
