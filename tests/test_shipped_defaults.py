"""The service as shipped embeds queries with ONNX Runtime, not the PyTorch model that the
in-process API tests inject (``create_app(..., embedder=...)``): here nothing is injected.

``Settings`` defaults to ``query_encoder="onnx"`` with ``onnx_cache_dir`` unset, which resolves
to ``$XDG_CACHE_HOME/wikirag/onnx``; these tests point ``XDG_CACHE_HOME`` at a directory of the
session (one export, shared by the in-process service and the real ``wikirag serve``) and check
that

- the service built from those defaults runs the verified ONNX graph (its embedder's backend,
  the exported file in the default directory, the retriever's embedder);
- its results over HTTP rank the same passages as the PyTorch path, with scores within the
  encoder's tolerance, and its dense scores are *bitwise* those of the ONNX encoder (and not
  those of PyTorch, which differ in the last bits): the answers came through ONNX;
- a real ``wikirag serve`` without encoder flags logs ONNX Runtime as its query encoder and
  answers with the same ONNX scores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.retrieval.ranking import SearchMode, SearchRequest
from app.retrieval.retriever import HybridRetriever, LoadedIndex
from app.settings import Settings
from indexer.embedding import DEFAULT_MODEL_ID
from indexer.embedding.onnx import TOLERANCE, OnnxQueryEncoder, default_onnx_cache_dir
from tests.live_server import start_server, stop_server
from tests.test_api import copy_index, service_settings, shared_embedder, shared_index

pytestmark = pytest.mark.slow

QUERIES = (
    "When did Einstein receive the Nobel Prize?",
    "theory of relativity",
    "белка",
    "learning resources about physics",
    "Where was Albert Einstein born?",
)
MODES = (SearchMode.DENSE, SearchMode.HYBRID)
ENCODER_SETTINGS = ("WIKIRAG_QUERY_ENCODER", "WIKIRAG_ONNX_CACHE_DIR")


@pytest.fixture(scope="module")
def xdg_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's ``XDG_CACHE_HOME``: where the default ONNX cache directory lands."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_index(tmp_path_factory)


@pytest.fixture(scope="module")
def shipped(
    index_dir: Path, xdg_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Any]]:
    """The in-process service from ``Settings`` defaults for the encoder, no embedder given."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("XDG_CACHE_HOME", str(xdg_cache))
        for name in ENCODER_SETTINGS:
            env.delenv(name, raising=False)
        settings = service_settings(index_dir, tmp_path_factory.mktemp("shipped"))
        assert settings.query_encoder == "onnx" and settings.onnx_cache_dir is None
        assert default_onnx_cache_dir() == xdg_cache / "wikirag" / "onnx"
        app = create_app(settings)
        client = TestClient(app)
        client.__enter__()  # the lifespan builds the embedder here, under this environment
    try:
        yield client, app.state.services
    finally:
        client.__exit__(None, None, None)


def _search(post: Any, query: str, mode: SearchMode) -> list[dict[str, Any]]:
    response = post("/v1/search", json={"query": query, "k": 10, "mode": mode.value})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    assert len(results) == 10, query
    return results


def _reference(
    index_dir: Path, encode: Callable[[str], np.ndarray]
) -> dict[tuple[str, SearchMode], list[Any]]:
    """``(query, mode) → hits`` of an in-process retriever, the query vectors by ``encode``."""
    embedder = shared_embedder()
    index = LoadedIndex.open(index_dir, embedder.info)
    try:
        retriever = HybridRetriever(index, embedder)
        return {
            (query, mode): retriever.search(SearchRequest(query, k=10, mode=mode), encode(query))
            for query in QUERIES
            for mode in MODES
        }
    finally:
        index.close()


@pytest.fixture(scope="module")
def references(
    index_dir: Path, xdg_cache: Path
) -> dict[str, dict[tuple[str, SearchMode], list[Any]]]:
    """The same searches with PyTorch's query vectors, and with those of an ONNX encoder of
    the test's own (the export the service caches, one thread like the service's)."""
    model = shared_embedder().load()
    onnx = OnnxQueryEncoder.open(model, DEFAULT_MODEL_ID, xdg_cache / "wikirag" / "onnx")
    assert onnx is not None
    return {
        "torch": _reference(index_dir, shared_embedder().encode_query),
        "onnx": _reference(index_dir, onnx.encode),
    }


def test_settings_ship_the_onnx_encoder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENCODER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    defaults = Settings()
    assert defaults.query_encoder == "onnx" and defaults.onnx_cache_dir is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_onnx_cache_dir() == tmp_path / "wikirag" / "onnx"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_onnx_cache_dir() == Path.home() / ".cache" / "wikirag" / "onnx"


def test_the_shipped_service_embeds_queries_with_onnx(
    shipped: tuple[TestClient, Any], xdg_cache: Path
) -> None:
    client, services = shipped
    embedder = services.embedder
    assert embedder is not shared_embedder()
    assert embedder.query_encoder == "onnx" and embedder.query_backend == "onnx"
    serving = services.reloader.current
    assert serving is not None and serving.retriever.embedder is embedder
    # the export was written to the default cache directory, under the session's XDG home
    exported = sorted((xdg_cache / "wikirag" / "onnx").iterdir())
    assert len(exported) == 1 and exported[0].name.startswith("query-")
    assert exported[0].suffix == ".onnx" and exported[0].stat().st_size > 1_000_000
    assert client.get("/readyz").json()["status"] == "ready"


def test_shipped_results_match_pytorch_and_come_from_onnx(
    shipped: tuple[TestClient, Any],
    references: dict[str, dict[tuple[str, SearchMode], list[Any]]],
) -> None:
    client, _ = shipped
    bitwise_torch = 0
    for query in QUERIES:
        for mode in MODES:
            results = _search(client.post, query, mode)
            torch_hits = references["torch"][(query, mode)]
            onnx_hits = references["onnx"][(query, mode)]
            ids = [r["passage_id"] for r in results]
            assert ids == [h.passage.passage_id for h in torch_hits], (query, mode)
            assert ids == [h.passage.passage_id for h in onnx_hits], (query, mode)
            for result, torch_hit, onnx_hit in zip(results, torch_hits, onnx_hits, strict=True):
                for component in ("dense", "fused"):
                    got = result["scores"][component]
                    assert got == pytest.approx(torch_hit.scores[component], abs=TOLERANCE)
                    assert got == pytest.approx(onnx_hit.scores[component], abs=1e-7)
                # the cosine of the query vector the service computed: ONNX's, to the bit
                assert result["scores"]["dense"] == onnx_hit.scores["dense"], (query, result)
                bitwise_torch += result["scores"]["dense"] == torch_hit.scores["dense"]
    compared = len(QUERIES) * len(MODES) * 10
    print(f"\n{compared - bitwise_torch}/{compared} dense scores differ from PyTorch's bits")
    assert bitwise_torch < compared  # else these queries cannot tell the encoders apart


def test_wikirag_serve_without_encoder_flags_serves_with_onnx(
    index_dir: Path,
    xdg_cache: Path,
    references: dict[str, dict[tuple[str, SearchMode], list[Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ENCODER_SETTINGS:
        monkeypatch.delenv(name, raising=False)  # nothing but the shipped defaults
    (exported,) = (xdg_cache / "wikirag" / "onnx").iterdir()  # by the reference encoder
    own = copy_index(index_dir, tmp_path / "index")
    log = tmp_path / "serve.log"
    proc, url = start_server(own, log, env={"XDG_CACHE_HOME": str(xdg_cache)})
    as_torch = 0
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            for query in QUERIES:
                results = _search(client.post, query, SearchMode.DENSE)
                onnx_hits = references["onnx"][(query, SearchMode.DENSE)]
                torch_hits = references["torch"][(query, SearchMode.DENSE)]
                assert [r["passage_id"] for r in results] == [
                    h.passage.passage_id for h in onnx_hits
                ]
                dense = [r["scores"]["dense"] for r in results]
                assert dense == [h.scores["dense"] for h in onnx_hits], query
                as_torch += dense == [h.scores["dense"] for h in torch_hits]
    finally:
        stop_server(proc)
    text = log.read_text()
    assert f"query encoder: ONNX Runtime ({exported.name}, 1 thread(s)" in text, text
    assert "query encoder: PyTorch" not in text
    assert [p.name for p in exported.parent.iterdir()] == [exported.name]  # reused, not redone
    assert os.environ.get("WIKIRAG_QUERY_ENCODER") is None
    assert as_torch == 0  # not one query's scores are PyTorch's, bit for bit
