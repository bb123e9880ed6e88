"""Forecast backends behind one call: statsforecast (default), Prophet per series, TimeGPT through nixtla.

:func:`run_backend` takes the engine's input (long frame and a :class:`~.spec.ForecastSpec`) and returns the
engine's output frame plus which backend produced it. A TimeGPT failure (bad key 401, rate limit 429, 5xx,
timeouts, unreachable) never fails the caller: the statsforecast engine forecasts instead and the reason is
returned for the asset metadata.

The top of the pure layers: it calls :func:`~intentvision_dagster.forecasting.forecast.forecast` as the
statsforecast backend and for the series too short for the others; only ``files.py``, ``defs.py`` and
``resources.py`` sit above it. Prophet, nixtla and httpx are imported where used: only their backend needs
them, so the default statsforecast path does not pay their import time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from intentvision_dagster.forecasting.forecast import forecast
from intentvision_dagster.forecasting.models import MIN_ETS_POINTS
from intentvision_dagster.forecasting.spec import (
    ForecastSpec,
    bound_and_order,
    empty_forecast,
    forecast_columns,
    interval_columns,
    nixtla_frame,
)
from intentvision_dagster.frequency import season_lengths

BACKENDS = ("statsforecast", "prophet", "timegpt")


@dataclass(frozen=True)
class TimeGPTOptions:
    """How to reach TimeGPT; retries and timeouts are the nixtla client's own."""

    api_key: str
    base_url: str | None = None
    model: str = "timegpt-1"
    timeout_seconds: int = 60
    max_retries: int = 3
    retry_interval_seconds: int = 5
    max_wait_seconds: int = 120


@dataclass(frozen=True)
class BackendRun:
    forecasts: pd.DataFrame
    backend: str
    """The backend whose forecasts these are (``statsforecast`` after a fallback)."""
    fallback_reason: str | None = None


def prophet_forecast(
    df: pd.DataFrame, spec: ForecastSpec, holidays_country: str | None = None
) -> pd.DataFrame:
    """Prophet per series: daily seasonality for sub-daily data, weekly always, optional country holidays.

    Intervals for every level come from one set of Prophet's predictive samples. Returns the engine's
    columns with ``model = "Prophet"``, unclipped.
    """
    from prophet import Prophet

    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    logging.getLogger("prophet").setLevel(logging.WARNING)
    sub_daily = bool(season_lengths(spec.freq)) and season_lengths(spec.freq)[0] > 7
    parts = []
    for uid, history in df.groupby("unique_id", sort=True):
        model = Prophet(daily_seasonality=sub_daily, weekly_seasonality=True, yearly_seasonality=False)
        if holidays_country:
            model.add_country_holidays(country_name=holidays_country)
        model.fit(history[["ds", "y"]])
        future = model.make_future_dataframe(periods=spec.horizon, freq=spec.freq, include_history=False)
        samples = model.predictive_samples(future)["yhat"]
        out = pd.DataFrame({"unique_id": uid, "ds": future["ds"], "yhat": model.predict(future)["yhat"]})
        for level in spec.levels:
            tail = (100 - level) / 2
            out[f"lo_{level}"] = np.percentile(samples, tail, axis=1)
            out[f"hi_{level}"] = np.percentile(samples, 100 - tail, axis=1)
        parts.append(out.assign(model="Prophet"))
    return pd.concat(parts, ignore_index=True) if parts else empty_forecast(spec.levels)


def timegpt_forecast(df: pd.DataFrame, spec: ForecastSpec, options: TimeGPTOptions) -> pd.DataFrame:
    """TimeGPT forecasts through ``nixtla.NixtlaClient``; raises the client's errors as they come."""
    from nixtla import NixtlaClient

    client = NixtlaClient(
        api_key=options.api_key,
        base_url=options.base_url,
        timeout=options.timeout_seconds,
        max_retries=options.max_retries,
        retry_interval=options.retry_interval_seconds,
        max_wait_time=options.max_wait_seconds,
    )
    out = client.forecast(df=df, h=spec.horizon, freq=spec.freq, level=list(spec.levels), model=options.model)
    renames = {"TimeGPT": "yhat"}
    for level in spec.levels:
        renames |= {f"TimeGPT-lo-{level}": f"lo_{level}", f"TimeGPT-hi-{level}": f"hi_{level}"}
    return out.rename(columns=renames).assign(model="TimeGPT")


def describe_failure(exc: BaseException) -> str:
    """A one-line reason for the metadata: the HTTP status and what it means, or the transport error."""
    import httpx

    status = getattr(exc, "status_code", None)
    if status == 401:
        return "TimeGPT rejected the API key (HTTP 401)"
    if status == 429:
        return "TimeGPT rate limit (HTTP 429) after the client's retries"
    if isinstance(status, int) and status >= 500:
        return f"TimeGPT server error (HTTP {status})"
    if isinstance(status, int):
        return f"TimeGPT answered HTTP {status}"
    if isinstance(exc, httpx.TimeoutException):
        return f"TimeGPT timed out ({type(exc).__name__})"
    return f"TimeGPT unreachable ({type(exc).__name__}: {exc})"


def _timegpt_errors() -> tuple[type[BaseException], ...]:
    import httpx
    from nixtla.nixtla_client import ApiError

    return ApiError, httpx.HTTPError


def run_backend(
    df: pd.DataFrame,
    spec: ForecastSpec,
    backend: str = "statsforecast",
    selection: pd.DataFrame | None = None,
    model: str = "auto",
    timegpt: TimeGPTOptions | None = None,
    holidays_country: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BackendRun:
    """Forecast with ``backend``; bounds and interval ordering are applied to every backend's output.

    ``selection`` and ``model`` are the statsforecast engine's (see
    :func:`~intentvision_dagster.forecasting.forecast.forecast`). Series too short for Prophet or TimeGPT
    (fewer than ``MIN_ETS_POINTS`` points) take the statsforecast engine's cold-start model instead.
    """
    if backend not in BACKENDS:
        raise ValueError(f"forecast backend {backend!r} is not one of {list(BACKENDS)}")
    if backend == "timegpt" and timegpt is None:
        raise ValueError("the timegpt backend needs an API key (NIXTLA_API_KEY)")
    data = nixtla_frame(df)

    def statsforecast(frame: pd.DataFrame) -> pd.DataFrame:
        return forecast(frame, spec, selection, model, on_progress)

    if backend == "statsforecast" or data.empty:
        return BackendRun(statsforecast(data), "statsforecast")
    sizes = data.groupby("unique_id")["y"].transform("size")
    long_enough, short = data[sizes >= MIN_ETS_POINTS], data[sizes < MIN_ETS_POINTS]
    try:
        if backend == "prophet":
            raw = prophet_forecast(long_enough, spec, holidays_country)
        else:
            raw = timegpt_forecast(long_enough, spec, timegpt)
    except _timegpt_errors() as exc:
        if backend != "timegpt":
            raise
        return BackendRun(statsforecast(data), "statsforecast", describe_failure(exc))
    tidy = bound_and_order(raw[["unique_id", "ds", "yhat", *interval_columns(spec.levels), "model"]], spec)
    parts = [tidy, statsforecast(short)] if not short.empty else [tidy]
    result = pd.concat(parts, ignore_index=True)[forecast_columns(spec.levels)]
    return BackendRun(result.sort_values(["unique_id", "ds"], ignore_index=True), backend)
