"""Embedder (the packaged all-MiniLM-L6-v2, loaded once for the module), cache and pipeline."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexer.embedding import (
    DEFAULT_MODEL_ID,
    Embedder,
    EmbeddingCache,
    EmbedStats,
    default_model_path,
    embed_with_cache,
    model_dir_fingerprint,
    text_hash,
)

pytestmark = pytest.mark.slow

TEXTS = [
    "The Normans were the people who gave their name to Normandy, a region in France.",
    "Warsaw is the capital and largest city of Poland.",
    "A steam engine is a heat engine that performs mechanical work using steam.",
    "Albert Einstein developed the theory of relativity.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "The Apollo 11 mission landed the first humans on the Moon in 1969.",
    "Anarchism is a political philosophy that is sceptical of authority.",
    "Algeria is a country in the Maghreb region of North Africa.",
    "Squirrels are members of the family Sciuridae.",
    "Autism is a neurodevelopmental condition.",
    "The Rhine flows from the Swiss Alps to the North Sea.",
    "Victoria is the capital city of British Columbia.",
]


@pytest.fixture(scope="module")
def embedder() -> Iterator[Embedder]:
    """The packaged model, loaded once, with every outgoing connection refused meanwhile."""

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the embedder tried to open a network connection")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", no_network)
        mp.setattr(socket, "create_connection", no_network)
        emb = Embedder(threads=2)
        emb.load()
    yield emb


def test_packaged_model_info(embedder: Embedder) -> None:
    info = embedder.info
    assert info.model_id == DEFAULT_MODEL_ID == "sentence-transformers/all-MiniLM-L6-v2"
    assert info.dimension == 384
    assert info.normalized is True
    assert info.max_seq_length == 256
    assert Embedder("sentence-transformers/all-MiniLM-L6-v2").model_id == DEFAULT_MODEL_ID


def test_encode_shape_norm_determinism(embedder: Embedder) -> None:
    vecs = embedder.encode(TEXTS)
    assert vecs.dtype == np.float32 and vecs.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    again = embedder.encode(TEXTS)
    assert np.allclose(vecs, again, atol=1e-6)
    q = embedder.encode_query(TEXTS[3])
    assert q.dtype == np.float32 and q.shape == (384,)
    assert np.allclose(q, vecs[3], atol=1e-5)
    assert np.array_equal(q, embedder.encode_query(TEXTS[3]))
    assert embedder.encode([]).shape == (0, 384)


def test_query_fast_path_gives_the_same_vectors_as_encode(embedder: Embedder) -> None:
    queries = ["When did Einstein receive the Nobel Prize?", "x", "Qui était Joséphine Baker ?",
               "word " * 400]  # fmt: skip
    batch = embedder.encode(queries)
    for row, query in zip(batch, queries, strict=True):
        single = embedder.encode_query(query)
        assert single.dtype == np.float32 and single.shape == (384,)
        assert np.allclose(single, row, atol=1e-5)


def test_paraphrase_closer_than_unrelated(embedder: Embedder) -> None:
    a, para, other = embedder.encode(
        [
            "Who developed the theory of relativity?",
            "The theory of relativity was developed by Albert Einstein.",
            "Squirrels bury nuts in autumn to eat in winter.",
        ]
    )
    assert float(a @ para) > float(a @ other) + 0.2


def test_model_id_of_directories(tmp_path: Path) -> None:
    packaged = Embedder(str(default_model_path()))
    assert packaged.model_id.startswith("model@")
    assert packaged.model_id != DEFAULT_MODEL_ID  # a directory is identified by content

    def fake_model(name: str, weights: bytes) -> Path:
        d = tmp_path / name
        d.mkdir()
        (d / "modules.json").write_text('[{"idx": 0, "type": "Transformer"}]')
        (d / "config.json").write_text('{"hidden_size": 8}')
        (d / "model.safetensors").write_bytes(weights)
        return d

    a = fake_model("a", b"\x00" * 64)
    b = fake_model("b", b"\x00" * 64)
    c = fake_model("c", b"\x01" * 64)  # same sizes, other weights (a fine-tuned model)
    assert model_dir_fingerprint(a) == model_dir_fingerprint(b)
    assert model_dir_fingerprint(a) != model_dir_fingerprint(c)
    assert Embedder(str(a)).model_id != Embedder(str(c)).model_id


def test_cache_roundtrip_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "emb.sqlite"
    rng = np.random.default_rng(0)
    items = [(text_hash(f"t{i}"), rng.standard_normal(8).astype(np.float32)) for i in range(700)]
    with EmbeddingCache(path) as cache:
        cache.put_many("m1", items)
        got = cache.get_many("m1", [h for h, _ in items] + ["absent"])
        assert len(got) == 700 and "absent" not in got
        assert all(np.array_equal(got[h], v) for h, v in items)
        assert cache.get_many("m2", [h for h, _ in items]) == {}
        assert cache.count("m1") == 700 and cache.count() == 700
    with pytest.raises(RuntimeError):
        cache.get_many("m1", [items[0][0]])
    reopened = EmbeddingCache(path)
    got = reopened.get_many("m1", [items[5][0]])
    assert np.array_equal(got[items[5][0]], items[5][1])
    reopened.close()
    reopened.close()  # idempotent
    assert text_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert text_hash("é") == hashlib.sha256("é".encode()).hexdigest()


def test_embed_with_cache_streams_hits_and_misses(embedder: Embedder, tmp_path: Path) -> None:
    texts = [*TEXTS[:10], TEXTS[0]]  # one duplicate
    with EmbeddingCache(tmp_path / "emb.sqlite") as cache:
        first = embed_with_cache(embedder, cache, iter(texts), batch_size=4, progress=False)
        batches = list(first)
        assert [b.shape for b in batches] == [(4, 384), (4, 384), (3, 384)]
        vecs = np.concatenate(batches)
        # the duplicate comes in a later batch, after the first copy was stored: a hit
        assert (first.stats.hits, first.stats.misses, first.stats.encoded) == (1, 10, 10)
        assert first.stats.seconds > 0
        assert np.allclose(vecs, embedder.encode(texts), atol=1e-5)

        second = embed_with_cache(embedder, cache, texts, batch_size=8, progress=True)
        again = np.concatenate(list(second))
        assert second.stats.misses == 0 and second.stats.hits == 11
        assert np.array_equal(vecs, again)

        # within one batch a duplicate text is encoded once, and a new text is a miss
        stats = EmbedStats()
        third = embed_with_cache(
            embedder, cache, [TEXTS[10], TEXTS[10], TEXTS[1]], progress=False, stats=stats
        )
        out = np.concatenate(list(third))
        assert third.stats is stats
        assert (stats.hits, stats.misses, stats.encoded) == (1, 2, 1)
        assert np.array_equal(out[0], out[1])

    # another model id does not hit
    with EmbeddingCache(tmp_path / "emb.sqlite") as cache:
        assert cache.get_many("other-model", [text_hash(t) for t in texts]) == {}
        assert len(cache.get_many(embedder.model_id, [text_hash(t) for t in texts])) == 10


def test_all_hits_never_load_the_model(embedder: Embedder, tmp_path: Path) -> None:
    vecs = embedder.encode(TEXTS[:3])
    with EmbeddingCache(tmp_path / "emb.sqlite") as cache:
        cache.put_many(
            DEFAULT_MODEL_ID, [(text_hash(t), v) for t, v in zip(TEXTS[:3], vecs, strict=True)]
        )
        fresh = Embedder()
        stream = embed_with_cache(fresh, cache, TEXTS[:3], progress=False)
        assert np.array_equal(np.concatenate(list(stream)), vecs)
        assert stream.stats.hits == 3
        assert fresh._model is None
