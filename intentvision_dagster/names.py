"""Names at the boundary: tenant ids, metric and label names, and the ``tenant/metric`` partition key.

Tenant ids are slugs and metric names follow the Prometheus grammar, so a key never contains ``,``, ``|``
or ``...`` (which Dagster reserves in partition keys). Plain Python: pure modules validate without Dagster.
"""

import re
from collections.abc import Iterable

from intentvision_dagster.errors import InputError, NotFoundError

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


def did_you_mean(value: str, known: Iterable[str], limit: int = 3) -> str:
    """``"; did you mean 'x'?"`` for the closest known names, or ``""``: a typo should cost one retry.

    Known names that start with ``value`` come first (a truncated key is the commonest slip, and difflib's
    ratio scores ``acme/node_cpu`` below its default cutoff against the full name), then difflib's matches.
    """
    import difflib  # only on the error path: names is imported by every command at start-up

    names = sorted(set(known))
    prefixed = [name for name in names if value and name.startswith(value)]
    close = difflib.get_close_matches(value, names, n=limit)
    matches = list(dict.fromkeys([*prefixed, *close]))[:limit]
    if not matches:
        return ""
    return f"; did you mean {' or '.join(repr(match) for match in matches)}?"


def require_known(kind: str, value: str, known: Iterable[str], hint: str = "") -> str:
    """``value`` if it is one of ``known``, else a :class:`NotFoundError` naming it and the nearest names."""
    names = set(known)
    if value in names:
        return value
    raise NotFoundError(f"unknown {kind} {value!r}{hint}{did_you_mean(value, names)}")
