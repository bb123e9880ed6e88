"""The HTTP API: ingest (our JSON, Prometheus remote_write, Datadog series) and tenant-scoped reads.

Thin wiring over :mod:`.protocols` (decode + validate, one module per wire format),
:func:`landing.land_columns` (durable write) and :mod:`reads`. The tenant always comes from the API key; a
request naming another tenant (``tenant`` query parameter, ``X-Scope-OrgID`` header) gets the same 403
whether that tenant exists or not. A request is acknowledged only after its batch is fsync'd and renamed
into the landing area; the API never opens the warehouse for writing. Errors are answered in one place: any
:class:`~intentvision_dagster.errors.IntentVisionError` that reaches FastAPI becomes its class's HTTP status
with a ``{"detail": ..., "errors": [...]}`` body, so endpoints do not catch domain errors.
"""

# No ``from __future__ import annotations``: FastAPI must see the real annotations of the closures below.

import logging
import math
import sqlite3
import threading
import time
from datetime import UTC, datetime
from importlib.resources import files
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import (
    APIKeyHeader,
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from fastapi.staticfiles import StaticFiles

from intentvision_dagster.api.protocols.columns import (
    MAX_REPORTED_ERRORS,
    Columns,
    Limits,
    capped_errors,
)
from intentvision_dagster.api.protocols.datadog import decode_datadog
from intentvision_dagster.api.protocols.encoding import decompress
from intentvision_dagster.api.protocols.remote_write import decode_remote_write
from intentvision_dagster.api.protocols.webhook import JSON_SHAPE, decode_json
from intentvision_dagster.api.reads import READABLE, read_rows
from intentvision_dagster.api.registry import ApiKey, Registry, split_key
from intentvision_dagster.catalog import load_catalog
from intentvision_dagster.errors import IntentVisionError, StorageUnavailable
from intentvision_dagster.landing import land_columns
from intentvision_dagster.settings import Settings, load_settings

logger = logging.getLogger(__name__)
WARNING_HEADER = "X-IntentVision-Warning"
"""remote_write answers 204 without a body: what was done to the samples (if anything) goes in this header."""
INGEST_SCHEMA = {
    "type": "object",
    "required": ["series"],
    "properties": {
        "series": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["metric", "points"],
                "properties": {
                    "metric": {"type": "string", "example": "node_cpu_utilization_percent"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "points": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["timestamp", "value"],
                            "properties": {
                                "timestamp": {
                                    "oneOf": [{"type": "number"}, {"type": "string", "format": "date-time"}]
                                },
                                "value": {"type": "number"},
                            },
                        },
                    },
                },
            },
        }
    },
}
"""The ``/v1/ingest`` body for the OpenAPI page (the handler reads the raw body to word its own errors)."""


class ApiError(IntentVisionError):
    """An answer only HTTP has (401, 403, 413, 429, per-item 422s): own status, item errors, headers."""

    def __init__(
        self, status: int, detail: str, errors: list | None = None, headers: dict | None = None
    ) -> None:
        super().__init__(detail)
        self.http_status, self.errors, self.headers = status, errors or [], headers or {}


class RateLimiter:
    """Token bucket per key (an API key id, a client address; per API process): ``rate`` per second, bursts
    of ``burst`` (default ``2 * rate``)."""

    def __init__(self, rate: float, burst: float | None = None, prune_at: int = 4096) -> None:
        self.rate, self.burst = rate, max(1.0, 2 * rate if burst is None else burst)
        self.prune_at, self._next_prune = prune_at, prune_at
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Keys tracked. Keys whose bucket has refilled are forgotten once ``prune_at`` keys are tracked, so a
        scan from many addresses does not grow the process without bound."""
        return len(self._buckets)

    def wait_seconds(self, key: str, take: bool = True) -> float:
        """0 if a token is free (and taken, unless ``take`` is False), else how long until one is."""
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) >= self._next_prune:
                self._buckets = {
                    known: (tokens, last)
                    for known, (tokens, last) in self._buckets.items()
                    if tokens + (now - last) * self.rate < self.burst
                }
                # Keys still draining stay; the next pass waits until as many again arrive (amortised O(1)).
                self._next_prune = max(self.prune_at, 2 * len(self._buckets))
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - take, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


class _LenientBasic(HTTPBasic):
    """Malformed basic credentials count as no key, so they get our 401 and an audit entry like any other."""

    async def __call__(self, request: Request) -> HTTPBasicCredentials | None:
        try:
            return await super().__call__(request)
        except HTTPException:
            return None


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_basic = _LenientBasic(auto_error=False, description="Basic auth with the API key as password (Prometheus)")
_datadog = APIKeyHeader(name="DD-API-KEY", auto_error=False, description="Datadog clients' API key header")

DOCS_ASSETS = "/docs-assets"
"""Where the Swagger UI and ReDoc scripts are served from: the ``fastapi-offline`` package's copy, so the
docs work on hosts without internet access (FastAPI's default pages load them from a CDN)."""
REGISTRY_TIMESTAMPS = ("created_at", "revoked_at", "at")
"""Registry fields stored as UTC ISO text ending ``+00:00``; answered with ``Z`` like the warehouse's."""


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters an endpoint declares, its dependencies' included (``tenant`` comes from auth)."""
    names = {field.alias for field in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names


def refuse_unknown_query(request: Request) -> None:
    """A misspelt filter (``?metrc=cpu``) would otherwise be ignored and answer every row; refuse it instead,
    as a 422 naming it. Applied to every route once, as an app-wide dependency."""
    route = request.scope.get("route")
    known = _query_names(route.dependant) if isinstance(route, APIRoute) else set()
    takes = ", ".join(sorted(known)) or "no query parameters"
    unknown = dict.fromkeys(name for name in request.query_params if name not in known)
    if unknown:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": f"unknown query parameter {name!r}; this endpoint takes {takes}",
                    "input": request.query_params[name],
                }
                for name in unknown
            ]
        )


def _utc_z_fields(row: dict) -> dict:
    """A registry row with its timestamps in the API's one form (``...Z``), stored precision kept."""
    return {
        name: f"{value.removesuffix('+00:00')}Z"
        if name in REGISTRY_TIMESTAMPS and isinstance(value, str) and value.endswith("+00:00")
        else value
        for name, value in row.items()
    }


def create_app(settings: Settings) -> FastAPI:
    """The API bound to one ``INTENTVISION_HOME`` (registry, landing area, warehouse)."""
    registry = Registry(settings.registry_path)
    limiter = RateLimiter(settings.api_rate_limit)
    # Failed authentications per client address: a bad key costs a registry lookup and an fsync'd audit
    # write, so an address out of failures is refused before either (10 s worth of failures in a burst).
    failures = RateLimiter(settings.api_auth_failure_rate, burst=10 * settings.api_auth_failure_rate)
    app = FastAPI(
        title="IntentVision API",
        version="1",
        description="Metrics in (JSON, Prometheus remote_write, Datadog series); forecasts, anomalies out.",
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(refuse_unknown_query)],
    )
    _serve_docs(app)

    @app.exception_handler(RequestValidationError)
    async def _invalid_parameter(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "index": None,
                "field": ".".join(str(part) for part in error["loc"]),
                "value": jsonable_encoder(error.get("input")),
                "problem": error["msg"],
            }
            for error in exc.errors()
        ]
        first = errors[0]
        return JSONResponse(
            {"detail": f"invalid request: {first['field']}: {first['problem']}", "errors": errors},
            status_code=422,
        )

    @app.exception_handler(OSError)
    @app.exception_handler(sqlite3.OperationalError)
    async def _storage(request: Request, exc: Exception) -> JSONResponse:
        """A full or read-only home (the landing area, the key registry's SQLite file) is the operator's to
        fix: 503 + Retry-After for the client, the path and cause only in our log. Landing writes are atomic
        and registry writes transactional, so nothing was half-stored."""
        logger.error("storage unavailable for %s %s: %s", request.method, request.url.path, exc)
        unavailable = StorageUnavailable("the server cannot store data right now; nothing was stored, retry")
        return await _error(request, unavailable)

    @app.exception_handler(IntentVisionError)
    async def _error(_: Request, exc: IntentVisionError) -> JSONResponse:
        errors = exc.errors if isinstance(exc, ApiError) else []
        body = {"detail": str(exc), **capped_errors(errors, len(errors))}
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
        if isinstance(exc, ApiError):
            headers.update(exc.headers)
        return JSONResponse(body, status_code=exc.http_status, headers=headers)

    def authorize(scope: str):
        def dependency(
            request: Request,
            bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
            basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
            datadog: Annotated[str | None, Depends(_datadog)],
            tenant: Annotated[str | None, Query(description="Must be the key's own tenant if given.")] = None,
        ) -> ApiKey:
            presented = (
                (bearer.credentials if bearer else None)
                or (basic.password or basic.username if basic else None)
                or datadog
            )
            address = request.client.host if request.client else "?"
            client = f"api:{address}"
            where = f"{request.method} {request.url.path}"
            blocked = failures.wait_seconds(address, take=False)
            if blocked > 0:
                raise ApiError(
                    429,
                    f"too many failed authentications from {address}: more than "
                    f"{settings.api_auth_failure_rate:g}/s; retry later",
                    headers={"Retry-After": str(max(1, math.ceil(blocked)))},
                )
            key = registry.authenticate(presented) if presented else None
            if key is None:
                failures.wait_seconds(address)  # takes one of the address's failure tokens
                key_id = split_key(presented)[0] if presented and split_key(presented) else None
                reason = "no API key" if not presented else "unknown, malformed or revoked API key"
                registry.audit_failure(client, key_id, f"{where}: {reason}")
                raise ApiError(
                    401,
                    "missing or invalid API key: send 'Authorization: Bearer <key>', basic auth with the "
                    "key as password, or 'DD-API-KEY: <key>'",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            denial = None
            claimed = tenant or request.headers.get("X-Scope-OrgID")
            if scope not in key.scopes:
                denial = (
                    f"missing scope {scope}",
                    f"this API key lacks the {scope!r} scope (it has {', '.join(key.scopes)})",
                )
            elif claimed is not None and claimed != key.tenant:
                denial = ("other tenant requested", "this API key is not valid for the requested tenant")
            if denial:
                registry.audit(
                    client, "auth.denied", "refused", key.tenant, key.key_id, f"{where}: {denial[0]}"
                )
                raise ApiError(403, denial[1])
            wait = limiter.wait_seconds(key.key_id)
            if wait > 0:
                raise ApiError(
                    429,
                    f"rate limit of {settings.api_rate_limit:g} requests/s for this API key exceeded",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
            return key

        return dependency

    ingest_key = Annotated[ApiKey, Depends(authorize("ingest"))]
    read_key = Annotated[ApiKey, Depends(authorize("read"))]
    admin_key = Annotated[ApiKey, Depends(authorize("admin"))]
    partial_flag = Annotated[
        bool,
        Query(description="Accept the valid items and report the rejected ones instead of refusing all."),
    ]

    async def read_body(request: Request) -> bytes:
        limit = settings.api_max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"the body is {declared} bytes; the limit is {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"the body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def decode_and_land(decoder, body: bytes, encoding: str, key: ApiKey, partial: bool):
        data = decompress(body, encoding, settings.api_max_body_bytes)
        limits = Limits.for_settings(settings, datetime.now(UTC))
        columns: Columns = decoder(data, key.tenant, limits)
        errors = [p.as_dict() for p in columns.problems]
        if errors and not partial:
            raise ApiError(
                422,
                f"refused, nothing stored: {len(columns.rejected_items)} of {columns.items} items are "
                f"invalid (first: {columns.problems[0]}); fix them or send ?partial=true to store the valid "
                "ones",
                errors,
            )
        if not columns.value:
            if errors:
                raise ApiError(422, "refused, nothing stored: no item is valid", errors)
            return None, columns
        if columns.needs_merge:
            catalog = load_catalog(settings.metrics_catalog)
            columns.warnings.append(columns.repeats(lambda metric: catalog.spec(metric).kind).warning())
        batch = land_columns(
            settings.landing_dir,
            key.tenant,
            columns.metric,
            columns.labels,
            columns.unique_id,
            columns.timestamp_ms,
            columns.value,
        )
        return batch, columns

    async def ingest(request: Request, decoder, key: ApiKey, partial: bool):
        body = await read_body(request)
        encoding = request.headers.get("content-encoding", "identity")
        return await run_in_threadpool(decode_and_land, decoder, body, encoding, key, partial)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"status": "ok"}

    @app.post(
        "/v1/ingest",
        summary="Ingest a JSON batch",
        description=f"Body: `{JSON_SHAPE}`. Timestamps are epoch seconds or ISO 8601 (no offset means UTC).",
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": INGEST_SCHEMA}}}
        },
    )
    async def ingest_json(request: Request, key: ingest_key, partial: partial_flag = False) -> dict:
        batch, columns = await ingest(request, decode_json, key, partial)
        return {
            "tenant": key.tenant,
            "batch_id": batch.batch_id if batch else None,
            "accepted_samples": len(columns.value),
            **({"warnings": columns.warnings} if columns.warnings else {}),
            **({"report": columns.report()} if partial else {}),
        }

    @app.post(
        "/api/v1/write",
        summary="Prometheus remote_write",
        description="Snappy-compressed protobuf WriteRequest (remote_write 1.0). 204 once durable.",
        status_code=204,
        response_class=Response,
    )
    async def remote_write(request: Request, key: ingest_key, partial: partial_flag = False) -> Response:
        content_type = request.headers.get("content-type", "")
        if "io.prometheus.write.v2" in content_type:
            raise ApiError(
                415,
                f"remote write 2.0 ({content_type}) is not supported; configure "
                "protobuf_message: prometheus.WriteRequest (remote write 1.0)",
            )
        _, columns = await ingest(request, decode_remote_write, key, partial)
        warned = {"warnings": columns.warnings} if columns.warnings else {}
        if partial:
            return JSONResponse({"tenant": key.tenant, **warned, "report": columns.report()}, status_code=200)
        return Response(
            status_code=204, headers={WARNING_HEADER: "; ".join(columns.warnings)} if warned else None
        )

    @app.post(
        "/api/v2/series",
        summary="Datadog series intake",
        description="Datadog's v2 series JSON (gzip, deflate or zstd allowed); authenticate with DD-API-KEY.",
        status_code=202,
    )
    async def datadog_series(
        request: Request, key: ingest_key, partial: partial_flag = False
    ) -> JSONResponse:
        _, columns = await ingest(request, decode_datadog, key, partial)
        shown = [str(p) for p in columns.problems[:MAX_REPORTED_ERRORS]]
        body: dict = capped_errors(shown, len(columns.problems))
        if columns.warnings:
            body["warnings"] = columns.warnings
        if partial:
            body["report"] = columns.report()
        return JSONResponse(body, status_code=202)

    def read_endpoint(resource: str):
        table = READABLE[resource]

        async def endpoint(
            key: read_key,
            metric: str | None = None,
            unique_id: str | None = None,
            start: datetime | None = None,
            end: datetime | None = None,
            limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
        ) -> dict:
            if unique_id is not None and not table.has_unique_id:
                raise _invalid_query(
                    "unique_id", unique_id, f"{resource} have no unique_id; filter by metric"
                )
            if table.time_column is None and (start or end):
                raise _invalid_query(
                    "start" if start else "end",
                    (start or end).isoformat(),
                    f"{resource} have no time column to filter",
                )
            rows = await run_in_threadpool(
                read_rows,
                settings.warehouse_path,
                resource,
                key.tenant,
                metric,
                unique_id,
                _naive_utc(start, "start"),
                _naive_utc(end, "end"),
                limit,
            )
            return {"tenant": key.tenant, "count": len(rows), "rows": rows}

        endpoint.__name__ = f"read_{resource}"
        app.get(
            f"/v1/{resource}",
            summary=f"Read the tenant's {table.name} rows",
            description="Filters: metric, unique_id, start/end (ISO 8601 on the time column), limit.",
        )(endpoint)

    for resource in READABLE:
        read_endpoint(resource)

    @app.get("/v1/keys", summary="List this tenant's API keys (admin scope; never the secrets)")
    def list_keys(key: admin_key) -> dict:
        return {"tenant": key.tenant, "keys": [_utc_z_fields(vars(k)) for k in registry.keys(key.tenant)]}

    @app.delete("/v1/keys/{key_id}", summary="Revoke one of this tenant's API keys now (admin scope)")
    def revoke_key(key_id: str, key: admin_key, request: Request) -> dict:
        actor = f"api:{key.key_id}@{request.client.host if request.client else '?'}"
        return _utc_z_fields(vars(registry.revoke_key(key_id, actor, tenant=key.tenant)))

    @app.get("/v1/audit", summary="This tenant's audit log, newest first (admin scope)")
    def audit(key: admin_key, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict:
        entries = registry.audit_entries(key.tenant, limit)
        return {"tenant": key.tenant, "entries": [_utc_z_fields(entry) for entry in entries]}

    return app


def _serve_docs(app: FastAPI) -> None:
    """``/`` leads to ``/docs``; ``/docs`` and ``/redoc`` load their scripts from this server, since
    air-gapped hosts cannot reach a CDN."""
    assets = StaticFiles(directory=str(files("fastapi_offline") / "static"))
    app.mount(DOCS_ASSETS, assets, name="docs-assets")
    title = f"{app.title} - docs"

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=title,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url,
            title=title,
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


def _invalid_query(name: str, value: str, problem: str) -> RequestValidationError:
    """A query parameter FastAPI parsed but the endpoint cannot use, in the shape of FastAPI's own 422s."""
    return RequestValidationError([{"loc": ("query", name), "msg": problem, "input": value}])


def _naive_utc(moment: datetime | None, name: str) -> datetime | None:
    """The warehouse stores naive UTC timestamps; an offset that moves a moment past year 1 or 9999 is a
    422 naming the parameter."""
    if moment is None or moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise _invalid_query(name, moment.isoformat(), "out of range once converted to UTC") from None


def app_from_environment() -> FastAPI:
    """uvicorn factory (``--factory``): each worker process builds the app from the environment."""
    return create_app(load_settings())
