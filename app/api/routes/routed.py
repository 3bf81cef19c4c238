"""The routes of a router (``wikirag serve --router --shard-url URL …``): the public API
answered by fanning out to shard services (``wikirag serve --shard``) over HTTP.

``POST /v1/search`` embeds the query once, asks every shard for candidates and fuses them
exactly as one index would (:mod:`app.retrieval.router`); a shard that is down or too
slow is left out and the answer says so (``partial``, ``missing_shards``) instead of
failing. Passage and citation lookups go to the shards holding the wiki (all of them when
the split is by hash) and return the first that has it. ``/readyz`` reports each shard's
health and is ready while at least one shard is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from app.api.deps import PrincipalDep, ServicesDep
from app.api.queries import check_filters, check_query, search_request, search_result
from app.api.schemas import (
    ApiError,
    QueryLanguage,
    SearchBody,
    SearchResponse,
    error_responses,
)
from app.retrieval.ranking import SearchMode
from app.retrieval.router import ShardRouter

router = APIRouter(tags=["router"])

# A shard not heard from yet (down at start-up) is asked for its wikis again this often.
INFO_RETRY_SECONDS = 2.0


def get_router(request: Request) -> ShardRouter:
    shard_router = getattr(request.app.state, "shard_router", None)
    if not isinstance(shard_router, ShardRouter):
        raise ApiError(503, "starting", "the service is starting; retry in a moment")
    return shard_router


def _unavailable(missing: list[str]) -> ApiError:
    return ApiError(
        503,
        "shards-unavailable",
        f"no shard answered ({len(missing)} down or too slow)",
        missing_shards=missing,
    )


@router.post(
    "/v1/search",
    response_model=SearchResponse,
    summary="Search passages (over every shard)",
    responses=error_responses(401, 413, 422, 429, 503),
)
async def search(
    body: SearchBody, request: Request, principal: PrincipalDep, services: ServicesDep
) -> SearchResponse:
    """As on a single index; ``partial`` and ``missing_shards`` say when shards were left
    out."""
    started = time.perf_counter()
    shards = get_router(request)
    query = check_query(body, services.settings)
    await shards.refresh(missing_only=True, every=INFO_RETRY_SECONDS)
    sites = shards.sites()
    languages = {s["language"] for s in sites.values()}
    if any(w not in sites for w in body.wikis or ()) or any(
        lang not in languages for lang in body.languages or ()
    ):  # perhaps on a shard not heard from yet: ask it now
        await shards.refresh(missing_only=True)
        sites = shards.sites()
    check_filters(
        body, sites, frozenset(s["language"] for s in sites.values()), body.query_language
    )
    retrieval_request = search_request(body, query)
    language = shards.query_language(retrieval_request)
    if language.language is not None:
        retrieval_request = dataclasses.replace(retrieval_request, query_language=language.language)
    vector = None
    if body.mode is not SearchMode.LEXICAL:
        encoded = await asyncio.to_thread(services.embedder.encode_query, query)
        vector = [float(x) for x in encoded]
    merged = await shards.search(retrieval_request, vector, services.embedder.info.model_id)
    if not merged.generations:
        raise _unavailable(merged.missing)
    results = [search_result(rank, hit) for rank, hit in enumerate(merged.hits, start=1)]
    services.metrics.passages.labels(route="/v1/search").inc(len(results))
    for url, count in merged.followups.items():
        services.metrics.shard_followups.labels(shard=url).inc(count)
    services.meter.record_passages(principal.key_id, "/v1/search", [h.passage for h in merged.hits])
    fusion = None
    if body.mode is SearchMode.HYBRID:
        fusion = body.fusion or shards.defaults().fusion
    return SearchResponse(
        results=results,
        generation="+".join(merged.generations),
        took_ms=round((time.perf_counter() - started) * 1000, 2),
        mode=body.mode,
        fusion=fusion,
        partial=bool(merged.missing),
        missing_shards=merged.missing,
        query_language=QueryLanguage(
            language=language.language,
            confidence=language.confidence,
            detected=body.query_language is None,
        ),
    )


async def _forward(
    request: Request, path: str, params: dict[str, Any] | None = None, wiki: str | None = None
) -> JSONResponse:
    shards = get_router(request)
    response, missing = await shards.first_found(path, params, wiki)
    if response is None or (response.status_code == 404 and missing):
        raise (
            _unavailable(missing)
            if response is None
            else ApiError(
                503,
                "shards-unavailable",
                f"not found on the shards that answered; {len(missing)} shard(s) did not answer",
                missing_shards=missing,
            )
        )
    return JSONResponse(response.json(), status_code=response.status_code)


@router.get(
    "/v1/passages/{passage_id}",
    summary="Get a passage (from the shard holding it)",
    responses=error_responses(400, 401, 404, 410, 422, 429, 503),
)
async def get_passage(
    passage_id: Annotated[str, Path(max_length=300, examples=["enwiki:1270870723:12"])],
    request: Request,
    principal: PrincipalDep,
) -> JSONResponse:
    """As on a single index (the shards' answer, unchanged)."""
    wiki = passage_id.split(":", 1)[0] if ":" in passage_id else None
    return await _forward(request, f"/v1/passages/{passage_id}", wiki=wiki)


@router.get(
    "/v1/citations/{wiki}/revisions/{revision_id}",
    summary="Cite a revision (from the shard holding it)",
    responses=error_responses(400, 401, 404, 410, 422, 429, 503),
)
async def cite_revision(
    wiki: Annotated[str, Path(max_length=64)],
    revision_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    request: Request,
    principal: PrincipalDep,
) -> JSONResponse:
    return await _forward(request, f"/v1/citations/{wiki}/revisions/{revision_id}", wiki=wiki)


@router.get(
    "/v1/citations",
    summary="Cite a Wikipedia URL (from the shard holding it)",
    responses=error_responses(400, 401, 404, 410, 422, 429, 503),
)
async def cite_url(
    url: Annotated[str, Query(min_length=1, max_length=4096)],
    request: Request,
    principal: PrincipalDep,
) -> JSONResponse:
    return await _forward(request, "/v1/citations", params={"url": url})


@router.get("/v1/index", summary="The shards behind this router", responses=error_responses(401))
async def describe(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """Each shard's URL, identity, generation and wikis, as last seen (refreshed now)."""
    shards = get_router(request)
    await shards.refresh()
    return {
        "router": True,
        "shards": [
            {"url": s.url, "error": s.error, "info": s.info} for s in shards.states.values()
        ],
        "retrieval": shards.defaults().to_json(),
    }


@router.get("/readyz", summary="Readiness of the router and its shards")
async def readyz(request: Request) -> JSONResponse:
    """200 while at least one shard is ready (``degraded`` when some are not), 503 when none
    is; each shard's state is listed."""
    shards = get_router(request)
    outcomes = await asyncio.gather(*(shards.request(url, "GET", "/readyz") for url in shards.urls))
    listed = []
    for url, (response, error) in zip(shards.urls, outcomes, strict=True):
        ready = response is not None and response.status_code == 200
        listed.append(
            {
                "url": url,
                "ready": ready,
                "generation": response.json().get("generation") if ready and response else None,
                "error": None
                if ready
                else (error or f"HTTP {response.status_code if response else '?'}"),
            }
        )
    up = sum(1 for s in listed if s["ready"])
    if up == 0:
        body = {
            "error": {
                "code": "not-ready",
                "message": "no shard is ready",
                "details": {"shards": listed},
            }
        }
        return JSONResponse(body, status_code=503)
    status = "ready" if up == len(listed) else "degraded"
    return JSONResponse({"status": status, "shards": listed})
