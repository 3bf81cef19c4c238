"""The build pipeline: sources → store → embed → dense + lexical indexes → publish.

``build_index`` writes a complete new generation (see :mod:`indexer.generation`) and
publishes it with one atomic switch; a failure or a kill at any point leaves the published
generation untouched, and the next build removes the leftovers. ``rebuild_index`` re-reads the
sources recorded in the published manifest (or newer files), reusing the embedding cache, and
reports what changed.

Usage::

    >>> report = build_index([Path("data/samples/enwiki-sample-pages-articles.xml.bz2")],
    ...                      Path("var/index"), BuildOptions())       # doctest: +SKIP
    >>> report.generation, report.passages, report.embedding.misses   # doctest: +SKIP
    ('20261126T200000.123Z-ab12cd', 8123, 8123)
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexer import __version__
from indexer.dense import DenseIndex, default_index_factory, nlist_of, train_size
from indexer.embedding import (
    EmbeddingCache,
    EmbeddingModel,
    EmbedStats,
    ModelInfo,
    embed_with_cache,
    embedding_text,
    model_for_languages,
    open_embedder,
)
from indexer.errors import WikiragError
from indexer.faults import kill_point
from indexer.generation import (
    DENSE_FILE,
    LEXICAL_DIR,
    STORE_FILE,
    Generation,
    IndexLayout,
    NoPublishedIndex,
)
from indexer.ingest import IngestOptions, IngestReport, ingest_sources
from indexer.lexical import LexicalIndex, lexical_doc
from indexer.manifest import (
    ChunkingRecord,
    Counts,
    DenseRecord,
    IngestRecord,
    LexicalRecord,
    Manifest,
    ModelRecord,
    SourceRecord,
)
from indexer.store import PassageStore, StoreError

log = logging.getLogger(__name__)


class BuildError(WikiragError):
    """The build could not produce a usable generation; nothing was published."""

    code = "build-failed"


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """``embed_context`` selects what is embedded besides the passage text: ``"title"``,
    ``"title_section"`` (title and section path, the default) or ``"none"``."""

    ingest: IngestOptions = IngestOptions()
    model: str | None = None
    factory: str | None = None
    embed_batch_size: int = 256
    embed_context: str = "title_section"
    keep_generations: int = 3
    retrieval: dict[str, Any] = field(default_factory=dict)
    progress: bool = True


@dataclass(slots=True)
class Changes:
    """How a generation differs from the one it replaces."""

    pages_added: int = 0
    pages_updated: int = 0
    pages_removed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "pages_added": self.pages_added,
            "pages_updated": self.pages_updated,
            "pages_removed": self.pages_removed,
        }


@dataclass(slots=True)
class BuildReport:
    generation: str = ""
    path: str = ""
    ingest: IngestReport = field(default_factory=IngestReport)
    passages: int = 0
    embedding: EmbedStats = field(default_factory=EmbedStats)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    changes: Changes | None = None
    pruned: list[str] = field(default_factory=list)
    dense_params: dict[str, Any] = field(default_factory=dict)
    updates: dict[str, Any] | None = None  # recorded update sources replayed by a rebuild

    def as_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "path": self.path,
            "ingest": self.ingest.as_dict(),
            "passages_indexed": self.passages,
            "embedding": self.embedding.as_dict(),
            "stage_seconds": {k: round(v, 2) for k, v in self.stage_seconds.items()},
            "changes": None if self.changes is None else self.changes.as_dict(),
            "pruned": self.pruned,
            "updates": self.updates,
        }


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _model_for(store: PassageStore) -> str:
    languages = sorted({site.language for site in store.wikis()})
    model = model_for_languages(languages)
    log.info("no model named: %s for the indexed languages (%s)", model, ", ".join(languages))
    return model


def build_index(
    sources: Sequence[Path],
    index_dir: Path,
    options: BuildOptions = BuildOptions(),
    *,
    embedder: EmbeddingModel | None = None,
    before_publish: Callable[[Path, EmbeddingModel, BuildReport], None] | None = None,
) -> BuildReport:
    """Ingest ``sources`` into a new generation, index it, and publish it atomically.

    ``before_publish(work_dir, embedder, report)`` runs on the complete work directory just
    before it is finalized and published (a rebuild replays incremental updates there)."""
    layout = IndexLayout(index_dir)
    missing = [str(s) for s in sources if not Path(s).is_file()]
    if missing:
        raise BuildError(f"source file(s) not found: {', '.join(missing)}")
    report = BuildReport()
    with layout.lock():
        layout.cleanup_incomplete()
        previous = current_or_none(layout)
        try:
            generation = _build_generation(
                sources, layout, previous, options, embedder, report, before_publish
            )
        except Exception as exc:
            if not out_of_space(exc):
                raise
            raise BuildError(_no_space_message(layout, previous, exc)) from exc
        report.generation = generation.generation
        report.path = str(generation.path)
        report.pruned = [p.name for p in layout.prune(options.keep_generations)]
    return report


def _build_generation(
    sources: Sequence[Path],
    layout: IndexLayout,
    previous: Generation | None,
    options: BuildOptions,
    embedder: EmbeddingModel | None,
    report: BuildReport,
    before_publish: Callable[[Path, EmbeddingModel, BuildReport], None] | None,
) -> Generation:
    """Write and publish one generation (the caller holds the lock); a failure removes the
    work directory. With no ``embedder``, the one ``options.model`` names, or the one the
    ingested languages call for (:func:`~indexer.embedding.model_for_languages`)."""
    with layout.new_generation() as work:
        store = PassageStore(work.path / STORE_FILE)
        try:
            started = time.perf_counter()
            report.ingest = ingest_sources(sources, store, options.ingest)
            report.stage_seconds["ingest"] = time.perf_counter() - started
            kill_point("build:ingested")
            if embedder is None:
                embedder = open_embedder(options.model or _model_for(store))
            _index_store(store, work.path, embedder, layout, options, report)
            kill_point("build:indexed")
            if before_publish is not None:
                before_publish(work.path, embedder, report)
            if previous is not None:
                report.changes = compare_generations(previous, store)
            store.finalize()
            counts = store.counts()
        finally:
            store.close()
        manifest = build_manifest(sources, embedder, options, report, counts)
        return layout.publish(work, manifest)


def out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the disk is full: an
    ``OSError`` ENOSPC/EDQUOT, SQLite's "database or disk is full", or the OS message that
    FAISS and tantivy pass on in their own exception types."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(current).lower()
        if "no space left on device" in text or "disk is full" in text or "quota exceeded" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


def _no_space_message(layout: IndexLayout, previous: Generation | None, exc: BaseException) -> str:
    try:
        free = f"{shutil.disk_usage(layout.root).free / 1e6:.1f} MB free now"
    except OSError:
        free = "free space unknown"
    kept = (
        f"generation {previous.generation} is still the published one"
        if previous is not None
        else "nothing was published"
    )
    return (
        f"no space left on the device holding {layout.root} ({free}, after removing the "
        f"unfinished generation); {kept}. Free some space and run the build again. "
        f"({type(exc).__name__}: {exc})"
    )


def rebuild_index(
    index_dir: Path,
    sources: Sequence[Path] = (),
    options: BuildOptions = BuildOptions(),
    *,
    embedder: EmbeddingModel | None = None,
) -> BuildReport:
    """Rebuild from the published manifest's sources (or the newer ``sources`` given)."""
    layout = IndexLayout(index_dir)
    current = layout.current()
    if not sources:
        sources = [Path(s.path) for s in current.manifest.sources]
        if not sources:
            raise BuildError(f"generation {current.generation} records no sources; name them")
    options = _with_recorded_ingest(options, current.manifest)
    if options.model is None and embedder is None:  # the model the index was built with
        options = dataclasses.replace(options, model=current.manifest.model.model_id)
    replay, lost = _recorded_updates(current)
    if not replay and not lost:
        return build_index(sources, index_dir, options, embedder=embedder)

    def carry_forward(work: Path, used: EmbeddingModel, report: BuildReport) -> None:
        # Revisions, deletions and hidden revisions that `wikirag update` applied to the
        # current generation are replayed from their recorded sources (the embedding cache
        # makes this cheap); sources that cannot be re-read (stdin, removed files) are listed.
        from indexer.update import UpdateOptions, apply_to_generation

        applied = apply_to_generation(
            work,
            replay,
            cache_path=layout.embedding_cache_path,
            embedder=used,
            embed_context=options.embed_context,
            options=UpdateOptions(ingest=options.ingest, embed_batch_size=options.embed_batch_size),
        )
        report.updates = {"replayed": replay, "not_replayable": lost, **applied.as_dict()}
        if lost:
            log.warning("update sources that cannot be replayed: %s", ", ".join(lost))

    return build_index(sources, index_dir, options, embedder=embedder, before_publish=carry_forward)


def _with_recorded_ingest(options: BuildOptions, manifest: Manifest) -> BuildOptions:
    """``options`` with the wiki name and namespaces the published build used, where the
    caller left them at their defaults (an XML export without ``<siteinfo>`` needs the wiki
    name again, e.g. for a rebuild started by the service)."""
    recorded = manifest.ingest
    ingest = options.ingest
    if ingest.wiki is None and recorded.wiki:
        ingest = dataclasses.replace(ingest, wiki=recorded.wiki)
    if ingest.namespaces == IngestOptions().namespaces and recorded.namespaces:
        ingest = dataclasses.replace(ingest, namespaces=frozenset(recorded.namespaces))
    return options if ingest is options.ingest else dataclasses.replace(options, ingest=ingest)


def _recorded_updates(generation: Generation) -> tuple[list[str], list[str]]:
    """Update sources applied to ``generation``: those that can be re-read, and the others."""
    path = generation.file(STORE_FILE)
    if not path.is_file():
        return [], []
    try:
        store = PassageStore(path, readonly=True)
    except StoreError:  # an older store, without the updates table
        return [], []
    try:
        recorded = store.update_sources()
    finally:
        store.close()
    replay = [p for _, p, _ in recorded if p is not None and Path(p).is_file()]
    lost = [p or s for s, p, _ in recorded if p is None or not Path(p).is_file()]
    return replay, lost


def current_or_none(layout: IndexLayout) -> Generation | None:
    try:
        return layout.current()
    except NoPublishedIndex:
        return None


def _skips(report: BuildReport, shown: int = 5) -> str:
    """``"; skipped 3 (unsafe-xml 1, corrupt-gzip 2): a.xml: line 2 (unsafe-xml), …"``."""
    ingest = report.ingest
    if not ingest.skipped_total:
        return "; no item was skipped (are these the right files and namespaces?)"
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(ingest.skipped.items()))
    where = "; ".join(f"{s.location} ({s.reason})" for s in ingest.skipped_items[:shown])
    more = " …" if ingest.skipped_total > shown else ""
    return f"; skipped {ingest.skipped_total} ({reasons}): {where}{more}"


def _index_store(
    store: PassageStore,
    work: Path,
    embedder: EmbeddingModel,
    layout: IndexLayout,
    options: BuildOptions,
    report: BuildReport,
) -> None:
    total = store.count_current_passages()
    if total == 0:
        raise BuildError(f"the sources gave no passages; nothing to index{_skips(report)}")
    dim = embedder.info.dimension
    ids = np.lib.format.open_memmap(work / "ids.npy", mode="w+", dtype=np.int64, shape=(total,))
    vectors = np.lib.format.open_memmap(
        work / "vectors.npy", mode="w+", dtype=np.float32, shape=(total, dim)
    )
    layout.cache_dir.mkdir(parents=True, exist_ok=True)
    lexical_seconds = 0.0
    started = time.perf_counter()
    with (
        LexicalIndex.create(work / LEXICAL_DIR) as writer,
        EmbeddingCache(layout.embedding_cache_path) as cache,
    ):

        def texts() -> Iterator[str]:
            nonlocal lexical_seconds
            for i, record in enumerate(store.iter_current_passages()):
                ids[i] = record.row_id
                t0 = time.perf_counter()
                writer.add(lexical_doc(record))
                lexical_seconds += time.perf_counter() - t0
                yield embedding_text(record, options.embed_context)

        stream = embed_with_cache(
            embedder,
            cache,
            texts(),
            batch_size=options.embed_batch_size,
            progress=options.progress,
            stats=report.embedding,
        )
        row = 0
        for batch in stream:
            vectors[row : row + len(batch)] = batch
            row += len(batch)
        t0 = time.perf_counter()
        writer.commit()
        lexical_seconds += time.perf_counter() - t0
    if row != total:
        raise BuildError(f"embedded {row} passages, expected {total}")
    report.passages = total
    report.stage_seconds["embed"] = time.perf_counter() - started - lexical_seconds
    report.stage_seconds["lexical_index"] = lexical_seconds

    started = time.perf_counter()
    factory = options.factory or default_index_factory(total)
    dense = DenseIndex.build(
        _batches(ids, vectors),
        dim=dim,
        factory=factory,
        n_hint=total,
        train_sample=_train_sample(vectors, factory),
    )
    dense.save(work / DENSE_FILE)
    report.dense_params = dict(dense.params)
    report.stage_seconds["dense_index"] = time.perf_counter() - started
    (work / "ids.npy").unlink()
    (work / "vectors.npy").unlink()


def _batches(
    ids: np.ndarray, vectors: np.ndarray, size: int = 65_536
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    bar = tqdm(total=len(ids), desc="dense index", unit=" vectors", disable=len(ids) < size)
    for start in range(0, len(ids), size):
        yield np.asarray(ids[start : start + size]), np.asarray(vectors[start : start + size])
        bar.update(min(size, len(ids) - start))
    bar.close()


def _train_sample(vectors: np.ndarray, factory: str) -> np.ndarray:
    """A fixed random sample big enough to train the factory's quantiser (64 per list)."""
    nlist = nlist_of(factory)
    wanted = train_size(nlist) if nlist else len(vectors)
    if len(vectors) <= wanted:
        return np.asarray(vectors)
    rows = np.sort(np.random.default_rng(0).choice(len(vectors), wanted, replace=False))
    return np.asarray(vectors[rows])


def compare_generations(previous: Generation, store: PassageStore) -> Changes:
    """Pages added, updated (new current revision) and removed relative to ``previous``."""
    old_store = PassageStore(previous.file(STORE_FILE), readonly=True)
    try:
        old = dict(old_store.current_revisions())
    finally:
        old_store.close()
    new = dict(store.current_revisions())
    changes = Changes()
    for key, revision in new.items():
        if key not in old:
            changes.pages_added += 1
        elif old[key] != revision:
            changes.pages_updated += 1
    changes.pages_removed = sum(1 for key in old if key not in new)
    return changes


def build_manifest(
    sources: Sequence[Path],
    embedder: EmbeddingModel | ModelInfo,
    options: BuildOptions,
    report: BuildReport,
    counts: dict[str, int],
) -> Manifest:
    info = embedder if isinstance(embedder, ModelInfo) else embedder.info
    return Manifest(
        wikirag_version=__version__,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        build_seconds=round(sum(report.stage_seconds.values()), 2),
        model=ModelRecord.of(info, options.embed_context),
        dense=DenseRecord.of(report.dense_params),
        lexical=LexicalRecord(),
        chunking=ChunkingRecord(
            max_words=options.ingest.chunking.max_words,
            overlap_words=options.ingest.chunking.overlap_words,
        ),
        retrieval=dict(options.retrieval),
        sources=tuple(
            SourceRecord(
                path=str(Path(s).resolve()),
                size=Path(s).stat().st_size,
                sha256=file_checksum(Path(s)),
            )
            for s in sources
        ),
        counts=Counts.of(counts, report.passages),
        # what a rebuild needs to read the recorded sources the same way
        ingest=IngestRecord(
            wiki=options.ingest.wiki,
            namespaces=tuple(sorted(options.ingest.namespaces)),
            skipped=dict(report.ingest.skipped),
        ),
        embedding=report.embedding.as_dict(),
        changes=None if report.changes is None else report.changes.as_dict(),
    )
