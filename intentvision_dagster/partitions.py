"""One dynamic partition per (tenant, metric) pair, holding every label-series of that metric.

Keys look like ``acme/node_cpu_utilization_percent``. Tenant ids are slugs and metric names follow the
Prometheus grammar, so a key never contains ``,``, ``|`` or ``...`` (which Dagster reserves).
"""

from __future__ import annotations

import re

import dagster as dg

TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
METRIC_PATTERN = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$")
LABEL_NAME_PATTERN = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

series_partitions = dg.DynamicPartitionsDefinition(name="tenant_metric")

PARTITION_EXPR = "tenant || '/' || metric"
"""SQL expression that rebuilds the partition key from a warehouse row (used by the DuckDB IO manager)."""


def validate_tenant(tenant: str) -> str:
    if not isinstance(tenant, str) or not TENANT_PATTERN.match(tenant):
        raise ValueError(
            f"tenant {tenant!r} is not a valid tenant id: use lowercase letters, digits and '-', "
            "starting with a letter or digit, at most 63 characters"
        )
    return tenant


def validate_metric(metric: str) -> str:
    if not isinstance(metric, str) or not METRIC_PATTERN.match(metric):
        raise ValueError(
            f"metric {metric!r} is not a valid metric name: use letters, digits, '_' and ':', "
            "not starting with a digit (the Prometheus metric-name rule)"
        )
    return metric


def partition_key(tenant: str, metric: str) -> str:
    return f"{validate_tenant(tenant)}/{validate_metric(metric)}"


def split_partition_key(key: str) -> tuple[str, str]:
    tenant, sep, metric = key.partition("/")
    if not sep:
        raise ValueError(f"partition key {key!r} is not of the form tenant/metric")
    return validate_tenant(tenant), validate_metric(metric)
