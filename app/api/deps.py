"""FastAPI dependencies: the services the lifespan built, the generation a request uses, and
the caller's API key.

Access control: ``Authorization: Bearer <key>`` with a key from the keys database (or the
configured bootstrap ``admin_key``). Missing, malformed, unknown or revoked keys get 401 with
``WWW-Authenticate``; a valid key without admin rights gets 403 on admin routes; each key has a
token bucket (its own limit or ``rate_limit_per_minute``) and an empty bucket gets 429 with
``Retry-After``. In open-access mode a request *without* a key is let in as the anonymous
principal, with admin rights (local use only; a warning is logged at start-up); a request
*with* a key is still checked, so a wrong key is never silently accepted. Anonymous requests
share one bucket.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.metrics import Metrics, request_info
from app.api.schemas import ApiError
from app.reloader import JobManager, Reloader, ServingIndex
from app.security import AuthenticationFailed, KeyStore, RateLimiter
from app.settings import Settings
from indexer.embedding import Embedder

log = logging.getLogger(__name__)

REALM = 'Bearer realm="wikirag"'


@dataclass
class Services:
    """Everything the routes use, built once by the lifespan."""

    settings: Settings
    embedder: Embedder
    reloader: Reloader
    keys: KeyStore | None
    limiter: RateLimiter
    metrics: Metrics
    jobs: JobManager


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key from the database, the bootstrap admin key, or anonymous."""

    key_id: str
    name: str
    admin: bool
    rate_limit: int | None = None


ANONYMOUS = Principal(key_id="anonymous", name="open access", admin=True)
BOOTSTRAP_ADMIN = Principal(key_id="admin-key", name="WIKIRAG_ADMIN_KEY", admin=True)


def get_services(request: Request) -> Services:
    services = getattr(request.app.state, "services", None)
    if not isinstance(services, Services):  # only before start-up finished
        raise ApiError(503, "starting", "the service is starting; retry in a moment")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_serving(request: Request, services: ServicesDep) -> ServingIndex:
    """The generation this request uses, taken once (a reload cannot change it midway)."""
    serving = services.reloader.current
    if serving is None:
        reason = services.reloader.not_ready_reason or "no index generation is loaded"
        raise ApiError(503, "not-ready", reason)
    request_info(request.scope).generation = serving.name
    return serving


ServingDep = Annotated[ServingIndex, Depends(get_serving)]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `wikirag keys create`, sent as `Authorization: Bearer <key>`",
)


def _unauthorized(code: str, message: str, *, invalid: bool) -> ApiError:
    challenge = f'{REALM}, error="invalid_token"' if invalid else REALM
    return ApiError(401, code, message, headers={"WWW-Authenticate": challenge})


def _authenticate(services: Services, token: str | None) -> Principal:
    settings = services.settings
    if token is None:
        if settings.open_access:
            return ANONYMOUS
        raise _unauthorized(
            "missing-api-key",
            "this endpoint needs an API key: send `Authorization: Bearer <key>`",
            invalid=False,
        )
    admin_key = settings.admin_key
    if admin_key is not None and hmac.compare_digest(
        token.encode("utf-8", "replace"), admin_key.get_secret_value().encode("utf-8")
    ):
        return BOOTSTRAP_ADMIN
    if services.keys is None:
        raise _unauthorized("invalid-api-key", "no API keys database is available", invalid=True)
    try:
        record = services.keys.authenticate(token)
    except AuthenticationFailed as exc:
        code = "revoked-api-key" if exc.reason == "revoked" else "invalid-api-key"
        raise _unauthorized(code, exc.message, invalid=True) from None
    return Principal(record.key_id, record.name, record.admin, record.rate_limit)


def get_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the caller and take one token from its rate-limit bucket."""
    principal = _authenticate(services, credentials.credentials if credentials else None)
    request_info(request.scope).key_id = principal.key_id
    wait = services.limiter.acquire(principal.key_id, principal.rate_limit)
    if wait is not None:
        services.metrics.rate_limited.inc()
        retry_after = RateLimiter.retry_after_header(wait)
        raise ApiError(
            429,
            "rate-limited",
            f"rate limit of API key {principal.key_id} exceeded; retry in {retry_after} s",
            headers={"Retry-After": retry_after},
            retry_after_seconds=int(retry_after),
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.admin:
        raise ApiError(
            403,
            "admin-required",
            f"API key {principal.key_id} ({principal.name}) has no admin rights; "
            "create one with `wikirag keys create --admin`",
        )
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
