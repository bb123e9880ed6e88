"""Model fitting on several cores through a forkserver process pool.

statsforecast's own ``n_jobs`` forks the calling process, and forking a process that runs threads (Dagster's,
DuckDB's) deadlocked now and then in our test runs. A forkserver pool forks its workers from a separate,
single-threaded server process that has preloaded the engine, so the caller's threads never matter. The
server and the pool start once per process and serve every later call. Like any spawn/forkserver pool,
workers import the caller's main module once (``python -m`` package mains are skipped), so a script that
uses the engine on several cores keeps its work under ``if __name__ == "__main__":``. Series are dealt
round-robin to the workers (neighbouring series tend to share a model and a cost); each fits its share in one
call.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np
import pandas as pd

MIN_SERIES_PER_WORKER = 25
"""Below this many series per worker the pool's start-up and pickling cost more than they save."""
_PRELOAD = ["intentvision_dagster.forecasting.backtest", "intentvision_dagster.forecasting.forecast"]
"""The modules whose functions run in the workers (they import the rest of the engine)."""
_POOLS: dict[int, ProcessPoolExecutor] = {}


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
    pool = _pool(workers)
    results: list[Any] = [None] * workers
    futures = {pool.submit(fn, share, on_progress=None, **kwargs): i for i, share in enumerate(shares)}
    try:
        for future in as_completed(futures):
            index = futures[future]
            results[index] = future.result()
            if on_progress is not None:
                on_progress(shares[index]["unique_id"].nunique())
    except BrokenProcessPool:
        _POOLS.pop(workers, None)  # a worker died (e.g. out of memory): the next call starts a fresh pool
        raise
    return results


def _pool(workers: int) -> ProcessPoolExecutor:
    """The process's pool of ``workers`` workers, started on first use and kept until the process exits.

    Keeping it saves starting workers (and importing the caller's main module in them) on every call.
    """
    if workers not in _POOLS:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        _POOLS[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    return _POOLS[workers]
