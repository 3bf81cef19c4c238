"""The embedding cache and the streaming embedder of a build.

:class:`EmbeddingCache` is a SQLite file mapping ``(model_id, sha256(text))`` to a float32
vector, so that re-indexing unchanged passages costs a lookup instead of a forward pass.
:func:`embed_with_cache` streams any iterable of texts through the cache and the model: batch
by batch, it looks the batch up, encodes only the misses, stores them, and yields the batch's
vectors in input order. Memory stays constant whatever the corpus size."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexer.embedding.base import EmbeddingModel, FloatArray, ModelInfo

log = logging.getLogger(__name__)


def cache_key(info: ModelInfo) -> str:
    """The cache's model key for vectors of ``info``: its id, and its weights revision when it
    has one, so that vectors of other weights under the same id are never reused (the key of
    a model without a revision is its id, as in caches written before revisions existed).

    >>> cache_key(ModelInfo("m", 384, True, 256)), cache_key(ModelInfo("m", 384, True, 256, "r2"))
    ('m', 'm@r2')
    """
    return f"{info.model_id}@{info.revision}" if info.revision else info.model_id


def text_hash(text: str) -> str:
    """The sha256 hex digest of ``text`` encoded as UTF-8: the cache key of a text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """A SQLite file: ``(model_id, sha256 of text)`` → float32 vector.

    Vectors are stored as little-endian float32 blobs, so a hit returns exactly the bytes that
    were stored. The database runs in WAL mode, so readers in other processes are not blocked
    by a writer. One connection is shared under a lock: safe for several threads of one
    process, with writes serialised (one writer at a time is what SQLite allows anyway).
    Usable as a context manager.
    """

    _CHUNK = 500  # host parameters per IN (...) query, well under SQLite's limit

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS embeddings ("
            " model_id TEXT NOT NULL,"
            " text_hash TEXT NOT NULL,"
            " dim INTEGER NOT NULL,"
            " vector BLOB NOT NULL,"
            " PRIMARY KEY (model_id, text_hash)"
            ") WITHOUT ROWID"
        )

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"embedding cache {self.path} is closed")
        return self._conn

    def get_many(self, model_id: str, text_hashes: Sequence[str]) -> dict[str, FloatArray]:
        """Look up vectors; returns ``{text_hash: vector}`` for the hashes found (read-only
        arrays)."""
        found: dict[str, FloatArray] = {}
        unique = list(dict.fromkeys(text_hashes))
        with self._lock:
            conn = self._connection()
            for start in range(0, len(unique), self._CHUNK):
                chunk = unique[start : start + self._CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    "SELECT text_hash, dim, vector FROM embeddings"
                    f" WHERE model_id = ? AND text_hash IN ({marks})",
                    [model_id, *chunk],
                ).fetchall()
                for key, dim, blob in rows:
                    vec = np.frombuffer(blob, dtype="<f4")
                    if vec.shape != (dim,):
                        log.warning("corrupt cache row %s/%s ignored", model_id, key)
                        continue
                    found[key] = vec.astype(np.float32, copy=False)
        return found

    def put_many(self, model_id: str, items: Sequence[tuple[str, FloatArray]]) -> None:
        """Store ``(text_hash, vector)`` pairs in one transaction (replacing existing rows)."""
        if not items:
            return
        rows: list[tuple[str, str, int, bytes]] = []
        for key, vec in items:
            arr = np.asarray(vec, dtype="<f4")
            if arr.ndim != 1:
                raise ValueError(f"expected a 1-d vector for {key}, got shape {arr.shape}")
            rows.append((model_id, key, int(arr.shape[0]), arr.tobytes()))
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT OR REPLACE INTO embeddings (model_id, text_hash, dim, vector)"
                    " VALUES (?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def count(self, model_id: str | None = None) -> int:
        """Number of cached vectors, for one model or all."""
        with self._lock:
            conn = self._connection()
            if model_id is None:
                row = conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()
            else:
                row = conn.execute(
                    "SELECT COUNT(*) FROM embeddings WHERE model_id = ?", (model_id,)
                ).fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class EmbedStats:
    """Counters of one :func:`embed_with_cache` run, updated in place while it streams.

    ``hits``/``misses`` count input texts served from the cache or not; ``encoded`` counts the
    distinct texts actually run through the model (duplicates within a batch are encoded
    once); ``seconds`` is the time spent inside the pipeline (not in the consumer),
    ``encode_seconds`` the part of it spent in the model.
    """

    hits: int = 0
    misses: int = 0
    encoded: int = 0
    seconds: float = 0.0
    encode_seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.hits + self.misses

    @property
    def passages_per_second(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "encoded": self.encoded,
            "seconds": round(self.seconds, 3),
            "encode_seconds": round(self.encode_seconds, 3),
            "passages_per_second": round(self.passages_per_second, 2),
        }

    def __str__(self) -> str:
        return json.dumps(self.as_dict())


class EmbedStream(Iterator[FloatArray]):
    """The iterator returned by :func:`embed_with_cache`: yields one ``(n, dim)`` float32 array
    per input batch, rows in input order; ``stats`` is updated as it goes."""

    def __init__(self, inner: Iterator[FloatArray], stats: EmbedStats) -> None:
        self._inner = inner
        self.stats = stats

    def __iter__(self) -> EmbedStream:
        return self

    def __next__(self) -> FloatArray:
        return next(self._inner)


def embed_with_cache(
    embedder: EmbeddingModel,
    cache: EmbeddingCache,
    texts: Iterable[str],
    *,
    batch_size: int = 256,
    progress: bool = True,
    stats: EmbedStats | None = None,
) -> EmbedStream:
    """Stream ``texts`` through the cache and the model, ``batch_size`` texts at a time.

    For each batch: hash the texts, fetch the cached vectors of this model, encode the misses
    (each distinct text once), store them, and yield the batch's vectors ``(len(batch), dim)``
    in input order. Only one batch is held at a time, so ``texts`` may be a generator over a
    corpus of any size. A tqdm bar (stderr) shows passages/s and the hit count; its total is
    known when ``texts`` has a length. Pass ``stats`` to accumulate into an existing
    :class:`EmbedStats`; the returned stream's ``.stats`` is that object.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    run_stats = stats if stats is not None else EmbedStats()
    total = len(texts) if isinstance(texts, Sequence) else None
    return EmbedStream(
        _embed_batches(embedder, cache, iter(texts), batch_size, progress, total, run_stats),
        run_stats,
    )


def _embed_batches(
    embedder: EmbeddingModel,
    cache: EmbeddingCache,
    texts: Iterator[str],
    batch_size: int,
    progress: bool,
    total: int | None,
    stats: EmbedStats,
) -> Iterator[FloatArray]:
    # a backend whose id does not pin its weights names its key (E5Embedder: id and digest);
    # otherwise the id, so that a run whose texts are all cached never loads the model
    model_id = getattr(embedder, "cache_key", None) or embedder.model_id
    bar = tqdm(
        total=total,
        disable=not progress,
        unit="passage",
        unit_scale=True,
        desc="embedding",
        smoothing=0.1,
    )
    try:
        while True:
            started = time.perf_counter()
            batch = list(itertools.islice(texts, batch_size))
            if not batch:
                break
            hashes = [text_hash(t) for t in batch]
            found = cache.get_many(model_id, hashes)
            # distinct missing texts, in first-seen order
            missing: dict[str, str] = {}
            for key, text in zip(hashes, batch, strict=True):
                if key not in found and key not in missing:
                    missing[key] = text
            if missing:
                enc_started = time.perf_counter()
                vecs = embedder.encode(list(missing.values()))
                stats.encode_seconds += time.perf_counter() - enc_started
                new_items = list(zip(missing.keys(), vecs, strict=True))
                cache.put_many(model_id, new_items)
                found.update(new_items)
                stats.encoded += len(missing)
            # from the vectors themselves: a batch of hits never loads the model
            dim = next(iter(found.values())).shape[0]
            out = np.empty((len(batch), dim), dtype=np.float32)
            n_hits = 0
            for row, key in enumerate(hashes):
                out[row] = found[key]
                if key not in missing:
                    n_hits += 1
            stats.hits += n_hits
            stats.misses += len(batch) - n_hits
            stats.seconds += time.perf_counter() - started
            bar.update(len(batch))
            bar.set_postfix(hits=stats.hits, misses=stats.misses, refresh=False)
            yield out
    finally:
        bar.close()
        log.info("embedding done: %s", stats)
