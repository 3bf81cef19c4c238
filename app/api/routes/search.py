"""``POST /v1/search``: hybrid, dense or lexical retrieval with attribution for each result."""

from __future__ import annotations

import time
from collections.abc import Mapping

from fastapi import APIRouter

from app.api.deps import PrincipalDep, ServicesDep, ServingDep
from app.api.schemas import (
    ApiError,
    Scores,
    SearchBody,
    SearchResponse,
    SearchResult,
    error_responses,
)
from app.attribution.license import build_attribution
from app.retrieval.retriever import SearchHit, SearchMode, SearchRequest
from app.settings import Settings
from indexer.store import PassageRecord
from indexer.urls import revision_permalink

router = APIRouter(prefix="/v1", tags=["search"])


def passage_fields(record: PassageRecord) -> dict[str, object]:
    """The :class:`PassageFields` of a stored passage, attribution included."""
    return {
        "passage_id": record.passage_id,
        "text": record.text,
        "wiki": record.wiki,
        "language": record.language,
        "page_id": record.page_id,
        "title": record.title,
        "section": list(record.section_path),
        "anchor": record.anchor,
        "revision_id": record.revision_id,
        "revision_timestamp": record.revision_timestamp,
        "url": revision_permalink(record),
        "attribution": build_attribution(record),
    }


def _result(rank: int, hit: SearchHit) -> SearchResult:
    scores = Scores(
        dense=hit.scores.get("dense"),
        lexical=hit.scores.get("lexical"),
        fused=hit.scores.get("fused", 0.0),
    )
    return SearchResult.model_validate(
        {**passage_fields(hit.passage), "rank": rank, "scores": scores}
    )


def search_request(body: SearchBody, query: str) -> SearchRequest:
    """The retriever's request for a validated body (``query`` already checked)."""
    return SearchRequest(
        query,
        k=body.k,
        mode=body.mode,
        fusion=body.fusion,
        wikis=tuple(body.wikis) if body.wikis else None,
        languages=tuple(body.languages) if body.languages else None,
        max_per_article=body.max_per_article,
    )


def _check_query(body: SearchBody, settings: Settings) -> str:
    query = body.query
    if not query.strip():
        raise ApiError(422, "empty-query", "the query is empty (or only whitespace)")
    if len(query) > settings.max_query_chars:
        raise ApiError(
            422,
            "query-too-long",
            f"the query has {len(query)} characters; the most this service accepts is "
            f"{settings.max_query_chars}",
            length=len(query),
            max_query_chars=settings.max_query_chars,
        )
    return query


def _check_filters(
    body: SearchBody, sites: Mapping[str, object], languages: frozenset[str]
) -> None:
    unknown = sorted({w for w in body.wikis or () if w not in sites})
    if unknown:
        raise ApiError(
            422,
            "unknown-wiki",
            f"wiki(s) {', '.join(map(repr, unknown))} are not indexed; indexed wikis: "
            f"{', '.join(sorted(sites))}",
            unknown=unknown,
            indexed_wikis=sorted(sites),
        )
    unknown = sorted({lang for lang in body.languages or () if lang not in languages})
    if unknown:
        raise ApiError(
            422,
            "unknown-language",
            f"language(s) {', '.join(map(repr, unknown))} are not indexed; indexed languages: "
            f"{', '.join(sorted(languages))}",
            unknown=unknown,
            indexed_languages=sorted(languages),
        )


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Search passages",
    responses=error_responses(400, 401, 413, 422, 429, 503),
)
def search(
    body: SearchBody, principal: PrincipalDep, services: ServicesDep, serving: ServingDep
) -> SearchResponse:
    """The ``k`` best passages for ``query`` with their scores, revision permalinks and
    ready-to-use attribution (all from the generation named in ``generation``)."""
    started = time.perf_counter()
    query = _check_query(body, services.settings)
    _check_filters(body, serving.sites, serving.languages)
    request = search_request(body, query)
    search_started = time.perf_counter()
    hits = serving.retriever.search(request)
    services.metrics.search_latency.labels(mode=body.mode.value).observe(
        time.perf_counter() - search_started
    )
    results = [_result(rank, hit) for rank, hit in enumerate(hits, start=1)]
    services.metrics.passages.labels(route="/v1/search").inc(len(results))
    meter = services.meter
    meter.record_passages(principal.key_id, "/v1/search", [hit.passage for hit in hits])
    meter.record_query(principal.key_id, "/v1/search", query, consent=principal.store_queries)
    fusion = None
    if body.mode is SearchMode.HYBRID:
        fusion = body.fusion or serving.retriever.defaults.fusion
    return SearchResponse(
        results=results,
        generation=serving.name,
        took_ms=round((time.perf_counter() - started) * 1000, 2),
        mode=body.mode,
        fusion=fusion,
    )
