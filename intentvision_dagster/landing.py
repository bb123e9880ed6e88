"""Durable landing area: the ingest API acknowledges a batch only once it is here, never in the DuckDB file.

Layout: ``<landing_dir>/<tenant>/<batch_id>/<metric>.parquet``. A batch is written under
``<tenant>/.tmp-<batch_id>/``, every file and the directory are fsync'd, and the directory is renamed into
place (then the parent fsync'd), so readers see a batch completely or not at all. Leftover ``.tmp-``
directories (a crash mid-write) are never read, and the landing sensor deletes them after an hour
(:func:`remove_stale_tmp`). ``batch_id`` sorts by the time its write began, so "newest batch wins" is plain
string order; :func:`unseen_batches` keeps the landing sensor's cursor.

The HTTP API lands a request as one file, ``<batch_id>/all-metrics.parquet`` (:func:`land_columns`), whatever
the number of metrics in it (a Prometheus scrape has hundreds): one write and one fsync per request. Its
metric names are in the file's Parquet metadata; ``all-metrics`` cannot clash with a metric file because
``-`` is not allowed in metric names.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from intentvision_dagster.names import TENANT_PATTERN, validate_metric, validate_tenant
from intentvision_dagster.series import SERIES_COLUMNS
from intentvision_dagster.warehouse import arrow_frame

BATCH_ID_PATTERN = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{8}$")
TMP_PREFIX = ".tmp-"
MULTI_METRIC_FILE = "all-metrics.parquet"
METRICS_METADATA_KEY = b"intentvision.metrics"
LANDING_SCHEMA = pa.schema(
    [
        ("tenant", pa.string()),
        ("metric", pa.string()),
        ("labels", pa.string()),
        ("unique_id", pa.string()),
        ("ds", pa.timestamp("ns")),
        ("y", pa.float64()),
    ]
)


@dataclass(frozen=True)
class LandedBatch:
    """One complete batch: the metrics it holds (one Parquet file each) and its total row count."""

    batch_id: str
    tenant: str
    path: Path
    metrics: list[str]
    rows: int
    note: str = ""
    """What was done to the input on its way in (repeated or out-of-order timestamps merged), if anything."""


def new_batch_id(now: datetime | None = None) -> str:
    """``%Y%m%dT%H%M%S%fZ-<8 hex>``: sorts by time; the random suffix keeps concurrent writers apart."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{secrets.token_hex(4)}"


def land_batch(frame: pd.DataFrame, landing_dir: Path, tenant: str) -> LandedBatch:
    """Durably write ``frame`` (series columns, all rows of ``tenant``) as one batch; all or nothing."""
    validate_tenant(tenant)
    absent = [c for c in SERIES_COLUMNS if c not in frame.columns]
    if absent:
        raise ValueError(f"cannot land a frame without the column(s) {absent}; expected {SERIES_COLUMNS}")
    if frame.empty:
        raise ValueError(f"tenant {tenant!r}: nothing to land, the frame has no rows")
    foreign = sorted(set(frame["tenant"]) - {tenant})
    if foreign:
        raise ValueError(f"tenant {tenant!r}: the frame holds rows of other tenant(s) {foreign}")
    metrics = sorted(validate_metric(m) for m in frame["metric"].unique())
    tenant_dir = Path(landing_dir) / tenant
    tenant_dir.mkdir(parents=True, exist_ok=True)
    _fsync_dir(tenant_dir.parent)
    batch_id = new_batch_id()
    tables = {
        f"{metric}.parquet": pa.Table.from_pandas(rows, schema=LANDING_SCHEMA, preserve_index=False)
        for metric, rows in frame[SERIES_COLUMNS].groupby("metric", sort=True)
    }
    path = _write_batch(tenant_dir, batch_id, tables)
    return LandedBatch(batch_id=batch_id, tenant=tenant, path=path, metrics=metrics, rows=len(frame))


def land_columns(
    landing_dir: Path,
    tenant: str,
    metric: list[str],
    labels: list[str],
    unique_ids: list[str],
    timestamp_ms: list[int],
    value: list[float],
) -> LandedBatch:
    """Durably land already validated columns as one ``all-metrics.parquet`` batch (the API's hot path).

    The caller has validated tenant, names and values; this only builds the Arrow table, writes, fsyncs and
    renames, so a request of any number of metrics costs one file.
    """
    rows = len(metric)
    if rows == 0:
        raise ValueError(f"tenant {tenant!r}: nothing to land, the batch has no rows")
    metrics = sorted(set(metric))
    table = pa.table(
        [
            pa.repeat(tenant, rows).cast(pa.string()),
            pa.array(metric, pa.string()),
            pa.array(labels, pa.string()),
            pa.array(unique_ids, pa.string()),
            pa.array(timestamp_ms, pa.int64()).cast(pa.timestamp("ms")).cast(pa.timestamp("ns")),
            pa.array(value, pa.float64()),
        ],
        schema=LANDING_SCHEMA.with_metadata({METRICS_METADATA_KEY: json.dumps(metrics).encode()}),
    )
    tenant_dir = Path(landing_dir) / tenant
    if not tenant_dir.is_dir():
        tenant_dir.mkdir(parents=True, exist_ok=True)
        _fsync_dir(tenant_dir.parent)
    batch_id = new_batch_id()
    path = _write_batch(tenant_dir, batch_id, {MULTI_METRIC_FILE: table})
    return LandedBatch(batch_id=batch_id, tenant=tenant, path=path, metrics=metrics, rows=rows)


def _write_batch(tenant_dir: Path, batch_id: str, tables: dict[str, pa.Table]) -> Path:
    """Write each table under ``.tmp-<batch_id>/``, fsync files and directory, rename into place, fsync."""
    tmp_dir = tenant_dir / f"{TMP_PREFIX}{batch_id}"
    final_dir = tenant_dir / batch_id
    tmp_dir.mkdir()
    try:
        for name, table in tables.items():
            with (tmp_dir / name).open("wb") as handle:
                pq.write_table(table, handle)
                handle.flush()
                os.fsync(handle.fileno())
        _fsync_dir(tmp_dir)
        tmp_dir.rename(final_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    _fsync_dir(tenant_dir)
    return final_dir


def _fsync_dir(path: Path) -> None:
    """Persist a directory's entries (a new file or a rename), which fsync on the file alone does not."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_batches(
    landing_dir: Path, after: str | None = None, tenants: Iterable[str] | None = None
) -> list[LandedBatch]:
    """Complete batches of every tenant (or of ``tenants``) sorted by ``batch_id``; with ``after``, only those
    newer than it.

    Passing the sensor's cursor as ``after`` avoids reading the footers of batches already seen.
    """
    root = Path(landing_dir)
    if not root.is_dir():
        return []
    only = None if tenants is None else set(tenants)
    found = [
        (batch_dir.name, tenant_dir.name, batch_dir)
        for tenant_dir in root.iterdir()
        if tenant_dir.is_dir()
        and TENANT_PATTERN.fullmatch(tenant_dir.name)
        and (only is None or tenant_dir.name in only)
        for batch_dir in tenant_dir.iterdir()
        if BATCH_ID_PATTERN.fullmatch(batch_dir.name) and (after is None or batch_dir.name > after)
    ]
    batches = []
    for batch_id, tenant, batch_dir in sorted(found):
        metrics: set[str] = set()
        rows = 0
        for file in batch_dir.glob("*.parquet"):
            metadata = pq.read_metadata(file)
            rows += metadata.num_rows
            metrics.update(_file_metrics(file, metadata))
        batches.append(
            LandedBatch(batch_id=batch_id, tenant=tenant, path=batch_dir, metrics=sorted(metrics), rows=rows)
        )
    return batches


def _file_metrics(file: Path, metadata: pq.FileMetaData | None = None) -> list[str]:
    """The metrics a landed file holds: its name, or for ``all-metrics.parquet`` the list in its metadata."""
    if file.name != MULTI_METRIC_FILE:
        return [file.stem]
    metadata = metadata or pq.read_metadata(file)
    return json.loads((metadata.metadata or {}).get(METRICS_METADATA_KEY, b"[]"))


def read_landed(landing_dir: Path, tenant: str, metric: str) -> pd.DataFrame:
    """Every landed point of one (tenant, metric) partition; see :func:`read_landed_many`."""
    return read_landed_many(landing_dir, [(tenant, metric)])


def read_landed_many(landing_dir: Path, keys: list[tuple[str, str]]) -> pd.DataFrame:
    """Merge all batches of these (tenant, metric) pairs into ``tenant, metric, labels, unique_id, ds, y``.

    Only ``<landing_dir>/<tenant>/<batch_id>/<metric>.parquet`` files are opened (tenant isolation, and other
    metrics' files are never read). A point landed by several batches (same ``unique_id, ds``) keeps the
    newest batch's rows: a later batch resends or corrects. Rows of one batch that repeat a timestamp all
    stay, in their order, for validation to merge per the metric's kind (``ingest`` and the API merge before
    landing; older batches or other writers may not have). Sorted by ``unique_id, ds``.
    """
    wanted = sorted({(validate_tenant(t), validate_metric(m)) for t, m in keys})
    files = []
    for tenant in sorted({tenant for tenant, _ in wanted}):
        metrics = {metric for t, metric in wanted if t == tenant}
        files += [
            str(path)
            for path in _tenant_files(Path(landing_dir) / tenant)
            if metrics.intersection(_file_metrics(path))
        ]
    files.sort()
    if not files:
        return LANDING_SCHEMA.empty_table().to_pandas().astype({"ds": "datetime64[ns]"})
    with duckdb.connect() as conn:
        relation = conn.sql(
            """
            select tenant, metric, labels, unique_id, ds, y
            from read_parquet(?, filename = true, file_row_number = true)
            where tenant || '/' || metric in (select unnest(?))
            qualify filename = max(filename) over (partition by unique_id, ds)
            order by unique_id, ds, file_row_number
            """,
            params=[files, [f"{t}/{m}" for t, m in wanted]],
        )
        frame = arrow_frame(relation)
    return frame.astype({"ds": "datetime64[ns]", "y": "float64"})


def _tenant_files(tenant_dir: Path) -> list[Path]:
    """Every Parquet file of the tenant's complete batches (``.tmp-`` directories are never read)."""
    return [path for path in tenant_dir.glob("*/*.parquet") if BATCH_ID_PATTERN.fullmatch(path.parent.name)]


LATE_BATCH_GRACE = timedelta(minutes=10)
"""How long after a batch's id time it may still become visible (a slow writer renames it late)."""


def unseen_batches(landing_dir: Path, cursor: dict | None) -> tuple[list[LandedBatch], dict]:
    """Batches not yet reported, and the cursor that remembers them.

    A batch id is taken when its write starts, so a slow writer can make batch A visible after a later
    batch B. A plain "newest id seen" cursor would then skip A; instead the cursor keeps every id seen
    within :data:`LATE_BATCH_GRACE` of the newest one, and each listing looks back that far.
    """
    cursor = cursor or {}
    seen = set(cursor.get("seen", []))
    newest = cursor.get("newest")
    lower = _id_floor(newest) if newest else None
    fresh = [batch for batch in list_batches(landing_dir, after=lower) if batch.batch_id not in seen]
    known = seen | {b.batch_id for b in fresh} | ({newest} if newest else set())
    return fresh, cursor_of(known) or {"newest": None, "seen": []}


def cursor_of(batch_ids: Iterable[str], max_seen: int | None = None) -> dict:
    """The cursor that marks ``batch_ids`` (all listed at one moment) as seen: the newest id, and the ids
    within :data:`LATE_BATCH_GRACE` of it (the older ones are implied: they were visible before the newest
    was written). ``max_seen`` keeps only the newest of those, which marks fewer batches as seen, never more.
    Empty for no ids."""
    ids = sorted(set(batch_ids))
    if not ids:
        return {}
    floor = _id_floor(ids[-1])
    seen = [i for i in ids if i > floor]
    return {"newest": ids[-1], "seen": seen if max_seen is None else seen[-max_seen:]}


def cursor_covers(cursor: dict, batch_id: str) -> bool:
    """Whether a cursor from :func:`cursor_of` or :func:`unseen_batches` marks ``batch_id`` as seen."""
    newest = cursor.get("newest")
    return bool(newest) and (batch_id <= _id_floor(newest) or batch_id in set(cursor.get("seen", [])))


def _id_floor(batch_id: str) -> str:
    """The smallest id a batch written up to LATE_BATCH_GRACE before ``batch_id`` could have."""
    stamp = datetime.strptime(batch_id[:21], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
    return (stamp - LATE_BATCH_GRACE).strftime("%Y%m%dT%H%M%S%fZ")


STALE_TMP_AGE = timedelta(hours=1)
"""A ``.tmp-`` batch directory untouched this long belongs to a writer that died before its rename."""


def remove_stale_tmp(landing_dir: Path, now: datetime | None = None) -> list[Path]:
    """Delete half-written batch directories left by crashed writers; readers never saw them."""
    root = Path(landing_dir)
    cutoff = (now or datetime.now(UTC)).timestamp() - STALE_TMP_AGE.total_seconds()
    stale = [
        tmp_dir
        for tmp_dir in root.glob(f"*/{TMP_PREFIX}*")
        if tmp_dir.is_dir() and tmp_dir.stat().st_mtime < cutoff
    ]
    for tmp_dir in stale:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return stale
