"""API keys (stored hashed, created/revoked/listed by the CLI), rate limits, and how the HTTP
service enforces them: 401 with WWW-Authenticate, 403 for non-admins on admin routes, 429
with Retry-After, and the explicit open-access mode."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.accounts.keys import AuthenticationFailed, KeyNotFound, KeyStore, RateLimiter
from app.api.main import create_app
from app.cli.main import main
from indexer.embedding import Embedder
from tests.test_api import (
    embedder,
    error_of,
    index_dir,
    key_secret,
    leaked_pieces,
    service_settings,
)

__all__ = ["embedder", "index_dir"]  # session fixtures shared with test_api


# -- the key store ------------------------------------------------------------------------


def test_keys_are_stored_hashed_and_verified(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.sqlite")
    record, raw = store.create("answer-engine", rate_limit=120)
    assert re.fullmatch(r"wrk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", raw)
    assert raw.split("_", 2)[1] == record.key_id
    assert store.authenticate(raw) == record
    secret = raw.split("_", 2)[2]
    data = (tmp_path / "keys.sqlite").read_bytes()
    assert secret.encode() not in data and raw.encode() not in data
    assert secret == key_secret(raw) and leaked_pieces(secret, data.decode("latin-1")) == []
    assert hashlib.sha256(secret.encode()).hexdigest().encode() not in data
    assert (tmp_path / "keys.sqlite").stat().st_mode & 0o077 == 0
    other, raw2 = store.create("second")
    assert raw2 != raw and other.key_id != record.key_id

    for bad, reason in [
        ("not-a-key", "malformed"),
        (raw[:-1] + ("A" if raw[-1] != "A" else "B"), "invalid"),
        ("wrk_000000000000_" + secret, "unknown"),
    ]:
        with pytest.raises(AuthenticationFailed) as failure:
            store.authenticate(bad)
        assert failure.value.reason == reason
    revoked = store.revoke(record.key_id)
    assert revoked.revoked and revoked.revoked_at is not None
    with pytest.raises(AuthenticationFailed) as failure:
        store.authenticate(raw)
    assert failure.value.reason == "revoked"
    assert store.authenticate(raw2).key_id == other.key_id
    with pytest.raises(KeyNotFound):
        store.revoke("ffffffffffff")
    with pytest.raises(ValueError, match="name"):
        store.create("  ")


def test_token_bucket_rate_limit() -> None:
    now = [1000.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert [limiter.acquire("a", 3) for _ in range(3)] == [None, None, None]
    wait = limiter.acquire("a", 3)
    assert wait == pytest.approx(20.0)  # 3 per minute: one token every 20 s
    assert RateLimiter.retry_after_header(wait or 0) == "20"
    assert limiter.acquire("b", 3) is None  # buckets are per key
    now[0] += 20.0
    assert limiter.acquire("a", 3) is None and limiter.acquire("a", 3) is not None
    assert all(limiter.acquire("c") is None for _ in range(60))  # the default limit
    assert limiter.acquire("c") == pytest.approx(1.0)
    assert all(limiter.acquire("d", 0) is None for _ in range(1000))  # 0: unlimited
    assert RateLimiter.retry_after_header(0.01) == "1"


# -- the CLI --------------------------------------------------------------------------------


def test_keys_cli_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "keys.sqlite")
    assert main(["keys", "--keys-db", db, "create", "--name", "eval bot", "--admin",
                 "--rate-limit", "30"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    raw = re.search(r"key:\s+(wrk_\S+)", out)
    key_id = re.search(r"key id:\s+([0-9a-f]{12})", out)
    assert raw and key_id and "shown only now" in out
    record = KeyStore(Path(db)).authenticate(raw.group(1))
    assert record.admin and record.rate_limit == 30 and record.name == "eval bot"

    assert main(["keys", "--keys-db", db, "list"]) == 0
    listing = capsys.readouterr().out
    assert key_id.group(1) in listing and "eval bot" in listing and "yes" in listing
    # the whole secret, and no 12-character piece of it (its text up to a "_" can be one
    # character long, found anywhere by chance)
    assert raw.group(1) not in listing and key_secret(raw.group(1)) not in listing
    assert leaked_pieces(key_secret(raw.group(1)), listing) == []

    assert main(["keys", "--keys-db", db, "revoke", key_id.group(1)]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["keys", "--keys-db", db, "list", "--json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["key_id"] == key_id.group(1) and rows[0]["revoked_at"]
    assert "key" not in rows[0]
    assert main(["keys", "--keys-db", db, "revoke", "ffffffffffff"]) == 1
    assert "no API key" in capsys.readouterr().err


def test_keys_cli_defaults_to_the_index_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "--index", str(tmp_path / "idx"), "create", "--name", "n"]) == 0
    capsys.readouterr()
    assert (tmp_path / "idx" / "keys.sqlite").is_file()


# -- over HTTP ------------------------------------------------------------------------------


def test_the_service_requires_valid_keys_and_admin_rights(
    tmp_path: Path, index_dir: Path, embedder: Embedder
) -> None:
    settings = service_settings(
        index_dir,
        tmp_path,
        open_access=False,
        rate_limit_per_minute=100,
        admin_key="bootstrap-admin-key-0123456789",
    )
    keys = KeyStore(settings.keys_db_path())
    _, user = keys.create("user")
    _, admin = keys.create("admin", admin=True)
    limited_record, limited = keys.create("limited", rate_limit=2)
    revoked_record, revoked = keys.create("gone")
    keys.revoke(revoked_record.key_id)
    search = {"query": "Einstein", "k": 1}

    def bearer(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    with TestClient(create_app(settings, embedder=embedder)) as client:
        missing = client.post("/v1/search", json=search)
        error_of(missing, 401, "missing-api-key")
        assert missing.headers["www-authenticate"] == 'Bearer realm="wikirag"'
        basic = client.post("/v1/search", json=search, headers={"Authorization": "Basic eDp5"})
        error_of(basic, 401, "missing-api-key")
        wrong = client.post("/v1/search", json=search, headers=bearer(user + "x"))
        error_of(wrong, 401, "invalid-api-key")
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        gone = client.post("/v1/search", json=search, headers=bearer(revoked))
        assert "revoked" in error_of(gone, 401, "revoked-api-key")["message"]
        assert "www-authenticate" in gone.headers
        # auth comes before validation: no key, bad body → still 401
        error_of(client.post("/v1/search", json={"k": 0}), 401)

        assert client.post("/v1/search", json=search, headers=bearer(user)).status_code == 200
        for path in ("/v1/index", "/v1/passages/simplewiki:8368147:0"):
            assert client.get(path, headers=bearer(user)).status_code == 200
            error_of(client.get(path), 401)
        forbidden = client.post("/v1/admin/reload", headers=bearer(user))
        assert "no admin rights" in error_of(forbidden, 403, "admin-required")["message"]
        error_of(client.post("/v1/admin/rebuild", headers=bearer(user)), 403)
        error_of(client.get("/v1/admin/jobs", headers=bearer(user)), 403)
        assert client.post("/v1/admin/reload", headers=bearer(admin)).json()["reloaded"] is False
        bootstrap = bearer("bootstrap-admin-key-0123456789")
        assert client.get("/v1/admin/jobs", headers=bootstrap).status_code == 200

        for _ in range(2):
            assert client.get("/v1/index", headers=bearer(limited)).status_code == 200
        limited_out = client.get("/v1/index", headers=bearer(limited))
        error = error_of(limited_out, 429, "rate-limited")
        assert int(limited_out.headers["retry-after"]) == 30  # 2 per minute
        assert error["details"]["retry_after_seconds"] == 30
        assert limited_record.key_id in error["message"]
        assert client.get("/v1/index", headers=bearer(user)).status_code == 200

        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
            assert client.get(path).status_code == 200, path
        assert "wikirag_rate_limited_total 1.0" in client.get("/metrics").text


def test_open_access_lets_keyless_requests_in_but_still_checks_keys(
    tmp_path: Path, index_dir: Path, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    settings = service_settings(index_dir, tmp_path, open_access=True)
    with TestClient(create_app(settings, embedder=embedder)) as client:
        assert client.post("/v1/search", json={"query": "squirrel"}).status_code == 200
        assert client.post("/v1/admin/reload").status_code == 200  # open mode grants admin
        bad = client.get("/v1/index", headers={"Authorization": "Bearer wrk_nope"})
        error_of(bad, 401, "invalid-api-key")
    assert any("OPEN ACCESS" in r.message and r.levelname == "WARNING" for r in caplog.records)
