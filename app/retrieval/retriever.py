"""Hybrid retrieval over one published generation: dense (FAISS) + lexical (tantivy BM25),
fused, filtered, capped per article, returned as passages with their per-component scores.

The retriever is a plain library object shared by the HTTP service, the CLI and the
evaluation.

Usage::

    >>> index = LoadedIndex.open(Path("var/index"), embedder)            # doctest: +SKIP
    >>> retriever = HybridRetriever(index, embedder)                     # doctest: +SKIP
    >>> hits = retriever.search(SearchRequest("Who founded the Normans?", k=5))  # doctest: +SKIP
    >>> hits[0].passage.title, hits[0].scores                            # doctest: +SKIP
    ('Normans', {'dense': 0.61, 'lexical': 14.2, 'fused': 0.0325})
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from app.retrieval.language import DetectedLanguage, LanguageDetector
from app.retrieval.ranking import (
    Ranked,
    RetrievalDefaults,
    SearchHit,
    SearchMode,
    SearchRequest,
    by_score,
    candidate_count,
    dense_languages,
    fuse_request,
    lexical_languages,
    materialise,
    resolve_defaults,
    unscorable_rows,
)
from indexer.dense import DenseIndex
from indexer.embedding import EmbeddingModel, ModelInfo, open_embedder
from indexer.embedding.onnx import default_onnx_cache_dir
from indexer.embedding.text import embedding_text
from indexer.errors import InvalidInput, WikiragError
from indexer.generation import CorruptGeneration, Generation, IndexLayout, NoPublishedIndex
from indexer.lexical import LexicalIndex
from indexer.manifest import Manifest
from indexer.store import PassageRecord, PassageStore, StoreOutdated

log = logging.getLogger(__name__)

T = TypeVar("T")

ENCODE_CACHE_SIZE = 4096


class ModelMismatch(WikiragError):
    """The index was built with another embedding model than the one configured."""

    code = "model-mismatch"


@dataclass
class LoadedIndex:
    """One published generation opened for reading (store, FAISS index, tantivy index)."""

    generation: Generation
    store: PassageStore
    dense: DenseIndex
    lexical: LexicalIndex
    delta: DenseIndex | None = None  # vectors written by incremental updates
    updates_version: int = 0

    @classmethod
    def open(cls, index_dir: Path, model: ModelInfo | None = None) -> LoadedIndex:
        """Open the current generation; refuse it when ``model`` differs from its model."""
        generation = IndexLayout(index_dir).current()
        return cls.open_generation(generation, model)

    @classmethod
    def open_generation(cls, generation: Generation, model: ModelInfo | None) -> LoadedIndex:
        """Open ``generation``'s files; :class:`CorruptGeneration` (with ``path``) names the
        file that is missing or unreadable."""
        if model is not None:
            check_model(generation.manifest, model)
        store = _open_part(generation, "store.sqlite", open_store_for_reading)
        try:
            dense = _open_part(generation, "dense.faiss", DenseIndex.load)
            lexical = _open_part(generation, "lexical", LexicalIndex.open)
            loaded = cls(generation, store, dense, lexical)
            _open_part(generation, "updates.json", lambda _: loaded.refresh_updates())
        except BaseException:
            store.close()
            raise
        return loaded

    def refresh_updates(self) -> bool:
        """Pick up incremental updates (:mod:`indexer.update`): when the generation's
        ``updates.json`` version changed, reload the tantivy searcher and the delta dense
        index. The store needs nothing (SQLite readers see each committed transaction).
        Returns whether anything was reloaded."""
        from indexer.generation import DELTA_FILE, read_version

        version = read_version(self.generation.path)
        if version == self.updates_version:
            return False
        delta_path = self.generation.file(DELTA_FILE)
        delta = DenseIndex.load(delta_path, mmap=False) if delta_path.is_file() else None
        self.lexical.reload()
        self.delta = delta
        self.updates_version = version
        return True

    @property
    def manifest(self) -> Manifest:
        return self.generation.manifest

    def close(self) -> None:
        self.store.close()


def _open_part(generation: Generation, name: str, opener: Callable[[Path], T]) -> T:
    """``opener(path)`` for one file of ``generation``; any failure becomes
    :class:`CorruptGeneration` naming the file and the problem."""
    path = generation.file(name)
    try:
        if name != "updates.json" and not path.exists():
            raise FileNotFoundError(f"{path} is missing")
        return opener(path)
    except CorruptGeneration:
        raise
    except Exception as exc:
        problem = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
        raise CorruptGeneration(
            f"generation {generation.generation}: {problem} ({type(exc).__name__})", path=path
        ) from exc


def open_store_for_reading(path: Path) -> PassageStore:
    """Open a generation's store read-only, first migrating an older schema in place.

    Migrations only add tables and columns, so a generation built by an older wikirag stays
    servable after an upgrade (this needs write access to its directory once).
    """
    try:
        return PassageStore(path, readonly=True)
    except StoreOutdated:
        log.info("migrating %s to the current store schema", path)
        PassageStore(path).close()
        return PassageStore(path, readonly=True)


def serving_embedder(
    model: str | None,
    threads: int,
    *,
    query_encoder: str = "torch",
    onnx_cache_dir: Path | None = None,
    index_dir: Path | None = None,
) -> EmbeddingModel:
    """The embedder of a query service, with FAISS's OpenMP pool set to the same size. With
    no ``model`` named, the model the index published in ``index_dir`` was built with (the
    default model when there is none yet).

    One query at a time gains nothing from many threads, and on a busy machine a query's
    threads wait on each other: at 1 M passages, hybrid p50 went from 254 ms with 2 threads
    to 47 ms with 1 (benchmarks/RESULTS.md). Builds keep every core.

    ``query_encoder="onnx"`` embeds queries with the model's verified ONNX export, cached
    in ``onnx_cache_dir`` (default: ``~/.cache/wikirag/onnx``; see :mod:`indexer.embedding.onnx`;
    PyTorch is kept when the export is refused).
    """
    import faiss

    faiss.omp_set_num_threads(threads)
    options: dict[str, Any] = {"threads": threads, "query_encoder": query_encoder}
    if query_encoder == "onnx":
        options["onnx_cache_dir"] = onnx_cache_dir or default_onnx_cache_dir()
    if model is None and index_dir is not None:
        model = published_model(index_dir)
    return open_embedder(model, **options)


def published_model(index_dir: Path) -> str | None:
    """The model id the published generation of ``index_dir`` was built with (None: nothing
    published yet, or a manifest that does not load — opening the index will say why)."""
    try:
        return IndexLayout(index_dir).current().manifest.model.model_id
    except (NoPublishedIndex, CorruptGeneration, OSError):
        return None


def check_model(manifest: Manifest, model: ModelInfo) -> None:
    built = manifest.model
    differences = built.differences(model)
    if differences:
        raise ModelMismatch(
            f"index generation {manifest.generation} was built with model "
            f"{built.model_id!r} ({built.dimension} dims) but the service is "
            f"configured with {model.model_id!r} ({model.dimension} dims) "
            f"[{'; '.join(differences)}]; configure WIKIRAG_MODEL to match or rebuild the index"
        )


class HybridRetriever:
    """Dense + lexical retrieval with fusion, filters and per-article caps."""

    def __init__(
        self,
        index: LoadedIndex,
        embedder: EmbeddingModel,
        defaults: RetrievalDefaults | None = None,
        *,
        encode_cache_size: int = ENCODE_CACHE_SIZE,
        detect_language: bool = True,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.defaults = defaults or resolve_defaults(index.manifest.retrieval)
        # The languages of the index's wikis: what a query's language is detected among and
        # what BM25 is restricted to (ranking.lexical_languages).
        self.languages = tuple(sorted({site.language for site in index.store.wikis()}))
        self.detector = LanguageDetector(self.languages) if detect_language else None
        self._detect = lru_cache(maxsize=encode_cache_size)(self._detect_language)
        self._allowed = lru_cache(maxsize=64)(self._allowed_ids)
        # Repeated queries (retries, evaluation variants, paging) and the passage windows that
        # attribution scores again skip the model (4,096 vectors: ~7 MB at 384 dims).
        self._encode = lru_cache(maxsize=encode_cache_size)(embedder.encode_query)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="wikirag-lexical")

    def encode_text(self, text: str) -> np.ndarray:
        """The embedding of one text through the embedder's low-latency path
        (:meth:`~indexer.embedding.Embedder.encode_query`: ONNX when verified), cached. One text
        per forward pass is not padded to the longest of a batch: scoring attribution windows
        this way took 10.5 s instead of 20.5 s for the load benchmark's 100 answers. The
        returned array is shared with the cache: do not modify it."""
        vector: np.ndarray = self._encode(text)
        return vector

    def passage_similarities(
        self, vector: np.ndarray, passages: Sequence[PassageRecord]
    ) -> list[float]:
        """The cosine of ``vector`` (a query embedding) with each passage's vector: the one
        stored in the dense index (the update delta's first), else, for a passage without one
        (an old revision's, cited by id), the passage embedded as the index embeds it."""
        rows = [p.row_id for p in passages]
        found: dict[int, float] = {}
        delta = self.index.delta
        if delta is not None and delta.ntotal:
            found.update(delta.similarities(vector, rows))
        rest = [row for row in rows if row not in found]
        if rest:
            found.update(self.index.dense.similarities(vector, rest))
        missing = [p for p in passages if p.row_id not in found]
        if missing:
            context = self.index.manifest.model.embed_context
            vectors = self.embedder.encode([embedding_text(p, context) for p in missing])
            found.update(
                (p.row_id, float(v @ vector)) for p, v in zip(missing, vectors, strict=True)
            )
        return [found[row] for row in rows]

    def _detect_language(self, query: str) -> DetectedLanguage:
        if self.detector is None:
            return DetectedLanguage(None, 0.0)
        return self.detector.detect(query)

    def query_language(self, request: SearchRequest) -> DetectedLanguage:
        """The language ``request`` is searched as: the one it names, else the detected one
        (None when detection is off or unsure)."""
        if request.query_language is not None:
            return DetectedLanguage(request.query_language, 1.0)
        return self._detect(request.query)

    def with_language(self, request: SearchRequest) -> SearchRequest:
        """``request`` with its query language resolved (:meth:`query_language`)."""
        if request.query_language is not None:
            return request
        language = self.query_language(request).language
        return request if language is None else replace(request, query_language=language)

    def invalidate(self) -> None:
        """Forget cached filter results (the store changed under an incremental update)."""
        self._allowed.cache_clear()

    def search(self, request: SearchRequest, vector: np.ndarray | None = None) -> list[SearchHit]:
        """The ``request.k`` best current passages; ``vector`` is the query's embedding when
        the caller already has it (attribution scores the same sentence)."""
        if request.k < 1:
            raise InvalidInput(f"k must be ≥ 1, got {request.k}")
        request = self.with_language(request)
        cap = request.max_per_article
        candidates = candidate_count(self.defaults, request.k, cap or request.max_per_entity)
        ranked: dict[str, Ranked] = {}
        unscorable: frozenset[int] = frozenset()
        if request.mode is SearchMode.HYBRID:
            # tantivy releases the GIL: its search runs while the query is being embedded.
            lexical = self._pool.submit(self._lexical, request, candidates)
            ranked["dense"] = self._dense(request, candidates, vector)
            ranked["lexical"] = lexical.result()
            unscorable = unscorable_rows(
                ranked["dense"],
                lexical_languages(request, self.languages),
                self.index.store.languages_by_rows,
            )
        elif request.mode is SearchMode.DENSE:
            ranked["dense"] = self._dense(request, candidates, vector)
        else:
            ranked["lexical"] = self._lexical(request, candidates)
        fused = fuse_request(ranked, request, self.defaults, unscorable)
        return materialise(
            fused,
            self.index.store.passages_by_rows,
            request.k,
            cap,
            request.max_per_entity,
            request.max_revert_risk,
        )

    # -- components -----------------------------------------------------------------------

    def dense_candidates(
        self, request: SearchRequest, candidates: int, vector: np.ndarray | None = None
    ) -> Ranked:
        """The dense component alone: ``(row id, cosine)`` best first, for the filters of
        ``request``; ``vector`` is the query's embedding when the caller has it (a shard
        answering a router, :mod:`app.retrieval.router`)."""
        return self._dense(request, candidates, vector)

    def lexical_candidates(self, request: SearchRequest, candidates: int) -> Ranked:
        """The lexical component alone: ``(row id, BM25)`` best first, over passages in the
        query's language (:func:`~app.retrieval.ranking.lexical_languages`)."""
        return self._lexical(request, candidates)

    def _dense(
        self, request: SearchRequest, candidates: int, vector: np.ndarray | None = None
    ) -> Ranked:
        languages = dense_languages(request, self.languages)
        allowed = self._allowed(request.wikis, languages, request.pages)
        if allowed is not None and allowed.size == 0:
            return []
        if vector is None:
            vector = self.encode_text(request.query)
        delta = self.index.delta
        if delta is None or delta.ntotal == 0:
            hits = self.index.dense.search(vector, candidates, allowed_ids=allowed)
            return by_score([(h.doc_id, h.score) for h in hits])
        # Updated pages: the main index still holds their superseded passages (dropped at
        # materialisation), so over-fetch it by the delta's size and merge by passage id.
        extra = min(delta.ntotal, 4 * candidates)
        best: dict[int, float] = {}
        for hit in [
            *self.index.dense.search(vector, candidates + extra, allowed_ids=allowed),
            *delta.search(vector, candidates, allowed_ids=allowed),
        ]:
            if hit.score > best.get(hit.doc_id, float("-inf")):
                best[hit.doc_id] = hit.score
        return by_score(list(best.items()))

    def _lexical(self, request: SearchRequest, candidates: int) -> Ranked:
        # Fused with the dense half, BM25 scores only passages of the query's analyser: its
        # scores of one query in other languages' fields are noise that linear fusion weighs
        # fully (an unfiltered Portuguese question ranked English passages first).
        languages = lexical_languages(request, self.languages)
        if languages is not None and not languages:
            return []  # no passage shares the query's analyser: BM25 would only add noise
        hits = self.index.lexical.search(
            request.query,
            candidates,
            languages=languages,
            wikis=request.wikis,
            page_ids=request.pages,
        )
        return by_score([(h.doc_id, h.score) for h in hits])

    def _allowed_ids(
        self,
        wikis: tuple[str, ...] | None,
        languages: tuple[str, ...] | None,
        pages: tuple[tuple[str, int], ...] | None,
    ) -> np.ndarray | None:
        if wikis is None and languages is None and pages is None:
            return None
        return self.index.store.current_row_ids(wikis=wikis, languages=languages, pages=pages)
