"""The pipeline's validation takes repeated timestamps: merged per the metric's kind, warned about with counts
only (a range run's log is shared by its tenants), never quarantined or refused."""

from __future__ import annotations

import dagster as dg
import duckdb
import pandas as pd

from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.jobs import PIPELINE_JOB_NAME
from intentvision_dagster.landing import land_batch
from intentvision_dagster.series import SERIES_COLUMNS, unique_id
from tests.conftest import settings_for

ACME = "acme/node_cpu_utilization_percent"
GLOBEX = "globex/node_cpu_utilization_percent"
METRIC = "node_cpu_utilization_percent"


def _rows(tenant: str, hours: list[int], values: list[float]) -> pd.DataFrame:
    start = pd.Timestamp.now().floor("h") - pd.Timedelta(hours=max(hours))
    labels = 'host="db-7"'
    return pd.DataFrame(
        {
            "tenant": tenant,
            "metric": METRIC,
            "labels": labels,
            "unique_id": unique_id(tenant, METRIC, labels),
            "ds": [start + pd.Timedelta(hours=h) for h in hours],
            "y": values,
        }
    )[SERIES_COLUMNS]


def test_a_range_run_merges_repeats_and_warns_with_counts_only(tmp_path) -> None:
    settings = settings_for(tmp_path / "home")
    settings.ensure_dirs()
    # acme's batch repeats 01:00 (a clock change: 61.5 and 63.5) and 02:00 exactly (a retried write), and
    # lists a row out of order, as a batch from an older version or another writer may.
    acme = _rows("acme", [0, 1, 2, 1, 2, 3], [60.0, 61.5, 70.0, 63.5, 70.0, 65.0]).iloc[[0, 1, 2, 5, 3, 4]]
    land_batch(acme, settings.landing_dir, "acme")
    land_batch(_rows("globex", [0, 1, 2, 3], [1.0, 2.0, 3.0, 4.0]), settings.landing_dir, "globex")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tenant_metric", [ACME, GLOBEX])
    job = build_definitions(settings).resolve_job_def(PIPELINE_JOB_NAME)
    result = job.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey("raw_series"), dg.AssetKey("validated_series")],
        tags={"dagster/asset_partition_range_start": ACME, "dagster/asset_partition_range_end": GLOBEX},
    )
    assert result.success
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        valid = conn.execute(
            "select tenant, hour(ds), y from intentvision.validated_series order by tenant, ds"
        ).fetchall()
        quarantined = conn.execute("select count(*) from intentvision.quarantine").fetchone()[0]
    hours = [h for tenant, h, _ in valid if tenant == "acme"]
    assert [y for tenant, _, y in valid if tenant == "acme"] == [60.0, 62.5, 70.0, 65.0]
    assert len(set(hours)) == 4 and quarantined == 0
    assert [y for tenant, _, y in valid if tenant == "globex"] == [1.0, 2.0, 3.0, 4.0]
    warnings = [
        record.user_message
        for record in instance.all_logs(result.run_id)
        if record.level == 30 and "repeated timestamp" in record.user_message
    ]
    assert warnings == [
        f"{ACME}: 1 series: 4 rows at 2 repeated timestamps merged into one row each "
        "(gauges: mean; 1 exact repeat)"
    ]
    assert "db-7" not in warnings[0] and "61.5" not in warnings[0], "counts only: no labels, no values"
    [record] = instance.fetch_materializations(dg.AssetKey("validated_series"), limit=10).records[:1]
    merged = record.asset_materialization.metadata["merged_repeats"].data
    assert merged == {ACME: warnings[0].split(": ", 1)[1]}
