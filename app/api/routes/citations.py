"""Citation lookups: a revision by id, or whatever a Wikipedia URL points at.

Failures are :class:`app.citations.CitationError` s, answered with their own status and code
(404 unknown wiki, title or revision; 400 or 422 for malformed or non-article URLs).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.api.deps import PrincipalDep, ServingDep
from app.api.schemas import MAX_ID, error_responses
from app.citations import CitationRecord

router = APIRouter(prefix="/v1", tags=["citations"])

_ERRORS = error_responses(400, 401, 404, 410, 422, 429, 503)


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
    serving: ServingDep,
) -> CitationRecord:
    """The stored revision with its license, attribution, passages, and whether it is still
    the page's current revision."""
    return serving.citations.by_revision(wiki, revision_id)


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
    serving: ServingDep,
) -> CitationRecord:
    """The revision a URL names (its ``oldid``), else the page's current revision, following
    stored redirects."""
    return serving.citations.by_url(url)
