"""Delta Lake storage for the distributed profile: one Delta table per asset under ``INTENTVISION_LAKE_URI``.

Each table is partitioned by ``partition_key`` (``tenant/metric``), so a run replaces exactly its partitions'
slice with one ``write_deltalake(mode="overwrite", predicate=...)``: the commit removes the slice's old files
and adds the new ones atomically, a rerun writes the same slice again (idempotent), and runs writing disjoint
partitions of one table commit side by side (delta-rs retries a commit that lost the race when the winner
touched other partitions). Reads go through Arrow datasets, so no DuckDB extension is downloaded at run time.
Frames come back as the DuckDB warehouse returns them (:func:`~intentvision_dagster.warehouse.arrow_frame`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from intentvision_dagster.warehouse import SCHEMA

PARTITION_COLUMN = "partition_key"
"""The column each Delta table is partitioned by: the Dagster partition key (``tenant/metric``) of a row."""


@dataclass(frozen=True)
class Lake:
    """Where the Delta tables live: a ``file://`` or ``s3://`` root and the object store's options."""

    uri: str
    storage_options: Mapping[str, str] = field(default_factory=dict)

    def table_uri(self, table: str) -> str:
        return f"{self.uri.rstrip('/')}/{table}"

    def table(self, table: str) -> DeltaTable | None:
        """The Delta table named ``table``, or None before its first write."""
        try:
            return DeltaTable(self.table_uri(table), storage_options=dict(self.storage_options) or None)
        except TableNotFoundError:
            return None


def s3_storage_options(
    region: str | None = None,
    endpoint_url: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
) -> dict[str, str]:
    """delta-rs storage options from the usual ``AWS_*`` settings (only those given).

    An ``http://`` endpoint (MinIO, moto, a local gateway) is allowed explicitly: the object store refuses
    plain HTTP otherwise.
    """
    options = {
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret_access_key,
        "AWS_SESSION_TOKEN": session_token,
    }
    if endpoint_url and endpoint_url.startswith("http://"):
        options["AWS_ALLOW_HTTP"] = "true"
    return {name: value for name, value in options.items() if value}


def sql_string(value: str) -> str:
    """``value`` as a SQL string literal (quotes doubled), for delta-rs predicates."""
    return "'" + value.replace("'", "''") + "'"


def slice_predicate(partition_keys: Sequence[str]) -> str:
    return f"{PARTITION_COLUMN} in ({', '.join(sql_string(key) for key in partition_keys)})"


def _arrow_for_delta(frame: pd.DataFrame, stored: pa.Schema | None) -> pa.Table:
    """``frame`` as Arrow, with columns Arrow could only type as null (all values missing) given the stored
    column's type, or string for a new column: Delta has no null type."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for index, column in enumerate(table.schema):
        if pa.types.is_null(column.type):
            target = (
                stored.field(column.name).type
                if stored is not None and column.name in stored.names
                else pa.string()
            )
            table = table.set_column(index, column.name, table.column(index).cast(target))
    return table


COMMIT_ATTEMPTS = 5
"""Commits tried per slice write. delta-rs itself retries a commit that raced writers of other partitions;
what it gives up on (two runs creating one table at once, two runs adding the same column) is tried again
from the table's new state, which is safe because the write replaces its slice whatever is there."""


def write_slice(
    lake: Lake, table: str, frame: pd.DataFrame, partition_keys: Sequence[str] | None
) -> DeltaTable | None:
    """Replace the rows of ``partition_keys`` in ``table`` by ``frame`` in one commit (the whole table when
    ``partition_keys`` is None). ``frame`` must carry :data:`PARTITION_COLUMN` with keys among
    ``partition_keys``; an empty frame deletes the slice. Columns the table lacks are added (old rows read
    them as null). Returns the table after the write (None when nothing was ever stored)."""
    if partition_keys is not None and not frame.empty:
        strays = set(frame[PARTITION_COLUMN].unique()) - set(partition_keys)
        if strays:
            raise ValueError(f"{table}: rows of partitions outside this write: {sorted(strays)[:5]}")
    for _ in range(COMMIT_ATTEMPTS - 1):
        try:
            return _replace_slice(lake, table, frame, partition_keys)
        except CommitFailedError:
            continue
    return _replace_slice(lake, table, frame, partition_keys)


def _replace_slice(
    lake: Lake, table: str, frame: pd.DataFrame, partition_keys: Sequence[str] | None
) -> DeltaTable | None:
    existing = lake.table(table)
    predicate = slice_predicate(partition_keys) if partition_keys is not None else None
    if frame.empty:
        if existing is not None:
            existing.delete(predicate)
        return existing
    stored_schema = pa.schema(existing.schema().to_arrow()) if existing is not None else None
    write_deltalake(
        lake.table_uri(table),
        _arrow_for_delta(frame, stored_schema),
        mode="overwrite",
        partition_by=[PARTITION_COLUMN],
        # With the predicate even on the first write: a concurrent creator's rows then survive the retry.
        predicate=predicate,
        schema_mode="merge" if existing is not None else None,
        storage_options=dict(lake.storage_options) or None,
    )
    return lake.table(table)


def stored_row_count(delta: DeltaTable | None) -> int:
    """Rows the table holds now, from the Delta log's per-file statistics (no data file is read)."""
    if delta is None:
        return 0
    actions = pa.table(delta.get_add_actions(flatten=True))
    return int(pc.sum(actions.column("num_records")).as_py() or 0)


def _frame(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(coerce_temporal_nanoseconds=True)


def read_slice(
    lake: Lake, table: str, partition_keys: Sequence[str] | None, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """The rows of ``partition_keys`` (all rows when None), in the columns asked for (all but the partition
    column by default). An empty frame without columns when the table does not exist yet, like the
    DuckDB warehouse before the first write."""
    delta = lake.table(table)
    if delta is None:
        return pd.DataFrame()
    data = delta.to_pyarrow_dataset()
    wanted = list(columns) if columns else [name for name in data.schema.names if name != PARTITION_COLUMN]
    row_filter = None if partition_keys is None else pads.field(PARTITION_COLUMN).isin(list(partition_keys))
    return _frame(data.to_table(columns=wanted, filter=row_filter))


def show_lake_tables(conn: duckdb.DuckDBPyConnection, lake: Lake, tables: Sequence[str]) -> None:
    """Make each Delta table of ``tables`` read as ``intentvision.<table>`` on ``conn``: a view over the
    table's Arrow dataset (its version as of this call, without the partition column), so the warehouse's
    SQL runs unchanged on the lake. A table not written yet has no view, as the warehouse has no table."""
    conn.execute(f"create schema if not exists {SCHEMA}")
    for name in tables:
        delta = lake.table(name)
        if delta is None:
            conn.execute(f'drop view if exists {SCHEMA}."{name}"')
            continue
        conn.register(f"lake_{name}", delta.to_pyarrow_dataset())
        conn.execute(
            f'create or replace view {SCHEMA}."{name}" as '
            f'select * exclude ({PARTITION_COLUMN}) from "lake_{name}"'
        )
