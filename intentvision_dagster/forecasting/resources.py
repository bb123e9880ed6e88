"""Forecasting's Dagster resources: which backend forecasts, how models are selected, how to reach TimeGPT;
and the forecast chart alert messages carry."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from intentvision_dagster.chart_marks import SeriesMarks
from intentvision_dagster.forecasting.backends import BACKENDS, TimeGPTOptions
from intentvision_dagster.forecasting.backtest import METRICS
from intentvision_dagster.forecasting.holidays import load_tenant_holidays
from intentvision_dagster.forecasting.plots import forecast_plot_png
from intentvision_dagster.resources import AlertChart


class ForecastingConfig(dg.ConfigurableResource):
    """Which backend forecasts, how models are selected, and how to reach TimeGPT.

    ``backend`` is ``statsforecast`` (default), ``prophet`` or ``timegpt`` (needs ``nixtla_api_key``; on any
    API failure the statsforecast engine forecasts instead and the asset metadata says why).
    ``max_partition_points`` and ``tenant_points_per_run`` bound what one partition and one tenant may have
    modelled in a run (see :mod:`~intentvision_dagster.forecasting.limits`).
    """

    backend: str = "statsforecast"
    selection_metric: str = "mase"
    reselect_days: float = 7.0
    backtest_windows: int = 3
    max_partition_points: int = 10_000_000
    tenant_points_per_run: int = 50_000_000
    tenants_config: str | None = None
    nixtla_api_key: str | None = None
    nixtla_base_url: str | None = None
    timegpt_timeout_seconds: int = 60
    timegpt_max_retries: int = 3
    timegpt_retry_interval_seconds: int = 5

    def validated(self) -> ForecastingConfig:
        if self.backend not in BACKENDS:
            raise ValueError(f"forecast backend {self.backend!r} is not one of {list(BACKENDS)}")
        if self.backend == "timegpt" and not self.nixtla_api_key:
            raise ValueError("forecast backend 'timegpt' needs NIXTLA_API_KEY (set it or use statsforecast)")
        if self.selection_metric not in METRICS:
            raise ValueError(f"selection metric {self.selection_metric!r} is not one of {list(METRICS)}")
        return self

    def timegpt_options(self) -> TimeGPTOptions | None:
        if not self.nixtla_api_key:
            return None
        return TimeGPTOptions(
            api_key=self.nixtla_api_key,
            base_url=self.nixtla_base_url,
            timeout_seconds=self.timegpt_timeout_seconds,
            max_retries=self.timegpt_max_retries,
            retry_interval_seconds=self.timegpt_retry_interval_seconds,
        )

    def holidays_country(self, tenant: str) -> str | None:
        """The tenant's ``holidays_country`` from tenants.yaml (Prophet's holiday calendar), if any."""
        if not self.tenants_config:
            return None
        return load_tenant_holidays(Path(self.tenants_config)).get(tenant)


class ForecastChart(AlertChart):
    """A forecast alert's chart: the ``forecasts`` asset's plot, drawn for the alert's series only."""

    def png(
        self, scored: pd.DataFrame, forecasts: pd.DataFrame, marks: dict[str, SeriesMarks], unit: str
    ) -> bytes | None:
        if forecasts.empty:
            return None
        return forecast_plot_png(
            scored, forecasts, scored, marks, unit=unit, max_series=forecasts["unique_id"].nunique()
        )
