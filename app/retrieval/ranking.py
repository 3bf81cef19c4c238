"""The ranking rules of one search, in one place: what a search asks for, how many candidates
each component fetches, how their lists are ordered and fused, and which fused hits become
results (servable passages only, at most ``max_per_article`` per article, the first ``k``).

Both the single-index :class:`~app.retrieval.retriever.HybridRetriever` and the shard
router (:mod:`app.retrieval.router`) rank with these functions, so a routed search cannot
drift from the unsharded one: they differ only in where the candidate lists and the passage
records come from.

Usage::

    >>> defaults = RetrievalDefaults()                     # linear fusion, α = 0.45
    >>> candidate_count(defaults, k=10, cap=None), candidate_count(defaults, k=50, cap=2)
    (100, 200)
    >>> by_score([(7, 0.5), (3, 0.9), (5, 0.5)])
    [(3, 0.9), (5, 0.5), (7, 0.5)]
    >>> ranked = {"dense": [(1, 0.9), (2, 0.7)], "lexical": [(2, 3.0), (4, 1.0)]}
    >>> [h.doc_id for h in fuse(ranked, defaults)]
    [2, 1, 4]
    >>> [h.doc_id for h in fuse(ranked, defaults, alpha=1.0)]   # dense only decides
    [1, 2, 4]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from app.retrieval.fusion import DEFAULT_RRF_K, FusedHit, FusionMethod, linear, rrf
from indexer.lexical import OTHER_GROUP, analyzer_group

if TYPE_CHECKING:
    from indexer.store import PassageRecord

log = logging.getLogger(__name__)

Ranked = list[tuple[int, float]]


class SearchMode(StrEnum):
    HYBRID = "hybrid"
    DENSE = "dense"
    LEXICAL = "lexical"


@dataclass(frozen=True, slots=True)
class RetrievalDefaults:
    """Fusion defaults; the build records them in the manifest. Linear fusion with α = 0.45
    (dense weight) beat RRF at every k on the SQuAD dev evaluation (benchmarks/RESULTS.md)."""

    fusion: FusionMethod = FusionMethod.LINEAR
    rrf_k: int = DEFAULT_RRF_K
    alpha: float = 0.45
    candidates: int = 100

    def to_json(self) -> dict[str, Any]:
        """As recorded in a manifest and reported by ``GET /v1/index``.

        >>> RetrievalDefaults().to_json()
        {'fusion': 'linear', 'rrf_k': 60, 'alpha': 0.45, 'candidates': 100}
        """
        return {
            "fusion": self.fusion.value,
            "rrf_k": self.rrf_k,
            "alpha": self.alpha,
            "candidates": self.candidates,
        }


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: str
    k: int = 10
    mode: SearchMode = SearchMode.HYBRID
    fusion: FusionMethod | None = None
    wikis: tuple[str, ...] | None = None
    languages: tuple[str, ...] | None = None
    pages: tuple[tuple[str, int], ...] | None = None
    max_per_article: int | None = None
    # At most this many passages per Wikidata item (one article across languages).
    max_per_entity: int | None = None
    rrf_k: int | None = None
    alpha: float | None = None
    # The question's language (given, or detected by the retriever); None: unknown.
    query_language: str | None = None
    # False: answer only from passages in the query's language (dense half included).
    cross_lingual: bool = True
    # Leave out passages whose revision's revert risk (its trust signals) is above this; a
    # revision the export gave no score keeps its passages (no score is no risk shown).
    max_revert_risk: float | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A passage and its scores: ``dense`` (cosine), ``lexical`` (BM25), ``fused``."""

    passage: PassageRecord
    scores: dict[str, float] = field(default_factory=dict)


def resolve_defaults(
    recorded: Mapping[str, Any] | None,
    fallback: RetrievalDefaults | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RetrievalDefaults:
    """The fusion settings a service ranks with: explicit ``overrides`` (flags, ``WIKIRAG_*``)
    first, then what the build ``recorded``, then ``fallback`` (the evaluated default). An
    unusable recorded value falls back as a whole, with a warning.

    >>> resolve_defaults({"alpha": 0.3, "fusion": "rrf"}, overrides={"alpha": 0.6})
    RetrievalDefaults(fusion=<FusionMethod.RRF: 'rrf'>, rrf_k=60, alpha=0.6, candidates=100)
    >>> resolve_defaults({"rrf_k": "many"}) == RetrievalDefaults()
    True
    """
    fallback = fallback or RetrievalDefaults()
    values = {**(recorded or {}), **(overrides or {})}
    try:
        return RetrievalDefaults(
            fusion=FusionMethod(values.get("fusion", fallback.fusion)),
            rrf_k=int(values.get("rrf_k", fallback.rrf_k)),
            alpha=float(values.get("alpha", fallback.alpha)),
            candidates=int(values.get("candidates", fallback.candidates)),
        )
    except (TypeError, ValueError):
        log.warning("unusable retrieval defaults %r; using %r", values, fallback)
        return fallback


def candidate_count(defaults: RetrievalDefaults, k: int, cap: int | None) -> int:
    """How many candidates each component fetches for ``k`` results: the configured
    ``candidates``, or more for a deep page — twice ``k``, four times under a per-article (or
    per-entity) cap, which drops many candidates of the best articles."""
    return max(defaults.candidates, k * (4 if cap else 2))


def by_score(hits: Sequence[tuple[int, float]]) -> Ranked:
    """Best first, equal scores by row id: a deterministic order that does not depend on how
    FAISS or tantivy happen to lay out their data (tantivy orders ties by segment), so one
    index and a router merging its shards' lists order the same candidates the same way."""
    return sorted(hits, key=lambda item: (-item[1], item[0]))


# A passage in another language than the query's has no BM25 score to fuse (the analysers do
# not compare): its dense part, times this, stands in for the lexical one. Below 1, so that of
# two passages the dense half scores alike, the one in the query's language (which BM25 did
# score) ranks first; above 0, so that the passage answering a question in another language
# is not buried under same-language passages that merely share its words. Chosen on the
# multilingual dev questions (benchmarks/RESULTS.md, "multilingual").
CROSS_LANGUAGE_STAND_IN: Final = 0.5


def fuse(
    ranked: Mapping[str, Sequence[tuple[int, float]]],
    defaults: RetrievalDefaults,
    *,
    fusion: FusionMethod | None = None,
    alpha: float | None = None,
    rrf_k: int | None = None,
    unscorable: Collection[int] = (),
) -> list[FusedHit]:
    """The components' lists fused (:mod:`app.retrieval.fusion`) by the request's method and
    parameters where it gives them, else by ``defaults``. One list fuses to itself in order.
    ``unscorable``: dense candidates BM25 could not score (another language than the
    query's); :data:`CROSS_LANGUAGE_STAND_IN` of their dense part stands in for BM25's."""
    method = fusion or defaults.fusion
    stand_in = CROSS_LANGUAGE_STAND_IN
    if method is FusionMethod.LINEAR:
        return linear(
            ranked,
            alpha=defaults.alpha if alpha is None else alpha,
            unscorable=unscorable,
            stand_in=stand_in,
        )
    return rrf(
        ranked,
        k=defaults.rrf_k if rrf_k is None else rrf_k,
        unscorable=unscorable,
        stand_in=stand_in,
    )


def fuse_request(
    ranked: Mapping[str, Sequence[tuple[int, float]]],
    request: SearchRequest,
    defaults: RetrievalDefaults,
    unscorable: Collection[int] = (),
) -> list[FusedHit]:
    """:func:`fuse` with the method and parameters ``request`` asks for."""
    return fuse(
        ranked,
        defaults,
        fusion=request.fusion,
        alpha=request.alpha,
        rrf_k=request.rrf_k,
        unscorable=unscorable,
    )


def unscorable_rows(
    dense: Ranked,
    lexical_scope: tuple[str, ...] | None,
    languages_of: Callable[[Sequence[int]], Mapping[int, str]],
) -> frozenset[int]:
    """The dense candidates BM25 could not score: those whose language is outside
    ``lexical_scope`` (:func:`lexical_languages`; None: BM25 scored every language).
    ``languages_of(row_ids)`` gives each row's language.

    >>> language = {1: "fr", 2: "en", 3: "simple"}
    >>> def languages_of(rows): return {row: language[row] for row in rows}
    >>> sorted(unscorable_rows([(1, .9), (2, .8), (3, .7)], ("en", "simple"), languages_of))
    [1]
    >>> unscorable_rows([(1, .9)], None, lambda rows: {})
    frozenset()
    """
    if lexical_scope is None or not dense:
        return frozenset()
    scope = set(lexical_scope)
    languages = languages_of([row for row, _ in dense])
    return frozenset(row for row, language in languages.items() if language not in scope)


def lexical_languages(
    request: SearchRequest, index_languages: Sequence[str]
) -> tuple[str, ...] | None:
    """The passage languages BM25 may score for ``request`` (None: all of them).

    BM25 of a query against text of another language matches function words and names, not
    meaning; fused with the dense half it is noise that linear fusion weighs fully. So when
    the query's language is known, the lexical half scores only passages whose analyser is
    the query's (``simple`` shares English's); within ``languages`` when the request filters.
    An empty tuple: nothing to score lexically (an English question over French passages);
    the dense half answers alone. A lexical-only search (``mode`` lexical) scores what its
    ``languages`` filter says, every language without one: the caller asked for keywords (a
    name is the same word in many languages) and no dense half competes with its scores.

    >>> langs = ["de", "en", "fr", "simple"]
    >>> lexical_languages(SearchRequest("q", query_language="en"), langs)
    ('en', 'simple')
    >>> lexical_languages(SearchRequest("q", query_language="en", languages=("fr",)), langs)
    ()
    >>> lexical_languages(SearchRequest("q", languages=("fr",)), langs)
    ('fr',)
    >>> lexical_languages(SearchRequest("q", query_language="en"), ["en", "simple"]) is None
    True
    >>> keywords = SearchRequest("q", mode=SearchMode.LEXICAL, query_language="en")
    >>> lexical_languages(keywords, langs) is None
    True
    """
    if request.query_language is None or request.mode is SearchMode.LEXICAL:
        return request.languages
    group = analyzer_group(request.query_language)
    same = tuple(
        code
        for code in index_languages
        if analyzer_group(code) == group
        and (group != OTHER_GROUP or code == request.query_language)
    )
    if request.languages is not None:
        return tuple(code for code in same if code in request.languages)
    if set(same) == set(index_languages):
        return None  # every passage shares the query's analyser: nothing to restrict
    return same


def dense_languages(
    request: SearchRequest, index_languages: Sequence[str]
) -> tuple[str, ...] | None:
    """The passage languages the dense half searches: every language (or the request's
    filter) when ``cross_lingual``; else only the query's, as for BM25.

    >>> dense_languages(SearchRequest("q", query_language="fr", cross_lingual=False), ["en", "fr"])
    ('fr',)
    >>> dense_languages(SearchRequest("q", query_language="fr"), ["en", "fr"]) is None
    True
    """
    if request.cross_lingual or request.query_language is None:
        return request.languages
    return lexical_languages(request, index_languages)


def servable(record: PassageRecord) -> bool:
    """Whether search may return ``record``: a passage of its page's current revision, not
    suppressed (deleted page, hidden revision)."""
    return record.revision_id == record.current_revision_id and record.suppressed is None


def entity_key(record: PassageRecord) -> tuple[str, ...]:
    """The entity a passage belongs to: its page's Wikidata item, the same for the article in
    every language; a page without one is an entity of its own."""
    if record.wikidata_id is not None:
        return ("item", record.wikidata_id)
    return ("page", record.wiki, str(record.page_id))


def within_risk(record: PassageRecord, max_revert_risk: float | None) -> bool:
    """Whether ``record``'s revision is at most ``max_revert_risk`` likely to be reverted (a
    revision without a score is: the filter hides only what a model scored above it)."""
    if max_revert_risk is None:
        return True
    risk = record.trust.revert_risk
    return risk is None or risk.probability <= max_revert_risk


def materialise(
    fused: Sequence[FusedHit],
    fetch: Callable[[Sequence[int]], Mapping[int, PassageRecord | None]],
    k: int,
    cap: int | None,
    entity_cap: int | None = None,
    max_revert_risk: float | None = None,
) -> list[SearchHit]:
    """The first ``k`` servable passages of ``fused`` (within ``max_revert_risk``:
    :func:`within_risk`), at most ``cap`` per article and ``entity_cap`` per entity
    (:func:`entity_key`), each with its component scores and its fused score.
    ``fetch(row_ids)`` returns the records of those rows (absent or None: no such passage);
    it is called on windows of ``4 k`` hits, so a deep candidate list costs store lookups only
    as far as results need."""
    results: list[SearchHit] = []
    per_article: dict[tuple[str, int], int] = {}
    per_entity: dict[tuple[str, ...], int] = {}
    window = 4 * k
    for start in range(0, len(fused), window):
        chunk = fused[start : start + window]
        records = fetch([hit.doc_id for hit in chunk])
        for hit in chunk:
            record = records.get(hit.doc_id)
            if record is None or not servable(record):
                continue  # not (or no longer) a current, visible passage
            if not within_risk(record, max_revert_risk):
                continue
            article = (record.wiki, record.page_id)
            if cap is not None and per_article.get(article, 0) >= cap:
                continue
            entity = entity_key(record)
            if entity_cap is not None and per_entity.get(entity, 0) >= entity_cap:
                continue
            per_article[article] = per_article.get(article, 0) + 1
            per_entity[entity] = per_entity.get(entity, 0) + 1
            results.append(SearchHit(record, {**hit.components, "fused": hit.score}))
            if len(results) == k:
                return results
    return results
