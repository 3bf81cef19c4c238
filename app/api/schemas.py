"""The public request and response models of the HTTP API (what ``/openapi.json`` shows), and
:class:`ApiError`, the exception every route raises to answer with the common error shape::

    {"error": {"code": "unknown-wiki", "message": "…", "details": {…}}}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.attribution.citations import SupersededBy
from app.attribution.license import Attribution
from app.attribution.trust import Trust
from app.retrieval.fusion import FusionMethod
from app.retrieval.ranking import SearchMode
from app.serving import JobState

MAX_K = 100
MAX_FILTER_VALUES = 50
MAX_ID = 2**63 - 1  # SQLite's largest integer

# -- errors -------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """What went wrong: a stable ``code``, a message for people, and the facts it names."""

    code: str = Field(examples=["unknown-wiki"])
    message: str = Field(examples=["wiki 'xxwiki' is not indexed; indexed wikis: enwiki"])
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer has this body."""

    error: ErrorBody


class ApiError(Exception):
    """Raised by routes and dependencies; rendered as :class:`ErrorResponse`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.details = details

    def body(self) -> dict[str, Any]:
        return ErrorResponse(
            error=ErrorBody(code=self.code, message=self.message, details=self.details)
        ).model_dump(mode="json")


_DESCRIPTIONS = {
    400: "Malformed input (e.g. a passage id or URL that cannot be parsed)",
    401: "Missing, invalid or revoked API key",
    403: "The API key lacks admin rights",
    404: "Unknown wiki, title, revision, passage or job",
    409: "A rebuild is already running",
    413: "Request body too large",
    422: "Invalid request (the message names the field and the rule)",
    410: "The page was deleted or the revision's text hidden: its content is not served",
    429: "Rate limit or monthly quota exceeded; see Retry-After",
    503: "No index generation is loaded yet",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error statuses a route can answer."""
    return {code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in codes}


# -- search -------------------------------------------------------------------------------

FilterValue = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _encodable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from exc
    return value


class SearchBody(BaseModel):
    """A search: the question and how to retrieve passages for it.

    ``query``'s maximum length is the service's ``max_query_chars`` (shown in the schema).
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"query": "When did Einstein receive the Nobel Prize?", "k": 5, "mode": "hybrid"}
            ]
        },
    )

    query: str = Field(
        description="The question or keywords (not empty; at most max_query_chars characters)",
        json_schema_extra={"minLength": 1},
    )
    k: int = Field(default=10, ge=1, le=MAX_K, description="Number of passages to return")
    mode: SearchMode = Field(
        default=SearchMode.HYBRID,
        description="hybrid (dense + lexical, fused), dense (embeddings) or lexical (BM25)",
    )
    wikis: list[FilterValue] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_FILTER_VALUES,
        description="Only these wikis (database names such as enwiki; see GET /v1/index)",
    )
    languages: list[FilterValue] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_FILTER_VALUES,
        description="Only wikis in these content languages (en, simple, fr…)",
    )
    max_per_article: int | None = Field(
        default=None, ge=1, le=MAX_K, description="At most this many passages per article"
    )
    max_revert_risk: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Leave out passages whose revision a model scored more likely than this to "
        "be reverted (trust.revert_risk.probability); revisions without a score are kept",
    )
    group_by: Literal["article", "entity"] | None = Field(
        default=None,
        description="At most per_group passages per article (one page of one wiki) or per "
        "entity (one Wikidata item: the same article in every language; a page without a "
        "Wikidata item is its own entity)",
    )
    per_group: int = Field(
        default=1, ge=1, le=MAX_K, description="Passages per group when group_by is set"
    )
    fusion: FusionMethod | None = Field(
        default=None,
        description="Hybrid fusion: rrf or linear (default: the one the index records)",
    )
    query_language: FilterValue | None = Field(
        default=None,
        description="The question's language, when the caller knows it (default: detected "
        "among the index's languages; see query_language in the response)",
    )
    cross_lingual: bool = Field(
        default=True,
        description="Answer from passages in any language (true) or only in the query's "
        "(false). In a hybrid search BM25 scores only passages in the query's language (mode "
        "lexical: what the languages filter says); the dense half, multilingual with "
        "multilingual-e5-small, crosses languages",
    )

    @field_validator("query")
    @classmethod
    def _query_text(cls, value: str) -> str:
        return _encodable(value)

    @field_validator("wikis", "languages")
    @classmethod
    def _filter_text(cls, values: list[str] | None) -> list[str] | None:
        for value in values or ():
            _encodable(value)
        return values


class Scores(BaseModel):
    """Per-component scores; a component that did not retrieve the passage is null."""

    dense: float | None = Field(default=None, description="Cosine similarity of the embeddings")
    lexical: float | None = Field(default=None, description="BM25 score")
    fused: float = Field(description="The fused score the results are ordered by")


class PassageFields(BaseModel):
    """A stored passage and where it comes from."""

    passage_id: str = Field(examples=["enwiki:1270870723:12"])
    text: str
    wiki: str
    language: str
    page_id: int
    wikidata_id: str | None = Field(
        default=None,
        description="The page's Wikidata item (one article across languages), or null",
        examples=["Q937"],
    )
    title: str
    section: list[str] = Field(description="Section headings from the top (empty: the lead)")
    anchor: str = Field(description="The section's anchor in the article ('' for the lead)")
    revision_id: int
    revision_timestamp: str = Field(description="ISO 8601, UTC")
    url: str = Field(description="Permanent link to the revision, with the section anchor")
    attribution: Attribution
    trust: Trust = Field(description="The revision's credibility signals")


class SearchResult(PassageFields):
    rank: int = Field(ge=1)
    scores: Scores


class QueryLanguage(BaseModel):
    language: str | None = Field(description="A language code of the index, or null")
    confidence: float = Field(description="1.0 when given; else the detector's probability")
    detected: bool = Field(description="Whether the language was detected (not given)")


class SearchResponse(BaseModel):
    results: list[SearchResult]
    generation: str = Field(description="The index generation that answered")
    took_ms: float
    mode: SearchMode
    fusion: FusionMethod | None = Field(description="Fusion used (null unless hybrid)")
    query_language: QueryLanguage | None = Field(
        default=None,
        description="The language the query was searched as: given, or detected (language "
        "null when unsure; then nothing is restricted by language)",
    )
    partial: bool = Field(
        default=False,
        description="True when some shards of a sharded service did not answer: the results "
        "come from the others (always false on a single index)",
    )
    missing_shards: list[str] = Field(
        default_factory=list, description="The shards left out of a partial answer"
    )


# -- passages -----------------------------------------------------------------------------


class PassageResponse(PassageFields):
    is_current: bool = Field(description="Whether the passage belongs to the current revision")
    current_revision_id: int | None = Field(description="The page's current revision")
    superseded_by: SupersededBy | None = Field(
        default=None, description="The current revision, when this passage's is older"
    )
    generation: str


# -- index and health -----------------------------------------------------------------------


class WikiInfo(BaseModel):
    wiki: str
    language: str
    base_url: str
    sitename: str


class FallbackInfo(BaseModel):
    """Why an older generation is served instead of the one ``current`` names."""

    wanted: str = Field(description="The generation `current` names, which cannot be served")
    serving: str = Field(description="The older generation served instead")
    reason: str = Field(description="Why the wanted generation cannot be served")
    file: str | None = Field(default=None, description="The file at fault, when one is")


class IndexResponse(BaseModel):
    generation: str
    built_at: str | None
    loaded_at: float = Field(description="When this service loaded the generation (Unix time)")
    model: dict[str, Any]
    counts: dict[str, int]
    wikis: list[WikiInfo]
    languages: list[str]
    retrieval: dict[str, Any] = Field(description="Fusion defaults used by this service")
    manifest: dict[str, Any] = Field(description="The generation's manifest.json")
    fallback: FallbackInfo | None = Field(
        default=None, description="Set while an older generation stands in for a broken one"
    )


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    status: Literal["ready"] = "ready"
    generation: str
    probe_ms: float = Field(description="Time of the probe query")
    fallback: FallbackInfo | None = Field(
        default=None, description="Set while an older generation stands in for a broken one"
    )


# -- admin --------------------------------------------------------------------------------


class ReloadResponse(BaseModel):
    reloaded: bool = Field(description="Whether another generation is now served")
    generation: str | None
    previous_generation: str | None
    took_ms: float
    error: str | None = Field(default=None, description="Why the new generation is not served")


class RebuildBody(BaseModel):
    """Rebuild from the sources recorded in the published manifest, or from these files
    (paths on the server)."""

    model_config = ConfigDict(extra="forbid")

    sources: list[Annotated[str, StringConstraints(min_length=1, max_length=4096)]] | None = Field(
        default=None, min_length=1, max_length=100
    )


class JobResponse(BaseModel):
    job_id: str
    kind: str
    state: JobState
    stage: str = Field(description="What the job is doing (starting, building, loading, done)")
    created_at: float
    started_at: float | None
    finished_at: float | None
    params: dict[str, Any]
    result: dict[str, Any] | None = Field(description="The build report, once succeeded")
    error: str | None = Field(description="Why the job failed")


class JobList(BaseModel):
    jobs: list[JobResponse]


# -- usage (``GET /v1/usage``) ---------------------------------------------------------------


class UsageCounts(BaseModel):
    """Content served: passages and their characters, citations resolved, attributions."""

    passages: int = Field(description="Passages served (search results, lookups, citations)")
    chars: int = Field(description="Characters of passage text (and attribution quotes) served")
    citations: int = Field(description="Revisions cited (/v1/citations)")
    attributions: int = Field(description="Citations returned by /v1/attribute")


class UsageRowOut(UsageCounts):
    """One group of a usage report: a day, a wiki or an article (wiki + page id)."""

    day: str | None = Field(default=None, description="UTC day (group_by=day)")
    wiki: str | None = Field(default=None, description="Wiki id (group_by=wiki or article)")
    page_id: int | None = Field(default=None, description="Page id (group_by=article)")
    title: str | None = Field(
        default=None, description="The page's title in the served generation, when it has it"
    )
    requests: int | None = Field(
        default=None, description="Requests admitted (per day only: requests have no wiki)"
    )


class UsageTotals(UsageCounts):
    requests: int
    requests_by_route: dict[str, int] = Field(description="Requests per route template")


class UsageResponse(BaseModel):
    """A key's usage from ``from`` to ``to`` (inclusive UTC days), up to this moment."""

    key_id: str
    from_: str = Field(serialization_alias="from", description="First day (UTC)")
    to: str = Field(description="Last day (UTC), inclusive")
    group_by: Literal["day", "wiki", "article"]
    rows: list[UsageRowOut] = Field(description="Articles: the most served first (see limit)")
    totals: UsageTotals
