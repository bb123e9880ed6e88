"""Prometheus pull: per-tenant PromQL ``query_range`` sources, fetched into the landing area.

Sources live in a YAML file (``INTENTVISION_PROMETHEUS_SOURCES``, default
``$INTENTVISION_HOME/prometheus_sources.yaml``)::

    sources:
      - tenant: acme                      # whose data this is (lands under landing/acme/)
        name: node-cpu                    # unique per tenant; names the pull cursor
        url: http://prometheus:9090       # Prometheus (or any server with its HTTP query API)
        query: 'avg by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))'
        step: 60s                         # query_range resolution
        metric: node_cpu_busy             # optional: metric name to store; default: each series' __name__
        lookback: 1h                      # first pull reaches this far back (default 1h)
        bearer_token_file: /etc/prom-token   # optional: file holding a bearer token (as Prometheus'
                                             # credentials_file; read at each pull, never logged)

Each pull asks for ``[last end, now]`` (capped at 10,000 steps, below Prometheus' 11,000-point limit) and
lands the result as one batch; overlapping points are resolved by the landing area's newest-batch-wins rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import yaml

from intentvision_dagster.landing import LandedBatch, land_batch
from intentvision_dagster.names import validate_metric, validate_tenant
from intentvision_dagster.series import SERIES_COLUMNS, canonical_labels, unique_id

MAX_STEPS = 10_000


@dataclass(frozen=True)
class PromSource:
    tenant: str
    name: str
    url: str
    query: str
    step: timedelta
    lookback: timedelta
    metric: str | None = None
    bearer_token_file: Path | None = None

    @property
    def key(self) -> str:
        return f"{self.tenant}/{self.name}"


def load_sources(path: Path) -> list[PromSource]:
    """Parse the sources file; an absent file means no sources. Errors name the file, source and field."""
    path = Path(path)
    if not path.exists():
        return []
    document = yaml.safe_load(path.read_text()) or {}
    sources, seen = [], set()
    for index, entry in enumerate(document.get("sources") or []):
        where = f"{path.name} sources[{index}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a mapping with tenant, name, url, query, step")
        missing = [f for f in ("tenant", "name", "url", "query", "step") if not entry.get(f)]
        if missing:
            raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
        try:
            source = PromSource(
                tenant=validate_tenant(entry["tenant"]),
                name=str(entry["name"]),
                url=str(entry["url"]).rstrip("/"),
                query=str(entry["query"]),
                step=_duration(entry["step"], f"{where}.step"),
                lookback=_duration(entry.get("lookback", "1h"), f"{where}.lookback"),
                metric=validate_metric(entry["metric"]) if entry.get("metric") else None,
                bearer_token_file=Path(entry["bearer_token_file"])
                if entry.get("bearer_token_file")
                else None,
            )
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if source.key in seen:
            raise ValueError(f"{where}: source name {source.name!r} is used twice for tenant {source.tenant}")
        seen.add(source.key)
        sources.append(source)
    return sources


def _duration(text: object, where: str) -> timedelta:
    try:
        value = pd.Timedelta(str(text))
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a duration such as 15s, 1m or 1h") from None
    if value <= pd.Timedelta(0):
        raise ValueError(f"{where}: {text!r} must be positive")
    return value.to_pytimedelta()


def pull_window(source: PromSource, last_end: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    start = last_end or now - source.lookback
    return max(start, now - source.step * MAX_STEPS), now


def query_range(source: PromSource, start: datetime, end: datetime, timeout: float = 30.0) -> pd.DataFrame:
    """Run the source's PromQL over ``[start, end]`` and return the series frame (tenant's own columns)."""
    headers = {}
    if source.bearer_token_file:
        headers["Authorization"] = f"Bearer {source.bearer_token_file.read_text().strip()}"
    response = httpx.get(
        f"{source.url}/api/v1/query_range",
        params={
            "query": source.query,
            "start": start.timestamp(),
            "end": end.timestamp(),
            "step": source.step.total_seconds(),
        },
        headers=headers,
        timeout=timeout,
    )
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code != 200 or body.get("status") != "success":
        raise RuntimeError(
            f"source {source.key}: Prometheus answered {response.status_code}: "
            f"{body.get('error') or response.text[:200]}"
        )
    if body["data"]["resultType"] != "matrix":
        raise RuntimeError(f"source {source.key}: expected a range vector, got {body['data']['resultType']}")
    return matrix_frame(source, body["data"]["result"])


def matrix_frame(source: PromSource, result: list[dict]) -> pd.DataFrame:
    """Prometheus' matrix result -> ``tenant, metric, labels, unique_id, ds, y`` (values kept as sent;
    NaN is quarantined by validation, not dropped here)."""
    rows = []
    for series in result:
        labels = dict(series["metric"])
        name = labels.pop("__name__", None)
        metric = source.metric or name
        if metric is None:
            raise RuntimeError(
                f"source {source.key}: the query's series have no __name__ (an expression); set 'metric'"
            )
        text = canonical_labels(labels)
        uid = unique_id(source.tenant, metric, text)
        rows.extend(
            (source.tenant, metric, text, uid, float(ts), float(value)) for ts, value in series["values"]
        )
    frame = pd.DataFrame(rows, columns=["tenant", "metric", "labels", "unique_id", "ds", "y"])
    frame["ds"] = pd.to_datetime(frame["ds"], unit="s").astype("datetime64[ns]")
    return frame[SERIES_COLUMNS]


def pull_source(
    source: PromSource, landing_dir: Path, last_end: datetime | None, now: datetime | None = None
) -> tuple[LandedBatch | None, datetime]:
    """Pull one source's new window and land it; returns the batch (None if empty) and the new cursor."""
    now = now or datetime.now(UTC)
    start, end = pull_window(source, last_end, now)
    frame = query_range(source, start, end)
    if frame.empty:
        return None, end
    if frame.duplicated(["unique_id", "ds"]).any():
        raise RuntimeError(
            f"source {source.key}: several result series map to one series; set distinct labels"
        )
    return land_batch(frame, landing_dir, source.tenant), end
