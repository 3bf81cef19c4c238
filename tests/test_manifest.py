"""The typed manifest (:mod:`indexer.manifest`): what publish writes is what load reads, keys
this version does not know survive a round trip, and a manifest that cannot be read is a
:class:`CorruptGeneration` naming the file and the field — never a ``KeyError`` later, in
whatever module first reads the missing key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexer.generation import MANIFEST, CorruptGeneration, IndexLayout
from indexer.manifest import (
    MANIFEST_FORMAT,
    ChunkingRecord,
    Counts,
    DenseRecord,
    IngestRecord,
    LexicalRecord,
    LexicalStats,
    Manifest,
    ManifestError,
    ModelRecord,
    ShardRecord,
    SourceRecord,
    record_json,
)

MODEL = ModelRecord("sentence-transformers/all-MiniLM-L6-v2", 384, True, 256, "title_section")
DENSE = DenseRecord.of(
    {"factory": "IDMap2,Flat", "metric": "inner_product", "dim": 384, "nlist": 0, "nprobe": None}
)


def _manifest(**changes: Any) -> Manifest:
    base = Manifest(
        model=MODEL,
        dense=DENSE,
        counts=Counts(wikis=1, pages=3, revisions=3, passages=41, indexed_passages=40, aliases=2),
        wikirag_version="0.1.0",
        built_at="2026-12-04T12:00:00Z",
        build_seconds=12.5,
        chunking=ChunkingRecord(max_words=120, overlap_words=20),
        retrieval={"fusion": "rrf", "rrf_k": 60},
        sources=(SourceRecord("/data/enwiki.xml.bz2", 1234, "ab" * 32),),
        ingest=IngestRecord(wiki="enwiki", namespaces=(0,), skipped={"redirect": 4}),
        embedding={"hits": 0, "misses": 40},
    )
    return base.replace(**changes)


def test_publish_writes_the_generation_id_and_format_and_load_reads_the_same(
    tmp_path: Path,
) -> None:
    layout = IndexLayout(tmp_path / "index")
    with layout.lock(), layout.new_generation() as work:
        published = layout.publish(work, _manifest())
    assert published.manifest.generation == published.generation == work.generation
    on_disk = json.loads((published.path / MANIFEST).read_text(encoding="utf-8"))
    assert on_disk["generation"] == work.generation and on_disk["format_version"] == 1
    assert on_disk["model"]["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert on_disk["counts"]["indexed_passages"] == 40
    assert on_disk["ingest"] == {"wiki": "enwiki", "namespaces": [0], "skipped": {"redirect": 4}}
    # one version field: the retired schema_version is not written any more
    assert "schema_version" not in on_disk
    # a local build's manifest names no engine, shards, shard or synthetic corpus
    assert not {"engine", "shards", "shard", "synthetic"} & on_disk.keys()
    assert on_disk["lexical"] == {"dir": "lexical", "engine": "tantivy", "scoring": "BM25"}
    loaded = layout.current()
    assert loaded.manifest == published.manifest
    assert loaded.manifest.sources[0].sha256 == "ab" * 32
    assert loaded.manifest.chunking == ChunkingRecord(120, 20)


def test_unknown_keys_are_kept_and_written_back(tmp_path: Path) -> None:
    data = {**_manifest(generation="g1").to_json(), "schema_version": 1, "future": {"a": [1]}}
    manifest = Manifest.from_json(data)
    assert manifest.extra == {"schema_version": 1, "future": {"a": [1]}}
    assert manifest.to_json() == data


def test_a_shard_manifest_round_trips_its_shard_and_lexical_stats() -> None:
    shard = ShardRecord(1, 2, "hash", "sha256(wiki:page_id) mod 2", ("enwiki", "ruwiki"), "g0")
    stats = LexicalStats(documents=40, tokens={"en": 900, "ru": 120})
    manifest = _manifest(generation="g1", shard=shard, lexical=LexicalRecord(stats=stats))
    data = manifest.to_json()
    assert data["shard"] == {
        "id": 1, "of": 2, "by": "hash", "key": "sha256(wiki:page_id) mod 2",
        "wikis": ["enwiki", "ruwiki"], "source_generation": "g0",
    }  # fmt: skip
    assert data["lexical"]["stats"] == {"documents": 40, "tokens": {"en": 900, "ru": 120}}
    assert Manifest.from_json(json.loads(json.dumps(data))) == manifest
    assert record_json(shard)["wikis"] == ["enwiki", "ruwiki"]


def test_a_ray_or_synthetic_manifest_round_trips_its_reports() -> None:
    units = ({"unit": "u00000", "passages": 12, "vectors_sha256": "c" * 64},)
    manifest = _manifest(generation="g1", engine="ray", shards=units, synthetic={"seed": 7})
    data = json.loads(json.dumps(manifest.to_json()))
    assert data["engine"] == "ray" and data["shards"][0]["unit"] == "u00000"
    assert data["synthetic"] == {"seed": 7}
    assert Manifest.from_json(data) == manifest


def _write(tmp_path: Path, data: Any) -> IndexLayout:
    layout = IndexLayout(tmp_path / "index")
    with layout.lock(), layout.new_generation() as work:
        published = layout.publish(work, _manifest())
    (published.path / MANIFEST).write_text(json.dumps(data), encoding="utf-8")
    return layout


def _good(tmp_path: Path) -> dict[str, Any]:
    return _manifest(generation="g1").to_json()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("generation"), "is not a generation manifest (no generation id)"),
        (lambda d: d.update(format_version=2), "has format 2; this wikirag reads format 1"),
        (lambda d: d.pop("model"), "is not a generation manifest (no manifest.model)"),
        (
            lambda d: d["model"].update(dimension="384"),
            "is not a generation manifest (model.dimension: expected an integer, got '384')",
        ),
        (
            lambda d: d["model"].update(dimension=True),
            "is not a generation manifest (model.dimension: expected an integer, got True)",
        ),
        (
            lambda d: d["counts"].update(indexed_passages=4.5),
            "is not a generation manifest (counts.indexed_passages: expected an integer, got 4.5)",
        ),
        (
            lambda d: d["dense"].pop("factory"),
            "is not a generation manifest (no dense.factory)",
        ),
        (
            lambda d: d.update(sources=[{"path": "/x", "size": 1}]),
            "is not a generation manifest (no sources[0].sha256)",
        ),
        (
            lambda d: d["ingest"].update(namespaces=["0"]),
            "is not a generation manifest (ingest.namespaces[]: expected an integer, got '0')",
        ),
    ],
    ids=[
        "no-id",
        "format",
        "no-model",
        "str-dim",
        "bool-dim",
        "float-count",
        "no-factory",
        "no-checksum",
        "str-namespace",
    ],
)
def test_a_bad_manifest_is_a_corrupt_generation_naming_file_and_field(
    tmp_path: Path, change: Any, message: str
) -> None:
    data = _good(tmp_path)
    change(data)
    layout = _write(tmp_path, data)
    path = layout.current_link.resolve() / MANIFEST
    with pytest.raises(CorruptGeneration) as caught:
        layout.current()
    assert str(caught.value) == f"{path} {message}"
    assert caught.value.path == path and caught.value.code == "index-unusable"


def test_an_unreadable_or_missing_manifest_keeps_its_message(tmp_path: Path) -> None:
    layout = _write(tmp_path, {})
    path = layout.current_link.resolve() / MANIFEST
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(CorruptGeneration, match=r"manifest\.json is unreadable: "):
        layout.current()
    path.unlink()
    with pytest.raises(CorruptGeneration) as caught:
        layout.current()
    assert str(caught.value) == f"{path} is missing"


def test_manifest_error_is_a_domain_error_with_a_code() -> None:
    with pytest.raises(ManifestError) as caught:
        Manifest.from_json([])
    assert caught.value.code == "corrupt-manifest"
    assert MANIFEST_FORMAT == 1


_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_counts = st.integers(min_value=0, max_value=2**40)


@given(
    model=st.builds(
        ModelRecord,
        _names,
        st.integers(1, 4096),
        st.booleans(),
        st.none() | st.integers(1, 8192),
        _names,
    ),
    counts=st.builds(Counts, _counts, _counts, _counts, _counts, _counts, _counts),
    nprobe=st.none() | st.integers(1, 1024),
    namespaces=st.none() | st.lists(st.integers(-2, 3000), max_size=4).map(tuple),
    shard=st.none()
    | st.builds(
        ShardRecord,
        st.integers(0, 9),
        st.integers(1, 10),
        _names,
        _names,
        st.lists(_names, max_size=3).map(tuple),
        _names,
    ),
    extra=st.dictionaries(_names.map(lambda k: f"x-{k}"), st.integers() | _names, max_size=3),
)
def test_json_round_trip_is_exact(
    model: ModelRecord,
    counts: Counts,
    nprobe: int | None,
    namespaces: tuple[int, ...] | None,
    shard: ShardRecord | None,
    extra: dict[str, Any],
) -> None:
    manifest = _manifest(
        generation="g",
        model=model,
        counts=counts,
        dense=DenseRecord("IVF64,SQ8", model.dimension, nlist=64, nprobe=nprobe),
        ingest=IngestRecord(wiki=None, namespaces=namespaces),
        shard=shard,
        extra=extra,
    )
    data = json.loads(json.dumps(manifest.to_json()))
    assert Manifest.from_json(data) == manifest
    assert Manifest.from_json(data).to_json() == data
