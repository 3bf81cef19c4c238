"""``GET /v1/passages/{passage_id}``: one stored passage (of any stored revision)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from app.api.deps import PrincipalDep, ServicesDep, ServingDep
from app.api.schemas import ApiError, PassageResponse, error_responses
from app.attribution.present import present
from indexer.models import parse_passage_id
from indexer.urls import revision_url

router = APIRouter(prefix="/v1", tags=["passages"])


@router.get(
    "/passages/{passage_id}",
    response_model=PassageResponse,
    summary="Get a passage",
    responses=error_responses(400, 401, 404, 410, 422, 429, 503),
)
def get_passage(
    passage_id: Annotated[
        str,
        Path(
            max_length=300,
            description="WIKI:REVISION_ID:ORDINAL, e.g. enwiki:1270870723:12",
            examples=["enwiki:1270870723:12"],
        ),
    ],
    principal: PrincipalDep,
    services: ServicesDep,
    serving: ServingDep,
) -> PassageResponse:
    """The passage with its attribution, whether its revision is the page's current one,
    and the current revision's id (old revisions' passages stay citable)."""
    try:
        wiki, _, _ = parse_passage_id(passage_id)
    except ValueError as exc:
        raise ApiError(
            400, "malformed-passage-id", str(exc), expected="WIKI:REVISION_ID:ORDINAL"
        ) from None
    if wiki not in serving.sites:
        raise ApiError(
            404,
            "unknown-wiki",
            f"wiki {wiki!r} is not indexed; indexed wikis: {', '.join(sorted(serving.sites))}",
            wiki=wiki,
            indexed_wikis=sorted(serving.sites),
        )
    record = serving.index.store.passage(passage_id)
    if record is None:
        raise ApiError(
            404,
            "passage-not-found",
            f"no passage {passage_id!r} in generation {serving.name}",
            passage_id=passage_id,
        )
    if record.suppressed is not None:
        # Suppressed content is never served, not even to cite it.
        raise ApiError(
            410,
            f"revision-{record.suppressed}",
            f"passage {passage_id!r} is no longer available: "
            + (
                "its page was deleted"
                if record.suppressed == "deleted"
                else "its revision's text was hidden"
            ),
            passage_id=passage_id,
            reason=record.suppressed,
        )
    services.metrics.passages.labels(route="/v1/passages/{passage_id}").inc()
    services.meter.record_passages(principal.key_id, "/v1/passages/{passage_id}", [record])
    current = record.current_revision_id
    superseded = None
    if current is not None and current != record.revision_id:
        superseded = {
            "revision_id": current,
            "url": revision_url(record.base_url, record.title, current),
        }
    return PassageResponse.model_validate(
        {
            **present(record).api_fields(),
            "is_current": record.revision_id == current,
            "current_revision_id": current,
            "superseded_by": superseded,
            "generation": serving.name,
        }
    )
