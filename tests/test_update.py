"""Incremental updates (``wikirag update``) on real revisions of "Albert Einstein" (enwiki
page 736): 716825343 (2016, the XML sample), 1097822042 (the realtime sample), 1270870723 (the
WME snapshot sample). The base index is that 2016 revision plus the tiny enwikiversity
snapshot; every test works on a copy of it.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api.errors import http_status
from app.api.main import create_app
from app.attribution.citations import CitationError, CitationResolver
from app.retrieval.ranking import SearchMode, SearchRequest
from app.retrieval.retriever import HybridRetriever, LoadedIndex
from app.settings import Settings
from indexer.build import BuildOptions, build_index, rebuild_index
from indexer.embedding import Embedder
from indexer.generation import DELTA_FILE, IndexLayout
from indexer.ingest import IngestOptions
from indexer.store import PassageStore
from indexer.update import UpdateOptions, UpdateReport, apply_updates, delta_ids, load_delta
from tests.conftest import ENWIKI_XML, REALTIME, ROOT, SAMPLES

pytestmark = pytest.mark.slow

WIKI = "enwiki"
PAGE = 736
REV_2016, REV_2022, REV_2025 = 716825343, 1097822042, 1270870723
VERSITY = SAMPLES / "wme" / "enwikiversity_namespace_0.tar.gz"
VERSITY_PAGE = 65868
QUERIES = ("Einstein Nobel Prize photoelectric effect", "theory of relativity", "Einstein")


@functools.cache
def _embedder() -> Embedder:
    embedder = Embedder()
    embedder.load()
    return embedder


def _strings(value: Any) -> list[str]:
    """Every string (keys included) in a decoded JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [*value, *(s for item in value.values() for s in _strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _options(batch: int = 100) -> UpdateOptions:
    return UpdateOptions(ingest=IngestOptions(progress=False), batch=batch)


def _einstein_xml(path: Path) -> Path:
    """The XML sample reduced to its siteinfo and the 2016 Einstein page."""
    with bz2.open(ENWIKI_XML, "rt", encoding="utf-8") as handle:
        text = handle.read()
    head = text[: text.index("<page>")]
    at = text.index("<title>Albert Einstein</title>")
    page = text[text.rindex("<page>", 0, at) : text.index("</page>", at) + len("</page>")]
    path.write_text(f"{head}{page}\n</mediawiki>\n", encoding="utf-8")
    return path


def _snapshot_article(page_id: int) -> dict[str, Any]:
    with tarfile.open(SAMPLES / "wme" / "enwiki_namespace_0.tar.gz") as archive:
        for member in archive.getmembers():
            handle = archive.extractfile(member)
            if handle is None:
                continue
            for line in handle:
                if b'"identifier":%d,' % page_id in line or b'"identifier": %d,' % page_id in line:
                    obj: dict[str, Any] = json.loads(line)
                    if obj.get("identifier") == page_id:
                        return obj
    raise AssertionError(f"page {page_id} not in the snapshot sample")


def _realtime_article() -> dict[str, Any]:
    with gzip.open(REALTIME, "rt", encoding="utf-8") as handle:
        obj: dict[str, Any] = json.loads(handle.readline())
    return obj


def _write_events(path: Path, objects: Sequence[dict[str, Any] | str]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for obj in objects:
            out.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
    return path


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("events")
    rev2022 = _realtime_article()  # no "event" member: an update
    rev2025 = {**_snapshot_article(PAGE), "event": {"type": "update"}}
    assert rev2022["version"]["identifier"] == REV_2022
    assert rev2025["version"]["identifier"] == REV_2025
    return {
        "xml": _einstein_xml(directory / "einstein-2016.xml"),
        "rev2022": rev2022,
        "rev2025": rev2025,
        "r2022": _write_events(directory / "r2022.ndjson", [rev2022]),
        "r2025": _write_events(directory / "r2025.ndjson", [rev2025]),
        "forward": _write_events(directory / "forward.ndjson", [rev2022, rev2025]),
        "reverse": _write_events(directory / "reverse.ndjson", [rev2025, rev2022]),
        "dir": directory,
    }


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, events: dict[str, Any]) -> Path:
    index = tmp_path_factory.mktemp("base") / "index"
    options = BuildOptions(ingest=IngestOptions(progress=False), progress=False)
    build_index([events["xml"], VERSITY], index, options, embedder=_embedder())
    return index


def _copy(index: Path, target: Path, cache_from: Path | None = None) -> Path:
    shutil.copytree(index, target, symlinks=True)
    if cache_from is not None:
        shutil.copy2(
            IndexLayout(cache_from).embedding_cache_path, IndexLayout(target).embedding_cache_path
        )
    return target


def _search(index_dir: Path, query: str, k: int = 10) -> list[tuple[str, int]]:
    loaded = LoadedIndex.open(index_dir, _embedder().info)
    try:
        retriever = HybridRetriever(loaded, _embedder())
        hits = retriever.search(SearchRequest(query, k=k, mode=SearchMode.HYBRID))
        return [(h.passage.passage_id, h.passage.revision_id) for h in hits]
    finally:
        loaded.close()


def _state(index_dir: Path) -> dict[str, Any]:
    """Everything an update decides, by passage ids (row ids depend on insertion order)."""
    generation = IndexLayout(index_dir).current()
    store = PassageStore(generation.file("store.sqlite"), readonly=True)
    loaded = LoadedIndex.open(index_dir, _embedder().info)
    try:
        conn = store.connection()
        pages = conn.execute(
            "SELECT wiki, page_id, current_revision_id, status FROM pages ORDER BY 1, 2"
        ).fetchall()
        revisions = conn.execute(
            "SELECT wiki, revision_id, visibility FROM revisions ORDER BY 1, 2"
        ).fetchall()
        passages = conn.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        delta = load_delta(generation.file(DELTA_FILE), 384)
        rows = [int(i) for i in delta_ids(delta)]
        delta_passages = sorted(p.passage_id for p in store.passages_by_rows(rows).values())
        searchable = store.searchable_rows(
            [int(r[0]) for r in conn.execute("SELECT id FROM passages")]
        )
        retriever = HybridRetriever(loaded, _embedder())
        results = {
            q: sorted(
                h.passage.passage_id
                for h in retriever.search(SearchRequest(q, k=10, mode=SearchMode.HYBRID))
            )
            for q in QUERIES
        }
        return {
            "pages": pages,
            "revisions": revisions,
            "passages": passages,
            "delta": delta_passages,
            "lexical_docs": loaded.lexical.num_docs,
            "searchable": len(searchable),
            "results": results,
        }
    finally:
        loaded.close()
        store.close()


@pytest.fixture(scope="module")
def forward(
    base: Path, events: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Base → 2022 revision → 2025 revision, with what search and the store said after each."""
    index = _copy(base, tmp_path_factory.mktemp("forward") / "index")
    steps: dict[int, Any] = {REV_2016: {"search": _search(index, QUERIES[0])}}
    reports: list[UpdateReport] = []
    cache_2022 = tmp_path_factory.mktemp("cache-2022")
    for revision, name in ((REV_2022, "r2022"), (REV_2025, "r2025")):
        started = time.perf_counter()
        report = apply_updates(index, [str(events[name])], _options(), embedder=_embedder())
        reports.append(report)
        steps[revision] = {
            "search": _search(index, QUERIES[0]),
            "seconds": time.perf_counter() - started,
        }
        if revision == REV_2022:  # the cache as it was before the 2025 revision came
            shutil.copytree(IndexLayout(index).cache_dir, cache_2022 / "cache")
    return {
        "index": index,
        "steps": steps,
        "reports": reports,
        "state": _state(index),
        "cache_2022": cache_2022,
    }


# -- three real revisions ------------------------------------------------------------------


def test_three_revisions_search_serves_only_the_current_one(forward: dict[str, Any]) -> None:
    steps = forward["steps"]
    for revision in (REV_2016, REV_2022, REV_2025):
        hits = steps[revision]["search"]
        einstein = [rev for pid, rev in hits if pid.startswith(f"{WIKI}:")]
        assert einstein, revision
        assert set(einstein) == {revision}, (revision, hits)
    first, second = forward["reports"]
    assert first.pages_updated == 1 and first.pages_reindexed == 1
    assert second.pages_updated == 1 and second.passages_indexed > 100
    # Only texts not in the cache are embedded: unchanged paragraphs reuse their vectors.
    assert 0 < second.embedding.misses < second.passages_indexed
    assert second.embedding.hits > 0
    assert forward["state"]["lexical_docs"] == forward["state"]["searchable"]
    index = forward["index"]
    store = PassageStore(IndexLayout(index).current().file("store.sqlite"), readonly=True)
    try:
        assert [r.revision_id for r in store.revisions_of(WIKI, PAGE)] == [
            REV_2016,
            REV_2022,
            REV_2025,
        ]
        for revision in (REV_2016, REV_2022):
            passage = store.passages_of_revision(WIKI, revision)[3]
            again = store.passage(passage.passage_id)
            assert again is not None and again.text == passage.text
            assert again.current_revision_id == REV_2025
    finally:
        store.close()


def test_old_passages_and_citations_resolve_over_http_with_superseded_by(
    forward: dict[str, Any], tmp_path: Path
) -> None:
    index = forward["index"]
    store = PassageStore(IndexLayout(index).current().file("store.sqlite"), readonly=True)
    old = {rev: store.passages_of_revision(WIKI, rev)[2] for rev in (REV_2016, REV_2022)}
    current = store.passages_of_revision(WIKI, REV_2025)[2]
    store.close()
    settings = Settings(
        index_dir=index,
        keys_db=tmp_path / "keys.sqlite",
        open_access=True,
        rate_limit_per_minute=0,
        reload_poll_seconds=0,
        update_poll_seconds=0,
        progress=False,
    )
    with TestClient(create_app(settings, embedder=_embedder())) as client:
        for revision, passage in old.items():
            body = client.get(f"/v1/passages/{passage.passage_id}").json()
            assert body["text"] == passage.text and body["revision_id"] == revision
            assert body["is_current"] is False
            assert body["superseded_by"]["revision_id"] == REV_2025
            assert f"oldid={REV_2025}" in body["superseded_by"]["url"]
            cited = client.get(f"/v1/citations/{WIKI}/revisions/{revision}").json()
            assert cited["superseded_by"]["revision_id"] == REV_2025
            assert any(p["text"] == passage.text for p in cited["passages"])
        body = client.get(f"/v1/passages/{current.passage_id}").json()
        assert body["is_current"] is True and body["superseded_by"] is None


# -- idempotence and order -------------------------------------------------------------------


def test_same_events_twice_and_in_reverse_order_end_in_the_same_state(
    base: Path, forward: dict[str, Any], events: dict[str, Any], tmp_path: Path
) -> None:
    expected = forward["state"]
    reverse = _copy(base, tmp_path / "reverse", cache_from=forward["index"])
    report = apply_updates(reverse, [str(events["reverse"])], _options(), embedder=_embedder())
    assert report.pages_updated == 1 and report.revisions_older == 1
    assert report.embedding.misses == 0
    assert _state(reverse) == expected
    # the same events again (other files, so no checkpoint skips them): nothing changes
    again = apply_updates(
        reverse, [str(events["forward"]), str(events["r2022"])], _options(), embedder=_embedder()
    )
    assert again.revisions_unchanged == 3 and again.pages_reindexed == 0
    assert _state(reverse) == expected
    # the same file again: its checkpoint says it is done
    resumed = apply_updates(reverse, [str(events["reverse"])], _options(), embedder=_embedder())
    assert sum(resumed.events.values()) == 0
    assert list(resumed.resumed_from.values()) == [2]
    # an XML export as updates, and a stream on stdin: already stored, nothing changes
    stream = io.BytesIO(events["forward"].read_bytes())
    again = apply_updates(
        reverse, [str(events["xml"]), "-"], _options(), embedder=_embedder(), stdin=stream
    )
    assert again.revisions_unchanged == 3 and again.pages_reindexed == 0
    assert _state(reverse) == expected


def test_rebuild_carries_the_updates_forward(forward: dict[str, Any], tmp_path: Path) -> None:
    index = _copy(forward["index"], tmp_path / "index")
    before = IndexLayout(index).current().generation
    report = rebuild_index(
        index,
        options=BuildOptions(ingest=IngestOptions(progress=False), progress=False),
        embedder=_embedder(),
    )
    assert report.generation != before
    assert report.updates is not None and len(report.updates["replayed"]) == 2
    assert report.embedding.misses == 0 and report.updates["embedding"]["misses"] == 0
    assert _state(index) == forward["state"]


# -- delete, visibility, unknown pages, malformed lines ---------------------------------------


def test_delete_visibility_unknown_and_malformed_events(
    forward: dict[str, Any], events: dict[str, Any], tmp_path: Path
) -> None:
    index = _copy(forward["index"], tmp_path / "index")
    layout = IndexLayout(index)
    store = PassageStore(layout.current().file("store.sqlite"), readonly=True)
    einstein_passage = store.passages_of_revision(WIKI, REV_2025)[0].passage_id
    old_passage = store.passages_of_revision(WIKI, REV_2022)[0].passage_id
    versity = store.passages_of_revision("enwikiversity", 2254003)[0].passage_id
    # every passage of the two revisions about to be suppressed, with its text as it is now
    suppressed_texts = {
        (p.passage_id, reason): p.text
        for revision, reason in (
            ((WIKI, REV_2025), "hidden"),
            (("enwikiversity", 2254003), "deleted"),
        )
        for p in store.passages_of_revision(*revision)
    }
    store.close()
    assert len(suppressed_texts) > 2
    snippets = {text[:60] for text in suppressed_texts.values()}  # a distinctive piece of each
    assert len(snippets) > 2 and min(map(len, snippets)) >= 20
    versity_delete = {
        "event": {"type": "delete"},
        "identifier": VERSITY_PAGE,
        "is_part_of": {"identifier": "enwikiversity"},
        "namespace": {"identifier": 0},
    }
    hide = {
        "event": {"type": "visibility-change"},
        "identifier": PAGE,
        "is_part_of": {"identifier": WIKI},
        "version": {"identifier": REV_2025},
        "visibility": {"text": False, "editor": True, "comment": True},
    }
    unknown_delete = {**versity_delete, "identifier": 99999999}
    unknown_update = _snapshot_article(28492)  # "Squirrel": a page not indexed yet
    source = _write_events(
        tmp_path / "events.ndjson",
        [versity_delete, hide, unknown_delete, "{not json", unknown_update, "[1, 2]"],
    )
    report = apply_updates(index, [str(source)], _options(), embedder=_embedder())
    assert report.pages_deleted == 1 and report.revisions_hidden == 1
    assert report.pages_added == 1  # the unknown page's update makes a new page
    assert report.unknown_count == 1 and report.unknown[0]["location"] == "events.ndjson: line 3"
    assert report.skipped == {"invalid-json": 1, "not-an-object": 1}
    assert [s.location for s in report.skipped_items] == [
        "events.ndjson: line 4",
        "events.ndjson: line 6",
    ]
    # gone from search at once
    for query in QUERIES:
        for passage_id, revision in _search(index, query, k=20):
            assert not passage_id.startswith("enwikiversity:")
            assert revision != REV_2025
    settings = Settings(
        index_dir=index,
        keys_db=tmp_path / "keys.sqlite",
        open_access=True,
        rate_limit_per_minute=0,
        reload_poll_seconds=0,
        update_poll_seconds=0,
        progress=False,
    )
    with TestClient(create_app(settings, embedder=_embedder())) as client:
        for passage_id, reason in ((einstein_passage, "hidden"), (versity, "deleted")):
            response = client.get(f"/v1/passages/{passage_id}")
            assert response.status_code == 410, response.text
            assert response.json()["error"]["details"]["reason"] == reason
            assert "text" not in response.text or passage_id not in response.json().get("text", "")
        # no text of a suppressed revision anywhere in what the service answers about it
        gone: list[str] = []
        for passage_id, reason in suppressed_texts:
            response = client.get(f"/v1/passages/{passage_id}")
            assert response.status_code == 410, response.text
            assert response.json()["error"]["code"] == f"revision-{reason}"
            gone.append(response)
        response = client.get(f"/v1/citations/{WIKI}/revisions/{REV_2025}")
        assert response.status_code == 410 and response.json()["error"]["code"] == "revision-hidden"
        gone.append(response)
        response = client.get("/v1/citations/enwikiversity/revisions/2254003")
        assert response.status_code == 410
        assert response.json()["error"]["code"] == "revision-deleted"
        gone.append(response)
        for answer in gone:
            # the raw body, and every string in it once JSON-decoded (escapes undone)
            body = "\n".join([answer.text, *_strings(answer.json())])
            leaked = [snippet for snippet in snippets if snippet in body]
            assert not leaked, (leaked, answer.text[:300])
        # an older, visible revision of Einstein is still citable
        assert client.get(f"/v1/passages/{old_passage}").status_code == 200
    # the resolver says the same without HTTP
    loaded = LoadedIndex.open(index, _embedder().info)
    with pytest.raises(CitationError) as caught:
        CitationResolver(loaded.store).by_url("https://en.wikipedia.org/wiki/Albert_Einstein")
    assert http_status(caught.value.code) == 410
    loaded.close()
    # showing the text again brings the revision back into search
    show = {**hide, "visibility": {"text": True, "editor": True, "comment": True}}
    apply_updates(
        index,
        [str(_write_events(tmp_path / "show.ndjson", [show]))],
        _options(),
        embedder=_embedder(),
    )
    revisions = {rev for pid, rev in _search(index, QUERIES[0]) if pid.startswith(f"{WIKI}:")}
    assert REV_2025 in revisions


# -- while the service serves ------------------------------------------------------------------


def test_updates_become_visible_to_a_serving_service_without_failed_requests(
    base: Path, forward: dict[str, Any], events: dict[str, Any], tmp_path: Path
) -> None:
    index = _copy(base, tmp_path / "index", cache_from=forward["index"])
    poll = 0.5
    settings = Settings(
        index_dir=index,
        keys_db=tmp_path / "keys.sqlite",
        open_access=True,
        rate_limit_per_minute=0,
        reload_poll_seconds=0,
        update_poll_seconds=poll,
        progress=False,
    )
    failures: list[str] = []
    answered = 0
    stop = threading.Event()

    with TestClient(create_app(settings, embedder=_embedder())) as client:

        def query() -> None:
            nonlocal answered
            while not stop.is_set():
                for q in QUERIES:
                    response = client.post("/v1/search", json={"query": q, "k": 5})
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                    answered += 1

        def current_revisions() -> set[int]:
            body = client.post("/v1/search", json={"query": QUERIES[0], "k": 5}).json()
            return {r["revision_id"] for r in body["results"] if r["wiki"] == WIKI}

        # The service opened the store as the build left it (rollback journal); the first
        # update switches it to WAL under the service's read-only connections.
        assert current_revisions() == {REV_2016}
        threads = [threading.Thread(target=query) for _ in range(2)]
        for thread in threads:
            thread.start()
        visible_after: list[float] = []
        try:
            for revision, name in ((REV_2022, "r2022"), (REV_2025, "r2025")):
                apply_updates(index, [str(events[name])], _options(), embedder=_embedder())
                applied = time.monotonic()
                while current_revisions() != {revision}:
                    assert time.monotonic() - applied < poll + 3.0, "update not visible in time"
                    time.sleep(0.05)
                visible_after.append(time.monotonic() - applied)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert not failures, failures[:3]
    assert answered > 0
    assert max(visible_after) < poll + 3.0


# -- killed midway ------------------------------------------------------------------------------


def _checkpoint(index: Path) -> int:
    path = IndexLayout(index).current().file("store.sqlite")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.2)
        try:
            row = conn.execute("SELECT MAX(position) FROM update_checkpoints").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
    return int(row[0] or 0)


def test_an_update_killed_midway_resumes_to_the_same_state(
    base: Path, forward: dict[str, Any], events: dict[str, Any], tmp_path: Path
) -> None:
    # The cache knows the 2022 revision's texts, not the 2025 one's: the second event takes
    # seconds, long enough to be killed in the middle of it.
    index = _copy(base, tmp_path / "index", cache_from=forward["cache_2022"])
    env = {**os.environ, "WIKIRAG_UPDATE_BATCH": "1", "WIKIRAG_PROGRESS": "false"}
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "update",
        "--index",
        str(index),
        "--json",
        str(events["forward"]),
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while _checkpoint(index) < 1 and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the update finished before it was killed"
    assert _checkpoint(index) == 1
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert list(summary["resumed_from"].values()) == [1]
    assert summary["events"] == {"update": 1}
    assert _state(index) == forward["state"]
    store = PassageStore(IndexLayout(index).current().file("store.sqlite"))
    try:
        assert store.integrity_check() == "ok"
    finally:
        store.close()


def _current_revision(index: Path) -> int | None:
    path = IndexLayout(index).current().file("store.sqlite")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT current_revision_id FROM pages WHERE wiki = ? AND page_id = ?", (WIKI, PAGE)
        ).fetchone()
    finally:
        conn.close()
    return None if row is None else int(row[0])


def test_a_realtime_stream_applies_each_event_on_arrival_with_the_stream_kept_open(
    base: Path, events: dict[str, Any], tmp_path: Path
) -> None:
    """`wikirag update --index DIR -` with one event written to its stdin and the stream
    left open: the event is applied (committed, announced) while the process still waits
    for more — not held until the batch of 100 fills or the stream ends."""
    index = _copy(base, tmp_path / "index")
    env = {**os.environ, "WIKIRAG_PROGRESS": "false"}  # the default batch: 100 events
    command = [sys.executable, "-m", "app.cli", "update", "--index", str(index), "--json", "-"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None
    try:
        process.stdin.write((json.dumps(events["rev2022"]) + "\n").encode())
        process.stdin.flush()
        deadline = time.monotonic() + 90  # loading the model and embedding the revision
        while _current_revision(index) != REV_2022:
            assert process.poll() is None, "the update exited before its stream ended"
            assert time.monotonic() < deadline, "the event was not applied on arrival"
            time.sleep(0.05)
        assert process.poll() is None  # applied while the stream is still open
        assert _search(index, "Einstein")[0][1] == REV_2022
    finally:
        process.stdin.close()  # the stream ends: the update exits
    assert process.wait(timeout=180) == 0
    assert process.stdout is not None
    summary = json.loads(process.stdout.read())
    assert summary["events"] == {"update": 1}


def test_a_paused_stream_is_marked_and_its_errors_are_raised() -> None:
    from indexer.update import IDLE, arriving

    def paused() -> Any:
        yield 1
        time.sleep(0.4)
        yield 2

    assert list(arriving(paused(), 0.05)) == [1, IDLE, 2]

    def broken() -> Any:
        yield 1
        raise ValueError("a bad stream")

    items = arriving(broken(), 5.0)
    assert next(items) == 1
    with pytest.raises(ValueError, match="a bad stream"):
        next(items)
