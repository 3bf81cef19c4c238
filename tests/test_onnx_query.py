"""The ONNX query encoder: same vectors as PyTorch, cached export, and a safe fallback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from app.retrieval.ranking import SearchMode, SearchRequest
from app.retrieval.retriever import HybridRetriever, LoadedIndex, serving_embedder
from indexer.embedding import Embedder
from indexer.embedding.onnx import TOLERANCE, OnnxQueryEncoder
from tests.conftest import SAMPLES
from tests.test_api import shared_embedder, shared_index


def _questions(n: int) -> list[str]:
    path = SAMPLES / "squad" / "squad-dev-questions.jsonl"
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line)["question"] for _, line in zip(range(n), lines, strict=False)]


@pytest.fixture(scope="module")
def onnx_embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    cache = tmp_path_factory.mktemp("onnx-cache")
    embedder = Embedder(threads=1, query_encoder="onnx", onnx_cache_dir=cache)
    assert embedder.query_backend == "onnx"
    return embedder


def test_onnx_query_vectors_equal_pytorch(onnx_embedder: Embedder) -> None:
    torch_embedder = shared_embedder()
    queries = [*_questions(40), "Ÿ", "🙂 emoji only", "naïve café", "x" * 3000, "  spaced  "]
    for query in queries:
        onnx = onnx_embedder.encode_query(query)
        reference = torch_embedder.encode_query(query)
        assert onnx.dtype == np.float32 and onnx.shape == reference.shape
        assert float(np.abs(onnx - reference).max()) <= TOLERANCE, query
        assert abs(float(np.linalg.norm(onnx)) - 1.0) < 1e-5


def test_search_results_are_the_same_with_either_encoder(
    onnx_embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    index = LoadedIndex.open(shared_index(tmp_path_factory))
    try:
        with_torch = HybridRetriever(index, shared_embedder())
        with_onnx = HybridRetriever(index, onnx_embedder)
        queries = ["When did Einstein receive the Nobel Prize?", "capitale de la France", "река"]
        for query in [*queries, *_questions(10)]:
            for mode in (SearchMode.HYBRID, SearchMode.DENSE):
                request = SearchRequest(query, k=10, mode=mode)
                a = with_torch.search(request)
                b = with_onnx.search(request)
                assert [h.passage.passage_id for h in a] == [h.passage.passage_id for h in b]
                for x, y in zip(a, b, strict=True):
                    assert x.scores["fused"] == pytest.approx(y.scores["fused"], abs=1e-5)
    finally:
        index.close()


def test_export_is_cached_and_a_corrupt_cache_is_replaced(tmp_path: Path) -> None:
    first = Embedder(threads=1, query_encoder="onnx", onnx_cache_dir=tmp_path)
    assert first.query_backend == "onnx"
    (exported,) = tmp_path.glob("query-*.onnx")
    stamp = exported.stat().st_mtime_ns
    second = Embedder(threads=1, query_encoder="onnx", onnx_cache_dir=tmp_path)
    assert second.query_backend == "onnx"
    assert exported.stat().st_mtime_ns == stamp  # reused, not exported again

    exported.write_bytes(b"\0not an onnx graph" * 100)
    third = Embedder(threads=1, query_encoder="onnx", onnx_cache_dir=tmp_path)
    assert third.query_backend == "onnx"  # exported again
    assert exported.stat().st_size > 1_000_000
    assert [p.name for p in tmp_path.iterdir()] == [exported.name]  # no temporary files left
    query = "Who wrote the theory of relativity?"
    assert np.allclose(third.encode_query(query), first.encode_query(query), atol=TOLERANCE)


def test_a_graph_that_disagrees_with_pytorch_is_refused(tmp_path: Path) -> None:
    model = shared_embedder().load()
    ok = OnnxQueryEncoder.open(model, "minilm", tmp_path)
    assert ok is not None

    def shifted(text: str) -> np.ndarray:
        return shared_embedder().encode_query(text) + np.float32(1e-3)

    assert OnnxQueryEncoder.open(model, "minilm", tmp_path, reference=shifted) is None


def test_unsupported_pooling_falls_back_to_pytorch(tmp_path: Path) -> None:
    """A model whose pooling the exporter does not reproduce (max pooling) keeps PyTorch and
    gives PyTorch's vectors."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling

    base = shared_embedder().load()
    model = SentenceTransformer(modules=[base[0], Pooling(384, pooling_mode="max")], device="cpu")
    model_dir = tmp_path / "max-pooled"
    model.save(str(model_dir))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    embedder = Embedder(
        str(model_dir), threads=1, query_encoder="onnx", onnx_cache_dir=tmp_path / "c"
    )
    assert embedder.query_backend == "torch"
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())
    vector = embedder.encode_query("max pooled")
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_serving_embedder_follows_the_setting(tmp_path: Path) -> None:
    assert serving_embedder(None, 1).query_encoder == "torch"
    chosen = serving_embedder(None, 1, query_encoder="onnx", onnx_cache_dir=tmp_path)
    assert chosen.query_encoder == "onnx"
    with pytest.raises(ValueError, match="query_encoder"):
        Embedder(query_encoder="tensorrt")
