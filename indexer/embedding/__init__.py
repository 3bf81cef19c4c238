"""Passage and query embeddings, in the order a build uses them.

* :mod:`~indexer.embedding.model` — :class:`Embedder` (sentence-transformers, offline, loaded
  lazily) and :class:`ModelInfo` (what defines the vector space).
* :mod:`~indexer.embedding.onnx` — the verified ONNX export of the query encoder.
* :mod:`~indexer.embedding.cache` — :class:`EmbeddingCache` (SQLite, by model and text hash)
  and :func:`embed_with_cache`, which streams texts through the cache and the model.
* :mod:`~indexer.embedding.text` — :func:`embedding_text`, the text a passage is embedded as.

All vectors are float32 and L2-normalised, so inner product equals cosine similarity.
"""

from indexer.embedding.cache import (
    EmbeddingCache,
    EmbedStats,
    EmbedStream,
    embed_with_cache,
    text_hash,
)
from indexer.embedding.model import (
    DEFAULT_MODEL,
    DEFAULT_MODEL_ID,
    Embedder,
    FloatArray,
    ModelInfo,
    default_model_path,
    model_dir_fingerprint,
)
from indexer.embedding.text import Embeddable, embedding_text

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_ID",
    "EmbedStats",
    "EmbedStream",
    "Embeddable",
    "Embedder",
    "EmbeddingCache",
    "FloatArray",
    "ModelInfo",
    "default_model_path",
    "embed_with_cache",
    "embedding_text",
    "model_dir_fingerprint",
    "text_hash",
]
