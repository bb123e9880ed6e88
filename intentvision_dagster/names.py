"""Names at the boundary: tenant ids, metric and label names, and the ``tenant/metric`` partition key.

Tenant ids are slugs and metric names follow the Prometheus grammar, so a key never contains ``,``, ``|``
or ``...`` (which Dagster reserves in partition keys). Plain Python: pure modules validate without Dagster.
"""

import re

from intentvision_dagster.errors import InputError

# Use these with ``fullmatch``: ``match`` lets ``$`` accept a trailing newline ("acme\n" is not a tenant).
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
METRIC_PATTERN = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$")
LABEL_NAME_PATTERN = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class InvalidNameError(InputError):
    """A tenant id, metric name or partition key that breaks the grammar above."""


def validate_tenant(tenant: str) -> str:
    if not isinstance(tenant, str) or not TENANT_PATTERN.fullmatch(tenant):
        raise InvalidNameError(
            f"tenant {tenant!r} is not a valid tenant id: use lowercase letters, digits and '-', "
            "starting with a letter or digit, at most 63 characters"
        )
    return tenant


def validate_metric(metric: str) -> str:
    if not isinstance(metric, str) or not METRIC_PATTERN.fullmatch(metric):
        raise InvalidNameError(
            f"metric {metric!r} is not a valid metric name: use letters, digits, '_' and ':', "
            "not starting with a digit (the Prometheus metric-name rule)"
        )
    return metric


def partition_key(tenant: str, metric: str) -> str:
    return f"{validate_tenant(tenant)}/{validate_metric(metric)}"


def split_partition_key(key: str) -> tuple[str, str]:
    tenant, sep, metric = key.partition("/")
    if not sep:
        raise InvalidNameError(f"partition key {key!r} is not of the form tenant/metric")
    return validate_tenant(tenant), validate_metric(metric)
