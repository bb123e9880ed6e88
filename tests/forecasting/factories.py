"""Small synthetic series for the forecasting tests (kept short so every test file runs in seconds)."""

from __future__ import annotations

import numpy as np
import pandas as pd

START = pd.Timestamp("2024-03-01")


def long_frame(
    values: np.ndarray | list[float], uid: str, freq: str = "h", start: pd.Timestamp = START
) -> pd.DataFrame:
    """One series in the product's long shape, with the identity columns the engine must ignore."""
    y = np.asarray(values, dtype="float64")
    return pd.DataFrame(
        {
            "tenant": "acme",
            "metric": uid.split("{", 1)[0],
            "labels": uid.partition("{")[2].rstrip("}"),
            "unique_id": f"acme/{uid}",
            "ds": pd.date_range(start, periods=len(y), freq=freq),
            "y": y,
        }
    )


def seasonal_frame(n_series: int = 6, days: int = 21, noise: float = 2.0, seed: int = 0) -> pd.DataFrame:
    """Hourly CPU-like series: a strong daily cycle around different levels, plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    hours = np.arange(24 * days)
    frames = [
        long_frame(
            40 + 5 * i + 15 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, noise, hours.size),
            f'node_cpu_utilization_percent{{host="web-{i}"}}',
        )
        for i in range(n_series)
    ]
    return pd.concat(frames, ignore_index=True)
