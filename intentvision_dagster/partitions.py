"""One dynamic partition per (tenant, metric) pair, holding every label-series of that metric.

Keys look like ``acme/node_cpu_utilization_percent`` (see :mod:`intentvision_dagster.names`).
"""

import dagster as dg

series_partitions = dg.DynamicPartitionsDefinition(name="tenant_metric")

PARTITION_EXPR = "tenant || '/' || metric"
"""SQL expression that rebuilds the partition key from a warehouse row (used by the DuckDB IO manager)."""


def series_asset(**kwargs):
    """``@dg.asset`` for the pipeline's tables: (tenant, metric)-partitioned, stored in the DuckDB warehouse.

    Single-run backfills let a partition range run as one vectorised run; the ``warehouse`` pool keeps DuckDB
    to one writing run at a time.
    """
    return dg.asset(
        partitions_def=series_partitions,
        metadata={"partition_expr": PARTITION_EXPR},
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="warehouse",
        group_name="series",
        **kwargs,
    )
