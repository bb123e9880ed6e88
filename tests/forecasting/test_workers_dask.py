"""The distributed profile's model fitting: the same shares on a Dask ``LocalCluster`` (two worker processes)
give exactly what one process gives, and a worker that dies mid-share does not lose its share."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from intentvision_dagster.forecasting.forecast import forecast
from intentvision_dagster.forecasting.selection import select_models
from intentvision_dagster.forecasting.spec import ForecastSpec
from intentvision_dagster.forecasting.workers import (
    LOCAL_DASK,
    MIN_SERIES_PER_WORKER,
    map_series,
    worker_pool,
)
from tests.forecasting.factories import seasonal_frame

pytest.importorskip(
    "distributed", reason="the distributed extra is not installed: pip install '.[distributed]'"
)

pytestmark = pytest.mark.slow
SPEC = ForecastSpec(horizon=24, freq="h", n_jobs=2)


def _history() -> pd.DataFrame:
    return seasonal_frame(n_series=2 * MIN_SERIES_PER_WORKER, days=7, seed=4)


def test_selections_and_forecasts_on_dask_equal_one_process_exactly() -> None:
    history = _history()
    serial_spec = ForecastSpec(horizon=24, freq="h", n_jobs=1)
    serial_selection = select_models(history, serial_spec)
    serial = forecast(history, serial_spec, selection=serial_selection)
    progress: list[int] = []
    with worker_pool(LOCAL_DASK):
        selection = select_models(history, SPEC, on_progress=progress.append)
        forecasts = forecast(history, SPEC, selection=selection)
    pd.testing.assert_frame_equal(selection, serial_selection, check_exact=True)
    pd.testing.assert_frame_equal(forecasts, serial, check_exact=True)
    assert forecasts["unique_id"].nunique() == 2 * MIN_SERIES_PER_WORKER
    assert sorted(progress) == [MIN_SERIES_PER_WORKER, MIN_SERIES_PER_WORKER]


def count_series_dying_once(share: pd.DataFrame, marker: str, on_progress=None) -> list[str]:
    """A share function that kills its own Dask worker process the first time any worker runs it."""
    try:
        Path(marker).touch(exist_ok=False)
    except FileExistsError:
        return sorted(share["unique_id"].unique())
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: the worker was killed")


def test_a_worker_killed_mid_share_still_gives_every_share(tmp_path: Path) -> None:
    history = _history()
    marker = tmp_path / "killed-once"
    with worker_pool(LOCAL_DASK, dask_retries=2):
        shares = map_series(count_series_dying_once, history, n_jobs=2, marker=str(marker))
    assert marker.exists()  # a worker did die
    assert sorted(uid for share in shares for uid in share) == sorted(history["unique_id"].unique())
    assert [len(share) for share in shares] == [MIN_SERIES_PER_WORKER, MIN_SERIES_PER_WORKER]
