"""A full home folder gets one line naming the path, never a traceback."""

from __future__ import annotations

from click.testing import CliRunner

from intentvision_dagster.cli import main
from tests.support.full_disk import full_mount


def test_ingest_into_a_full_home_says_so_in_one_line(tmp_path, monkeypatch):
    source = tmp_path / "ok.csv"
    source.write_text(
        "timestamp,metric,labels,value\n2026-11-01T00:00:00Z,node_cpu_utilization_percent,host=a,1.5\n"
    )
    with full_mount(tmp_path / "disk") as fill:
        monkeypatch.setenv("INTENTVISION_HOME", str(tmp_path / "disk" / "home"))
        (tmp_path / "disk" / "home").mkdir()
        fill()
        result = CliRunner().invoke(main, ["ingest", str(source), "--tenant", "acme"])
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith("Error: cannot write ") and "No space left on device" in line
    assert str(tmp_path / "disk" / "home") in line
