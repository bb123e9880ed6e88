"""API keys: accepted in each header form, refused when unknown, revoked or short of scope; rate limited;
stored hashed; failed authentications and admin actions audited without secrets."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from intentvision_dagster.api.app import RateLimiter
from intentvision_dagster.api.registry import Registry
from tests.api.conftest import Api, json_body, make_api_home, now_s
from tests.support.api_server import api_in_thread

CLI = str(Path(sys.executable).parent / "intentvision")


def _ingest(api: Api, headers: dict) -> httpx.Response:
    return httpx.post(f"{api.url}/v1/ingest", headers=headers, json=json_body(metric="auth_probe"))


@pytest.mark.parametrize(
    "form",
    ["bearer", "basic-password", "basic-username", "datadog"],
)
def test_a_key_is_accepted_as_bearer_basic_auth_or_dd_api_key(api: Api, form: str):
    key = api.key("acme")
    headers = {
        "bearer": {"Authorization": f"Bearer {key}"},
        "basic-password": {"Authorization": "Basic " + base64.b64encode(f"acme:{key}".encode()).decode()},
        "basic-username": {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()},
        "datadog": {"DD-API-KEY": key},
    }[form]
    response = _ingest(api, headers)
    assert response.status_code == 200, response.text
    assert response.json()["tenant"] == "acme"


@pytest.mark.parametrize(
    ("headers", "key_id"),
    [
        ({}, None),
        ({"Authorization": "Bearer not-a-key"}, None),
        ({"Authorization": "Bearer iv_0123456789ab_wrongsecret"}, "0123456789ab"),
        ({"DD-API-KEY": "iv_zzzzzzzzzzzz_x"}, None),
        ({"Authorization": "Basic %%%not-base64"}, None),
    ],
    ids=["missing", "malformed", "unknown", "bad-key-id", "bad-basic"],
)
def test_missing_or_unknown_keys_get_401_and_are_audited_without_the_secret(api: Api, headers, key_id):
    response = _ingest(api, headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "missing or invalid API key" in response.json()["detail"]
    [latest] = api.registry.audit_entries(limit=1)
    assert (latest["action"], latest["outcome"], latest["key_id"]) == ("auth.failed", "refused", key_id)
    assert latest["detail"].startswith("POST /v1/ingest: ")
    assert "wrongsecret" not in json.dumps(api.registry.audit_entries())


def test_a_wrong_secret_for_a_real_key_id_is_refused(api: Api):
    key_id = api.key("acme").split("_")[1]
    response = _ingest(api, {"Authorization": f"Bearer iv_{key_id}_guessed"})
    assert response.status_code == 401
    assert api.registry.audit_entries(limit=1)[0]["key_id"] == key_id


@pytest.mark.parametrize(
    ("scopes", "method", "path", "missing"),
    [
        ("read", "POST", "/v1/ingest", "ingest"),
        ("read", "POST", "/api/v1/write", "ingest"),
        ("read", "POST", "/api/v2/series", "ingest"),
        ("ingest", "GET", "/v1/series", "read"),
        ("ingest", "GET", "/v1/alerts", "read"),
        ("ingest,read", "GET", "/v1/keys", "admin"),
        ("ingest,read", "GET", "/v1/audit", "admin"),
        ("admin", "GET", "/v1/forecasts", "read"),
    ],
)
def test_a_key_without_the_scope_gets_403_naming_it(api: Api, scopes, method, path, missing):
    before = len(api.batches())
    response = httpx.request(method, f"{api.url}{path}", headers=api.headers("acme", scopes), content=b"{}")
    assert response.status_code == 403
    assert response.json()["detail"].startswith(f"this API key lacks the {missing!r} scope")
    assert api.registry.audit_entries(limit=1)[0]["action"] == "auth.denied"
    assert len(api.batches()) == before


def test_keys_are_stored_hashed(api: Api):
    registry = Path(api.settings.registry_path)
    stored = b"".join(p.read_bytes() for p in registry.parent.glob(f"{registry.name}*"))  # file + WAL
    for key in api.keys.values():
        secret = key.split("_", 2)[2]
        assert secret.encode() not in stored
        assert hashlib.sha256(secret.encode()).hexdigest().encode() in stored


def test_cli_creates_lists_and_revokes_keys_and_revocation_is_effective_at_once(tmp_path):
    settings, _, _ = make_api_home(tmp_path / "home")
    env = {"INTENTVISION_HOME": str(settings.home), "PATH": str(Path(CLI).parent)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60)

    created = cli("keys", "create", "--tenant", "acme", "--scopes", "ingest,read", "--json")
    assert created.returncode == 0, created.stderr
    new = json.loads(created.stdout)
    assert set(new) == {"key_id", "tenant", "scopes", "key"}
    assert (new["tenant"], new["scopes"]) == ("acme", ["ingest", "read"])
    assert new["key"].startswith(f"iv_{new['key_id']}_")
    listed = cli("keys", "list", "--tenant", "acme")
    assert new["key_id"] in listed.stdout and new["key"] not in listed.stdout

    with api_in_thread(settings) as url:
        headers = {"Authorization": f"Bearer {new['key']}"}
        body = json_body(points=[{"timestamp": now_s() - 10, "value": 1}])
        assert httpx.post(f"{url}/v1/ingest", headers=headers, json=body).status_code == 200
        revoked = cli("keys", "revoke", new["key_id"])
        assert revoked.returncode == 0 and f"revoked key {new['key_id']} of tenant acme" in revoked.stdout
        after = httpx.post(f"{url}/v1/ingest", headers=headers, json=body)
        assert after.status_code == 401

    assert "revoked" in cli("keys", "list").stdout
    unknown = cli("keys", "revoke", "000000000000")
    assert unknown.returncode == 1 and "unknown key id '000000000000'" in unknown.stderr
    bad_scope = cli("keys", "create", "--tenant", "acme", "--scopes", "ingest,root")
    assert (
        bad_scope.returncode == 1
        and "use a comma-separated subset of ingest, read, admin" in bad_scope.stderr
    )
    no_tenant = cli("keys", "create", "--tenant", "initech")
    assert no_tenant.returncode == 1 and "unknown tenant 'initech'" in no_tenant.stderr
    assert cli("tenants", "create", "initech").returncode == 0
    assert cli("tenants", "list").stdout.split() == ["acme", "globex", "initech"]
    twice = cli("tenants", "create", "initech")
    assert twice.returncode == 1 and "already exists" in twice.stderr

    audit = [json.loads(line) for line in cli("audit", "--limit", "100").stdout.splitlines()]
    actions = [(e["action"], e["outcome"]) for e in audit if e["actor"].startswith("cli:")]
    assert ("key.create", "ok") in actions and ("key.revoke", "ok") in actions
    assert ("key.revoke", "refused") in actions and ("tenant.create", "refused") in actions
    assert new["key"].split("_", 2)[2] not in json.dumps(audit)
    assert any(e["action"] == "auth.failed" and e["key_id"] == new["key_id"] for e in audit)


def test_an_admin_key_revokes_keys_of_its_own_tenant_only(api: Api):
    victim = api.registry.create_key("globex", ("read",), "test")
    own = api.registry.create_key("acme", ("read",), "test")
    admin = api.headers("acme", "admin")
    other = httpx.delete(f"{api.url}/v1/keys/{victim.key_id}", headers=admin)
    missing = httpx.delete(f"{api.url}/v1/keys/ffffffffffff", headers=admin)
    assert other.status_code == missing.status_code == 404
    assert other.json()["detail"].replace(victim.key_id, "X") == missing.json()["detail"].replace(
        "ffffffffffff", "X"
    )
    assert (
        httpx.get(f"{api.url}/v1/series", headers={"Authorization": f"Bearer {victim.key}"}).status_code
        == 200
    )
    assert httpx.delete(f"{api.url}/v1/keys/{own.key_id}", headers=admin).json()["revoked_at"]
    assert (
        httpx.get(f"{api.url}/v1/series", headers={"Authorization": f"Bearer {own.key}"}).status_code == 401
    )
    listed = httpx.get(f"{api.url}/v1/keys", headers=admin).json()
    assert {k["tenant"] for k in listed["keys"]} == {"acme"}
    audit = httpx.get(f"{api.url}/v1/audit", headers=admin).json()["entries"]
    assert {e["tenant"] for e in audit} <= {"acme", None}
    # the revoked key's refused use, filed under its tenant, then the revocation
    assert [(e["action"], e["key_id"]) for e in audit[:2]] == [
        ("auth.failed", own.key_id),
        ("key.revoke", own.key_id),
    ]


def test_rate_limit_per_key_answers_429_with_retry_after(tmp_path):
    settings, _, keys = make_api_home(tmp_path / "home", api_rate_limit=2.0)
    with api_in_thread(settings) as url:
        limited = {"Authorization": f"Bearer {keys['acme:read']}"}
        answers = [httpx.get(f"{url}/v1/series", headers=limited) for _ in range(10)]
        assert [r.status_code for r in answers[:4]] == [200] * 4  # a burst of twice the rate
        refused = next(r for r in answers[4:] if r.status_code != 200)  # refills at 2/s, we send faster
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert "rate limit of 2 requests/s for this API key exceeded" in refused.json()["detail"]
        other_key = {"Authorization": f"Bearer {keys['globex:read']}"}
        assert httpx.get(f"{url}/v1/series", headers=other_key).status_code == 200


def test_failed_authentications_are_throttled_per_address_and_audited_as_one_counted_row(tmp_path):
    """2,000 bad keys used to get 2,000 fsync'd audit rows and never a 429."""
    settings, registry, keys = make_api_home(tmp_path / "home", api_auth_failure_rate=0.5)  # bursts of 5
    key_id = keys["acme:read"].split("_")[1]
    wrong = {"Authorization": f"Bearer iv_{key_id}_wrongsecret"}
    with api_in_thread(settings) as url, httpx.Client() as client:
        statuses = [client.get(f"{url}/v1/series", headers=wrong).status_code for _ in range(20)]
        valid = client.get(f"{url}/v1/series", headers={"Authorization": f"Bearer {keys['acme:read']}"})
    assert statuses[:6] == [401] * 5 + [429]
    assert statuses.count(401) <= 6  # a token refills every 2 s
    assert valid.status_code == 429 and int(valid.headers["Retry-After"]) >= 1
    assert "too many failed authentications from 127.0.0.1" in valid.json()["detail"]
    failed = [e for e in registry.audit_entries() if e["action"] == "auth.failed"]
    assert [(e["key_id"], e["tenant"], e["attempts"]) for e in failed] == [
        (key_id, "acme", statuses.count(401))
    ]


def test_a_tenant_admin_sees_failed_authentications_against_its_own_keys_only(api: Api):
    key_id = api.key("acme", "read").split("_")[1]
    assert _ingest(api, {"Authorization": f"Bearer iv_{key_id}_guess"}).status_code == 401
    assert _ingest(api, {"Authorization": f"Bearer iv_{key_id}_guess2"}).status_code == 401

    def failures(tenant: str) -> list[dict]:
        entries = httpx.get(f"{api.url}/v1/audit", headers=api.headers(tenant, "admin")).json()["entries"]
        return [e for e in entries if e["action"] == "auth.failed" and e["key_id"] == key_id]

    [entry] = failures("acme")
    assert (entry["attempts"], entry["actor"], entry["tenant"]) == (2, "api:127.0.0.1", "acme")
    assert failures("globex") == []


def test_a_registry_from_before_failure_counting_gains_the_columns_and_keeps_its_rows(tmp_path):
    path = tmp_path / "registry.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "create table audit_log (id integer primary key autoincrement, at text not null,"
            " actor text not null, action text not null, outcome text not null, tenant text, key_id text,"
            " detail text not null default '')"
        )
        conn.execute(
            "insert into audit_log (at, actor, action, outcome) values ('2026-01-01', 'cli', 'x', 'ok')"
        )
    registry = Registry(path)
    registry.audit_failure("api:10.0.0.1", None, "GET /v1/series: no API key")
    registry.audit_failure("api:10.0.0.1", None, "GET /v1/series: no API key")
    entries = registry.audit_entries()
    assert [(e["action"], e["attempts"]) for e in entries] == [("auth.failed", 2), ("x", 1)]


def test_the_rate_limiter_forgets_refilled_keys_but_keeps_the_throttled_ones():
    refills_at_once = RateLimiter(rate=1e12, burst=1, prune_at=100)
    for address in range(1_000):
        refills_at_once.wait_seconds(f"10.0.{address // 256}.{address % 256}")
    assert len(refills_at_once) <= 100

    never_refills = RateLimiter(rate=1e-9, burst=1, prune_at=100)
    for address in range(300):
        assert never_refills.wait_seconds(f"client-{address}") == 0
    assert len(never_refills) == 300
    assert never_refills.wait_seconds("client-0") > 0
