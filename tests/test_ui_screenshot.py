"""Where on-call looks, in a real browser: after the demo's run, the link of the capacity alert opens the
`forecasts` partition page in the Dagster UI (`make ui`'s webserver), which shows the partition and, one
click further, the forecast chart; the partition's `capacity` check shows the critical series and its
crossing time. Headless Chromium renders the pages; without it the test skips (`make chromium`)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import dagster as dg
import httpx
import pandas as pd
import pytest

from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.demo import DEMO_CONFIG
from intentvision_dagster.demo_data import write_demo_files
from intentvision_dagster.runs import ingest_file, register_partitions, run_pipeline, tick_alert_sensor
from intentvision_dagster.settings import PROJECT_ROOT, Settings
from tests.conftest import DEMO_END, settings_for
from tests.support.api_server import free_port, serving
from tests.support.browser import Page, headless_chromium, require_chromium

pytestmark = pytest.mark.slow
PARTITION = "acme/node_filesystem_usage_percent"
"""The demo's series bound to fill its disk: the one partition with a capacity alert."""


def _breach_alert(outbox: Path) -> dict:
    """The capacity alert the demo sent (the outbox holds what Slack would have got)."""
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    sent = [line["payload"] for line in lines if line["action"] == "post"]  # not the chart lines
    [alert] = [a for p in sent for a in p.get("firing", []) if a["details"]["kind"] == "forecast_breach"]
    return alert


def _click(page: Page, expression: str, what: str) -> None:
    """Click the element ``expression`` finds, once it is there."""
    page.wait_for(f"!!({expression})", what)
    page.evaluate(f"({expression}).click()")


def _by_text(text: str, elements: str = "body *") -> str:
    """JavaScript finding the last of ``elements`` whose own text is exactly ``text`` (a check's tab comes
    after the asset's tab of the same name)."""
    return (
        f"Array.from(document.querySelectorAll({json.dumps(elements)}))"
        f".filter(e => e.innerText?.trim() === {json.dumps(text)}).at(-1)"
    )


@pytest.fixture
def demo_home(tmp_path: Path) -> tuple[Settings, int]:
    """`make demo`'s steps on its data into a scratch home, for the capacity alert's partition only (the
    whole demo takes minutes on a busy machine): every demo file landed and its partitions registered in a
    persistent instance, the partition's run, one alert sensor tick. Alert links point at the port the
    webserver will take."""
    require_chromium()  # before the run
    port = free_port()
    settings = settings_for(tmp_path / "home", INTENTVISION_DAGSTER_UI_URL=f"http://127.0.0.1:{port}")
    settings.ensure_dirs()
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", settings.dagster_home / "dagster.yaml")
    defs = build_definitions(settings)
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        files = write_demo_files(DEMO_CONFIG, DEMO_END, settings.home / "demo")
        register_partitions(instance, [ingest_file(path, path.stem, settings) for path in files])
        [outcome] = run_pipeline(defs, instance, [PARTITION])
        assert outcome.success
        tick_alert_sensor(defs, instance)
    return settings, port


@pytest.fixture
def webserver(tmp_path: Path, demo_home) -> str:
    """`make ui`'s webserver on the demo's home; stopped after the test, whatever happened."""
    settings, port = demo_home
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "INTENTVISION_HOME": str(settings.home), "DAGSTER_HOME": str(settings.dagster_home)}
    command = [
        sys.executable,
        "-m",
        "dagster_webserver",
        "-w",
        "workspace.yaml",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with serving(
        command,
        tmp_path / "webserver.log",
        url,
        "/server_info",
        "dagster-webserver",
        120,
        cwd=PROJECT_ROOT,
        env=env,
    ) as started:
        # A person who dismissed Dagster's "Join the community" dialog once: it would cover the page.
        assert httpx.post(f"{started}/graphql", json={"query": "mutation { setNuxSeen }"}).is_success
        yield started


def test_the_alert_link_opens_the_partition_page_with_its_chart_and_capacity_check(
    tmp_path: Path, demo_home, webserver: str
):
    settings, _ = demo_home
    alert = _breach_alert(settings.outbox_path)
    assert (
        alert["url"]
        == f"{webserver}/assets/forecasts?view=partitions&partition=acme%2Fnode_filesystem_usage_percent"
    )
    assert alert["series"].startswith(f"{PARTITION}{{")

    with headless_chromium(tmp_path) as page:
        page.open(alert["url"])
        # The partition is selected and materialized; its metadata lists the plot.
        text = page.wait_for(
            "document.body.innerText.includes('plot_path') && document.body.innerText",
            "the partition's metadata",
        )
        assert f"{PARTITION}\nMaterialized" in text
        assert str(settings.reports_dir / "acme" / "node_filesystem_usage_percent.png") in text
        # Without a click: the series at risk and its expected crossing (UTC), the time the alert gives.
        expected = f"{pd.Timestamp(alert['details']['expected_ds']):%Y-%m-%d %H:%M}"
        [at_risk] = [line for line in text.splitlines() if line.startswith(f"{alert['series']}\t")]
        assert at_risk.split("\t")[1] == expected and at_risk.endswith("P 100%")
        page.screenshot(tmp_path / "partition-page.png")

        # One click on the plot entry opens the chart, inline as a PNG.
        plot_link = (
            "Array.from(document.querySelectorAll('tr'))"
            ".find(r => r.cells.length > 1 && r.cells[0].innerText.trim() === 'plot')?.querySelector('a')"
        )
        _click(page, plot_link, "the plot entry")
        shown = page.wait_for(
            "Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0"
            " && i.src.startsWith('data:image/png')).map(i => [i.alt, i.naturalWidth, i.naturalHeight])",
            "the chart to render",
        )
        [(alt, width, height)] = shown
        assert alt == "forecast"
        assert width > 800 and height > 300
        page.screenshot(tmp_path / "partition-chart.png")
        _click(page, _by_text("Close", "button"), "the chart's Close button")

        # The capacity check: Checks tab, its Partitions tab, the partition: failed (the alert is critical),
        # with the series at risk and its expected crossing in UTC, the time the alert gives.
        for label in ("Checks", "Partitions"):
            _click(page, _by_text(label, "a, button, [role=tab]"), f"the {label} tab")
            page.wait_for("document.body.innerText.includes('Execution history')", "the check's tabs")
        _click(page, _by_text(PARTITION), "the partition in the check's list")
        text = page.wait_for(
            "document.body.innerText.includes('worst_severity') && document.body.innerText",
            "the partition's capacity check result",
        )
        crossing = f"{pd.Timestamp(alert['details']['expected_ds']):%Y-%m-%d %H:%M} UTC"
        assert f"{PARTITION}\nFailed\nLatest execution" in text
        assert f"1 critical in {PARTITION} (rules: disk-capacity)" in text
        [row] = [line for line in text.splitlines() if line.startswith(alert["series"].split("/", 1)[1])]
        assert row.split("\t")[1:5] == ["critical", "firing", crossing, "1"]
        page.screenshot(tmp_path / "capacity-check.png")
