"""Models are fitted on the history with flagged incidents replaced by their expected values."""

from intentvision_dagster.anomalies.detector import detect
from intentvision_dagster.forecasting.cleaning import without_anomalies
from tests.anomalies.test_detector import _hourly, _seasonal


def test_without_anomalies_replaces_flagged_points_by_their_expected_value() -> None:
    values = _seasonal()
    values[600] += 50
    scored = detect(_hourly(values), season_length=24)
    cleaned = without_anomalies(scored)
    assert scored.loc[600, "severity"] in ("warning", "critical")
    assert cleaned.loc[600, "y"] == scored.loc[600, "expected"]
    unflagged = scored["severity"].isin(["none", "info"])
    assert (cleaned.loc[unflagged, "y"] == scored.loc[unflagged, "y"]).all()
