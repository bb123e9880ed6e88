"""Model fitting on several cores through a forkserver process pool.

statsforecast's own ``n_jobs`` forks the calling process, and forking a process that runs threads (Dagster's,
DuckDB's) deadlocked now and then in our test runs. A forkserver pool forks its workers from a separate,
single-threaded server process that has preloaded the engine, so the caller's threads never matter. The
server starts once per process and is reused by every later pool. Series are dealt round-robin to the
workers (neighbouring series tend to share a model and a cost); each worker fits its share in one call.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import numpy as np
import pandas as pd

MIN_SERIES_PER_WORKER = 100
"""Below this many series per worker the pool's start-up and pickling cost more than they save."""
_PRELOAD = ["intentvision_dagster.forecasting.engine", "intentvision_dagster.forecasting.backtest"]


def worker_count(n_series: int, n_jobs: int) -> int:
    return max(1, min(n_jobs, n_series // MIN_SERIES_PER_WORKER))


def map_series(
    fn: Callable[..., Any],
    data: pd.DataFrame,
    n_jobs: int,
    on_progress: Callable[[int], None] | None = None,
    **kwargs: Any,
) -> list[Any]:
    """``fn(share, on_progress=..., **kwargs)`` for shares of ``data``'s series, one per worker.

    One share (``fn`` in this process, reporting its own progress) when ``n_jobs`` is 1 or the data is small;
    otherwise one result per worker, in share order, with ``on_progress`` called as each share finishes.
    """
    ids = data["unique_id"].unique()
    workers = worker_count(len(ids), n_jobs)
    if workers == 1:
        return [fn(data, on_progress=on_progress, **kwargs)]
    owner = pd.Series(np.arange(len(ids)) % workers, index=ids)
    shares = [data[data["unique_id"].map(owner) == worker] for worker in range(workers)]
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    results: list[Any] = [None] * workers
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(fn, share, on_progress=None, **kwargs): i for i, share in enumerate(shares)}
        for future in as_completed(futures):
            index = futures[future]
            results[index] = future.result()
            if on_progress is not None:
                on_progress(shares[index]["unique_id"].nunique())
    return results
