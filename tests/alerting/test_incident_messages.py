"""One incident, one Slack message: escalation, updates and resolve edit it and reply in its thread.

Everything goes through slack-sdk's WebClient to the loopback Slack stand-in; the assertions are on the calls
Slack received (method, channel, ts, thread_ts, text) and on the messages as they now stand in the channel.
"""

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from intentvision_dagster.alerting.delivery import OutboxNotifier, deliver_notifications
from intentvision_dagster.alerting.dispatch import dispatch, list_notifications
from intentvision_dagster.alerting.evaluate import CANDIDATE_COLUMNS
from intentvision_dagster.alerting.log import incident_messages, list_alerts, update_open
from tests.alerting.support import (
    T0,
    TOKEN,
    DiesAfterPosting,
    candidate,
    clear,
    log_alerts,
    notifier,
    routing,
)
from tests.support.slack_standin import SlackStandIn

LATER = T0 + pd.Timedelta(minutes=10)
LATEST = T0 + pd.Timedelta(minutes=20)


ON_CALL = routing(channels={"default": "#acme-alerts", "critical": "#acme-oncall"})


def tick(conn, slack: SlackStandIn, now: pd.Timestamp, route=None, **kwargs):
    """One sensor tick: dispatch, then deliver."""
    dispatch(conn, route or routing(), now, ui_url="http://dagster.test:3000")
    return deliver_notifications(conn, notifier(slack, **kwargs), now)


def warn_then_escalate(conn, slack: SlackStandIn, route=None) -> None:
    """db-1 warns at T0 (posted), then is evaluated critical and the group is dispatched at LATER."""
    log_alerts(conn, candidate("db-1", severity="warning"))
    assert tick(conn, slack, T0, route).sent == 1
    escalate(conn)


def escalate(conn) -> None:
    fresh = candidate("db-1", severity="critical", asof="2026-01-05T01:00:00")
    update_open(conn, pd.DataFrame([fresh], columns=CANDIDATE_COLUMNS), LATER)


def header(message) -> str:
    return message.blocks[0]["text"]["text"]


def test_escalation_edits_the_message_and_replies_in_its_thread(conn, slack) -> None:
    warn_then_escalate(conn, slack)
    (first,) = slack.top_level
    assert header(first) == ":warning: WARNING: disk-capacity (1 firing)"
    report = tick(conn, slack, LATER)
    assert (report.sent, report.failed) == (1, 0)
    update, reply = slack.calls("chat.update", "chat.postMessage")[1:]
    assert (update.method, update.channel, update.ts) == ("chat.update", "#acme-alerts", first.ts)
    assert update.text.startswith(":rotating_light: CRITICAL: disk-capacity (1 firing): ")
    assert (reply.method, reply.channel, reply.thread_ts) == ("chat.postMessage", "#acme-alerts", first.ts)
    assert reply.text == (
        ':rotating_light: escalated (warning → critical): acme/node_filesystem_usage_percent{host="db-1"}: '
        "db-1 expected to cross 90 % in 48 h"
    )
    (edited,) = slack.top_level
    assert (edited.ts, edited.edits) == (first.ts, 1)
    assert header(edited) == ":rotating_light: CRITICAL: disk-capacity (1 firing)"
    assert [message.text for message in slack.replies(first.ts)] == [reply.text]
    sent = list_notifications(conn)
    assert sent["action"].tolist() == ["post", "update"]
    assert sent["incident_id"].nunique() == 1 and sent["thread_ts"].tolist()[1] == first.ts


def test_resolve_edits_the_message_and_replies_resolved(conn, slack) -> None:
    log_alerts(conn, candidate("db-1"), candidate("db-2"))
    tick(conn, slack, T0)
    (first,) = slack.top_level
    clear(conn, "acme", [], LATER)
    assert tick(conn, slack, LATER).sent == 1
    (reply,) = slack.replies(first.ts)
    calls = [(c.method, c.channel, c.ts, c.thread_ts) for c in slack.calls("chat.update", "chat.postMessage")]
    assert calls == [
        ("chat.postMessage", "#acme-alerts", first.ts, None),
        ("chat.update", "#acme-alerts", first.ts, None),
        ("chat.postMessage", "#acme-alerts", reply.ts, first.ts),
    ]
    (final,) = slack.top_level
    assert header(final) == ":white_check_mark: RESOLVED: disk-capacity (2 alerts)"
    assert reply.text.splitlines() == [
        f':white_check_mark: resolved (critical): acme/node_filesystem_usage_percent{{host="{host}"}}: '
        f"{host} expected to cross 90 % in 48 h"
        for host in ("db-1", "db-2")
    ]
    assert set(list_alerts(conn)["state"]) == {"resolved"}


def test_a_group_firing_again_after_its_resolve_is_a_new_message(conn, slack) -> None:
    log_alerts(conn, candidate("db-1"))
    tick(conn, slack, T0)
    clear(conn, "acme", [], LATER)
    tick(conn, slack, LATER)
    log_alerts(conn, candidate("db-1", asof="2026-01-06T00:00:00"), now=LATEST)
    tick(conn, slack, LATEST)
    assert [header(message) for message in slack.top_level] == [
        ":white_check_mark: RESOLVED: disk-capacity (1 alert)",
        ":rotating_light: CRITICAL: disk-capacity (1 firing)",
    ]
    assert list_notifications(conn)["action"].tolist() == ["post", "update", "post"]


def test_escalation_routed_to_another_channel_posts_there_once_and_links_the_first(conn, slack) -> None:
    warn_then_escalate(conn, slack, ON_CALL)
    (first,) = slack.top_level
    assert tick(conn, slack, LATER, ON_CALL).sent == 2
    calls = [(c.method, c.channel, c.ts, c.thread_ts) for c in slack.calls()][1:]
    oncall = slack.top_level[1]
    reply = slack.replies(first.ts)[0]
    assert calls == [
        ("chat.getPermalink", "#acme-alerts", first.ts, None),
        ("chat.postMessage", "#acme-oncall", oncall.ts, None),
        ("chat.update", "#acme-alerts", first.ts, None),
        ("chat.getPermalink", "#acme-oncall", oncall.ts, None),
        ("chat.postMessage", "#acme-alerts", reply.ts, first.ts),
    ]
    link = f"https://standin.slack.test/archives/acme-alerts/p{first.ts.replace('.', '')}"
    assert oncall.blocks[-1]["elements"][0]["text"] == f":link: <{link}|Earlier message in #acme-alerts>"
    assert header(oncall) == ":rotating_light: CRITICAL: disk-capacity (1 firing)"
    back = f"https://standin.slack.test/archives/acme-oncall/p{oncall.ts.replace('.', '')}"
    assert reply.text.startswith(
        f":rotating_light: escalated (warning → critical), continued in <{back}|#acme-oncall>: "
    )
    edited = slack.top_level[0]
    assert edited.blocks[1]["text"]["text"].split("\n")[0].endswith(":arrow_right: continued in #acme-oncall")
    for now in (LATEST, LATEST + pd.Timedelta(minutes=10)):  # nothing new: nothing more is posted
        tick(conn, slack, now, ON_CALL)
    assert len(slack.top_level) == 2
    clear(conn, "acme", [], LATEST + pd.Timedelta(hours=1))
    tick(conn, slack, LATEST + pd.Timedelta(hours=1), ON_CALL)
    assert len(slack.top_level) == 2, "the resolve edits both messages, it posts no new one"
    assert {(m.channel, header(m).split(":")[1]) for m in slack.top_level} == {
        ("#acme-alerts", "white_check_mark"),
        ("#acme-oncall", "white_check_mark"),
    }
    assert [len(slack.replies(m.ts)) for m in slack.top_level] == [2, 1]
    assert slack.replies(first.ts)[1].text.startswith(":white_check_mark: resolved (critical): ")


def test_a_link_slack_cannot_give_is_left_out_not_the_post(conn, slack) -> None:
    warn_then_escalate(conn, slack, ON_CALL)
    slack.delete(slack.top_level[0].ts)
    tick(conn, slack, LATER, ON_CALL)
    assert next(r.error for r in slack.requests if r.method == "chat.getPermalink") == "message_not_found"
    oncall = slack.top_level[0]
    assert oncall.blocks[-1]["elements"][0]["text"] == ":link: Earlier message in #acme-alerts"


def test_after_a_restart_the_same_message_is_updated(tmp_path: Path, slack) -> None:
    path = str(tmp_path / "warehouse.duckdb")
    with duckdb.connect(path) as conn:
        warn_then_escalate(conn, slack)
    first_ts = slack.top_level[0].ts
    with duckdb.connect(path) as conn:  # a new process: only the warehouse remembers the message
        assert [m.ts for m in incident_messages(conn, list_notifications(conn)["incident_id"]).values()] == [
            first_ts
        ]
        tick(conn, slack, LATER)
    assert [m.ts for m in slack.top_level] == [first_ts]
    assert slack.calls("chat.update")[0].ts == first_ts and len(slack.replies(first_ts)) == 1


@pytest.mark.parametrize("gone", ["delete", "lock"])
def test_an_update_whose_message_is_gone_is_posted_anew_and_recorded(conn, slack, gone) -> None:
    warn_then_escalate(conn, slack)
    first = slack.top_level[0]
    getattr(slack, gone)(first.ts)
    assert tick(conn, slack, LATER).sent == 1
    failed = [r.error for r in slack.requests if r.method == "chat.update"]
    assert failed == [{"delete": "message_not_found", "lock": "cant_update_message"}[gone]]
    repost = slack.top_level[-1]
    assert repost.ts != first.ts and header(repost) == ":rotating_light: CRITICAL: disk-capacity (1 firing)"
    (message,) = incident_messages(conn, list_notifications(conn)["incident_id"]).values()
    assert message.ts == repost.ts
    clear(conn, "acme", [], LATEST)
    tick(conn, slack, LATEST)
    assert slack.calls("chat.update")[-1].ts == repost.ts and len(slack.replies(repost.ts)) == 1


def test_a_kill_after_the_reply_does_not_reply_twice(conn, slack) -> None:
    warn_then_escalate(conn, slack)
    dispatch(conn, routing(), LATER)
    with pytest.raises(SystemExit):
        deliver_notifications(conn, DiesAfterPosting(token=TOKEN, base_url=slack.url), LATER)
    report = deliver_notifications(conn, notifier(slack), LATER)
    assert (report.sent, report.reconciled) == (0, 1)
    first = slack.top_level[0]
    assert len(slack.replies(first.ts)) == 1 and len(slack.top_level) == 1
    assert slack.calls()[-1].method == "conversations.replies"
    assert list_notifications(conn)["action"].tolist() == ["post", "update"]


def test_a_timed_out_update_is_retried_after_the_grace_without_a_second_reply(conn, slack) -> None:
    warn_then_escalate(conn, slack)
    dispatch(conn, routing(), LATER)
    slack.fail_next(("hang", 2.0))  # chat.update hangs past the client's 1 s timeout, then applies
    report = deliver_notifications(conn, notifier(slack, timeout=1), LATER)
    assert report.failed == 1 and list_notifications(conn)["in_doubt"].tolist() == [False, True]
    slack.wait_idle()
    first = slack.top_level[0]
    assert first.edits == 1 and slack.replies(first.ts) == []
    assert deliver_notifications(conn, notifier(slack), LATER).deferred == 1
    report = deliver_notifications(conn, notifier(slack), LATER + pd.Timedelta(minutes=2))
    assert report.sent == 1
    assert slack.top_level[0].edits == 2 and len(slack.replies(first.ts)) == 1 and len(slack.top_level) == 1


def test_rate_limits_server_errors_and_a_bad_token_on_updates_reply_once(conn, slack) -> None:
    warn_then_escalate(conn, slack)
    dispatch(conn, routing(), LATER)
    report = deliver_notifications(conn, notifier(slack, token="xoxb-revoked"), LATER)
    assert report.failed == 1 and "invalid_auth" in report.errors[0]
    slack.fail_next(("429", 1), ("500",))
    assert deliver_notifications(conn, notifier(slack), LATER).sent == 1
    statuses = [(r.method, r.status) for r in slack.requests[-4:]]
    assert statuses == [
        ("chat.update", 429),
        ("chat.update", 500),
        ("chat.update", 200),
        ("chat.postMessage", 200),
    ]
    assert len(slack.replies(slack.top_level[0].ts)) == 1 and len(slack.top_level) == 1


def test_an_update_waits_for_the_failed_one_before_it_so_the_message_ends_current(conn, slack) -> None:
    warn_then_escalate(conn, slack)
    dispatch(conn, routing(), LATER)
    slack.fail_next(("500",), ("500",), ("500",))  # the escalation's edit fails, after slack-sdk's retries
    assert deliver_notifications(conn, notifier(slack), LATER).failed == 1
    clear(conn, "acme", [], LATEST)
    dispatch(conn, routing(), LATEST)  # the resolve is queued behind the failed escalation
    slack.fail_next(("500",), ("500",), ("500",))
    report = deliver_notifications(conn, notifier(slack), LATEST)
    assert (report.failed, report.deferred, report.sent) == (1, 1, 0)
    assert list_notifications(conn)["state"].tolist() == ["sent", "failed", "pending"]
    assert deliver_notifications(conn, notifier(slack), LATEST).sent == 2
    first = slack.top_level[0]
    assert header(first) == ":white_check_mark: RESOLVED: disk-capacity (1 alert)"
    assert [reply.text.split(" (")[0] for reply in slack.replies(first.ts)] == [
        ":rotating_light: escalated",
        ":white_check_mark: resolved",
    ]


def test_the_outbox_records_posts_and_updates_of_one_incident(conn, tmp_path: Path) -> None:
    outbox = OutboxNotifier(tmp_path / "alerts.jsonl")
    log_alerts(conn, candidate("db-1", severity="warning"))
    dispatch(conn, routing(), T0)
    deliver_notifications(conn, outbox, T0)
    escalate(conn)
    dispatch(conn, routing(), LATER)
    deliver_notifications(conn, outbox, LATER)
    post, update = (json.loads(line) for line in outbox.path.read_text().splitlines())
    assert (post["action"], post["thread_ts"]) == ("post", None)
    assert (update["action"], update["thread_ts"], update["incident_id"]) == (
        "update",
        post["id"],
        post["id"],
    )
    assert update["reply"].startswith(":rotating_light: escalated (warning → critical): ")
    assert update["payload"]["firing"][0]["severity"] == "critical"


def test_standin_speaks_update_threads_and_permalinks(slack) -> None:
    client = WebClient(token=TOKEN, base_url=slack.url)
    posted = client.chat_postMessage(channel="#acme-alerts", text="first")
    reply = client.chat_postMessage(channel="#acme-alerts", text="more", thread_ts=posted["ts"])
    assert reply["message"]["thread_ts"] == posted["ts"]
    updated = client.chat_update(channel="#acme-alerts", ts=posted["ts"], text="edited")
    assert (updated["channel"], updated["ts"], updated["text"]) == ("#acme-alerts", posted["ts"], "edited")
    link = client.chat_getPermalink(channel="#acme-alerts", message_ts=posted["ts"])["permalink"]
    assert link == f"https://standin.slack.test/archives/acme-alerts/p{posted['ts'].replace('.', '')}"
    thread = client.conversations_replies(channel="#acme-alerts", ts=posted["ts"])["messages"]
    assert [m["text"] for m in thread] == ["edited", "more"]
    history = client.conversations_history(channel="#acme-alerts")["messages"]
    assert [m["text"] for m in history] == ["edited"], "replies stay in their thread"
    for call, error in [
        (lambda: client.chat_update(channel="#acme-alerts", ts="1.000001", text="x"), "message_not_found"),
        (
            lambda: client.chat_postMessage(channel="#acme-alerts", text="x", thread_ts="1.0"),
            "thread_not_found",
        ),
        (lambda: client.chat_getPermalink(channel="#random", message_ts=posted["ts"]), "channel_not_found"),
        (lambda: client.conversations_replies(channel="#acme-alerts", ts="1.0"), "thread_not_found"),
    ]:
        with pytest.raises(SlackApiError) as raised:
            call()
        assert raised.value.response["error"] == error
