"""Citation lookups: a revision by id, or whatever a Wikipedia URL points at.

Failures are :class:`app.attribution.citations.CitationError` s, answered with their own
status and code (404 unknown wiki, title or revision; 400 or 422 for malformed or
non-article URLs).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.accounts.metering import Served
from app.api.deps import PrincipalDep, ServicesDep, ServingDep
from app.api.schemas import MAX_ID, error_responses
from app.attribution.citations import CitationRecord

router = APIRouter(prefix="/v1", tags=["citations"])

_ERRORS = error_responses(400, 401, 404, 410, 422, 429, 503)


def served(record: CitationRecord) -> Served:
    """What a citation lookup serves, for the usage meter: one citation and its passages."""
    chars = sum(len(p.text) for p in record.passages)
    return Served(record.wiki, record.page_id, len(record.passages), chars, citations=1)


@router.get(
    "/citations/{wiki}/revisions/{revision_id}",
    response_model=CitationRecord,
    summary="Cite a revision",
    responses=_ERRORS,
)
def cite_revision(
    wiki: Annotated[str, Path(max_length=64, examples=["enwiki"])],
    revision_id: Annotated[int, Path(ge=1, le=MAX_ID, examples=[1270870723])],
    principal: PrincipalDep,
    services: ServicesDep,
    serving: ServingDep,
) -> CitationRecord:
    """The stored revision with its license, attribution, passages, and whether it is still
    the page's current revision."""
    record = serving.citations.by_revision(wiki, revision_id)
    route = "/v1/citations/{wiki}/revisions/{revision_id}"
    services.meter.record(principal.key_id, route, [served(record)])
    return record


@router.get(
    "/citations",
    response_model=CitationRecord,
    summary="Cite a Wikipedia URL",
    responses=_ERRORS,
)
def cite_url(
    url: Annotated[
        str,
        Query(
            min_length=1,
            max_length=4096,
            description="An article URL: /wiki/Title[#section], …index.php?oldid=N, "
            "Special:PermanentLink/N, ?curid=N, mobile hosts…",
            examples=["https://simple.wikipedia.org/wiki/Albert_Einstein"],
        ),
    ],
    principal: PrincipalDep,
    services: ServicesDep,
    serving: ServingDep,
) -> CitationRecord:
    """The revision a URL names (its ``oldid``), else the page's current revision, following
    stored redirects."""
    record = serving.citations.by_url(url)
    services.meter.record(principal.key_id, "/v1/citations", [served(record)])
    return record
