"""Dagster resources: the DuckDB warehouse, project paths and configuration files, and alert delivery.

Which concrete resources run (Slack or the local outbox) is decided in ``definitions.py`` from
:mod:`intentvision_dagster.settings`; nothing here reads the environment.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
from dagster._core.storage.db_io_manager import DbIOManager, TableSlice
from dagster_duckdb.io_manager import DuckDbClient
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler

from intentvision_dagster.alerting.delivery import OutboxNotifier, SlackNotifier
from intentvision_dagster.alerting.rules import (
    Routing,
    Rule,
    RuleSet,
    load_routing,
    load_rule_set,
    load_rules,
)
from intentvision_dagster.catalog import MetricCatalog, load_catalog
from intentvision_dagster.forecasting.backends import BACKENDS, TimeGPTOptions
from intentvision_dagster.forecasting.backtest import METRICS
from intentvision_dagster.forecasting.holidays import load_tenant_holidays
from intentvision_dagster.warehouse import arrow_frame, table_exists, transaction


class _TransactionalDuckDbClient(DuckDbClient):
    """DuckDB client whose delete-then-insert of a partition commits as one transaction.

    dagster-duckdb deletes a partition's rows and inserts the new ones in autocommit mode, so a run killed in
    between would leave the partition empty. Wrapping both in one transaction keeps the previous good state.
    """

    @staticmethod
    @contextmanager
    def connect(context, table_slice) -> Iterator[duckdb.DuckDBPyConnection]:
        with DuckDbClient.connect(context, table_slice) as conn, transaction(conn):
            yield conn

    @staticmethod
    def delete_table_slice(context, table_slice: TableSlice, connection) -> None:
        # A failed DELETE on a missing table would abort the open transaction, so look before deleting.
        if table_exists(connection, table_slice.table, table_slice.schema):
            DuckDbClient.delete_table_slice(context, table_slice, connection)


def _aligned_to_table(conn: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` in the stored table's column order, after adding the columns the table lacks.

    dagster-duckdb inserts by position into an existing table; a newer version of an asset that gained
    columns (forecast_accuracy's candidate scores, say) would otherwise fail on a warehouse written before.
    """
    stored = conn.sql(f"select * from {table} limit 0").columns
    incoming = conn.from_df(frame.head(1))
    for name, dtype in zip(incoming.columns, incoming.types, strict=True):
        if name not in stored:
            conn.execute(f'alter table {table} add column "{name}" {dtype}')
    return frame.reindex(columns=[*stored, *(name for name in frame.columns if name not in stored)])


class _ArrowPandasTypeHandler(DuckDBPandasTypeHandler):
    def handle_output(self, context, table_slice: TableSlice, obj: pd.DataFrame, connection):
        if not obj.empty and table_exists(connection, table_slice.table, table_slice.schema):
            obj = _aligned_to_table(connection, f"{table_slice.schema}.{table_slice.table}", obj)
        return super().handle_output(context, table_slice, obj, connection)

    def load_input(self, context, table_slice: TableSlice, connection) -> pd.DataFrame:
        if table_slice.partition_dimensions and len(context.asset_partition_keys) == 0:
            return pd.DataFrame()
        return arrow_frame(connection.sql(DuckDbClient.get_select_statement(table_slice)))


class WarehouseIOManager(DuckDBPandasIOManager):
    """Stores each partitioned asset as a DuckDB table, replacing a partition's rows atomically."""

    @staticmethod
    def type_handlers() -> Sequence[DuckDBPandasTypeHandler]:
        return [_ArrowPandasTypeHandler()]

    def create_io_manager(self, context) -> DbIOManager:
        return DbIOManager(
            db_client=_TransactionalDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="WarehouseIOManager",
        )


class ProjectConfig(dg.ConfigurableResource):
    """Where the landing area and reports live, and which catalog and rules files apply."""

    landing_dir: str
    reports_dir: str
    metrics_catalog: str
    alert_rules: str
    model_jobs: int = 1
    tenant_rules_dir: str | None = None

    def catalog(self) -> MetricCatalog:
        return load_catalog(Path(self.metrics_catalog))

    def rules(self) -> list[Rule]:
        """The default rules (``alert_rules.yaml``); :meth:`rule_set` adds each tenant's own."""
        return load_rules(Path(self.alert_rules))

    def rule_set(self) -> RuleSet:
        return load_rule_set(
            Path(self.alert_rules), Path(self.tenant_rules_dir) if self.tenant_rules_dir else None
        )


class AlertDelivery(dg.ConfigurableResource):
    """Slack when a bot token is configured, else the local outbox under INTENTVISION_HOME."""

    outbox_path: str
    tenants_config: str
    slack_bot_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    timeout_seconds: int = 10
    dagster_ui_url: str = "http://127.0.0.1:3000"

    def routing(self) -> Routing:
        """Per-tenant channels, grouping, timing and inhibition, and the operator channel."""
        return load_routing(Path(self.tenants_config))

    def notifier(self) -> SlackNotifier | OutboxNotifier:
        if self.slack_bot_token:
            return SlackNotifier(
                token=self.slack_bot_token, base_url=self.slack_api_url, timeout=self.timeout_seconds
            )
        return OutboxNotifier(Path(self.outbox_path))


class ForecastingConfig(dg.ConfigurableResource):
    """Which backend forecasts, how models are selected, and how to reach TimeGPT.

    ``backend`` is ``statsforecast`` (default), ``prophet`` or ``timegpt`` (needs ``nixtla_api_key``; on any
    API failure the statsforecast engine forecasts instead and the asset metadata says why).
    """

    backend: str = "statsforecast"
    selection_metric: str = "mase"
    reselect_days: float = 7.0
    backtest_windows: int = 3
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
