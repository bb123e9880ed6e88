"""``intentvision forecast`` on generated hourly series with a daily cycle, through click.

Generated rather than a slice of M4: the benchmark data stays in ``../shared`` and is never copied in
(``make bench-m4`` measures accuracy there); these tests need only a known seasonal shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from intentvision_dagster.cli import main
from intentvision_dagster.forecasting.gaps import fill_missing_steps
from tests.forecasting.factories import long_frame, seasonal_frame

HORIZON = 48


def hourly_slice() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four noisy daily-cycle series: 16 days of training history and the next 48 hours to score against."""
    frame = seasonal_frame(n_series=4, days=18, noise=4.0, seed=11)[["unique_id", "ds", "y"]]
    cut = frame["ds"].max() - pd.Timedelta(hours=HORIZON)
    return frame[frame["ds"] <= cut].reset_index(drop=True), frame[frame["ds"] > cut].reset_index(drop=True)


@pytest.fixture(scope="module")
def hourly_csv(tmp_path_factory) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    train, test = hourly_slice()
    path = tmp_path_factory.mktemp("hourly") / "hourly.csv"
    train.to_csv(path, index=False)
    return path, train, test


def test_forecast_cli_on_daily_cycles_beats_seasonal_naive(hourly_csv, tmp_path) -> None:
    path, train, test = hourly_csv
    out = tmp_path / "fc.csv"
    result = CliRunner().invoke(
        main, ["forecast", "--input", str(path), "--horizon", str(HORIZON), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "forecast 4 series x 48 steps at freq h" in result.output
    fc = pd.read_csv(out, parse_dates=["ds"])
    assert list(fc.columns) == ["unique_id", "ds", "yhat", "lo_80", "hi_80", "lo_95", "hi_95", "model"]
    assert fc.groupby("unique_id").size().eq(HORIZON).all() and len(fc) == 4 * HORIZON
    assert set(fc["model"]) <= {"MSTL", "SeasonalNaive", "Ensemble"}
    assert (fc["lo_95"] <= fc["lo_80"]).all() and (fc["hi_80"] <= fc["hi_95"]).all()
    scored = test.merge(fc, on=["unique_id", "ds"])
    assert len(scored) == 4 * HORIZON  # the forecast continues each series' hourly timestamps
    naive = test.merge(
        train.assign(ds=train["ds"] + pd.Timedelta(hours=24)).rename(columns={"y": "naive"}),
        on=["unique_id", "ds"],
    )
    ours_mae = (scored["y"] - scored["yhat"]).abs().mean()
    naive_mae = (naive["y"] - naive["naive"]).abs().mean()
    assert ours_mae < naive_mae  # the first 24 steps have a seasonal-naive forecast to compare with


def test_forecast_cli_levels_model_and_freq_options(hourly_csv, tmp_path) -> None:
    path, _, _ = hourly_csv
    out = tmp_path / "fc.csv"
    args = ["forecast", "--input", str(path), "--horizon", "6", "--output", str(out)]
    result = CliRunner().invoke(main, [*args, "--levels", "90", "--model", "SeasonalNaive", "--freq", "h"])
    assert result.exit_code == 0, result.output
    fc = pd.read_csv(out)
    assert list(fc.columns) == ["unique_id", "ds", "yhat", "lo_90", "hi_90", "model"]
    assert set(fc["model"]) == {"SeasonalNaive"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "Arima"], "--model 'Arima' is not one of auto, MSTL"),
        (["--levels", "80,abc"], "'80,abc': expected integers like 80,95"),
        (["--levels", "100"], "each level must be between 1 and 99"),
        (["--freq", "fortnightly"], "--freq 'fortnightly' is not a pandas frequency alias"),
        (["--model", "TimeGPT"], "--model TimeGPT needs the NIXTLA_API_KEY environment variable"),
    ],
)
def test_forecast_cli_refuses_bad_options_naming_them(
    hourly_csv, tmp_path, monkeypatch, extra, message
) -> None:
    monkeypatch.delenv("NIXTLA_API_KEY", raising=False)
    path, _, _ = hourly_csv
    out = tmp_path / "fc.csv"
    result = CliRunner().invoke(
        main, ["forecast", "--input", str(path), "--horizon", "6", "--output", str(out), *extra]
    )
    assert result.exit_code != 0
    assert message in result.output
    assert not out.exists()


def test_forecast_cli_names_a_bad_value_and_shows_progress_on_many_series(tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("unique_id,ds,y\na,2024-01-01T00:00:00,1\na,2024-01-01T01:00:00,oops\n")
    result = CliRunner().invoke(
        main, ["forecast", "--input", str(bad), "--horizon", "2", "--output", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "bad.csv line 3, column 'y': 'oops' is not a finite number" in result.output
    many = pd.concat([long_frame(np.arange(20.0) + i, f"s{i}", freq="D") for i in range(60)])
    source = tmp_path / "many.csv"
    many[["unique_id", "ds", "y"]].to_csv(source, index=False)
    result = CliRunner().invoke(
        main,
        ["forecast", "--input", str(source), "--horizon", "3", "--output", str(tmp_path / "many_fc.csv")],
    )
    assert result.exit_code == 0, result.output
    assert "backtesting and forecasting" in result.output  # the progress bar (stderr is mixed in)
    assert "forecast 60 series x 3 steps at freq D" in result.output


def test_gaps_are_interpolated_for_gauges_and_spread_for_counters() -> None:
    stamps = pd.date_range("2024-01-01", periods=6, freq="h")
    frame = pd.DataFrame({"unique_id": "a", "ds": stamps[[0, 1, 4, 5]], "y": [1.0, 2.0, 9.0, 5.0]})
    gauge = fill_missing_steps(frame, "h", "gauge")
    assert gauge["ds"].tolist() == list(stamps)
    assert gauge["y"].tolist() == pytest.approx([1, 2, 4 + 1 / 3, 6 + 2 / 3, 9, 5])
    assert gauge["filled"].tolist() == [False, False, True, True, False, False]
    counter = fill_missing_steps(frame, "h", "counter")
    assert counter["y"].tolist() == pytest.approx([1, 2, 3, 3, 3, 5])  # the increase of 9 over 3 steps
    assert counter["y"].sum() == pytest.approx(frame["y"].sum())


def test_jittered_scrape_timestamps_are_snapped_to_the_step_grid() -> None:
    """Prometheus scrapes land a few milliseconds off the step; their values must survive gap filling."""
    jitter = pd.to_timedelta([0.123, 0.131, 0.118, 0.4, 0.6], unit="s")
    stamps = pd.Timestamp("2026-11-27 11:05:43") + pd.to_timedelta([0, 15, 30, 60, 60], unit="s") + jitter
    frame = pd.DataFrame({"unique_id": "a", "ds": stamps, "y": [10.0, 11.0, 12.0, 20.0, 22.0]})
    gauge = fill_missing_steps(frame, "15s", "gauge")
    assert gauge["ds"].dt.second.tolist() == [45, 0, 15, 30, 45]
    assert gauge["y"].tolist() == pytest.approx([10, 11, 12, 16.5, 21])  # two samples in one step: their mean
    assert gauge["filled"].tolist() == [False, False, False, True, False]
    counter = fill_missing_steps(frame, "15s", "counter")
    assert counter["y"].sum() == pytest.approx(frame["y"].sum())  # increases are summed, never dropped
