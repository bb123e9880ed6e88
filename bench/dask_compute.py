"""Distributed-profile compute benchmark: the same model fitting on 1 and 2 Dask workers, with the local
baselines measured in the same run.

    python bench/dask_compute.py [--series 2000] [--days 14] [--horizon 24]     (make bench-distributed)

(Not ``bench/distributed.py``: run as a script, that name would shadow the ``distributed`` package.)

The workload is the engine's own path: ``forecast()`` on generated hourly series (backtest selection, then
fit and predict, each through ``map_series`` in two shares). It runs four ways: in one process (the
baseline), on the local forkserver pool with 2 workers (the embedded profile), and on a Dask ``LocalCluster``
(the distributed profile, ``Client.map`` with retries) with 1 and with 2 worker processes, the same two
shares each time. Each way first fits a small warm-up slice (numba compilation, worker start-up) outside the
timing. Reported: series/s per way, the 2-worker/1-worker ratio on Dask (target >= 1.8 on 2 cores), Dask vs
the local ways, whether every way's forecasts equal the in-process ones exactly, and the machine's load
average before and after (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial

import numpy as np
import pandas as pd

from intentvision_dagster.forecasting.forecast import forecast
from intentvision_dagster.forecasting.spec import ForecastSpec
from intentvision_dagster.forecasting.workers import MIN_SERIES_PER_WORKER, local_cluster, worker_pool

SHARES = 2
WARM_UP_SERIES = SHARES * MIN_SERIES_PER_WORKER


def hourly_series(n_series: int, days: int, seed: int = 0) -> pd.DataFrame:
    """Ops-like hourly series: levels, daily cycles, slow trends and noise that differ per series."""
    rng = np.random.default_rng(seed)
    hours = np.arange(24 * days)
    frames = []
    for i in range(n_series):
        level, amplitude, trend, noise = (
            rng.uniform(10, 90),
            rng.uniform(0, 20),
            rng.normal(0, 0.02),
            1 + i % 5,
        )
        y = level + amplitude * np.sin(2 * np.pi * (hours + i) / 24) + trend * hours
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": f"bench/cpu{{host=h{i:05d}}}",
                    "ds": pd.date_range("2026-01-01", periods=hours.size, freq="h"),
                    "y": y + rng.normal(0, noise, hours.size),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def timed(block: Callable[[], AbstractContextManager], history: pd.DataFrame, spec: ForecastSpec):
    """Seconds to forecast ``history`` inside ``block()`` (after a warm-up slice) and the forecasts."""
    warm_up = history[history["unique_id"].isin(history["unique_id"].unique()[:WARM_UP_SERIES])]
    with block():
        forecast(warm_up, spec)
        started = time.perf_counter()
        result = forecast(history, spec)
        return time.perf_counter() - started, result


@contextmanager
def on_dask(workers: int) -> Iterator[None]:
    """Engine calls inside go to a fresh ``LocalCluster`` of ``workers`` processes, closed at the end."""
    with local_cluster(workers) as cluster, worker_pool(cluster.scheduler_address):
        yield


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--horizon", type=int, default=24)
    args = parser.parse_args()
    history = hourly_series(args.series, args.days)
    print(
        f"{args.series} hourly series x {24 * args.days} points, horizon {args.horizon}; cores: "
        f"{os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    one_process = ForecastSpec(horizon=args.horizon, freq="h", n_jobs=1)
    two_shares = ForecastSpec(horizon=args.horizon, freq="h", n_jobs=SHARES)
    ways = {
        "in-process (1 process, baseline)": (nullcontext, one_process),
        "forkserver pool, 2 workers (embedded profile)": (worker_pool, two_shares),
        "Dask LocalCluster, 1 worker": (partial(on_dask, 1), two_shares),
        "Dask LocalCluster, 2 workers": (partial(on_dask, 2), two_shares),
    }
    rates: dict[str, float] = {}
    baseline: pd.DataFrame | None = None
    for name, (block, spec) in ways.items():
        seconds, result = timed(block, history, spec)
        rates[name] = args.series / seconds
        baseline = result if baseline is None else baseline
        identical = result.equals(baseline)
        print(
            f"{name:48s} {seconds:8.1f} s  {rates[name]:7.2f} series/s  "
            f"identical to in-process: {'yes' if identical else 'NO'}  (load {os.getloadavg()[0]:.2f})",
            flush=True,
        )
    dask_1, dask_2 = rates["Dask LocalCluster, 1 worker"], rates["Dask LocalCluster, 2 workers"]
    print(f"Dask 2 workers / 1 worker: {dask_2 / dask_1:.2f}x (target >= 1.8)")
    print(f"Dask 1 worker / in-process: {dask_1 / rates['in-process (1 process, baseline)']:.2f}x")
    print(f"Dask 2 workers / forkserver 2 workers: {dask_2 / rates[list(ways)[1]]:.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
