"""Forecasts: each series refitted with the model its backtest selected, intervals calibrated and bounded.

Above :mod:`~intentvision_dagster.forecasting.selection` (it selects first unless handed a stored
selection) and below the backends, which call it as the statsforecast backend.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from statsforecast import StatsForecast

from intentvision_dagster.forecasting.models import assign_tiers, candidates, fitted_models, long_by_model
from intentvision_dagster.forecasting.selection import STEP_BUCKETS, select_models, step_buckets
from intentvision_dagster.forecasting.spec import (
    ForecastSpec,
    bound_and_order,
    empty_forecast,
    forecast_columns,
    nixtla_frame,
)
from intentvision_dagster.forecasting.workers import map_series


def scale_intervals(
    frame: pd.DataFrame, factors: pd.DataFrame, levels: Sequence[int], horizon: int
) -> pd.DataFrame:
    """Widen or narrow each interval around ``yhat`` by its calibration factor for that horizon step.

    ``factors`` has ``unique_id, model, calibration_<level>`` and optionally ``step_calibration`` (JSON:
    level -> one factor per :data:`~.selection.STEP_BUCKETS` bucket, preferred where present); rows without
    a factor keep their width. ``frame`` holds ``horizon`` steps per series.
    """
    columns = [f"calibration_{level}" for level in levels]
    extra = ["step_calibration"] if "step_calibration" in factors.columns else []
    merged = frame.merge(
        factors[["unique_id", "model", *columns, *extra]], on=["unique_id", "model"], how="left"
    ).sort_values(["unique_id", "ds"], ignore_index=True)
    bucket = step_buckets(merged.groupby("unique_id").cumcount().to_numpy() + 1, horizon)
    codes, texts = pd.factorize(merged.pop("step_calibration") if extra else pd.Series(None, merged.index))
    parsed = [json.loads(text) for text in texts]
    for level in levels:
        flat = merged.pop(f"calibration_{level}").fillna(1.0).to_numpy()
        tables = np.array(
            [table.get(str(level)) or [np.nan] * len(STEP_BUCKETS) for table in parsed]
            or [[np.nan] * len(STEP_BUCKETS)],
            dtype="float64",
        )
        stepped = np.where(codes >= 0, tables[codes.clip(0), bucket], np.nan)
        factor = np.where(np.isnan(stepped), flat, stepped)
        merged[f"lo_{level}"] = merged["yhat"] - factor * (merged["yhat"] - merged[f"lo_{level}"])
        merged[f"hi_{level}"] = merged["yhat"] + factor * (merged[f"hi_{level}"] - merged["yhat"])
    return merged


def choose_models(tiers: pd.Series, chosen: Mapping[str, str] | str) -> pd.Series:
    """Model per series: the chosen one where its tier offers it, else the tier's own model.

    ``chosen`` is a unique_id -> model mapping (a stored selection) or one model name for every series.
    """
    models = []
    for uid, tier in tiers.items():
        wanted = chosen if isinstance(chosen, str) else chosen.get(uid)
        models.append(wanted if wanted in candidates(tier) else candidates(tier)[0])
    return pd.Series(models, index=tiers.index, dtype=object)


def fit_predict(
    data: pd.DataFrame,
    models: pd.Series,
    tiers: pd.Series,
    spec: ForecastSpec,
    on_progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Raw (unclipped, uncalibrated) forecasts: one StatsForecast call per (tier, model) group and worker."""
    parts = map_series(
        _fit_predict_share, data, spec.n_jobs, on_progress, models=models, tiers=tiers, spec=spec
    )
    return pd.concat(parts, ignore_index=True)


def _fit_predict_share(
    data: pd.DataFrame,
    models: pd.Series,
    tiers: pd.Series,
    spec: ForecastSpec,
    on_progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    ids = data["unique_id"].unique()
    plan = pd.DataFrame({"tier": tiers.loc[ids], "model": models.loc[ids]})
    parts = []
    for (tier, name), group in plan.groupby(["tier", "model"], sort=True):
        sf = StatsForecast(models=fitted_models([name], tier), freq=spec.freq, n_jobs=1)
        wide = sf.forecast(
            df=data[data["unique_id"].isin(group.index)], h=spec.horizon, level=list(spec.levels)
        )
        parts.append(long_by_model(wide, [name], spec.levels))
        if on_progress is not None:
            on_progress(len(group))
    return pd.concat(parts, ignore_index=True) if parts else empty_forecast(spec.levels)


def forecast(
    df: pd.DataFrame,
    spec: ForecastSpec,
    selection: pd.DataFrame | None = None,
    model: str = "auto",
    on_progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """``spec.horizon`` future steps per series with calibrated prediction intervals, clipped to the bounds.

    ``model="auto"`` forecasts each series with the model its backtest selected: from ``selection`` (the
    ``forecast_accuracy`` rows: ``unique_id, model, calibration_<level>``) when given, otherwise selected
    here first (by ``spec.metric`` over ``spec.n_windows`` windows). A model name forecasts every series with
    that model where its tier offers it (cold-start series keep their fallback), its intervals calibrated by
    its own backtest.
    Extra input columns (tenant, metric, labels) are ignored; rows with NaN ``y`` are dropped. Returns
    ``unique_id, ds, yhat, lo_<level>, hi_<level>..., model`` sorted by unique_id, ds. ``on_progress(n)`` is
    called as groups of ``n`` series finish.
    """
    data = nixtla_frame(df)
    if data.empty:
        return empty_forecast(spec.levels)
    if selection is None:
        only = None if model == "auto" else [model]
        selection = select_models(data, spec, only=only, on_progress=on_progress)
    tiers = assign_tiers(data.groupby("unique_id").size(), spec.freq)
    chosen = dict(zip(selection["unique_id"], selection["model"], strict=True)) if model == "auto" else model
    raw = fit_predict(data, choose_models(tiers, chosen), tiers, spec, on_progress)
    calibrated = scale_intervals(raw, selection, spec.levels, spec.horizon)
    return bound_and_order(calibrated, spec)[forecast_columns(spec.levels)].sort_values(
        ["unique_id", "ds"], ignore_index=True
    )
