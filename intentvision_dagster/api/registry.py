"""Tenants, API keys and the audit log: one SQLite file under ``$INTENTVISION_HOME/api/``, not the warehouse.

The CLI and the API process share it, so a key revoked on the command line is refused by the next request.
A key is ``iv_<key_id>_<secret>``: ``key_id`` (12 hex digits) is public and names the key in listings and the
audit log; only the SHA-256 of the 256-bit random secret is stored (a slow password hash buys nothing for a
secret this long), and it is compared with :func:`hmac.compare_digest`. The full key is shown once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from intentvision_dagster.errors import InputError, NotFoundError
from intentvision_dagster.names import did_you_mean, validate_tenant

SCOPES = ("ingest", "read", "admin")
KEY_PREFIX = "iv"

_SCHEMA = """
create table if not exists tenants (name text primary key, created_at text not null);
create table if not exists api_keys (
    key_id text primary key,
    tenant text not null references tenants(name),
    scopes text not null,
    secret_sha256 text not null,
    created_at text not null,
    revoked_at text
);
create table if not exists audit_log (
    id integer primary key autoincrement,
    at text not null,
    actor text not null,
    action text not null,
    outcome text not null,
    tenant text,
    key_id text,
    detail text not null default '',
    attempts integer not null default 1,
    since text
);
"""
_MIGRATIONS = (
    ("attempts", "alter table audit_log add column attempts integer not null default 1"),
    ("since", "alter table audit_log add column since text"),
)
"""Columns added since the first release, for registries created before them."""
_INDEXES = """
create index if not exists audit_log_failures on audit_log (action, actor, since);
create index if not exists audit_log_at on audit_log (at);
"""
FAILURE_WINDOW = timedelta(minutes=1)
"""Failed authentications of one client and key id within this window share one audit row (``attempts``)."""


class RegistryError(InputError):
    """A registry request the user must fix (unknown tenant, bad scope, unknown key)."""


class UnknownKeyError(NotFoundError, RegistryError):
    """No such key (in the caller's tenant); first base NotFoundError, so the API answers 404."""


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    tenant: str
    scopes: tuple[str, ...]
    created_at: str
    revoked_at: str | None


@dataclass(frozen=True)
class NewKey:
    """A freshly created key: ``key`` is the only time the secret exists outside the caller's hands."""

    key_id: str
    tenant: str
    scopes: tuple[str, ...]
    key: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None (never raises: input is untrusted)."""
    prefix, _, rest = key.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or len(key_id) != 12 or not secret:
        return None
    if any(c not in "0123456789abcdef" for c in key_id):
        return None
    return key_id, secret


def parse_scopes(text: str) -> tuple[str, ...]:
    scopes = tuple(sorted({s.strip() for s in text.split(",") if s.strip()}))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise RegistryError(f"scopes {text!r}: use a comma-separated subset of {', '.join(SCOPES)}")
    return scopes


class Registry:
    """Access to the registry file; safe to share between threads (one SQLite connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.executescript(_SCHEMA)
            present = {row[1] for row in conn.execute("pragma table_info(audit_log)")}
            for column, ddl in _MIGRATIONS:
                if column not in present:
                    conn.execute(ddl)
            conn.executescript(_INDEXES)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("pragma journal_mode=wal")
            conn.execute("pragma synchronous=full")
            self._local.conn = conn
        return conn

    # tenants
    def create_tenant(self, name: str, actor: str) -> None:
        validate_tenant(name)
        try:
            self._conn().execute("insert into tenants values (?, ?)", [name, _now()])
        except sqlite3.IntegrityError:
            self.audit(actor, "tenant.create", "refused", tenant=name, detail="already exists")
            raise RegistryError(f"tenant {name!r} already exists") from None
        self.audit(actor, "tenant.create", "ok", tenant=name)

    def tenants(self) -> list[str]:
        return [row[0] for row in self._conn().execute("select name from tenants order by name")]

    def tenant_exists(self, name: str) -> bool:
        return self._conn().execute("select 1 from tenants where name = ?", [name]).fetchone() is not None

    # keys
    def create_key(self, tenant: str, scopes: tuple[str, ...], actor: str) -> NewKey:
        if not self.tenant_exists(tenant):
            self.audit(actor, "key.create", "refused", tenant=tenant, detail="unknown tenant")
            raise RegistryError(
                f"unknown tenant {tenant!r} (create it with `intentvision tenants create`)"
                f"{did_you_mean(tenant, self.tenants())}"
            )
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        self._conn().execute(
            "insert into api_keys values (?, ?, ?, ?, ?, null)",
            [key_id, tenant, ",".join(scopes), _digest(secret), _now()],
        )
        self.audit(
            actor, "key.create", "ok", tenant=tenant, key_id=key_id, detail=f"scopes={','.join(scopes)}"
        )
        return NewKey(key_id, tenant, scopes, f"{KEY_PREFIX}_{key_id}_{secret}")

    def keys(self, tenant: str | None = None) -> list[ApiKey]:
        rows = self._conn().execute(
            "select key_id, tenant, scopes, created_at, revoked_at from api_keys"
            " where ? is null or tenant = ? order by tenant, created_at",
            [tenant, tenant],
        )
        return [ApiKey(k, t, tuple(s.split(",")), c, r) for k, t, s, c, r in rows]

    def revoke_key(self, key_id: str, actor: str, tenant: str | None = None) -> ApiKey:
        """Revoke now; with ``tenant``, only a key of that tenant (an API admin cannot reach others)."""
        found = [k for k in self.keys(tenant) if k.key_id == key_id]
        if not found:
            self.audit(actor, "key.revoke", "refused", tenant=tenant, key_id=key_id, detail="unknown key")
            # Scoped to a tenant (an API admin), say so: the key may exist, just not for this caller.
            raise UnknownKeyError(
                f"unknown key id {key_id!r}" if tenant is None else f"no key {key_id!r} in this tenant"
            )
        if found[0].revoked_at is None:
            self._conn().execute("update api_keys set revoked_at = ? where key_id = ?", [_now(), key_id])
        self.audit(actor, "key.revoke", "ok", tenant=found[0].tenant, key_id=key_id)
        return next(k for k in self.keys(found[0].tenant) if k.key_id == key_id)

    def authenticate(self, key: str) -> ApiKey | None:
        """The live key matching ``key``, or None (unknown, malformed, revoked or wrong secret alike)."""
        parts = split_key(key)
        if parts is None:
            return None
        key_id, secret = parts
        row = (
            self._conn()
            .execute(
                "select tenant, scopes, secret_sha256, created_at, revoked_at from api_keys where key_id = ?",
                [key_id],
            )
            .fetchone()
        )
        # Compare even when the key id is unknown, so timing says nothing about which ids exist.
        stored = row[2] if row else _digest(secrets.token_urlsafe(32))
        if not hmac.compare_digest(stored, _digest(secret)) or row is None or row[4] is not None:
            return None
        return ApiKey(key_id, row[0], tuple(row[1].split(",")), row[3], row[4])

    # audit
    def audit(
        self,
        actor: str,
        action: str,
        outcome: str,
        tenant: str | None = None,
        key_id: str | None = None,
        detail: str = "",
    ) -> None:
        """Record an admin action or a failed authentication. Callers never pass secrets."""
        self._conn().execute(
            "insert into audit_log (at, actor, action, outcome, tenant, key_id, detail)"
            " values (?, ?, ?, ?, ?, ?, ?)",
            [_now(), actor, action, outcome, tenant, key_id, detail],
        )

    def audit_failure(self, actor: str, key_id: str | None, detail: str) -> None:
        """Record a failed authentication: one row per client and key id per :data:`FAILURE_WINDOW`, its
        ``attempts`` counting them and ``at`` the latest, so repeated failures neither grow the log per
        attempt nor hide. A key id of an existing key files the row under that key's tenant, whose admins see
        it in ``GET /v1/audit``."""
        now = datetime.now(UTC)
        stamp, window_start = (t.isoformat(timespec="milliseconds") for t in (now, now - FAILURE_WINDOW))
        conn = self._conn()
        updated = conn.execute(
            "update audit_log set attempts = attempts + 1, at = ?, detail = ? where id = ("
            " select id from audit_log where action = 'auth.failed' and actor = ? and key_id is ?"
            " and since >= ? order by id desc limit 1)",
            [stamp, detail, actor, key_id, window_start],
        ).rowcount
        if not updated:
            conn.execute(
                "insert into audit_log (at, actor, action, outcome, tenant, key_id, detail, since)"
                " values (?, ?, 'auth.failed', 'refused', (select tenant from api_keys where key_id = ?),"
                " ?, ?, ?)",
                [stamp, actor, key_id, key_id, detail, stamp],
            )

    def audit_entries(self, tenant: str | None = None, limit: int = 1000) -> list[dict]:
        """Newest first (an aggregated failure row by its latest attempt)."""
        cursor = self._conn().execute(
            "select at, actor, action, outcome, tenant, key_id, detail, attempts from audit_log"
            " where ? is null or tenant = ? order by at desc, id desc limit ?",
            [tenant, tenant, limit],
        )
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]
