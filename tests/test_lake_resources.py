"""The lake's Dagster side: LakeIOManager stores and loads like the DuckDB warehouse IO manager, and the whole
pipeline on Delta tables gives the embedded profile's forecasts and alerts."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from intentvision_dagster.alerting.log import list_alerts
from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.demo_data import write_demo_files
from intentvision_dagster.lake_resources import LakeIOManager, LakeStorage
from intentvision_dagster.partitions import PARTITION_EXPR
from intentvision_dagster.resources import WarehouseIOManager
from intentvision_dagster.runs import ingest_file, register_partitions, run_pipeline, tick_alert_sensor
from intentvision_dagster.settings import ASSETS_DIR
from intentvision_dagster.warehouse import SCHEMA, arrow_frame
from tests.conftest import DEMO_END, settings_for

KEYS = ["acme/cpu", "o'brien/disk"]


def stored_and_loaded(io_manager: dg.IOManagerDefinition, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Materialize ``frame`` as a two-partition asset in one range run; return what a downstream asset
    loads from it and the upstream materialization's metadata."""
    partitions = dg.StaticPartitionsDefinition(KEYS)
    loaded = {}

    @dg.asset(
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        metadata={"partition_expr": PARTITION_EXPR},
    )
    def scores() -> pd.DataFrame:
        return frame

    @dg.asset(partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run())
    def reader(scores: pd.DataFrame) -> None:
        loaded["frame"] = scores

    tags = {"dagster/asset_partition_range_start": KEYS[0], "dagster/asset_partition_range_end": KEYS[-1]}
    instance = dg.DagsterInstance.ephemeral()
    resources = {"io_manager": io_manager}
    result = dg.materialize([scores, reader], resources=resources, tags=tags, instance=instance)
    assert result.success
    [record] = instance.fetch_materializations(dg.AssetKey("scores"), limit=1).records
    return loaded["frame"], record.asset_materialization.metadata


def test_the_lake_io_manager_loads_what_the_warehouse_io_manager_loads(tmp_path) -> None:
    frame = pd.DataFrame(
        {
            "unique_id": ["acme/cpu{h=1}", "acme/cpu{h=1}", "o'brien/disk{}"],
            "ds": pd.to_datetime(["2026-01-01 00:00", "2026-01-01 01:00", "2026-01-01 00:00"]),
            "y": [1.5, None, 3.0],
            "tenant": ["acme", "acme", "o'brien"],
            "metric": ["cpu", "cpu", "disk"],
            "labels": ['{"h": "1"}', '{"h": "1"}', "{}"],
            "is_anomaly": [False, True, False],
            "n_windows": [3, 3, 2],
            "selected_at": pd.to_datetime(["2026-01-02 10:00:01"] * 3),
        }
    )
    duck, duck_meta = stored_and_loaded(WarehouseIOManager(database=str(tmp_path / "w.duckdb")), frame)
    lake_io = LakeIOManager(storage=LakeStorage(uri=f"file://{tmp_path}/lake"))
    lake, lake_meta = stored_and_loaded(lake_io, frame)

    order = ["unique_id", "ds"]
    pd.testing.assert_frame_equal(
        lake.sort_values(order, ignore_index=True), duck.sort_values(order, ignore_index=True)
    )
    assert lake_meta["dagster/storage_kind"].value == "delta"
    for name in ("dagster/row_count", "dagster/partition_row_count"):
        assert lake_meta[name].value == duck_meta[name].value == 3


@pytest.mark.slow
def test_the_pipeline_on_delta_tables_gives_the_embedded_forecasts_and_alerts(tmp_path) -> None:
    outputs = {}
    for profile, env in {
        "embedded": {},
        "lake": {"INTENTVISION_LAKE_URI": f"file://{tmp_path}/lake"},
    }.items():
        settings = settings_for(tmp_path / profile, **env)
        defs = build_definitions(settings)
        instance = dg.DagsterInstance.ephemeral()
        files = write_demo_files(ASSETS_DIR / "demo" / "series.yaml", DEMO_END, settings.home / "demo")
        keys = register_partitions(instance, [ingest_file(path, path.stem, settings) for path in files])
        keys = [key for key in keys if key.startswith("acme/")][:3]
        for _ in range(2):  # the second run replaces the same slice
            [outcome] = run_pipeline(defs, instance, keys, one_run=True)
            assert outcome.success
        tick_alert_sensor(defs, instance)
        with defs.resources["warehouse"].get_connection() as conn:
            outputs[profile] = {
                table: arrow_frame(conn.sql(f"select * from {SCHEMA}.{table}")).sort_values(
                    ["unique_id", "ds"], ignore_index=True
                )
                for table in ("forecasts", "anomalies", "validated_series")
            } | {"alerts": list_alerts(conn)[["tenant", "metric", "rule", "state"]]}
        [record] = instance.fetch_materializations(dg.AssetKey("forecasts"), limit=1).records
        assert record.asset_materialization.metadata["dagster/row_count"].value == len(
            outputs[profile]["forecasts"]
        )

    embedded, lake = outputs["embedded"], outputs["lake"]
    assert len(embedded["forecasts"]) > 0 and embedded["forecasts"]["tenant"].eq("acme").all()
    for table in ("forecasts", "anomalies", "validated_series"):
        pd.testing.assert_frame_equal(lake[table], embedded[table])
    pd.testing.assert_frame_equal(lake["alerts"], embedded["alerts"])


def test_a_frame_without_tenant_and_metric_is_refused_with_its_table() -> None:
    from intentvision_dagster.lake_resources import with_partition_column

    with pytest.raises(ValueError, match=r"scores: .*; missing \['metric', 'tenant'\]"):
        with_partition_column("scores", pd.DataFrame({"y": [1.0]}))
    assert with_partition_column("scores", pd.DataFrame()).empty
