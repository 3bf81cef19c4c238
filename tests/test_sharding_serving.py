"""Sharded serving as shipped: real ``wikirag serve --shard`` processes behind a real
``wikirag serve --router`` on loopback, started with no query-encoder override (the router
embeds queries with the verified ONNX export, the shipped default; its log says so).

* **As shipped** (the split of ``test_sharding.py``: the tiny index of ``test_api.py``): the
  router's rankings equal the unsharded index's searched in process with the PyTorch
  embedder that every other test uses (same passage ids in the same order, scores within the
  ONNX tolerance).
* **A slow shard**: one shard process is SIGSTOPped (it accepts connections and never
  answers); the router answers within its shard timeout, ``partial``, naming that shard, with
  the other shard's passages in their exact order; after SIGCONT it is complete again.
* **Follow-up requests**: a corpus built so that a shard's first answer cannot hold the global
  top ``n`` (see :func:`followup_source`), the router's ``wikirag_shard_followups_total``
  counter, and the routed result equal to the unsharded one; and cases that need none.

Both clusters use ``WIKIRAG_CANDIDATES=8`` (as ``test_sharding.py``) so that shards truncate
their lexical lists and the global-BM25 bound of :mod:`app.retrieval.router` decides.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.api.queries import search_request, search_result
from app.api.schemas import SearchBody
from app.retrieval.ranking import resolve_defaults
from app.retrieval.retriever import HybridRetriever, LoadedIndex
from indexer.build import build_index
from indexer.generation import IndexLayout
from indexer.sharding import hash_shard, split_index
from indexer.store import PassageStore
from tests import test_sharding
from tests.test_api import OPTIONS, SIMPLE, shared_embedder
from tests.test_sharding import (
    CANDIDATES,
    CASES,
    QUERIES,
    SHARD_KEY,
    Proc,
    _rows,
    _start,
    _wait,
    known_by_router,
)

# test_sharding's module fixtures (the split sample index), built again for this module.
source = test_sharding.source
shards = test_sharding.shards

pytestmark = pytest.mark.slow

SHARD_TIMEOUT = 2.0  # the routers' WIKIRAG_SHARD_TIMEOUT_SECONDS
ONNX_LOG_LINE = "query encoder: ONNX Runtime"


@dataclass
class Routed:
    router: Proc
    shards: list[Proc]


def _env() -> dict[str, str]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "WIKIRAG_CANDIDATES": str(CANDIDATES),
        "WIKIRAG_METERING": "0",
    }
    env.pop("WIKIRAG_QUERY_ENCODER", None)  # as shipped: the default (ONNX)
    return env


def _serve(shard_paths: list[Path], root: Path) -> Iterator[Routed]:
    """Shards over ``shard_paths`` and a router over them (no encoder override); stopped
    after the ``yield``."""
    base = _env()
    servers = [
        _start(["--shard", "--index", str(path)], root / f"shard-{i}.log",
               {**base, "WIKIRAG_ADMIN_KEY": SHARD_KEY})
        for i, path in enumerate(shard_paths)
    ]  # fmt: skip
    router_env = {
        **base,
        "WIKIRAG_SHARD_API_KEY": SHARD_KEY,
        "WIKIRAG_SHARD_TIMEOUT_SECONDS": str(SHARD_TIMEOUT),
        "WIKIRAG_KEYS_DB": str(root / "router-keys.sqlite"),
    }
    router = _start(
        ["--router", "--open-access", *(a for s in servers for a in ("--shard-url", s.url))],
        root / "router.log",
        router_env,
    )
    everything = [*servers, router]
    try:
        _wait(everything, 240)
        known_by_router(router.url)
        # the shipped query encoder really is the one answering
        assert ONNX_LOG_LINE in router.log.read_text(), router.log.read_text()
        yield Routed(router, servers)
    finally:
        for p in everything:
            if p.proc.poll() is None:
                os.kill(p.proc.pid, signal.SIGCONT)  # a test may have left it stopped
                p.proc.terminate()
        for p in everything:
            try:
                p.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()


def _search(url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{url}/v1/search", json=body, timeout=60)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _reference(index: Path) -> HybridRetriever:
    """The unsharded index in process, with the PyTorch embedder and the routers'
    candidate count."""
    loaded = LoadedIndex.open(index)
    defaults = resolve_defaults(loaded.manifest.retrieval, overrides={"candidates": CANDIDATES})
    return HybridRetriever(loaded, shared_embedder(), defaults)


def _expected(retriever: HybridRetriever, body: dict[str, Any]) -> list[dict[str, Any]]:
    """What a single index answers for ``body``: the results as the API writes them."""
    request = search_request(SearchBody(**body), body["query"])
    hits = retriever.search(request)
    return [search_result(rank, hit).model_dump(mode="json") for rank, hit in enumerate(hits, 1)]


# -- as shipped ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped(shards: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Routed]:
    yield from _serve(shards, tmp_path_factory.mktemp("shipped"))


@pytest.fixture(scope="module")
def reference(source: Path) -> Iterator[HybridRetriever]:
    retriever = _reference(source)
    try:
        yield retriever
    finally:
        retriever.index.close()


DENSE_TOLERANCE = 1e-5  # ONNX vs PyTorch (indexer.embedding.onnx.TOLERANCE)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_shipped_router_ranks_as_the_unsharded_index(
    shipped: Routed, reference: HybridRetriever, mode: str
) -> None:
    compared = 0
    for query in QUERIES:
        for case in CASES:
            body = {"query": query, "mode": mode, **case}
            answer = _search(shipped.router.url, body)
            assert answer["partial"] is False and answer["missing_shards"] == []
            got, want = answer["results"], _expected(reference, body)
            assert [r["passage_id"] for r in got] == [r["passage_id"] for r in want], body
            for result, expected in zip(got, want, strict=True):
                scores, wanted = result["scores"], expected["scores"]
                if wanted["dense"] is None:
                    assert scores["dense"] is None
                else:
                    assert scores["dense"] == pytest.approx(wanted["dense"], abs=DENSE_TOLERANCE)
                if wanted["lexical"] is None:
                    assert scores["lexical"] is None
                else:  # global BM25 against tantivy's: one float32 rounding
                    assert scores["lexical"] == pytest.approx(wanted["lexical"], rel=1e-6)
                assert scores["fused"] == pytest.approx(wanted["fused"], abs=1e-4)
                assert {**result, "scores": None} == {**expected, "scores": None}
            compared += len(got)
    assert compared > 50


def test_a_slow_shard_is_left_out_within_the_timeout(shipped: Routed, shards: list[Path]) -> None:
    """Shard 1 (simplewiki and enwikiversity) SIGSTOPped: its socket still accepts, the
    request is written, and no answer ever comes."""
    router = shipped.router.url
    slow = shipped.shards[1]
    live = set(_rows(IndexLayout(shards[0]).current().file("store.sqlite")))
    body = {"query": "революция", "mode": "dense", "k": 100}  # every passage, ranked
    complete = _search(router, body)
    assert complete["partial"] is False
    everything = complete["results"]
    expected = [r for r in everything if r["passage_id"] in live]
    assert 0 < len(expected) < len(everything)  # both shards hold ranked passages
    os.kill(slow.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        partial = _search(router, body)
        elapsed = time.monotonic() - started
    finally:
        os.kill(slow.proc.pid, signal.SIGCONT)
    assert partial["partial"] is True
    assert partial["missing_shards"] == [slow.url]
    assert SHARD_TIMEOUT * 0.95 <= elapsed < SHARD_TIMEOUT + 3.0, elapsed
    got = partial["results"]
    assert [r["passage_id"] for r in got] == [r["passage_id"] for r in expected]
    assert [r["scores"]["dense"] for r in got] == [r["scores"]["dense"] for r in expected]
    assert {r["wiki"] for r in got} == {"ruwiki"}
    assert [r["rank"] for r in got] == list(range(1, len(expected) + 1))
    # resumed: the next search is complete again, and the same
    again = _search(router, body)
    assert again["partial"] is False and again["missing_shards"] == []
    assert again["results"] == everything


# -- follow-up requests -------------------------------------------------------------------

QUERY = "quokka axolotl"
BASE_PASSAGE = "simplewiki:8368147:1"  # a real 41-word passage of the Einstein article
# (shard, articles, sentence appended to the real passage): three words each, so that every
# passage has the same length and BM25 differs only by term frequency and IDF
LAYOUT: list[tuple[int, int, str]] = [
    (0, 12, "Quokka quokka quokka."),
    (0, 8, "An axolotl too."),
    (0, 12, "Nothing else here."),
    (1, 30, "Quokka quokka quokka."),
    (1, 10, "Nothing else here."),
]


@dataclass
class Corpus:
    index: Path
    shards: list[Path]
    pages: dict[str, list[int]]  # appended sentence → page ids, in ingest (row id) order


def _pages_in(shard: int, count: int, after: int) -> list[int]:
    pages: list[int] = []
    page = after
    while len(pages) < count:
        page += 1
        if hash_shard("simplewiki", page, 2) == shard:
            pages.append(page)
    return pages


@pytest.fixture(scope="module")
def followup_source(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """72 one-passage simplewiki articles: one real passage, each with three words added.

    Shard 0 (32 passages): ``quokka`` ×3 in 12, ``axolotl`` ×1 in 8. Locally the IDFs are
    0.97 and 1.36, and three occurrences weigh 1.57 times one at this length: the quokka
    passages rank first, so shard 0's first answer (``n = max(8, 2·5) = 10`` candidates) holds
    no axolotl passage. Globally (72 passages, quokka in 42: shard 1 holds 30 more) the IDFs
    are 0.54 and 2.15: the 8 axolotl passages are the global top 8. Without a follow-up
    request to shard 0 they are never seen."""
    root = tmp_path_factory.mktemp("followup")
    store = PassageStore(IndexLayout(source).current().file("store.sqlite"), readonly=True)
    try:
        record = store.passage(BASE_PASSAGE)
        assert record is not None
        base = record.text
    finally:
        store.close()
    with tarfile.open(SIMPLE) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith(".ndjson"))
        handle = archive.extractfile(member)
        assert handle is not None
        real = json.loads(handle.readline())
    kept = {k: real[k] for k in ("date_modified", "namespace", "in_language", "is_part_of")}
    kept["license"] = real["license"]
    pages: dict[str, list[int]] = {}
    last = 900_000
    path = root / "followup.ndjson.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for shard, count, sentence in LAYOUT:
            for page in _pages_in(shard, count, last):
                last = page
                pages.setdefault(sentence, []).append(page)
                article = {
                    **kept,
                    "name": f"Note {page}",
                    "identifier": page,
                    "url": f"https://simple.wikipedia.org/wiki/Note_{page}",
                    "version": {"identifier": page * 10, "editor": {"name": "Example"}},
                    "article_body": {"wikitext": f"{base} {sentence}\n"},
                }
                out.write(json.dumps(article) + "\n")
    build_index([path], root / "index", OPTIONS, embedder=shared_embedder())
    report = split_index(root / "index", root / "shards", by="hash", shards=2)
    assert [s.indexed_passages for s in report.shards] == [32, 40]
    return Corpus(root / "index", [s.path for s in report.shards], pages)


@pytest.fixture(scope="module")
def followup_cluster(
    followup_source: Corpus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Routed]:
    yield from _serve(followup_source.shards, tmp_path_factory.mktemp("followup-serve"))


def _followups(router: str) -> dict[str, float]:
    """``wikirag_shard_followups_total`` per shard URL, from the router's ``/metrics``."""
    response = httpx.get(f"{router}/metrics", timeout=30)
    assert response.status_code == 200
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "wikirag_shard_followups_total":
                counts[sample.labels["shard"]] = sample.value
    return counts


def _delta(before: dict[str, float], after: dict[str, float], urls: list[str]) -> list[float]:
    return [after.get(u, 0.0) - before.get(u, 0.0) for u in urls]


def _lexical_ids(answer: list[dict[str, Any]]) -> list[str]:
    return [r["passage_id"] for r in answer]


def test_follow_up_requests_make_the_routed_result_exact(
    followup_cluster: Routed, followup_source: Corpus
) -> None:
    router = followup_cluster.router.url
    urls = [s.url for s in followup_cluster.shards]
    axolotl = followup_source.pages["An axolotl too."]
    # the premise: shard 0's own first 10 lexical candidates hold no axolotl passage
    shard0 = LoadedIndex.open(followup_source.shards[0])
    try:
        first = shard0.store.passages_by_rows([h.doc_id for h in shard0.lexical.search(QUERY, 10)])
        assert len(first) == 10
        assert {r.text.rsplit(". ", 1)[1] for r in first.values()} == {"Quokka quokka quokka."}
    finally:
        shard0.close()
    retriever = _reference(followup_source.index)
    try:
        body = {"query": QUERY, "mode": "lexical", "k": 5}
        before = _followups(router)
        answer = _search(router, body)
        after = _followups(router)
        # round 1: both answers are full (10 of 20 matches, 10 of 30) and the 10th global
        # score (a quokka passage's) is reachable by what each left out; asked for 40, shard 0
        # returns its 20 matches and shard 1 its 30: fewer than asked, so complete.
        assert _delta(before, after, urls) == [1.0, 1.0]
        assert answer["partial"] is False
        want = _expected(retriever, body)
        assert answer["results"] == [
            {**r, "scores": {**r["scores"], "lexical": pytest.approx(r["scores"]["lexical"],
                                                                       rel=1e-6)}}
            for r in want
        ]  # fmt: skip
        # the five axolotl passages of the lowest row ids, exactly
        assert _lexical_ids(answer["results"]) == [f"simplewiki:{p * 10}:0" for p in axolotl[:5]]
        assert [r["revision_id"] for r in answer["results"]] == [p * 10 for p in axolotl[:5]]
        assert {r["attribution"]["license"]["identifier"] for r in answer["results"]} == {
            "CC-BY-SA-3.0"
        }

        # no follow-up needed: every shard returns all its matches in its first answer
        # (k = 25: n = 50 ≥ 20 and 30; "axolotl": 8 matches < 10 on shard 0, none on shard 1)
        for body in (
            {"query": QUERY, "mode": "lexical", "k": 25},
            {"query": "axolotl", "mode": "lexical", "k": 5},
        ):
            before = _followups(router)
            answer = _search(router, body)
            assert _delta(before, _followups(router), urls) == [0.0, 0.0], body
            want = _expected(retriever, body)
            assert _lexical_ids(answer["results"]) == _lexical_ids(want), body
            for got, expected in zip(answer["results"], want, strict=True):
                assert got["scores"]["lexical"] == pytest.approx(
                    expected["scores"]["lexical"], rel=1e-6
                )
        assert len(answer["results"]) == 5
    finally:
        retriever.index.close()
