"""The dense half of the hybrid index: a FAISS inner-product index over passage vectors.

Vectors are unit-length (see :mod:`indexer.embedding`), so inner product is cosine similarity.
Ids are the caller's int64 passage row ids, stored inside FAISS (``IndexIDMap2`` around
index types that keep no ids of their own, the ids of the inverted lists for IVF types): this
module keeps no Python structure over the corpus.

Choice of index (:func:`default_index_factory`), measured on the project's 2-core machine with
1 M 384-d vectors: ``Flat`` costs 153 ms per query; ``IVF4096,SQ8`` at nprobe 8 about 0.2 ms
with recall@10 ≈ 0.98 in 380 MB. HNSW would also be fast, but FAISS cannot remove ids from an
HNSW graph, and incremental updates need :meth:`DenseIndex.remove`.

Memory-mapped loading (:meth:`DenseIndex.load` with ``mmap=True``), as checked on faiss 1.15.1
with 200 k 384-d vectors (RSS growth right after ``read_index``):

=================  =========  ==============  ==============================================
index              no mmap    IO_FLAG_MMAP    IO_FLAG_MMAP_IFC (used)
=================  =========  ==============  ==============================================
IDMap2,Flat        +304 MB    +304 MB (none)  +12 MB (flat codes mapped; ids read)
IDMap2,SQ8         +85 MB     +85 MB (none)   +13 MB
IVF256,SQ8 / Flat  +76/297    +1 MB           +1 MB (inverted lists mapped)
IDMap2,HNSW32      +356 MB    +356 MB (none)  +67 MB (graph read, vectors mapped)
=================  =========  ==============  ==============================================

``IO_FLAG_MMAP`` (legacy) only maps IVF lists, as read-only ``OnDiskInvertedLists``; it cannot
be combined with ``IO_FLAG_MMAP_IFC`` (read fails). A mapped index must never be modified in
place: FAISS aborts or segfaults the process (``MaybeOwnedVector`` is a view, the on-disk lists
are read-only), and ``clone_index`` keeps the view. So :meth:`DenseIndex.add` and
:meth:`DenseIndex.remove` first copy a mapped index into memory (serialize + deserialize, or a
plain re-read of the file for the legacy flag).

Thread safety: concurrent :meth:`DenseIndex.search` calls are safe (per-call search
parameters; nothing on the index is mutated). ``add``/``remove`` must not run concurrently with
anything else on the same object.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]

FLAT_MAX_VECTORS = 200_000
"""Below this many vectors the default index is exact (``Flat``)."""

METRIC = "inner_product"


def default_index_factory(n_vectors: int) -> str:
    """The FAISS factory string for an index expected to hold ``n_vectors`` vectors."""
    if n_vectors < FLAT_MAX_VECTORS:
        # Exact search is affordable here: ≤ ~30 ms/query and ≤ 300 MB at 200 k 384-d
        # (153 ms at 1 M), no training, no recall loss.
        return "Flat"
    # nlist ≈ 4·√n as a power of two (4096 at 1 M): IVF4096,SQ8 at nprobe 8 ≈ 0.2 ms/query,
    # recall@10 ≈ 0.98, 380 MB at 1 M; SQ8 is 4x smaller than float32 for ~no recall loss,
    # and IVF (unlike HNSW) supports remove_ids, which incremental updates need.
    nlist = 1 << round(math.log2(4 * math.sqrt(n_vectors)))
    return f"IVF{nlist},SQ8"


def default_nprobe(nlist: int) -> int:
    """Lists scanned per query: 8 up to 4096 lists (recall@10 ≈ 0.98 measured at 1 M), then
    nlist/512, since lists get smaller relative to the neighbourhood as nlist grows."""
    if nlist < 1:
        raise ValueError(f"nlist must be >= 1, got {nlist}")
    return min(nlist, max(8, nlist // 512))


def train_size(nlist: int) -> int:
    """Training vectors wanted for ``nlist`` lists: 64 per centroid (FAISS warns below 39),
    at least 10 000 (also enough for the scalar quantiser's ranges)."""
    return max(10_000, 64 * nlist)


@dataclass(frozen=True)
class DenseHit:
    """One search result: the caller's passage row id and its inner-product score."""

    doc_id: int
    score: float


def _as_ids(ids: npt.ArrayLike) -> IdArray:
    arr = np.ascontiguousarray(np.asarray(ids).ravel(), dtype=np.int64)
    if arr.size and int(arr.min()) < 0:
        raise ValueError("ids must be >= 0 (-1 is FAISS's 'no result' marker)")
    return arr


def _id_selector(ids: IdArray) -> Any:
    """An ``IDSelectorBatch`` (hash set + Bloom filter; copies the ids)."""
    return faiss.IDSelectorBatch(int(ids.size), faiss.swig_ptr(ids))


def _describe(index: Any) -> str:
    """The factory string of ``index``, rebuilt from its structure (falls back to the class)."""
    try:
        from faiss.contrib import factory_tools

        reverse: Any = factory_tools.reverse_index_factory  # untyped in faiss
        return str(reverse(index))
    except Exception:  # unknown or composite type: the class name still tells what it is
        return type(index).__name__


class DenseIndex:
    """A FAISS inner-product index over caller-supplied int64 ids.

    Build it with :meth:`build` or read it with :meth:`load`; the constructor only wraps an
    existing ``faiss.Index``.
    """

    def __init__(
        self, index: Any, *, path: Path | None = None, mmap_mode: str | None = None
    ) -> None:
        if index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise ValueError("DenseIndex needs an inner-product index")
        self._index = index
        self._path = path
        self._mmap_mode = mmap_mode  # None | "ifc" | "legacy"
        self._factory = _describe(index)

    # -- construction -----------------------------------------------------------------

    @staticmethod
    def create_empty(factory: str, dim: int) -> Any:
        """A new ``faiss.Index`` for ``factory``, wrapped in ``IDMap2`` when it keeps no ids."""
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        if faiss.try_extract_index_ivf(index) is None and not isinstance(
            index, faiss.IndexIDMap | faiss.IndexIDMap2
        ):
            # Built from the string so that the C++ wrapper owns the inner index.
            index = faiss.index_factory(dim, f"IDMap2,{factory}", faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            ivf.nprobe = default_nprobe(int(ivf.nlist))  # stored in the file
        return index

    @classmethod
    def build(
        cls,
        vectors: Iterable[tuple[npt.ArrayLike, npt.ArrayLike]],
        *,
        dim: int,
        factory: str | None = None,
        n_hint: int = 0,
        train_sample: npt.ArrayLike | None = None,
    ) -> DenseIndex:
        """Build an index from a stream of ``(ids int64 (n,), vectors float32 (n, dim))``.

        ``factory`` defaults to :func:`default_index_factory` of ``n_hint`` (the expected
        number of vectors). Index types that need training (IVF, SQ, PQ) are trained on
        ``train_sample`` when given; otherwise the first batches of the stream are held back
        until :func:`train_size` vectors are buffered, used for training, then added. Either
        way only the training sample and one batch are ever in memory.
        """
        factory = factory or default_index_factory(n_hint)
        index = cls.create_empty(factory, dim)
        batches: Iterator[tuple[IdArray, FloatArray]] = (
            (cls._check_batch(ids, vecs, dim)) for ids, vecs in vectors
        )
        pending: list[tuple[IdArray, FloatArray]] = []
        if not index.is_trained:
            if train_sample is not None:
                sample = np.ascontiguousarray(train_sample, dtype=np.float32)
            else:
                ivf = faiss.try_extract_index_ivf(index)
                wanted = train_size(int(ivf.nlist) if ivf is not None else 1)
                buffered = 0
                for batch in batches:
                    pending.append(batch)
                    buffered += len(batch[0])
                    if buffered >= wanted:
                        break
                if not pending:
                    raise ValueError(f"cannot train {factory!r}: no vectors and no train_sample")
                sample = np.concatenate([vecs for _, vecs in pending])[:wanted]
            cls._train(index, sample, dim, factory)
            del sample
        for ids, vecs in _chain(pending, batches):
            index.add_with_ids(vecs, ids)
        pending.clear()
        dense = cls(index)
        log.info("built dense index %s: %d vectors, %d-d", dense.factory_string, dense.ntotal, dim)
        return dense

    @staticmethod
    def _train(index: Any, sample: FloatArray, dim: int, factory: str) -> None:
        if sample.ndim != 2 or sample.shape[1] != dim:
            raise ValueError(f"train_sample must have shape (n, {dim}), got {sample.shape}")
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None and sample.shape[0] < ivf.nlist:
            raise ValueError(
                f"{sample.shape[0]} training vectors cannot train {ivf.nlist} lists of "
                f"{factory!r}; use fewer lists or 'Flat'"
            )
        log.info("training %s on %d vectors", factory, sample.shape[0])
        index.train(sample)

    @staticmethod
    def _check_batch(
        ids: npt.ArrayLike, vecs: npt.ArrayLike, dim: int
    ) -> tuple[IdArray, FloatArray]:
        id_arr = _as_ids(ids)
        vec_arr = np.ascontiguousarray(vecs, dtype=np.float32)
        if vec_arr.ndim != 2 or vec_arr.shape[1] != dim:
            raise ValueError(f"vectors must have shape (n, {dim}), got {vec_arr.shape}")
        if vec_arr.shape[0] != id_arr.shape[0]:
            raise ValueError(f"{id_arr.shape[0]} ids for {vec_arr.shape[0]} vectors")
        return id_arr, vec_arr

    # -- persistence --------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the index atomically: to ``<path>.tmp``, fsync, then rename over ``path``.

        Replacing the file leaves readers that mapped the old one unharmed (they keep the old
        inode).
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        try:
            faiss.write_index(self._index, str(tmp))
            with tmp.open("rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        log.info("saved dense index (%d vectors) to %s", self.ntotal, path)

    @classmethod
    def load(cls, path: Path, *, mmap: bool = True) -> DenseIndex:
        """Read an index; with ``mmap`` its vectors/codes stay in the file's page cache.

        Uses ``IO_FLAG_MMAP_IFC`` where this FAISS has it (maps flat codes, SQ codes, HNSW
        storage and IVF lists), else ``IO_FLAG_MMAP`` (IVF lists only), and falls back to a
        normal read, with a logged reason, when the mapped read fails.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(path)
        mode: str | None = None
        flags = 0
        if mmap:
            if hasattr(faiss, "IO_FLAG_MMAP_IFC"):
                mode, flags = "ifc", int(faiss.IO_FLAG_MMAP_IFC)
            elif hasattr(faiss, "IO_FLAG_MMAP"):
                mode, flags = "legacy", int(faiss.IO_FLAG_MMAP)
            else:
                log.warning("faiss %s has no mmap read flag; reading %s", faiss.__version__, path)
        try:
            index = faiss.read_index(str(path), flags)
        except RuntimeError as exc:
            if not flags:
                raise
            log.warning(
                "mmap read of %s failed (%s); reading it into memory",
                path,
                str(exc).splitlines()[0],
            )
            mode = None
            index = faiss.read_index(str(path))
        dense = cls(index, path=path, mmap_mode=mode)
        log.info(
            "loaded dense index %s (%d vectors) from %s%s",
            dense.factory_string,
            dense.ntotal,
            path,
            f" (mmap: {mode})" if mode else "",
        )
        return dense

    def _materialise(self) -> None:
        """Copy a memory-mapped index into memory so that it can be modified."""
        if self._mmap_mode is None:
            return
        log.info("copying memory-mapped dense index into memory before modifying it")
        try:
            self._index = faiss.deserialize_index(faiss.serialize_index(self._index))
        except RuntimeError:  # legacy OnDiskInvertedLists cannot round-trip through memory
            if self._path is None:
                raise
            self._index = faiss.read_index(str(self._path))
        self._mmap_mode = None

    # -- search -------------------------------------------------------------------------

    def _queries(self, query: npt.ArrayLike) -> FloatArray:
        q = np.asarray(query, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(
                f"query must have shape ({self.dim},) or (n, {self.dim}), got {q.shape}"
            )
        return np.ascontiguousarray(q)

    def _search_params(self, k: int, allowed: IdArray | None) -> Any:
        ivf = faiss.try_extract_index_ivf(self._index)
        params: Any
        if ivf is None:
            if allowed is None:
                return None
            params = faiss.SearchParameters()
        else:
            nprobe = int(ivf.nprobe)
            if allowed is not None:
                # A filter drops most candidates of the probed lists; probe enough lists
                # that ~4k allowed vectors are expected in them (if spread evenly).
                nprobe = max(nprobe, math.ceil(4 * k * int(ivf.nlist) / max(1, allowed.size)))
            params = faiss.SearchParametersIVF()
            params.nprobe = min(int(ivf.nlist), nprobe)
        if allowed is not None:
            params.sel = _id_selector(allowed)  # the wrapper keeps the selector alive
        return params

    def search_batch(
        self, queries: npt.ArrayLike, k: int, *, allowed_ids: npt.ArrayLike | None = None
    ) -> list[list[DenseHit]]:
        """Top-``k`` hits for each row of ``queries`` ``(n, dim)``, best first.

        ``allowed_ids`` restricts results to those ids (e.g. the passages of one wiki or
        page); fewer than ``k`` hits come back when fewer match.
        """
        q = self._queries(queries)
        allowed = _as_ids(allowed_ids) if allowed_ids is not None else None
        if k <= 0 or self.ntotal == 0 or (allowed is not None and allowed.size == 0):
            return [[] for _ in range(q.shape[0])]
        params = self._search_params(k, allowed)
        scores, ids = self._index.search(q, k, params=params)
        return [
            [
                DenseHit(doc_id=int(i), score=float(s))
                for s, i in zip(row_s, row_i, strict=True)
                if i >= 0
            ]
            for row_s, row_i in zip(scores, ids, strict=True)
        ]

    def search(
        self, query: npt.ArrayLike, k: int, *, allowed_ids: npt.ArrayLike | None = None
    ) -> list[DenseHit]:
        """Top-``k`` hits for one query vector ``(dim,)`` (or ``(1, dim)``), best first."""
        q = self._queries(query)
        if q.shape[0] != 1:
            raise ValueError("search() takes one query; use search_batch() for several")
        return self.search_batch(q, k, allowed_ids=allowed_ids)[0]

    def similarities(self, query: npt.ArrayLike, ids: npt.ArrayLike) -> dict[int, float]:
        """The inner product of one query vector with each of ``ids``' stored vectors (as
        quantised), exactly: every list of an IVF index is scanned for them (a filter of k
        ids with k results probes 4·nlist lists, capped at nlist). Ids not in the index are
        left out.

        Answer attribution scores a claim against the passages it cites this way, without
        embedding them again."""
        q = self._queries(query)
        wanted = _as_ids(ids)
        if q.shape[0] != 1:
            raise ValueError("similarities() takes one query vector")
        if wanted.size == 0 or self.ntotal == 0:
            return {}
        wanted = np.unique(wanted)
        # k = len(wanted) with a filter of the same ids: _search_params probes every list
        params = self._search_params(int(wanted.size), wanted)
        scores, found = self._index.search(q, int(wanted.size), params=params)
        return {int(i): float(s) for s, i in zip(scores[0], found[0], strict=True) if i >= 0}

    # -- updates --------------------------------------------------------------------------

    def add(self, ids: npt.ArrayLike, vecs: npt.ArrayLike) -> None:
        """Add vectors under ``ids``. The ids must not be in the index already (FAISS does
        not check): :meth:`remove` them first to replace vectors."""
        id_arr, vec_arr = self._check_batch(ids, vecs, self.dim)
        if not id_arr.size:
            return
        if not self._index.is_trained:
            raise RuntimeError("index is not trained")
        self._materialise()
        self._index.add_with_ids(vec_arr, id_arr)

    def remove(self, ids: npt.ArrayLike) -> int:
        """Remove ``ids`` (absent ones are ignored); returns how many vectors were removed."""
        id_arr = _as_ids(ids)
        if not id_arr.size or self.ntotal == 0:
            return 0
        self._materialise()
        try:
            return int(self._index.remove_ids(_id_selector(id_arr)))
        except RuntimeError as exc:
            if "not implemented" in str(exc):
                raise NotImplementedError(
                    f"{self.factory_string} does not support removing vectors"
                ) from exc
            raise

    # -- properties -------------------------------------------------------------------------

    @property
    def index(self) -> Any:
        """The underlying ``faiss.Index`` (do not modify it while it is memory-mapped)."""
        return self._index

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def factory_string(self) -> str:
        """The FAISS factory string of the index as built (e.g. ``IDMap2,Flat``)."""
        return self._factory

    @property
    def is_mmapped(self) -> bool:
        return self._mmap_mode is not None

    @property
    def nlist(self) -> int | None:
        ivf = faiss.try_extract_index_ivf(self._index)
        return int(ivf.nlist) if ivf is not None else None

    @property
    def nprobe(self) -> int | None:
        ivf = faiss.try_extract_index_ivf(self._index)
        return int(ivf.nprobe) if ivf is not None else None

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        ivf = faiss.try_extract_index_ivf(self._index)
        if ivf is None:
            raise ValueError(f"{self.factory_string} has no nprobe")
        if not 1 <= value <= ivf.nlist:
            raise ValueError(f"nprobe must be in [1, {ivf.nlist}], got {value}")
        ivf.nprobe = value  # a plain field: safe even on a mapped index

    @property
    def params(self) -> dict[str, Any]:
        """What a manifest records about this index."""
        return {
            "factory": self.factory_string,
            "metric": METRIC,
            "dim": self.dim,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
        }


def _chain(
    first: list[tuple[IdArray, FloatArray]], rest: Iterator[tuple[IdArray, FloatArray]]
) -> Iterator[tuple[IdArray, FloatArray]]:
    """Yield the buffered batches (dropping each once yielded), then the rest of the stream."""
    while first:
        yield first.pop(0)
    yield from rest


def nlist_of(factory: str) -> int:
    """The number of inverted lists a FAISS factory string asks for (0 for a flat index)."""
    match = re.search(r"IVF(\d+)", factory)
    return int(match.group(1)) if match else 0
