"""One tenant's bad partition cannot fail another's night: a range run skips and reports it, keeps the
others' results, and a partition still warming up (one sample per series) waits instead of failing."""

from __future__ import annotations

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.runs import ingest_file, run_pipeline
from tests.conftest import settings_for

GOOD = "acme/node_cpu_utilization_percent"
BAD = "globex/node_cpu_utilization_percent"
NEW = "initech/node_cpu_utilization_percent"


def _csv(path, values) -> None:
    end = pd.Timestamp.now(tz="UTC").floor("h")
    stamps = pd.date_range(end=end, periods=len(values), freq="h").strftime("%Y-%m-%dT%H:%M:%SZ")
    pd.DataFrame(
        {"timestamp": stamps, "metric": "node_cpu_utilization_percent", "labels": "host=a", "value": values}
    ).to_csv(path, index=False)


@pytest.fixture(scope="module")
def mixed_night(tmp_path_factory):
    """A good, a bad (every value NaN) and a brand-new partition of three tenants, run as one range."""
    home = tmp_path_factory.mktemp("isolation")
    settings = settings_for(home / "home")
    defs = build_definitions(settings)
    for tenant, values in (
        ("acme", 40 + 10 * np.sin(np.arange(96) * 2 * np.pi / 24)),
        ("globex", ["nan"] * 5),
        ("initech", [42.0]),
    ):
        _csv(home / f"{tenant}.csv", values)
        ingest_file(home / f"{tenant}.csv", tenant, settings)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenant_metric", [GOOD, BAD, NEW])
    [outcome] = run_pipeline(defs, instance, [GOOD, BAD, NEW], one_run=True)
    return settings, defs, instance, outcome


def _metadata(instance, asset: str, run_id: str) -> dict:
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=100).records
    return next(r.asset_materialization.metadata for r in records if r.run_id == run_id)


def test_the_range_run_succeeds_and_the_good_partition_is_forecast(mixed_night):
    settings, _, _, outcome = mixed_night
    assert outcome.success
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        forecast_tenants = {
            t for (t,) in conn.execute("select distinct tenant from intentvision.forecasts").fetchall()
        }
        quarantined = conn.execute(
            "select tenant, rule, count(*) from intentvision.quarantine group by all"
        ).fetchall()
    assert forecast_tenants == {"acme"}
    assert quarantined == [("globex", "finite", 5)]


def test_the_bad_partition_is_reported_by_name_and_rule(mixed_night):
    _, _, instance, outcome = mixed_night
    skipped = _metadata(instance, "validated_series", outcome.run_id)["skipped_partitions"].value
    assert list(skipped) == [BAD]
    assert "no valid rows" in skipped[BAD] and "finite: 5" in skipped[BAD]


def test_a_partition_with_one_sample_is_warming_up(mixed_night):
    _, _, instance, outcome = mixed_night
    meta = _metadata(instance, "forecast_accuracy", outcome.run_id)
    assert meta["warming_up_partitions"].value == [NEW]


def test_a_single_bad_partition_run_still_fails_loudly(mixed_night):
    _, defs, instance, _ = mixed_night
    [outcome] = run_pipeline(defs, instance, [BAD])
    assert not outcome.success
    failure = next(
        e for e in instance.all_logs(outcome.run_id) if e.dagster_event and e.dagster_event.is_step_failure
    )
    assert "globex/node_cpu_utilization_percent" in failure.dagster_event.step_failure_data.error.message


def test_a_new_metrics_first_sample_run_succeeds(mixed_night):
    _, defs, instance, _ = mixed_night
    [outcome] = run_pipeline(defs, instance, [NEW])
    assert outcome.success
