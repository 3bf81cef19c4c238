"""The HTTP service in process (FastAPI TestClient, lifespan included) against a real tiny
index: the simplewiki, ruwiki and enwikiversity snapshot samples (about 80 passages), plus a copy of
the simplewiki article relabelled as an older revision so that a non-current passage exists.

The index and the embedding model are built once per session and shared with
``test_serve.py`` and ``test_keys.py``; tests that change an index work on a copy.
"""

from __future__ import annotations

import functools
import gzip
import json
import shutil
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.attribution.license import build_attribution
from app.retrieval.ranking import SearchRequest
from app.retrieval.retriever import HybridRetriever, LoadedIndex
from app.settings import Settings
from indexer.build import BuildOptions, build_index
from indexer.embedding import Embedder
from indexer.generation import IndexLayout
from indexer.ingest import IngestOptions
from indexer.manifest import record_json
from indexer.models import parse_passage_id
from indexer.store import PassageStore
from indexer.urls import history_url, revision_url
from tests.conftest import SAMPLES

pytestmark = pytest.mark.slow

WME = SAMPLES / "wme"
SIMPLE = WME / "simplewiki_namespace_0.tar.gz"
SOURCES = [SIMPLE, WME / "ruwiki_namespace_0.tar.gz", WME / "enwikiversity_namespace_0.tar.gz"]
OPTIONS = BuildOptions(ingest=IngestOptions(progress=False), progress=False)
CURRENT_REVISION = 8368147  # simplewiki "Albert Einstein" in the snapshot sample
OLDER_REVISION = 8368000  # the same article relabelled (see _older_revision_source)


# -- shared fixtures ----------------------------------------------------------------------


@functools.cache
def shared_embedder() -> Embedder:
    embedder = Embedder()
    embedder.load()
    return embedder


def _older_revision_source(directory: Path) -> Path:
    """The simplewiki sample article as an NDJSON line whose revision id and date are lowered:
    stored as an older (non-current) revision, never embedded."""
    with tarfile.open(SIMPLE) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith(".ndjson"))
        handle = archive.extractfile(member)
        assert handle is not None
        article = json.loads(handle.readline())
    article["version"]["identifier"] = OLDER_REVISION
    article["date_modified"] = "2022-07-01T00:00:00Z"
    path = directory / "simplewiki-older.ndjson.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write(json.dumps(article) + "\n")
    return path


_BUILT: dict[str, Path] = {}
_BUILD_LOCK = threading.Lock()


def shared_index(factory: pytest.TempPathFactory) -> Path:
    """The session's index directory (built on first use)."""
    with _BUILD_LOCK:
        if "index" not in _BUILT:
            root = factory.mktemp("api")
            sources = [*SOURCES, _older_revision_source(root)]
            build_index(sources, root / "index", OPTIONS, embedder=shared_embedder())
            _BUILT["index"] = root / "index"
        return _BUILT["index"]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return shared_embedder()


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_index(tmp_path_factory)


def fuzz_settings(max_examples: int) -> Any:
    """Hypothesis settings of the schemathesis runs: bounded, no deadline, no example
    database, every health check off (the service is slow next to what hypothesis expects)."""
    import hypothesis

    return hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )


def copy_index(index_dir: Path, target: Path) -> Path:
    """A private copy of an index (generations, ``current`` link, embedding cache)."""
    shutil.copytree(index_dir, target, symlinks=True, ignore=shutil.ignore_patterns("keys*"))
    return target


def service_settings(index_dir: Path, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "index_dir": index_dir,
        "keys_db": tmp / "keys.sqlite",
        "progress": False,
        "reload_poll_seconds": 0,
        "open_access": True,
        "rate_limit_per_minute": 0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def app(index_dir: Path, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(
        service_settings(index_dir, tmp_path_factory.mktemp("svc")), embedder=embedder
    )


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def revision_passage_ids(index_dir: Path, wiki: str, revision_id: int) -> list[str]:
    """The ids of a revision's passages in the published generation's store, in order."""
    store = PassageStore(IndexLayout(index_dir).current().file("store.sqlite"), readonly=True)
    try:
        return [p.passage_id for p in store.passages_of_revision(wiki, revision_id)]
    finally:
        store.close()


def key_secret(raw: str) -> str:
    """The whole secret of an API key ``wrk_<key id>_<secret>`` (the secret itself may hold
    ``_``: splitting on the last ``_`` gives only its last fragment)."""
    prefix, key_id, secret = raw.split("_", 2)
    assert prefix == "wrk" and len(key_id) == 12 and len(secret) == 43, raw
    return secret


def leaked_pieces(secret: str, text: str, width: int = 12) -> list[str]:
    """The ``width``-character slices of ``secret`` found in ``text`` (a whole or a partial
    leak; 12 characters of a random 43-character secret do not occur by chance)."""
    return [
        secret[i : i + width]
        for i in range(len(secret) - width + 1)
        if secret[i : i + width] in text
    ]


def error_of(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The error body of ``response`` after checking its status, shape and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"])
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return dict(body["error"])


# -- search ---------------------------------------------------------------------------------


def test_search_results_carry_every_field_and_a_correct_attribution(
    client: TestClient, index_dir: Path, embedder: Embedder
) -> None:
    response = client.post("/v1/search", json={"query": "Einstein Nobel Prize", "k": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    generation = IndexLayout(index_dir).current().generation
    assert body["generation"] == generation and body["took_ms"] > 0
    assert body["mode"] == "hybrid" and body["fusion"] == "linear"
    results = body["results"]
    assert [r["rank"] for r in results] == [1, 2, 3, 4, 5]
    assert results[0]["title"] == "Albert Einstein" and "Nobel" in results[0]["text"]

    index = LoadedIndex.open(index_dir, embedder.info)
    expected = HybridRetriever(index, embedder).search(SearchRequest("Einstein Nobel Prize", k=5))
    assert [r["passage_id"] for r in results] == [h.passage.passage_id for h in expected]
    for result, hit in zip(results, expected, strict=True):
        record = hit.passage
        wiki, revision_id, _ = parse_passage_id(result["passage_id"])
        assert (wiki, revision_id) == (result["wiki"], result["revision_id"])
        assert result["wiki"] == record.wiki and result["language"] == record.language
        assert result["page_id"] == record.page_id and result["title"] == record.title
        assert result["section"] == list(record.section_path)
        assert result["anchor"] == record.anchor and result["text"] == record.text
        assert result["revision_id"] == record.revision_id == CURRENT_REVISION
        assert result["revision_timestamp"] == "2022-07-30T05:49:15Z"
        assert result["url"] == revision_url(
            record.base_url, record.title, record.revision_id, record.anchor
        )
        assert f"oldid={CURRENT_REVISION}" in result["url"]
        assert set(result["scores"]) == {"dense", "lexical", "fused"}
        assert result["scores"]["fused"] == pytest.approx(hit.scores["fused"])
        for component in ("dense", "lexical"):
            if component in hit.scores:
                assert result["scores"][component] == pytest.approx(hit.scores[component])
            else:
                assert result["scores"][component] is None
        attribution = result["attribution"]
        assert attribution == build_attribution(record).model_dump(mode="json")
        assert attribution["url"] == result["url"]
        assert attribution["authors_url"] == history_url(record.base_url, record.title)
        assert attribution["license"]["identifier"] == "CC-BY-SA-3.0"
        assert attribution["license"]["url"] == "https://creativecommons.org/licenses/by-sa/3.0/"
        assert attribution["source"] == "Simple English Wikipedia, the free encyclopedia"
        assert "CC BY-SA 3.0" in attribution["text"] and "Albert Einstein" in attribution["text"]
    index.close()


def test_search_modes_filters_caps_and_fusion(client: TestClient) -> None:
    def search(**body: Any) -> dict[str, Any]:
        response = client.post("/v1/search", json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    dense = search(query="theory of relativity", k=3, mode="dense")
    assert dense["fusion"] is None and dense["results"]
    assert len(dense["results"]) == 3
    assert all(r["scores"]["lexical"] is None and r["scores"]["dense"] for r in dense["results"])
    lexical = search(query="языки программирования", k=3, mode="lexical")
    assert lexical["results"][0]["wiki"] == "ruwiki"
    assert lexical["results"][0]["attribution"]["language"] == "ru"
    assert len(lexical["results"]) == 3
    assert all(r["scores"]["dense"] is None for r in lexical["results"])
    assert all(r["scores"]["lexical"] > 0 for r in lexical["results"])
    only = search(query="Einstein", k=10, wikis=["enwikiversity"])
    assert only["results"] and {r["wiki"] for r in only["results"]} == {"enwikiversity"}
    russian = search(query="Einstein", k=5, languages=["ru"])
    assert {r["language"] for r in russian["results"]} == {"ru"}
    capped = search(query="Einstein physics", k=10, max_per_article=2)
    per_page: dict[tuple[str, int], int] = {}
    for r in capped["results"]:
        per_page[(r["wiki"], r["page_id"])] = per_page.get((r["wiki"], r["page_id"]), 0) + 1
    assert capped["results"] and max(per_page.values()) <= 2
    # three indexed pages, every one matched densely: exactly two passages of each
    assert per_page == {
        ("enwikiversity", 65868): 2,
        ("ruwiki", 1601033): 2,
        ("simplewiki", 2138): 2,
    }
    linear = search(query="Einstein physics", k=4, fusion="linear")
    assert linear["fusion"] == "linear" and 0 <= linear["results"][0]["scores"]["fused"] <= 1


@pytest.mark.parametrize(
    ("body", "code", "mentions"),
    [
        ({"query": ""}, "empty-query", "empty"),
        ({"query": "  \n\t "}, "empty-query", "empty"),
        ({"query": "x" * 1001}, "query-too-long", "1000"),
        ({"query": "x", "k": 0}, "invalid-k", "k"),
        ({"query": "x", "k": 101}, "invalid-k", "100"),
        ({"query": "x", "k": "ten"}, "invalid-k", "integer"),
        ({"query": "x", "mode": "semantic"}, "unknown-mode", "'hybrid', 'dense' or 'lexical'"),
        ({"query": "x", "fusion": "borda"}, "unknown-fusion", "'rrf' or 'linear'"),
        ({"query": "x", "wikis": ["dewiki"]}, "unknown-wiki", "simplewiki"),
        ({"query": "x", "wikis": []}, "invalid-request", "wikis"),
        ({"query": "x", "languages": ["de"]}, "unknown-language", "'de'"),
        ({"query": "x", "max_per_article": 0}, "invalid-request", "max_per_article"),
        ({"query": "x", "colour": "red"}, "invalid-request", "colour"),
        ({"k": 3}, "invalid-request", "query: Field required"),
        ([1, 2], "invalid-request", "body"),
    ],
)
def test_bad_search_requests_say_what_is_wrong(
    client: TestClient, body: Any, code: str, mentions: str
) -> None:
    error = error_of(client.post("/v1/search", json=body), 422, code)
    assert mentions in error["message"]


def test_malformed_json_and_form_bodies_get_the_error_shape(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    error = error_of(client.post("/v1/search", content=b'{"query": ', headers=headers), 422)
    assert "not valid JSON" in error["message"]
    error = error_of(client.post("/v1/search", data={"query": "Einstein"}), 422)
    assert "Content-Type: application/json" in error["message"]


def test_request_bodies_over_the_limit_are_refused_before_parsing(client: TestClient) -> None:
    big = json.dumps({"query": "x", "pad": "a" * 70_000})
    error_of(client.post("/v1/search", content=big), 413, "body-too-large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(70):
            yield b"a" * 1024

    error_of(client.post("/v1/search", content=chunks()), 413, "body-too-large")


# -- passages and citations -------------------------------------------------------------------


def test_a_passage_by_id_with_attribution_current_and_old(client: TestClient) -> None:
    hit = client.post("/v1/search", json={"query": "Einstein Nobel Prize", "k": 1}).json()
    result = hit["results"][0]
    passage = client.get(f"/v1/passages/{result['passage_id']}").json()
    for field in ("passage_id", "text", "wiki", "title", "section", "url", "attribution"):
        assert passage[field] == result[field]
    assert passage["is_current"] is True and passage["current_revision_id"] == CURRENT_REVISION
    assert passage["generation"] == hit["generation"]

    old_id = f"simplewiki:{OLDER_REVISION}:0"
    old = client.get(f"/v1/passages/{old_id}")
    assert old.status_code == 200, old.text
    body = old.json()
    assert body["is_current"] is False and body["current_revision_id"] == CURRENT_REVISION
    assert body["revision_id"] == OLDER_REVISION and f"oldid={OLDER_REVISION}" in body["url"]
    assert body["attribution"]["revision_id"] == OLDER_REVISION


@pytest.mark.parametrize(
    ("passage_id", "status", "code"),
    [
        ("enwiki-1270870723-12", 400, "malformed-passage-id"),
        ("simplewiki:abc:1", 400, "malformed-passage-id"),
        ("simplewiki:8368147", 400, "malformed-passage-id"),
        ("enwiki:1270870723:12", 404, "unknown-wiki"),
        ("simplewiki:8368147:99999", 404, "passage-not-found"),
    ],
)
def test_bad_passage_ids(client: TestClient, passage_id: str, status: int, code: str) -> None:
    error = error_of(client.get(f"/v1/passages/{passage_id}"), status, code)
    if status == 400:
        assert "WIKI:REVISION_ID:ORDINAL" in error["message"]
        assert error["details"]["expected"] == "WIKI:REVISION_ID:ORDINAL"


def test_citations_by_revision_and_by_url(client: TestClient, index_dir: Path) -> None:
    record = client.get(f"/v1/citations/simplewiki/revisions/{OLDER_REVISION}").json()
    assert record["title"] == "Albert Einstein" and record["is_current"] is False
    assert record["current_revision_id"] == CURRENT_REVISION and record["passages"]
    stored = revision_passage_ids(index_dir, "simplewiki", OLDER_REVISION)
    assert len(stored) > 1 and [p["passage_id"] for p in record["passages"]] == stored
    assert record["attribution"]["license"]["identifier"] == "CC-BY-SA-3.0"
    by_url = client.get(
        "/v1/citations", params={"url": "https://simple.m.wikipedia.org/wiki/Einstein"}
    ).json()
    assert by_url["revision_id"] == CURRENT_REVISION and by_url["is_current"] is True
    assert by_url["redirected_from"] == "Einstein"

    error_of(client.get("/v1/citations/dewiki/revisions/1"), 404, "unknown-wiki")
    error_of(client.get("/v1/citations/simplewiki/revisions/5"), 404, "revision-not-indexed")
    error_of(client.get("/v1/citations/simplewiki/revisions/0"), 422, "invalid-request")
    error_of(client.get("/v1/citations/simplewiki/revisions/x"), 422, "invalid-request")
    error_of(client.get("/v1/citations/simplewiki/revisions/99999999999999999999999"), 422)
    unknown = "https://simple.wikipedia.org/wiki/No_such_article_here"
    error_of(client.get("/v1/citations", params={"url": unknown}), 404, "unknown-title")
    error_of(client.get("/v1/citations", params={"url": "mailto:x@y"}), 422, "not-a-wikipedia-url")
    bad_oldid = "https://simple.wikipedia.org/w/index.php?oldid=x"
    error_of(client.get("/v1/citations", params={"url": bad_oldid}), 400, "malformed-url")
    error_of(client.get("/v1/citations"), 422, "invalid-request")


# -- index, health, metrics, errors -------------------------------------------------------------


def test_index_description_has_manifest_and_counts(client: TestClient, index_dir: Path) -> None:
    body = client.get("/v1/index").json()
    manifest = IndexLayout(index_dir).current().manifest
    assert body["generation"] == manifest.generation and body["manifest"] == manifest.to_json()
    assert body["counts"] == record_json(manifest.counts)
    assert body["counts"]["pages"] == 3 and body["counts"]["revisions"] == 4
    indexed = body["counts"]["indexed_passages"]
    assert 20 < indexed < body["counts"]["passages"]  # the older revision is stored, not indexed
    assert [w["wiki"] for w in body["wikis"]] == ["enwikiversity", "ruwiki", "simplewiki"]
    assert body["languages"] == ["en", "ru", "simple"]
    assert body["model"]["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert body["retrieval"]["fusion"] == "linear"


def test_health_readiness_and_metrics(client: TestClient, index_dir: Path) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["generation"]
    assert ready["generation"] == IndexLayout(index_dir).current().generation
    client.post("/v1/search", json={"query": "squirrel", "k": 2, "mode": "lexical"})
    client.get("/v1/passages/not-an-id")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'wikirag_http_requests_total{method="POST",route="/v1/search",status="200"}' in text
    assert 'wikirag_http_request_duration_seconds_bucket{le="0.005",method="POST"' in text
    assert 'wikirag_search_duration_seconds_count{mode="lexical"}' in text
    assert (
        'wikirag_http_errors_total{code="malformed-passage-id",route="/v1/passages/{passage_id}"}'
        in text
    )
    assert 'wikirag_passages_served_total{route="/v1/search"}' in text
    assert f'wikirag_index_info{{generation="{ready["generation"]}"' in text
    indexed = IndexLayout(index_dir).current().manifest.counts.indexed_passages
    assert "wikirag_index_ready 1.0" in text and f"wikirag_index_passages {indexed}.0" in text


def test_unknown_routes_and_methods_get_the_error_shape(client: TestClient) -> None:
    error_of(client.get("/v1/nothing"), 404, "not-found")
    error_of(client.delete("/v1/search"), 405, "method-not-allowed")


def test_openapi_documents_every_route_with_models(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    expected = {
        "/v1/search", "/v1/passages/{passage_id}", "/v1/citations",
        "/v1/citations/{wiki}/revisions/{revision_id}", "/v1/index", "/v1/admin/reload",
        "/v1/admin/rebuild", "/v1/admin/jobs", "/v1/admin/jobs/{job_id}", "/healthz",
        "/readyz", "/metrics",
    }  # fmt: skip
    assert expected <= set(paths)
    for path, operations in paths.items():
        for method, operation in operations.items():
            ok = operation["responses"].get("200") or operation["responses"].get("202")
            assert ok is not None, (method, path)
            if path != "/metrics":
                assert "$ref" in ok["content"]["application/json"]["schema"], (method, path)
    query = schema["components"]["schemas"]["SearchBody"]["properties"]["query"]
    assert query["maxLength"] == 1000 and query["minLength"] == 1
    assert client.get("/docs").status_code == 200


def test_not_ready_without_an_index_or_with_another_model(
    tmp_path: Path, index_dir: Path, embedder: Embedder
) -> None:
    empty = create_app(service_settings(tmp_path / "nothing", tmp_path), embedder=embedder)
    with TestClient(empty) as client:
        assert client.get("/healthz").status_code == 200
        error = error_of(client.get("/readyz"), 503, "not-ready")
        assert "no published index" in error["message"]
        error_of(client.post("/v1/search", json={"query": "x"}), 503, "not-ready")
        assert "wikirag_index_ready 0.0" in client.get("/metrics").text

    other = copy_index(index_dir, tmp_path / "other")
    manifest_path = IndexLayout(other).current().path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["model"]["model_id"] = "some/other-model"
    manifest_path.write_text(json.dumps(manifest))
    mismatched = create_app(service_settings(other, tmp_path), embedder=embedder)
    with TestClient(mismatched) as client:
        error = error_of(client.get("/readyz"), 503, "not-ready")
        assert "some/other-model" in error["message"] and "WIKIRAG_MODEL" in error["message"]


# -- hot reload ---------------------------------------------------------------------------------


def test_a_new_generation_is_served_without_failing_a_request(
    tmp_path: Path, index_dir: Path, embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    own = copy_index(index_dir, tmp_path / "index")
    before = IndexLayout(own).current().generation
    settings = service_settings(own, tmp_path, reload_poll_seconds=0.2, reload_grace_seconds=0.5)
    app = create_app(settings, embedder=embedder)
    outcomes: list[tuple[int, str | None, float]] = []
    stop = threading.Event()
    queries = ["Einstein relativity", "белка", "Nobel Prize", "learning resources", "physics"]

    def load(client: TestClient) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                if i % 3:
                    response = client.post("/v1/search", json={"query": queries[i % 5], "k": 3})
                else:
                    response = client.get("/v1/index")
                body = response.json()
                outcomes.append((response.status_code, body.get("generation"), time.monotonic()))
            except Exception:  # a transport failure counts as a failed request
                outcomes.append((0, None, time.monotonic()))

    with TestClient(app) as client:
        worker = threading.Thread(target=load, args=(client,))
        worker.start()
        while len(outcomes) < 20:
            time.sleep(0.05)
        # another tiny source: the simplewiki article only (its vectors are in the cache)
        report = build_index([SIMPLE], own, OPTIONS, embedder=embedder)
        published = time.monotonic()
        deadline = published + 30
        while time.monotonic() < deadline:
            recent = [g for _, g, _ in outcomes[-5:]]
            if len(recent) == 5 and set(recent) == {report.generation}:
                break
            time.sleep(0.05)
        time.sleep(1.0)  # past the grace period: the old generation gets closed under load
        stop.set()
        worker.join(30)
        after_wikis = client.post("/v1/search", json={"query": "x", "wikis": ["ruwiki"]})
    failed = [o for o in outcomes if o[0] != 200]
    generations = [g for _, g, _ in outcomes]
    switch = generations.index(report.generation)
    switched_after = outcomes[switch][2] - published
    with capsys.disabled():  # the figures belong in the test output
        print(
            f"\nhot reload: {len(outcomes)} requests, {len(failed)} failed; "
            f"{switch} answered by {before}, {len(outcomes) - switch} by {report.generation} "
            f"(first {switched_after:.2f}s after publishing)"
        )
    assert not failed
    assert set(generations[:switch]) == {before}
    assert set(generations[switch:]) == {report.generation}  # never back to the old one
    assert len(outcomes) - switch >= 5
    error_of(after_wikis, 422, "unknown-wiki")  # the new generation holds simplewiki only


# -- rebuild jobs ---------------------------------------------------------------------------------


def test_rebuild_job_publishes_and_serves_a_new_generation(
    tmp_path: Path, index_dir: Path, embedder: Embedder
) -> None:
    own = copy_index(index_dir, tmp_path / "index")
    before = IndexLayout(own).current().generation
    app = create_app(service_settings(own, tmp_path), embedder=embedder)
    with TestClient(app) as client:
        accepted = client.post("/v1/admin/rebuild")
        assert accepted.status_code == 202, accepted.text
        job = accepted.json()
        assert job["state"] in ("queued", "running") and job["kind"] == "rebuild"
        conflict = error_of(client.post("/v1/admin/rebuild"), 409, "rebuild-running")
        assert conflict["details"]["job_id"] == job["job_id"]
        during = client.post("/v1/search", json={"query": "Einstein", "k": 1})
        assert during.status_code == 200 and during.json()["generation"] == before
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = client.get(f"/v1/admin/jobs/{job['job_id']}").json()
            if status["state"] in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        assert status["state"] == "succeeded", status
        result = status["result"]
        assert (
            result["generation"] != before and result["served_generation"] == result["generation"]
        )
        indexed = IndexLayout(index_dir).current().manifest.counts.indexed_passages
        assert result["passages_indexed"] == indexed and result["embedding"]["misses"] == 0
        assert result["changes"] == {"pages_added": 0, "pages_updated": 0, "pages_removed": 0}
        assert status["finished_at"] >= status["started_at"] >= status["created_at"]
        served = client.post("/v1/search", json={"query": "Einstein", "k": 1}).json()
        assert served["generation"] == result["generation"]
        assert client.get("/v1/index").json()["generation"] == result["generation"]
        assert client.get("/v1/admin/jobs").json()["jobs"][0]["job_id"] == job["job_id"]
        error_of(client.get("/v1/admin/jobs/nope"), 404, "job-not-found")
        missing = client.post("/v1/admin/rebuild", json={"sources": ["/no/such/file.xml"]})
        error_of(missing, 422, "source-not-found")


# -- fuzzing --------------------------------------------------------------------------------------


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    index_dir: Path, embedder: Embedder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hypothesis
    import hypothesis.errors
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.python import asgi
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    from app.accounts.keys import KeyStore

    settings = service_settings(index_dir, tmp_path)
    _, admin_key = KeyStore(settings.keys_db_path()).create("fuzzer", admin=True)
    auth = {"Authorization": f"Bearer {admin_key}"}  # else most cases stop at 401
    app = create_app(settings, embedder=embedder)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        response_headers_conformance,
    ]
    cases: dict[str, int] = {}
    statuses: dict[int, int] = {}

    def fuzz(operation: Any, mode: GenerationMode) -> None:
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        @fuzz_settings(30)
        def run(case: Any) -> None:
            response = case.call(headers=auth)
            cases[operation.label] = cases.get(operation.label, 0) + 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            case.validate_response(response, checks=checks)

        try:
            run()
        except hypothesis.errors.Unsatisfiable:
            # no parameters to make invalid (e.g. GET /healthz)
            assert mode is GenerationMode.NEGATIVE, operation.label

    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.label == "POST /v1/admin/rebuild":
                continue  # would start real builds; covered by the rebuild test
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz(operation, mode)
    finally:
        asgi.shutdown_lifespans()
    total = sum(cases.values())
    from benchmarks.fuzz_api import record_fuzz_counts

    record_fuzz_counts(
        "open_access",
        {"cases": total, "operations": len(cases), "by_operation": cases,
         "statuses": {str(k): v for k, v in sorted(statuses.items())}},
    )  # fmt: skip
    with capsys.disabled():  # the figures belong in the test output
        print(f"\nschemathesis: {total} cases over {len(cases)} operations; statuses {statuses}")
        for label, count in sorted(cases.items()):
            print(f"  {count:4d}  {label}")
    assert len(cases) >= 10 and total >= 200
    assert not any(status >= 500 for status in statuses)
