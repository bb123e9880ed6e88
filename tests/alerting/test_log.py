import duckdb
import pandas as pd

from intentvision_dagster.alerting.evaluate import CANDIDATE_COLUMNS
from intentvision_dagster.alerting.log import (
    ALERT_COLUMNS,
    list_alerts,
    mark_delivered,
    mark_failed,
    record,
    resolve_cleared,
    resolve_missing,
    update_open,
)

T0 = pd.Timestamp("2026-01-05 02:00")
DISK = "node_filesystem_usage_percent"


def candidate(
    host: str = "db-1", tenant: str = "acme", asof: str = "2026-01-05T00:00:00", rule: str = "disk"
):
    series = f'{tenant}/{DISK}{{host="{host}"}}'
    return {
        "tenant": tenant,
        "metric": DISK,
        "series": series,
        "labels": f'host="{host}"',
        "rule": rule,
        "severity": "critical",
        "dedup_key": f"{tenant}:{rule}:{series}:{asof}",
        "summary": f"{host} fills up",
        "details": "{}",
    }


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=CANDIDATE_COLUMNS)


def test_record_inserts_pending_alerts(conn: duckdb.DuckDBPyConnection) -> None:
    created = record(conn, frame(candidate("db-1"), candidate("db-2")), T0)
    assert list(created.columns) == ALERT_COLUMNS
    assert list(created["series"]) == [f'acme/{DISK}{{host="db-1"}}', f'acme/{DISK}{{host="db-2"}}']
    assert set(created["state"]) == {"pending"}
    assert set(created["attempts"]) == {0}
    assert created["id"].str.len().eq(12).all() and created["id"].is_unique
    assert (created["created_at"] == T0).all()
    pd.testing.assert_frame_equal(list_alerts(conn), created)


def test_same_dedup_key_is_inserted_once(conn: duckdb.DuckDBPyConnection) -> None:
    record(conn, frame(candidate()), T0)
    assert record(conn, frame(candidate()), T0 + pd.Timedelta(hours=1)).empty
    assert len(list_alerts(conn)) == 1


def test_open_alert_suppresses_new_forecasts_of_the_same_problem(conn: duckdb.DuckDBPyConnection) -> None:
    (first_id,) = record(conn, frame(candidate(asof="2026-01-05T00:00:00")), T0)["id"]
    mark_delivered(conn, [first_id], "slack:#acme-alerts", T0)
    tomorrow = frame(candidate(asof="2026-01-06T00:00:00"))
    assert record(conn, tomorrow, T0 + pd.Timedelta(days=1)).empty  # still the same ongoing problem
    resolve_missing(conn, "acme", DISK, ["disk"], [], T0 + pd.Timedelta(days=2))
    again = record(conn, frame(candidate(asof="2026-01-07T00:00:00")), T0 + pd.Timedelta(days=2))
    assert len(again) == 1  # resolved, so the next breach is a new alert
    assert list(list_alerts(conn)["state"]) == ["resolved", "pending"]


def test_duplicates_within_one_batch_keep_the_first(conn: duckdb.DuckDBPyConnection) -> None:
    created = record(conn, frame(candidate(asof="a"), candidate(asof="b"), candidate(asof="a")), T0)
    assert list(created["dedup_key"]) == [candidate(asof="a")["dedup_key"]]


def test_tenants_and_rules_are_separate_problems(conn: duckdb.DuckDBPyConnection) -> None:
    created = record(conn, frame(candidate(), candidate(tenant="globex"), candidate(rule="disk-2")), T0)
    assert len(created) == 3
    assert list(list_alerts(conn, tenant="globex")["tenant"]) == ["globex"]


def test_resolve_missing_only_touches_that_tenant_metric_and_rules(conn: duckdb.DuckDBPyConnection) -> None:
    created = record(
        conn,
        frame(
            candidate("db-1"), candidate("db-2"), candidate("db-1", tenant="globex"), candidate(rule="other")
        ),
        T0,
    )
    for alert_id in created["id"]:
        mark_delivered(conn, [alert_id], "slack:#x", T0)
    later = T0 + pd.Timedelta(hours=6)
    resolved = resolve_missing(conn, "acme", DISK, ["disk"], [f'acme/{DISK}{{host="db-2"}}'], later)
    assert list(resolved["series"]) == [f'acme/{DISK}{{host="db-1"}}']
    states = list_alerts(conn).set_index(["tenant", "rule", "series"])["state"]
    assert states[("acme", "disk", f'acme/{DISK}{{host="db-1"}}')] == "resolved"
    assert states[("acme", "disk", f'acme/{DISK}{{host="db-2"}}')] == "delivered"
    assert states[("globex", "disk", f'globex/{DISK}{{host="db-1"}}')] == "delivered"
    assert states[("acme", "other", f'acme/{DISK}{{host="db-1"}}')] == "delivered"
    assert resolve_missing(conn, "acme", DISK, ["disk"], [], later)["series"].tolist() == [
        f'acme/{DISK}{{host="db-2"}}'
    ]


def test_an_alert_never_notified_is_cleared_not_resolved(conn: duckdb.DuckDBPyConnection) -> None:
    record(conn, frame(candidate("db-1")), T0)
    (row,) = resolve_missing(conn, "acme", DISK, ["disk"], [], T0 + pd.Timedelta(hours=1)).to_dict("records")
    assert (row["state"], row["cleared_at"]) == ("pending", T0 + pd.Timedelta(hours=1))
    mark_delivered(conn, [row["id"]], "slack:#x", T0 + pd.Timedelta(hours=2))
    assert list(resolve_cleared(conn, T0 + pd.Timedelta(hours=2))["state"]) == ["resolved"]


def test_hysteresis_keeps_severity_until_recovery(conn: duckdb.DuckDBPyConnection) -> None:
    record(conn, frame(candidate("db-1")), T0)  # critical
    holding = {
        **candidate("db-1", asof="b"),
        "severity": "warning",
        "status": "firing",
        "hold_severity": "critical",
    }
    assert update_open(conn, frame(holding), T0).empty, (
        "warning fires, critical not recovered: stays critical"
    )
    recovered = {**holding, "hold_severity": "warning"}
    (moved,) = update_open(conn, frame(recovered), T0).to_dict("records")
    assert moved["severity"] == "warning"
    up = {**recovered, "severity": "critical", "hold_severity": "critical"}
    assert list(update_open(conn, frame(up), T0)["severity"]) == ["critical"]
    gone = {**up, "status": "holding", "severity": "warning", "hold_severity": None}
    update_open(conn, frame(gone), T0 + pd.Timedelta(hours=1))
    assert list_alerts(conn)["cleared_at"].tolist() == [T0 + pd.Timedelta(hours=1)]


def test_failures_count_attempts_and_keep_the_last_error(conn: duckdb.DuckDBPyConnection) -> None:
    (alert_id,) = record(conn, frame(candidate()), T0)["id"]
    for attempt in range(1, 4):
        mark_failed(conn, [alert_id], f"slack: ratelimited (attempt {attempt})", T0)
    (row,) = list_alerts(conn).to_dict("records")
    assert (row["state"], row["attempts"], row["last_error"]) == (
        "failed",
        3,
        "slack: ratelimited (attempt 3)",
    )


def test_mark_delivered_records_destination(conn: duckdb.DuckDBPyConnection) -> None:
    (alert_id,) = record(conn, frame(candidate()), T0)["id"]
    mark_failed(conn, [alert_id], "TimeoutError: timed out", T0)
    mark_delivered(conn, [alert_id], "slack:#acme-alerts", T0 + pd.Timedelta(minutes=1))
    (row,) = list_alerts(conn).to_dict("records")
    assert (row["state"], row["destination"], row["attempts"]) == ("delivered", "slack:#acme-alerts", 2)
    assert row["delivered_at"] == T0 + pd.Timedelta(minutes=1)


def test_marks_never_reopen_a_resolved_alert(conn: duckdb.DuckDBPyConnection) -> None:
    (alert_id,) = record(conn, frame(candidate()), T0)["id"]
    mark_delivered(conn, [alert_id], "slack:#x", T0)
    resolve_missing(conn, "acme", DISK, ["disk"], [], T0)
    assert mark_delivered(conn, [alert_id, "nope"], "slack:#x", T0) == 0
    assert mark_failed(conn, [alert_id], "late", T0) == 0
    assert list(list_alerts(conn)["state"]) == ["resolved"]


def test_timezone_aware_now_is_stored_as_utc(conn: duckdb.DuckDBPyConnection) -> None:
    created = record(conn, frame(candidate()), pd.Timestamp("2026-01-05 03:00", tz="Europe/Paris"))
    assert created["created_at"][0] == pd.Timestamp("2026-01-05 02:00")


def test_reads_on_a_fresh_database_are_empty(conn: duckdb.DuckDBPyConnection) -> None:
    assert list(list_alerts(conn).columns) == ALERT_COLUMNS
    assert record(conn, frame(), T0).empty
