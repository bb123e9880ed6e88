"""The alert sensor on the demo world, delivering through slack-sdk to a loopback stand-in of Slack."""

import shutil

import duckdb
import pytest

from intentvision_dagster.alerting.log import list_alerts
from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.runs import tick_alert_sensor
from tests.conftest import settings_for
from tests.support.slack_standin import SlackStandIn

TOKEN = "xoxb-intentvision-test"


@pytest.fixture
def slack_world(demo_world, tmp_path, monkeypatch):
    """The demo's warehouse copied into a fresh home (no alert log yet), with Slack configured."""

    def build(standin: SlackStandIn, token: str = TOKEN):
        monkeypatch.setenv("SLACK_BOT_TOKEN", token)
        settings = settings_for(
            tmp_path / "home", SLACK_BOT_TOKEN=token, INTENTVISION_SLACK_API_URL=standin.url
        )
        if not settings.warehouse_path.exists():
            settings.home.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(demo_world.settings.warehouse_path, settings.warehouse_path)
            with duckdb.connect(str(settings.warehouse_path)) as conn:
                conn.execute("drop table if exists intentvision.alert_log")
        return settings, build_definitions(settings)

    return build


def alert_log(settings):
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        return list_alerts(conn)


def test_one_slack_message_per_alert_through_429_and_500(demo_world, slack_world):
    with SlackStandIn(token=TOKEN) as slack:
        settings, defs = slack_world(slack)
        slack.fail_next(("429", 1), ("500",))
        tick_alert_sensor(defs, demo_world.instance)
        alerts = alert_log(settings)
        assert len(alerts) >= 2
        assert (alerts["state"] == "delivered").all()
        assert len(slack.messages) == len(alerts)
        assert [r.status for r in slack.requests[:2]] == [429, 500]

        tick_alert_sensor(
            defs, demo_world.instance
        )  # a repeated tick (cursor not advanced) sends nothing twice
        assert len(slack.messages) == len(alerts)

    by_channel = {m.channel for m in slack.messages}
    assert by_channel == {"#acme-alerts"}, "demo alerts are acme's and go only to acme's channel"
    disk = next(m for m in slack.messages if "node_filesystem_usage_percent" in (m.text or ""))
    assert "expected to cross 90 %" in disk.text
    assert disk.blocks and disk.blocks[0]["type"] == "header"


def test_a_bad_token_loses_nothing_and_a_fixed_token_delivers_once(demo_world, slack_world):
    with SlackStandIn(token=TOKEN) as slack:
        settings, defs = slack_world(slack, token="xoxb-revoked")
        tick_alert_sensor(defs, demo_world.instance)
        failed = alert_log(settings)
        assert len(failed) >= 2 and (failed["state"] == "failed").all()
        assert failed["last_error"].str.contains("invalid_auth").all()
        assert slack.messages == []

        settings, defs = slack_world(slack, token=TOKEN)
        tick_alert_sensor(defs, demo_world.instance)
        tick_alert_sensor(defs, demo_world.instance)
        delivered = alert_log(settings)
        assert (delivered["state"] == "delivered").all()
        assert len(slack.messages) == len(delivered) == len(failed)
