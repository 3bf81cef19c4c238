"""DenseIndex against real FAISS: exactness of Flat, recall of IVF,SQ8, persistence, updates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from indexer.dense import (
    DenseHit,
    DenseIndex,
    default_index_factory,
    default_nprobe,
)

pytestmark = pytest.mark.slow

DIM = 64
FloatArray = npt.NDArray[np.float32]


def normalised(x: FloatArray) -> FloatArray:
    out: FloatArray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def random_vectors(n: int, seed: int = 0, dim: int = DIM) -> FloatArray:
    return normalised(np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32))


def clustered_vectors(n: int, n_clusters: int = 200, seed: int = 0) -> FloatArray:
    """Random vectors around random centres: the shape real embeddings have (topics)."""
    rng = np.random.default_rng(seed)
    centres = random_vectors(n_clusters, seed + 1000)
    labels = rng.integers(0, n_clusters, n)
    noise = rng.standard_normal((n, DIM), dtype=np.float32) * 0.08
    return normalised(centres[labels] + noise)


def batches(
    ids: npt.NDArray[np.int64], vecs: FloatArray, size: int
) -> Iterator[tuple[npt.NDArray[np.int64], FloatArray]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size], vecs[start : start + size]


def exact_topk(
    corpus: FloatArray, ids: npt.NDArray[np.int64], queries: FloatArray, k: int
) -> npt.NDArray[np.int64]:
    scores = queries @ corpus.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return ids[order]


def hit_ids(hits: list[DenseHit]) -> list[int]:
    return [h.doc_id for h in hits]


# ids deliberately not 0..n-1: the index must return the caller's ids.
N_SMALL = 3000


@pytest.fixture(scope="module")
def small() -> tuple[npt.NDArray[np.int64], FloatArray, FloatArray]:
    ids = np.arange(N_SMALL, dtype=np.int64) * 7 + 1_000_000
    return ids, random_vectors(N_SMALL, seed=1), random_vectors(20, seed=2)


@pytest.fixture(scope="module")
def flat(small: tuple[npt.NDArray[np.int64], FloatArray, FloatArray]) -> DenseIndex:
    ids, vecs, _ = small
    return DenseIndex.build(batches(ids, vecs, 1000), dim=DIM, n_hint=N_SMALL)


def test_default_factory_choices() -> None:
    assert default_index_factory(10_000) == "Flat"
    assert default_index_factory(199_999) == "Flat"
    assert default_index_factory(1_000_000) == "IVF4096,SQ8"
    assert default_index_factory(4_000_000) == "IVF8192,SQ8"
    assert default_nprobe(4096) == 8
    assert default_nprobe(4) == 4
    assert default_nprobe(16384) == 32


def test_flat_equals_brute_force(
    flat: DenseIndex, small: tuple[npt.NDArray[np.int64], FloatArray, FloatArray]
) -> None:
    ids, vecs, queries = small
    assert flat.factory_string == "IDMap2,Flat"
    assert flat.ntotal == N_SMALL and flat.dim == DIM
    assert flat.params == {
        "factory": "IDMap2,Flat",
        "metric": "inner_product",
        "dim": DIM,
        "nlist": None,
        "nprobe": None,
    }
    expected = exact_topk(vecs, ids, queries, 10)
    for q, exp in zip(queries, expected, strict=True):
        hits = flat.search(q, 10)
        assert hit_ids(hits) == exp.tolist()
        assert [h.score for h in hits] == pytest.approx(
            sorted(vecs @ q, reverse=True)[:10], abs=1e-5
        )
    batch = flat.search_batch(queries, 10)
    assert [hit_ids(h) for h in batch] == expected.tolist()


def test_search_edge_cases(flat: DenseIndex) -> None:
    q = random_vectors(1, seed=9)[0]
    assert flat.search(q, 0) == []
    assert len(flat.search(q[None, :], 5)) == 5
    with pytest.raises(ValueError):
        flat.search(q[:10], 5)
    with pytest.raises(ValueError):
        flat.search(random_vectors(2, seed=9), 5)
    tiny = DenseIndex.build([(np.array([5, 6]), random_vectors(2))], dim=DIM)
    assert sorted(hit_ids(tiny.search(q, 10))) == [5, 6]  # k > ntotal: no -1 padding


def test_allowed_ids_filter(
    flat: DenseIndex, small: tuple[npt.NDArray[np.int64], FloatArray, FloatArray]
) -> None:
    ids, vecs, queries = small
    allowed = ids[::50]  # 60 of 3000
    for q in queries[:5]:
        hits = flat.search(q, 10, allowed_ids=allowed)
        assert len(hits) == 10
        assert set(hit_ids(hits)) <= set(allowed.tolist())
        # exact among the allowed ones
        mask = np.isin(ids, allowed)
        assert hit_ids(hits) == exact_topk(vecs[mask], ids[mask], q[None, :], 10)[0].tolist()
    assert flat.search(queries[0], 10, allowed_ids=np.array([], dtype=np.int64)) == []
    assert hit_ids(flat.search(queries[0], 10, allowed_ids=ids[:1])) == [int(ids[0])]


def test_build_from_batches_equals_one_array(
    flat: DenseIndex, small: tuple[npt.NDArray[np.int64], FloatArray, FloatArray]
) -> None:
    ids, vecs, queries = small
    whole = DenseIndex.build([(ids, vecs)], dim=DIM, factory="Flat")
    assert whole.search_batch(queries, 10) == flat.search_batch(queries, 10)


def test_save_load_mmap_identical(
    flat: DenseIndex,
    small: tuple[npt.NDArray[np.int64], FloatArray, FloatArray],
    tmp_path: Path,
) -> None:
    _, _, queries = small
    path = tmp_path / "dense.faiss"
    flat.save(path)
    assert path.is_file() and not (tmp_path / "dense.faiss.tmp").exists()
    mapped = DenseIndex.load(path, mmap=True)
    in_memory = DenseIndex.load(path, mmap=False)
    assert mapped.is_mmapped and not in_memory.is_mmapped
    assert mapped.factory_string == flat.factory_string
    expected = flat.search_batch(queries, 10)
    assert mapped.search_batch(queries, 10) == expected
    assert in_memory.search_batch(queries, 10) == expected
    # saving over the mapped file leaves the mapped index usable
    flat.save(path)
    assert mapped.search_batch(queries, 10) == expected


def test_remove_and_add(
    small: tuple[npt.NDArray[np.int64], FloatArray, FloatArray], tmp_path: Path
) -> None:
    ids, vecs, queries = small
    index = DenseIndex.build([(ids, vecs)], dim=DIM)
    q = queries[0]
    top = hit_ids(index.search(q, 5))
    assert index.remove(np.array([*top[:2], 123], dtype=np.int64)) == 2  # 123 is absent
    assert index.ntotal == N_SMALL - 2
    after = hit_ids(index.search(q, 5))
    assert not set(top[:2]) & set(after)
    assert after[:3] == top[2:]
    index.add(np.array([42], dtype=np.int64), q[None, :])
    assert index.search(q, 1)[0].doc_id == 42
    assert index.remove(np.array([], dtype=np.int64)) == 0

    # a memory-mapped index is copied into memory before it is modified (FAISS would crash)
    path = tmp_path / "dense.faiss"
    index.save(path)
    mapped = DenseIndex.load(path, mmap=True)
    assert mapped.remove(np.array([42], dtype=np.int64)) == 1
    assert not mapped.is_mmapped
    mapped.add(np.array([43], dtype=np.int64), q[None, :])
    assert mapped.search(q, 1)[0].doc_id == 43
    assert DenseIndex.load(path).search(q, 1)[0].doc_id == 42  # file untouched
    with pytest.raises(ValueError):
        index.add(np.array([-1], dtype=np.int64), q[None, :])


N_IVF = 20_000


@pytest.fixture(scope="module")
def clustered() -> tuple[npt.NDArray[np.int64], FloatArray, FloatArray]:
    vecs = clustered_vectors(N_IVF + 200, seed=3)
    ids = np.arange(N_IVF, dtype=np.int64) + 10
    return ids, vecs[:N_IVF], vecs[N_IVF:]  # queries from the same distribution


@pytest.fixture(scope="module")
def ivf(clustered: tuple[npt.NDArray[np.int64], FloatArray, FloatArray]) -> DenseIndex:
    ids, vecs, _ = clustered
    # no train_sample: the first batches are buffered, used for training, then added
    return DenseIndex.build(batches(ids, vecs, 2500), dim=DIM, factory="IVF128,SQ8")


def recall_at_10(
    index: DenseIndex, clustered: tuple[npt.NDArray[np.int64], FloatArray, FloatArray]
) -> float:
    ids, vecs, queries = clustered
    exact = exact_topk(vecs, ids, queries, 10)
    found = index.search_batch(queries, 10)
    return float(
        np.mean(
            [len(set(hit_ids(f)) & set(e.tolist())) / 10 for f, e in zip(found, exact, strict=True)]
        )
    )


def test_ivf_sq8_recall(
    ivf: DenseIndex, clustered: tuple[npt.NDArray[np.int64], FloatArray, FloatArray]
) -> None:
    assert ivf.factory_string == "IVF128,SQ8"
    assert ivf.ntotal == N_IVF
    assert ivf.params["nlist"] == 128 and ivf.params["nprobe"] == default_nprobe(128) == 8
    recall = recall_at_10(ivf, clustered)
    print(f"IVF128,SQ8 nprobe 8 recall@10 on {N_IVF} clustered vectors: {recall:.3f}")
    assert recall >= 0.9


def test_ivf_train_sample_and_filter(
    ivf: DenseIndex, clustered: tuple[npt.NDArray[np.int64], FloatArray, FloatArray]
) -> None:
    ids, vecs, queries = clustered
    sampled = DenseIndex.build(
        batches(ids, vecs, 5000), dim=DIM, factory="IVF128,SQ8", train_sample=vecs[::2]
    )
    assert sampled.ntotal == N_IVF
    assert recall_at_10(sampled, clustered) >= 0.9
    # a selective filter still returns k allowed hits (nprobe is raised for it)
    allowed = ids[::400]  # 50 of 20 000
    for q in queries[:10]:
        hits = ivf.search(q, 10, allowed_ids=allowed)
        assert len(hits) == 10
        assert set(hit_ids(hits)) <= set(allowed.tolist())


def test_ivf_save_load_remove(
    clustered: tuple[npt.NDArray[np.int64], FloatArray, FloatArray], tmp_path: Path
) -> None:
    ids, vecs, queries = clustered
    index = DenseIndex.build([(ids[:5000], vecs[:5000])], dim=DIM, factory="IVF32,SQ8")
    path = tmp_path / "ivf.faiss"
    index.save(path)
    mapped = DenseIndex.load(path)
    assert mapped.is_mmapped
    assert mapped.params == index.params
    assert mapped.search_batch(queries, 10) == index.search_batch(queries, 10)
    top = hit_ids(mapped.search(queries[0], 3))
    assert mapped.remove(np.array(top)) == 3
    assert not set(top) & set(hit_ids(mapped.search(queries[0], 10)))
    assert mapped.ntotal == 4997


def test_untrainable_ivf_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="lists"):
        DenseIndex.build([(np.arange(10), random_vectors(10))], dim=DIM, factory="IVF64,Flat")


def test_similarities_are_the_stored_vectors_inner_products(
    flat: DenseIndex,
    ivf: DenseIndex,
    small: tuple[npt.NDArray[np.int64], FloatArray, FloatArray],
    clustered: tuple[npt.NDArray[np.int64], FloatArray, FloatArray],
) -> None:
    """Answer attribution scores a claim against the passages it cites by their stored
    vectors: every asked id that the index holds comes back with its exact inner product (as
    quantised, on IVF,SQ8: every list is scanned, not nprobe of them), and ids it does not
    hold are left out."""
    ids, vecs, queries = small
    wanted = ids[[5, 700, 2999, 1234]]
    got = flat.similarities(queries[0], [*wanted.tolist(), 3, int(wanted[0])])
    assert sorted(got) == sorted(wanted.tolist())  # 3 is no id there; repeats once
    for row, vec in zip(ids[[5, 700, 2999, 1234]], vecs[[5, 700, 2999, 1234]], strict=True):
        assert got[int(row)] == pytest.approx(float(vec @ queries[0]), abs=1e-5)
    assert flat.similarities(queries[0], []) == {}
    with pytest.raises(ValueError):
        flat.similarities(queries[:2], wanted)

    ids, vecs, queries = clustered
    # far apart in the clusters: most are in lists that nprobe 8 of 128 would not scan
    wanted = ids[::997][:20]
    got = ivf.similarities(queries[0], wanted)
    assert sorted(got) == sorted(wanted.tolist())
    exact = vecs[::997][:20] @ queries[0]
    for row, score in zip(wanted, exact, strict=True):
        assert got[int(row)] == pytest.approx(float(score), abs=0.02)  # SQ8
