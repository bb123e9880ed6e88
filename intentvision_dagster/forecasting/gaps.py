"""Missing timestamps made explicit and filled by metric kind, so every model sees one regular step.

statsforecast and TimeGPT assume consecutive rows are one step apart; a missed scrape silently shifts the
seasonal phase of everything after it. ``utilsforecast.preprocessing.fill_gaps`` inserts the missing
timestamps, then:

- gauges (a level: CPU %, bytes used) are interpolated linearly in time between the neighbouring samples;
- counters, modelled as their per-step increase, get the increase recorded after a gap spread evenly over
  the gap, so the total over the gap is kept (the sample after a gap holds the increase of every missed
  step).
"""

from __future__ import annotations

import pandas as pd
from utilsforecast.preprocessing import fill_gaps


def fill_missing_steps(df: pd.DataFrame, freq: str, kind: str = "gauge") -> pd.DataFrame:
    """``unique_id, ds, y`` with one row per step between each series' first and last timestamp, on the grid.

    Other columns are dropped; rows with NaN ``y`` count as missing. Returns the filled rows sorted by
    unique_id, ds, with a boolean ``filled`` column marking inserted or repaired rows.
    """
    data = df.loc[df["y"].notna(), ["unique_id", "ds", "y"]].astype({"unique_id": str, "y": "float64"})
    if data.empty:
        return data.assign(filled=pd.Series(dtype=bool))
    # Scrapes jitter (12:00:15.123, 12:00:30.131, ...): snap to the step grid first, or no sample would sit
    # on a grid timestamp and every step would look missing. Samples sharing a step are one level (gauge:
    # mean) or one step's increase (counter: sum).
    data["ds"] = data["ds"].dt.round(freq)
    data = data.groupby(["unique_id", "ds"], as_index=False, sort=True)["y"].agg(
        "sum" if kind == "counter" else "mean"
    )
    full = fill_gaps(data, freq=freq, start="per_serie", end="per_serie")
    full = full.sort_values(["unique_id", "ds"], ignore_index=True)
    missing = full["y"].isna()
    if not missing.any():
        return full.assign(filled=False)
    series = full["unique_id"]
    if kind == "counter":
        # A run of missing steps and the sample after it share that sample's increase evenly.
        spread = missing | missing.groupby(series).shift(fill_value=False)
        group = (~spread | ~spread.groupby(series).shift(fill_value=False)).cumsum()
        share = full["y"].groupby(group).transform("sum") / full["y"].groupby(group).transform("size")
        full["y"] = full["y"].where(~spread, share)
        filled = spread
    else:
        by_time = full.set_index("ds").groupby("unique_id")["y"]
        full["y"] = by_time.transform(lambda y: y.interpolate(method="time")).to_numpy()
        filled = missing
    return full.assign(filled=filled.to_numpy())
