"""Unauthenticated probes: ``/healthz`` (the process answers), ``/readyz`` (a generation is
loaded and answers a real query) and ``/metrics`` (Prometheus text)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response

from app.api.deps import ServicesDep
from app.api.metrics import CONTENT_TYPE, Metrics
from app.api.schemas import (
    ApiError,
    FallbackInfo,
    HealthResponse,
    ReadyResponse,
    error_responses,
)

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness")
async def healthz() -> HealthResponse:
    """200 while the process is up (whether or not an index is loaded)."""
    return HealthResponse()


@router.get(
    "/readyz",
    response_model=ReadyResponse,
    summary="Readiness",
    responses=error_responses(503),
)
def readyz(services: ServicesDep) -> ReadyResponse:
    """200 when a generation is loaded and answers a probe query; 503 with the reason (no
    published index, a model mismatch, a missing or corrupt file — named in
    ``details.file`` —, a failed probe…) otherwise. While an older generation stands in for
    one that cannot be served, ``fallback`` says which and why."""
    reloader = services.reloader
    serving = reloader.current
    if serving is None:
        reason = reloader.not_ready_reason or "no index generation is loaded"
        raise ApiError(503, "not-ready", reason, file=reloader.last_error_file)
    started = time.perf_counter()
    try:
        serving.probe()
    except Exception as exc:
        raise ApiError(
            503, "not-ready", f"generation {serving.name} failed the probe query: {exc}"
        ) from exc
    fallback = reloader.fallback
    return ReadyResponse(
        generation=serving.name,
        probe_ms=round((time.perf_counter() - started) * 1000, 2),
        fallback=FallbackInfo.model_validate(fallback.as_dict()) if fallback is not None else None,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    """Request counts and latencies, search latency by mode, errors, passages served and the
    served generation, in the Prometheus text format."""
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE)
