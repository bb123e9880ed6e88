"""Shared Dagster resources: the DuckDB warehouse IO manager, project paths, and the seams between domains
(the breach threshold a forecast plot draws, the chart an alert message carries).

Domain resources (alert delivery and rules, forecasting backends) live in each domain's ``resources.py``;
``definitions.py`` picks them from :mod:`intentvision_dagster.settings`. Nothing here reads the environment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
from dagster._core.storage.db_io_manager import DbIOManager, TableSlice
from dagster_duckdb import DuckDBResource
from dagster_duckdb.io_manager import DuckDbClient
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler

from intentvision_dagster.catalog import MetricCatalog, load_catalog
from intentvision_dagster.chart_marks import SeriesMarks
from intentvision_dagster.prometheus_export import (
    BREACH_COLUMNS,
    RemoteWriteTarget,
    Sample,
    anomaly_samples,
    breach_samples,
    forecast_samples,
    parse_horizon,
    publish,
    tenant_targets,
)
from intentvision_dagster.warehouse import arrow_frame, table_exists, transaction, writer_intent


class _TransactionalDuckDbClient(DuckDbClient):
    """DuckDB client whose delete-then-insert of a partition commits as one transaction.

    dagster-duckdb deletes a partition's rows and inserts the new ones in autocommit mode, so a run killed in
    between would leave the partition empty. Wrapping both in one transaction keeps the previous good state.
    """

    @staticmethod
    @contextmanager
    def connect(context, table_slice) -> Iterator[duckdb.DuckDBPyConnection]:
        with (
            writer_intent(context.resource_config["database"]),
            DuckDbClient.connect(context, table_slice) as conn,
            transaction(conn),
        ):
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


def table_metadata(written: pd.DataFrame, stored_rows: int, storage_kind: str) -> dict[str, object]:
    """A stored asset's materialization metadata: ``dagster/row_count`` (the rows the table holds now, all
    partitions), ``dagster/partition_row_count`` (the rows this materialization wrote: its partition, or its
    range's partitions), the storage kind and the frame's columns."""
    columns = [dg.TableColumn(name=str(name), type=str(dtype)) for name, dtype in written.dtypes.items()]
    return {
        "dagster/row_count": stored_rows,
        "dagster/partition_row_count": len(written),
        "dagster/storage_kind": storage_kind,
        "dataframe_columns": dg.MetadataValue.table_schema(dg.TableSchema(columns=columns)),
    }


class _ArrowPandasTypeHandler(DuckDBPandasTypeHandler):
    def handle_output(self, context, table_slice: TableSlice, obj: pd.DataFrame, connection):
        """Insert the frame (creating the table on first write) and record :func:`table_metadata`.
        dagster-duckdb would set only one of the two row counts, which one depending on whether the run was a
        single-partition or a range run."""
        table = f"{table_slice.schema}.{table_slice.table}"
        exists = table_exists(connection, table_slice.table, table_slice.schema)
        if not obj.empty:
            if exists:
                obj = _aligned_to_table(connection, table, obj)
                connection.execute(f"insert into {table} select * from obj")
            else:
                connection.execute(f"create table {table} as select * from obj")
                exists = True
        stored = connection.execute(f"select count(*) from {table}").fetchone()[0] if exists else 0
        context.add_output_metadata(table_metadata(obj, stored, "duckdb"))

    def load_input(self, context, table_slice: TableSlice, connection) -> pd.DataFrame:
        if table_slice.partition_dimensions and len(context.asset_partition_keys) == 0:
            return pd.DataFrame()
        if not table_exists(connection, table_slice.table, table_slice.schema):
            # Nothing stored yet: an upstream output was empty (every partition still warming up).
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


class WarehouseResource(DuckDBResource):
    """A read-write DuckDB connection that announces itself first, so API readers step aside for it."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with writer_intent(self.database), super().get_connection() as conn:
            yield conn


class ProjectConfig(dg.ConfigurableResource):
    """Where the landing area and reports live, which metric catalog applies, and where models are fitted.

    ``model_jobs`` shares of each partition's series are fitted at once: in a local forkserver pool, or on
    the Dask cluster at ``dask_address`` (the distributed profile; ``local`` starts a ``LocalCluster`` of
    ``model_jobs`` workers for the step), each share retried ``dask_retries`` times.
    """

    landing_dir: str
    reports_dir: str
    metrics_catalog: str
    model_jobs: int = 1
    dask_address: str | None = None
    dask_retries: int = 3

    def catalog(self) -> MetricCatalog:
        return load_catalog(Path(self.metrics_catalog))


class BreachThresholds(dg.ConfigurableResource):
    """What a tenant's rules draw on a metric's forecast chart (threshold and budget lines, expected crossings
    per series) and the breach outlook the forecasts publish to Prometheus (nothing here).

    Alerting binds its rule-backed subclass (``AlertRules``) under the same key, so a chart shows the lines
    that apply to the tenant, and Prometheus gets the probability the alert rules judge by, without the
    forecasting domain reading alert rules itself.
    """

    def marks(
        self, tenant: str, metric: str, forecasts: pd.DataFrame, history: pd.DataFrame
    ) -> dict[str, SeriesMarks]:
        return {}


class AlertChart(dg.ConfigurableResource):
    """The chart an alert message carries for some series of one partition (none here).

    The domain that draws the chart binds its subclass under its own key (forecasting for forecast alerts,
    anomalies for anomaly alerts), so alerting attaches the charts on-call knows from the asset pages without
    importing either domain. ``scored`` holds the series' rows of the ``anomalies`` table (every point with
    its flags), ``forecasts`` their rows of the ``forecasts`` table, ``marks`` what the tenant's rules draw
    per series (threshold lines, expected crossings; see ``BreachThresholds.marks``), ``unit`` the metric's.
    """

    def png(
        self, scored: pd.DataFrame, forecasts: pd.DataFrame, marks: dict[str, SeriesMarks], unit: str
    ) -> bytes | None:
        return None

    def breach_outlook(self, forecasts: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
        """Per series, breach rule and severity level, the probability of reaching the line within the
        rule's horizon and the expected crossing (``prometheus_export.BREACH_COLUMNS``), from ``forecasts``
        and the modelled ``history`` (``unique_id, ds, y``) they continue."""
        return pd.DataFrame(columns=BREACH_COLUMNS)


class PrometheusExport(dg.ConfigurableResource):
    """Where forecasts and anomaly scores are remote-written after each run (off while ``remote_write_url``
    is empty); the series and their PromQL are described in :mod:`~intentvision_dagster.prometheus_export`.

    An export failure never fails the asset: it is logged, listed per tenant in the materialization's
    metadata (``prometheus_export_failures``), and the next run writes fresh values.
    """

    remote_write_url: str = ""
    username: str | None = None
    password: str | None = None
    bearer_token: str | None = None
    timeout_seconds: float = 10.0
    horizons: str = "1h,24h"
    """Comma-separated forecast horizons to publish (``horizon`` label values), e.g. ``1h,24h,3d``."""
    tenants_config: str = ""
    """tenants.yaml, where a tenant may name its own endpoint (``prometheus_remote_write``)."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        for horizon in self.horizon_list():
            parse_horizon(horizon)  # a bad horizon fails the run at start, naming the value

    def horizon_list(self) -> list[str]:
        return [part.strip() for part in self.horizons.split(",") if part.strip()]

    def publish_forecasts(
        self, log, forecasts: pd.DataFrame, breaches: Callable[[], pd.DataFrame]
    ) -> dict[str, dg.MetadataValue]:
        """Publish this run's forecasts (the frame holds only freshly fitted series) and their breach
        outlook (:data:`~intentvision_dagster.prometheus_export.BREACH_COLUMNS`, computed only when the
        export is on)."""
        return self._publish(
            log, lambda: forecast_samples(forecasts, self.horizon_list()) + breach_samples(breaches())
        )

    def publish_anomalies(self, log, scored: Sequence[pd.DataFrame]) -> dict[str, dg.MetadataValue]:
        """Publish the newest scores of the partitions scored in this run."""
        return self._publish(log, lambda: [s for frame in scored for s in anomaly_samples(frame)])

    def _publish(self, log, samples: Callable[[], list[Sample]]) -> dict[str, dg.MetadataValue]:
        own = tenant_targets(Path(self.tenants_config)) if self.tenants_config else {}
        default = (
            RemoteWriteTarget(
                url=self.remote_write_url,
                headers={"Authorization": f"Bearer {self.bearer_token}"} if self.bearer_token else {},
                auth=(self.username, self.password or "") if self.username else None,
                timeout_seconds=self.timeout_seconds,
            )
            if self.remote_write_url
            else None
        )
        if default is None and not own:
            return {}
        written, failures = publish(own, default, samples(), at_ms=int(time.time() * 1000))
        for tenant, reason in failures.items():
            log.warning(f"Prometheus export of tenant {tenant} failed; the next run writes again: {reason}")
        return {
            "prometheus_samples_written": written,
            "prometheus_export_failures": dg.MetadataValue.json(failures),
        }
