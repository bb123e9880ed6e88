"""``intentvision capacity`` on constructed series, one per pattern that makes false (or missed) pages.

Every series runs through the real engine (detector cleaning, backtest selection, per-step calibration) and
the shipped disk rule's probability bars, as the alert sensor would judge it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from intentvision_dagster.alerting.kinds.forecast_breach import DECISION_COLUMNS
from intentvision_dagster.cli import main

HOURS = 24 * 28
START = pd.Timestamp("2026-01-01 00:00")
LAST = START + pd.Timedelta(hours=HOURS - 1)  # 2026-01-28 23:00, "now"


def patterns() -> dict[str, np.ndarray]:
    """Hourly percentages, 4 weeks each; the line is 90 for all of them."""
    rng = np.random.default_rng(7)
    t = np.arange(HOURS, dtype="float64")
    daily = np.sin(2 * np.pi * (t % 24 - 0) / 24)  # peaks at 06:00
    spiky = 50 + 3 * daily + rng.normal(0, 1, HOURS)
    for at in rng.choice(HOURS - 10, 8, replace=False):
        spiky[at : at + 3] += 40  # incidents up to ~93 in the history
    late = 30 + rng.normal(0, 0.5, HOURS)
    late[-120:] += 0.4 * np.arange(120)  # flat for three weeks, then filling: 90 about 30 h after now
    cleanup = 60 + 0.045 * t + rng.normal(0, 0.5, HOURS)
    cleanup[-48:] -= 40  # filled to ~88, cleaned up two days ago
    return {
        # a leak cut by restarts every 60 h between 35 and 85: its peaks never reach the line
        "restarts": 35 + (t % 60) * (50 / 60) + rng.normal(0, 0.7, HOURS),
        "spiky": spiky,
        "late_onset": late,
        "cleanup": cleanup,
        # mean 81 rising 0.05/h, daily swing +-8: the mean never gets near 90, tomorrow's 06:00 peak does
        "seasonal_peak": 81 + 0.05 * (t - HOURS) + 8 * daily + rng.normal(0, 0.3, HOURS),
        "flat_cpu": 55 + 5 * daily + rng.normal(0, 4, HOURS),
    }


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("capacity")
    ds = START + pd.to_timedelta(np.arange(HOURS), unit="h")
    history = pd.concat(
        pd.DataFrame({"unique_id": name, "ds": ds, "y": np.clip(values, 0, 100)})
        for name, values in patterns().items()
    )
    history.to_csv(folder / "history.csv", index=False)
    pd.DataFrame({"unique_id": list(patterns()), "threshold": 90.0}).to_csv(
        folder / "limits.csv", index=False
    )
    result = CliRunner().invoke(
        main,
        [
            *("capacity", "--input", str(folder / "history.csv")),
            *("--thresholds", str(folder / "limits.csv"), "--horizon", "72"),
            *("--metric", "node_filesystem_usage_percent", "--output", str(folder / "pages.csv")),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "series would page (rule disk-capacity, horizon 72 steps at h)" in result.output
    written = pd.read_csv(folder / "pages.csv", parse_dates=["crossing_ds", "crossing_lo", "crossing_hi"])
    assert list(written.columns) == DECISION_COLUMNS
    return written.set_index("unique_id")


def test_one_row_per_series_and_only_the_real_breaches_page(pages) -> None:
    assert sorted(pages.index) == sorted(patterns())
    assert sorted(pages.index[pages["pages"]]) == ["late_onset", "seasonal_peak"]
    assert set(pages.loc[pages["pages"], "severity"]) == {"critical"}
    assert pages.loc[~pages["pages"], "severity"].isna().all()
    assert (pages.loc[pages["pages"], "probability"] >= 0.5).all()


def test_restarts_cut_the_leak_so_the_sawtooth_does_not_page(pages) -> None:
    assert pages.loc["restarts", "probability"] < 0.5


def test_incidents_in_the_history_do_not_make_every_future_a_breach(pages) -> None:
    assert pages.loc["spiky", "probability"] < 0.05


def test_late_onset_growth_is_followed_and_its_crossing_timed(pages) -> None:
    row = pages.loc["late_onset"]
    assert row["probability"] > 0.8
    crossing_hours = (row["crossing_ds"] - LAST) / pd.Timedelta(hours=1)
    assert 24 <= crossing_hours <= 48  # the new slope reaches 90 about 30 h after now
    assert row["crossing_lo"] <= row["crossing_ds"] <= row["crossing_hi"]


def test_a_cleanup_resets_the_trend(pages) -> None:
    assert pages.loc["cleanup", "probability"] < 0.2
    assert pages.loc["cleanup", "current"] < 55


def test_growth_into_a_daily_peak_breaches_at_the_peak(pages) -> None:
    row = pages.loc["seasonal_peak"]
    assert row["crossing_ds"].hour in (5, 6, 7)  # at a daily peak, not when the mean gets there (never)
    assert pd.Timestamp("2026-01-29 12:00") < row["crossing_ds"] < pd.Timestamp("2026-01-31 12:00")


def test_noisy_flat_cpu_never_pages(pages) -> None:
    assert pages.loc["flat_cpu", "probability"] < 0.05


def test_thresholds_file_errors_name_the_file_line_and_value(tmp_path) -> None:
    history = tmp_path / "history.csv"
    history.write_text("unique_id,ds,y\na,2026-01-01T00:00:00,1\na,2026-01-01T01:00:00,2\n")
    cases = {
        "unique_id,limit\na,90\n": "limits.csv: column 'threshold' is missing",
        "unique_id,threshold\na,high\n": "limits.csv line 2, column 'threshold': 'high' is not a number",
        "unique_id,threshold,direction\na,90,up\n": "limits.csv line 2, column 'direction': 'up' is not one",
        "unique_id,threshold\nb,90\n": "limits.csv: no threshold for 1 series of history.csv, e.g. a",
    }
    for text, message in cases.items():
        (tmp_path / "limits.csv").write_text(text)
        result = CliRunner().invoke(
            main,
            [
                *("capacity", "--input", str(history), "--thresholds", str(tmp_path / "limits.csv")),
                *("--output", str(tmp_path / "pages.csv")),
            ],
        )
        assert result.exit_code != 0
        assert message in result.output
        assert not (tmp_path / "pages.csv").exists()
