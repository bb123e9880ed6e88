"""Small DuckDB helpers shared by the warehouse IO manager, the quarantine, the alert log and the sensors."""

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pandas as pd

SCHEMA = "intentvision"


def arrow_frame(relation: duckdb.DuckDBPyRelation) -> pd.DataFrame:
    """A DuckDB result as a pandas frame, through Arrow.

    About twice as fast as ``fetchdf`` and with one Python object per distinct string, so the tenant, metric,
    labels and unique_id columns of millions of rows cost a pointer per cell instead of a string per cell.
    """
    return relation.to_arrow_table().to_pandas(coerce_temporal_nanoseconds=True)


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All statements inside commit together or not at all."""
    conn.begin()
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def table_exists(conn: duckdb.DuckDBPyConnection, table: str, schema: str = SCHEMA) -> bool:
    # fetchall, not fetchone: a half-read result blocks the connection's next ``sql()`` call in DuckDB 2.
    [(count,)] = conn.execute(
        "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?", [schema, table]
    ).fetchall()
    return count > 0
