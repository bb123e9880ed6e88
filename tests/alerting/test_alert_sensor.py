"""The alert sensor on the demo world, delivering through slack-sdk to a loopback stand-in of Slack."""

import shutil

import dagster as dg
import duckdb
import pytest

from intentvision_dagster.alerting import defs as alerting_defs
from intentvision_dagster.alerting.dispatch import list_notifications
from intentvision_dagster.alerting.log import list_alerts
from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.runs import tick_alert_sensor
from tests.conftest import settings_for
from tests.support.slack_standin import SlackStandIn

TOKEN = "xoxb-intentvision-test"


@pytest.fixture
def slack_world(demo_world, tmp_path, monkeypatch):
    """The demo's warehouse copied into a fresh home (no alert state yet), with Slack configured."""

    def build(standin: SlackStandIn, token: str = TOKEN, **env: str):
        monkeypatch.setenv("SLACK_BOT_TOKEN", token)
        settings = settings_for(
            tmp_path / "home", SLACK_BOT_TOKEN=token, INTENTVISION_SLACK_API_URL=standin.url, **env
        )
        if not settings.warehouse_path.exists():
            settings.home.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(demo_world.settings.warehouse_path, settings.warehouse_path)
            with duckdb.connect(str(settings.warehouse_path)) as conn:
                for table in ("alert_log", "alert_groups", "alert_notifications", "alert_silences"):
                    conn.execute(f"drop table if exists intentvision.{table}")
        return settings, build_definitions(settings)

    return build


def state(settings):
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        return list_alerts(conn), list_notifications(conn)


def test_one_message_per_group_through_429_and_500(demo_world, slack_world):
    with SlackStandIn(token=TOKEN) as slack:
        settings, defs = slack_world(slack)
        slack.fail_next(("429", 1), ("500",))
        tick_alert_sensor(defs, demo_world.instance)
        alerts, notifications = state(settings)
        assert len(alerts) >= 2 and (alerts["state"] == "delivered").all()
        assert len(notifications) == alerts["group_id"].nunique() == len(slack.messages)
        assert [r.status for r in slack.requests[:2]] == [429, 500]
        tick_alert_sensor(defs, demo_world.instance)  # a repeated tick (cursor not advanced) sends nothing
        assert len(slack.messages) == len(notifications)

    by_channel = {m.channel for m in slack.messages}
    assert by_channel <= {"#acme-alerts", "#acme-oncall"}, "demo alerts are acme's, only in acme's channels"
    disk = next(m for m in slack.messages if "node_filesystem_usage_percent" in (m.text or ""))
    assert disk.channel == "#acme-oncall", "critical alerts go to acme's critical channel"
    assert "expected to cross 90 %" in disk.text
    assert disk.blocks[0]["type"] == "header" and "/assets/forecasts?view=partitions" in str(disk.blocks)


def test_each_new_message_gets_its_chart_in_its_thread(demo_world, slack_world):
    """The sensor draws with the forecasting and anomalies chart resources and uploads once per incident."""
    with SlackStandIn(token=TOKEN) as slack:
        settings, defs = slack_world(slack)
        tick_alert_sensor(defs, demo_world.instance)
        tick_alert_sensor(defs, demo_world.instance)  # a repeated tick uploads nothing again
        _, notifications = state(settings)

    posts = {message.ts: message for message in slack.top_level}
    assert len(posts) >= 2 and len(slack.files) == len(posts), "one chart per incident's first message"
    for shared in slack.files:
        assert shared.thread_ts in posts and shared.channel == posts[shared.thread_ts].channel
        assert shared.data.startswith(b"\x89PNG") and shared.title.startswith("acme/")
    names = sorted(shared.filename.rsplit("-", 1)[-1] for shared in slack.files)
    assert names == ["anomalies.png", "forecast.png"], "the disk's forecast, the request spike's anomalies"
    assert set(notifications["chart_state"]) == {"attached"}


def test_charts_switched_off_upload_nothing(demo_world, slack_world):
    with SlackStandIn(token=TOKEN) as slack:
        _, defs = slack_world(slack, INTENTVISION_SLACK_CHARTS="off")
        tick_alert_sensor(defs, demo_world.instance)
    assert len(slack.messages) >= 2 and slack.files == []


def test_a_sensor_that_raises_after_posting_sends_nothing_twice(demo_world, slack_world, monkeypatch):
    with SlackStandIn(token=TOKEN) as slack:
        settings, defs = slack_world(slack)

        def dies_before_the_cursor_is_saved(**_):
            raise RuntimeError("sensor died after posting, before its cursor advanced")

        with monkeypatch.context() as patched:
            patched.setattr(alerting_defs.dg, "SensorResult", dies_before_the_cursor_is_saved)
            with pytest.raises(RuntimeError, match="before its cursor advanced"):
                tick_alert_sensor(defs, demo_world.instance)
        posted = len(slack.messages)
        assert posted >= 2
        result = tick_alert_sensor(defs, demo_world.instance)  # the daemon retries from the old cursor
        assert isinstance(result, dg.SensorResult)
        assert len(slack.messages) == posted
        _, notifications = state(settings)
        assert len(notifications) == posted and set(notifications["state"]) == {"sent"}


def test_a_bad_token_loses_nothing_and_a_fixed_token_delivers_once(demo_world, slack_world):
    with SlackStandIn(token=TOKEN) as slack:
        settings, defs = slack_world(slack, token="xoxb-revoked")
        tick_alert_sensor(defs, demo_world.instance)
        failed, notifications = state(settings)
        assert len(failed) >= 2 and (failed["state"] == "failed").all()
        assert failed["last_error"].str.contains("invalid_auth").all()
        assert slack.messages == []

        settings, defs = slack_world(slack, token=TOKEN)
        tick_alert_sensor(defs, demo_world.instance)
        tick_alert_sensor(defs, demo_world.instance)
        delivered, _ = state(settings)
        # The demo's request spike is over already: it is notified once, then resolves on the next tick.
        assert delivered["delivered_at"].notna().all()
        assert set(delivered["state"]) == {"delivered", "resolved"}
        assert len(slack.messages) == len(notifications) == delivered["group_id"].nunique()
