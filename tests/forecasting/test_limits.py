"""No partition can make the models run for hours: fine steps are coarsened, old history is left out, and a
partition or tenant over its budget is refused by name while the run's other partitions go on."""

from __future__ import annotations

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from intentvision_dagster.catalog import MetricSpec
from intentvision_dagster.definitions import build_definitions
from intentvision_dagster.forecasting.defs import partition_spec
from intentvision_dagster.forecasting.limits import (
    LimitExceeded,
    TenantBudget,
    grid_points,
    modelling_step,
    recent_history,
)
from intentvision_dagster.forecasting.resources import ForecastingConfig
from intentvision_dagster.runs import ingest_file, register_partitions, run_pipeline
from tests.conftest import settings_for


def _one_second_scrape_with_a_stray_old_sample(series: int = 10) -> pd.DataFrame:
    """The probe's input: 100 samples at 1 s per series, plus one sample 12 h before them."""
    end = pd.Timestamp.now().floor("s")
    frames = []
    for i in range(series):
        ds = [end - pd.Timedelta(hours=12), *pd.date_range(end=end, periods=100, freq="s")]
        frames.append(pd.DataFrame({"unique_id": f't/m{{i="{i}"}}', "ds": ds, "y": np.linspace(1, 2, 101)}))
    return pd.concat(frames, ignore_index=True)


def test_a_one_second_scrape_is_modelled_at_a_step_that_keeps_the_horizon_small() -> None:
    assert modelling_step("1s", pd.Timedelta(hours=72), pd.Timedelta(seconds=10), 2000) == "5min"
    assert modelling_step("h", pd.Timedelta(hours=72), pd.Timedelta(seconds=10), 2000) == "h"
    assert modelling_step("1s", pd.Timedelta(minutes=10), pd.Timedelta(seconds=10), 2000) == "10s"


def test_the_probe_partition_costs_hundreds_of_rows_not_millions() -> None:
    rows = _one_second_scrape_with_a_stray_old_sample()
    frame, spec = partition_spec("t/m", rows, MetricSpec("m"), ForecastingConfig(), n_jobs=1)
    assert (spec.freq, spec.horizon) == ("5min", 864)
    assert len(frame) == 10 * 145  # 12 h at 5 min, both ends included


def test_history_older_than_max_history_points_is_left_out() -> None:
    rows = _one_second_scrape_with_a_stray_old_sample(series=1)
    assert len(recent_history(rows, "1s", 100)) == 100
    assert grid_points(rows, "1s") == 12 * 3600 + 1


def test_a_partition_over_max_partition_points_is_refused_by_name() -> None:
    rows = _one_second_scrape_with_a_stray_old_sample()
    config = ForecastingConfig(max_partition_points=1000)
    with pytest.raises(
        LimitExceeded, match=r"t/m: 1450 grid points at step 5min \(above max_partition_points 1000\)"
    ):
        partition_spec("t/m", rows, MetricSpec("m"), config, n_jobs=1)


def test_a_tenant_over_its_budget_is_refused_and_other_tenants_are_not_charged() -> None:
    budget = TenantBudget(points_per_run=100)
    budget.charge("acme", "acme/a", 60)
    with pytest.raises(LimitExceeded, match="past its budget of 100 modelled points per run"):
        budget.charge("acme", "acme/b", 60)
    budget.charge("globex", "globex/a", 100)


def test_a_one_second_metric_runs_through_the_pipeline_at_the_coarsened_step(tmp_path) -> None:
    settings = settings_for(tmp_path / "home")
    rows = _one_second_scrape_with_a_stray_old_sample()
    source = tmp_path / "fast.csv"
    pd.DataFrame(
        {
            "timestamp": rows["ds"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "metric": "probe_metric",
            "labels": rows["unique_id"].str.extract(r"\{(.*)\}")[0].str.replace('"', ""),
            "value": rows["y"],
        }
    ).to_csv(source, index=False)
    instance = dg.DagsterInstance.ephemeral()
    keys = register_partitions(instance, [ingest_file(source, "acme", settings)])
    [outcome] = run_pipeline(build_definitions(settings), instance, keys)
    assert outcome.success
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        forecasts = conn.execute("select unique_id, ds from intentvision.forecasts").fetchdf()
    assert forecasts["unique_id"].nunique() == 10
    assert forecasts.groupby("unique_id").size().unique().tolist() == [864]
    steps = forecasts.sort_values(["unique_id", "ds"]).groupby("unique_id")["ds"].diff().dropna().unique()
    assert steps.tolist() == [pd.Timedelta(minutes=5)]
