"""Sharded serving, end to end: the tiny index of ``test_api.py`` split into shards
(:mod:`indexer.sharding`), two real ``wikirag serve --shard`` processes behind a real
``wikirag serve --router`` process on loopback, and the router's answers compared with the
unsharded index's (ids, order, scores), then one shard killed with SIGKILL.

The router runs with ``WIKIRAG_CANDIDATES=8``, fewer than the passages a shard holds, so
that the global-BM25 bound and the follow-up requests of :mod:`app.retrieval.router` are exercised
(with 100 candidates each shard would return every match and the merge would be trivially
complete). The reference is the unsharded index served the same way (same candidate
count, same query encoder), so that the query embeddings are identical.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import httpx
import pytest

from app.retrieval.retriever import LoadedIndex
from app.retrieval.router import bm25, fieldnorm, term_counts
from indexer.build import BuildOptions, rebuild_index
from indexer.dense import DenseIndex
from indexer.generation import IndexLayout
from indexer.ingest import IngestOptions
from indexer.lexical import LexicalIndex, analyzer_group, indexed_text, tokenize
from indexer.sharding import ShardingError, hash_shard, split_index
from tests.conftest import ROOT
from tests.live_server import free_port
from tests.test_api import copy_index, shared_embedder, shared_index

pytestmark = pytest.mark.slow

SHARD_KEY = "shard-router-key-0123456789"
CANDIDATES = 8
QUERIES = [
    "Albert Einstein theory of relativity",
    "When was Einstein born?",
    "революция",
    "learning projects and courses",
    "Nobel Prize in Physics",
    "the",
]


def _rows(store: Path) -> dict[str, tuple[str, int]]:
    """passage id → (wiki, page id) of every stored passage."""
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT passage_id, wiki, page_id FROM passages")
        return {str(p): (str(w), int(i)) for p, w, i in rows}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shard-src")
    return copy_index(shared_index(tmp_path_factory), root / "index")


@pytest.fixture(scope="module")
def shards(source: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    report = split_index(source, tmp_path_factory.mktemp("shards") / "out", by="hash", shards=2)
    assert [s.vectors_from for s in report.shards] == ["faiss", "faiss"]
    return [s.path for s in report.shards]


# -- the split --------------------------------------------------------------------------


def test_hash_split_puts_every_passage_in_one_shard_with_its_page(
    source: Path, shards: list[Path]
) -> None:
    everything = _rows(IndexLayout(source).current().file("store.sqlite"))
    seen: dict[str, int] = {}
    for shard_id, shard in enumerate(shards):
        generation = IndexLayout(shard).current()
        info = generation.manifest.shard
        assert info is not None and (info.id, info.of, info.by) == (shard_id, 2, "hash")
        assert info.source_generation == IndexLayout(source).current().generation
        rows = _rows(generation.file("store.sqlite"))
        assert rows, "an empty shard"
        for passage_id, (wiki, page_id) in rows.items():
            assert passage_id not in seen, f"{passage_id} in two shards"
            seen[passage_id] = shard_id
            assert hash_shard(wiki, page_id, 2) == shard_id  # all of a page's passages
        # the lexical index holds exactly the shard's current passages, and its statistics
        lexical = LexicalIndex.open(generation.file("lexical"))
        stats = generation.manifest.lexical.stats
        assert stats is not None and lexical.num_docs == stats.documents
        assert generation.manifest.counts.indexed_passages == stats.documents
    assert seen.keys() == everything.keys()


def test_wiki_split_keeps_wikis_whole(source: Path, tmp_path: Path) -> None:
    report = split_index(source, tmp_path / "by-wiki", by="wiki")
    wikis = [s.wikis for s in report.shards]
    assert all(len(w) == 1 for w in wikis)
    assert sorted(w[0] for w in wikis) == sorted({w for w, _ in _rows(
        IndexLayout(source).current().file("store.sqlite")).values()})  # fmt: skip
    two = split_index(source, tmp_path / "two", by="wiki", shards=2)
    assert sorted(w for s in two.shards for w in s.wikis) == sorted(w[0] for w in wikis)
    with pytest.raises(ShardingError, match="already holds shards"):
        split_index(source, tmp_path / "two", by="wiki", shards=2)
    with pytest.raises(ShardingError, match="needs --shards"):
        split_index(source, tmp_path / "x", by="hash")


def test_a_quantised_index_is_split_with_vectors_from_the_embedding_cache(
    source: Path, tmp_path: Path
) -> None:
    """SQ8 codes cannot give the vectors back exactly: the split reads them from the
    embedding cache (no passage is embedded again) and the shards hold the exact vectors."""
    quantised = copy_index(source, tmp_path / "sq8")
    options = BuildOptions(ingest=IngestOptions(progress=False), progress=False, factory="SQ8")
    rebuild_index(quantised, options=options, embedder=shared_embedder())
    assert IndexLayout(quantised).current().manifest.dense.factory.endswith("SQ8")
    report = split_index(quantised, tmp_path / "out", by="hash", shards=2)
    assert [s.vectors_from for s in report.shards] == ["embedding-cache"] * 2
    exact = DenseIndex.load(IndexLayout(source).current().file("dense.faiss"), mmap=False)
    checked = 0
    for shard in report.shards:
        dense = DenseIndex.load(IndexLayout(shard.path).current().file("dense.faiss"), mmap=False)
        assert dense.ntotal == shard.indexed_passages
        ids = faiss.vector_to_array(dense.index.id_map)
        for row_id in ids:
            got = dense.index.reconstruct(int(row_id))
            assert (got == exact.index.reconstruct(int(row_id))).all()
            checked += 1
    assert checked == exact.ntotal


def test_bm25_reproduces_tantivy_scores_exactly(source: Path) -> None:
    """The router's BM25 (float32, tantivy's formula and length norms) equals tantivy's
    own scores on the unsharded index: bit for bit, or one float32 rounding apart where
    tantivy's block-max WAND adds a document's term scores in another order."""
    index = LoadedIndex.open(source)
    try:
        docs: dict[int, tuple[str, list[str]]] = {}
        tokens: dict[str, int] = {}
        for record in index.store.iter_current_passages():
            from indexer.lexical import lexical_doc

            doc = lexical_doc(record)
            group = analyzer_group(doc.language)
            toks = tokenize(indexed_text(doc), doc.language)
            docs[record.row_id] = (group, toks)
            tokens[group] = tokens.get(group, 0) + len(toks)
        checked = identical = 0
        for query in QUERIES:
            for hit in index.lexical.search(query, 50):
                group, toks = docs[hit.doc_id]
                terms = term_counts(query, group)
                tf = {t: toks.count(t) for t, _ in terms}
                df = {t: index.lexical.doc_freq(group, t) for t, _ in terms}
                mine = bm25(tf, len(toks), terms, len(docs), tokens[group], df)
                assert mine == pytest.approx(hit.score, rel=1e-6), (query, hit.doc_id)
                checked += 1
                identical += mine == hit.score
        assert checked > 20
        assert identical > 0
        assert (fieldnorm(0), fieldnorm(40), fieldnorm(41), fieldnorm(57)) == (0, 40, 40, 56)
    finally:
        index.close()


# -- live shards and router ---------------------------------------------------------------


@dataclass
class Proc:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def _start(args: list[str], log: Path, env: dict[str, str]) -> Proc:
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port",
             str(port), "--reload-poll-seconds", "0", *args],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    return Proc(f"http://127.0.0.1:{port}", proc, log)


def _wait(procs: list[Proc], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(procs)
    while pending and time.monotonic() < deadline:
        for p in list(pending):
            if p.proc.poll() is not None:
                raise AssertionError(f"{p.url} exited {p.proc.returncode}:\n{p.log.read_text()}")
            try:
                if httpx.get(f"{p.url}/readyz", timeout=5).status_code == 200:
                    pending.remove(p)
            except httpx.TransportError:
                pass
        time.sleep(0.3)
    if pending:
        raise AssertionError(f"not ready in {timeout} s:\n{pending[0].log.read_text()}")


def known_by_router(url: str) -> None:
    """Have the router ask every shard for its identity now (``GET /v1/index`` refreshes):
    a router that started before its shards were up learns them on a later request, and
    until it knows every shard it does not detect query languages."""
    response = httpx.get(f"{url}/v1/index", timeout=30)
    assert response.status_code == 200, response.text
    assert all(s["info"] is not None for s in response.json()["shards"]), response.text


@dataclass
class Cluster:
    router: Proc
    shards: list[Proc]
    single: Proc  # the unsharded index, served the same way


@pytest.fixture(scope="module")
def cluster(
    source: Path, shards: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    base = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "WIKIRAG_QUERY_ENCODER": "torch",
        "WIKIRAG_CANDIDATES": str(CANDIDATES),
        "WIKIRAG_METERING": "0",
    }
    shard_env = {**base, "WIKIRAG_ADMIN_KEY": SHARD_KEY}
    servers = [
        _start(["--shard", "--index", str(path)], root / f"shard-{i}.log", shard_env)
        for i, path in enumerate(shards)
    ]
    router_env = {
        **base,
        "WIKIRAG_SHARD_API_KEY": SHARD_KEY,
        "WIKIRAG_SHARD_TIMEOUT_SECONDS": "5",
        "WIKIRAG_KEYS_DB": str(root / "router-keys.sqlite"),
    }
    router = _start(
        ["--router", "--open-access", *(a for s in servers for a in ("--shard-url", s.url))],
        root / "router.log",
        router_env,
    )
    single = _start(["--index", str(source), "--open-access"], root / "single.log", base)
    everything = [*servers, router, single]
    try:
        _wait(everything, 240)
        known_by_router(router.url)
        yield Cluster(router, servers, single)
    finally:
        for p in everything:
            if p.proc.poll() is None:
                p.proc.terminate()
        for p in everything:
            try:
                p.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()


def _search(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/v1/search", json=body, timeout=60)


def test_shard_routes_need_an_api_key(cluster: Cluster) -> None:
    shard = cluster.shards[0].url
    body = {"query": "Einstein", "mode": "lexical"}
    response = httpx.post(f"{shard}/v1/shard/candidates", json=body, timeout=30)
    assert response.status_code == 401
    auth = {"Authorization": f"Bearer {SHARD_KEY}"}
    response = httpx.post(f"{shard}/v1/shard/candidates", json=body, headers=auth, timeout=30)
    assert response.status_code == 200
    assert response.json()["shard"]["of"] == 2
    wrong = {"query": "Einstein", "vector": [0.1] * 384, "model": "another-model"}
    response = httpx.post(f"{shard}/v1/shard/candidates", json=wrong, headers=auth, timeout=30)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "model-mismatch"
    short = {"query": "Einstein", "vector": [0.1] * 3}
    response = httpx.post(f"{shard}/v1/shard/candidates", json=short, headers=auth, timeout=30)
    assert response.json()["error"]["code"] == "invalid-vector"


CASES: list[dict[str, Any]] = [
    {"k": 5},
    {"k": 3, "fusion": "rrf"},
    {"k": 4, "max_per_article": 1},
    {"k": 5, "wikis": ["simplewiki", "ruwiki"]},
    {"k": 5, "languages": ["en"]},
    {"k": 5, "cross_lingual": False},
    {"k": 5, "query_language": "ru"},
    {"k": 6, "group_by": "entity", "per_group": 2},
]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_router_results_equal_the_unsharded_index(cluster: Cluster, mode: str) -> None:
    compared = 0
    for query in QUERIES:
        for case in CASES:
            body = {"query": query, "mode": mode, **case}
            response = _search(cluster.router.url, body)
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["partial"] is False and answer["missing_shards"] == []
            expected = _search(cluster.single.url, body).json()
            assert answer["fusion"] == expected["fusion"]
            assert answer["query_language"] == expected["query_language"]
            got, want = answer["results"], expected["results"]
            assert [r["passage_id"] for r in got] == [r["passage_id"] for r in want], body
            for result, reference in zip(got, want, strict=True):
                scores, wanted = result["scores"], reference["scores"]
                assert scores["fused"] == pytest.approx(wanted["fused"], abs=1e-6)
                assert scores["dense"] == wanted["dense"]  # the same float32 cosine
                if wanted["lexical"] is None:
                    assert scores["lexical"] is None
                else:  # global BM25: tantivy's, up to one float32 rounding
                    assert scores["lexical"] == pytest.approx(wanted["lexical"], rel=1e-6)
                assert {**result, "scores": None} == {**reference, "scores": None}
            compared += len(got)
    assert compared > 50


def test_passages_and_citations_route_to_the_right_shard(cluster: Cluster) -> None:
    router = cluster.router.url
    hits = _search(cluster.single.url, {"query": "Albert Einstein", "k": 20}).json()["results"]
    assert {hit["wiki"] for hit in hits} >= {"simplewiki"}
    for hit in hits[:6]:
        response = httpx.get(f"{router}/v1/passages/{hit['passage_id']}", timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["text"] == hit["text"]
        assert response.json()["attribution"] == hit["attribution"]
    path = f"/v1/citations/{hits[0]['wiki']}/revisions/{hits[0]['revision_id']}"
    response = httpx.get(f"{router}{path}", timeout=30)
    assert response.status_code == 200
    expected = httpx.get(f"{cluster.single.url}{path}", timeout=30).json()
    assert response.json() == expected
    missing = httpx.get(f"{router}/v1/passages/simplewiki:1:0", timeout=30)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"]
    described = httpx.get(f"{router}/v1/index", timeout=30).json()
    assert [s["url"] for s in described["shards"]] == [s.url for s in cluster.shards]
    assert [s["info"]["shard"]["id"] for s in described["shards"]] == [0, 1]
    bad = _search(router, {"query": "x", "wikis": ["xxwiki"]})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown-wiki"


def test_a_killed_shard_gives_partial_results_never_a_500(cluster: Cluster) -> None:
    router = cluster.router.url
    ready = httpx.get(f"{router}/readyz", timeout=30).json()
    assert ready["status"] == "ready" and all(s["ready"] for s in ready["shards"])
    victim = cluster.shards[1]
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(timeout=30)
    for mode in ("hybrid", "dense", "lexical"):
        body = {"query": "Albert Einstein, Squirrel", "k": 5, "mode": mode}  # on each shard
        response = _search(router, body)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["partial"] is True
        assert answer["missing_shards"] == [victim.url]
        assert answer["results"], response.text
    ready = httpx.get(f"{router}/readyz", timeout=30)
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert [s["ready"] for s in ready.json()["shards"]] == [True, False]
    # a lookup the live shard cannot answer names the missing shard (503, not a 500)
    lookup = httpx.get(f"{router}/v1/passages/simplewiki:1:0", timeout=30)
    assert lookup.status_code == 503
    assert lookup.json()["error"]["details"]["missing_shards"] == [victim.url]
