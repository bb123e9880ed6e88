"""Names at the boundary: a name is valid only as a whole (no trailing newline, no prefix match)."""

import re

import pytest

from intentvision_dagster.names import partition_key, split_partition_key, validate_metric, validate_tenant
from intentvision_dagster.series import canonical_labels


@pytest.mark.parametrize("tenant", ["acme\n", "acme\n\n", "acme!", "Acme", "-acme", ""])
def test_a_tenant_id_with_anything_outside_the_slug_grammar_is_refused(tenant: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"tenant {tenant!r} is not a valid tenant id")):
        validate_tenant(tenant)


@pytest.mark.parametrize("metric", ["node_cpu\n", "node cpu", "9lives", "node-cpu", ""])
def test_a_metric_name_outside_the_prometheus_grammar_is_refused(metric: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"metric {metric!r} is not a valid metric name")):
        validate_metric(metric)


def test_a_label_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="label name"):
        canonical_labels({"host\n": "web-1"})


def test_partition_keys_round_trip() -> None:
    assert split_partition_key(partition_key("acme", "node_cpu")) == ("acme", "node_cpu")
    with pytest.raises(ValueError, match="not a valid tenant id"):
        split_partition_key("acme\n/node_cpu")
