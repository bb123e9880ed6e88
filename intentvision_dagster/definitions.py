"""Merges each domain's definitions and picks resources from the environment (see settings.py)."""

from __future__ import annotations

import dagster as dg

from intentvision_dagster.alerting import defs as alerting
from intentvision_dagster.alerting.resources import AlertDelivery, AlertRules
from intentvision_dagster.anomalies import defs as anomalies
from intentvision_dagster.forecasting import defs as forecasting
from intentvision_dagster.forecasting.resources import ForecastingConfig
from intentvision_dagster.ingest import defs as ingest
from intentvision_dagster.jobs import build_nightly_schedule, orphaned_run_sweeper, pipeline_job
from intentvision_dagster.quality import defs as quality
from intentvision_dagster.resources import (
    ProjectConfig,
    PrometheusExport,
    WarehouseIOManager,
    WarehouseResource,
)
from intentvision_dagster.settings import (
    DEFAULT_SLACK_API_URL,
    NIXTLA_KEY_ENV,
    REMOTE_WRITE_PASSWORD_ENV,
    REMOTE_WRITE_TOKEN_ENV,
    SLACK_TOKEN_ENV,
    Settings,
    load_settings,
)
from intentvision_dagster.warehouse import SCHEMA


def build_resources(settings: Settings) -> dict[str, object]:
    settings.ensure_dirs()
    return {
        "io_manager": WarehouseIOManager(database=str(settings.warehouse_path), schema=SCHEMA),
        "warehouse": WarehouseResource(database=str(settings.warehouse_path)),
        "project": ProjectConfig(
            landing_dir=str(settings.landing_dir),
            reports_dir=str(settings.reports_dir),
            metrics_catalog=str(settings.metrics_catalog),
            model_jobs=settings.model_jobs,
        ),
        "alert_rules": AlertRules(
            alert_rules=str(settings.alert_rules), tenant_rules_dir=str(settings.tenant_rules_dir)
        ),
        "delivery": AlertDelivery(
            outbox_path=str(settings.outbox_path),
            tenants_config=str(settings.tenants_config),
            slack_bot_token=dg.EnvVar(SLACK_TOKEN_ENV) if settings.slack_token_set else None,
            slack_api_url=settings.slack_api_url or DEFAULT_SLACK_API_URL,
            dagster_ui_url=settings.dagster_ui_url,
        ),
        "prometheus_pull": ingest.PrometheusPull(
            sources_path=str(settings.prometheus_sources), landing_dir=str(settings.landing_dir)
        ),
        "forecasting": ForecastingConfig(
            backend=settings.forecast_backend,
            selection_metric=settings.selection_metric,
            reselect_days=settings.reselect_days,
            max_partition_points=settings.max_partition_points,
            tenant_points_per_run=settings.tenant_points_per_run,
            tenants_config=str(settings.tenants_config),
            nixtla_api_key=dg.EnvVar(NIXTLA_KEY_ENV) if settings.nixtla_key_set else None,
            nixtla_base_url=settings.nixtla_base_url,
        ),
        "prometheus": PrometheusExport(
            remote_write_url=settings.remote_write_url,
            username=settings.remote_write_username,
            password=dg.EnvVar(REMOTE_WRITE_PASSWORD_ENV) if settings.remote_write_password_set else None,
            bearer_token=dg.EnvVar(REMOTE_WRITE_TOKEN_ENV) if settings.remote_write_token_set else None,
            timeout_seconds=settings.remote_write_timeout,
            horizons=settings.export_horizons,
            tenants_config=str(settings.tenants_config),
        ),
    }


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=dg.map_asset_specs(
            lambda spec: spec.replace_attributes(owners=list(settings.asset_owners)),
            [
                ingest.raw_series,
                quality.validated_series,
                anomalies.anomalies,
                forecasting.forecast_accuracy,
                forecasting.forecasts,
            ],
        ),
        asset_checks=[quality.validated_series_expectations, alerting.alert_status],
        jobs=[pipeline_job],
        schedules=[build_nightly_schedule(settings.nightly_cron)],
        sensors=[
            ingest.landing_sensor,
            ingest.prometheus_pull_sensor,
            alerting.alert_sensor,
            alerting.run_failure_alert_sensor,
            orphaned_run_sweeper,
        ],
        resources=build_resources(settings),
    )


defs = build_definitions(load_settings())
