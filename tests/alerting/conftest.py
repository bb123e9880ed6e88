from collections.abc import Iterator

import duckdb
import pytest


@pytest.fixture
def conn() -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh in-memory DuckDB: the alert tables are created by the code under test."""
    connection = duckdb.connect(":memory:")
    yield connection
    connection.close()
