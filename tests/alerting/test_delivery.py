import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from intentvision_dagster.alerting.delivery import OutboxNotifier, SlackNotifier, deliver_pending
from intentvision_dagster.alerting.evaluate import CANDIDATE_COLUMNS
from intentvision_dagster.alerting.log import list_alerts, record
from tests.support.slack_standin import SlackStandIn

TOKEN = "xoxb-standin-token"
CHANNELS = {"acme": "#acme-alerts", "globex": "#globex-oncall"}
NOW = pd.Timestamp("2026-01-05 02:00")


@pytest.fixture
def conn() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(":memory:")
    yield connection
    connection.close()


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(token=TOKEN, channels=CHANNELS.values()) as standin:
        yield standin


def notifier(slack: SlackStandIn, token: str = TOKEN, timeout: int = 5) -> SlackNotifier:
    return SlackNotifier(token=token, channels=CHANNELS, base_url=slack.url, timeout=timeout)


def add_alerts(conn: duckdb.DuckDBPyConnection, *tenants: str) -> pd.DataFrame:
    rows = [
        {
            "tenant": tenant,
            "metric": "node_filesystem_usage_percent",
            "series": f'{tenant}/node_filesystem_usage_percent{{host="db-1"}}',
            "labels": 'host="db-1"',
            "rule": "disk-capacity",
            "severity": "critical",
            "dedup_key": f"{tenant}:disk-capacity:db-1",
            "summary": f"{tenant} db-1 expected to cross 90 % in 48 h",
            "details": '{"threshold": 90}',
        }
        for tenant in tenants
    ]
    return record(conn, pd.DataFrame(rows, columns=CANDIDATE_COLUMNS), NOW)


def alert_state(conn: duckdb.DuckDBPyConnection) -> dict:
    (row,) = list_alerts(conn).to_dict("records")
    return row


def test_each_alert_goes_once_to_its_tenants_channel(
    conn: duckdb.DuckDBPyConnection, slack: SlackStandIn
) -> None:
    add_alerts(conn, "acme", "globex")
    report = deliver_pending(conn, notifier(slack), NOW)
    assert (report.sent, report.failed, report.errors) == (2, 0, [])
    by_channel = {message.channel: message for message in slack.messages}
    assert len(slack.messages) == 2 and set(by_channel) == {"#acme-alerts", "#globex-oncall"}
    acme = by_channel["#acme-alerts"]
    assert acme.text == "[critical] disk-capacity: acme db-1 expected to cross 90 % in 48 h"
    header, section, context = acme.blocks
    assert header["text"]["text"] == ":rotating_light: CRITICAL: disk-capacity"
    assert section["text"]["text"] == "acme db-1 expected to cross 90 % in 48 h"
    assert "*dedup key* `acme:disk-capacity:db-1`" in [element["text"] for element in context["elements"]]
    assert "globex" not in json.dumps(acme.blocks)
    alerts = list_alerts(conn).set_index("tenant")
    assert alerts.loc["acme", "destination"] == "slack:#acme-alerts"
    assert alerts.loc["globex", "destination"] == "slack:#globex-oncall"
    assert set(alerts["state"]) == {"delivered"} and set(alerts["attempts"]) == {1}


def test_second_pass_sends_nothing_again(conn: duckdb.DuckDBPyConnection, slack: SlackStandIn) -> None:
    add_alerts(conn, "acme")
    deliver_pending(conn, notifier(slack), NOW)
    report = deliver_pending(conn, notifier(slack), NOW)
    assert (report.sent, report.failed) == (0, 0)
    assert len(slack.messages) == 1


def test_rate_limit_is_retried_after_retry_after(
    conn: duckdb.DuckDBPyConnection, slack: SlackStandIn
) -> None:
    add_alerts(conn, "acme")
    slack.fail_next(("429", 1))
    report = deliver_pending(conn, notifier(slack), NOW)
    assert report.sent == 1
    assert [request.status for request in slack.requests] == [429, 200]
    assert len(slack.messages) == 1
    assert alert_state(conn)["state"] == "delivered"


def test_server_error_is_retried(conn: duckdb.DuckDBPyConnection, slack: SlackStandIn) -> None:
    add_alerts(conn, "acme")
    slack.fail_next(("500",))
    assert deliver_pending(conn, notifier(slack), NOW).sent == 1
    assert [request.status for request in slack.requests] == [500, 200]
    assert len(slack.messages) == 1


def test_rate_limit_beyond_retries_fails_and_stays_retryable(
    conn: duckdb.DuckDBPyConnection, slack: SlackStandIn
) -> None:
    add_alerts(conn, "acme")
    slack.fail_next(("429", 0), ("429", 0), ("429", 0))
    report = deliver_pending(conn, notifier(slack), NOW)
    assert (report.sent, report.failed) == (0, 1)
    row = alert_state(conn)
    assert (row["state"], row["attempts"], row["last_error"]) == (
        "failed",
        1,
        "slack: ratelimited (HTTP 429)",
    )
    assert deliver_pending(conn, notifier(slack), NOW).sent == 1
    assert len(slack.messages) == 1


def test_invalid_token_fails_then_a_fixed_token_delivers_once(
    conn: duckdb.DuckDBPyConnection, slack: SlackStandIn
) -> None:
    add_alerts(conn, "acme")
    report = deliver_pending(conn, notifier(slack, token="xoxb-revoked"), NOW)
    assert report.failed == 1 and "invalid_auth" in report.errors[0]
    row = alert_state(conn)
    assert row["state"] == "failed" and "invalid_auth" in row["last_error"]
    assert slack.messages == []
    assert deliver_pending(conn, notifier(slack), NOW).sent == 1
    assert deliver_pending(conn, notifier(slack), NOW).sent == 0
    assert len(slack.messages) == 1
    row = alert_state(conn)
    assert (row["state"], row["attempts"]) == ("delivered", 2)


def test_timeout_fails_then_is_retried(conn: duckdb.DuckDBPyConnection, slack: SlackStandIn) -> None:
    add_alerts(conn, "acme")
    slack.fail_next(("hang", 2.0))
    report = deliver_pending(conn, notifier(slack, timeout=1), NOW)
    assert report.failed == 1
    row = alert_state(conn)
    assert row["state"] == "failed" and "timed out" in row["last_error"]
    assert deliver_pending(conn, notifier(slack, timeout=1), NOW).sent == 1
    assert alert_state(conn)["state"] == "delivered"
    # The hung request is answered late and Slack keeps that post too: delivery is at least once, so a
    # timeout can show the alert twice, but it is never lost.
    slack.wait_idle()
    assert [message.channel for message in slack.messages] == ["#acme-alerts", "#acme-alerts"]


def test_tenant_without_channel_is_never_posted_elsewhere(
    conn: duckdb.DuckDBPyConnection, slack: SlackStandIn
) -> None:
    add_alerts(conn, "initech")
    report = deliver_pending(conn, notifier(slack), NOW)
    assert report.failed == 1
    assert alert_state(conn)["last_error"] == (
        "NoChannelError: no Slack channel configured for tenant 'initech' (add it to tenants.yaml)"
    )
    assert slack.requests == []


def test_outbox_appends_one_json_line_per_alert(conn: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "outbox" / "alerts.jsonl"
    created = add_alerts(conn, "acme", "globex")
    report = deliver_pending(conn, OutboxNotifier(path), NOW)
    assert report.sent == 2
    assert deliver_pending(conn, OutboxNotifier(path), NOW).sent == 0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["id"] for line in lines] == list(created["id"])
    assert lines[0]["dedup_key"] == "acme:disk-capacity:db-1"
    assert lines[0]["created_at"] == "2026-01-05T02:00:00"
    assert lines[0]["delivered_at"] is None
    assert set(list_alerts(conn)["destination"]) == {f"outbox:{path}"}


def test_standin_speaks_the_web_api(slack: SlackStandIn) -> None:
    client = WebClient(token=TOKEN, base_url=slack.url)
    assert client.auth_test()["team"] == "IntentVision"
    client.api_call("chat.postMessage", params={"channel": "#acme-alerts", "text": "form-encoded"})
    assert slack.messages[-1].text == "form-encoded"
    for body, error in [
        ({"channel": "#acme-alerts"}, "no_text"),
        ({"channel": "#random", "text": "hi"}, "channel_not_found"),
    ]:
        with pytest.raises(SlackApiError) as raised:
            client.api_call("chat.postMessage", json=body)
        assert raised.value.response["error"] == error
    assert len(slack.messages) == 1
