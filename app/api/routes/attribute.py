"""``POST /v1/attribute``: find and cite the Wikipedia passages behind each sentence of an AI
answer (see :mod:`app.attribution.verifier`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.accounts.metering import Served
from app.api.deps import PrincipalDep, ServicesDep, ServingDep
from app.api.queries import check_filters
from app.api.schemas import MAX_FILTER_VALUES, ApiError, FilterValue, error_responses
from app.attribution.license import Attribution
from app.attribution.trust import Trust
from app.attribution.verifier import (
    AnswerAttribution,
    AnswerAttributor,
    AttributeOptions,
    MalformedPassageIds,
    SupportLabel,
)

router = APIRouter(prefix="/v1", tags=["attribute"])

MAX_PASSAGE_IDS = 100
MAX_CITATIONS = 10

PassageId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class AttributeBody(BaseModel):
    """An answer to attribute, and optionally the passages the answer engine was given."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "answer": "Einstein received the Nobel Prize in Physics in 1921.",
                    "passage_ids": ["simplewiki:8368147:3"],
                }
            ]
        },
    )

    answer: str = Field(
        description="The answer text (not empty; at most max_answer_chars characters)",
        json_schema_extra={"minLength": 1},
    )
    passage_ids: list[PassageId] | None = Field(
        default=None,
        max_length=MAX_PASSAGE_IDS,
        description="Passages the answer was generated from (checked first); ids that are not "
        "in the index are listed in unknown_passage_ids",
    )
    wikis: list[FilterValue] | None = Field(
        default=None, min_length=1, max_length=MAX_FILTER_VALUES
    )
    languages: list[FilterValue] | None = Field(
        default=None, min_length=1, max_length=MAX_FILTER_VALUES
    )
    k: int = Field(default=3, ge=1, le=MAX_CITATIONS, description="Citations per sentence")
    search_fallback: bool = Field(
        default=True,
        description="Search the whole index for sentences no given passage supports",
    )

    @field_validator("answer")
    @classmethod
    def _answer_text(cls, value: str) -> str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("text must be valid Unicode (no lone surrogates)") from exc
        return value


class DisagreementOut(BaseModel):
    """What a contradicting passage says otherwise."""

    kind: Literal["polarity", "number", "entity", "relation"]
    claim: str = Field(description="The sentence's part that the passage contradicts")
    passage: str = Field(description="The passage's counterpart ('' where it has none)")
    reason: str = Field(description="One line for a reader")


class CitationOut(BaseModel):
    passage_id: str
    label: SupportLabel
    score: float = Field(description="Support score in [0, 1]")
    quote: str = Field(description="The passage window that matches the sentence")
    quote_start: int = Field(description="Offset of the quote in the passage text")
    quote_end: int
    components: dict[str, float] = Field(description="Parts of the score (lexical, dense)")
    missing_numbers: list[str] = Field(description="Numbers of the sentence not in the quote")
    missing_names: list[str] = Field(description="Names of the sentence not in the passage")
    word_order: float = Field(
        description="Share of the sentence's word pairs that the quote has in the same order "
        "(below 0.6 the quote relates the words otherwise: at most partial support)"
    )
    cross_language: bool = Field(
        description="The passage is in another language than the sentence: only names and "
        "numbers were compared, so it backs the sentence at most partly"
    )
    disagreement: DisagreementOut | None = Field(
        default=None, description="For a contradicting passage: what it says otherwise"
    )
    attribution: Attribution
    trust: Trust = Field(description="The cited passage's revision: its credibility signals")


class SentenceOut(BaseModel):
    text: str
    start: int = Field(description="Character offset in the answer")
    end: int
    label: SupportLabel
    score: float
    citations: list[CitationOut]


class FootnotedOut(BaseModel):
    text: str
    markdown: str
    html: str


class ReferenceOut(BaseModel):
    number: int
    passage_id: str
    title: str
    url: str
    attribution: Attribution


class AttributeResponse(BaseModel):
    sentences: list[SentenceOut]
    footnoted: FootnotedOut = Field(description="The answer with [n] markers and references")
    references: list[ReferenceOut]
    unknown_passage_ids: list[str]
    scorer: str
    took_ms: float
    generation: str


def served(result: AnswerAttribution) -> list[Served]:
    """What an attribution serves, for the usage meter: per page, the passages cited (its
    references), the citations returned (each with an attribution) and their quotes' chars."""
    items = [Served(c.passage.wiki, c.passage.page_id, chars=len(c.quote), attributions=1)
             for s in result.sentences for c in s.citations]  # fmt: skip
    items += [Served(r.passage.wiki, r.passage.page_id, passages=1) for r in result.references]
    return items


def check_answer(answer: str, max_chars: int) -> str:
    if not answer.strip():
        raise ApiError(422, "empty-answer", "the answer is empty (or only whitespace)")
    if len(answer) > max_chars:
        raise ApiError(
            422,
            "answer-too-long",
            f"the answer has {len(answer)} characters; the most this service accepts is "
            f"{max_chars}",
            length=len(answer),
            max_answer_chars=max_chars,
        )
    return answer


@router.post(
    "/attribute",
    response_model=AttributeResponse,
    summary="Attribute an AI answer, sentence by sentence",
    responses=error_responses(400, 401, 413, 422, 429, 503),
)
def attribute(
    body: AttributeBody, principal: PrincipalDep, services: ServicesDep, serving: ServingDep
) -> AttributeResponse:
    """Split ``answer`` into sentences; for each, the passages that support it (those in
    ``passage_ids`` first, then the whole index) with a score, a label (supported / partial /
    contradicted — with what disagrees — / unsupported), the matching quote and the
    attribution; plus the answer rewritten with
    footnotes and its numbered references."""
    answer = check_answer(body.answer, services.settings.max_answer_chars)
    check_filters(body, serving.sites, serving.languages)
    options = AttributeOptions(
        passage_ids=tuple(body.passage_ids) if body.passage_ids else None,
        wikis=tuple(body.wikis) if body.wikis else None,
        languages=tuple(body.languages) if body.languages else None,
        k=body.k,
        search_fallback=body.search_fallback,
    )
    try:
        result = AnswerAttributor(serving.retriever).attribute(answer, options)
    except MalformedPassageIds as exc:
        raise ApiError(
            400,
            "malformed-passage-id",
            str(exc),
            malformed=exc.ids,
            expected="WIKI:REVISION_ID:ORDINAL",
        ) from None
    data: dict[str, Any] = result.as_dict()
    services.metrics.passages.labels(route="/v1/attribute").inc(len(result.references))
    services.meter.record(principal.key_id, "/v1/attribute", served(result))
    return AttributeResponse.model_validate({**data, "generation": serving.name})
