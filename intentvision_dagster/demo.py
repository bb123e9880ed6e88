"""``make demo``: the whole product on generated data, end to end through Dagster, with a summary."""

from __future__ import annotations

import time
from collections.abc import Callable

import dagster as dg
import pandas as pd

from intentvision_dagster.alerting.dispatch import list_notifications
from intentvision_dagster.alerting.log import list_alerts
from intentvision_dagster.definitions import defs, storage_resources
from intentvision_dagster.demo_data import write_demo_files
from intentvision_dagster.runs import ingest_file, register_partitions, run_pipeline, tick_alert_sensor
from intentvision_dagster.settings import ASSETS_DIR, Settings, prepare_dagster_home
from intentvision_dagster.warehouse import SCHEMA

DEMO_CONFIG = ASSETS_DIR / "demo" / "series.yaml"


def summarize(conn, keys: list[str]) -> list[str]:
    """Human-readable figures for the partitions the demo ran."""
    params = [keys]
    where = "where tenant || '/' || metric in (select unnest(?))"
    t = SCHEMA
    series = conn.execute(
        f"select count(distinct unique_id) from {t}.validated_series {where}", params
    ).fetchone()[0]
    forecast_rows = conn.execute(f"select count(*) from {t}.forecasts {where}", params).fetchone()[0]
    mase = conn.execute(
        f"select metric, median(mase) from {t}.forecast_accuracy {where} group by metric order by metric",
        params,
    ).fetchall()
    events = conn.execute(
        f"select severity, count(distinct event_id) from {t}.anomalies {where} and is_anomaly "
        "group by severity order by severity",
        params,
    ).fetchall()
    lines = [
        f"partitions: {len(keys)}   series: {series}   forecast rows: {forecast_rows}",
        "median MASE per metric (rolling-origin backtest; < 1 beats seasonal naive):",
        *[f"  {metric:<40} {value:.3f}" for metric, value in mase],
        "anomaly events by severity: " + (", ".join(f"{sev} {n}" for sev, n in events) or "none"),
    ]
    alerts = list_alerts(conn)
    notifications = list_notifications(conn)
    lines.append(f"alerts: {len(alerts)} in {len(notifications)} grouped notification(s)")
    for row in alerts.itertuples():
        lines.append(f"  [{row.severity}] {row.tenant}: {row.summary}")
        lines.append(f"      state {row.state} -> {row.destination or 'not delivered yet'}")
    return lines


def run_demo(
    settings: Settings, end: pd.Timestamp | None = None, echo: Callable[[str], None] = print
) -> None:
    started = time.perf_counter()
    prepare_dagster_home(settings)
    instance = dg.DagsterInstance.get()
    end = end or pd.Timestamp.now(tz="UTC").floor("h").tz_localize(None)
    echo(f"IntentVision demo: state in {settings.home}")
    files = write_demo_files(DEMO_CONFIG, end, settings.home / "demo")
    batches = [ingest_file(path, path.stem, settings) for path in files]
    for batch in batches:
        echo(f"landed {batch.rows} rows for tenant {batch.tenant} ({len(batch.metrics)} metrics)")
    keys = register_partitions(instance, batches)
    echo(f"running the pipeline for {len(keys)} partitions through Dagster (one run each):")
    outcomes = run_pipeline(defs, instance, keys, progress=echo)
    tick_alert_sensor(defs, instance)
    with storage_resources(settings)["warehouse"].get_connection() as conn:
        lines = summarize(conn, keys)
    failed = [o.partitions[0] for o in outcomes if not o.success]
    echo("")
    echo("\n".join(lines))
    echo("")
    echo(f"warehouse: {settings.lake_uri or settings.warehouse_path}")
    echo(f"plots:     {settings.reports_dir}/<tenant>/<metric>.png")
    destination = "Slack" if settings.slack_token_set else settings.outbox_path
    echo(f"alerts:    {destination}  (intentvision alerts list)")
    echo("UI:        make ui, then open http://127.0.0.1:3000 (runs, partitions, checks, plots)")
    echo(
        f"demo finished in {time.perf_counter() - started:.0f} s"
        + (f"; FAILED runs: {failed}" if failed else "")
    )
    if failed:
        raise SystemExit(1)
