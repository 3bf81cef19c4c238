"""Sharded serving: what a shard answers a router, and how the router fuses the answers
exactly as one index holding every shard's passages would.

A router (``wikirag serve --router --shard-url …``) embeds the query once and sends it with
the query to every shard's ``POST /v1/shard/candidates``. Each shard (``wikirag serve
--shard``, over an index from :mod:`indexer.sharding`) answers with its top dense candidates
(row id, cosine), its top lexical candidates (row id, *local* BM25), and what global BM25
needs: its document and token counts per language field, the document frequency of each
query term, and each lexical candidate's term frequencies and length. Row ids are the
source index's, so they are the same everywhere.

Exactness (for an exact, ``Flat``, dense index):

* Dense: a cosine does not depend on the other vectors; the best ``n`` of the union of every
  shard's best ``n`` are the best ``n`` overall.
* Lexical: BM25 depends on corpus statistics (IDF, average field length), which differ per
  shard. The router adds the shards' statistics up and re-scores each lexical candidate with
  tantivy's formula, in single precision as tantivy computes it (:func:`bm25`), so the scores
  are those of the unsharded index. A shard ranked its candidates by its local scores,
  though; a passage it did not return could still belong in the global top ``n``. For each
  shard the router bounds the global score of anything it did not return (its lowest local
  score times the largest ratio of global to local term weight, :func:`_ratio_bound`), and
  asks that shard again for more when the bound reaches the ``n``-th global score; so the
  lexical list is the exact global one.
* Fusion (:mod:`app.retrieval.fusion`), filters, per-article caps and the skipping of non-current
  passages then run on the same lists as :class:`~app.retrieval.retriever.HybridRetriever` does.

A shard that is down, slow or failing is left out: the answer is partial (``"partial": true,
"missing_shards": [...]``), with BM25 statistics of the shards that answered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from app.retrieval import ranking
from app.retrieval.language import DetectedLanguage, LanguageDetector
from app.retrieval.ranking import Ranked, RetrievalDefaults, SearchHit, SearchMode, SearchRequest
from indexer.lexical import analyzer_group, indexed_text, lexical_doc, query_terms, tokenize
from indexer.manifest import record_json
from indexer.models import License
from indexer.store import PassageRecord
from indexer.trust import TrustSignals

log = logging.getLogger(__name__)

K1 = 1.2
B = 0.75
MAX_QUERY_TERMS = 256  # as indexer.lexical: distinct terms per language field
MAX_REFETCH_ROUNDS = 6
_SLACK = 1.0 + 1e-5  # single-precision rounding between the bound and the scores

# tantivy's field norm table (Lucene's SmallFloat): lengths 0–40 exact, then steps that
# double every 8 values. A document's length is rounded down to an entry.
_FIELDNORMS: list[int] = list(range(41))
_step = 2
while len(_FIELDNORMS) < 256:
    for _ in range(8):
        if len(_FIELDNORMS) < 256:
            _FIELDNORMS.append(_FIELDNORMS[-1] + _step)
    _step *= 2


def fieldnorm(length: int) -> int:
    """The field length tantivy scores with (its one-byte norm, decoded).

    >>> fieldnorm(40), fieldnorm(41), fieldnorm(43), fieldnorm(100)
    (40, 40, 42, 96)
    """
    lo, hi = 0, len(_FIELDNORMS) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _FIELDNORMS[mid] <= length:
            lo = mid
        else:
            hi = mid - 1
    return _FIELDNORMS[lo]


def term_counts(query: str, group: str) -> list[tuple[str, int]]:
    """The terms a lexical search looks up in ``group``'s field, each with its count."""
    return list(Counter(query_terms(query, group)).items())[:MAX_QUERY_TERMS]


def bm25(
    tf: Mapping[str, int],
    length: int,
    terms: Sequence[tuple[str, int]],
    documents: int,
    tokens: int,
    doc_freq: Mapping[str, int],
) -> float:
    """tantivy's BM25 score of one document, computed as tantivy computes it (float32):
    ``Σ count · idf · (k1 + 1) · tf / (tf + k1 · (1 - b + b · norm(len) / avglen))`` with
    ``idf = ln(1 + (N - n + 0.5) / (n + 0.5))`` and ``avglen = tokens / N``."""
    f = np.float32
    avg = f(tokens) / f(documents)
    norm = f(K1) * (f(1) - f(B) + f(B) * f(fieldnorm(length)) / avg)
    total = f(0)
    for term, count in terms:
        freq = tf.get(term, 0)
        if not freq:
            continue
        n = doc_freq.get(term, 0)
        idf = np.log(f(1) + (f(documents - n) + f(0.5)) / (f(n) + f(0.5)), dtype=np.float32)
        score = idf * f(1 + K1) * (f(freq) / (f(freq) + norm))
        if count > 1:
            score = score * f(count)
        total = total + score
    return float(total)


def _idf(documents: int, n: int) -> float:
    return float(np.log1p((documents - n + 0.5) / (n + 0.5)))


# -- the shard side -------------------------------------------------------------------------


def record_to_json(record: PassageRecord) -> dict[str, Any]:
    data = dataclasses.asdict(record)
    data["trust"] = record.trust.to_json()  # the shape TrustSignals.from_json reads
    return data


def record_from_json(data: Mapping[str, Any]) -> PassageRecord:
    return PassageRecord(
        **{
            **data,
            "section_path": tuple(data["section_path"]),
            "license": License(**data["license"]),
            "trust": TrustSignals.from_json(data.get("trust")),
        }
    )


def shard_candidates(
    serving: Any,
    query: str,
    *,
    mode: SearchMode,
    dense: int,
    lexical: int,
    vector: Sequence[float] | None = None,
    wikis: tuple[str, ...] | None = None,
    languages: tuple[str, ...] | None = None,
    query_language: str | None = None,
    cross_lingual: bool = True,
) -> dict[str, Any]:
    """A shard's answer to a router (``serving`` is the :class:`~app.serving.ServingIndex`
    the request uses): candidates of each component, BM25 statistics, and the passages. With
    a ``query_language``, BM25 scores only this shard's passages in that language, as one
    index would (:func:`~app.retrieval.ranking.lexical_languages`)."""
    retriever = serving.retriever
    index = serving.index
    request = SearchRequest(
        query,
        k=1,
        mode=mode,
        wikis=wikis,
        languages=languages,
        query_language=query_language,
        cross_lingual=cross_lingual,
    )
    query_vector = None if vector is None else np.asarray(vector, dtype=np.float32)
    dense_hits: list[tuple[int, float]] = []
    lexical_hits: list[tuple[int, float]] = []
    if mode is not SearchMode.LEXICAL and dense > 0:
        dense_hits = retriever.dense_candidates(request, dense, query_vector)
    if mode is not SearchMode.DENSE and lexical > 0:
        lexical_hits = retriever.lexical_candidates(request, lexical)
    records = index.store.passages_by_rows(
        sorted({doc for doc, _ in dense_hits} | {doc for doc, _ in lexical_hits})
    )
    groups = sorted({analyzer_group(language) for language in serving.languages})
    terms = {group: term_counts(query, group) for group in groups}
    term_freqs: dict[str, Any] = {}
    for doc, _ in lexical_hits:
        record = records.get(doc)
        if record is None:
            continue
        doc_fields = lexical_doc(record)
        group = analyzer_group(doc_fields.language)
        tokens = tokenize(indexed_text(doc_fields), doc_fields.language)
        wanted = {term for term, _ in terms.get(group, [])}
        counts = Counter(token for token in tokens if token in wanted)
        term_freqs[str(doc)] = {"group": group, "length": len(tokens), "tf": dict(counts)}
    stats = index.manifest.lexical.stats
    shard = index.manifest.shard
    return {
        "generation": serving.name,
        "shard": None if shard is None else record_json(shard),
        "retrieval": retriever.defaults.to_json(),
        "dense": [[doc, score] for doc, score in dense_hits],
        "lexical": [[doc, score] for doc, score in lexical_hits],
        "lexical_requested": lexical,
        "stats": {
            "documents": index.lexical.num_docs if stats is None else stats.documents,
            "tokens": {} if stats is None else dict(stats.tokens),
            "doc_freq": {
                group: {term: index.lexical.doc_freq(group, term) for term, _ in pairs}
                for group, pairs in terms.items()
            },
        },
        "term_freqs": term_freqs,
        "passages": {
            str(doc): record_to_json(r) if ranking.servable(r) else None
            for doc, r in records.items()
        },
    }


def shard_info(serving: Any) -> dict[str, Any]:
    """What a router needs to know about a shard before searching it."""
    manifest = serving.index.manifest
    return {
        "generation": serving.name,
        "shard": None if manifest.shard is None else record_json(manifest.shard),
        "model": record_json(manifest.model),
        "retrieval": serving.retriever.defaults.to_json(),
        "wikis": [
            {"wiki": s.wiki, "language": s.language, "base_url": s.base_url, "sitename": s.sitename}
            for s in serving.sites.values()
        ],
        "counts": record_json(manifest.counts),
    }


# -- the router side ------------------------------------------------------------------------


@dataclass
class Merged:
    """The fused, materialised result of one routed search."""

    hits: list[SearchHit]
    generations: list[str]
    missing: list[str]
    refetches: int = 0
    # Follow-up requests sent, per shard URL (the lexical bound asked that shard for more).
    followups: dict[str, int] = field(default_factory=dict)


@dataclass
class _Global:
    documents: int
    tokens: dict[str, int]
    doc_freq: dict[str, dict[str, int]]


def _global_stats(answers: Sequence[Mapping[str, Any]]) -> _Global:
    documents = 0
    tokens: Counter[str] = Counter()
    doc_freq: dict[str, Counter[str]] = {}
    for answer in answers:
        stats = answer["stats"]
        documents += int(stats["documents"])
        tokens.update({g: int(t) for g, t in stats["tokens"].items()})
        for group, freqs in stats["doc_freq"].items():
            doc_freq.setdefault(group, Counter()).update(freqs)
    return _Global(documents, dict(tokens), {g: dict(c) for g, c in doc_freq.items()})


def _ratio_bound(answer: Mapping[str, Any], whole: _Global, terms: dict[str, Any]) -> float:
    """The largest factor by which a passage's global BM25 can exceed its score in this
    shard: per term, (global idf / local idf) · max(1, global avglen / local avglen)."""
    stats = answer["stats"]
    local_n = int(stats["documents"])
    bound = 1.0
    for group, freqs in stats["doc_freq"].items():
        local_tokens = int(stats["tokens"].get(group, 0))
        if local_tokens == 0 or local_n == 0:
            continue
        length_ratio = (whole.tokens[group] / whole.documents) / (local_tokens / local_n)
        for term, _ in terms.get(group, []):
            n = int(freqs.get(term, 0))
            if n == 0:
                continue
            ratio = _idf(whole.documents, whole.doc_freq[group][term]) / _idf(local_n, n)
            bound = max(bound, ratio * max(1.0, length_ratio))
    return bound * _SLACK


def global_lexical(
    query: str, answers: Sequence[Mapping[str, Any]], n: int
) -> tuple[list[tuple[int, float]], list[int]]:
    """The global top ``n`` lexical list from the shards' answers, and the indexes of the
    answers whose unreturned passages could still belong in it (ask those for more)."""
    whole = _global_stats(answers)
    terms = {group: term_counts(query, group) for group in whole.doc_freq}
    scored: dict[int, float] = {}
    for answer in answers:
        for doc_text, info in answer["term_freqs"].items():
            group = info["group"]
            scored[int(doc_text)] = bm25(
                info["tf"],
                int(info["length"]),
                terms.get(group, []),
                whole.documents,
                whole.tokens.get(group, 0),
                whole.doc_freq.get(group, {}),
            )
    ranked = ranking.by_score(list(scored.items()))[:n]
    threshold = ranked[-1][1] if len(ranked) >= n else float("-inf")
    incomplete = []
    for i, answer in enumerate(answers):
        hits = answer["lexical"]
        if len(hits) < int(answer["lexical_requested"]) or not hits:
            continue  # the shard returned every passage that matches
        if threshold <= float(hits[-1][1]) * _ratio_bound(answer, whole, terms):
            incomplete.append(i)
    return ranked, incomplete


def merge_dense(answers: Sequence[Mapping[str, Any]], n: int) -> Ranked:
    """The global top ``n`` dense list: the best of the shards' best (a cosine does not
    depend on the other vectors)."""
    return ranking.by_score(
        [(int(doc), float(score)) for a in answers for doc, score in a["dense"]]
    )[:n]


@dataclass
class ShardState:
    """What the router last learned about one shard."""

    url: str
    info: dict[str, Any] | None = None
    error: str | None = None
    checked_at: float = 0.0


@dataclass
class ShardRouter:
    """Fans requests out to shard services over HTTP (one :class:`httpx.AsyncClient`)."""

    urls: list[str]
    client: httpx.AsyncClient
    api_key: str | None = None
    fallback: RetrievalDefaults = field(default_factory=RetrievalDefaults)
    overrides: dict[str, Any] = field(default_factory=dict)
    states: dict[str, ShardState] = field(default_factory=dict)
    _detector: LanguageDetector | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.urls = [u.rstrip("/") for u in self.urls]
        self.states = {u: ShardState(u) for u in self.urls}

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    async def request(
        self, url: str, method: str, path: str, **kwargs: Any
    ) -> tuple[httpx.Response | None, str | None]:
        """One call to one shard: the response, or why there is none."""
        try:
            response = await self.client.request(
                method, f"{url}{path}", headers=self.headers, **kwargs
            )
        except httpx.TimeoutException:
            return None, "timed out"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return response, None

    async def refresh(self, *, missing_only: bool = False, every: float = 0.0) -> None:
        """Ask the shards for their info (model, wikis, fusion defaults, generation): all of
        them, or (``missing_only``) those not heard from yet and not asked in ``every``
        seconds."""

        async def one(state: ShardState) -> None:
            response, error = await self.request(state.url, "GET", "/v1/shard/info")
            state.checked_at = time.time()
            if response is not None and response.status_code == 200:
                state.info, state.error = response.json(), None
            else:
                state.error = error or _status(response)

        now = time.time()
        wanted = [
            s
            for s in self.states.values()
            if not missing_only or (s.info is None and now - s.checked_at >= every)
        ]
        await asyncio.gather(*(one(s) for s in wanted))

    def sites(self) -> dict[str, dict[str, Any]]:
        """Every wiki any shard holds (from the last info each shard gave)."""
        sites: dict[str, dict[str, Any]] = {}
        for state in self.states.values():
            for site in (state.info or {}).get("wikis", []):
                sites[site["wiki"]] = site
        return sites

    def languages(self) -> tuple[str, ...]:
        """The content languages of every wiki any shard holds."""
        return tuple(sorted({site["language"] for site in self.sites().values()}))

    def query_language(self, request: SearchRequest) -> DetectedLanguage:
        """The language ``request`` is searched as: the one it names, else the one detected
        among the shards' languages (as one index detects among its own)."""
        if request.query_language is not None:
            return DetectedLanguage(request.query_language, 1.0)
        if any(state.info is None for state in self.states.values()):
            # a shard not heard from yet may hold other languages: detecting among the known
            # ones could restrict BM25 to the wrong one, so search as if undetected
            return DetectedLanguage(None, 0.0)
        languages = self.languages()
        if self._detector is None or self._detector.languages != languages:
            self._detector = LanguageDetector(languages)
        return self._detector.detect(request.query)

    def defaults(self) -> RetrievalDefaults:
        """The fusion defaults the shards' index recorded (explicit settings win)."""
        for state in self.states.values():
            if state.info is not None:
                return ranking.resolve_defaults(
                    state.info.get("retrieval"), self.fallback, self.overrides
                )
        return ranking.resolve_defaults(None, self.fallback, self.overrides)

    async def _candidates(
        self, url: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, str | None]:
        response, error = await self.request(url, "POST", "/v1/shard/candidates", json=body)
        if response is None:
            return None, error
        if response.status_code != 200:
            return None, _status(response)
        return response.json(), None

    async def search(
        self, request: SearchRequest, vector: Sequence[float] | None, model: str | None = None
    ) -> Merged:
        """Fan ``request`` out, merge the candidates exactly, fuse and materialise
        (``vector``: the query embedded by ``model``; a shard built with another model
        refuses it and is left out)."""
        defaults = self.defaults()
        if request.query_language is None:
            language = self.query_language(request).language
            if language is not None:
                request = dataclasses.replace(request, query_language=language)
        cap = request.max_per_article
        n = ranking.candidate_count(defaults, request.k, cap or request.max_per_entity)
        body: dict[str, Any] = {
            "query": request.query,
            "mode": request.mode.value,
            "dense": n,
            "lexical": n,
            "vector": None if vector is None else [float(x) for x in vector],
            "model": model,
            "wikis": list(request.wikis) if request.wikis else None,
            "languages": list(request.languages) if request.languages else None,
            "query_language": request.query_language,
            "cross_lingual": request.cross_lingual,
        }
        outcomes = await asyncio.gather(*(self._candidates(u, body) for u in self.urls))
        answers: list[dict[str, Any]] = []
        urls: list[str] = []
        missing: list[str] = []
        for url, (answer, error) in zip(self.urls, outcomes, strict=True):
            if answer is None:
                log.warning("shard %s left out of a search: %s", url, error)
                self.states[url].error = error
                missing.append(url)
            else:
                answers.append(answer)
                urls.append(url)
        ranked: dict[str, Ranked] = {}
        refetches = 0
        followups: dict[str, int] = {}
        if request.mode is not SearchMode.DENSE and answers:
            lexical, incomplete = global_lexical(request.query, answers, n)
            rounds = 0
            while incomplete and rounds < MAX_REFETCH_ROUNDS:
                rounds += 1
                for i in incomplete:
                    followups[urls[i]] = followups.get(urls[i], 0) + 1
                again = await asyncio.gather(
                    *(self._more(urls[i], body, answers[i]) for i in incomplete)
                )
                for i, answer in zip(incomplete, again, strict=True):
                    if answer is not None:
                        answers[i] = answer
                        refetches += 1
                lexical, incomplete = global_lexical(request.query, answers, n)
            if incomplete:
                log.warning("lexical candidates may be incomplete after %d rounds", rounds)
            if request.mode is SearchMode.HYBRID:
                ranked["dense"] = merge_dense(answers, n)
            ranked["lexical"] = lexical
        elif answers:
            ranked["dense"] = merge_dense(answers, n)
        records: dict[int, PassageRecord | None] = {}
        for answer in answers:
            for doc, data in answer["passages"].items():
                records[int(doc)] = None if data is None else record_from_json(data)
        unscorable: frozenset[int] = frozenset()
        if request.mode is SearchMode.HYBRID and "dense" in ranked:
            unscorable = ranking.unscorable_rows(
                ranked["dense"],
                ranking.lexical_languages(request, self.languages()),
                lambda rows: {r: rec.language for r in rows if (rec := records.get(r))},
            )
        fused = ranking.fuse_request(ranked, request, defaults, unscorable) if ranked else []
        return Merged(
            hits=ranking.materialise(
                fused,
                lambda rows: records,
                request.k,
                cap,
                request.max_per_entity,
                request.max_revert_risk,
            ),
            generations=[str(a["generation"]) for a in answers],
            missing=missing,
            refetches=refetches,
            followups=followups,
        )

    async def _more(
        self, url: str, body: dict[str, Any], previous: dict[str, Any]
    ) -> dict[str, Any] | None:
        wanted = int(previous["lexical_requested"]) * 4
        answer, error = await self._candidates(url, {**body, "lexical": wanted})
        if answer is None:
            log.warning("shard %s failed a follow-up request: %s", url, error)
        return answer

    async def first_found(
        self, path: str, params: Mapping[str, Any] | None = None, wiki: str | None = None
    ) -> tuple[httpx.Response | None, list[str]]:
        """Ask the shards (those holding ``wiki``, when known) for ``path``: the first 200
        answer, else the most telling error answer (not 404), else a 404; and the shards
        that did not answer."""
        urls = self.urls
        if wiki is not None:
            holding = [
                s.url
                for s in self.states.values()
                if s.info is None or wiki in {w["wiki"] for w in s.info.get("wikis", [])}
            ]
            urls = holding or urls
        outcomes = await asyncio.gather(
            *(self.request(u, "GET", path, params=params) for u in urls)
        )
        found: httpx.Response | None = None
        other: httpx.Response | None = None
        not_found: httpx.Response | None = None
        missing: list[str] = []
        for url, (response, error) in zip(urls, outcomes, strict=True):
            if response is None:
                missing.append(url)
                self.states[url].error = error
            elif response.status_code == 200:
                found = found or response
            elif response.status_code == 404:
                not_found = not_found or response
            elif response.status_code >= 500:
                missing.append(url)
            else:
                other = other or response
        return found or other or not_found, missing


def _status(response: httpx.Response | None) -> str:
    if response is None:
        return "no response"
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = response.reason_phrase
    return f"HTTP {response.status_code} {code}"
