"""Building, publishing and searching a real hybrid index from a handful of real articles."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.retrieval.ranking import SearchMode, SearchRequest
from app.retrieval.retriever import HybridRetriever, LoadedIndex, ModelMismatch
from indexer.build import BuildError, BuildOptions, build_index, rebuild_index
from indexer.embedding import Embedder, ModelInfo
from indexer.generation import IndexLayout, NoPublishedIndex
from indexer.ingest import IngestOptions
from tests.conftest import ROOT, SAMPLES

pytestmark = pytest.mark.slow

SMALL = [
    SAMPLES / "wme" / "simplewiki_namespace_0.tar.gz",  # Albert Einstein, simple English
    SAMPLES / "wme" / "ruwiki_namespace_0.tar.gz",  # Squirrel, Russian
    SAMPLES / "wme" / "enwikiversity_namespace_0.tar.gz",
]
OPTIONS = BuildOptions(ingest=IngestOptions(progress=False), progress=False)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Path]:
    index_dir = tmp_path_factory.mktemp("index")
    build_index(SMALL, index_dir, OPTIONS, embedder=embedder)
    yield index_dir


def test_build_publishes_a_generation_with_a_complete_manifest(built: Path) -> None:
    layout = IndexLayout(built)
    generation = layout.current()
    manifest = generation.manifest
    assert manifest.model.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert manifest.model.dimension == 384 and manifest.model.normalized is True
    assert manifest.dense.factory == "IDMap2,Flat"
    assert manifest.counts.pages == 3 and manifest.counts.revisions == 3
    assert manifest.counts.passages == manifest.counts.indexed_passages > 20
    assert {Path(s.path).name for s in manifest.sources} == {p.name for p in SMALL}
    assert all(len(s.sha256) == 64 for s in manifest.sources)
    for name in ("store.sqlite", "dense.faiss", "lexical", "manifest.json"):
        assert (generation.path / name).exists()
    assert not list(generation.path.glob("*.npy"))
    assert (built / "current").is_symlink()


def test_search_modes_return_attributable_passages(built: Path, embedder: Embedder) -> None:
    index = LoadedIndex.open(built, embedder.info)
    retriever = HybridRetriever(index, embedder)
    for mode in SearchMode:
        hits = retriever.search(SearchRequest("theory of relativity", k=5, mode=mode))
        assert hits, mode
        top = hits[0].passage
        assert top.wiki in {"simplewiki", "enwikiversity"}, mode
        assert "fused" in hits[0].scores
        assert top.license.identifier == "CC-BY-SA-3.0"
    # Russian query finds the Russian article through the Russian analyser.
    hits = retriever.search(SearchRequest("языки программирования", k=3, mode=SearchMode.LEXICAL))
    assert hits and hits[0].passage.wiki == "ruwiki"
    # filters and caps
    hits = retriever.search(SearchRequest("Einstein", k=10, wikis=("enwikiversity",)))
    assert hits and {h.passage.wiki for h in hits} == {"enwikiversity"}
    hits = retriever.search(SearchRequest("Einstein physics", k=10, max_per_article=2))
    per_page: dict[int, int] = {}
    for h in hits:
        per_page[h.passage.page_id] = per_page.get(h.passage.page_id, 0) + 1
    assert max(per_page.values()) <= 2
    assert retriever.search(SearchRequest("Einstein", k=5, wikis=("nosuchwiki",))) == []


def test_an_index_built_with_another_model_is_refused(built: Path) -> None:
    other = ModelInfo(model_id="some/other-model", dimension=768, normalized=True,
                      max_seq_length=512)  # fmt: skip
    with pytest.raises(ModelMismatch, match="some/other-model"):
        LoadedIndex.open(built, other)


def test_rebuild_reuses_the_cache_and_reports_changes(tmp_path: Path, embedder: Embedder) -> None:
    index_dir = tmp_path / "index"
    first = build_index(SMALL[:2], index_dir, OPTIONS, embedder=embedder)
    assert first.embedding.misses == first.passages > 0
    again = rebuild_index(index_dir, options=OPTIONS, embedder=embedder)
    assert again.embedding.misses == 0 and again.embedding.hits == first.passages
    assert again.changes is not None and again.changes.as_dict() == {
        "pages_added": 0, "pages_updated": 0, "pages_removed": 0}  # fmt: skip
    third = rebuild_index(index_dir, SMALL[1:], OPTIONS, embedder=embedder)
    assert third.changes is not None
    assert third.changes.pages_added == 1 and third.changes.pages_removed == 1
    assert third.embedding.hits > 0 and third.embedding.misses > 0
    layout = IndexLayout(index_dir)
    assert layout.current().generation == third.generation
    assert len(layout.published()) == 3
    fourth = rebuild_index(
        index_dir, options=BuildOptions(ingest=OPTIONS.ingest, progress=False,
                                        keep_generations=2), embedder=embedder)  # fmt: skip
    assert len(fourth.pruned) == 2 and len(layout.published()) == 2


_NO_SITEINFO = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11">
  <page><title>Tiny</title><ns>0</ns><id>7</id>
    <revision><id>70</id><timestamp>2025-01-02T03:04:05Z</timestamp>
      <contributor><username>A</username><id>1</id></contributor>
      <model>wikitext</model><format>text/x-wiki</format>
      <text xml:space="preserve">A tiny article about '''rebuilds''' with no site
information in its export.</text><sha1>x</sha1></revision></page>
</mediawiki>
"""


def test_rebuild_reads_the_sources_with_the_recorded_wiki_name(
    tmp_path: Path, embedder: Embedder
) -> None:
    """An XML export without <siteinfo> needs --wiki; a rebuild (e.g. started by the service's
    admin route, which passes no ingest options) takes it from the manifest."""
    source = tmp_path / "tiny.xml"
    source.write_text(_NO_SITEINFO, encoding="utf-8")
    options = BuildOptions(ingest=IngestOptions(progress=False, wiki="enwiki"), progress=False)
    first = build_index([source], tmp_path / "index", options, embedder=embedder)
    manifest = IndexLayout(tmp_path / "index").current().manifest
    assert manifest.ingest.wiki == "enwiki" and manifest.ingest.namespaces == (0,)
    again = rebuild_index(tmp_path / "index", options=OPTIONS, embedder=embedder)
    assert again.passages == first.passages > 0
    assert again.embedding.misses == 0


def test_a_build_with_no_passages_publishes_nothing(tmp_path: Path, embedder: Embedder) -> None:
    empty = tmp_path / "empty.ndjson"
    empty.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(BuildError, match="no passages"):
        build_index([empty], tmp_path / "index", OPTIONS, embedder=embedder)
    with pytest.raises(NoPublishedIndex):
        IndexLayout(tmp_path / "index").current()
    assert not list((tmp_path / "index" / "generations").iterdir())


def test_a_killed_build_leaves_the_published_generation_untouched(
    built: Path, tmp_path: Path
) -> None:
    index_dir = tmp_path / "index"
    subprocess.run(["cp", "-a", str(built), str(index_dir)], check=True)
    before = IndexLayout(index_dir).current()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "build", "--no-progress", "--index", str(index_dir),
         str(SAMPLES / "wme" / "dewiki_namespace_0.tar.gz")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "WIKIRAG_COMMIT_EVERY": "1"},
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill it once it is embedding into its work dir
        building = list((index_dir / "generations").glob(".building-*/store.sqlite"))
        if building and (index_dir / "cache" / "embeddings.sqlite").exists():
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    after = IndexLayout(index_dir).current()
    assert after.generation == before.generation and after.manifest == before.manifest
    assert list((index_dir / "generations").glob(".building-*"))  # left by the kill
    IndexLayout(index_dir).cleanup_incomplete()
    assert not list((index_dir / "generations").glob(".building-*"))
    assert LoadedIndex.open(index_dir).store.integrity_check() == "ok"


def test_cli_build_search_and_eval(built: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "search", "--index", str(built), "--json", "-k", "3",
         "Einstein Nobel Prize"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 3
    assert rows[0]["url"].startswith("https://")
    assert "&oldid=" in rows[0]["url"]
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"id": "1", "question": "When did Einstein get the Nobel Prize?",
                    "answers": ["1921"]}) + "\n" +
        json.dumps({"id": "2", "question": "What do squirrels eat?", "answers": ["zzzz"]})
        + "\n", encoding="utf-8")  # fmt: skip
    out = tmp_path / "eval.json"
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "eval", "--no-progress", "--index", str(built),
         "--questions", str(questions), "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    assert set(figures["modes"]) == {"hybrid", "dense", "lexical"}
    assert figures["questions"] == 2 and figures["passages"] > 20
    for scores in figures["modes"].values():
        assert set(scores) == {"top1", "top5", "top10", "top20", "mrr20"}
        assert scores["top20"] == 0.5  # the squirrel question's answer is in no passage
