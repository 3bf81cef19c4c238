"""API keys and per-key rate limits for the HTTP service.

Keys
----
A key looks like ``wrk_<key id>_<secret>``: the key id (12 hex digits) is public — it names
the key in ``wikirag keys list``, in request logs and in ``wikirag keys revoke`` — and the
secret is 32 random bytes (``secrets.token_urlsafe``). The keys database (SQLite) stores, per
key, a random 16-byte salt and ``HMAC-SHA256(salt, secret)``, never the key itself: whoever
reads the file cannot use what it holds. A slow password hash would buy nothing here, the
secrets being 256-bit random values rather than human-chosen passwords. The key is shown once,
when it is created.

Rate limits
-----------
:class:`RateLimiter` keeps one token bucket per key id: it holds up to ``limit`` tokens (a
whole minute's worth, so a client may burst), refills at ``limit / 60`` tokens per second, and
each request takes one. An empty bucket answers how many seconds until the next token, which
the service sends as ``Retry-After``. Buckets live in the process (with several workers each
has its own).

Usage::

    >>> keys = KeyStore(Path("var/index/keys.sqlite"))                 # doctest: +SKIP
    >>> info, raw = keys.create("answer-engine", rate_limit=120)        # doctest: +SKIP
    >>> keys.authenticate(raw).key_id == info.key_id                    # doctest: +SKIP
    True
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from indexer.errors import InvalidInput

__all__ = [
    "KEY_PREFIX",
    "ApiKey",
    "AuthenticationFailed",
    "KeyNotFound",
    "KeyStore",
    "RateLimiter",
]

KEY_PREFIX = "wrk"
_KEY_ID_HEX = 12
_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    salt BLOB NOT NULL,
    digest TEXT NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0,
    rate_limit INTEGER,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    quota_requests INTEGER,
    quota_passages INTEGER,
    store_queries INTEGER NOT NULL DEFAULT 0
)
"""
# Columns added after the first release: a keys database created before them gets them on
# open (existing keys: no quota, no query storage).
_ADDED_COLUMNS = {
    "quota_requests": "INTEGER",
    "quota_passages": "INTEGER",
    "store_queries": "INTEGER NOT NULL DEFAULT 0",
}
_COLUMNS = (
    "key_id, name, admin, rate_limit, created_at, revoked_at, quota_requests, quota_passages, "
    "store_queries"
)


class AuthenticationFailed(Exception):
    """A presented key is not a valid, unrevoked key; ``reason`` says which."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class KeyNotFound(Exception):
    """No key with this id."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What the database holds about a key (never the key itself).

    ``rate_limit`` is requests per minute; None means the service's default.
    ``quota_requests`` and ``quota_passages`` are monthly quotas (None: unlimited);
    ``store_queries`` says whether the key's client agreed to have its query text stored.
    """

    key_id: str
    name: str
    admin: bool
    rate_limit: int | None
    created_at: str
    revoked_at: str | None
    quota_requests: int | None = None
    quota_passages: int | None = None
    store_queries: bool = False

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def as_dict(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "admin": self.admin,
            "rate_limit": self.rate_limit,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "quota_requests": self.quota_requests,
            "quota_passages": self.quota_passages,
            "store_queries": self.store_queries,
        }


def secret_digest(salt: bytes, secret: str) -> str:
    """The stored form of a key's secret: HMAC-SHA256 under the key's own salt."""
    return hmac.new(salt, secret.encode("utf-8"), hashlib.sha256).hexdigest()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def split_key(raw: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a well-formed key, else None."""
    prefix, sep, rest = raw.partition("_")
    key_id, sep2, secret = rest.partition("_")
    if prefix != KEY_PREFIX or not sep or not sep2 or not secret:
        return None
    if len(key_id) != _KEY_ID_HEX or any(c not in "0123456789abcdef" for c in key_id):
        return None
    return key_id, secret


class KeyStore:
    """The API keys database (SQLite; one short connection per operation, thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        with self._connect() as conn:
            conn.execute(_SCHEMA)
            _migrate(conn)
        if created:
            os.chmod(self.path, 0o600)  # only the service's user reads the digests

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=10.0)
        try:
            with conn:  # commits on success, rolls back on error
                yield conn
        finally:
            conn.close()

    def create(
        self,
        name: str,
        *,
        admin: bool = False,
        rate_limit: int | None = None,
        quota_requests: int | None = None,
        quota_passages: int | None = None,
        store_queries: bool = False,
    ) -> tuple[ApiKey, str]:
        """A new key: its record and the raw key (which is not stored and cannot be shown
        again)."""
        if not name.strip():
            raise InvalidInput("a key needs a name (who or what uses it)")
        if rate_limit is not None and rate_limit < 0:
            raise InvalidInput(f"rate limit must be ≥ 0 requests per minute, got {rate_limit}")
        _check_quotas(quota_requests, quota_passages)
        key_id = secrets.token_hex(_KEY_ID_HEX // 2)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        record = ApiKey(key_id, name.strip(), admin, rate_limit, _now(), None, quota_requests,
                        quota_passages, store_queries)  # fmt: skip
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO api_keys (key_id, name, salt, digest, admin, rate_limit, "
                "created_at, quota_requests, quota_passages, store_queries) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key_id, record.name, salt, secret_digest(salt, secret), int(admin), rate_limit,
                 record.created_at, quota_requests, quota_passages, int(store_queries)),
            )  # fmt: skip
        return record, f"{KEY_PREFIX}_{key_id}_{secret}"

    def set_quota(self, key_id: str, *, requests: int | None, passages: int | None) -> ApiKey:
        """Set a key's monthly quotas (None: unlimited); they apply from its next request."""
        _check_quotas(requests, passages)
        with self._connect() as conn:
            conn.execute(
                "UPDATE api_keys SET quota_requests = ?, quota_passages = ? WHERE key_id = ?",
                (requests, passages, key_id),
            )
        record = self.get(key_id)
        if record is None:
            raise KeyNotFound(f"no API key with id {key_id!r} (see `wikirag keys list`)")
        return record

    def set_store_queries(self, key_id: str, store: bool) -> ApiKey:
        """Record whether the key's client agreed to have its query text stored."""
        with self._connect() as conn:
            conn.execute(
                "UPDATE api_keys SET store_queries = ? WHERE key_id = ?", (int(store), key_id)
            )
        record = self.get(key_id)
        if record is None:
            raise KeyNotFound(f"no API key with id {key_id!r} (see `wikirag keys list`)")
        return record

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (idempotent); later requests with it get 401."""
        with self._connect() as conn:
            conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (_now(), key_id),
            )
        record = self.get(key_id)
        if record is None:
            raise KeyNotFound(f"no API key with id {key_id!r} (see `wikirag keys list`)")
        return record

    def get(self, key_id: str) -> ApiKey | None:
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        return None if row is None else _record(row)

    def list(self) -> list[ApiKey]:
        """Every key, oldest first (ids, names, dates and rights; never the keys)."""
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, key_id"
            ).fetchall()
        return [_record(r) for r in rows]

    def authenticate(self, raw: str) -> ApiKey:
        """The record of a presented key; :class:`AuthenticationFailed` when it is malformed,
        unknown, wrong or revoked."""
        parts = split_key(raw)
        if parts is None:
            raise AuthenticationFailed(
                "malformed", f"an API key looks like {KEY_PREFIX}_<key id>_<secret>"
            )
        key_id, secret = parts
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS}, salt, digest FROM api_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        if row is None:
            raise AuthenticationFailed("unknown", f"API key {key_id} is not known")
        if not hmac.compare_digest(secret_digest(bytes(row[-2]), secret), str(row[-1])):
            raise AuthenticationFailed("invalid", f"API key {key_id} is not valid")
        record = _record(row[:-2])
        if record.revoked:
            raise AuthenticationFailed(
                "revoked", f"API key {key_id} was revoked at {record.revoked_at}"
            )
        return record


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the columns a keys database created by an older wikirag lacks."""
    present = {str(row[1]) for row in conn.execute("PRAGMA table_info(api_keys)")}
    for column, kind in _ADDED_COLUMNS.items():
        if column not in present:
            try:
                conn.execute(f"ALTER TABLE api_keys ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:  # another process added it meanwhile
                if "duplicate column" not in str(exc):
                    raise


def _check_quotas(requests: int | None, passages: int | None) -> None:
    for what, value in (("requests", requests), ("passages", passages)):
        if value is not None and value < 0:
            raise InvalidInput(f"a quota of {what} per month must be ≥ 0 (or none), got {value}")


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _record(row: tuple[object, ...]) -> ApiKey:
    key_id, name, admin, rate_limit, created_at, revoked_at, q_requests, q_passages, queries = row
    return ApiKey(
        key_id=str(key_id),
        name=str(name),
        admin=bool(admin),
        rate_limit=_optional_int(rate_limit),
        created_at=str(created_at),
        revoked_at=None if revoked_at is None else str(revoked_at),
        quota_requests=_optional_int(q_requests),
        quota_passages=_optional_int(q_passages),
        store_queries=bool(queries),
    )


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets per key id: ``limit`` requests per minute, bursts up to ``limit``."""

    def __init__(
        self, default_per_minute: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.default_per_minute = default_per_minute
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key_id: str, per_minute: int | None = None) -> float | None:
        """Take a token: None when allowed, else the seconds until one is available.

        ``per_minute`` None uses the default; 0 means unlimited.
        """
        limit = self.default_per_minute if per_minute is None else per_minute
        if limit <= 0:
            return None
        rate = limit / 60.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(float(limit), now)
            bucket.tokens = min(float(limit), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) / rate

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        """``Retry-After`` value: whole seconds, rounded up, at least 1."""
        return str(max(1, math.ceil(seconds)))
