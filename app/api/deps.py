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

Metering and quotas (:mod:`app.accounts.metering`): every admitted request is counted for its key id
and route; a key whose monthly quota of requests or passages is used up gets 429
``quota-exceeded`` (details: ``quota``, ``limit``, ``used``, ``resets``) with ``Retry-After``
(seconds to the first day of next month, UTC). Every authenticated response carries
``X-Quota-Remaining: requests=<n|unlimited>, passages=<n|unlimited>`` (what is left this month
after this response) and ``X-Quota-Reset`` (the reset time, ISO 8601 UTC).
"""

from __future__ import annotations

import datetime
import hmac
import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.accounts.keys import AuthenticationFailed, KeyStore, RateLimiter
from app.accounts.metering import MonthUsage, Quota, UsageMeter
from app.api.metrics import Metrics, request_info, route_template
from app.api.schemas import ApiError
from app.serving import JobManager, Reloader, ServingIndex
from app.settings import Settings
from indexer.embedding import EmbeddingModel

log = logging.getLogger(__name__)

REALM = 'Bearer realm="wikirag"'


@dataclass
class Services:
    """Everything the routes use, built once by the lifespan."""

    settings: Settings
    embedder: EmbeddingModel
    reloader: Reloader
    keys: KeyStore | None
    limiter: RateLimiter
    metrics: Metrics
    jobs: JobManager
    meter: UsageMeter


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key from the database, the bootstrap admin key, or anonymous."""

    key_id: str
    name: str
    admin: bool
    rate_limit: int | None = None
    quota: Quota = Quota()
    store_queries: bool = False


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


def authenticate_bearer(services: Services, token: str | None) -> Principal:
    """The principal a bearer token names (open access: anonymous); 401 when it names none."""
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
    quota = Quota(record.quota_requests, record.quota_passages)
    return Principal(
        record.key_id, record.name, record.admin, record.rate_limit, quota, record.store_queries
    )


def quota_headers(usage: MonthUsage, quota: Quota) -> dict[str, str]:
    """``X-Quota-Remaining`` and ``X-Quota-Reset`` for a key's use this month."""
    requests, passages = usage.remaining(quota)
    shown = ["unlimited" if n is None else str(n) for n in (requests, passages)]
    return {
        "X-Quota-Remaining": f"requests={shown[0]}, passages={shown[1]}",
        "X-Quota-Reset": f"{usage.resets.isoformat()}T00:00:00Z",
    }


def _admit(request: Request, services: Services, principal: Principal) -> None:
    """Count the request for the principal's key, or refuse it when a quota is used up."""
    meter = services.meter
    if not meter.enabled:
        return
    key_id, quota = principal.key_id, principal.quota
    admission = meter.admit(key_id, route_template(request.scope), quota)
    if admission.exceeded is None:
        services.metrics.key_requests.labels(key_id=key_id).inc()
        return
    services.metrics.quota_exceeded.labels(key_id=key_id, quota=admission.exceeded).inc()
    resets = admission.usage.resets
    reset_at = f"{resets.isoformat()}T00:00:00Z"
    seconds = (
        datetime.datetime.combine(resets, datetime.time(), datetime.UTC)
        - datetime.datetime.now(datetime.UTC)
    ).total_seconds()
    usage = admission.usage
    used = usage.requests if admission.exceeded == "requests" else usage.passages
    raise ApiError(
        429,
        "quota-exceeded",
        f"the monthly quota of {admission.limit} {admission.exceeded} of API key {key_id} is "
        f"used up ({used} used); it resets at {reset_at}",
        headers={"Retry-After": RateLimiter.retry_after_header(seconds)},
        quota=admission.exceeded,
        limit=admission.limit,
        used=used,
        resets=reset_at,
    )


def get_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the caller, take one token from its rate-limit bucket, and count the
    request for its key (429 when a monthly quota is used up)."""
    principal = authenticate_bearer(services, credentials.credentials if credentials else None)
    info = request_info(request.scope)
    info.key_id = principal.key_id
    meter = services.meter
    if meter.enabled:  # the quota headers, computed when the response starts
        info.headers = lambda: quota_headers(meter.month_usage(principal.key_id), principal.quota)
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
    _admit(request, services, principal)
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
