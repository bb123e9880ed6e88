"""Grouping, timing, resolve, silences and inhibition, the clock in the test's hands (outbox delivery)."""

import json
from pathlib import Path

import pandas as pd
import pytest

from intentvision_dagster.alerting.delivery import OutboxNotifier, deliver_notifications
from intentvision_dagster.alerting.dispatch import dispatch, list_notifications
from intentvision_dagster.alerting.inhibition import InhibitRule
from intentvision_dagster.alerting.log import list_alerts
from intentvision_dagster.alerting.matchers import parse_matcher
from intentvision_dagster.alerting.silences import create_silence, expire_silence, list_silences
from tests.alerting.support import T0, candidate, clear, log_alerts, routing, states

MINUTE = pd.Timedelta(minutes=1)


@pytest.fixture
def outbox(tmp_path: Path) -> OutboxNotifier:
    return OutboxNotifier(tmp_path / "outbox" / "alerts.jsonl")


def tick(conn, outbox: OutboxNotifier, now: pd.Timestamp, **route) -> list[dict]:
    """One dispatch + delivery pass; returns the notifications it sent (payloads)."""
    before = len(sent(outbox))
    dispatch(conn, routing(**route), now)
    deliver_notifications(conn, outbox, now)
    return sent(outbox)[before:]


def sent(outbox: OutboxNotifier) -> list[dict]:
    if not outbox.path.exists():
        return []
    return [json.loads(line)["payload"] for line in outbox.path.read_text().splitlines()]


def hosts(payload: dict, part: str = "firing") -> list[str]:
    return sorted(alert["series"].split('host="')[1].rstrip('"}') for alert in payload[part])


def test_an_incident_on_many_series_is_one_grouped_message(conn, outbox) -> None:
    log_alerts(conn, *(candidate(f"db-{n}") for n in range(1, 6)))
    (message,) = tick(conn, outbox, T0)
    assert message["kind"] == "firing" and message["group_labels"] == {"alertname": "disk-capacity"}
    assert hosts(message) == ["db-1", "db-2", "db-3", "db-4", "db-5"]
    assert set(states(conn).values()) == {"delivered"}
    assert list_alerts(conn)["group_id"].nunique() == 1
    assert tick(conn, outbox, T0 + MINUTE) == [], "nothing changed: nothing sent"


def test_group_wait_collects_alerts_arriving_within_it(conn, outbox) -> None:
    wait = {"group_wait": pd.Timedelta(seconds=30)}
    log_alerts(conn, candidate("db-1"))
    assert tick(conn, outbox, T0, **wait) == []
    log_alerts(conn, candidate("db-2"), now=T0 + pd.Timedelta(seconds=10))
    assert tick(conn, outbox, T0 + pd.Timedelta(seconds=29), **wait) == []
    (message,) = tick(conn, outbox, T0 + pd.Timedelta(seconds=30), **wait)
    assert hosts(message) == ["db-1", "db-2"]


def test_group_interval_batches_updates_and_repeat_interval_reminds(conn, outbox) -> None:
    log_alerts(conn, candidate("db-1"))
    assert len(tick(conn, outbox, T0)) == 1
    log_alerts(conn, candidate("db-2"), now=T0 + MINUTE)
    assert tick(conn, outbox, T0 + 4 * MINUTE) == [], "within group_interval (5 min) of the last message"
    (update,) = tick(conn, outbox, T0 + 5 * MINUTE)
    assert hosts(update) == ["db-1", "db-2"]
    repeat = pd.Timedelta(hours=12)
    assert tick(conn, outbox, T0 + 5 * MINUTE + repeat - MINUTE, repeat_interval=repeat) == []
    (reminder,) = tick(conn, outbox, T0 + 5 * MINUTE + repeat, repeat_interval=repeat)
    assert hosts(reminder) == ["db-1", "db-2"]


def test_a_resolved_group_gets_one_resolve_message(conn, outbox) -> None:
    log_alerts(conn, candidate("db-1"), candidate("db-2"))
    tick(conn, outbox, T0)
    clear(conn, "acme", ["db-2"], T0 + MINUTE)
    assert states(conn) == {"db-1": "resolved", "db-2": "delivered"}
    assert tick(conn, outbox, T0 + 10 * MINUTE) == [], "partly resolved: no message until the group is"
    clear(conn, "acme", [], T0 + 20 * MINUTE)
    (resolved,) = tick(conn, outbox, T0 + 20 * MINUTE)
    assert resolved["kind"] == "resolved" and hosts(resolved, "resolved") == ["db-1", "db-2"]
    assert resolved["firing"] == []
    assert tick(conn, outbox, T0 + pd.Timedelta(days=5)) == []
    log_alerts(conn, candidate("db-1", asof="2026-01-06T00:00:00"), now=T0 + pd.Timedelta(days=5))
    (again,) = tick(conn, outbox, T0 + pd.Timedelta(days=5))
    assert again["kind"] == "firing" and again["sequence"] == 3, "the group reopens; its sequence goes on"


def test_an_alert_that_cleared_before_its_first_message_is_reported_once_then_resolved(conn, outbox) -> None:
    log_alerts(conn, candidate("db-1"))
    clear(conn, "acme", [], T0)
    assert states(conn) == {"db-1": "pending"}, "never notified: kept open until it is"
    (first,) = tick(conn, outbox, T0)
    assert first["firing"][0]["status"] == "ended"
    (resolved,) = tick(conn, outbox, T0 + 5 * MINUTE)
    assert resolved["kind"] == "resolved"
    assert states(conn) == {"db-1": "resolved"}


def test_silence_mutes_matching_alerts_until_it_expires(conn, outbox) -> None:
    silence = create_silence(
        conn, "acme", ['host=~"db-[12]"'], T0, T0 + pd.Timedelta(hours=2), "sre", "maintenance", T0
    )
    log_alerts(conn, candidate("db-1"), candidate("db-2"), candidate("db-3"))
    (message,) = tick(conn, outbox, T0)
    assert hosts(message) == ["db-3"]
    alerts = list_alerts(conn).set_index("series")["silence_id"]
    assert list(alerts.dropna().unique()) == [silence["id"]] and alerts.isna().sum() == 1
    assert states(conn) == {"db-1": "pending", "db-2": "pending", "db-3": "delivered"}
    expire_silence(conn, silence["id"], T0 + pd.Timedelta(hours=1))
    assert list_silences(conn, active_at=T0 + pd.Timedelta(hours=1)).empty
    (after,) = tick(conn, outbox, T0 + pd.Timedelta(hours=1))
    assert hosts(after) == ["db-1", "db-2", "db-3"]
    assert list_alerts(conn)["silence_id"].isna().all()


def test_a_silence_ends_by_itself_and_never_mutes_another_tenant(conn, outbox) -> None:
    create_silence(conn, "acme", ["alertname=disk-capacity"], T0, T0 + 30 * MINUTE, "sre", "deploy", T0)
    log_alerts(conn, candidate("db-1"), candidate("db-1", tenant="globex"))
    (message,) = tick(conn, outbox, T0)
    assert message["tenant"] == "globex"
    (later,) = tick(conn, outbox, T0 + 30 * MINUTE)
    assert later["tenant"] == "acme" and hosts(later) == ["db-1"]


def test_silence_input_is_validated(conn) -> None:
    with pytest.raises(ValueError, match="at least one matcher"):
        create_silence(conn, "acme", [], T0, T0 + MINUTE, "sre", "why", T0)
    with pytest.raises(ValueError, match="not after its start"):
        create_silence(conn, "acme", ["host=a"], T0, T0, "sre", "why", T0)
    with pytest.raises(ValueError, match="matcher 'host' is not of the form"):
        create_silence(conn, "acme", ["host"], T0, T0 + MINUTE, "sre", "why", T0)
    with pytest.raises(ValueError, match="invalid regular expression"):
        create_silence(conn, "acme", ["host=~("], T0, T0 + MINUTE, "sre", "why", T0)
    with pytest.raises(KeyError, match="no silence with id 'nope'"):
        expire_silence(conn, "nope", T0)


def test_critical_inhibits_warning_on_equal_labels(conn, outbox) -> None:
    inhibit = InhibitRule(
        source=(parse_matcher("severity=critical"),),
        target=(parse_matcher("severity=warning"),),
        equal=("host",),
    )
    log_alerts(
        conn,
        candidate("db-1", rule="disk-critical", severity="critical"),
        candidate("db-1", rule="disk-warning", severity="warning"),
        candidate("db-2", rule="disk-warning", severity="warning"),
    )
    messages = tick(conn, outbox, T0, inhibit_rules=(inhibit,), group_by=("metric",))
    (message,) = messages
    assert [(alert["rule"], alert["series"][-6:]) for alert in message["firing"]] == [
        ("disk-critical", 'db-1"}'),
        ("disk-warning", 'db-2"}'),
    ]
    alerts = list_alerts(conn).set_index("rule")
    critical_id = alerts.loc["disk-critical", "id"]
    assert list(alerts["inhibited_by"].dropna()) == [critical_id]


def test_routing_by_severity_and_tenant_never_crosses(conn, outbox) -> None:
    log_alerts(
        conn,
        candidate("db-1", severity="critical"),
        candidate("db-2", rule="disk-soon", severity="warning"),
        candidate("db-1", tenant="globex"),
    )
    dispatch(conn, routing(channels={"default": "#acme-alerts", "critical": "#acme-pager"}), T0)
    queued = list_notifications(conn)
    assert sorted(zip(queued["tenant"], queued["channel"], strict=True)) == [
        ("acme", "#acme-alerts"),
        ("acme", "#acme-pager"),
        ("globex", "#globex-oncall"),
    ]
    for row in queued.itertuples():
        payload = json.loads(row.payload)
        assert {alert["series"].split("/")[0] for alert in payload["firing"]} == {row.tenant}


def test_escalation_updates_the_group_at_once_after_group_interval(conn, outbox) -> None:
    from intentvision_dagster.alerting.log import update_open

    log_alerts(conn, candidate("db-1", severity="warning"))
    (first,) = tick(conn, outbox, T0)
    assert first["firing"][0]["severity"] == "warning"
    worse = pd.DataFrame([candidate("db-1", severity="critical", asof="2026-01-06T00:00:00")])
    update_open(conn, worse, T0 + pd.Timedelta(days=1))
    (escalated,) = tick(conn, outbox, T0 + pd.Timedelta(days=1))
    assert escalated["firing"][0]["severity"] == "critical"
