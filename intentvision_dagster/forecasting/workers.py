"""Model fitting on several cores through a forkserver process pool.

statsforecast's own ``n_jobs`` forks the calling process, and forking a process that runs threads (Dagster's,
DuckDB's) deadlocked now and then in our test runs. A forkserver pool forks its workers from a separate,
single-threaded server process that has preloaded the engine, so the caller's threads never matter.

A pool lives exactly as long as the work that needs it: :func:`worker_pool` keeps one for a block (an asset
step's partitions, a benchmark) and shuts it down at the block's end; a call outside any block starts and
stops its own. A pool kept for the life of the process made daemon-launched runs hang at interpreter exit
(idle workers waited on their queue while ``multiprocessing`` joined them). Like any forkserver pool,
workers import the caller's main module once (``python -m`` package mains are skipped), so a script that
uses the engine on several cores keeps its work under ``if __name__ == "__main__":``. Series are dealt
round-robin to the workers (neighbouring series tend to share a model and a cost); each fits its share in one
call.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd

MIN_SERIES_PER_WORKER = 25
"""Below this many series per worker the pool's start-up and pickling cost more than they save."""
_PRELOAD = ["intentvision_dagster.forecasting.backtest", "intentvision_dagster.forecasting.forecast"]
"""The modules whose functions run in the workers (they import the rest of the engine)."""
_SCOPE: ContextVar[dict[int, ProcessPoolExecutor] | None] = ContextVar("worker_pools", default=None)
"""The pools of the innermost :func:`worker_pool` block (by worker count), if any."""


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
    with _pool(workers) as pool:
        results: list[Any] = [None] * workers
        futures = {pool.submit(fn, share, on_progress=None, **kwargs): i for i, share in enumerate(shares)}
        for future in as_completed(futures):
            index = futures[future]
            results[index] = future.result()
            if on_progress is not None:
                on_progress(shares[index]["unique_id"].nunique())
    return results


@contextmanager
def worker_pool() -> Iterator[None]:
    """Share worker pools between the engine calls inside this block; shut them all down when it ends.

    Saves starting workers on every call of a step that fits many partitions, and guarantees that no worker
    outlives the step (so the run's process can exit).
    """
    pools: dict[int, ProcessPoolExecutor] = {}
    token = _SCOPE.set(pools)
    try:
        yield
    finally:
        _SCOPE.reset(token)
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)


def _new_pool(workers: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


@contextmanager
def _pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """The enclosing :func:`worker_pool` block's pool of ``workers`` workers, or one for this call only."""
    pools = _SCOPE.get()
    if pools is None:
        with _new_pool(workers) as pool:
            yield pool
        return
    if workers not in pools:
        pools[workers] = _new_pool(workers)
    try:
        yield pools[workers]
    except BrokenProcessPool:
        pools.pop(workers).shutdown(
            wait=False, cancel_futures=True
        )  # a worker died: the next call starts afresh
        raise
