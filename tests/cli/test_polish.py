"""What a newcomer meets first: --version, the alert list, near-miss names, help examples, an empty home and
tenants without a Slack channel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import click
import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

from intentvision_dagster.alerting.log import latest_alerts, mark_failed, record
from intentvision_dagster.cli import main
from intentvision_dagster.names import did_you_mean
from intentvision_dagster.settings import load_settings
from tests.alerting.test_log import candidate, frame

T0 = pd.Timestamp("2026-01-05 02:00")
EMPTY_HOME_LINE = (
    "run `make demo`, or `intentvision ingest FILE --tenant T` then `intentvision run --all`, first"
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INTENTVISION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("INTENTVISION_TENANTS", raising=False)
    return tmp_path / "home"


@pytest.fixture
def logged(home: Path) -> list[str]:
    """Four alerts an hour apart (acme db-1..db-3, globex db-4); db-2 failed. Their ids, oldest first."""
    settings = load_settings()
    settings.ensure_dirs()
    ids = []
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        for hour, (host, tenant) in enumerate(
            [("db-1", "acme"), ("db-2", "acme"), ("db-3", "acme"), ("db-4", "globex")]
        ):
            ids += record(conn, frame(candidate(host, tenant)), T0 + pd.Timedelta(hours=hour))["id"].tolist()
        mark_failed(conn, [ids[1]], "boom", T0 + pd.Timedelta(hours=5))
    return ids


def _metric_file(folder: Path) -> Path:
    """A one-row metric file ``intentvision ingest`` accepts."""
    source = folder / "ok.csv"
    source.write_text(
        "timestamp,metric,labels,value\n2026-11-01T00:00:00Z,node_cpu_utilization_percent,host=a,1.5\n"
    )
    return source


def _invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args))


def test_version_is_the_installed_package_version():
    result = _invoke("--version")
    assert (result.exit_code, result.output) == (0, f"intentvision {version('intentvision')}\n")


def test_latest_alerts_filters_orders_newest_first_and_counts_what_it_cut(logged):
    with duckdb.connect(str(load_settings().warehouse_path)) as conn:
        page = latest_alerts(conn, tenant="acme", limit=2)
        assert page.alerts["id"].tolist() == [logged[2], logged[1]] and (page.total, page.more) == (3, 1)
        assert latest_alerts(conn, state="failed").alerts["id"].tolist() == [logged[1]]
        with pytest.raises(ValueError, match="unknown alert state 'open'"):
            latest_alerts(conn, state="open")


def test_alerts_list_has_a_header_filters_and_says_how_many_more(logged):
    result = _invoke("alerts", "list", "--limit", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CREATED", "(UTC)", "SEVERITY", "STATE", "TENANT", "SUMMARY"]
    assert [line.split()[-3] for line in lines[1:3]] == ["db-4", "db-3"]  # newest first
    assert lines[3] == "... 2 more (older); raise --limit or filter with --tenant/--state"
    failed = _invoke("alerts", "list", "--state", "failed", "--tenant", "acme").stdout.splitlines()
    assert len(failed) == 2 and "failed" in failed[1] and "db-2" in failed[1]
    assert _invoke("alerts", "list", "--state", "open").exit_code == 2  # not one of the log's states
    records = [json.loads(line) for line in _invoke("alerts", "list", "--json").stdout.splitlines()]
    assert [r["id"] for r in records] == logged[::-1]


def test_unknown_partition_suggests_the_close_keys(home, monkeypatch):
    known = ["acme/node_cpu_utilization_percent", "acme/node_memory_usage_percent"]
    instance = SimpleNamespace(get_dynamic_partitions=lambda name: known)
    monkeypatch.setattr("intentvision_dagster.cli.pipeline.instance_and_defs", lambda: (instance, None))
    result = _invoke("run", "--partition", "acme/node_cpu")
    assert result.exit_code == 1
    assert result.output == (
        "Error: unknown partition 'acme/node_cpu'; did you mean 'acme/node_cpu_utilization_percent'?\n"
    )
    assert did_you_mean("zzz", known) == ""


def test_unknown_rule_and_tenant_suggest_the_close_names(home):
    rule = _invoke("alerts", "test-rule", "disk-capcity", "--tenant", "acme")
    assert rule.exit_code == 1 and "no rule 'disk-capcity' for tenant 'acme'; known: " in rule.output
    assert rule.output.rstrip().endswith("did you mean 'disk-capacity'?")
    tenant = _invoke("alerts", "test-rule", "disk-capacity", "--tenant", "acmee")
    assert tenant.exit_code == 1 and tenant.output.startswith(
        "Error: unknown tenant 'acmee' (not in tenants.yaml"
    )
    assert tenant.output.rstrip().endswith("did you mean 'acme'?")
    silence = ["alerts", "silence", "create", "--tenant", "globx", "--matcher", "a=b", "--duration", "1h"]
    created = _invoke(*silence, "--comment", "x")
    assert created.exit_code == 1 and "unknown tenant 'globx'" in created.output
    assert created.output.rstrip().endswith("did you mean 'globex'?")
    assert _invoke("tenants", "create", "initech").exit_code == 0
    key = _invoke("keys", "create", "--tenant", "initek")
    assert key.exit_code == 1 and key.output.startswith("Error: unknown tenant 'initek' (create it with")
    assert key.output.rstrip().endswith("did you mean 'initech'?")


def _command_paths(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and group under ``group``, as the words that invoke it."""
    for name, command in group.commands.items():
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _command_paths(command, (*path, name))


def test_every_help_shows_examples_that_name_real_commands():
    for path in [(), *_command_paths(main)]:
        text = _invoke(*path, "--help").output
        assert "Examples:" in text, path
        examples = text.split("Examples:")[1].split("\n\n")[0].strip().splitlines()
        assert 1 <= len(examples) <= 3, (path, examples)
        for example in examples:
            assert example.strip().startswith(f"intentvision {' '.join(path)}".rstrip()), (path, example)


def test_an_empty_home_says_what_to_run_first(home):
    table = _invoke("alerts", "list")
    assert table.exit_code == 0 and table.stdout == "no alerts\n"
    assert table.stderr == f"no warehouse in {home} (INTENTVISION_HOME): {EMPTY_HOME_LINE}\n"
    assert _invoke("alerts", "list", "--json").output == ""
    silences = _invoke("alerts", "silence", "list")
    assert (silences.exit_code, silences.stdout) == (0, "no silences\n")
    assert EMPTY_HOME_LINE in silences.stderr and _invoke("alerts", "silence", "list", "--json").output == ""
    for args in (("alerts", "tick"), ("alerts", "test-rule", "disk-capacity", "--tenant", "acme")):
        result = _invoke(*args)
        assert result.exit_code == 1 and result.output == f"Error: {table.stderr}", args
    assert not load_settings().warehouse_path.exists()


def test_a_tenant_without_a_slack_channel_is_warned_about_at_ingest_and_in_the_alert_list(
    home, tmp_path, monkeypatch
):
    source = _metric_file(tmp_path)
    prefix = "warning: tenant 'foo' has no slack_channel in assets/tenants.yaml: its alerts "
    landed = _invoke("ingest", str(source), "--tenant", "foo")
    assert landed.exit_code == 0 and landed.stdout.startswith("landed 1 rows for tenant foo")
    assert landed.stderr == (
        f"{prefix}go to the local outbox for now (SLACK_BOT_TOKEN is unset), but will be marked failed, "
        "not delivered, once Slack is configured\n"
    )
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    assert _invoke("ingest", str(source), "--tenant", "foo").stderr == (
        f"{prefix}will be marked failed, not delivered\n"
    )
    assert _invoke("ingest", str(source), "--tenant", "acme").stderr == ""
    with duckdb.connect(str(load_settings().warehouse_path)) as conn:
        record(conn, frame(candidate("db-1", "foo"), candidate("db-1", "acme")), T0)
    listed = _invoke("alerts", "list")
    assert listed.exit_code == 0 and listed.stderr == f"{prefix}will be marked failed, not delivered\n"


def test_a_broken_tenants_file_does_not_fail_an_ingest_that_landed(home, tmp_path, monkeypatch):
    source = _metric_file(tmp_path)
    (tmp_path / "tenants.yaml").write_text("tenants: [acme]\n")
    monkeypatch.setenv("INTENTVISION_TENANTS", str(tmp_path / "tenants.yaml"))
    landed = _invoke("ingest", str(source), "--tenant", "acme")
    assert landed.exit_code == 0 and landed.stderr.startswith("warning: cannot check Slack channels: ")
