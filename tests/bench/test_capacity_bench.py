"""The capacity benchmark end to end on a small slice: tables, JSON and the per-evaluation CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bench.capacity import FRESH_RAMPS, main
from bench.capacity_scenarios import NAB_FOLDER

NAB_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "nab"
pytestmark = pytest.mark.skipif(
    not (NAB_DIR / "data" / NAB_FOLDER).is_dir(),
    reason=f"NAB dev subset not present: {NAB_DIR / 'data' / NAB_FOLDER} is missing",
)


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *options: str) -> tuple[str, dict, pd.DataFrame]:
    main(["--series", "2", "--nab-dir", str(NAB_DIR), "--output", str(tmp_path), *options])
    printed = capsys.readouterr().out
    (json_path,) = tmp_path.glob("capacity-*[0-9].json")
    (csv_path,) = tmp_path.glob("capacity-*-decisions.csv")
    return printed, json.loads(json_path.read_text()), pd.read_csv(csv_path)


def test_baselines_are_scored_per_split_from_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    printed, report, decisions = run(tmp_path, capsys, "--systems", "predict_linear_6h,predict_linear_24h")
    assert "### report split" in printed and "### tune split" in printed
    assert printed.index("### report split") < printed.index("### tune split")  # the headline first
    assert set(report["scores"]) == {"report", "tune"}
    assert set(report["scores"]["report"]) == {"predict_linear_6h", "predict_linear_24h"}
    assert report["evaluations"] == len(decisions)
    for split, scores in report["scores"].items():
        part = decisions[decisions["split"] == split]
        left_out = part["breach"] & ~part["forecastable"]
        assert report["not_forecastable_breaches"][split] == int(left_out.sum())
        part = part[~left_out]
        pages, breach = part["predict_linear_6h_pages"], part["breach"]
        assert scores["predict_linear_6h"]["true_pages"] == int((pages & breach).sum())
        assert scores["predict_linear_6h"]["false_pages"] == int((pages & ~breach).sum())
    assert set(report["by_pattern"]["report"]) - {FRESH_RAMPS} == set(decisions["pattern"])


def test_one_split_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    printed, report, decisions = run(tmp_path, capsys, "--split", "tune", "--systems", "predict_linear_6h")
    assert "### tune split" in printed and "report split" not in printed
    assert set(decisions["split"]) == {"tune"} and set(report["scores"]) == {"tune"}


@pytest.mark.slow
def test_ours_goes_through_the_product_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    printed, report, decisions = run(tmp_path, capsys, "--series", "1", "--systems", "ours")
    assert "| ours |" in printed
    assert decisions["ours_pages"].isin([True, False]).all()
    paged = decisions[decisions["ours_pages"]]
    assert paged["ours_crossing_ds"].notna().all()
    left_out = report["not_forecastable_breaches"]["tune"]
    assert report["scores"]["tune"]["ours"]["evaluations"] == len(decisions) - left_out
