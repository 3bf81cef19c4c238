"""Internal routes of a shard (``wikirag serve --shard``), called by a router
(``wikirag serve --router``, :mod:`app.api.routes.routed`) with its configured API key.

``POST /v1/shard/candidates`` returns each component's raw candidates with what the router
needs to fuse them exactly as one unsharded index would (see :mod:`app.retrieval.router`);
``GET /v1/shard/info`` says which shard this is, its wikis and fusion defaults.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import PrincipalDep, ServicesDep, ServingDep
from app.api.schemas import MAX_FILTER_VALUES, ApiError, FilterValue, error_responses
from app.retrieval.ranking import SearchMode
from app.retrieval.router import shard_candidates, shard_info

router = APIRouter(prefix="/v1/shard", tags=["shard"])

MAX_CANDIDATES = 100_000


class CandidatesBody(BaseModel):
    """What a router asks a shard for."""

    model_config = ConfigDict(extra="forbid")

    query: str
    mode: SearchMode = SearchMode.HYBRID
    dense: int = Field(default=100, ge=0, le=MAX_CANDIDATES, description="dense candidates")
    lexical: int = Field(default=100, ge=0, le=MAX_CANDIDATES, description="lexical candidates")
    vector: list[float] | None = Field(
        default=None, description="the query's embedding (the shard embeds the query if null)"
    )
    model: str | None = Field(
        default=None, description="the model that embedded ``vector`` (checked against the index)"
    )
    wikis: list[FilterValue] | None = Field(default=None, max_length=MAX_FILTER_VALUES)
    languages: list[FilterValue] | None = Field(default=None, max_length=MAX_FILTER_VALUES)
    query_language: FilterValue | None = Field(
        default=None, description="the query's language, as the router resolved it"
    )
    cross_lingual: bool = True


@router.post(
    "/candidates",
    summary="Raw candidates of this shard (for a router)",
    responses=error_responses(401, 422, 429, 503),
)
def candidates(
    body: CandidatesBody, principal: PrincipalDep, services: ServicesDep, serving: ServingDep
) -> dict[str, Any]:
    """Dense candidates (row id, cosine), lexical candidates (row id, this shard's BM25), the
    BM25 statistics and term frequencies for global scoring, and the servable passages
    (null for one that is not current or is suppressed)."""
    if not body.query.strip() or len(body.query) > services.settings.max_query_chars:
        raise ApiError(422, "invalid-query", "the query is empty or too long")
    built = serving.index.manifest.model
    if body.vector is not None:
        if body.model is not None and body.model != built.model_id:
            raise ApiError(
                422,
                "model-mismatch",
                f"the query was embedded with {body.model!r}; this shard's index was built "
                f"with {built.model_id!r}",
            )
        if len(body.vector) != built.dimension:
            raise ApiError(
                422,
                "invalid-vector",
                f"the vector has {len(body.vector)} dimensions; the index has {built.dimension}",
            )
    return shard_candidates(
        serving,
        body.query,
        mode=body.mode,
        dense=body.dense,
        lexical=body.lexical,
        vector=body.vector,
        wikis=tuple(body.wikis) if body.wikis else None,
        languages=tuple(body.languages) if body.languages else None,
        query_language=body.query_language,
        cross_lingual=body.cross_lingual,
    )


@router.get("/info", summary="Which shard this is", responses=error_responses(401, 429, 503))
def info(principal: PrincipalDep, serving: ServingDep) -> dict[str, Any]:
    """The shard's identity (``shard`` of its manifest), generation, model, wikis and fusion
    defaults."""
    return shard_info(serving)
