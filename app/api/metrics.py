"""Prometheus metrics and structured request logs.

Each application has its own registry (no process-global state). Exposed at ``/metrics``:

- ``wikirag_http_requests_total{route,method,status}``: requests answered, by route template;
- ``wikirag_http_request_duration_seconds{route,method}``: latency histogram per route;
- ``wikirag_search_duration_seconds{mode}``: retrieval latency per search mode;
- ``wikirag_http_errors_total{route,code}``: error responses by their ``error.code``;
- ``wikirag_passages_served_total{route}``: passages returned (search results and lookups);
- ``wikirag_index_info{generation,model_id}`` (always 1), ``wikirag_index_passages``,
  ``wikirag_index_loaded_timestamp_seconds``, ``wikirag_index_ready``: the served generation;
- ``wikirag_index_reloads_total{outcome}`` and ``wikirag_rate_limited_total``;
- ``wikirag_shard_followups_total{shard}`` (router mode): follow-up candidate requests sent to
  a shard URL, when the global-BM25 bound says its unreturned passages could still rank;
- ``wikirag_key_requests_total{key_id}``, ``wikirag_key_passages_served_total{key_id}`` and
  ``wikirag_quota_exceeded_total{key_id,quota}``: use per API key id (never per article, to
  keep the label cardinality bounded by the number of keys).

With several workers each process counts its own requests (no multiprocess aggregation).

:class:`ObservabilityMiddleware` records the request metrics and writes one JSON line per
request to the ``wikirag.access`` logger: time, method, route template, path, status,
milliseconds, API key id (never the key), generation and error code.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from app.serving import ServingIndex

access_log = logging.getLogger("wikirag.access")

CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED_ROUTE = "<unmatched>"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The service's metrics, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "wikirag_http_requests", "HTTP requests answered", ["route", "method", "status"],
            registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "wikirag_http_request_duration_seconds",
            "HTTP request latency",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.search_latency = Histogram(
            "wikirag_search_duration_seconds",
            "Retrieval latency by search mode",
            ["mode"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "wikirag_http_errors", "Error responses by error code", ["route", "code"], registry=r
        )
        self.passages = Counter(
            "wikirag_passages_served", "Passages returned to clients", ["route"], registry=r
        )
        self.index_info = Gauge(
            "wikirag_index_info",
            "The served index generation (value 1)",
            ["generation", "model_id"],
            registry=r,
        )
        self.index_passages = Gauge(
            "wikirag_index_passages", "Passages indexed in the served generation", registry=r
        )
        self.index_loaded = Gauge(
            "wikirag_index_loaded_timestamp_seconds",
            "When the served generation was loaded (Unix time)",
            registry=r,
        )
        self.index_ready = Gauge(
            "wikirag_index_ready", "1 when a generation is served, else 0", registry=r
        )
        self.reloads = Counter(
            "wikirag_index_reloads", "Generation reloads by outcome", ["outcome"], registry=r
        )
        self.rate_limited = Counter(
            "wikirag_rate_limited", "Requests refused by a rate limit", registry=r
        )
        self.key_requests = Counter(
            "wikirag_key_requests", "Requests admitted per API key id", ["key_id"], registry=r
        )
        self.key_passages = Counter(
            "wikirag_key_passages_served", "Passages served per API key id", ["key_id"],
            registry=r,
        )  # fmt: skip
        self.shard_followups = Counter(
            "wikirag_shard_followups",
            "Follow-up candidate requests a router sent to a shard (global BM25 bound)",
            ["shard"],
            registry=r,
        )
        self.quota_exceeded = Counter(
            "wikirag_quota_exceeded", "Requests refused by a monthly quota", ["key_id", "quota"],
            registry=r,
        )  # fmt: skip

    def count_key_passages(self, key_id: str, passages: int) -> None:
        """Add passages served to ``key_id`` (the usage meter calls it)."""
        self.key_passages.labels(key_id=key_id).inc(passages)

    def set_generation(self, serving: ServingIndex | None) -> None:
        """Point the index gauges at the served generation."""
        self.index_info.clear()
        if serving is None:
            self.index_ready.set(0)
            return
        manifest = serving.index.manifest
        model_id = manifest.model.model_id
        self.index_info.labels(generation=serving.name, model_id=model_id).set(1)
        self.index_passages.set(float(manifest.counts.indexed_passages))
        self.index_loaded.set(serving.loaded_at)
        self.index_ready.set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class RequestInfo:
    """Filled in while a request is handled; read by the middleware when it ends."""

    key_id: str | None = None
    generation: str | None = None
    error_code: str | None = None
    # Extra response headers, computed when the response starts (the quota headers).
    headers: Callable[[], dict[str, str]] | None = None


def request_info(scope: Scope) -> RequestInfo:
    """The request's :class:`RequestInfo` (created on first use)."""
    state = scope.setdefault("state", {})
    info = state.get("wikirag")
    if not isinstance(info, RequestInfo):
        info = state["wikirag"] = RequestInfo()
    return info


def route_template(scope: Scope) -> str:
    """The matched route's path template (bounded label values), found again when the request
    was answered before routing (e.g. 413)."""
    route = scope.get("route")
    if route is None:
        router = getattr(scope.get("app"), "router", None)
        for candidate in getattr(router, "routes", ()):
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                route = candidate
                break
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class ObservabilityMiddleware:
    """Request metrics and one JSON access-log line per HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = request_info(scope)
        started = time.perf_counter()
        status = 0  # no response sent: the client went away (logged as 499)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if info.headers is not None:
                    extra = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                             for k, v in info.headers().items()]  # fmt: skip
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            status = 500
            info.error_code = info.error_code or "internal-error"
            raise
        finally:
            self._record(scope, info, status, time.perf_counter() - started)

    def _record(self, scope: Scope, info: RequestInfo, status: int, seconds: float) -> None:
        if status == 0:
            status, info.error_code = 499, info.error_code or "client-disconnected"
        route = route_template(scope)
        method = str(scope.get("method", ""))
        self.metrics.requests.labels(route=route, method=method, status=str(status)).inc()
        self.metrics.latency.labels(route=route, method=method).observe(seconds)
        if status >= 400:
            code = info.error_code or f"http-{status}"
            self.metrics.errors.labels(route=route, code=code).inc()
        access_log.info(
            json.dumps(
                {
                    "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
                    "method": method,
                    "route": route,
                    "path": scope.get("path", ""),
                    "status": status,
                    "ms": round(seconds * 1000, 2),
                    "key_id": info.key_id,
                    "generation": info.generation,
                    "error": info.error_code,
                },
                ensure_ascii=False,
            )
        )
