"""The ``intentvision`` command line: ingest refuses bad files whole, alerts list prints the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from intentvision_dagster.cli import main
from intentvision_dagster.landing import read_landed
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
        "group_id",
        "silence_id",
        "inhibited_by",
    }
    assert all(r["destination"].startswith("outbox:") and r["delivered_at"] for r in records)
    assert all(r["group_id"] for r in records)


def test_silence_create_list_expire(tmp_path, monkeypatch):
    monkeypatch.setenv("INTENTVISION_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    created = runner.invoke(
        main,
        [
            "alerts",
            "silence",
            "create",
            "--tenant",
            "acme",
            "--matcher",
            "host=db-1",
            "--matcher",
            "alertname=~disk-.*",
            "--duration",
            "2h",
            "--comment",
            "resizing the volume",
        ],
    )
    assert created.exit_code == 0, created.output
    silence_id = created.output.split()[1]
    assert "for tenant acme: host=db-1 alertname=~disk-.* from" in created.output
    listed = runner.invoke(main, ["alerts", "silence", "list", "--json"])
    (record,) = [json.loads(line) for line in listed.output.splitlines()]
    assert (record["id"], record["state"], record["matchers"]) == (
        silence_id,
        "active",
        ["host=db-1", "alertname=~disk-.*"],
    )
    assert runner.invoke(main, ["alerts", "silence", "list", "--tenant", "globex"]).output == "no silences\n"
    expired = runner.invoke(main, ["alerts", "silence", "expire", silence_id])
    assert expired.exit_code == 0 and f"silence {silence_id} of tenant acme ended at" in expired.output
    assert runner.invoke(main, ["alerts", "silence", "list"]).output == "no silences\n"
    assert silence_id in runner.invoke(main, ["alerts", "silence", "list", "--all"]).output


def test_silence_errors_are_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("INTENTVISION_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    base = ["alerts", "silence", "create", "--tenant", "acme", "--comment", "x"]
    bad = runner.invoke(main, [*base, "--matcher", "host", "--duration", "1h"])
    assert bad.exit_code == 1 and "matcher 'host' is not of the form name=value" in bad.output
    both = runner.invoke(main, [*base, "--matcher", "host=a"])
    assert both.exit_code == 2 and "give exactly one of --duration or --ends" in both.output
    tenant = runner.invoke(
        main, [*base[:3], "--tenant", "Acme!", "--comment", "x", "--matcher", "a=b", "--duration", "1h"]
    )
    assert tenant.exit_code == 1 and "'Acme!' is not a valid tenant id" in tenant.output
    missing = runner.invoke(main, ["alerts", "silence", "expire", "nope"])
    assert missing.exit_code == 1 and "no silence with id 'nope'" in missing.output


def test_test_rule_prints_what_would_fire_and_sends_nothing(demo_world, monkeypatch):
    monkeypatch.setenv("INTENTVISION_HOME", str(demo_world.settings.home))
    outbox = demo_world.settings.outbox_path
    before = outbox.read_text() if outbox.exists() else ""
    result = CliRunner().invoke(main, ["alerts", "test-rule", "disk-capacity", "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1] == (
        "rule 'disk-capacity' (forecast_breach) on 5 partition(s) of tenant acme: 1 alert(s) would fire; "
        "nothing was sent"
    )
    assert lines[0].startswith('critical firing  node_filesystem_usage_percent{host="db-1",')
    assert "expected to cross 90 %" in lines[0]
    globex = CliRunner().invoke(
        main, ["alerts", "test-rule", "disk-capacity", "--tenant", "globex", "--json"]
    )
    assert globex.exit_code == 0 and globex.output == ""
    unknown = CliRunner().invoke(main, ["alerts", "test-rule", "nope", "--tenant", "acme"])
    assert unknown.exit_code == 1 and "no rule 'nope' for tenant 'acme'; known: " in unknown.output
    assert (outbox.read_text() if outbox.exists() else "") == before


def test_detect_scores_a_csv_in_input_order(tmp_path):
    stamps = pd.date_range("2026-01-05", periods=28 * 24, freq="h")
    values = 50 + 30 * np.sin(2 * np.pi * (np.arange(len(stamps)) - 8) / 24)
    values += np.random.default_rng(0).normal(0, 1, len(stamps))
    values[20 * 24 + 3] += 60
    frame = pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": values.round(3)})
    frame = frame.sample(frac=1, random_state=0)
    frame.to_csv(tmp_path / "in.csv", index=False)
    result = CliRunner().invoke(
        main, ["detect", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv")]
    )
    assert result.exit_code == 0, result.output
    assert "scored 672 rows of 1 series (season length 24, sensitivity medium)" in result.output
    out = pd.read_csv(tmp_path / "out.csv", dtype={"timestamp": str})
    assert list(out["timestamp"]) == list(frame["timestamp"])
    assert out.loc[out["is_anomaly"], "timestamp"].tolist() == ["2026-01-25T03:00:00Z"]


def test_detect_shows_progress_on_many_series_and_names_bad_columns(tmp_path):
    stamps = pd.date_range("2026-01-05", periods=48, freq="h").strftime("%Y-%m-%dT%H:%M:%SZ")
    many = pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(60)], 48), "ds": np.tile(stamps, 60)})
    many.assign(y=1.0).to_csv(tmp_path / "many.csv", index=False)
    runner = CliRunner()
    args = ["detect", "--input", str(tmp_path / "many.csv"), "--output", str(tmp_path / "out.csv")]
    result = runner.invoke(main, [*args, "--sensitivity", "high", "--season-length", "24"])
    assert result.exit_code == 0, result.output
    assert (
        "scoring series" in result.output
        and "of 60 series (season length 24, sensitivity high)" in result.output
    )
    many.to_csv(tmp_path / "many.csv", index=False)
    result = runner.invoke(main, args)
    assert result.exit_code == 1 and "many.csv: missing column(s) 'y'" in result.output


def test_ingest_then_run_all_works_without_the_daemon(tmp_path):
    """The newcomer's path: nothing registered the landed partition yet, `run --all` does it itself."""
    env = {**os.environ, "INTENTVISION_HOME": str(tmp_path / "home")}
    env.pop("DAGSTER_HOME", None)
    cli = [sys.executable, "-c", "from intentvision_dagster.cli import main; main()"]
    source = tmp_path / "cpu.csv"
    source.write_text(
        "timestamp,metric,labels,value\n"
        "2026-12-03T06:00:00Z,node_cpu_utilization_percent,host=web-1,41.5\n"
        "2026-12-03T07:00:00Z,node_cpu_utilization_percent,host=web-1,43.0\n"
        "2026-12-03T08:00:00Z,node_cpu_utilization_percent,host=web-1,47.5\n"
    )
    subprocess.run(
        [*cli, "ingest", str(source), "--tenant", "myteam"], env=env, check=True, capture_output=True
    )
    result = subprocess.run([*cli, "run", "--all"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[1/1] myteam/node_cpu_utilization_percent: ok" in result.stdout


def test_ingest_takes_repeated_and_out_of_order_rows_with_a_warning(tmp_path, monkeypatch):
    """A clock change repeating 01:00 (40 and 50), a retried write (02:00 twice), rows out of order."""
    monkeypatch.setenv("INTENTVISION_HOME", str(tmp_path / "home"))
    source = tmp_path / "dst.csv"
    metric = "node_cpu_utilization_percent"
    source.write_text(
        "timestamp,metric,labels,value\n"
        f"2026-10-25T02:00:00Z,{metric},host=a,60\n"
        f"2026-10-25T00:00:00Z,{metric},host=a,30\n"
        f"2026-10-25T01:00:00Z,{metric},host=a,40\n"
        f"2026-10-25T01:00:00Z,{metric},host=a,50\n"
        f"2026-10-25T02:00:00Z,{metric},host=a,60\n"
    )
    result = CliRunner().invoke(main, ["ingest", str(source), "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    assert (
        "warning: dst.csv: 1 series: 4 rows at 2 repeated timestamps merged into one row each "
        '(gauges: mean; 1 exact repeat), e.g. acme/node_cpu_utilization_percent{host="a"} at '
        "2026-10-25 01:00:00; 1 row out of order put in time order"
    ) in result.output
    assert "landed 5 rows for tenant acme" in result.output
    landed = read_landed(load_settings().landing_dir, "acme", metric)
    assert sorted(landed["y"].tolist()) == [30.0, 40.0, 50.0, 60.0, 60.0], "landed as read: validation merges"


def test_detect_takes_a_repeated_hour_and_rows_out_of_order(tmp_path):
    """A file repeating an hour at a clock change, with a retried row, shuffled: every row is scored."""
    stamps = pd.date_range("2026-01-05", periods=28 * 24, freq="h")
    values = 50 + 30 * np.sin(2 * np.pi * (np.arange(len(stamps)) - 8) / 24)
    values += np.random.default_rng(0).normal(0, 1, len(stamps))
    frame = pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": values.round(3)})
    repeated_hour = frame.iloc[[500]].assign(value=frame["value"].iloc[500] + 2)
    retried = frame.iloc[[600]]
    frame = pd.concat([frame, repeated_hour, retried]).sample(frac=1, random_state=0)
    frame.to_csv(tmp_path / "in.csv", index=False)
    result = CliRunner().invoke(
        main, ["detect", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv")]
    )
    assert result.exit_code == 0, result.output
    assert (
        "warning: in.csv: 1 series: 4 rows at 2 repeated timestamps merged into one row each "
        "(gauges: mean; 1 exact repeat)" in result.output
    )
    assert (
        "rows out of order put in time order; each input row gets the verdict of its timestamp"
        in result.output
    )
    assert "scored 674 rows of 1 series" in result.output
    out = pd.read_csv(tmp_path / "out.csv", dtype={"timestamp": str})
    assert list(out["timestamp"]) == list(frame["timestamp"]) and len(out) == 674
    for stamp in (frame["timestamp"].iloc[0], stamps[500].strftime("%Y-%m-%dT%H:%M:%SZ")):
        same = out[out["timestamp"] == stamp]
        assert same[["anomaly_score", "severity", "is_anomaly"]].nunique().max() == 1


def test_detect_takes_the_nab_files_that_repeat_an_hour(tmp_path):
    """NAB's ec2_disk_write_bytes_1ef3de repeats 2014-03-09 03:00 twelve times (the US clock change)."""
    nab = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"
    path = nab / "data" / "realAWSCloudwatch" / "ec2_disk_write_bytes_1ef3de.csv"
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared NAB data is not mounted)")
    result = CliRunner().invoke(main, ["detect", "--input", str(path), "--output", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    assert "12 rows at 1 repeated timestamp merged into one row each (gauges: mean; 11 exact repeats)" in (
        result.output
    )
    assert len(pd.read_csv(tmp_path / "out.csv")) == len(pd.read_csv(path))
