"""Query embedding through ONNX Runtime: the same vectors as PyTorch, in half the CPU time.

A search request embeds one short query (10–20 tokens). For that shape PyTorch spends most of
its time in per-operator overhead: all-MiniLM-L6-v2 took 13.5 ms of CPU per query here, and
ONNX Runtime running the same graph took 6.1 ms, with vectors equal to 2e-7
(``benchmarks/RESULTS.md``, query-encoder section). The sentence-transformers model stays the
source of truth: its tokenizer prepares the input, and the exported graph is its own
transformer followed by its own pooling (mean or CLS) and L2 normalisation.

:meth:`OnnxQueryEncoder.open` exports the loaded model once into a cache directory (a file
named after the model, torch and the pooling mode, written to a temporary name and renamed, so
two processes starting together cannot see half a file), then **verifies** it: probe texts,
short and long, must give vectors within ``1e-5`` of PyTorch's. A model that cannot be exported
(another architecture, another pooling, a missing ``onnxruntime``), a cached file that does not
load, or a verification that fails returns ``None`` with the reason in the log, and the caller
keeps using PyTorch — never a different vector.

Usage::

    >>> model = Embedder().load()                                        # doctest: +SKIP
    >>> cache = Path("var/index/cache/onnx")                             # doctest: +SKIP
    >>> encoder = OnnxQueryEncoder.open(model, cache, threads=1)         # doctest: +SKIP
    >>> encoder.encode("Who discovered penicillin?").shape               # doctest: +SKIP
    (384,)
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "PROBE_TEXTS",
    "TOLERANCE",
    "OnnxQueryEncoder",
    "UnsupportedModel",
    "default_onnx_cache_dir",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

TOLERANCE = 1e-5
"""Largest difference allowed between an ONNX vector component and PyTorch's."""

PROBE_TEXTS: tuple[str, ...] = (
    "Who discovered penicillin?",
    "In what country is Normandy located?",
    "Quelle est la capitale de l'Australie ?",
    "Какая самая длинная река в Европе?",
    "wiki " * 400,  # longer than any model's max_seq_length: exercises truncation
)
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def default_onnx_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/wikirag/onnx``, or ``~/.cache/wikirag/onnx``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wikirag" / "onnx"


class UnsupportedModel(Exception):
    """The model's module pipeline is not one this exporter reproduces exactly."""


def _pooling_mode(model: SentenceTransformer) -> str:
    """``"mean"`` or ``"cls"``: the pooling of a Transformer → Pooling [→ Normalize] model."""
    names = [type(module).__name__ for module in model]
    if names[:2] != ["Transformer", "Pooling"] or names[2:] not in ([], ["Normalize"]):
        raise UnsupportedModel(f"module pipeline {' → '.join(names)}")
    pooling: Any = model[1]
    config = pooling.get_config_dict()
    mode = config.get("pooling_mode")
    if mode is None:  # sentence-transformers < 6: one boolean per mode
        on = [key for key, value in config.items() if key.startswith("pooling_mode_") and value]
        mode = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(
            on[0] if len(on) == 1 else ""
        )
    if mode not in ("mean", "cls"):
        raise UnsupportedModel(f"pooling {config}")
    return str(mode)


def _cache_name(model_id: str, mode: str) -> str:
    import onnxruntime
    import torch

    key = f"{model_id}|{mode}|torch {torch.__version__}|ort {onnxruntime.__version__}|v1"
    return f"query-{hashlib.sha256(key.encode()).hexdigest()[:20]}.onnx"


def _export(model: SentenceTransformer, mode: str, target: Path) -> None:
    """Write the transformer + pooling + normalisation graph to ``target`` atomically."""
    import torch

    transformer: Any = model[0].auto_model
    transformer.eval()

    class QueryGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(
            self, input_ids: Any, attention_mask: Any, token_type_ids: Any
        ) -> Any:  # pragma: no cover - traced, not called
            out = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            hidden = out[0]
            if mode == "cls":
                pooled = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    sample = _features(model, ["a sample query", "another one"])
    args = tuple(torch.from_numpy(sample[name]) for name in _INPUTS)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".export-", suffix=".onnx")
    os.close(fd)
    try:
        axes = {name: {0: "batch", 1: "tokens"} for name in _INPUTS}
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes about shape-dependent code
            torch.onnx.export(
                QueryGraph().eval(),
                args,
                tmp,
                input_names=list(_INPUTS),
                output_names=["embedding"],
                dynamic_axes={**axes, "embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _features(model: SentenceTransformer, texts: Sequence[str]) -> dict[str, npt.NDArray[Any]]:
    """The tokenizer's arrays for ``texts``, exactly as sentence-transformers prepares them
    (same truncation at ``max_seq_length``)."""
    prepare: Callable[[list[str]], dict[str, Any]] = (
        getattr(model, "preprocess", None) or model.tokenize
    )
    features = prepare(list(texts))
    arrays = {}
    for name in _INPUTS:
        value = features.get(name)
        if value is None:
            if name != "token_type_ids":
                raise UnsupportedModel(f"the tokenizer gives no {name}")
            value = np.zeros_like(np.asarray(features["input_ids"]))
        arrays[name] = np.ascontiguousarray(np.asarray(value), dtype=np.int64)
    return arrays


class OnnxQueryEncoder:
    """A verified ONNX Runtime session computing a sentence-transformers model's query vectors.

    Build it with :meth:`open`. ``encode`` is thread-safe (ONNX Runtime sessions are) and, like
    the PyTorch path, returns one float32 unit vector.
    """

    def __init__(self, model: SentenceTransformer, path: Path, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self._model = model
        self.path = path
        self._session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    @classmethod
    def open(
        cls,
        model: SentenceTransformer,
        model_id: str,
        cache_dir: Path,
        *,
        threads: int = 1,
        reference: Callable[[str], FloatArray] | None = None,
    ) -> OnnxQueryEncoder | None:
        """Export (or reuse) and verify the ONNX graph of ``model``; ``None`` if it cannot be
        used, with the reason logged. ``reference`` is the PyTorch query encoder the result
        must match (default: ``model.encode`` normalised)."""
        try:
            mode = _pooling_mode(model)
            import onnxruntime  # noqa: F401
        except (UnsupportedModel, ImportError) as exc:
            log.info("query encoder: PyTorch (no ONNX export for this model: %s)", exc)
            return None
        path = cache_dir / _cache_name(model_id, mode)
        started = time.perf_counter()
        encoder: OnnxQueryEncoder | None = None
        for attempt in ("cached", "exported"):
            try:
                if attempt == "exported" or not path.exists():
                    attempt = "exported"
                    _export(model, mode, path)
                encoder = cls(model, path, threads)
                break
            except UnsupportedModel as exc:
                log.info("query encoder: PyTorch (no ONNX export for this model: %s)", exc)
                return None
            except Exception as exc:  # a corrupt cached file, an exporter failure
                if attempt == "exported":
                    log.warning("query encoder: PyTorch (ONNX export failed: %s)", exc)
                    return None
                log.warning("ONNX query graph %s does not load (%s); exporting it again", path, exc)
        assert encoder is not None
        worst = encoder.verify(reference or _torch_reference(model))
        if worst > TOLERANCE:
            log.warning(
                "query encoder: PyTorch (ONNX vectors differ from PyTorch's by %.2g > %.0e)",
                worst,
                TOLERANCE,
            )
            return None
        log.info(
            "query encoder: ONNX Runtime (%s, %d thread(s), max difference from PyTorch %.1e, "
            "ready in %.1f s)",
            path.name,
            threads,
            worst,
            time.perf_counter() - started,
        )
        return encoder

    def verify(self, reference: Callable[[str], FloatArray]) -> float:
        """The largest component difference from ``reference`` over :data:`PROBE_TEXTS`."""
        return max(float(np.abs(self.encode(text) - reference(text)).max()) for text in PROBE_TEXTS)

    def encode(self, text: str) -> FloatArray:
        """Embed one query → float32 unit vector ``(dim,)``."""
        vector: FloatArray = self.encode_batch([text])[0]
        return vector

    def encode_batch(self, texts: Sequence[str]) -> FloatArray:
        """Embed several queries in one run → ``(len(texts), dim)``."""
        (vectors,) = self._session.run(["embedding"], _features(self._model, texts))
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _torch_reference(model: SentenceTransformer) -> Callable[[str], FloatArray]:
    def encode(text: str) -> FloatArray:
        vectors = model.encode([text], convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(vectors[0], dtype=np.float32)

    return encode
