"""The chart an incident's first message carries: drawn by the forecasting/anomalies chart resources from the
warehouse's rows of the alert's series, uploaded with slack-sdk's files_upload_v2 into the message's thread
(the loopback stand-in over real HTTP), or written as a PNG next to the outbox.

The text is delivered exactly once whatever happens to the upload; a failed upload is recorded and tried again
on the next pass when it may succeed.
"""

import json

import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.alerting.defs import chart_drawers
from intentvision_dagster.alerting.delivery import CHART_ATTEMPTS, OutboxNotifier, deliver_notifications
from intentvision_dagster.alerting.dispatch import dispatch, list_notifications
from intentvision_dagster.alerting.resources import AlertRules
from intentvision_dagster.anomalies.resources import AnomalyChart
from intentvision_dagster.forecasting.resources import ForecastChart
from intentvision_dagster.resources import AlertChart, ProjectConfig
from intentvision_dagster.settings import ASSETS_DIR
from intentvision_dagster.warehouse import SCHEMA
from tests.alerting.support import (
    DISK,
    T0,
    TOKEN,
    DiesAfterPosting,
    candidate,
    log_alerts,
    notifier,
    routing,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LATER = T0 + pd.Timedelta(minutes=10)


class Drawn:
    """The real chart resources, remembering which series each chart was drawn from."""

    def __init__(self) -> None:
        self.series: list[set[str]] = []
        self.drawers = {"forecasts": self.forecast, "anomalies": self.anomaly}

    def forecast(self, tenant, metric, scored, forecasts):
        self.series.append(set(scored["unique_id"]) | set(forecasts["unique_id"]))
        return ForecastChart().png(scored, forecasts, {}, "%")

    def anomaly(self, tenant, metric, scored, forecasts):
        self.series.append(set(scored["unique_id"]))
        return AnomalyChart().png(scored, forecasts, {}, "%")


def _series_rows(tenant: str, host: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three days of a disk filling up and its three-day forecast, as the anomalies/forecasts tables hold."""
    uid = f'{tenant}/{DISK}{{host="{host}"}}'
    identity = {"tenant": tenant, "metric": DISK, "labels": f'host="{host}"', "unique_id": uid}
    history = pd.date_range(T0 - pd.Timedelta(hours=71), T0, freq="h")
    level = 60 + 0.25 * np.arange(len(history))
    scored = pd.DataFrame(
        {
            **identity,
            "ds": history,
            "y": level,
            "expected": level,
            "anomaly_score": 0.0,
            "is_anomaly": False,
            "severity": "none",
        }
    )
    future = pd.date_range(T0 + pd.Timedelta(hours=1), periods=72, freq="h")
    yhat = level[-1] + 0.25 * np.arange(1, 73)
    forecasts = pd.DataFrame(
        {
            **identity,
            "ds": future,
            "yhat": yhat,
            "lo_80": yhat - 2,
            "hi_80": yhat + 2,
            "lo_95": yhat - 4,
            "hi_95": yhat + 4,
            "model": "MSTL",
        }
    )
    return scored, forecasts


@pytest.fixture
def warehouse(conn):
    """acme's db-1 and db-2 and globex's db-1, all of the same metric, in the warehouse's tables."""
    parts = [
        _series_rows(tenant, host)
        for tenant, host in (("acme", "db-1"), ("acme", "db-2"), ("globex", "db-1"))
    ]
    conn.execute(f"create schema if not exists {SCHEMA}")
    for table, frame in (
        ("anomalies", pd.concat([scored for scored, _ in parts])),
        ("forecasts", pd.concat([forecast for _, forecast in parts])),
    ):
        conn.register("rows", frame)
        conn.execute(f"create table {SCHEMA}.{table} as select * from rows")
        conn.unregister("rows")
    return conn


def _notification(conn) -> dict:
    (row,) = list_notifications(conn).to_dict("records")
    return row


def _first_post(conn, deliver, drawn: Drawn | None = None):
    """db-1 of acme fires; the group's first notification is dispatched and delivered (with charts)."""
    log_alerts(conn, candidate("db-1"))
    dispatch(conn, routing(), T0, ui_url="http://dagster.test:3000")
    return deliver(conn, (drawn or Drawn()).drawers)


def test_the_chart_of_the_alerts_series_lands_in_the_incidents_thread(warehouse, slack):
    drawn = Drawn()
    report = _first_post(
        warehouse, lambda c, charts: deliver_notifications(c, notifier(slack), T0, charts=charts), drawn
    )

    assert (report.sent, report.charts, report.chart_errors) == (1, 1, [])
    (message,) = slack.messages
    (shared,) = slack.files
    assert (shared.channel, shared.thread_ts) == (message.channel, message.ts)
    assert shared.data.startswith(PNG_MAGIC) and len(shared.data) > 5000
    assert shared.title == f'acme/{DISK}{{host="db-1"}}: forecast (1 series)'
    assert drawn.series == [{f'acme/{DISK}{{host="db-1"}}'}], "only the alert's series, never globex's"
    row = _notification(warehouse)
    assert (row["chart_state"], json.loads(row["charts"]), row["chart_error"]) == (
        "attached",
        [shared.file_id],
        None,
    )
    assert [r.method for r in slack.calls()] == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ], "the text first, then slack-sdk's three upload steps"


def test_the_message_links_the_partition_in_dagster(warehouse, slack):
    _first_post(warehouse, lambda c, charts: deliver_notifications(c, notifier(slack), T0, charts=charts))
    context = slack.messages[0].blocks[-1]["elements"]
    link = f"http://dagster.test:3000/assets/forecasts?view=partitions&partition=acme%2F{DISK}"
    assert context[-1]["text"] == f":bar_chart: <{link}|acme/{DISK}> in Dagster"


def test_an_update_of_the_incident_uploads_no_second_chart(warehouse, slack):
    _first_post(warehouse, lambda c, charts: deliver_notifications(c, notifier(slack), T0, charts=charts))
    log_alerts(warehouse, candidate("db-2"), now=LATER)
    dispatch(warehouse, routing(group_interval=pd.Timedelta(0)), LATER)
    report = deliver_notifications(warehouse, notifier(slack), LATER, charts=Drawn().drawers)

    assert (report.sent, report.charts) == (1, 0)
    assert len(slack.top_level) == 1 and len(slack.calls("chat.update")) == 1
    assert len(slack.files) == 1
    update = list_notifications(warehouse).iloc[-1]
    assert (update["action"], update["chart_state"]) == ("update", None)


def test_a_429_on_the_upload_url_is_retried_by_slack_sdk(warehouse, slack):
    slack.fail_on("files.getUploadURLExternal", ("429", 1))
    report = _first_post(
        warehouse, lambda c, charts: deliver_notifications(c, notifier(slack), T0, charts=charts)
    )

    assert (report.sent, report.charts) == (1, 1)
    asked = [r.status for r in slack.requests if r.method == "files.getUploadURLExternal"]
    assert asked == [429, 200]
    assert slack.files[0].thread_ts == slack.messages[0].ts


@pytest.mark.parametrize(
    "fault, error",
    [(("500",), "HTTP Error 500"), (("hang", 3.0), "timed out")],
    ids=["5xx", "timeout"],
)
def test_a_failed_upload_keeps_the_text_once_and_is_tried_again_next_pass(warehouse, slack, fault, error):
    slack.fail_on("upload", fault)
    deliver = lambda c, charts: deliver_notifications(c, notifier(slack, timeout=1), T0, charts=charts)  # noqa: E731
    report = _first_post(warehouse, deliver)
    slack.wait_idle()

    assert (report.sent, report.failed, report.charts) == (1, 0, 0)
    assert len(slack.messages) == 1 and slack.files == []
    row = _notification(warehouse)
    assert (row["state"], row["chart_state"], row["chart_attempts"]) == ("sent", "pending", 1)
    assert error in row["chart_error"]
    assert "trying again next pass" in report.chart_errors[0]

    again = deliver_notifications(warehouse, notifier(slack), LATER, charts=Drawn().drawers)
    assert (again.sent, again.charts) == (0, 1)
    assert len(slack.messages) == 1, "the text is never posted twice"
    assert [f.thread_ts for f in slack.files] == [slack.messages[0].ts]
    assert _notification(warehouse)["chart_state"] == "attached"


def test_a_post_found_after_the_process_died_gets_its_chart_once(warehouse, slack):
    dying = DiesAfterPosting(token=TOKEN, base_url=slack.url, timeout=5)
    with pytest.raises(SystemExit):
        _first_post(warehouse, lambda c, charts: deliver_notifications(c, dying, T0, charts=charts))
    assert slack.files == [], "killed before the post was recorded: no chart yet"

    report = deliver_notifications(
        warehouse, notifier(slack), T0 + pd.Timedelta(minutes=3), charts=Drawn().drawers
    )
    assert (report.reconciled, report.sent, report.charts) == (1, 0, 1)
    assert len(slack.messages) == 1 and [f.thread_ts for f in slack.files] == [slack.messages[0].ts]


def test_an_upload_that_keeps_failing_gives_up_after_its_attempts(warehouse, slack):
    slack.fail_on("upload", *[("500",)] * CHART_ATTEMPTS)
    _first_post(warehouse, lambda c, charts: deliver_notifications(c, notifier(slack), T0, charts=charts))
    for minutes in range(1, CHART_ATTEMPTS + 1):
        deliver_notifications(
            warehouse, notifier(slack), T0 + pd.Timedelta(minutes=minutes), charts=Drawn().drawers
        )

    row = _notification(warehouse)
    assert (row["chart_state"], row["chart_attempts"]) == ("failed", CHART_ATTEMPTS)
    assert len([r for r in slack.requests if r.method == "upload"]) == CHART_ATTEMPTS
    assert len(slack.messages) == 1 and slack.files == []


def test_invalid_auth_on_the_upload_is_a_clear_error_and_not_retried(warehouse, slack):
    slack.fail_on("files.getUploadURLExternal", ("invalid_auth",))
    report = _first_post(
        warehouse, lambda c, charts: deliver_notifications(c, notifier(slack), T0, charts=charts)
    )

    assert (report.sent, report.failed, report.charts) == (1, 0, 0)
    row = _notification(warehouse)
    assert (row["state"], row["chart_state"]) == ("sent", "failed")
    assert row["chart_error"] == (
        "slack: invalid_auth (HTTP 200): Slack rejected the bot token (SLACK_BOT_TOKEN) on the chart upload; "
        "the message was delivered without its chart"
    )
    assert report.chart_errors == [f"chart for notification {row['id']} (attempt 1): {row['chart_error']}"]
    deliver_notifications(warehouse, notifier(slack), LATER, charts=Drawn().drawers)
    assert len([r for r in slack.requests if r.method == "files.getUploadURLExternal"]) == 1


def test_without_charts_nothing_is_drawn_or_uploaded(warehouse, slack):
    report = _first_post(warehouse, lambda c, charts: deliver_notifications(c, notifier(slack), T0))
    assert (report.sent, report.charts, slack.files) == (1, 0, [])
    assert _notification(warehouse)["chart_state"] is None


def test_an_anomaly_alert_gets_the_anomaly_chart(warehouse, slack):
    drawn = Drawn()
    alert = candidate("db-2", rule="anomalies") | {
        "details": json.dumps({"kind": "anomaly", "onset_ds": "2026-01-05T01:00:00"})
    }
    log_alerts(warehouse, alert)
    dispatch(warehouse, routing(), T0)
    report = deliver_notifications(warehouse, notifier(slack), T0, charts=drawn.drawers)

    assert report.charts == 1 and drawn.series == [{f'acme/{DISK}{{host="db-2"}}'}]
    assert slack.files[0].filename.endswith(f"-{DISK}-anomalies.png")


def test_the_outbox_writes_the_png_next_to_it_and_names_it(warehouse, tmp_path):
    outbox = OutboxNotifier(tmp_path / "outbox" / "alerts.jsonl")
    report = _first_post(warehouse, lambda c, charts: deliver_notifications(c, outbox, T0, charts=charts))

    assert (report.sent, report.charts) == (1, 1)
    post, chart = (json.loads(line) for line in outbox.path.read_text().splitlines())
    assert (post["action"], chart["action"], chart["thread_ts"]) == ("post", "chart", post["id"])
    (entry,) = chart["charts"]
    path = tmp_path / "outbox" / "charts" / f"{post['id']}-{DISK}-forecast.png"
    assert entry["path"] == str(path) and path.read_bytes().startswith(PNG_MAGIC)
    assert json.loads(_notification(warehouse)["charts"]) == [str(path)]


RECORDED: list[tuple[str, dict, str]] = []


class RecordingChart(AlertChart):
    """A chart resource that remembers what the sensor's drawer handed it (the domains' charts render it)."""

    def png(self, scored, forecasts, marks, unit):
        RECORDED.append((str(scored["unique_id"].iloc[0]), marks, unit))
        return PNG_MAGIC


def test_the_sensor_draws_every_rule_line_and_the_crossing_in_the_metrics_unit(tmp_path):
    RECORDED.clear()
    rules = AlertRules(alert_rules=str(ASSETS_DIR / "alert_rules.yaml"), tenant_rules_dir=str(tmp_path))
    project = ProjectConfig(
        landing_dir=str(tmp_path), reports_dir=str(tmp_path), metrics_catalog=str(ASSETS_DIR / "metrics.yaml")
    )
    drawers = chart_drawers({"forecasts": RecordingChart()}, rules, project)
    scored, forecasts = _series_rows("acme", "db-1")

    assert drawers["forecasts"]("acme", DISK, scored, forecasts) == PNG_MAGIC
    [(uid, marks, unit)] = RECORDED
    assert unit == "%"
    lines = {(line.value, line.kind) for line in marks[uid].lines}
    assert {(85.0, "warning"), (90.0, "critical")} <= lines
    [crossing] = [c for c in marks[uid].crossings if c.value == 90.0]
    assert forecasts["ds"].min() <= crossing.ds <= forecasts["ds"].max()
