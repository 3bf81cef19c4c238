"""``GET /v1/index``: the served generation's manifest and counts."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import PrincipalDep, ServicesDep, ServingDep
from app.api.schemas import FallbackInfo, IndexResponse, WikiInfo, error_responses
from indexer.manifest import record_json

router = APIRouter(prefix="/v1", tags=["index"])


@router.get(
    "/index",
    response_model=IndexResponse,
    summary="Describe the served index",
    responses=error_responses(401, 429, 503),
)
def describe_index(
    principal: PrincipalDep, serving: ServingDep, services: ServicesDep
) -> IndexResponse:
    """Generation id, model, counts (wikis, pages, revisions, passages, indexed passages),
    the indexed wikis and languages, and the full manifest; ``fallback`` is set while an
    older generation stands in for one that cannot be served."""
    manifest = serving.index.manifest
    fallback = services.reloader.fallback
    return IndexResponse(
        generation=serving.name,
        built_at=manifest.built_at,
        loaded_at=serving.loaded_at,
        model=record_json(manifest.model),
        counts=record_json(manifest.counts),
        wikis=[
            WikiInfo(wiki=s.wiki, language=s.language, base_url=s.base_url, sitename=s.sitename)
            for s in sorted(serving.sites.values(), key=lambda s: s.wiki)
        ],
        languages=sorted(serving.languages),
        retrieval=serving.retriever.defaults.to_json(),
        manifest=manifest.to_json(),
        fallback=FallbackInfo.model_validate(fallback.as_dict()) if fallback is not None else None,
    )
