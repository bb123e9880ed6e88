"""The history models are fitted on: incidents the detector flagged are replaced by what was expected."""

import pandas as pd

from intentvision_dagster.severity import SEVERITY_RANK


def without_anomalies(scored: pd.DataFrame, min_severity: str = "warning") -> pd.DataFrame:
    """``scored`` with every point at or above ``min_severity`` replaced by its ``expected`` value.

    Forecast models are fitted on this, so one incident does not teach them a spike that recurs every season.
    """
    rank = scored["severity"].map(SEVERITY_RANK)
    replace = (rank >= SEVERITY_RANK[min_severity]) & scored["expected"].notna()
    return scored.assign(y=scored["y"].where(~replace, scored["expected"]))
