"""The Dagster side of the Delta Lake storage (:mod:`~intentvision_dagster.lake`), bound by ``definitions.py``
when ``INTENTVISION_LAKE_URI`` is set: the IO manager every asset is stored through, and the ``warehouse``
connection that the sensors and the assets' side reads use.

Only ``definitions.py`` imports this module, and only with a lake configured, so the embedded profile runs
without the ``distributed`` extra (``deltalake``) installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
import pandas as pd

from intentvision_dagster.lake import (
    PARTITION_COLUMN,
    Lake,
    read_slice,
    s3_storage_options,
    show_lake_tables,
    stored_row_count,
    write_slice,
)
from intentvision_dagster.resources import WarehouseResource, table_metadata

LAKE_TABLES = ("raw_series", "validated_series", "anomalies", "forecast_accuracy", "forecasts")
"""The asset tables the ``warehouse`` connection reads from the lake (the pipeline's assets)."""


class LakeStorage(dg.ConfigurableResource):
    """The lake root and the object store's credentials (secrets through ``dg.EnvVar``, never in config)."""

    uri: str
    aws_region: str | None = None
    aws_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None

    def lake(self) -> Lake:
        options = (
            s3_storage_options(
                self.aws_region,
                self.aws_endpoint_url,
                self.aws_access_key_id,
                self.aws_secret_access_key,
                self.aws_session_token,
            )
            if self.uri.startswith("s3")
            else {}
        )
        return Lake(self.uri, options)


def with_partition_column(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each row's partition key (``tenant/metric``): the column Delta tables are split by."""
    if frame.empty:
        return frame
    missing = {"tenant", "metric"} - set(frame.columns)
    if missing:
        raise ValueError(
            f"{table}: a lake table's rows need tenant and metric columns; missing {sorted(missing)}"
        )
    return frame.assign(**{PARTITION_COLUMN: frame["tenant"].astype(str) + "/" + frame["metric"].astype(str)})


class LakeIOManager(dg.ConfigurableIOManager):
    """Stores each asset as a Delta table; a run replaces exactly its partitions' slice in one commit, so runs
    of disjoint partitions write concurrently and a rerun (or a killed run) leaves no duplicate or half slice.

    Loads return what :class:`~intentvision_dagster.resources.WarehouseIOManager` returns for the same rows:
    the same columns and dtypes, an empty frame before the first write.
    """

    storage: LakeStorage

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        table = context.asset_key.path[-1]
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else None
        stored = write_slice(self.storage.lake(), table, with_partition_column(table, obj), keys)
        context.add_output_metadata(table_metadata(obj, stored_row_count(stored), "delta"))

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        if context.has_asset_partitions and not context.asset_partition_keys:
            return pd.DataFrame()
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else None
        columns = (context.definition_metadata or {}).get("columns")
        return read_slice(self.storage.lake(), context.asset_key.path[-1], keys, columns)


class LakeWarehouse(WarehouseResource):
    """The ``warehouse`` connection with a lake: the DuckDB file at ``database`` holds the transactional side
    tables (quarantine, alert log, groups, notifications, messages, silences), and the asset tables read from
    the lake under their usual ``intentvision.<table>`` names, so every SQL statement stays as it is."""

    storage: LakeStorage

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with super().get_connection() as conn:
            show_lake_tables(conn, self.storage.lake(), LAKE_TABLES)
            yield conn
