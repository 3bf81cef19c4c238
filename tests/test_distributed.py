"""The distributed build on a real local Ray runtime: same store, indexes and results as the
local build; a worker killed mid-job is retried and the output stays complete.

Run alone with ``pytest -m ray``. The sources are made small (≈150 passages) but cover every
kind of work unit: multistream XML streams, archive members, line ranges of a member and of
a gzip NDJSON file, unsafe and broken items, and a source given twice.
"""

from __future__ import annotations

import bz2
import gzip
import importlib.util
import io
import json
import re
import sqlite3
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.retrieval.ranking import SearchMode, SearchRequest
from app.retrieval.retriever import HybridRetriever, LoadedIndex
from indexer.build import BuildError, BuildOptions, build_index
from indexer.distributed.shards import FailOnce, decode_item, encode_item, prepare_unit
from indexer.distributed.units import SplitOptions, plan_units, read_unit
from indexer.embedding import Embedder
from indexer.generation import IndexLayout
from indexer.ingest import IngestOptions, prepare_revision
from indexer.models import RawRevision, SkippedItem
from indexer.sources.open import SourceError, open_source
from tests.conftest import ROOT, SAMPLES

HAVE_RAY = importlib.util.find_spec("ray") is not None  # the optional extra wikirag[ray]
NO_RAY = "ray is not installed (pip install 'wikirag[ray]')"
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason=NO_RAY)
pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),
]

OPTIONS = BuildOptions(ingest=IngestOptions(progress=False), progress=False)
SPLIT = SplitOptions(streams_per_unit=1, lines_per_unit=2)
QUERIES = [
    "theory of relativity",
    "Einstein Nobel prize",
    "языки программирования",
    "logical fallacy affirming the consequent",
    "river in Europe",
    "disambiguation",
]


# --------------------------------------------------------------------------- sources


def _multistream(dest: Path) -> Path:
    """A bz2 multistream dump with its index: the enwiki sample's 4 shortest redirects and 6
    shortest articles, 3 pages a stream, header and footer streams as Wikimedia writes them."""
    with bz2.open(SAMPLES / "enwiki-sample-pages-articles.xml.bz2") as handle:
        data = handle.read()
    first = data.index(b"  <page>")
    header, body = data[:first], data[first : data.rindex(b"</mediawiki>")]
    pages = [b"  <page>" + p for p in body.split(b"  <page>")[1:]]
    redirects = sorted(
        (i for i, p in enumerate(pages) if b"<redirect" in p), key=lambda i: len(pages[i])
    )
    articles = sorted(
        (i for i, p in enumerate(pages) if b"<redirect" not in p), key=lambda i: len(pages[i])
    )
    chosen = [pages[i] for i in sorted(redirects[:4] + articles[:6])]
    dump = dest / "enwiki-test-pages-articles-multistream.xml.bz2"
    lines = []
    with dump.open("wb") as out:
        out.write(bz2.compress(header))
        for start in range(0, len(chosen), 3):
            offset = out.tell()
            for page in chosen[start : start + 3]:
                page_id = re.search(rb"<id>(\d+)</id>", page)
                title = re.search(rb"<title>(.*?)</title>", page)
                assert page_id and title
                lines.append(f"{offset}:{page_id[1].decode()}:{title[1].decode()}")
            out.write(bz2.compress(b"".join(chosen[start : start + 3])))
        out.write(bz2.compress(b"</mediawiki>\n"))
    index = dest / "enwiki-test-pages-articles-multistream-index.txt.bz2"
    index.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    return dump


def _member_lines(name: str) -> list[bytes]:
    with tarfile.open(SAMPLES / "wme" / name) as archive:
        member = next(m for m in archive.getmembers() if m.isfile())
        handle = archive.extractfile(member)
        assert handle is not None
        return [line for line in handle.read().splitlines() if line.strip()]


def _snapshot(dest: Path) -> Path:
    """A WME-like snapshot: a directory, an unsafe member, a one-article member, a README,
    and a member of three lines (two articles and a broken line) cut into line ranges."""
    simple = _member_lines("simplewiki_namespace_0.tar.gz")
    mixed = [*_member_lines("ruwiki_namespace_0.tar.gz"), b"{not json",
             *_member_lines("enwikiversity_namespace_0.tar.gz")]  # fmt: skip
    path = dest / "mixed_namespace_0.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, lines in (
            ("snapshot/", None),
            ("../evil.ndjson", [b"{}"]),
            ("snapshot/simple_0.ndjson", simple),
            ("snapshot/README.txt", [b"not read"]),
            ("snapshot/mixed_1.ndjson", mixed),
        ):
            info = tarfile.TarInfo(name)
            if lines is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
                continue
            payload = b"\n".join(lines) + b"\n"
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


def _ndjson(dest: Path) -> Path:
    """Plain gzip NDJSON: the Russian article again (unchanged for the store), a blank line,
    a JSON array (skipped), and the Wikiversity article; cut into two line ranges."""
    lines = [*_member_lines("ruwiki_namespace_0.tar.gz"), b"", b"[1, 2]",
             *_member_lines("enwikiversity_namespace_0.tar.gz")]  # fmt: skip
    path = dest / "realtime.ndjson.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    dest = tmp_path_factory.mktemp("sources")
    snapshot = _snapshot(dest)
    # The snapshot twice: the second reading finds every revision stored already.
    return [_multistream(dest), snapshot, _ndjson(dest), snapshot]


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[None]:
    """One local Ray runtime (2 CPUs) shared by the module's builds."""
    if not HAVE_RAY:
        pytest.skip(NO_RAY)
    import logging

    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False)  # fmt: skip
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def local_index(
    sources: list[Path], tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Path:
    index_dir = tmp_path_factory.mktemp("local")
    build_index(sources, index_dir, OPTIONS, embedder=embedder)
    return index_dir


@pytest.fixture(scope="module")
def ray_index(
    sources: list[Path], tmp_path_factory: pytest.TempPathFactory, ray_runtime: None
) -> Path:
    from indexer.distributed.ray_build import RayOptions, build_index_ray

    index_dir = tmp_path_factory.mktemp("ray")
    build_index_ray(sources, index_dir, OPTIONS, RayOptions(split=SPLIT, embed_actors=1))
    return index_dir


# --------------------------------------------------------------------------- helpers


def _passages(index_dir: Path) -> list[tuple[Any, ...]]:
    path = IndexLayout(index_dir).current().file("store.sqlite")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute(
            "SELECT id, passage_id, wiki, page_id, revision_id, section_ordinal, ordinal, "
            "start_offset, end_offset, text FROM passages ORDER BY id"
        ).fetchall()


def _table(index_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    path = IndexLayout(index_dir).current().file("store.sqlite")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def _results(index_dir: Path, embedder: Embedder) -> dict[str, list[str]]:
    index = LoadedIndex.open(index_dir, embedder.info)
    retriever = HybridRetriever(index, embedder)
    out = {}
    for query in QUERIES:
        for mode in (SearchMode.DENSE, SearchMode.LEXICAL, SearchMode.HYBRID):
            hits = retriever.search(SearchRequest(query, k=10, mode=mode))
            out[f"{mode.value}:{query}"] = [h.passage.passage_id for h in hits]
    return out


# --------------------------------------------------------------------------- tests


def test_work_units_read_exactly_what_the_whole_sources_give(sources: list[Path]) -> None:
    units = plan_units(sources, SPLIT)
    kinds = [u.kind for u in units]
    assert kinds.count("multistream") == 4  # 10 pages, 3 a stream
    assert "lines" in kinds and "member" in kinds
    assert [u.unit_id for u in units] == [f"u{i:05d}" for i in range(len(units))]

    def key(item: Any) -> tuple[Any, ...]:
        if isinstance(item, RawRevision):
            return ("rev", item.wiki, item.revision_id, item.title, item.location,
                    item.redirect_target, len(item.wikitext))  # fmt: skip
        return ("skip", item.reason, item.location)

    whole = [key(i) for s in sources for i in open_source(s)]
    split = [key(i) for u in units for i in read_unit(u, IngestOptions(progress=False))]
    assert split == whole
    reasons = {k[1] for k in whole if k[0] == "skip"}
    assert reasons == {"unsafe-tar-member", "invalid-json", "not-an-object"}
    # A dump without an index file is one unit; so is a file that cannot be split.
    plain = plan_units([SAMPLES / "enwiki-sample-pages-articles.xml.bz2"], SPLIT)
    assert [u.kind for u in plain] == ["file"]


def test_shard_items_round_trip_exactly(sources: list[Path]) -> None:
    options = IngestOptions(progress=False)
    items = list(open_source(sources[1]))  # skips, an article, a broken line, two articles
    assert {type(i) for i in items} == {RawRevision, SkippedItem}
    for item in items:
        prepared = prepare_revision(item, options) if isinstance(item, RawRevision) else None
        back, back_prepared = decode_item(encode_item(item, prepared))
        expected = replace(item, wikitext="") if isinstance(item, RawRevision) else item
        assert back == expected and back_prepared == prepared
    # A lone surrogate (valid JSON, invalid UTF-8) survives the shard file exactly.
    article = next(i for i in items if isinstance(i, RawRevision))
    odd = replace(article, title="Odd \ud800 title")
    assert decode_item(encode_item(odd, None))[0] == replace(odd, wikitext="")


def test_a_retried_unit_writes_the_same_shard_file(sources: list[Path], tmp_path: Path) -> None:
    unit = plan_units(sources, SPLIT)[5]
    options = IngestOptions(progress=False)
    first = prepare_unit(unit, options, tmp_path)
    again = prepare_unit(unit, options, tmp_path)  # as a retry would, over the first
    assert first.items_sha256 == again.items_sha256 and first.passages == again.passages > 0
    assert [p.name for p in tmp_path.iterdir()] == [f"{unit.unit_id}.items.ndjson.gz"]


def test_ray_build_gives_the_local_store_and_manifest(local_index: Path, ray_index: Path) -> None:
    local, distributed = _passages(local_index), _passages(ray_index)
    assert len(local) > 100
    assert distributed == local  # same rows, ids, offsets and texts
    assert len({row[1] for row in distributed}) == len(distributed)
    for table in ("wikis", "pages", "revisions", "sections", "aliases"):
        sql = f"SELECT * FROM {table} ORDER BY 1, 2"
        assert _table(ray_index, sql) == _table(local_index, sql), table

    ours = IndexLayout(ray_index).current()
    theirs = IndexLayout(local_index).current()
    assert ours.manifest.counts == theirs.manifest.counts
    assert ours.manifest.dense == theirs.manifest.dense
    assert ours.manifest.ingest == theirs.manifest.ingest
    assert ours.manifest.sources == theirs.manifest.sources
    assert ours.manifest.engine == "ray" and theirs.manifest.engine is None
    assert "engine" not in theirs.manifest.to_json()
    shards = ours.manifest.shards
    assert shards is not None
    assert [s["unit"] for s in shards] == [f"u{i:05d}" for i in range(len(shards))]
    assert sum(s["passages"] for s in shards) > ours.manifest.counts.indexed_passages
    assert all(len(s["vectors_sha256"]) == 64 for s in shards)
    embedding = ours.manifest.embedding
    assert embedding is not None
    assert embedding["hits"] + embedding["misses"] == sum(s["passages"] for s in shards)
    assert embedding["hits"] > 0  # the snapshot's second reading found its vectors cached
    # the same published layout: no shards, no vectors left behind
    assert sorted(p.name for p in ours.path.iterdir()) == sorted(
        p.name for p in theirs.path.iterdir()
    )


def test_ray_build_gives_the_same_search_results(
    local_index: Path, ray_index: Path, embedder: Embedder
) -> None:
    expected = _results(local_index, embedder)
    assert [key for key, ids in expected.items() if not ids] == []
    assert _results(ray_index, embedder) == expected


def test_a_killed_worker_is_retried_and_the_output_is_complete(
    sources: list[Path], local_index: Path, tmp_path: Path, ray_runtime: None
) -> None:
    """A prepare task and an embedding actor each die by SIGKILL half-way through their
    first attempt (a marker file remembers it); Ray retries both, and the index holds every
    passage once, as the local build does."""
    from indexer.distributed.ray_build import RayOptions, build_index_ray

    markers = tmp_path / "markers"
    markers.mkdir()
    fault = FailOnce(str(markers), (("prepare", 5), ("embed", 2)))
    index_dir = tmp_path / "index"
    ray_options = RayOptions(split=SPLIT, embed_actors=1, embedding_cache=False, fail_once=fault)
    report = build_index_ray(sources, index_dir, OPTIONS, ray_options)
    assert sorted(p.name for p in markers.iterdir()) == ["embed-2", "prepare-5"]
    assert _passages(index_dir) == _passages(local_index)
    manifest = IndexLayout(index_dir).current().manifest
    assert manifest.counts == IndexLayout(local_index).current().manifest.counts
    assert report.passages == manifest.counts.indexed_passages
    assert manifest.shards is not None and len(manifest.shards) == len(plan_units(sources, SPLIT))
    assert not (IndexLayout(index_dir).current().path / "shards").exists()
    index = LoadedIndex.open(index_dir, None)
    assert index.dense.ntotal == report.passages
    assert not IndexLayout(index_dir).embedding_cache_path.exists()  # embedding_cache=False


def test_a_source_error_fails_the_ray_build_and_publishes_nothing(
    tmp_path: Path, ray_runtime: None
) -> None:
    from indexer.distributed.ray_build import RayOptions, build_index_ray

    export = tmp_path / "nosite.xml"  # no <siteinfo> and no --wiki: which wiki is unknown
    export.write_text(
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/"><page><title>A</title>'
        "<ns>0</ns><id>1</id><revision><id>2</id><timestamp>2020-01-01T00:00:00Z</timestamp>"
        "<text>Hello.</text></revision></page></mediawiki>"
    )
    index_dir = tmp_path / "index"
    with pytest.raises(SourceError, match="--wiki"):
        build_index_ray([export], index_dir, OPTIONS, RayOptions())
    assert not (index_dir / "current").exists()
    assert list((index_dir / "generations").iterdir()) == []


def test_a_unit_that_keeps_killing_its_worker_fails_the_build(
    tmp_path: Path, ray_runtime: None
) -> None:
    from indexer.distributed.ray_build import RayOptions, build_index_ray

    source = SAMPLES / "wme" / "enwikiversity_namespace_0.tar.gz"
    fault = FailOnce(str(tmp_path), (("prepare", 0),), times=5)
    with pytest.raises(BuildError, match="killed its worker 2 times"):
        build_index_ray([source], tmp_path / "index", OPTIONS,
                        RayOptions(max_retries=1, fail_once=fault))  # fmt: skip
    assert (tmp_path / "prepare-0").read_text() == "2"  # two kills, then it gave up
    assert not (tmp_path / "index" / "current").exists()


# --------------------------------------------------------------------------- CLI


def _wikirag(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@needs_ray
def test_cli_builds_on_a_local_ray_runtime_it_starts(tmp_path: Path) -> None:
    source = SAMPLES / "wme" / "enwikiversity_namespace_0.tar.gz"
    index = str(tmp_path / "index")
    done = _wikirag("build", "--engine", "ray", "--ray-cpus", "2", "--embed-actors", "1",
                    "--index", index, "--no-progress", "--json", str(source))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    manifest = IndexLayout(tmp_path / "index").current().manifest
    assert manifest.engine == "ray" and manifest.shards is not None
    assert [s["unit"] for s in manifest.shards] == ["u00000"]
    assert summary["passages_indexed"] == manifest.counts.indexed_passages > 0


def test_cli_engine_flags_and_a_clear_error_without_ray(tmp_path: Path) -> None:
    source = str(SAMPLES / "wme" / "enwikiversity_namespace_0.tar.gz")
    index = str(tmp_path / "index")
    local = _wikirag("build", "--embed-actors", "2", "--index", index, source)
    assert local.returncode == 1 and "--embed-actors only apply to --engine ray" in local.stderr
    # Without ray installed (simulated: its import fails), the message says how to get it.
    script = (
        "import sys; sys.modules['ray'] = None; from app.cli.main import main; "
        f"sys.exit(main(['build', '--engine', 'ray', '--index', {index!r}, {source!r}]))"
    )
    missing = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert missing.returncode == 1, missing.stderr[-2000:]
    assert "pip install 'wikirag[ray]'" in missing.stderr
    assert not (Path(index) / "current").exists()


@needs_ray
def test_cli_refuses_ray_cpus_with_a_cluster_address(tmp_path: Path) -> None:
    source = str(SAMPLES / "wme" / "enwikiversity_namespace_0.tar.gz")
    both = _wikirag("build", "--engine", "ray", "--ray-address", "auto", "--ray-cpus", "2",
                    "--index", str(tmp_path / "index"), source)  # fmt: skip
    assert both.returncode == 1 and "--ray-cpus sizes a local Ray runtime" in both.stderr


def test_the_default_install_does_not_import_ray() -> None:
    script = (
        "import sys; import app.cli.main, app.api.main, indexer.build, indexer.update, "
        "indexer.distributed.units, indexer.distributed.shards; "
        "sys.exit(1 if 'ray' in sys.modules else 0)"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:] or "ray was imported"
