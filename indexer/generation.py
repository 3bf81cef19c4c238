"""Index directory layout, manifests, atomic publication and retention.

::

    INDEX_DIR/
      current -> generations/20261126T200000.123Z-ab12cd   one symlink swap publishes
      generations/<id>/manifest.json                  written last, atomically
      generations/<id>/store.sqlite, dense.faiss, lexical/
      generations/.building-<id>/                     work in progress, never read
      cache/embeddings.sqlite                         shared by all generations
      .lock                                           one builder at a time

A reader resolves ``current`` once and keeps using that directory; a published generation is
never modified in place. A build writes into ``.building-<id>``, renames it to ``<id>`` when
complete, and then replaces the ``current`` symlink with ``os.replace`` — a reader sees the
old generation or the new one, never a mix. Leftover ``.building-*`` directories (from a
killed build) are removed by the next build.

Usage::

    >>> layout = IndexLayout(Path("var/index"))                 # doctest: +SKIP
    >>> with layout.lock(), layout.new_generation() as work:    # doctest: +SKIP
    ...     ...  # write files into work.path, then:
    ...     layout.publish(work, manifest)
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.errors import WikiragError
from indexer.faults import kill_point

# Re-exported: the file names and the manifest type are part of a generation's layout.
from indexer.manifest import DENSE_FILE as DENSE_FILE
from indexer.manifest import LEXICAL_DIR as LEXICAL_DIR
from indexer.manifest import MANIFEST_FORMAT as MANIFEST_FORMAT
from indexer.manifest import Manifest as Manifest
from indexer.manifest import ManifestError

log = logging.getLogger(__name__)

# The files of a generation: the passage store, the dense index, the BM25 index (the manifest
# names those two), and what incremental updates add beside them (indexer/update.py).
STORE_FILE = "store.sqlite"
DELTA_FILE = "dense-delta.faiss"
UPDATES_FILE = "updates.json"
MANIFEST = "manifest.json"
BUILDING_PREFIX = ".building-"
# Temporary names of files written atomically (write, fsync, rename) inside a generation.
TEMP_PATTERNS = ("*.tmp", ".*.tmp-*")


class IndexError_(WikiragError):
    """Base of index directory problems (named to avoid the builtin ``IndexError``)."""

    code = "index-unusable"


class NoPublishedIndex(IndexError_):
    """The directory has no published generation yet."""


class IndexBusy(IndexError_):
    """Another build or update holds the index lock."""


class CorruptGeneration(IndexError_):
    """A generation's manifest or one of its files is missing or unreadable; ``path`` names
    the file (or directory) at fault when it is known."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file, fsync it, then ``os.replace`` it into place."""
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_generation_id() -> str:
    """``20261126T200000.123Z-ab12cd``: sorts by creation time, unique across processes."""
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    return f"{stamp}.{int(now * 1000) % 1000:03d}Z-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class WorkDir:
    """A generation being built: files go into ``path``; ``generation`` is its final id."""

    generation: str
    path: Path


@dataclass(frozen=True, slots=True)
class Generation:
    """A published generation: its directory and typed manifest."""

    generation: str
    path: Path
    manifest: Manifest

    def file(self, name: str) -> Path:
        return self.path / name


class IndexLayout:
    """Operations on one index directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.generations = self.root / "generations"
        self.current_link = self.root / "current"
        self.cache_dir = self.root / "cache"

    @property
    def embedding_cache_path(self) -> Path:
        return self.cache_dir / "embeddings.sqlite"

    @contextmanager
    def lock(self, *, wait: bool = False) -> Iterator[None]:
        """Hold the index's writer lock (builds and updates take it; readers never do)."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle = (self.root / ".lock").open("a+")
        try:
            flags = fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
            try:
                fcntl.flock(handle, flags)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    raise IndexBusy(
                        f"{self.root} is being built or updated by another process; "
                        "wait for it to finish"
                    ) from exc
                raise
            yield
        finally:
            handle.close()

    def cleanup_incomplete(self) -> list[Path]:
        """Remove leftovers of killed builds (call while holding the lock)."""
        removed: list[Path] = []
        if self.generations.exists():
            for child in self.generations.iterdir():
                if child.name.startswith(BUILDING_PREFIX):
                    shutil.rmtree(child, ignore_errors=True)
                    removed.append(child)
        for tmp in self.root.glob(".current.tmp-*"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
        # Temporary files a killed update left in a published generation (the delta index
        # and updates.json are written to a temporary name, then renamed).
        for generation in self.published():
            for pattern in TEMP_PATTERNS:
                for tmp in generation.glob(pattern):
                    if tmp.is_file():
                        tmp.unlink(missing_ok=True)
                        removed.append(tmp)
        if removed:
            log.info("removed %d leftover(s) of an interrupted build", len(removed))
        return removed

    @contextmanager
    def new_generation(self) -> Iterator[WorkDir]:
        """A fresh work directory; removed again if the block fails or is interrupted."""
        self.generations.mkdir(parents=True, exist_ok=True)
        generation = new_generation_id()
        work = WorkDir(generation, self.generations / f"{BUILDING_PREFIX}{generation}")
        work.path.mkdir()
        try:
            yield work
        except BaseException:
            shutil.rmtree(work.path, ignore_errors=True)
            raise

    def publish(self, work: WorkDir, manifest: Manifest) -> Generation:
        """Write the manifest, move the work directory into place and switch ``current``."""
        manifest = manifest.replace(format_version=MANIFEST_FORMAT, generation=work.generation)
        write_json_atomic(work.path / MANIFEST, manifest.to_json())
        kill_point("publish:manifest")
        final = self.generations / work.generation
        os.rename(work.path, final)
        _fsync_dir(self.generations)
        kill_point("publish:renamed")
        tmp_link = self.root / f".current.tmp-{secrets.token_hex(4)}"
        os.symlink(Path("generations") / work.generation, tmp_link)
        os.replace(tmp_link, self.current_link)
        _fsync_dir(self.root)
        kill_point("publish:switched")
        log.info("published generation %s", work.generation)
        return Generation(work.generation, final, manifest)

    def current(self) -> Generation:
        """The published generation (resolved once; keep the result for a whole request)."""
        if not self.current_link.is_symlink():
            raise NoPublishedIndex(
                f"{self.root} has no published index; build one with "
                f"`wikirag build SOURCE… --index {self.root}`"
            )
        target = self.root / os.readlink(self.current_link)
        return self.load(target)

    def load(self, path: Path) -> Generation:
        manifest_path = path / MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise CorruptGeneration(f"{manifest_path} is missing", path=manifest_path) from exc
        except (OSError, ValueError) as exc:
            raise CorruptGeneration(
                f"{manifest_path} is unreadable: {exc}", path=manifest_path
            ) from exc
        try:
            parsed = Manifest.from_json(manifest)
        except ManifestError as exc:
            raise CorruptGeneration(f"{manifest_path} {exc}", path=manifest_path) from exc
        return Generation(parsed.generation, path, parsed)

    def published(self) -> list[Path]:
        """Published generation directories, oldest first."""
        if not self.generations.exists():
            return []
        return sorted(
            p for p in self.generations.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def prune(self, keep: int) -> list[Path]:
        """Delete all but the ``keep`` newest generations (never the current one)."""
        if keep < 1:
            raise ValueError(f"keep must be ≥ 1, got {keep}")
        current = self.current_link.resolve() if self.current_link.is_symlink() else None
        candidates = self.published()
        doomed = [p for p in candidates[:-keep] if p.resolve() != current]
        for path in doomed:
            shutil.rmtree(path, ignore_errors=True)
            log.info("pruned generation %s", path.name)
        return doomed


def read_version(generation_dir: Path) -> int:
    """How many update batches a generation has had applied (0 for none or unreadable)."""
    try:
        data = json.loads((generation_dir / UPDATES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    return int(data.get("version", 0)) if isinstance(data, dict) else 0
