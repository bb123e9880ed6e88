"""One dynamic partition per (tenant, metric) pair, holding every label-series of that metric.

Keys look like ``acme/node_cpu_utilization_percent`` (see :mod:`intentvision_dagster.names`).
"""

import warnings
from collections.abc import Callable

import dagster as dg
import duckdb
import pandas as pd
from dagster_duckdb import DuckDBResource

from intentvision_dagster.warehouse import SCHEMA, arrow_frame, table_exists

series_partitions = dg.DynamicPartitionsDefinition(name="tenant_metric")

PARTITION_EXPR = "tenant || '/' || metric"
"""SQL expression that rebuilds the partition key from a warehouse row (used by the DuckDB IO manager)."""


def series_asset(**kwargs) -> Callable[[Callable], dg.AssetsDefinition]:
    """``@dg.asset`` for the pipeline's tables: (tenant, metric)-partitioned, stored in the DuckDB warehouse,
    in the asset group named after the domain that defines it (``ingest``, ``quality``, ``anomalies``,
    ``forecasting``).

    Single-run backfills let a partition range run as one vectorised run; the ``warehouse`` pool keeps DuckDB
    to one writing run at a time. ``backfill_policy`` is marked beta in dagster 1.13 and says so on every
    import; that warning is kept off the console here, where the pinned version's behaviour is tested.
    """

    def decorate(fn: Callable) -> dg.AssetsDefinition:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy")
            return dg.asset(
                partitions_def=series_partitions,
                metadata={"partition_expr": PARTITION_EXPR},
                backfill_policy=dg.BackfillPolicy.single_run(),
                pool="warehouse",
                group_name=fn.__module__.split(".")[-2],
                **kwargs,
            )(fn)

    return decorate


def stored_rows(conn: duckdb.DuckDBPyConnection, table: str, keys: list[str]) -> pd.DataFrame:
    """The rows ``table`` holds for these partitions now (empty if none or no table yet)."""
    if not keys or not table_exists(conn, table):
        return pd.DataFrame()
    relation = conn.sql(
        f"select * from {SCHEMA}.{table} where {PARTITION_EXPR} in (select unnest(?))", params=[keys]
    )
    return arrow_frame(relation)


def keep_failed_partitions(
    context: dg.AssetExecutionContext, failed: dict[str, str], succeeded: int, warehouse: DuckDBResource
) -> tuple[list[pd.DataFrame], dict[str, dg.MetadataValue]]:
    """Report the partitions whose work failed and return their stored rows (a list of at most one frame, to
    concatenate with the others' results), so they keep their last good state instead of being emptied by
    the IO manager's replace of the run's partitions.

    Each one is logged as an error naming its key and reason and listed under ``skipped_partitions`` in the
    materialization's metadata. When nothing succeeded the step fails (a run that did nothing must fail, and
    its run-failure alert reaches the operator channel), which is also a single-partition run's behaviour.
    """
    if not failed:
        return [], {}
    if not succeeded:
        raise dg.Failure(
            description="; ".join(f"{key}: {reason}" for key, reason in failed.items()),
            metadata={"failed_partitions": dg.MetadataValue.json(failed)},
        )
    for key, reason in failed.items():
        context.log.error(f"partition {key} skipped, its previous rows kept: {reason}")
    with warehouse.get_connection() as conn:
        kept = stored_rows(conn, context.asset_key.path[-1], list(failed))
    return [kept] if len(kept) else [], {"skipped_partitions": dg.MetadataValue.json(failed)}
