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

``intentvision_breach_probability{…, rule, severity, horizon="72h"}`` is, per forecast breach rule and each
of its severity levels, P(the series reaches that level's line within the rule's horizon), as the alert rule
judges it; ``intentvision_breach_crossing_timestamp_seconds`` the expected (median) crossing as Unix time,
published only while a crossing within the horizon has a probability above 0.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import yaml

from intentvision_dagster.remote_write import REMOTE_WRITE_HEADERS, Series, write_request_body
from intentvision_dagster.series import parse_labels
from intentvision_dagster.severity import SEVERITY_RANK

FORECAST_METRIC = "intentvision_forecast"
ANOMALY_SCORE_METRIC = "intentvision_anomaly_score"
ANOMALY_SEVERITY_METRIC = "intentvision_anomaly_severity"
BREACH_PROBABILITY_METRIC = "intentvision_breach_probability"
BREACH_CROSSING_METRIC = "intentvision_breach_crossing_timestamp_seconds"
BREACH_COLUMNS = ["tenant", "metric", "labels", "rule", "severity", "horizon", "probability", "crossing_ds"]
"""One row per series, breach rule and severity level: P(reaching the level's line within ``horizon``, a
Timedelta) and the expected crossing (NaT when none is likely within it)."""
QUANTILES = {"lo_95": "0.025", "lo_80": "0.1", "yhat": "0.5", "hi_80": "0.9", "hi_95": "0.975"}
"""Forecast column -> the ``quantile`` label it is published under."""
OWN_LABELS = ("__name__", "tenant", "metric", "horizon", "quantile", "rule", "severity")
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


def duration_label(delta: pd.Timedelta) -> str:
    """A duration as a Prometheus-style label value: whole hours as ``72h``, else minutes (``90m``)."""
    minutes = round(delta / pd.Timedelta(minutes=1))
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


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


def breach_samples(outlook: pd.DataFrame) -> list[Sample]:
    """Per row of ``outlook`` (:data:`BREACH_COLUMNS`): the breach probability, and the expected crossing
    as Unix seconds where there is one."""
    samples: list[Sample] = []
    for row in outlook.itertuples(index=False):
        labels = published_labels(row.tenant, row.metric, row.labels, BREACH_PROBABILITY_METRIC)
        labels |= {"rule": row.rule, "severity": row.severity, "horizon": duration_label(row.horizon)}
        samples.append((row.tenant, labels, float(row.probability)))
        if pd.notna(row.crossing_ds):
            crossing = pd.Timestamp(row.crossing_ds).timestamp()  # naive timestamps are UTC
            samples.append((row.tenant, labels | {"__name__": BREACH_CROSSING_METRIC}, crossing))
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


TENANT_FIELD = "prometheus_remote_write"
"""The tenants.yaml key of a tenant's own remote_write endpoint."""
_TARGET_FIELDS = ("url", "headers", "basic_auth", "bearer_token_file", "timeout_seconds")


def tenant_targets(tenants_config: Path) -> dict[str, RemoteWriteTarget | str]:
    """Each tenant's own endpoint from ``tenants.yaml`` (``tenants.<tenant>.prometheus_remote_write``), or
    for a bad entry the error naming the tenant, field and value: that tenant's export fails with it (its
    series never go to the default endpoint instead), the other tenants' exports go on.

    Secrets come from files, as in Prometheus' own ``remote_write`` config: ``basic_auth: {username,
    password_file}`` or ``bearer_token_file``."""
    if not tenants_config.is_file():
        return {}
    tenants = (yaml.safe_load(tenants_config.read_text()) or {}).get("tenants") or {}
    targets: dict[str, RemoteWriteTarget | str] = {}
    for tenant, entry in tenants.items():
        if isinstance(entry, dict) and entry.get(TENANT_FIELD) is not None:
            where = f"{tenants_config}: tenants.{tenant}.{TENANT_FIELD}"
            try:
                targets[str(tenant)] = _target(where, entry[TENANT_FIELD])
            except ValueError as exc:
                targets[str(tenant)] = str(exc)
    return targets


def _target(where: str, entry: object) -> RemoteWriteTarget:
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a mapping with a url, got {entry!r}")
    unknown = sorted(set(entry) - set(_TARGET_FIELDS))
    if unknown:
        expected = ", ".join(_TARGET_FIELDS)
        raise ValueError(f"{where}: unknown field {unknown[0]!r}, expected one of {expected}")
    url = entry.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"{where}: field 'url' is {url!r}, expected an http(s) URL")
    headers = entry.get("headers") or {}
    if not isinstance(headers, dict):
        raise ValueError(f"{where}: field 'headers' is {headers!r}, expected a mapping of header: value")
    headers = {str(k): str(v) for k, v in headers.items()}
    auth = None
    if entry.get("basic_auth") is not None:
        basic = entry["basic_auth"]
        if not isinstance(basic, dict) or not basic.get("username") or not basic.get("password_file"):
            raise ValueError(f"{where}: field 'basic_auth' is {basic!r}, expected username and password_file")
        auth = (str(basic["username"]), _secret(where, "basic_auth.password_file", basic["password_file"]))
    if entry.get("bearer_token_file") is not None:
        token = _secret(where, "bearer_token_file", entry["bearer_token_file"])
        headers["Authorization"] = f"Bearer {token}"
    timeout = entry.get("timeout_seconds", 10.0)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError(f"{where}: field 'timeout_seconds' is {timeout!r}, expected a positive number")
    return RemoteWriteTarget(url=url, headers=headers, auth=auth, timeout_seconds=float(timeout))


def _secret(where: str, field_name: str, path: object) -> str:
    try:
        return Path(str(path)).read_text().strip()
    except OSError as exc:
        raise ValueError(f"{where}: field {field_name!r} is {path!r}, which cannot be read: {exc}") from None


class RemoteWriteError(Exception):
    """The endpoint refused or never answered a request."""


def post_body(target: RemoteWriteTarget, body: bytes) -> None:
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
            time.sleep(target.backoff_seconds * 2**attempt)
    raise RemoteWriteError(f"{target.url}: {problem}")


def _chunks(series: list[Series], size: int) -> Iterator[list[Series]]:
    for start in range(0, len(series), size):
        yield series[start : start + size]


def publish(
    targets: Mapping[str, RemoteWriteTarget | str],
    default: RemoteWriteTarget | None,
    samples: list[Sample],
    at_ms: int,
) -> tuple[int, dict[str, str]]:
    """Write ``samples`` stamped ``at_ms`` to each tenant's own target (see :func:`tenant_targets`), else to
    ``default`` (a tenant with neither publishes nothing), one tenant's requests apart from another's.
    Returns the number of samples written and the tenant -> error message of each tenant whose write
    failed.

    A failing tenant never stops the others; its series are written again, fresh, by the next run."""
    by_tenant: dict[str, list[Series]] = {}
    for tenant, labels, value in samples:
        by_tenant.setdefault(tenant, []).append((labels, [(value, at_ms)]))
    failures: dict[str, str] = {}
    written = 0
    for tenant, series in sorted(by_tenant.items()):
        target = targets.get(tenant, default)
        if target is None:
            continue
        if isinstance(target, str):  # the tenant's own endpoint is misconfigured
            failures[tenant] = target
            continue
        try:
            for chunk in _chunks(series, SERIES_PER_REQUEST):
                post_body(target, write_request_body(chunk))
                written += len(chunk)
        except RemoteWriteError as exc:
            failures[tenant] = str(exc)
    return written, failures
