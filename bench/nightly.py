"""Nightly-job benchmark: N synthetic hourly series through the real Dagster nightly runs, vs a Prophet loop.

    python bench/nightly.py [--series 10000] [--partitions 100] [--days 30] [--prophet-sample 20]

Figures, not pass/fail: series/s for the whole nightly pipeline, seconds per asset, the time outside our
model/validation code (run wall time minus the compute seconds each asset reports), peak RSS, and — in the
same run, on a sample of the same series — a Prophet fit+predict loop, so the speed figure is also a ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HOME = Path(tempfile.mkdtemp(prefix="intentvision-bench-"))
os.environ["INTENTVISION_HOME"] = str(
    HOME
)  # before the product is imported: the benchmark never touches yours

import dagster as dg  # noqa: E402

from intentvision_dagster.definitions import build_definitions  # noqa: E402
from intentvision_dagster.jobs import PIPELINE_JOB_NAME, build_nightly_schedule  # noqa: E402
from intentvision_dagster.landing import land_batch  # noqa: E402
from intentvision_dagster.runs import QUIET_LOGS  # noqa: E402
from intentvision_dagster.series import unique_id  # noqa: E402
from intentvision_dagster.settings import load_settings  # noqa: E402

ASSETS = ["raw_series", "validated_series", "anomalies", "forecasts", "forecast_accuracy"]
HORIZON = 72


def synthetic_partition(
    tenant: str, metric: str, n_series: int, days: int, end: pd.Timestamp, rng
) -> pd.DataFrame:
    """Hourly infra-like series: level, daily and weekly seasonality, a mild trend and noise."""
    stamps = pd.date_range(end=end, periods=days * 24, freq="h")
    t = np.arange(len(stamps))
    level = rng.uniform(20, 60, (n_series, 1))
    daily = rng.uniform(2, 15, (n_series, 1)) * np.sin(
        2 * np.pi * (t + rng.integers(0, 24, (n_series, 1))) / 24
    )
    weekly = rng.uniform(0, 5, (n_series, 1)) * np.sin(2 * np.pi * t / 168)
    trend = rng.uniform(-0.005, 0.02, (n_series, 1)) * t
    y = np.clip(level + daily + weekly + trend + rng.normal(0, 1.5, (n_series, len(t))), 0, None)
    labels = [f'instance="host-{i:05d}"' for i in range(n_series)]
    return pd.DataFrame(
        {
            "tenant": tenant,
            "metric": metric,
            "labels": np.repeat(labels, len(t)),
            "unique_id": np.repeat([unique_id(tenant, metric, lab) for lab in labels], len(t)),
            "ds": np.tile(stamps.values, n_series),
            "y": y.ravel(),
        }
    )


def land_synthetic(settings, n_series: int, n_partitions: int, days: int) -> list[str]:
    rng = np.random.default_rng(7)
    end = pd.Timestamp.now(tz="UTC").floor("h").tz_localize(None)
    tenants = max(1, round(n_partitions**0.5))
    metrics_per_tenant = int(np.ceil(n_partitions / tenants))
    per_partition = max(1, n_series // n_partitions)
    keys = []
    for p in range(n_partitions):
        tenant, metric = f"tenant-{p // metrics_per_tenant:02d}", f"bench_metric_{p % metrics_per_tenant:02d}"
        land_batch(
            synthetic_partition(tenant, metric, per_partition, days, end, rng), settings.landing_dir, tenant
        )
        keys.append(f"{tenant}/{metric}")
    return keys


def prophet_loop(frame: pd.DataFrame, sample: int) -> tuple[int, float]:
    """Fit + predict Prophet with defaults, one series at a time, on ``sample`` series of the same data."""
    import logging

    from prophet import Prophet

    logging.getLogger("cmdstanpy").disabled = True
    ids = frame["unique_id"].drop_duplicates().head(sample)
    started = time.perf_counter()
    for uid in ids:
        series = frame.loc[frame["unique_id"] == uid, ["ds", "y"]]
        model = Prophet().fit(series)
        model.predict(model.make_future_dataframe(periods=HORIZON, freq="h", include_history=False))
    return len(ids), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--prophet-sample", type=int, default=20)
    args = parser.parse_args()

    settings = load_settings()
    defs = build_definitions(settings)
    print(
        f"landing {args.series} series x {args.days * 24} hourly points in {args.partitions} partitions ..."
    )
    keys = land_synthetic(settings, args.series, args.partitions, args.days)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenant_metric", keys)
        schedule = build_nightly_schedule(settings.nightly_cron)
        requests = schedule.evaluate_tick(dg.build_schedule_context(instance=instance)).run_requests
        print(f"nightly schedule: {len(requests)} run(s) for {len(keys)} partitions")
        job = defs.resolve_job_def(PIPELINE_JOB_NAME)
        started = time.perf_counter()
        step_seconds = dict.fromkeys(ASSETS, 0.0)
        compute_seconds = dict.fromkeys(ASSETS, 0.0)
        for index, request in enumerate(requests, start=1):
            result = job.execute_in_process(instance=instance, tags=request.tags, run_config=QUIET_LOGS)
            for stat in instance.get_run_step_stats(result.run_id):
                step_seconds[stat.step_key] = (
                    step_seconds.get(stat.step_key, 0.0) + stat.end_time - stat.start_time
                )
            for asset in ASSETS:
                for event in result.asset_materializations_for_node(asset)[:1]:
                    reported = event.metadata.get("compute_seconds")
                    compute_seconds[asset] += float(reported.value) if reported else 0.0
            print(f"  run {index}/{len(requests)} done after {time.perf_counter() - started:.0f} s")
        wall = time.perf_counter() - started
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n_series = len(keys) * max(1, args.series // args.partitions)

    first = keys[0].split("/")
    sample_frame = synthetic_partition(
        first[0],
        first[1],
        args.prophet_sample,
        args.days,
        pd.Timestamp.now().floor("h"),
        np.random.default_rng(7),
    )
    prophet_n, prophet_seconds = prophet_loop(sample_frame, args.prophet_sample)
    prophet_rate = prophet_n / prophet_seconds
    ours_rate = n_series / wall
    forecast_only_rate = (
        n_series / compute_seconds["forecasts"] if compute_seconds["forecasts"] else float("nan")
    )
    model_time = sum(compute_seconds.values())
    report = {
        "command": " ".join(["python", *sys.argv]),
        "series": n_series,
        "partitions": len(keys),
        "runs": len(requests),
        "points_per_series": args.days * 24,
        "wall_seconds": round(wall, 1),
        "series_per_second": round(ours_rate, 1),
        "seconds_per_asset_step": {k: round(v, 1) for k, v in step_seconds.items()},
        "compute_seconds_per_asset": {k: round(v, 1) for k, v in compute_seconds.items()},
        # Everything outside our model/validation code: Dagster, DuckDB reads and writes, plot rendering.
        "outside_compute_seconds": round(wall - model_time, 1),
        "outside_compute_share": round((wall - model_time) / wall, 3),
        "peak_rss_mb": round(peak_rss_mb, 0),
        "rss_before_runs_mb": round(rss_before / 1024, 0),
        "prophet_sample_series": prophet_n,
        "prophet_series_per_second": round(prophet_rate, 2),
        "ratio_nightly_pipeline_vs_prophet_forecast_only": round(ours_rate / prophet_rate, 1),
        "ratio_our_forecast_step_vs_prophet": round(forecast_only_rate / prophet_rate, 1),
    }
    out = Path(__file__).parent / "results" / f"nightly-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
