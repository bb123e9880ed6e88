"""Fitting on two cores through the forkserver pool gives exactly what one process gives, and no worker
outlives the work it was started for (a run's process must be able to exit)."""

import multiprocessing
import threading

import numpy as np
import pandas as pd

from intentvision_dagster.forecasting.forecast import forecast
from intentvision_dagster.forecasting.spec import ForecastSpec
from intentvision_dagster.forecasting.workers import MIN_SERIES_PER_WORKER, worker_count, worker_pool
from tests.forecasting.factories import long_frame


def test_two_workers_match_one_process_even_next_to_running_threads() -> None:
    rng = np.random.default_rng(8)
    history = pd.concat(
        [long_frame(rng.normal(50, 5, 9) + i, f"s{i:03d}") for i in range(2 * MIN_SERIES_PER_WORKER)]
    )
    stop = threading.Event()
    busy = threading.Thread(
        target=stop.wait, daemon=True
    )  # a thread alive while the pool starts, as in Dagster
    busy.start()
    try:
        parallel = forecast(history, ForecastSpec(horizon=3, freq="h", n_jobs=2))
    finally:
        stop.set()
    serial = forecast(history, ForecastSpec(horizon=3, freq="h", n_jobs=1))
    pd.testing.assert_frame_equal(parallel, serial)
    assert parallel["unique_id"].nunique() == 2 * MIN_SERIES_PER_WORKER


def test_small_inputs_stay_in_process() -> None:
    assert worker_count(MIN_SERIES_PER_WORKER * 2 - 1, n_jobs=2) == 1
    assert worker_count(MIN_SERIES_PER_WORKER * 2, n_jobs=2) == 2
    assert worker_count(10_000, n_jobs=1) == 1


def _history() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.concat(
        [long_frame(rng.normal(50, 5, 9) + i, f"s{i:03d}") for i in range(2 * MIN_SERIES_PER_WORKER)]
    )


def test_a_call_outside_a_block_leaves_no_worker_behind() -> None:
    forecast(_history(), ForecastSpec(horizon=3, freq="h", n_jobs=2))
    assert multiprocessing.active_children() == []


def test_a_block_shares_one_pool_and_shuts_it_down_at_its_end() -> None:
    with worker_pool():
        first = forecast(_history(), ForecastSpec(horizon=3, freq="h", n_jobs=2))
        workers = {p.pid for p in multiprocessing.active_children()}
        second = forecast(_history(), ForecastSpec(horizon=3, freq="h", n_jobs=2))
        assert len(workers) == 2 and {p.pid for p in multiprocessing.active_children()} == workers
    assert multiprocessing.active_children() == []
    pd.testing.assert_frame_equal(first, second)
