"""Merges each domain's definitions and picks resources from the environment (see settings.py)."""

from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource

from intentvision_dagster.alerting import defs as alerting
from intentvision_dagster.anomalies import defs as anomalies
from intentvision_dagster.api import defs as api
from intentvision_dagster.forecasting import defs as forecasting
from intentvision_dagster.ingest import defs as ingest
from intentvision_dagster.quality import defs as quality
from intentvision_dagster.resources import AlertDelivery, ForecastingConfig, ProjectConfig, WarehouseIOManager
from intentvision_dagster.settings import (
    DEFAULT_SLACK_API_URL,
    NIXTLA_KEY_ENV,
    SLACK_TOKEN_ENV,
    Settings,
    load_settings,
)
from intentvision_dagster.warehouse import SCHEMA


def build_resources(settings: Settings) -> dict[str, object]:
    settings.ensure_dirs()
    return {
        "io_manager": WarehouseIOManager(database=str(settings.warehouse_path), schema=SCHEMA),
        "warehouse": DuckDBResource(database=str(settings.warehouse_path)),
        "project": ProjectConfig(
            landing_dir=str(settings.landing_dir),
            reports_dir=str(settings.reports_dir),
            metrics_catalog=str(settings.metrics_catalog),
            alert_rules=str(settings.alert_rules),
            model_jobs=settings.model_jobs,
            tenant_rules_dir=str(settings.tenant_rules_dir),
        ),
        "delivery": AlertDelivery(
            outbox_path=str(settings.outbox_path),
            tenants_config=str(settings.tenants_config),
            slack_bot_token=dg.EnvVar(SLACK_TOKEN_ENV) if settings.slack_token_set else None,
            slack_api_url=settings.slack_api_url or DEFAULT_SLACK_API_URL,
            dagster_ui_url=settings.dagster_ui_url,
        ),
        "prometheus_pull": api.PrometheusPull(
            sources_path=str(settings.prometheus_sources), landing_dir=str(settings.landing_dir)
        ),
        "forecasting": ForecastingConfig(
            backend=settings.forecast_backend,
            selection_metric=settings.selection_metric,
            reselect_days=settings.reselect_days,
            tenants_config=str(settings.tenants_config),
            nixtla_api_key=dg.EnvVar(NIXTLA_KEY_ENV) if settings.nixtla_key_set else None,
            nixtla_base_url=settings.nixtla_base_url,
        ),
    }


def build_definitions(settings: Settings) -> dg.Definitions:
    series_assets = [
        ingest.raw_series,
        quality.validated_series,
        anomalies.anomalies,
        forecasting.forecasts,
        forecasting.forecast_accuracy,
    ]
    pipeline = dg.define_asset_job(
        ingest.PIPELINE_JOB_NAME,
        selection=series_assets,
        partitions_def=ingest.series_partitions,
        executor_def=dg.in_process_executor,
        description="Ingest, validate, detect anomalies, forecast and backtest the selected partitions.",
    )
    return dg.Definitions(
        assets=series_assets,
        asset_checks=[quality.validated_series_expectations],
        jobs=[pipeline],
        schedules=[forecasting.build_nightly_schedule(settings.nightly_cron)],
        sensors=[
            ingest.landing_sensor,
            alerting.alert_sensor,
            alerting.run_failure_alert_sensor,
            api.prometheus_pull_sensor,
        ],
        resources=build_resources(settings),
    )


defs = build_definitions(load_settings())
