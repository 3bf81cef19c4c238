"""``POST /v1/search``: hybrid, dense or lexical retrieval with attribution for each result."""

from __future__ import annotations

import time

from fastapi import APIRouter

from app.api.deps import PrincipalDep, ServicesDep, ServingDep
from app.api.queries import check_filters, check_query, search_request, search_result
from app.api.schemas import (
    QueryLanguage,
    SearchBody,
    SearchResponse,
    error_responses,
)
from app.retrieval.ranking import SearchMode

router = APIRouter(prefix="/v1", tags=["search"])


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
    query = check_query(body, services.settings)
    check_filters(body, serving.sites, serving.languages, body.query_language)
    request = search_request(body, query)
    language = serving.retriever.query_language(request)
    search_started = time.perf_counter()
    hits = serving.retriever.search(request)
    services.metrics.search_latency.labels(mode=body.mode.value).observe(
        time.perf_counter() - search_started
    )
    results = [search_result(rank, hit) for rank, hit in enumerate(hits, start=1)]
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
        query_language=QueryLanguage(
            language=language.language,
            confidence=language.confidence,
            detected=body.query_language is None,
        ),
    )
