"""The command line reports any IntentVisionError as one ``Error: ...`` line and the error's exit code."""

from __future__ import annotations

import click
from click.testing import CliRunner

from intentvision_dagster import series_files
from intentvision_dagster.cli import IntentVisionGroup, main
from intentvision_dagster.errors import InputError, IntentVisionError


class _Teapot(IntentVisionError):
    exit_code = 42


def test_an_error_raised_in_a_nested_command_becomes_one_line_and_its_exit_code():
    @click.group(cls=IntentVisionGroup)
    def root() -> None:
        pass

    @root.group()
    def inner() -> None:
        pass

    @inner.command()
    def brew() -> None:
        raise _Teapot("the pot is a teapot")

    result = CliRunner().invoke(root, ["inner", "brew"])
    assert (result.exit_code, result.output) == (42, "Error: the pot is a teapot\n")


def test_a_domain_error_under_a_real_command_is_reported_without_a_traceback(tmp_path, monkeypatch):
    def refuse(path):
        raise InputError(f"{path.name} line 7, column 'y': 'abc' is not a finite number")

    monkeypatch.setattr(series_files, "read_series", refuse)
    source = tmp_path / "in.csv"
    source.write_text("timestamp,value\n")
    result = CliRunner().invoke(
        main, ["detect", "--input", str(source), "--output", str(tmp_path / "out.csv")]
    )
    assert result.exit_code == 1
    assert result.output == "Error: in.csv line 7, column 'y': 'abc' is not a finite number\n"
    assert not (tmp_path / "out.csv").exists()


def test_registry_refusals_keep_their_messages(tmp_path, monkeypatch):
    monkeypatch.setenv("INTENTVISION_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    assert runner.invoke(main, ["tenants", "create", "acme"]).exit_code == 0
    cases = {
        ("tenants", "create", "acme"): "Error: tenant 'acme' already exists\n",
        ("tenants", "create", "Acme!"): "Error: tenant 'Acme!' is not a valid tenant id",
        ("keys", "create", "--tenant", "acme", "--scopes", "root"): "Error: scopes 'root': use a",
        ("keys", "revoke", "000000000000"): "Error: unknown key id '000000000000'\n",
    }
    for args, message in cases.items():
        result = runner.invoke(main, list(args))
        assert result.exit_code == 1 and result.output.startswith(message), (args, result.output)
        assert len(result.output.splitlines()) == 1
