"""Deterministic demo metrics in the ingest file format, with known incidents the tests can assert on.

The demo, the docs and the end-to-end tests need data that looks like real SRE metrics (seasonal CPU and
traffic, a leaking pod, slowly filling disks, daily cost) and contains events whose exact timing is known:
one request spike and one disk on course to fill. Everything lives in ``assets/demo/series.yaml``; this
module only knows three shapes and two event kinds.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

INGEST_COLUMNS = ["timestamp", "metric", "labels", "value"]
INCIDENT_COLUMNS = ["tenant", "metric", "labels", "start", "end", "kind"]
FREQUENCIES = {"hourly": "h", "daily": "D"}
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
INCIDENT_KINDS = ("spike",)

Params = dict[str, Any]


def _hours(delta: pd.TimedeltaIndex) -> np.ndarray:
    return np.asarray(delta / pd.Timedelta(hours=1), dtype=float)


def _seasonal(ds: pd.DatetimeIndex, p: Params, rng: np.random.Generator) -> np.ndarray:
    """Business-hours bump, cheaper weekends, slow growth: CPU, request rates, cost."""
    hour_bump = ((1 + np.cos(2 * np.pi * (ds.hour - p["peak_hour"]) / 24)) / 2) ** 2
    weekend = np.where(ds.dayofweek >= 5, p.get("weekend_factor", 1.0), 1.0)
    growth = 1 + p.get("growth_per_day", 0.0) * _hours(ds - ds[0]) / 24
    return (p["base"] + p.get("amplitude", 0.0) * hour_bump) * weekend * growth


def _sawtooth(ds: pd.DatetimeIndex, p: Params, rng: np.random.Generator) -> np.ndarray:
    """A memory leak: linear growth from low to high, then a restart, with random cycle lengths and phase."""
    hours = _hours(ds - ds[0])
    shortest, longest = p["period_hours"]
    cycles = rng.uniform(shortest, longest, size=int(hours[-1] // shortest) + 2)
    starts = np.concatenate([[0.0], np.cumsum(cycles)]) - rng.uniform(0, cycles[0])
    cycle = np.searchsorted(starts, hours, side="right") - 1
    progress = (hours - starts[cycle]) / cycles[cycle]
    return p["low"] + (p["high"] - p["low"]) * progress


def _trend(ds: pd.DatetimeIndex, p: Params, rng: np.random.Generator) -> np.ndarray:
    """A disk filling slowly: ``level`` at the last point, ``slope_per_hour`` before it."""
    return p["level"] - p["slope_per_hour"] * _hours(ds[-1] - ds)


SHAPES: dict[str, Callable[[pd.DatetimeIndex, Params, np.random.Generator], np.ndarray]] = {
    "seasonal": _seasonal,
    "sawtooth": _sawtooth,
    "trend": _trend,
}


def _spike(values: np.ndarray, in_window: np.ndarray, hours_in: np.ndarray, event: Params) -> np.ndarray:
    return np.where(in_window, values * event["factor"], values)


def _ramp(values: np.ndarray, in_window: np.ndarray, hours_in: np.ndarray, event: Params) -> np.ndarray:
    return np.where(in_window, values + event["slope_per_hour"] * hours_in, values)


EVENTS = {"spike": _spike, "ramp": _ramp}


def _labels_text(labels: dict[str, Any]) -> str:
    return ",".join(f"{name}={value}" for name, value in labels.items())


def _load(config_path: Path) -> Params:
    config = yaml.safe_load(Path(config_path).read_text())
    known = {
        (metric, _labels_text(s["labels"]))
        for metric, spec in config["metrics"].items()
        for s in spec["series"]
    }
    for tenant, tenant_spec in config["tenants"].items():
        for event in tenant_spec.get("events") or []:
            if event["kind"] not in EVENTS:
                raise ValueError(f"{config_path}: tenant {tenant!r}: unknown event kind {event['kind']!r}")
            if (event["metric"], _labels_text(event["labels"])) not in known:
                raise ValueError(
                    f"{config_path}: tenant {tenant!r}: event {event['kind']!r} names no configured series "
                    f"{event['metric']}{{{_labels_text(event['labels'])}}}"
                )
    return config


def _timestamps(end: pd.Timestamp, freq: str, days: int) -> pd.DatetimeIndex:
    if end.tzinfo is not None:
        end = end.tz_convert("UTC").tz_localize(None)
    last = end.floor(freq)
    return pd.date_range(end=last, periods=days * (24 if freq == "h" else 1), freq=freq)


def _event_window(ds: pd.DatetimeIndex, event: Params) -> tuple[np.ndarray, np.ndarray]:
    """Points inside the event (from its start, for ``duration_hours`` or to the end) and hours since start.

    The start is ``start_hours_before_end`` before the last point, moved back to the latest ``at_hour``
    o'clock when given, so that an incident lands at the same time of day whatever the end hour.
    """
    start = ds[-1] - pd.Timedelta(hours=event["start_hours_before_end"])
    if "at_hour" in event:
        start = start.floor("D") + pd.Timedelta(hours=event["at_hour"] - 24 * (start.hour < event["at_hour"]))
    since = _hours(ds - start)
    return (since >= 0) & (since < event.get("duration_hours", np.inf)), since


def _events_of(tenant_spec: Params, metric: str, labels: dict[str, Any]) -> list[Params]:
    return [e for e in tenant_spec.get("events") or [] if e["metric"] == metric and e["labels"] == labels]


def _series(config: Params, tenant: str, metric: str, series: Params, end: pd.Timestamp) -> pd.DataFrame:
    metric_spec = config["metrics"][metric]
    tenant_spec = config["tenants"][tenant]
    labels = _labels_text(series["labels"])
    params = {**metric_spec, **series}
    rng = np.random.default_rng([config["seed"], zlib.crc32(f"{tenant}/{metric}{{{labels}}}".encode())])
    ds = _timestamps(end, FREQUENCIES[params["freq"]], config.get("days", 35))
    values = SHAPES[params["shape"]](ds, params, rng)
    for event in _events_of(tenant_spec, metric, series["labels"]):
        values = EVENTS[event["kind"]](values, *_event_window(ds, event), event)
    values = values * (1 + params.get("noise", 0.0) * rng.standard_normal(len(ds)))
    low, high = params.get("clip") or (None, None)
    values = np.clip(values, low, high) * params.get("multiplier", 1)
    if params.get("scale_with_tenant"):
        values = values * tenant_spec.get("scale", 1.0)
    return pd.DataFrame(
        {"timestamp": ds.strftime(TIMESTAMP_FORMAT), "metric": metric, "labels": labels, "value": values}
    )


def generate_demo(config_path: Path, end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Per tenant, every configured series for ``days`` up to ``end`` in the ingest file format."""
    config = _load(config_path)
    return {
        tenant: pd.concat(
            [
                _series(config, tenant, metric, series, end)
                for metric, spec in config["metrics"].items()
                for series in spec["series"]
            ],
            ignore_index=True,
        )[INGEST_COLUMNS]
        for tenant in config["tenants"]
    }


def demo_events(config_path: Path, end: pd.Timestamp) -> pd.DataFrame:
    """Every injected event: first and last affected timestamp (naive UTC, inclusive), tenant and series."""
    config = _load(config_path)
    rows = []
    for tenant, tenant_spec in config["tenants"].items():
        for event in tenant_spec.get("events") or []:
            freq = FREQUENCIES[config["metrics"][event["metric"]]["freq"]]
            ds = _timestamps(end, freq, config.get("days", 35))
            inside = ds[_event_window(ds, event)[0]]
            rows.append(
                {
                    "tenant": tenant,
                    "metric": event["metric"],
                    "labels": _labels_text(event["labels"]),
                    "start": inside.min(),
                    "end": inside.max(),
                    "kind": event["kind"],
                }
            )
    return pd.DataFrame(rows, columns=INCIDENT_COLUMNS)


def demo_incidents(config_path: Path, end: pd.Timestamp) -> pd.DataFrame:
    """The injected incidents an anomaly detector must flag (spikes); ramps are for forecasts instead."""
    events = demo_events(config_path, end)
    return events[events["kind"].isin(INCIDENT_KINDS)].reset_index(drop=True)


def write_demo_files(config_path: Path, end: pd.Timestamp, out_dir: Path) -> list[Path]:
    """Write ``<tenant>.csv`` per tenant into ``out_dir`` (created if missing); returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for tenant, frame in generate_demo(config_path, end).items():
        path = out_dir / f"{tenant}.csv"
        frame.to_csv(path, index=False, float_format="%.10g")
        paths.append(path)
    return paths
