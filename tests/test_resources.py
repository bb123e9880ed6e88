"""The warehouse IO manager: a partition's rows are replaced in one transaction, and a table written by an
older version of an asset takes the columns a newer version adds."""

from __future__ import annotations

import dagster as dg
import duckdb
import pandas as pd

from intentvision_dagster.resources import WarehouseIOManager


def materialize_table(database: str, frame: pd.DataFrame) -> None:
    @dg.asset(name="scores", key_prefix=["intentvision"])
    def scores() -> pd.DataFrame:
        return frame

    result = dg.materialize([scores], resources={"io_manager": WarehouseIOManager(database=database)})
    assert result.success


def test_a_table_from_an_older_version_gains_the_new_columns_and_keeps_its_order(tmp_path) -> None:
    database = str(tmp_path / "warehouse.duckdb")
    materialize_table(database, pd.DataFrame({"unique_id": ["a"], "mase": [0.9]}))
    newer = pd.DataFrame({"candidate_scores": ['{"MSTL": 0.8}'], "unique_id": ["b"], "mase": [0.8]})
    materialize_table(database, newer)
    with duckdb.connect(database, read_only=True) as conn:
        relation = conn.sql("select * from intentvision.scores")
        assert relation.columns == ["unique_id", "mase", "candidate_scores"]
        assert relation.fetchall() == [("b", 0.8, '{"MSTL": 0.8}')]
