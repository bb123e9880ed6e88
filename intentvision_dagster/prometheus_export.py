"""Forecasts and anomaly scores as Prometheus series, remote-written after each run so that Grafana overlays
them on the actuals with plain PromQL.

Every sample is stamped with the run's wall-clock time, never with a forecast's future timestamp: a
Prometheus TSDB that accepts a sample hours ahead moves its head forward and then refuses every ordinary
sample as "out of bounds" (prometheus/prometheus#12006, #13573), newer Prometheus versions refuse future
samples from remote_write outright (#14304), and Mimir allows only a few minutes of clock skew. So a forecast
is published Prometheus' own way, as a gauge for a fixed horizon:

    intentvision_forecast{<series labels>, tenant, metric, horizon="24h", quantile="0.5"}

is the value predicted for 24 h after the series' last observed point. ``quantile`` follows the summary
convention: ``0.5`` is the point forecast (yhat, the centre line of the bands), ``0.1``/``0.9`` bound the 80%
interval and ``0.025``/``0.975`` the 95% interval. ``intentvision_forecast{horizon="24h"} offset 24h`` draws
each prediction at the time it was about, next to the actual series (see docs/grafana/).

``intentvision_anomaly_score`` is the detector's score (0..1, 0.5 at 5 MADs) of the series' newest point, and
``intentvision_anomaly_severity`` its severity as a number (0 none, 1 info, 2 warning, 3 critical).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import httpx
import numpy as np
import pandas as pd

from intentvision_dagster.remote_write import REMOTE_WRITE_HEADERS, Series, write_request_body
from intentvision_dagster.series import parse_labels
from intentvision_dagster.severity import SEVERITY_RANK

FORECAST_METRIC = "intentvision_forecast"
ANOMALY_SCORE_METRIC = "intentvision_anomaly_score"
ANOMALY_SEVERITY_METRIC = "intentvision_anomaly_severity"
QUANTILES = {"lo_95": "0.025", "lo_80": "0.1", "yhat": "0.5", "hi_80": "0.9", "hi_95": "0.975"}
"""Forecast column -> the ``quantile`` label it is published under."""
OWN_LABELS = ("__name__", "tenant", "metric", "horizon", "quantile")
"""Labels the export sets itself; a series label of the same name is kept as ``exported_<name>``, as
Prometheus does with clashing target labels."""
SERIES_PER_REQUEST = 2000
"""Series per remote_write request, near Prometheus' own ``max_samples_per_send`` scale."""
RETRIED_STATUSES = {429, 500, 502, 503, 504}
"""Answers the remote_write specification says a sender retries; any other 4xx is final."""
_HORIZON = re.compile(r"(?P<count>[1-9][0-9]*)(?P<unit>[mhdw])")
_UNIT = {"m": "min", "h": "h", "d": "D", "w": "W"}

Sample = tuple[str, dict[str, str], float]
"""One sample to publish: tenant, labels (``__name__`` included), value."""


def parse_horizon(text: str) -> pd.Timedelta:
    """A Prometheus-style duration such as ``30m``, ``24h``, ``7d``, ``1w`` (it becomes the label value)."""
    match = _HORIZON.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"horizon {text!r} is not a duration like 30m, 24h, 7d or 1w")
    return pd.Timedelta(int(match["count"]), _UNIT[match["unit"]])


def published_labels(tenant: str, metric: str, labels: str, name: str) -> dict[str, str]:
    """The source series' labels plus ``tenant`` and ``metric``, under the published metric ``name``."""
    source = parse_labels(labels)
    out = {(f"exported_{key}" if key in OWN_LABELS else key): value for key, value in source.items()}
    return out | {"__name__": name, "tenant": tenant, "metric": metric}


def forecast_samples(forecasts: pd.DataFrame, horizons: Sequence[str]) -> list[Sample]:
    """Per series and horizon, the forecast step that many hours (or minutes, days) after the last observed
    point, as five quantile samples. The step is the series' forecast step; a horizon between two steps
    takes the earlier one; a horizon past the forecast's end, or a series with fewer than two forecast
    steps (its step is unknown), publishes nothing."""
    if forecasts.empty:
        return []
    frame = forecasts.sort_values(["unique_id", "ds"], ignore_index=True)
    by_series = frame.groupby("unique_id", sort=False)["ds"]
    position = by_series.cumcount() + 1  # 1 = the first step after the last observed point
    second_step = by_series.diff().where(position == 2)
    step = second_step.groupby(frame["unique_id"], sort=False).transform("max")
    samples: list[Sample] = []
    for horizon in horizons:
        steps = np.floor(parse_horizon(horizon) / step).fillna(0)
        for row in frame[(steps > 0) & (position == steps)].itertuples(index=False):
            labels = published_labels(row.tenant, row.metric, row.labels, FORECAST_METRIC)
            labels["horizon"] = horizon
            for column, quantile in QUANTILES.items():
                samples.append((row.tenant, labels | {"quantile": quantile}, float(getattr(row, column))))
    return samples


def anomaly_samples(scored: pd.DataFrame) -> list[Sample]:
    """The newest scored point of each series: its anomaly score and its severity as a number. Points
    without a score (a series still warming up) publish nothing."""
    if scored.empty:
        return []
    newest = scored.sort_values("ds").drop_duplicates("unique_id", keep="last")
    newest = newest[newest["anomaly_score"].notna()]
    samples: list[Sample] = []
    for row in newest.itertuples(index=False):
        for name, value in (
            (ANOMALY_SCORE_METRIC, float(row.anomaly_score)),
            (ANOMALY_SEVERITY_METRIC, float(SEVERITY_RANK[row.severity])),
        ):
            samples.append((row.tenant, published_labels(row.tenant, row.metric, row.labels, name), value))
    return samples


@dataclass(frozen=True)
class RemoteWriteTarget:
    """A Prometheus-compatible remote_write endpoint (Prometheus with ``--web.enable-remote-write-receiver``,
    Mimir, Cortex, Thanos Receive, VictoriaMetrics) and how to reach it."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    timeout_seconds: float = 10.0
    retries: int = 2
    backoff_seconds: float = 0.5


class RemoteWriteError(Exception):
    """The endpoint refused or never answered a request."""


def post_body(target: RemoteWriteTarget, body: bytes, sleep: Callable[[float], None] = time.sleep) -> None:
    """POST one remote_write body, retrying unreachable endpoints, 429 and 5xx with a doubling backoff."""
    headers = {**REMOTE_WRITE_HEADERS, "User-Agent": "intentvision-export", **target.headers}
    for attempt in range(target.retries + 1):
        try:
            answer = httpx.post(
                target.url, content=body, headers=headers, auth=target.auth, timeout=target.timeout_seconds
            )
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if answer.is_success:
                return
            problem = f"HTTP {answer.status_code}: {answer.text.strip()[:300]}"
            if answer.status_code not in RETRIED_STATUSES:
                break
        if attempt < target.retries:
            sleep(target.backoff_seconds * 2**attempt)
    raise RemoteWriteError(f"{target.url}: {problem}")


def _chunks(series: list[Series], size: int) -> Iterator[list[Series]]:
    for start in range(0, len(series), size):
        yield series[start : start + size]


def publish(target: RemoteWriteTarget, samples: list[Sample], at_ms: int) -> dict[str, str]:
    """Write ``samples`` stamped ``at_ms``, one tenant's requests apart from another's; the tenant -> error
    message of each tenant whose write failed (empty when all went through).

    A failing tenant never stops the others; its series are written again, fresh, by the next run."""
    by_tenant: dict[str, list[Series]] = {}
    for tenant, labels, value in samples:
        by_tenant.setdefault(tenant, []).append((labels, [(value, at_ms)]))
    failures: dict[str, str] = {}
    for tenant, series in sorted(by_tenant.items()):
        try:
            for chunk in _chunks(series, SERIES_PER_REQUEST):
                post_body(target, write_request_body(chunk))
        except RemoteWriteError as exc:
            failures[tenant] = str(exc)
    return failures
