"""Incremental updates: apply Wikimedia Enterprise article events to the published generation.

``wikirag update --index DIR SOURCE…`` reads *events* — NDJSON lines (``.ndjson``,
``.ndjson.gz``, ``.jsonl``, or ``-`` for a Realtime-API stream on stdin) whose
``event.type`` is ``update`` (a new revision), ``delete`` or ``visibility-change``; an
object without ``event`` is an update — or a newer export (XML dump, WME snapshot), every
article of which is an update.

Where the writes go
-------------------
A published generation is never rebuilt in place; an update adds *deltas* to the current
generation while the service keeps reading it:

* ``store.sqlite`` — opened read-write by the updater, in WAL mode (the service's read-only
  connections keep reading the last committed state while a batch is written; SQLite ≥ 3.22
  reads a WAL database read-only as long as the directory is writable). Every revision ever
  stored keeps its passages (no retention), so old passage ids and citations resolve.
* ``lexical/`` — the generation's tantivy index: the page's documents are deleted
  (``delete_page``) and its current passages added; one commit per batch.
* ``dense-delta.faiss`` — the generation's ``dense.faiss`` stays immutable (memory-mapped by
  the readers). Vectors of the passages that updates made current go to a small
  ``IDMap2,Flat`` *delta* index, rewritten atomically (temp file, fsync, rename) per batch;
  readers search both and merge by passage id. Passages the main index still holds for
  superseded revisions, deleted pages or hidden revisions are dropped when results are
  materialised (``HybridRetriever._materialise`` keeps only searchable current passages), and
  the main index is over-fetched by the delta's size to make up for them. Rewriting the
  delta costs O(delta) per batch, so ``wikirag rebuild`` (which folds everything into a new
  generation, reusing the embedding cache, and replays the recorded update sources) is the
  periodic compaction. Measured figures: README "Incremental updates" and
  ``benchmarks/RESULTS.md``.
* ``updates.json`` — a version marker written last; the service polls it every
  ``WIKIRAG_UPDATE_POLL_SECONDS`` and then reloads its tantivy searcher and the delta.

Ordering, idempotence, crash safety
-----------------------------------
The highest revision of a page wins (``pages.current_revision_id`` is a maximum); an older
revision is stored (it stays citable) but changes nothing in search. A delete covers the
page's revisions up to the event's revision (default: all stored); a newer update restores
the page. Hiding a revision's text (``visibility.text`` false) suppresses it; showing it
again restores it. Applying the same events twice, or in another order, ends in the same
state.

Events are applied in batches (``WIKIRAG_UPDATE_BATCH``). Per batch: one SQLite transaction
holds the store changes; inside it the tantivy commit and the delta rename are made durable,
then the checkpoint (events consumed per source) is written and the transaction commits.
A kill before that commit rolls the store back and loses the checkpoint; the re-run replays
the batch, and re-indexing a page (delete its documents, add its current passages) is
idempotent, so the indexes converge. The index's writer lock keeps builds and updates apart.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import logging
import queue
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import faiss
import numpy as np

from indexer.dense import DenseIndex
from indexer.embedding import (
    EmbeddingCache,
    EmbeddingModel,
    EmbedStats,
    embed_with_cache,
    embedding_text,
    open_embedder,
)
from indexer.errors import WikiragError
from indexer.faults import kill_point
from indexer.generation import (
    DELTA_FILE,
    DENSE_FILE,
    LEXICAL_DIR,
    STORE_FILE,
    UPDATES_FILE,
    IndexLayout,
    read_version,
    write_json_atomic,
)
from indexer.ingest import IngestOptions, IngestReport, ingest_revision
from indexer.lexical import LexicalIndex, LexicalIndexWriter, lexical_doc
from indexer.models import RawRevision, SkippedItem
from indexer.sources.open import open_source
from indexer.sources.wme import iter_ndjson_lines, load_json_line, parse_enterprise_article
from indexer.store import REVISION_HIDDEN, REVISION_VISIBLE, PassageStore, RevisionOutcome

log = logging.getLogger(__name__)

STDIN = "-"
_EVENT_SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz", ".json", ".json.gz")
MAX_REPORTED = 200


class UpdateError(WikiragError):
    """The update cannot run (no index, another model…); nothing was changed."""

    code = "update-failed"


@dataclass(frozen=True, slots=True)
class UpdateEvent:
    """One event: ``kind`` is ``update`` (``raw`` set), ``delete`` or ``visibility-change``."""

    kind: str
    location: str
    wiki: str
    page_id: int | None = None
    revision_id: int | None = None
    raw: RawRevision | None = None
    hidden: bool = False


@dataclass(frozen=True, slots=True)
class UpdateOptions:
    ingest: IngestOptions = IngestOptions(progress=False)
    batch: int = 100
    embed_batch_size: int = 256
    model: str | None = None
    # A realtime stream (stdin) applies what has arrived once no event came for this long,
    # batch full or not: an event is never held until the batch fills or the stream ends.
    flush_after: float = 0.2


@dataclass(slots=True)
class UpdateReport:
    sources: list[str] = field(default_factory=list)
    resumed_from: dict[str, int] = field(default_factory=dict)
    events: Counter[str] = field(default_factory=Counter)
    pages_added: int = 0
    pages_updated: int = 0
    revisions_older: int = 0
    revisions_unchanged: int = 0
    pages_deleted: int = 0
    revisions_hidden: int = 0
    revisions_shown: int = 0
    redirects: int = 0
    pages_reindexed: int = 0
    passages_indexed: int = 0
    unknown: list[dict[str, object]] = field(default_factory=list)
    unknown_count: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_items: list[SkippedItem] = field(default_factory=list)
    embedding: EmbedStats = field(default_factory=EmbedStats)
    batches: int = 0
    delta_vectors: int = 0
    version: int = 0
    seconds: float = 0.0

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def record_skip(self, item: SkippedItem) -> None:
        self.skipped[item.reason] += 1
        if len(self.skipped_items) < MAX_REPORTED:
            self.skipped_items.append(item)
        log.warning("skipped %s (%s): %s", item.location, item.reason, item.detail)

    def record_unknown(self, event: UpdateEvent, detail: str) -> None:
        self.unknown_count += 1
        if len(self.unknown) < MAX_REPORTED:
            self.unknown.append(
                {
                    "location": event.location,
                    "event": event.kind,
                    "wiki": event.wiki,
                    "page_id": event.page_id,
                    "revision_id": event.revision_id,
                    "detail": detail,
                }
            )
        log.warning("%s: %s event: %s", event.location, event.kind, detail)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "resumed_from": self.resumed_from,
            "events": dict(self.events),
            "pages_added": self.pages_added,
            "pages_updated": self.pages_updated,
            "revisions_older_than_current": self.revisions_older,
            "revisions_unchanged": self.revisions_unchanged,
            "pages_deleted": self.pages_deleted,
            "revisions_hidden": self.revisions_hidden,
            "revisions_shown": self.revisions_shown,
            "redirects": self.redirects,
            "pages_reindexed": self.pages_reindexed,
            "passages_indexed": self.passages_indexed,
            "unknown": {"count": self.unknown_count, "items": self.unknown},
            "skipped": dict(self.skipped),
            "skipped_items": [
                {"source": s.source, "location": s.location, "reason": s.reason, "detail": s.detail}
                for s in self.skipped_items
            ],
            "embedding": self.embedding.as_dict(),
            "batches": self.batches,
            "delta_vectors": self.delta_vectors,
            "version": self.version,
            "seconds": round(self.seconds, 2),
        }


# --------------------------------------------------------------------------- reading events


def _get(obj: dict[str, Any], dotted: str) -> Any:
    value: Any = obj
    for key in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def parse_event(
    obj: dict[str, Any], *, source: str, location: str, namespaces: frozenset[int]
) -> UpdateEvent | SkippedItem | None:
    """One event object → :class:`UpdateEvent` (None: outside ``namespaces``)."""
    event = obj.get("event")
    kind = event.get("type") if isinstance(event, dict) else None
    kind = "update" if kind in (None, "update", "create") else kind
    if kind == "update":
        item = parse_enterprise_article(
            obj, source=source, location=location, namespaces=namespaces
        )
        if item is None or isinstance(item, SkippedItem):
            return item
        return UpdateEvent("update", location, item.wiki, item.page_id, item.revision_id, raw=item)
    if kind not in ("delete", "visibility-change"):
        return SkippedItem(source, location, "unknown-event-type", f"event.type {kind!r}")
    namespace = _int(_get(obj, "namespace.identifier"))
    if namespace is not None and namespace not in namespaces:
        return None
    wiki = _get(obj, "is_part_of.identifier")
    page_id = _int(obj.get("identifier"))
    revision_id = _int(_get(obj, "version.identifier"))
    if not isinstance(wiki, str) or not wiki:
        return SkippedItem(source, location, "missing-field", "is_part_of.identifier")
    if kind == "delete":
        if page_id is None:
            return SkippedItem(source, location, "missing-field", "identifier (page id)")
        return UpdateEvent("delete", location, wiki, page_id, revision_id)
    if revision_id is None:
        return SkippedItem(source, location, "missing-field", "version.identifier")
    visibility = obj.get("visibility")
    if not isinstance(visibility, dict):
        visibility = _get(obj, "version.visibility")
    if not isinstance(visibility, dict) or not isinstance(visibility.get("text"), bool):
        return SkippedItem(source, location, "missing-field", "visibility.text")
    hidden = not visibility["text"]
    return UpdateEvent("visibility-change", location, wiki, page_id, revision_id, hidden=hidden)


def _lines(handle: IO[bytes], max_line_bytes: int) -> Iterator[bytes | None]:
    """The lines of ``handle``; None for a line over ``max_line_bytes`` (not held)."""
    for _, line in iter_ndjson_lines(handle, max_line_bytes):
        yield line


def _event_lines(
    stream: Iterable[bytes | None], name: str, source: str, namespaces: frozenset[int]
) -> Iterator[UpdateEvent | SkippedItem | None]:
    for number, line in enumerate(stream, start=1):
        location = f"{name}: line {number}"
        if line is None:
            yield SkippedItem(source, location, "line-too-long", "line too long; not parsed")
            continue
        if not line.strip():
            yield None
            continue
        try:
            obj = load_json_line(line, location)
        except (ValueError, RecursionError) as exc:
            yield SkippedItem(source, location, "invalid-json", str(exc)[:200])
            continue
        if not isinstance(obj, dict):
            yield SkippedItem(source, location, "not-an-object", f"a JSON {type(obj).__name__}")
            continue
        yield parse_event(obj, source=source, location=location, namespaces=namespaces)


class _Idle:
    """What :func:`arriving` yields when the stream has paused."""


IDLE = _Idle()
T = TypeVar("T")


def arriving(items: Iterator[T], idle_seconds: float) -> Iterator[T | _Idle]:
    """``items`` read by a background thread as they arrive, with :data:`IDLE` yielded once
    each time none arrives for ``idle_seconds`` (a pause of the stream). Errors of the
    reading thread are raised here.

    >>> list(arriving(iter([1, 2]), 0.5))
    [1, 2]
    """
    queue_: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=1024)

    def pump() -> None:
        try:
            for item in items:
                queue_.put(("item", item))
            queue_.put(("end", None))
        except BaseException as exc:  # handed to the consuming thread
            queue_.put(("error", exc))

    threading.Thread(target=pump, name="wikirag-stream", daemon=True).start()
    paused = False  # an IDLE already went out for this pause: wait for the next item
    while True:
        try:
            kind, value = queue_.get(timeout=None if paused else idle_seconds)
        except queue.Empty:
            paused = True
            yield IDLE
            continue
        paused = False
        if kind == "end":
            return
        if kind == "error":
            assert isinstance(value, BaseException)
            raise value
        yield cast(T, value)


def read_events(
    source: str, options: IngestOptions, stdin: IO[bytes] | None = None
) -> Iterator[UpdateEvent | SkippedItem | None]:
    """Every item of ``source`` in order, one per position (None: nothing to apply)."""
    if source == STDIN:
        handle = stdin if stdin is not None else sys.stdin.buffer
        lines = _lines(handle, options.max_line_bytes)
        yield from _event_lines(lines, "stdin", "stdin", options.namespaces)
        return
    path = Path(source)
    name = path.name.lower()
    if name.endswith(_EVENT_SUFFIXES):
        if not path.is_file():
            raise UpdateError(f"{path}: no such file")
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rb") as raw:
            handle = io.BufferedReader(raw) if not isinstance(raw, io.BufferedReader) else raw
            lines = _lines(handle, options.max_line_bytes)
            yield from _event_lines(lines, path.name, str(path), options.namespaces)
        return
    # Snapshots and XML exports: every article is an update.
    items = open_source(
        path,
        wiki=options.wiki,
        namespaces=options.namespaces,
        max_line_bytes=options.max_line_bytes,
    )
    for item in items:
        if isinstance(item, SkippedItem):
            yield item
        else:
            yield UpdateEvent(
                "update", item.location, item.wiki, item.page_id, item.revision_id, raw=item
            )


# --------------------------------------------------------------------------- applying


def load_delta(path: Path, dim: int) -> DenseIndex:
    """The generation's delta index (an empty ``IDMap2,Flat`` when there is none yet)."""
    if path.is_file():
        return DenseIndex.load(path, mmap=False)
    return DenseIndex(DenseIndex.create_empty("Flat", dim))


def delta_ids(delta: DenseIndex) -> np.ndarray:
    if delta.ntotal == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(faiss.vector_to_array(delta.index.id_map), dtype=np.int64)


def _ensure_wal(store: PassageStore, attempts: int = 100) -> None:
    """Put the store in WAL mode (a build finalizes it with a rollback journal), so that
    the service's read-only connections keep reading while a batch is written. The switch
    needs a moment without readers inside a read transaction: retried for ~10 s."""
    conn = store.connection()
    for _ in range(attempts):
        try:
            mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError:
            mode = ""
        if mode == "wal":
            return
        time.sleep(0.1)
    raise UpdateError(f"{store.path}: cannot switch to WAL mode (readers keep it busy)")


class _Updater:
    """Applies events to one generation directory (the caller holds the index lock)."""

    def __init__(
        self,
        generation_dir: Path,
        *,
        cache: EmbeddingCache,
        embedder: EmbeddingModel,
        embed_context: str,
        options: UpdateOptions,
        report: UpdateReport,
    ) -> None:
        self.dir = generation_dir
        self.cache = cache
        self.embedder = embedder
        self.embed_context = embed_context
        self.options = options
        self.report = report
        self.store = PassageStore(generation_dir / STORE_FILE)
        _ensure_wal(self.store)
        self.lexical = LexicalIndex.open(generation_dir / LEXICAL_DIR)
        self.writer: LexicalIndexWriter = self.lexical.writer(heap_bytes=50_000_000, threads=1)
        self.writer.collect_garbage()  # files of a run killed in the middle of a commit
        self.delta = load_delta(generation_dir / DELTA_FILE, embedder.info.dimension)
        self.version = read_version(generation_dir)
        self._repair_delta()

    def close(self) -> None:
        self.writer.close()
        self.store.close()

    def _repair_delta(self) -> None:
        """Drop delta vectors that no searchable passage owns (left by a killed run)."""
        ids = delta_ids(self.delta)
        if not ids.size:
            return
        keep = self.store.searchable_rows([int(i) for i in ids])
        stale = [int(i) for i in ids if int(i) not in keep]
        if stale:
            self.delta.remove(stale)
            self.delta.save(self.dir / DELTA_FILE)
            log.info("removed %d stale delta vector(s)", len(stale))

    # -- one source -----------------------------------------------------------------------

    def apply_source(self, source: str, stdin: IO[bytes] | None = None) -> None:
        key = source if source == STDIN else str(Path(source).resolve())
        path = None if source == STDIN else key
        done = 0 if source == STDIN else self.store.checkpoint(key)
        if done:
            self.report.resumed_from[key] = done
        batch: list[UpdateEvent] = []
        position = last = done
        seen = 0  # items read from the source (positions count them, resumed ones included)
        items: Iterator[UpdateEvent | SkippedItem | _Idle | None] = read_events(
            source, self.options.ingest, stdin
        )
        if source == STDIN:
            items = arriving(items, self.options.flush_after)
        for item in items:
            if isinstance(item, _Idle):  # the stream paused: apply what has arrived
                if position > last:
                    self._apply_batch(batch, key, path, position)
                    batch, last = [], position
                continue
            seen += 1
            if seen <= done:
                continue  # applied by an earlier run (checkpoint)
            position = seen
            if isinstance(item, SkippedItem):
                self.report.record_skip(item)
            elif item is not None:
                batch.append(item)
            if position - last >= self.options.batch:
                self._apply_batch(batch, key, path, position)
                batch, last = [], position
        if position > last:
            self._apply_batch(batch, key, path, position)

    # -- one batch ------------------------------------------------------------------------

    def _apply_batch(
        self, events: Sequence[UpdateEvent], key: str, path: str | None, position: int
    ) -> None:
        store = self.store
        with store.transaction():
            before: dict[tuple[str, int], int | None] = {}
            for event in events:
                self.report.events[event.kind] += 1
                page = self._page_of(event)
                if page is not None and page not in before:
                    before[page] = store.searchable_revision(*page)
                touched = self._apply_event(event)
                if touched is not None and touched not in before:
                    before[touched] = None
            changed = {
                page: after
                for page, old in before.items()
                if (after := store.searchable_revision(*page)) != old
            }
            if changed:
                self._reindex(changed)
            self.writer.commit()
            self.delta.save(self.dir / DELTA_FILE)
            store.set_checkpoint(key, position, path)
            kill_point("update:indexed")
        kill_point("update:committed")
        self.report.batches += 1
        self.announce()

    def announce(self) -> None:
        """Write a new ``updates.json`` version: readers reload their tantivy searcher and
        the delta. Also run when a run applies nothing, since a run killed between a batch's
        commit and this marker leaves committed changes that no reader has picked up."""
        self.version += 1
        self.report.delta_vectors = self.delta.ntotal
        self.report.version = self.version
        write_json_atomic(
            self.dir / UPDATES_FILE,
            {
                "version": self.version,
                "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "delta": {"file": DELTA_FILE, "vectors": self.delta.ntotal},
            },
        )

    def _page_of(self, event: UpdateEvent) -> tuple[str, int] | None:
        if event.kind == "visibility-change" and event.revision_id is not None:
            revision = self.store.revision(event.wiki, event.revision_id)
            if revision is not None:  # the stored page, whatever the event says
                return (event.wiki, revision.page_id)
        if event.page_id is not None:
            return (event.wiki, event.page_id)
        return None

    def _apply_event(self, event: UpdateEvent) -> tuple[str, int] | None:
        store, report = self.store, self.report
        if event.kind == "update":
            raw = event.raw
            assert raw is not None
            prior = store.page(raw.wiki, raw.page_id)
            ingest_report = IngestReport()
            outcome = ingest_revision(
                raw,
                store,
                self.options.ingest,
                ingest_report,
                source_id=f"update:{event.location}",
            )
            if outcome is None:
                report.redirects += 1
                return None
            store.restore_if_newer(raw.wiki, raw.page_id)
            if outcome is RevisionOutcome.UNCHANGED:
                report.revisions_unchanged += 1
            elif prior is None:
                report.pages_added += 1
            elif raw.revision_id > (prior.current_revision_id or 0):
                report.pages_updated += 1
            else:
                report.revisions_older += 1
            return (raw.wiki, raw.page_id)
        if event.kind == "delete":
            assert event.page_id is not None
            if not store.delete_page(event.wiki, event.page_id, event.revision_id):
                report.record_unknown(event, f"page {event.page_id} of {event.wiki} not indexed")
                return None
            store.restore_if_newer(event.wiki, event.page_id)
            report.pages_deleted += 1
            return (event.wiki, event.page_id)
        assert event.revision_id is not None
        visibility = REVISION_HIDDEN if event.hidden else REVISION_VISIBLE
        page_id = store.set_revision_visibility(event.wiki, event.revision_id, visibility)
        if page_id is None:
            report.record_unknown(
                event, f"revision {event.revision_id} of {event.wiki} not indexed"
            )
            return None
        if event.hidden:
            report.revisions_hidden += 1
        else:
            report.revisions_shown += 1
        return (event.wiki, page_id)

    def _reindex(self, changed: dict[tuple[str, int], int | None]) -> None:
        """Replace the pages' documents and delta vectors by their searchable passages."""
        records = []
        for (wiki, page_id), revision in changed.items():
            self.writer.delete_page(wiki, page_id)
            self.delta.remove(self.store.page_row_ids(wiki, page_id))
            if revision is not None:
                records.extend(self.store.passages_of_revision(wiki, revision))
        self.report.pages_reindexed += len(changed)
        for record in records:
            self.writer.add(lexical_doc(record))
        if not records:
            return
        texts = (embedding_text(r, self.embed_context) for r in records)
        stream = embed_with_cache(
            self.embedder,
            self.cache,
            texts,
            batch_size=self.options.embed_batch_size,
            progress=False,
            stats=self.report.embedding,
        )
        vectors = np.concatenate(list(stream))
        self.delta.add(np.array([r.row_id for r in records], dtype=np.int64), vectors)
        self.report.passages_indexed += len(records)


def apply_to_generation(
    generation_dir: Path,
    sources: Sequence[str],
    *,
    cache_path: Path,
    embedder: EmbeddingModel,
    embed_context: str,
    options: UpdateOptions = UpdateOptions(),
    report: UpdateReport | None = None,
    stdin: IO[bytes] | None = None,
) -> UpdateReport:
    """Apply ``sources`` to the generation in ``generation_dir`` (lock held by the caller)."""
    report = report if report is not None else UpdateReport()
    report.sources.extend(sources)
    started = time.perf_counter()
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    with EmbeddingCache(cache_path) as cache:
        updater = _Updater(
            generation_dir,
            cache=cache,
            embedder=embedder,
            embed_context=embed_context,
            options=options,
            report=report,
        )
        try:
            batches = report.batches
            for source in sources:
                updater.apply_source(source, stdin)
            if report.batches == batches:
                updater.announce()
        finally:
            updater.close()
            report.seconds += time.perf_counter() - started
    return report


def apply_updates(
    index_dir: Path,
    sources: Sequence[str],
    options: UpdateOptions = UpdateOptions(),
    *,
    embedder: EmbeddingModel | None = None,
    stdin: IO[bytes] | None = None,
) -> UpdateReport:
    """Apply event sources to the published generation of ``index_dir``."""
    layout = IndexLayout(index_dir)
    for source in sources:
        if source != STDIN and not Path(source).is_file():
            raise UpdateError(f"source file not found: {source}")
    with layout.lock():
        layout.cleanup_incomplete()
        generation = layout.current()
        model = generation.manifest.model
        if embedder is None:  # no model named: the one the index was built with
            embedder = open_embedder(options.model or model.model_id)
        info = embedder.info
        differences = model.differences(info)
        if differences:
            raise UpdateError(
                f"generation {generation.generation} was built with {model.model_id!r}; "
                f"the updater is configured with {info.model_id!r} [{'; '.join(differences)}]"
            )
        if not (generation.path / DENSE_FILE).is_file():
            raise UpdateError(f"generation {generation.generation} has no {DENSE_FILE}")
        # Passages are cut as the generation's were (its manifest records how).
        recorded = generation.manifest.chunking
        if recorded is not None:
            chunking = dataclasses.replace(
                options.ingest.chunking,
                max_words=recorded.max_words,
                overlap_words=recorded.overlap_words,
            )
            options = dataclasses.replace(
                options, ingest=dataclasses.replace(options.ingest, chunking=chunking)
            )
        return apply_to_generation(
            generation.path,
            sources,
            cache_path=layout.embedding_cache_path,
            embedder=embedder,
            embed_context=model.embed_context,
            options=options,
            stdin=stdin,
        )
