"""Model fitting on several cores: a local forkserver pool, or a Dask cluster (the distributed profile).

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

A block given a Dask address sends the same shares, to the same share functions, through ``Client.map``
instead (``local``: a ``LocalCluster`` of one single-threaded worker process per share, started for the
block), so results are identical to the local pool's; a share whose worker dies is run again elsewhere.
statsforecast's own Dask path (through Fugue) makes one task per series and returns float32, so it is not
used. Dask is imported only inside such a block: the embedded profile never loads it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

MIN_SERIES_PER_WORKER = 25
"""Below this many series per worker the pool's start-up and pickling cost more than they save."""
_PRELOAD = ["intentvision_dagster.forecasting.backtest", "intentvision_dagster.forecasting.forecast"]
"""The modules whose functions run in the workers (they import the rest of the engine)."""
LOCAL_DASK = "local"
"""The Dask address that starts a ``LocalCluster`` for the block instead of connecting to a scheduler."""


@dataclass
class _Block:
    """What one :func:`worker_pool` block started: forkserver pools by worker count, or Dask clients."""

    dask_address: str | None
    dask_retries: int
    pools: dict[int, ProcessPoolExecutor] = field(default_factory=dict)
    dask_clients: dict[int, Any] = field(default_factory=dict)
    resources: ExitStack = field(default_factory=ExitStack)


_SCOPE: ContextVar[_Block | None] = ContextVar("worker_pools", default=None)
"""The innermost :func:`worker_pool` block, if any."""


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
    share_fn = partial(fn, on_progress=None, **kwargs)
    block = _SCOPE.get()
    if block is not None and block.dask_address:
        return _dask_results(block, share_fn, shares, on_progress)
    with _pool(workers) as pool:
        results: list[Any] = [None] * workers
        futures = {pool.submit(share_fn, share): i for i, share in enumerate(shares)}
        for future in as_completed(futures):
            index = futures[future]
            results[index] = future.result()
            _report(on_progress, shares[index])
    return results


def _report(on_progress: Callable[[int], None] | None, share: pd.DataFrame) -> None:
    if on_progress is not None:
        on_progress(share["unique_id"].nunique())


@contextmanager
def worker_pool(dask_address: str | None = None, dask_retries: int = 3) -> Iterator[None]:
    """Share worker pools between the engine calls inside this block; shut them all down when it ends.

    Saves starting workers on every call of a step that fits many partitions, and guarantees that no worker
    outlives the step (so the run's process can exit). With ``dask_address`` (``tcp://host:port`` or
    ``local``) the block's calls go to Dask, each share retried up to ``dask_retries`` times.
    """
    block = _Block(dask_address, dask_retries)
    token = _SCOPE.set(block)
    try:
        with block.resources:
            yield
    finally:
        _SCOPE.reset(token)
        for pool in block.pools.values():
            pool.shutdown(wait=True, cancel_futures=True)


def _dask_results(
    block: _Block,
    share_fn: Callable[[pd.DataFrame], Any],
    shares: Sequence[pd.DataFrame],
    on_progress: Callable[[int], None] | None,
) -> list[Any]:
    """``share_fn`` of each share on the block's Dask cluster, in share order."""
    from distributed import as_completed as dask_completed  # only the distributed profile imports Dask

    client = _dask_client(block, len(shares))
    futures = client.map(share_fn, shares, retries=block.dask_retries, pure=False)
    order = {future.key: index for index, future in enumerate(futures)}
    results: list[Any] = [None] * len(shares)
    for future in dask_completed(futures):
        index = order[future.key]
        results[index] = future.result()
        _report(on_progress, shares[index])
    return results


def _dask_client(block: _Block, workers: int) -> Any:
    """The block's client of the scheduler at its address, or of a :func:`local_cluster` of ``workers``."""
    key = workers if block.dask_address == LOCAL_DASK else 0
    if key not in block.dask_clients:
        from distributed import Client

        if block.dask_address == LOCAL_DASK:
            client = Client(block.resources.enter_context(local_cluster(workers)))
        else:
            client = Client(block.dask_address)
        block.dask_clients[key] = block.resources.enter_context(client)
    return block.dask_clients[key]


def local_cluster(workers: int) -> Any:
    """A Dask ``LocalCluster`` of ``workers`` single-threaded worker processes, as the engine uses them.

    Dask's nannies give workers ``MALLOC_TRIM_THRESHOLD_=65536`` by default, which made AutoETS about 4x
    slower when measured; these workers start without it (a remote cluster's workers need it unset in their
    own environment, see docs/deployment.md).
    """
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)


def _new_pool(workers: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


@contextmanager
def _pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """The enclosing :func:`worker_pool` block's pool of ``workers`` workers, or one for this call only."""
    block = _SCOPE.get()
    if block is None:
        with _new_pool(workers) as pool:
            yield pool
        return
    pools = block.pools
    if workers not in pools:
        pools[workers] = _new_pool(workers)
    try:
        yield pools[workers]
    except BrokenProcessPool:
        pools.pop(workers).shutdown(
            wait=False, cancel_futures=True
        )  # a worker died: the next call starts afresh
        raise
