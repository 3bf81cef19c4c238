"""The rules of a search request shared by the single-index route (``routes/search``), the
routed one (``routes/routed``) and answer attribution (``routes/attribute``): the query and
filter checks, the retriever's request for a body, and a hit's answer. Routes import these
(like ``deps`` and ``schemas``), never each other."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from app.api.schemas import ApiError, Scores, SearchBody, SearchResult
from app.attribution.present import present
from app.retrieval.ranking import SearchHit, SearchRequest
from app.settings import Settings


def search_result(rank: int, hit: SearchHit) -> SearchResult:
    """One ranked hit as the API answers it: the passage's public view, its rank and scores."""
    scores = Scores(
        dense=hit.scores.get("dense"),
        lexical=hit.scores.get("lexical"),
        fused=hit.scores.get("fused", 0.0),
    )
    return SearchResult.model_validate(
        {**present(hit.passage).api_fields(), "rank": rank, "scores": scores}
    )


def search_request(body: SearchBody, query: str) -> SearchRequest:
    """The retriever's request for a validated body (``query`` already checked)."""
    per_article = body.max_per_article
    if body.group_by == "article":
        per_article = min(per_article or body.per_group, body.per_group)
    return SearchRequest(
        query,
        k=body.k,
        mode=body.mode,
        fusion=body.fusion,
        wikis=tuple(body.wikis) if body.wikis else None,
        languages=tuple(body.languages) if body.languages else None,
        max_per_article=per_article,
        max_per_entity=body.per_group if body.group_by == "entity" else None,
        query_language=body.query_language,
        cross_lingual=body.cross_lingual,
        max_revert_risk=body.max_revert_risk,
    )


def check_query(body: SearchBody, settings: Settings) -> str:
    """The query of a search body, refused (422) when empty or longer than the service allows."""
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


class FilteredBody(Protocol):
    """A request body with the wiki and language filters (a search, an attribution)."""

    @property
    def wikis(self) -> Sequence[str] | None: ...

    @property
    def languages(self) -> Sequence[str] | None: ...


def check_filters(
    body: FilteredBody,
    sites: Mapping[str, object],
    languages: frozenset[str],
    query_language: str | None = None,
) -> None:
    """A 422 naming what a filter (or the query language given) asks for that the index
    does not hold."""
    _known("wiki", body.wikis, sorted(sites))
    _known("language", body.languages, sorted(languages))
    if query_language is not None:
        _known("language", [query_language], sorted(languages))


def _known(kind: str, asked: Sequence[str] | None, indexed: list[str]) -> None:
    unknown = sorted({item for item in asked or () if item not in indexed})
    if unknown:
        details: dict[str, Any] = {"unknown": unknown, f"indexed_{kind}s": indexed}
        raise ApiError(
            422,
            f"unknown-{kind}",
            f"{kind}(s) {', '.join(map(repr, unknown))} are not indexed; indexed {kind}s: "
            f"{', '.join(indexed)}",
            **details,
        )
