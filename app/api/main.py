"""The FastAPI application: :func:`create_app` builds it from one :class:`Settings`.

The lifespan loads the embedding model once, opens the published generation (refusing to
become ready on a missing index or another model — ``/readyz`` says why), opens the API keys
database and the usage meter (:mod:`app.accounts.metering`: its flusher thread stops, after a last
flush, when the lifespan ends), and starts the reload task: the ``current`` symlink is polled
every ``reload_poll_seconds``, ``SIGHUP`` forces a check, and so does ``POST /v1/admin/reload``
(see :mod:`app.serving`). Nothing lives in module globals: everything is on ``app.state``.

Run it with ``wikirag serve`` (uvicorn, factory :func:`create_app_from_env`), or::

    uvicorn --factory app.api.main:create_app_from_env

Every error answers ``{"error": {"code", "message", "details"}}``: validation errors (422),
:class:`~app.attribution.citations.CitationError` (its own status), HTTP errors (404
route, 405…), and — never expected — 500. Request bodies over ``max_body_bytes`` are
refused with 413 before anything parses them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.accounts.keys import KeyStore, RateLimiter
from app.accounts.metering import UsageMeter
from app.api.deps import Services, authenticate_bearer, get_principal, get_services, require_admin
from app.api.errors import http_status
from app.api.metrics import Metrics, ObservabilityMiddleware, request_info
from app.api.routes import (
    admin,
    attribute,
    citations,
    health,
    index,
    passages,
    routed,
    search,
    shard,
    usage,
)
from app.api.schemas import ApiError, ErrorBody, ErrorResponse
from app.attribution.citations import CitationError
from app.retrieval.retriever import serving_embedder
from app.serving import JobManager, Reloader
from app.settings import Settings
from indexer import __version__
from indexer.embedding import EmbeddingModel

log = logging.getLogger(__name__)

API_DESCRIPTION = """Retrieval and attribution over licensed Wikipedia content.

Send an API key as `Authorization: Bearer <key>` (`wikirag keys create`). Every result
carries its revision permalink and a license-correct attribution. Errors answer
`{"error": {"code", "message", "details"}}`.
"""

# Validation errors about one of these fields get a specific code.
_FIELD_CODES = {"k": "invalid-k", "mode": "unknown-mode", "fusion": "unknown-fusion"}


# -- errors -------------------------------------------------------------------------------


def _error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    request_info(request.scope).error_code = code
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details or {}))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _error_response(request, exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _citation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CitationError)
    details = {k: v if isinstance(v, int | str | list) else str(v) for k, v in exc.details.items()}
    return _error_response(request, http_status(exc.code), exc.code, exc.message, details)


def _location(loc: tuple[int | str, ...] | list[int | str]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _describe(error: Mapping[str, Any]) -> dict[str, str]:
    """One validation error as ``{field, message, type}`` (JSON-safe strings)."""
    kind = str(error.get("type", ""))
    if kind == "json_invalid":
        ctx = error.get("ctx") or {}
        return {
            "field": "body",
            "message": f"the body is not valid JSON: {ctx.get('error', 'decode error')}",
            "type": kind,
        }
    return {
        "field": _location(error.get("loc", ())),
        "message": str(error.get("msg", "")),
        "type": kind,
    }


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _refused_key(request: Request) -> ApiError | None:
    """The 401 (or 403) a route that needs a key (or an admin key) would answer, or None.

    FastAPI parses a JSON body before it resolves the key dependency, so a body that is
    not JSON would get its 422 before the key is checked: the error handlers ask here first,
    and a caller without a valid key learns nothing about how its body was taken."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return None
    calls = {d.call for d in _dependencies(route.dependant)}
    if get_principal not in calls:
        return None
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    bearer = token if scheme.lower() == "bearer" and token else None
    try:
        principal = authenticate_bearer(get_services(request), bearer)
        if require_admin in calls:
            require_admin(principal)
    except ApiError as refused:
        return refused
    return None


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if (refused := _refused_key(request)) is not None:
        return await _api_error(request, refused)
    errors = [_describe(e) for e in exc.errors()]
    if any(e["type"] == "model_attributes_type" and e["field"] == "body" for e in errors):
        content_type = request.headers.get("content-type", "")
        if "json" not in content_type.lower():
            errors[0]["message"] += (
                f" (the body was sent as {content_type or 'no content type'}; send JSON with "
                "Content-Type: application/json)"
            )
    message = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
    fields = {e["field"] for e in errors}
    code = _FIELD_CODES.get(next(iter(fields)), "invalid-request") if len(fields) == 1 else None
    return _error_response(request, 422, code or "invalid-request", message, {"errors": errors})


_HTTP_CODES = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large"}
_BODY_PARSE_ERROR = "There was an error parsing the body"  # fastapi.routing's detail


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http-{exc.status_code}")
    message = str(exc.detail)
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
    if exc.status_code == 400 and message == _BODY_PARSE_ERROR:
        if (refused := _refused_key(request)) is not None:
            return await _api_error(request, refused)
        # FastAPI's answer to a body that is not even text (invalid UTF-8, say): the same
        # 422 as any other body that is not JSON, so every body-taking route documents it
        message = "body: the body is not valid JSON: it is not UTF-8 text"
        return _error_response(request, 422, "invalid-request", message)
    return _error_response(request, exc.status_code, code, message, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error answering %s %s", request.method, request.url.path)
    return _error_response(
        request, 500, "internal-error", "internal error; the service logged the details"
    )


# -- body size limit ------------------------------------------------------------------------


class BodyLimitMiddleware:
    """Refuse bodies over ``limit`` bytes with 413 before the application reads them.

    A declared ``Content-Length`` over the limit is refused without reading; otherwise the
    body is read (at most ``limit`` bytes are kept) and replayed to the application.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_info(scope).error_code = "body-too-large"
        body = ErrorResponse(
            error=ErrorBody(
                code="body-too-large",
                message=f"the request body is larger than {self.limit} bytes",
                details={"max_body_bytes": self.limit},
            )
        )
        response = JSONResponse(body.model_dump(mode="json"), status_code=413)
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


# -- lifespan -------------------------------------------------------------------------------


async def _maintain(services: Services, interval: float, poll: bool) -> None:
    """Poll the ``current`` symlink (when ``poll``) and close replaced generations."""
    while True:
        await asyncio.sleep(interval)
        try:
            if poll:
                outcome = await asyncio.to_thread(services.reloader.reload)
                if outcome.changed:
                    services.metrics.reloads.labels(outcome="changed").inc()
            services.reloader.reap()
        except Exception:  # never let the loop die
            log.exception("index reload check failed")


async def _watch_updates(services: Services, interval: float) -> None:
    """Poll the served generation's ``updates.json`` (incremental updates, indexer.update)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(services.reloader.refresh_updates)
        except Exception:  # never let the loop die
            log.exception("update check failed")


def _install_sighup(services: Services, tasks: set[asyncio.Task[None]]) -> Callable[[], None]:
    """Reload on SIGHUP (main thread only); returns the function that removes the handler."""
    loop = asyncio.get_running_loop()

    async def on_hup() -> None:
        log.info("SIGHUP: checking for a newly published generation")
        outcome = await asyncio.to_thread(services.reloader.reload)
        services.metrics.reloads.labels(
            outcome="changed" if outcome.changed else ("failed" if outcome.error else "unchanged")
        ).inc()

    def handler() -> None:
        task = loop.create_task(on_hup())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, handler)
    except (ValueError, RuntimeError, NotImplementedError, AttributeError):
        log.debug("SIGHUP reload not available here (not the main thread)")
        return lambda: None

    def remove() -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    return remove


def _open_keys(settings: Settings) -> KeyStore | None:
    path = settings.keys_db_path()
    try:
        return KeyStore(path)
    except Exception as exc:
        log.error("cannot open the API keys database %s: %s; only the admin key works", path, exc)
        return None


def _open_meter(settings: Settings, metrics: Metrics) -> UsageMeter:
    if not settings.metering:
        log.info("usage metering is off (WIKIRAG_METERING): no usage is recorded, no quota applies")
        return UsageMeter(None)
    path = settings.usage_db_path()
    try:
        return UsageMeter(
            path,
            flush_seconds=settings.usage_flush_seconds,
            store_queries=settings.usage_store_queries,
            query_retention_days=settings.usage_query_retention_days,
            on_passages=metrics.count_key_passages,
        )
    except Exception as exc:
        log.error("cannot open the usage database %s: %s; usage is NOT metered", path, exc)
        return UsageMeter(None)


async def _start_router(settings: Settings) -> Any:
    """Router mode (``settings.shard_urls``): the HTTP client to the shards, which are asked
    for their identity now (a shard that is down is asked again later)."""
    import httpx

    from app.retrieval.router import ShardRouter
    from app.serving import configured_defaults

    key = settings.shard_api_key.get_secret_value() if settings.shard_api_key else None
    fallback, explicit = configured_defaults(settings)
    router = ShardRouter(
        list(settings.shard_urls),
        httpx.AsyncClient(timeout=settings.shard_timeout_seconds),
        api_key=key,
        fallback=fallback,
        overrides=explicit,
    )
    await router.refresh()
    for state in router.states.values():
        if state.error:
            log.warning("shard %s is not answering yet: %s", state.url, state.error)
    log.info("router mode: %d shard(s): %s", len(router.urls), ", ".join(router.urls))
    return router


def _lifespan(
    embedder: EmbeddingModel | None,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings: Settings = app.state.settings
        metrics: Metrics = app.state.metrics
        if settings.open_access:
            log.warning(
                "OPEN ACCESS: requests without an API key are served, with admin rights; "
                "use this only on a trusted machine (unset WIKIRAG_OPEN_ACCESS / --open-access)"
            )
        model = embedder or serving_embedder(
            settings.model,
            settings.query_threads,
            query_encoder=settings.query_encoder,
            onnx_cache_dir=settings.onnx_cache_dir,
            index_dir=None if settings.shard_urls else settings.index_dir,
        )
        await asyncio.to_thread(model.load)
        reloader = Reloader(settings.index_dir, model, settings, on_swap=metrics.set_generation)
        services = Services(
            settings=settings,
            embedder=model,
            reloader=reloader,
            keys=_open_keys(settings),
            limiter=RateLimiter(settings.rate_limit_per_minute),
            metrics=metrics,
            jobs=JobManager(),
            meter=_open_meter(settings, metrics),
        )
        services.meter.start()
        metrics.set_generation(None)
        routing = bool(settings.shard_urls)
        if routing:  # router mode: no index of its own, the shards answer
            app.state.shard_router = await _start_router(settings)
        else:
            await asyncio.to_thread(reloader.reload)
        app.state.services = services
        poll = settings.reload_poll_seconds > 0 and not routing
        interval = settings.reload_poll_seconds if poll else 1.0
        tasks: set[asyncio.Task[None]] = set()
        maintainer = asyncio.create_task(_maintain(services, interval, poll))
        watchers = (
            [asyncio.create_task(_watch_updates(services, settings.update_poll_seconds))]
            if settings.update_poll_seconds > 0
            else []
        )
        remove_sighup = _install_sighup(services, tasks)
        log.info(
            "wikirag service started: index %s, %s",
            settings.index_dir,
            f"serving {reloader.current.name}" if reloader.current else "NOT READY",
        )
        try:
            yield
        finally:
            remove_sighup()
            maintainer.cancel()
            for watcher in watchers:
                watcher.cancel()
            for task in [maintainer, *watchers, *tasks]:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            active = services.jobs.active()
            if active is not None:
                log.warning("shutting down while job %s is %s", active.job_id, active.state)
            reloader.close()
            if routing:
                await app.state.shard_router.client.aclose()
            await asyncio.to_thread(services.meter.stop)  # the last usage flush
            log.info("wikirag service stopped")

    return lifespan


# -- the application ------------------------------------------------------------------------


def _openapi(app: FastAPI, settings: Settings) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document, with the configured query length limit filled in."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        query = schema["components"]["schemas"]["SearchBody"]["properties"]["query"]
        query["maxLength"] = settings.max_query_chars
        app.openapi_schema = schema
        return schema

    return build


def create_app(
    settings: Settings | None = None, *, embedder: EmbeddingModel | None = None
) -> FastAPI:
    """The service for ``settings`` (default: from ``WIKIRAG_*``); ``embedder`` lets tests
    share one loaded model."""
    settings = settings or Settings()
    app = FastAPI(
        title="wikirag",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=_lifespan(embedder),
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.metrics = metrics = Metrics()
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    if settings.cors_origins:  # closed by default: no CORS headers, browsers refuse
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            # a browser client on another origin may read its quota and back-off headers
            expose_headers=["X-Quota-Remaining", "X-Quota-Reset", "Retry-After"],
            max_age=600,
        )
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(CitationError, _citation_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    if settings.shard_urls:  # router mode: its routes come first and win
        modules: tuple[Any, ...] = (routed, usage, admin, health)
    else:
        modules = (search, attribute, passages, citations, index, usage, admin, health)
        if settings.shard:
            modules = (*modules, shard)
    for module in modules:
        app.include_router(module.router)
    app.openapi = _openapi(app, settings)  # type: ignore[method-assign]
    from app.api.web import mount_web

    mount_web(app)  # the web page at /
    return app


def configure_logging(level: int = logging.INFO) -> None:
    """Plain log lines on stderr, and the access log as bare JSON lines."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level > logging.DEBUG:  # which CPU build faiss loaded is noise for an operator
        logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    access = logging.getLogger("wikirag.access")
    if not access.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        access.propagate = False


def create_app_from_env() -> FastAPI:
    """uvicorn factory: the settings come from ``WIKIRAG_*`` (what ``wikirag serve`` sets)."""
    configure_logging()
    return create_app(Settings())
