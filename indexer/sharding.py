"""Split a published index into shards that ``wikirag serve --shard`` serves one each.

A shard is an ordinary published index directory (``current`` → ``generations/<id>`` with
``manifest.json``, ``store.sqlite``, ``dense.faiss`` and ``lexical/``) holding a subset of the
source index's pages, with every revision and passage of a page in the same shard. Its
manifest adds::

    "shard": {"id": 0, "of": 2, "by": "hash", "key": "sha256(wiki:page_id) mod 2",
              "wikis": ["enwiki", "simplewiki"], "source_generation": "2026…"}

and ``lexical.stats`` (documents and tokens per language field), which a router needs to
score BM25 with the statistics of the whole index (:mod:`app.retrieval.router`).

Two ways to split:

* ``by="wiki"``: whole wikis per shard. ``shards=None`` gives one shard per wiki; a smaller
  number groups the wikis, largest first into the shard with the fewest passages.
* ``by="hash"``: pages spread by ``sha256("{wiki}:{page_id}")`` modulo ``shards`` (every wiki
  spread over every shard).

Nothing is re-embedded when the source index is exact (``Flat``): the vectors are read back
from its FAISS index (and its incremental-update delta). For other index types the vectors
come from the source's embedding cache (the model only embeds what the cache lacks), and each
shard trains its own quantiser. The store keeps the source's row ids, which are the ids of the
dense and lexical indexes, so a passage has the same id in every shard and in the source. The
lexical index is rebuilt per shard from the stored passages.

Usage::

    >>> source, target = Path("var/index"), Path("var/shards")  # doctest: +SKIP
    >>> report = split_index(source, target, by="hash", shards=2)  # doctest: +SKIP
    >>> [(s.path.name, s.indexed_passages) for s in report.shards]  # doctest: +SKIP
    [('shard-0', 4335), ('shard-1', 4778)]
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from indexer.dense import DenseIndex, default_index_factory
from indexer.embedding import EmbeddingCache, EmbeddingModel, embed_with_cache, open_embedder
from indexer.errors import WikiragError
from indexer.generation import DENSE_FILE, LEXICAL_DIR, STORE_FILE, IndexLayout
from indexer.lexical import LexicalIndex, analyzer_group, indexed_text, lexical_doc, tokenize
from indexer.manifest import Counts, DenseRecord, LexicalStats, Manifest, ShardRecord
from indexer.store import PassageStore

log = logging.getLogger(__name__)

ShardBy = Literal["wiki", "hash"]
SHARD_PREFIX = "shard-"
_DELTA_FILE = "delta.faiss"


class ShardingError(WikiragError):
    """The split cannot be done (bad arguments, an output that exists, an empty shard…)."""

    code = "sharding-failed"


@dataclass(frozen=True, slots=True)
class ShardSummary:
    id: int
    path: Path
    generation: str
    wikis: tuple[str, ...]
    pages: int
    passages: int
    indexed_passages: int
    vectors_from: str  # "faiss" (exact copies) or "embedding-cache"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": str(self.path),
            "generation": self.generation,
            "wikis": list(self.wikis),
            "pages": self.pages,
            "passages": self.passages,
            "indexed_passages": self.indexed_passages,
            "vectors_from": self.vectors_from,
        }


@dataclass
class ShardReport:
    source_generation: str = ""
    by: str = ""
    shards: list[ShardSummary] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source_generation": self.source_generation,
            "by": self.by,
            "shards": [s.as_dict() for s in self.shards],
            "seconds": round(self.seconds, 2),
        }


# -- assignment ---------------------------------------------------------------------------


def hash_shard(wiki: str, page_id: int, shards: int) -> int:
    """The shard of a page when splitting by hash: stable across runs and machines.

    >>> hash_shard("enwiki", 736, 2), hash_shard("enwiki", 736, 3)
    (0, 2)
    """
    digest = hashlib.sha256(f"{wiki}:{page_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def group_wikis(passages_per_wiki: dict[str, int], shards: int | None) -> dict[str, int]:
    """Wiki → shard: one shard per wiki (``shards=None``), or the wikis packed into
    ``shards`` groups, largest first into the group with the fewest passages so far.

    >>> group_wikis({"enwiki": 90, "frwiki": 50, "dewiki": 40}, 2)
    {'enwiki': 0, 'frwiki': 1, 'dewiki': 1}
    """
    wikis = sorted(passages_per_wiki, key=lambda w: (-passages_per_wiki[w], w))
    if shards is None:
        return {wiki: i for i, wiki in enumerate(sorted(wikis))}
    load = [0] * shards
    assignment: dict[str, int] = {}
    for wiki in wikis:
        target = min(range(shards), key=lambda s: (load[s], s))
        assignment[wiki] = target
        load[target] += passages_per_wiki[wiki]
    return assignment


def _pages(store_path: Path) -> list[tuple[str, int]]:
    conn = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    try:
        return [(str(w), int(p)) for w, p in conn.execute("SELECT wiki, page_id FROM pages")]
    finally:
        conn.close()


def _passages_per_wiki(store_path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT wiki, COUNT(*) FROM passages GROUP BY wiki")
        counts = {str(w): int(n) for w, n in rows}
        for (wiki,) in conn.execute("SELECT wiki FROM wikis"):
            counts.setdefault(str(wiki), 0)
        return counts
    finally:
        conn.close()


def assign_pages(
    store_path: Path, by: ShardBy, shards: int | None
) -> tuple[dict[tuple[str, int], int], int, str]:
    """Every page of the store → its shard; also the number of shards and the key's
    description (recorded in each shard's manifest)."""
    pages = _pages(store_path)
    if by == "hash":
        if shards is None or shards < 1:
            raise ShardingError("--by hash needs --shards N (N ≥ 1)")
        key = f"sha256(wiki:page_id) mod {shards}"
        return {page: hash_shard(page[0], page[1], shards) for page in pages}, shards, key
    if by != "wiki":
        raise ShardingError(f"unknown split {by!r}; use 'wiki' or 'hash'")
    per_wiki = _passages_per_wiki(store_path)
    if shards is not None and not 1 <= shards <= len(per_wiki):
        raise ShardingError(
            f"--by wiki with {len(per_wiki)} wiki(s) allows 1 to {len(per_wiki)} shards, "
            f"not {shards}"
        )
    groups = group_wikis(per_wiki, shards)
    count = shards if shards is not None else len(per_wiki)
    return {page: groups[page[0]] for page in pages}, count, "wiki"


# -- one shard ------------------------------------------------------------------------------


def _subset_store(source: Path, target: Path, keep: Sequence[tuple[str, int]]) -> None:
    """Copy the store, then delete every page not in ``keep`` (with its revisions, sections
    and passages) and the wikis left without pages. Row ids are kept."""
    shutil.copyfile(source, target)
    conn = sqlite3.connect(target)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute(
            "CREATE TEMP TABLE keep (wiki TEXT, page_id INTEGER, PRIMARY KEY (wiki, page_id))"
        )
        conn.executemany("INSERT INTO keep VALUES (?, ?)", keep)
        conn.execute(
            "CREATE TEMP TABLE keep_revisions AS SELECT wiki, revision_id FROM revisions "
            "WHERE (wiki, page_id) IN (SELECT wiki, page_id FROM keep)"
        )
        conn.executescript(
            """
            DELETE FROM passages WHERE (wiki, page_id) NOT IN (SELECT wiki, page_id FROM keep);
            DELETE FROM sections
                WHERE (wiki, revision_id) NOT IN (SELECT wiki, revision_id FROM keep_revisions);
            DELETE FROM revisions WHERE (wiki, page_id) NOT IN (SELECT wiki, page_id FROM keep);
            DELETE FROM pages WHERE (wiki, page_id) NOT IN (SELECT wiki, page_id FROM keep);
            DELETE FROM aliases WHERE wiki NOT IN (SELECT DISTINCT wiki FROM pages);
            DELETE FROM wikis WHERE wiki NOT IN (SELECT DISTINCT wiki FROM pages);
            """
        )
        conn.commit()
        conn.execute("VACUUM")
    finally:
        conn.close()


def _lexical_and_ids(store: PassageStore, path: Path) -> tuple[np.ndarray, LexicalStats]:
    """Build the shard's lexical index from its stored passages; return the row ids of its
    current passages and the BM25 statistics (documents, tokens per language field)."""
    ids: list[int] = []
    tokens: Counter[str] = Counter()
    with LexicalIndex.create(path) as writer:
        for record in store.iter_current_passages():
            doc = lexical_doc(record)
            writer.add(doc)
            ids.append(record.row_id)
            tokens[analyzer_group(doc.language)] += len(tokenize(indexed_text(doc), doc.language))
    stats = LexicalStats(documents=len(ids), tokens=dict(sorted(tokens.items())))
    return np.asarray(ids, dtype=np.int64), stats


class _VectorSource:
    """Vectors of the source index by row id: read back from an exact (Flat) FAISS index,
    else from the embedding cache (embedding what it lacks)."""

    def __init__(
        self, generation_path: Path, cache_path: Path, embed_context: str, model_id: str
    ) -> None:
        main = DenseIndex.load(generation_path / DENSE_FILE, mmap=False)
        delta_path = generation_path / _DELTA_FILE
        delta = DenseIndex.load(delta_path, mmap=False) if delta_path.is_file() else None
        self.exact = main.factory_string.split(",")[-1] == "Flat"
        self.factory = main.factory_string
        self._indexes = [i for i in (delta, main) if i is not None]  # delta first: newer
        self._cache_path = cache_path
        self._embed_context = embed_context
        self.model_id = model_id  # the source's model: the cache holds its vectors
        self._embedder: EmbeddingModel | None = None

    def _reconstruct(self, row_id: int) -> np.ndarray | None:
        for dense in self._indexes:
            try:
                return np.asarray(dense.index.reconstruct(int(row_id)), dtype=np.float32)
            except RuntimeError:  # not in this index
                continue
        return None

    def vectors(self, store: PassageStore, ids: np.ndarray, dim: int) -> tuple[np.ndarray, str]:
        out = np.empty((len(ids), dim), dtype=np.float32)
        if self.exact:
            missing = []
            for i, row_id in enumerate(ids):
                vec = self._reconstruct(int(row_id))
                if vec is None:
                    missing.append(int(row_id))
                else:
                    out[i] = vec
            if not missing:
                return out, "faiss"
            log.info("%d vectors not in the source FAISS index: using the cache", len(missing))
        return self._from_cache(store, ids, out), "embedding-cache"

    def _from_cache(self, store: PassageStore, ids: np.ndarray, out: np.ndarray) -> np.ndarray:
        from indexer.embedding import embedding_text

        if self._embedder is None:
            self._embedder = open_embedder(self.model_id)
        records = store.passages_by_rows([int(i) for i in ids])
        texts = (embedding_text(records[int(i)], self._embed_context) for i in ids)
        row = 0
        with EmbeddingCache(self._cache_path) as cache:
            for batch in embed_with_cache(self._embedder, cache, texts, progress=False):
                out[row : row + len(batch)] = batch
                row += len(batch)
        return out


def _shard_factory(source: _VectorSource, n: int, factory: str | None) -> str:
    if factory:
        return factory
    if source.exact:
        return source.factory.split(",")[-1]
    return default_index_factory(n)


# -- the split ------------------------------------------------------------------------------


def split_index(
    source_dir: Path,
    out_dir: Path,
    *,
    by: ShardBy = "hash",
    shards: int | None = None,
    factory: str | None = None,
) -> ShardReport:
    """Split the published index in ``source_dir`` into ``out_dir/shard-<i>`` (each a
    published index). ``out_dir`` must not hold shards already."""
    started = time.perf_counter()
    source = IndexLayout(source_dir).current()
    out_dir = Path(out_dir)
    existing = sorted(out_dir.glob(f"{SHARD_PREFIX}*")) if out_dir.exists() else []
    if existing:
        raise ShardingError(f"{out_dir} already holds shards ({existing[0].name}…); use a new one")
    store_path = source.file(STORE_FILE)
    assignment, count, key = assign_pages(store_path, by, shards)
    per_shard: dict[int, list[tuple[str, int]]] = {i: [] for i in range(count)}
    for page, shard in sorted(assignment.items()):
        per_shard[shard].append(page)
    manifest = source.manifest
    vectors = _VectorSource(
        source.path,
        IndexLayout(source_dir).embedding_cache_path,
        manifest.model.embed_context,
        manifest.model.model_id,
    )
    dim = manifest.model.dimension or manifest.dense.dim
    report = ShardReport(source_generation=source.generation, by=by)
    for shard_id in range(count):
        report.shards.append(
            _build_shard(
                shard_id, count, by, key, per_shard[shard_id], out_dir, source.generation,
                manifest, store_path, vectors, dim, factory,
            )
        )  # fmt: skip
    report.seconds = time.perf_counter() - started
    return report


def _build_shard(
    shard_id: int,
    count: int,
    by: str,
    key: str,
    pages: list[tuple[str, int]],
    out_dir: Path,
    source_generation: str,
    manifest: Manifest,
    store_path: Path,
    vectors: _VectorSource,
    dim: int,
    factory: str | None,
) -> ShardSummary:
    layout = IndexLayout(out_dir / f"{SHARD_PREFIX}{shard_id}")
    with layout.lock(), layout.new_generation() as work:
        _subset_store(store_path, work.path / STORE_FILE, pages)
        store = PassageStore(work.path / STORE_FILE)
        try:
            ids, stats = _lexical_and_ids(store, work.path / LEXICAL_DIR)
            if len(ids) == 0:
                raise ShardingError(f"shard {shard_id} would hold no passages; use fewer shards")
            vecs, origin = vectors.vectors(store, ids, dim)
            chosen = _shard_factory(vectors, len(ids), factory)
            dense = DenseIndex.build(
                _batches(ids, vecs), dim=dim, factory=chosen, n_hint=len(ids), train_sample=vecs
            )
            dense.save(work.path / DENSE_FILE)
            store.finalize()
            counts = store.counts()
            wikis = tuple(sorted(site.wiki for site in store.wikis()))
        finally:
            store.close()
        shard_manifest = manifest.replace(
            built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            dense=DenseRecord.of(dense.params),
            lexical=dataclasses.replace(manifest.lexical, stats=stats),
            counts=Counts.of(counts, len(ids)),
            shard=ShardRecord(
                id=shard_id,
                of=count,
                by=by,
                key=key,
                wikis=wikis,
                source_generation=source_generation,
            ),
        )
        generation = layout.publish(work, shard_manifest)
    log.info("shard %d/%d: %d passages in %s", shard_id, count, len(ids), generation.path)
    return ShardSummary(
        id=shard_id,
        path=layout.root,
        generation=generation.generation,
        wikis=wikis,
        pages=counts["pages"],
        passages=counts["passages"],
        indexed_passages=len(ids),
        vectors_from=origin,
    )


def _batches(
    ids: np.ndarray, vectors: np.ndarray, size: int = 65_536
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size], vectors[start : start + size]
