"""Alert replay: two weeks, day by day, through the alerting code, with Slack failures injected.

(One script on purpose, over 400 lines: a benchmark is read top to bottom with its figures.)

    python bench/alerts_replay.py [--days 14] [--fault-rate 0.3] [--kill-rate 0.1] [--seed 7]
                                  [--nab-dir ../shared/data/nab] [--skip-demo] [--skip-nab] [--no-charts]
                                  [--upload-fault-rate 0.3]

Two worlds, each replayed on a simulated clock, delivering to a loopback stand-in of Slack's Web API
through slack-sdk (``tests/support/slack_standin.py``) that answers some requests with 429 + Retry-After,
500 or a hang longer than the client's timeout (``--fault-rate`` per delivery pass), and with a process
"killed" right after Slack accepted a post and before it was recorded (``--kill-rate``; the pass is then
repeated, as the daemon repeats a sensor tick whose cursor did not advance). Each incident's first message
gets its chart uploaded into its thread (``files_upload_v2``, drawn by the forecasting/anomalies chart
resources; ``--no-charts`` leaves them out), and the upload of the bytes fails on its own schedule (500 or a
hang longer than the timeout, in ``--upload-fault-rate`` of the passes, from a separate random stream so the
text faults and kills are drawn exactly as without charts):

* **demo**: the demo data (``assets/demo/series.yaml``: a disk filling up and a request spike on acme, nothing
  on globex) landed one day at a time; every simulated night one Dagster range run over all partitions (the
  nightly job: validation, anomalies, forecasts, backtest), then the alert sensor's own steps (new
  materializations since its cursor -> evaluate -> dispatch -> deliver) at 02:30 and every hour after.
* **nab**: the NAB dev subset's 28 files as one tenant's series (timestamps shifted to a common start), scored
  by the product's causal detector, the alert engine evaluated on each day's data every night and dispatching
  every hour. Incidents are NAB's labelled windows; the detector warms up for a week, so windows that start in
  the first 7 days are counted separately.

Figures: Slack notifications (firing) per labelled incident, notifications not matching any incident,
duplicates (the same notification id posted twice), incidents missed, breach lead time (demo disk), resolve
messages per resolved group. Since one incident is one message, a notification is either a top-level post
or an update (``chat.update`` of the incident's message plus a reply in its thread): top-level messages per
incident, updates and thread replies are reported apart, next to the two older figures of the same run:
messages per incident before incidents were edited in place (each firing notification its own message; the
notices that an alert moved to another channel did not exist) and one message per alert (before grouping).
Charts: files in Slack, how many sit in the thread of their incident's first message, threads holding a
chart twice, and the notifications' ``chart_state`` counts.
JSON goes to ``bench/results/alerts-replay-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python bench/alerts_replay.py` puts bench/ on the path, not the repo root

from bench.nab import long_frame, points_per_day  # noqa: E402
from bench.nab_scoring import load_corpus  # noqa: E402
from intentvision_dagster.alerting.defs import new_materialized_partitions  # noqa: E402
from intentvision_dagster.alerting.delivery import SlackNotifier, deliver_notifications  # noqa: E402
from intentvision_dagster.alerting.dispatch import dispatch, list_notifications  # noqa: E402
from intentvision_dagster.alerting.engine import evaluate_partitions  # noqa: E402
from intentvision_dagster.alerting.log import list_alerts  # noqa: E402
from intentvision_dagster.alerting.routing import Routing, load_routing  # noqa: E402
from intentvision_dagster.alerting.rules import load_rule_set  # noqa: E402
from intentvision_dagster.anomalies.detector import detect  # noqa: E402
from intentvision_dagster.anomalies.resources import AnomalyChart  # noqa: E402
from intentvision_dagster.catalog import load_catalog  # noqa: E402
from intentvision_dagster.definitions import build_definitions  # noqa: E402
from intentvision_dagster.demo_data import generate_demo  # noqa: E402
from intentvision_dagster.forecasting.resources import ForecastChart  # noqa: E402
from intentvision_dagster.partitions import series_partitions  # noqa: E402
from intentvision_dagster.runs import ingest_file, register_partitions, run_pipeline  # noqa: E402
from intentvision_dagster.settings import ASSETS_DIR, load_settings  # noqa: E402
from intentvision_dagster.warehouse import SCHEMA  # noqa: E402
from tests.alerting.support import DiesAfterPosting  # noqa: E402
from tests.support.slack_standin import SlackStandIn  # noqa: E402

DEFAULT_NAB_DIR = ROOT.parent / "shared" / "data" / "nab"
TOKEN = "xoxb-replay"
HOUR = pd.Timedelta(hours=1)
NAB_START = pd.Timestamp("2026-01-01")
NAB_TENANT, NAB_METRIC = "nab", "nab_value"
WARM_UP = pd.Timedelta(days=7)
CHARTS = {"forecasts": ForecastChart().png, "anomalies": AnomalyChart().png}


@dataclasses.dataclass
class Faults:
    """Injects Slack failures into delivery passes and counts them."""

    slack: SlackStandIn
    rng: random.Random
    fault_rate: float
    kill_rate: float
    charts: bool = True
    upload_fault_rate: float = 0.0
    upload_rng: random.Random = dataclasses.field(default_factory=lambda: random.Random(0))
    injected: dict[str, int] = dataclasses.field(default_factory=lambda: {"429": 0, "500": 0, "hang": 0})
    upload_faults: dict[str, int] = dataclasses.field(default_factory=lambda: {"500": 0, "hang": 0})
    kills: int = 0
    repeated_passes: int = 0

    @classmethod
    def from_args(cls, args, slack: SlackStandIn, rng: random.Random, upload_stream: int) -> Faults:
        """The command line's faults; upload faults come from their own stream (one per world)."""
        return cls(
            slack,
            rng,
            args.fault_rate,
            args.kill_rate,
            not args.no_charts,
            args.upload_fault_rate,
            random.Random(args.seed + upload_stream),
        )

    def deliver(self, conn: duckdb.DuckDBPyConnection, now: pd.Timestamp) -> None:
        queue = list_notifications(conn)
        texts = (queue["state"] != "sent").any()
        if not (texts or (queue["chart_state"] == "pending").any()):
            return
        # The text faults and kills are drawn exactly as without charts (only for passes with text to send).
        if texts and self.rng.random() < self.fault_rate:
            kind = self.rng.choice(["429", "500", "hang"])
            self.injected[kind] += 1
            self.slack.fail_next({"429": ("429", 1), "500": ("500",), "hang": ("hang", 1.5)}[kind])
        if self.charts and self.upload_rng.random() < self.upload_fault_rate:
            kind = self.upload_rng.choice(["500", "hang"])
            self.slack.fail_on("upload", {"500": ("500",), "hang": ("hang", 1.5)}[kind])
        else:
            kind = None
        charts = CHARTS if self.charts else None
        notifier = SlackNotifier(TOKEN, base_url=self.slack.url, timeout=1)
        if texts and self.rng.random() < self.kill_rate:
            dying = DiesAfterPosting(TOKEN, base_url=self.slack.url, timeout=1)
            try:
                deliver_notifications(conn, dying, now, charts=charts)
            except SystemExit:
                self.kills += 1
                self.repeated_passes += 1
        deliver_notifications(conn, notifier, now, charts=charts)
        self.slack.wait_idle(timeout=30)
        if kind is not None and not self.slack.drop_faults("upload"):  # count only the faults that hit
            self.upload_faults[kind] += 1


def delivered_messages(slack: SlackStandIn) -> tuple[list[str], int]:
    """Notification ids of every message Slack holds (top-level and thread replies), and how many ids it
    holds more than once."""
    ids = [
        (message.metadata or {}).get("event_payload", {}).get("notification_id") for message in slack.messages
    ]
    return ids, len(ids) - len(set(ids))


def message_shapes(slack: SlackStandIn) -> dict[str, int]:
    """What the channels show: top-level messages, edits of them, replies in their threads."""
    return {
        "slack_top_level_messages": len(slack.top_level),
        "slack_updates": len(slack.calls("chat.update")),
        "slack_thread_replies": len(slack.messages) - len(slack.top_level),
        "slack_permalinks": len(slack.calls("chat.getPermalink")),
    }


def chart_figures(slack: SlackStandIn, notifications: pd.DataFrame) -> dict:
    """Charts in Slack: where they landed, whether a thread got one twice, and what the log says of them."""
    posts = {message.ts for message in slack.top_level}
    per_thread = pd.Series([(f.thread_ts, f.filename) for f in slack.files], dtype=object)
    states = notifications["chart_state"].dropna().value_counts()
    return {
        "slack_files": len(slack.files),
        "files_in_their_messages_thread": sum(f.thread_ts in posts for f in slack.files),
        "threads_with_a_chart_twice": int(per_thread.duplicated().sum()),
        "chart_states": {str(k): int(v) for k, v in states.items()},
    }


def notification_table(conn: duckdb.DuckDBPyConnection, sent_at: dict[str, pd.Timestamp]) -> pd.DataFrame:
    frame = list_notifications(conn)
    return frame.assign(
        payload=frame["payload"].map(json.loads),
        simulated_at=frame["id"].map(sent_at).fillna(frame["created_at"]),
    )


def group_resolution(notifications: pd.DataFrame) -> dict[str, int]:
    """Resolve messages against resolutions: each time a notified group resolved it should say so once."""
    sent = notifications[notifications["state"] == "sent"].sort_values("created_at")
    episodes = extra = still_firing = 0
    for _, group in sent[sent["kind"] != "run_failure"].groupby("group_id"):
        firing_since_resolve = False
        for kind in group["kind"]:
            if kind == "firing":
                firing_since_resolve = True
            elif firing_since_resolve:
                episodes += 1
                firing_since_resolve = False
            else:
                extra += 1
        still_firing += firing_since_resolve
    return {
        "groups_notified": int(sent["group_id"].nunique()),
        "resolve_messages": int((sent["kind"] == "resolved").sum()),
        "resolved_episodes_with_one_resolve_message": episodes,
        "resolve_messages_without_firing_before": extra,
        "groups_still_firing_at_the_end": still_firing,
    }


def incident_figures(notifications: pd.DataFrame, incidents: list[dict], alerts: pd.DataFrame) -> dict:
    """Match firing notifications to incidents: a notification counts for an incident when it announces an
    alert the incident's ``match`` accepts (by series and time)."""
    firing = notifications[(notifications["kind"] == "firing") & (notifications["state"] == "sent")]
    posted = set(firing.loc[firing["action"] == "post", "id"])
    matched_ids: set[str] = set()
    per_incident = []
    for incident in incidents:
        hits = [
            row["id"]
            for row in firing.to_dict("records")
            if any(incident["match"](alert) for alert in row["payload"]["firing"])
        ]
        matched_ids.update(hits)
        first = firing[firing["id"].isin(hits)]["simulated_at"].min() if hits else None
        channels = set(firing.loc[firing["id"].isin(posted & set(hits)), "channel"])
        per_incident.append(
            {
                "name": incident["name"],
                "notifications": len(hits),
                "top_level": len(posted & set(hits)),
                "channels": sorted(channels),
                "first_at": first,
            }
        )
    count = len(incidents)
    reached = sum(len(item["channels"]) for item in per_incident)
    # Before incidents were edited in place, every firing notification was its own message, and a group
    # whose alert moved to another channel (an escalation) sent nothing: those move notices are new.
    move_notices = firing["payload"].map(
        lambda p: bool(p.get("changes")) and all(c.get("moved_to") for c in p["changes"])
    )
    old = int((~move_notices).sum())
    return {
        "incidents": count,
        "old_messages": old,
        "old_messages_per_incident": round(old / count, 3) if count else None,
        "firing_notifications": len(firing),
        "firing_top_level": len(posted),
        "firing_updates": len(firing) - len(posted),
        "top_level_per_incident": round(len(posted) / count, 3) if count else None,
        "matching_top_level_per_incident": round(len(posted & matched_ids) / count, 3) if count else None,
        "matching_top_level_per_incident_channel": round(len(posted & matched_ids) / reached, 3)
        if reached
        else None,
        "notifications_matching_incidents": len(matched_ids),
        "notifications_per_incident": round(len(firing) / count, 3) if count else None,
        "matching_notifications_per_incident": round(len(matched_ids) / count, 3) if count else None,
        "unmatched_notifications": len(firing) - len(matched_ids),
        "missed": [item["name"] for item in per_incident if item["notifications"] == 0],
        "alerts": len(alerts),
        "baseline_messages_one_per_alert": len(alerts),
        "per_incident": per_incident,
    }


def tick_hours(
    conn, routing: Routing, faults: Faults, start: pd.Timestamp, end: pd.Timestamp, sent_at: dict
) -> None:
    """Hourly sensor ticks without new data: group timers, resolves, repeats."""
    now = start
    while now < end:
        dispatch(conn, routing, now)
        faults.deliver(conn, now)
        record_sent(conn, now, sent_at)
        now += HOUR


def record_sent(conn, now: pd.Timestamp, sent_at: dict) -> None:
    """Remember the simulated time each notification was first sent (the table stores the passes' clock)."""
    frame = list_notifications(conn)
    for notification_id in frame.loc[frame["state"] == "sent", "id"]:
        sent_at.setdefault(notification_id, now)


def replay_demo(args, slack: SlackStandIn, rng: random.Random, echo) -> dict:
    home = Path(tempfile.mkdtemp(prefix="alerts-replay-demo-"))
    settings = load_settings({"INTENTVISION_HOME": str(home)})
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    end = pd.Timestamp.now(tz="UTC").floor("D").tz_localize(None) + pd.Timedelta(hours=2)
    data = generate_demo(ASSETS_DIR / "demo" / "series.yaml", end)
    rules = load_rule_set(settings.alert_rules, settings.tenant_rules_dir)
    routing = load_routing(settings.tenants_config)
    catalog = load_catalog(settings.metrics_catalog)
    faults = Faults.from_args(args, slack, rng, upload_stream=1)
    cursor: dict = {}
    sent_at: dict[str, pd.Timestamp] = {}
    previous = None
    run_seconds = 0.0
    for day in range(args.days):
        cut = end - pd.Timedelta(days=args.days - 1 - day)
        batches = []
        for tenant, frame in data.items():
            stamps = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_localize(None)
            part = frame[(stamps <= cut) & ((stamps > previous) if previous is not None else True)]
            path = home / "replay" / f"{tenant}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            part.to_csv(path, index=False, float_format="%.10g")
            batches.append(ingest_file(path, tenant, settings))
        previous = cut
        keys = register_partitions(instance, batches)
        started = time.perf_counter()
        every_key = list(
            instance.get_dynamic_partitions(series_partitions.name)
        )  # the range is in this order
        outcomes = run_pipeline(defs, instance, every_key, one_run=True)
        run_seconds += time.perf_counter() - started
        now = cut + pd.Timedelta(minutes=30)
        new_keys, cursor = new_materialized_partitions(instance, cursor)
        with duckdb.connect(str(settings.warehouse_path)) as conn:
            units = {key.split("/", 1)[1]: catalog.spec(key.split("/", 1)[1]).unit for key in new_keys}
            evaluate_partitions(conn, sorted(new_keys), rules, units, now)
            dispatch(conn, routing, now)
            faults.deliver(conn, now)
            record_sent(conn, now, sent_at)
            tick_hours(conn, routing, faults, now + HOUR, cut + pd.Timedelta(days=1), sent_at)
        echo(
            f"  demo day {day + 1}/{args.days} (data to {cut:%Y-%m-%d %H:%M}): run "
            f"{'ok' if all(o.success for o in outcomes) else 'FAILED'}, {len(keys)} partitions landed, "
            f"{len(slack.messages)} Slack messages so far"
        )
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        alerts = list_alerts(conn)
        notifications = notification_table(conn, sent_at)
        resolution = group_resolution(notifications)
    acme = data["acme"]
    disk = acme[
        (acme["metric"] == "node_filesystem_usage_percent") & acme["labels"].str.contains("postgresql")
    ]
    breach_at = end + HOUR * ((90.0 - float(disk["value"].iloc[-1])) / 0.2)  # the ramp's +0.2 %/h, to 90 %
    spike_start = (end - pd.Timedelta(hours=60)).floor("D") + pd.Timedelta(hours=13)
    if spike_start > end - pd.Timedelta(hours=60):
        spike_start -= pd.Timedelta(days=1)
    incidents = [
        {
            "name": "acme disk /var/lib/postgresql reaches 90 %",
            "match": lambda a: a["rule"] == "disk-capacity" and "postgresql" in a["series"],
        },
        {
            "name": "acme checkout /api/pay request spike",
            "match": lambda a: (
                "http_requests_per_second" in a["series"]
                and "/api/pay" in a["series"]
                and spike_start - HOUR
                <= pd.Timestamp(a["details"].get("onset_ds", "1970-01-01"))
                <= spike_start + 3 * HOUR
            ),
        },
    ]
    figures = incident_figures(notifications, incidents, alerts)
    firing = notifications[(notifications["kind"] == "firing") & (notifications["state"] == "sent")]
    figures["breach_at"] = str(breach_at)
    for label, severities in (("any_level", {"warning", "critical"}), ("critical_90", {"critical"})):
        times = [
            row["simulated_at"]
            for row in firing.to_dict("records")
            if any(incidents[0]["match"](a) and a["severity"] in severities for a in row["payload"]["firing"])
        ]
        figures[f"breach_lead_time_hours_{label}"] = (
            round((breach_at - min(times)) / HOUR, 1) if times else None
        )
    figures.update(resolution)
    figures["pipeline_seconds"] = round(run_seconds, 1)
    figures["faults"] = {**faults.injected, "killed_after_post": faults.kills}
    figures["charts"] = {**chart_figures(slack, notifications), "upload_faults": faults.upload_faults}
    return figures


def nab_series(nab_dir: Path) -> tuple[pd.DataFrame, list[dict]]:
    """Every NAB file as a series of one tenant, shifted to start at NAB_START, scored; and its windows."""
    corpus = load_corpus(nab_dir)
    scored, windows = [], []
    by_season: dict[int, list] = {}
    for nab_file in corpus:
        by_season.setdefault(points_per_day(nab_file), []).append(nab_file)
    for season, files in by_season.items():
        frames = []
        for nab_file in files:
            frame = long_frame(nab_file)
            shift = NAB_START - frame["ds"].iloc[0]
            labels = f'file="{nab_file.name}"'
            frames.append(
                frame.assign(
                    ds=frame["ds"] + shift,
                    unique_id=f"{NAB_TENANT}/{NAB_METRIC}{{{labels}}}",
                    tenant=NAB_TENANT,
                    metric=NAB_METRIC,
                    labels=labels,
                )
            )
            stamps = frame["ds"] + shift
            for start, stop in nab_file.windows:
                windows.append({"file": nab_file.name, "start": stamps.iloc[start], "end": stamps.iloc[stop]})
        scored.append(detect(pd.concat(frames, ignore_index=True), season_length=season))
    return pd.concat(scored, ignore_index=True), windows


def replay_nab(args, slack: SlackStandIn, rng: random.Random, echo) -> dict:
    scored, windows = nab_series(args.nab_dir)
    home = Path(tempfile.mkdtemp(prefix="alerts-replay-nab-"))
    settings = load_settings({"INTENTVISION_HOME": str(home)})
    settings.ensure_dirs()
    rules = load_rule_set(settings.alert_rules, settings.tenant_rules_dir)
    shipped = load_routing(settings.tenants_config)
    nab_route = dataclasses.replace(shipped.route("globex"), channels={"default": "#nab-replay"})
    routing = Routing({**shipped.tenants, NAB_TENANT: nab_route}, shipped.operator_channel)
    faults = Faults.from_args(args, slack, rng, upload_stream=2)
    sent_at: dict[str, pd.Timestamp] = {}
    key = f"{NAB_TENANT}/{NAB_METRIC}"
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        conn.execute(f"create schema if not exists {SCHEMA}")
        for day in range(1, args.days + 1):
            now = NAB_START + pd.Timedelta(days=day)
            today = scored[scored["ds"] < now]
            conn.execute(f"drop table if exists {SCHEMA}.anomalies")
            conn.register("today", today)
            conn.execute(f"create table {SCHEMA}.anomalies as select * from today")
            conn.unregister("today")
            evaluate_partitions(conn, [key], rules, {}, now)
            dispatch(conn, routing, now)
            faults.deliver(conn, now)
            record_sent(conn, now, sent_at)
            tick_hours(conn, routing, faults, now + HOUR, now + pd.Timedelta(days=1), sent_at)
            echo(f"  nab day {day}/{args.days}: {len(slack.messages)} Slack messages so far")
        alerts = list_alerts(conn)
        notifications = notification_table(conn, sent_at)
        resolution = group_resolution(notifications)
    end = NAB_START + pd.Timedelta(days=args.days)
    in_replay = [w for w in windows if w["start"] < end - pd.Timedelta(days=1)]

    def matcher(window):
        def match(alert):
            onset = pd.Timestamp(alert["details"].get("onset_ds", "1970-01-01"))
            return window["file"] in alert["series"] and window["start"] <= onset <= window["end"]

        return match

    def figures_for(chosen):
        incidents = [{"name": f"{w['file']} {w['start']:%m-%d %H:%M}", "match": matcher(w)} for w in chosen]
        return incident_figures(notifications, incidents, alerts)

    after_warm_up = [w for w in in_replay if w["start"] >= NAB_START + WARM_UP]
    figures = figures_for(in_replay)
    warm = figures_for(after_warm_up)
    figures["after_warm_up"] = {
        "incidents": warm["incidents"],
        "notifications_matching_incidents": warm["notifications_matching_incidents"],
        "missed": warm["missed"],
    }
    figures.pop("per_incident")
    figures.update(resolution)
    figures["faults"] = {**faults.injected, "killed_after_post": faults.kills}
    figures["charts"] = {**chart_figures(slack, notifications), "upload_faults": faults.upload_faults}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--kill-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--nab-dir", type=Path, default=DEFAULT_NAB_DIR)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-nab", action="store_true")
    parser.add_argument("--no-charts", action="store_true", help="deliver without uploading charts")
    parser.add_argument(
        "--upload-fault-rate", type=float, default=0.3, help="share of passes whose chart upload fails once"
    )
    args = parser.parse_args()
    echo = lambda text: print(text, flush=True)  # noqa: E731
    rng = random.Random(args.seed)
    started = time.perf_counter()
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    for name, replay, skip in (("demo", replay_demo, args.skip_demo), ("nab", replay_nab, args.skip_nab)):
        if skip:
            continue
        echo(f"replaying {name} over {args.days} days")
        with SlackStandIn(token=TOKEN) as slack:
            figures = replay(args, slack, rng, echo)
            ids, duplicates = delivered_messages(slack)
            figures["slack_messages"] = len(ids)
            figures["duplicates"] = duplicates
            figures.update(message_shapes(slack))
            figures["slack_requests"] = len(slack.requests)
        results[name] = figures
    results["seconds"] = round(time.perf_counter() - started, 1)
    out = ROOT / "bench" / "results" / f"alerts-replay-{pd.Timestamp.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    for name in ("demo", "nab"):
        if name not in results:
            continue
        r = results[name]
        echo(f"\n{name}:")
        echo(
            f"  incidents {r['incidents']}, firing notifications {r['firing_notifications']} "
            f"({r['notifications_per_incident']} per incident; {r['matching_notifications_per_incident']} "
            f"matching an incident), unmatched {r['unmatched_notifications']}, missed {len(r['missed'])}"
        )
        echo(
            f"  one incident, one message: top-level firing messages {r['firing_top_level']} "
            f"({r['top_level_per_incident']} per incident; matching an incident "
            f"{r['matching_top_level_per_incident']} per incident, "
            f"{r['matching_top_level_per_incident_channel']} per incident and channel it reached), "
            f"firing updates {r['firing_updates']}; in Slack: {r['slack_top_level_messages']} top-level "
            f"messages, {r['slack_updates']} updates (chat.update), "
            f"{r['slack_thread_replies']} thread replies, {r['slack_permalinks']} permalinks"
        )
        echo(
            f"  old figure, each firing notification its own message (no move notices): {r['old_messages']} "
            f"({r['old_messages_per_incident']} per incident)"
        )
        echo(
            f"  baseline one message per alert: {r['baseline_messages_one_per_alert']} messages "
            f"({r['baseline_messages_one_per_alert'] / max(r['incidents'], 1):.2f} per incident); "
            f"grouped/baseline {r['firing_notifications'] / max(r['baseline_messages_one_per_alert'], 1):.2f}"
        )
        echo(
            f"  Slack messages {r['slack_messages']}, duplicates {r['duplicates']} "
            f"under faults {r['faults']}; "
            f"resolve messages {r['resolve_messages']}: {r['resolved_episodes_with_one_resolve_message']} "
            f"group resolutions announced once, {r['resolve_messages_without_firing_before']} extra, "
            f"{r['groups_still_firing_at_the_end']} groups still firing at the end"
        )
        echo(f"  charts: {r['charts']}")
        if name == "demo":
            echo(
                f"  disk breach expected {r['breach_at']}, "
                f"first alerted {r['breach_lead_time_hours_any_level']} h before (85 % warning line), "
                f"{r['breach_lead_time_hours_critical_90']} h before at critical (90 % line)"
            )
        if "after_warm_up" in r:
            echo(f"  after the detector's week of warm-up: {r['after_warm_up']}")
    echo(f"\n{results['seconds']} s; results in {out}")


if __name__ == "__main__":
    main()
