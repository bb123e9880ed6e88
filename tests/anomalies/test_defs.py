"""Per-metric sensitivity: the catalog field, its validation, and detect_partition using it; a partition
still warming up (one timestamp per series) is scored without flags instead of failing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from intentvision_dagster.anomalies.defs import detect_partition
from intentvision_dagster.catalog import load_catalog
from intentvision_dagster.settings import ASSETS_DIR
from tests.anomalies.test_detector import _hourly, _seasonal


def _catalog(tmp_path: Path, text: str):
    (tmp_path / "metrics.yaml").write_text(text)
    return load_catalog(tmp_path / "metrics.yaml")


def test_sensitivity_defaults_to_medium_and_is_inherited(tmp_path: Path) -> None:
    catalog = _catalog(
        tmp_path, "defaults:\n  sensitivity: high\nmetrics:\n  calm:\n    sensitivity: low\n  other: {}\n"
    )
    assert catalog.spec("calm").sensitivity == "low"
    assert catalog.spec("other").sensitivity == "high" and catalog.spec("unlisted").sensitivity == "high"
    assert (
        load_catalog(ASSETS_DIR / "metrics.yaml").spec("node_cpu_utilization_percent").sensitivity == "medium"
    )


def test_an_unknown_sensitivity_is_refused_naming_the_metric(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="metric 'calm': field 'sensitivity' is 'extreme'"):
        _catalog(tmp_path, "metrics:\n  calm:\n    sensitivity: extreme\n")


def test_each_metric_is_scored_at_its_own_sensitivity(tmp_path: Path) -> None:
    values = _seasonal()
    values[20 * 24 + 3 : 20 * 24 + 9] += 8  # a modest 6-hour bump: flagged at high sensitivity, not at low
    catalog = _catalog(tmp_path, "metrics:\n  calm:\n    sensitivity: low\n  eager:\n    sensitivity: high\n")
    calm = detect_partition("calm", _hourly(values, "t/calm").assign(metric="calm"), catalog)
    eager = detect_partition("eager", _hourly(values, "t/eager").assign(metric="eager"), catalog)
    assert calm["is_anomaly"].sum() == 0 and eager["is_anomaly"].sum() >= 1
    assert np.array_equal(calm["y"], values) and np.array_equal(eager["y"], values)


def test_counters_are_scored_as_increases_so_a_reset_is_not_an_anomaly(tmp_path: Path) -> None:
    rate = _seasonal()
    total = np.cumsum(rate)
    total[500:] -= total[499]  # the process restarted: the counter starts again from zero
    frame = _hourly(total, "t/requests_total").assign(metric="requests_total")
    catalog = _catalog(tmp_path, "metrics:\n  requests_total:\n    kind: counter\n")
    scored = detect_partition("requests_total", frame, catalog)
    assert len(scored) == len(frame) - 1
    assert np.allclose(scored["y"].iloc[:498], rate[1:499])
    assert scored.loc[scored["ds"] == frame["ds"].iloc[500], "severity"].item() in ("none", "info")
    assert not scored["severity"].isin(["warning", "critical"]).any()


def test_a_partition_of_single_samples_is_warming_up_not_failing(tmp_path: Path) -> None:
    first = _hourly(np.array([42.0]), "t/new_metric").assign(metric="new_metric")
    scored = detect_partition("new_metric", first, _catalog(tmp_path, "metrics: {}\n"))
    assert scored["y"].tolist() == [42.0]
    assert not scored["is_anomaly"].any()
