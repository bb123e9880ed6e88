"""The ``intentvision`` command line: ingest refuses bad files whole, alerts list prints the log."""

from __future__ import annotations

import json

from click.testing import CliRunner

from intentvision_dagster.cli import main
from intentvision_dagster.settings import load_settings


def test_ingest_lands_a_good_file(tmp_path, monkeypatch):
    monkeypatch.setenv("INTENTVISION_HOME", str(tmp_path / "home"))
    source = tmp_path / "ok.csv"
    source.write_text(
        "timestamp,metric,labels,value\n2026-11-01T00:00:00Z,node_cpu_utilization_percent,host=a,1.5\n"
    )
    result = CliRunner().invoke(main, ["ingest", str(source), "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    assert "landed 1 rows for tenant acme" in result.output
    landed = list((load_settings().landing_dir / "acme").glob("*/node_cpu_utilization_percent.parquet"))
    assert len(landed) == 1


def test_ingest_refuses_a_bad_file_naming_line_and_column_and_stores_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("INTENTVISION_HOME", str(tmp_path / "home"))
    source = tmp_path / "bad.csv"
    source.write_text(
        "timestamp,metric,labels,value\n"
        "2026-11-01T00:00:00Z,node_cpu_utilization_percent,host=a,1.5\n"
        "2026-11-01T01:00:00Z,node_cpu_utilization_percent,host=a,abc\n"
    )
    result = CliRunner().invoke(main, ["ingest", str(source), "--tenant", "acme"])
    assert result.exit_code == 1
    assert "refused, nothing stored" in result.output
    assert "line 3" in result.output and "'value'" in result.output and "'abc'" in result.output
    landing = load_settings().landing_dir
    assert not landing.exists() or not any(landing.rglob("*.parquet"))


def test_alerts_list_json_on_an_empty_home_prints_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("INTENTVISION_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(main, ["alerts", "list", "--json"])
    assert result.exit_code == 0 and result.output == ""


def test_alerts_list_json_prints_one_object_per_alert(demo_world, monkeypatch):
    from intentvision_dagster.runs import tick_alert_sensor

    tick_alert_sensor(demo_world.defs, demo_world.instance)
    monkeypatch.setenv("INTENTVISION_HOME", str(demo_world.settings.home))
    result = CliRunner().invoke(main, ["alerts", "list", "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert records, "the demo raises alerts"
    assert set(records[0]) == {
        "id",
        "tenant",
        "metric",
        "series",
        "rule",
        "severity",
        "state",
        "dedup_key",
        "created_at",
        "delivered_at",
        "attempts",
        "destination",
    }
    assert all(r["state"] == "delivered" and r["destination"].startswith("outbox:") for r in records)
