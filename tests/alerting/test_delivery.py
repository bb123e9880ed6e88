"""Group notifications through slack-sdk against a loopback stand-in of Slack's Web API: exactly once."""

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from intentvision_dagster.alerting.delivery import OutboxNotifier, SlackNotifier, deliver_notifications
from intentvision_dagster.alerting.dispatch import dispatch, list_notifications, queue_run_failure
from intentvision_dagster.alerting.log import list_alerts
from tests.alerting.support import T0, TOKEN, DiesAfterPosting, candidate, log_alerts, notifier, routing
from tests.support.slack_standin import SlackStandIn


def queue(conn: duckdb.DuckDBPyConnection, *tenants: str) -> None:
    log_alerts(conn, *(candidate(host, tenant) for tenant in tenants for host in ("db-1", "db-2")))
    dispatch(conn, routing(), T0, ui_url="http://dagster.test:3000")


def notification(conn: duckdb.DuckDBPyConnection) -> dict:
    (row,) = list_notifications(conn).to_dict("records")
    return row


def test_one_block_kit_message_per_group_in_its_tenants_channel(conn, slack) -> None:
    queue(conn, "acme", "globex")
    report = deliver_notifications(conn, notifier(slack), T0)
    assert (report.sent, report.failed, report.errors) == (2, 0, [])
    by_channel = {message.channel: message for message in slack.messages}
    assert len(slack.messages) == 2 and set(by_channel) == {"#acme-alerts", "#globex-oncall"}
    acme = by_channel["#acme-alerts"]
    assert "globex" not in json.dumps(acme.blocks) and "globex" not in acme.text
    header, first, numbers, second, _, context = acme.blocks
    assert header["text"]["text"] == ":rotating_light: CRITICAL: disk-capacity (2 firing)"
    link = "http://dagster.test:3000/assets/forecasts?view=partitions&partition=acme%2Fnode_filesystem_usage_percent"
    assert first["text"]["text"].startswith(
        f':rotating_light: *critical* <{link}|acme/node_filesystem_usage_percent{{host="db-1"}}>\n'
    )
    assert [field["text"] for field in numbers["fields"]] == [
        "*Breach probability*\n97% within 72 h",
        "*Expected*\n2026-01-07 00:00 UTC (in 48 h)",
        "*80% interval*\n2026-01-06 08:00 UTC (in 32 h) – 2026-01-07 16:00 UTC (in 64 h)",
        "*Now*\n80.5 % (threshold 90)",
        "*Model*\nMSTL; typical error ±1.2 points over 72 h "
        "(recent backtest window; ±2.5 points over all windows)",
    ]
    assert "db-2" in second["text"]["text"]
    assert context["elements"][0]["text"] == "*tenant* acme"
    assert acme.metadata["event_payload"]["notification_id"] == list_notifications(conn, "acme")["id"][0]
    alerts = list_alerts(conn)
    assert set(alerts["state"]) == {"delivered"}
    assert set(alerts.query("tenant == 'acme'")["destination"]) == {"slack:#acme-alerts"}
    assert deliver_notifications(conn, notifier(slack), T0).sent == 0
    assert len(slack.messages) == 2


def test_429_and_500_are_retried_by_slack_sdk_and_post_once(conn, slack) -> None:
    queue(conn, "acme")
    slack.fail_next(("429", 1), ("500",))
    assert deliver_notifications(conn, notifier(slack), T0).sent == 1
    assert [request.status for request in slack.requests] == [429, 500, 200]
    assert len(slack.messages) == 1


def test_rate_limit_beyond_retries_fails_then_delivers_once(conn, slack) -> None:
    queue(conn, "acme")
    slack.fail_next(("429", 0), ("429", 0), ("429", 0))
    report = deliver_notifications(conn, notifier(slack), T0)
    assert (report.sent, report.failed) == (0, 1)
    row = notification(conn)
    assert (row["state"], row["attempts"], row["last_error"], row["in_doubt"]) == (
        "failed",
        1,
        "slack: ratelimited (HTTP 429)",
        False,
    )
    assert set(list_alerts(conn)["state"]) == {"failed"}
    assert deliver_notifications(conn, notifier(slack), T0).sent == 1
    assert len(slack.messages) == 1 and set(list_alerts(conn)["state"]) == {"delivered"}


def test_bad_token_posts_nothing_and_a_fixed_token_delivers_once(conn, slack) -> None:
    queue(conn, "acme")
    report = deliver_notifications(conn, notifier(slack, token="xoxb-revoked"), T0)
    assert report.failed == 1 and "invalid_auth" in report.errors[0]
    assert slack.messages == []
    assert deliver_notifications(conn, notifier(slack), T0).sent == 1
    assert deliver_notifications(conn, notifier(slack), T0).sent == 0
    assert len(slack.messages) == 1


def test_a_timed_out_post_that_slack_accepted_is_found_not_posted_again(conn, slack) -> None:
    queue(conn, "acme")
    slack.fail_next(("hang", 2.0))
    report = deliver_notifications(conn, notifier(slack, timeout=1), T0)
    assert report.failed == 1
    row = notification(conn)
    assert row["state"] == "failed" and row["in_doubt"] and "timed out" in row["last_error"]
    slack.wait_idle()  # Slack answered late: the message is in the channel
    report = deliver_notifications(conn, notifier(slack, timeout=1), T0)
    assert (report.sent, report.reconciled) == (0, 1)
    assert len(slack.messages) == 1
    assert notification(conn)["state"] == "sent"


def test_a_process_killed_between_post_and_record_does_not_post_twice(conn, slack) -> None:
    queue(conn, "acme")
    with pytest.raises(SystemExit):
        deliver_notifications(conn, DiesAfterPosting(token=TOKEN, base_url=slack.url), T0)
    row = notification(conn)
    assert (row["state"], row["in_doubt"], row["attempts"]) == ("pending", True, 1)
    report = deliver_notifications(conn, notifier(slack), T0)
    assert (report.sent, report.reconciled) == (0, 1)
    assert len(slack.messages) == 1


class DiesBeforePosting(SlackNotifier):
    """The process dies after the attempt was recorded but before the post left."""

    def send(self, notification):
        raise SystemExit("killed before posting")


def test_in_doubt_and_not_in_slack_is_posted_once(conn, slack) -> None:
    queue(conn, "acme")
    slack.fail_next(("500",), ("500",), ("500",))
    deliver_notifications(conn, notifier(slack), T0)
    assert notification(conn)["in_doubt"] is False, "a 5xx answer is definite: nothing was posted"
    with pytest.raises(SystemExit):
        deliver_notifications(conn, DiesBeforePosting(token=TOKEN, base_url=slack.url), T0)
    assert notification(conn)["in_doubt"] is True and slack.messages == []
    report = deliver_notifications(conn, notifier(slack), T0 + pd.Timedelta(minutes=1))
    assert (report.sent, report.deferred) == (0, 1), "not in Slack yet, but its answer may still come"
    assert slack.messages == []
    report = deliver_notifications(conn, notifier(slack), T0 + pd.Timedelta(minutes=2))
    assert (report.sent, report.reconciled) == (1, 0)
    assert len(slack.messages) == 1
    assert [r.method for r in slack.requests][-2:] == ["conversations.history", "chat.postMessage"]


def test_tenant_without_channel_is_never_posted_elsewhere(conn, slack) -> None:
    queue(conn, "initech")
    report = deliver_notifications(conn, notifier(slack), T0)
    assert report.failed == 1
    assert notification(conn)["last_error"] == (
        "NoChannelError: no Slack channel configured for tenant 'initech' (add it to tenants.yaml)"
    )
    assert slack.requests == []


def test_run_failures_go_to_the_operator_channel_once(conn, slack) -> None:
    first = queue_run_failure(conn, "run-1", "series_pipeline", "boom", "acme", routing(), T0)
    again = queue_run_failure(conn, "run-1", "series_pipeline", "boom", "acme", routing(), T0)
    assert first == again
    assert deliver_notifications(conn, notifier(slack), T0).sent == 1
    (message,) = slack.messages
    assert message.channel == "#ops" and message.text == "series_pipeline run run-1 failed: boom"
    assert "http://127.0.0.1:3000/runs/run-1" in message.blocks[1]["text"]["text"]


def test_run_failures_without_operator_channel_go_only_to_the_tagged_tenant() -> None:
    conn = duckdb.connect(":memory:")
    no_operator = routing()
    no_operator = type(no_operator)(no_operator.tenants, operator_channel=None)
    queue_run_failure(conn, "run-a", "series_pipeline", "boom", "acme", no_operator, T0)
    queue_run_failure(conn, "run-b", "series_pipeline", "boom", None, no_operator, T0)
    channels = dict(zip(*list_notifications(conn)[["id", "channel"]].T.values, strict=True))
    assert channels == {"run-failure-run-a": "#acme-alerts", "run-failure-run-b": None}


def test_outbox_reconciles_in_doubt_lines(conn, tmp_path: Path) -> None:
    path = tmp_path / "outbox" / "alerts.jsonl"
    queue(conn, "acme", "globex")

    class DiesAfterWriting(OutboxNotifier):
        def send(self, notification):
            super().send(notification)
            raise SystemExit("killed")

    with pytest.raises(SystemExit):
        deliver_notifications(conn, DiesAfterWriting(path), T0)
    report = deliver_notifications(conn, OutboxNotifier(path), T0)
    assert (report.sent, report.reconciled) == (1, 1)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(line["tenant"] for line in lines) == ["acme", "globex"]
    assert lines[0]["payload"]["kind"] == "firing"


def test_standin_speaks_the_web_api(slack: SlackStandIn) -> None:
    client = WebClient(token=TOKEN, base_url=slack.url)
    assert client.auth_test()["team"] == "IntentVision"
    client.api_call("chat.postMessage", params={"channel": "#acme-alerts", "text": "form-encoded"})
    assert slack.messages[-1].text == "form-encoded"
    history = client.conversations_history(channel="#acme-alerts", oldest="0", include_all_metadata=True)
    assert [message["text"] for message in history["messages"]] == ["form-encoded"]
    for body, error in [
        ({"channel": "#acme-alerts"}, "no_text"),
        ({"channel": "#random", "text": "hi"}, "channel_not_found"),
    ]:
        with pytest.raises(SlackApiError) as raised:
            client.api_call("chat.postMessage", json=body)
        assert raised.value.response["error"] == error
    assert len(slack.messages) == 1
