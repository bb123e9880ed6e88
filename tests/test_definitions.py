"""The code location loads and holds the assets, checks, jobs, schedule and sensors the product promises."""

from __future__ import annotations

import dagster as dg

from intentvision_dagster.definitions import build_definitions, defs
from intentvision_dagster.jobs import nightly_run_requests
from tests.conftest import settings_for


def test_definitions_load_and_validate():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == {
        "raw_series",
        "validated_series",
        "anomalies",
        "forecasts",
        "forecast_accuracy",
    }
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert checks == {
        *(("validated_series", name) for name in ("completeness", "freshness", "value_range", "not_null")),
        ("forecasts", "capacity"),
        ("anomalies", "open_anomalies"),
    }
    # Every pipeline run evaluates the checks of its assets, the alert-status checks included.
    assert (
        defs.resolve_job_def("series_pipeline").asset_layer.asset_graph.asset_check_keys
        == graph.asset_check_keys
    )
    assert {s.name for s in defs.sensors} == {
        "landing_sensor",
        "alert_sensor",
        "run_failure_alert_sensor",
        "orphaned_run_sweeper",
        "prometheus_pull_sensor",
    }


def test_nightly_schedule_runs_at_two_utc_by_default_and_is_configurable(tmp_path):
    [schedule] = build_definitions(settings_for(tmp_path)).schedules
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "UTC"
    [custom] = build_definitions(settings_for(tmp_path, INTENTVISION_NIGHTLY_CRON="30 4 * * *")).schedules
    assert custom.cron_schedule == "30 4 * * *"


def test_nightly_covers_every_partition_in_a_bounded_number_of_range_runs():
    keys = [f"t{i // 50}/metric_{i}" for i in range(1234)]
    requests = nightly_run_requests(keys, per_run=500)
    assert len(requests) == 3
    covered = []
    for request in requests:
        start = keys.index(request.tags["dagster/asset_partition_range_start"])
        end = keys.index(request.tags["dagster/asset_partition_range_end"])
        covered.extend(keys[start : end + 1])
    assert covered == keys


def test_nightly_schedule_requests_ranges_from_the_instance(tmp_path):
    definitions = build_definitions(settings_for(tmp_path))
    [schedule] = definitions.schedules
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant_metric", ["acme/a", "acme/b", "globex/c"])
        result = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
    [request] = result.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "acme/a"
    assert request.tags["dagster/asset_partition_range_end"] == "globex/c"


def test_assets_carry_descriptions_groups_kinds_and_owners(tmp_path):
    graph = build_definitions(
        settings_for(tmp_path, INTENTVISION_ASSET_OWNERS="team:sre, oncall@example.com")
    ).resolve_asset_graph()
    expected = {
        "raw_series": ("ingest", {"duckdb", "pandas"}),
        "validated_series": ("quality", {"duckdb", "pandas"}),
        "anomalies": ("anomalies", {"duckdb", "pandas"}),
        "forecast_accuracy": ("forecasting", {"duckdb", "statsforecast", "utilsforecast"}),
        "forecasts": ("forecasting", {"duckdb", "statsforecast"}),
    }
    for name, (group, kinds) in expected.items():
        node = graph.get(dg.AssetKey(name))
        owners = ["team:sre", "oncall@example.com"]
        assert (node.group_name, node.kinds, node.owners) == (group, kinds, owners)
        assert len(node.description or "") > 40
    default = defs.resolve_asset_graph().get(dg.AssetKey("forecasts"))
    assert default.owners == ["team:intentvision"]
    graph = defs.resolve_asset_graph()
    descriptions = {key.name: graph.get_check_spec(key).description for key in graph.asset_check_keys}
    assert descriptions["freshness"].startswith("Each series' newest point is younger than")
    assert all(descriptions.values())
