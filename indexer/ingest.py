"""The ingestion pipeline: source → clean → chunk → store.

Streams each source record by record (memory does not grow with the input), commits to the
store in batches of whole pages (a crash or Ctrl-C loses at most the open batch, never half a
page), and reports what it did and what it skipped, with locations.

Usage::

    >>> import tempfile
    >>> store = PassageStore(Path(tempfile.mkdtemp()) / "store.sqlite")
    >>> report = ingest_sources([Path("data/samples/wme/frwiki_namespace_0.tar.gz")], store,
    ...                         IngestOptions(progress=False))
    >>> report.pages, report.passages, dict(report.skipped)
    (4, 484, {})
    >>> store.close()
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from indexer.chunking import ChunkingConfig, PageRef, chunk_sections
from indexer.clean import CleanerConfig, clean_wikitext
from indexer.licensing import LicensePolicy
from indexer.models import License, Passage, RawRevision, Section, SkippedItem
from indexer.sources.open import open_source
from indexer.sources.wme import DEFAULT_MAX_LINE_BYTES
from indexer.store import PassageStore, RevisionOutcome

log = logging.getLogger(__name__)

MAX_REPORTED_SKIPS = 200


@dataclass(slots=True)
class IngestReport:
    """What an ingestion did. ``skipped`` counts unreadable items by reason; ``skipped_items``
    keeps the first :data:`MAX_REPORTED_SKIPS` of them with their locations."""

    sources: list[str] = field(default_factory=list)
    pages: int = 0
    revisions_added: int = 0
    revisions_unchanged: int = 0
    revisions_superseded: int = 0
    passages: int = 0
    redirects: int = 0
    wikitext_bytes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_items: list[SkippedItem] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def record_skip(self, item: SkippedItem) -> None:
        self.skipped[item.reason] += 1
        if len(self.skipped_items) < MAX_REPORTED_SKIPS:
            self.skipped_items.append(item)
        log.warning("skipped %s (%s): %s", item.location, item.reason, item.detail)

    def as_dict(self) -> dict[str, object]:
        return {
            "sources": self.sources,
            "pages": self.pages,
            "revisions": {
                "added": self.revisions_added,
                "unchanged": self.revisions_unchanged,
                "superseded_in_source": self.revisions_superseded,
            },
            "passages": self.passages,
            "redirects": self.redirects,
            "wikitext_mb": round(self.wikitext_bytes / 1e6, 3),
            "skipped": dict(self.skipped),
            "skipped_items": [
                {"source": s.source, "location": s.location, "reason": s.reason, "detail": s.detail}
                for s in self.skipped_items
            ],
            "seconds": round(self.seconds, 2),
            "interrupted": self.interrupted,
        }


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """How sources are read and cut. ``wiki`` names the wiki of XML exports that lack
    ``<siteinfo>``; ``namespaces`` are the namespaces kept (articles only by default);
    NDJSON lines over ``max_line_bytes`` are skipped and reported."""

    chunking: ChunkingConfig = ChunkingConfig()
    cleaner: CleanerConfig = CleanerConfig()
    licenses: LicensePolicy = LicensePolicy()
    wiki: str | None = None
    namespaces: frozenset[int] = frozenset({0})
    commit_every: int = 100
    progress: bool = True
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES


RevisionHook = Callable[[RawRevision, RevisionOutcome], None]


@dataclass(frozen=True, slots=True)
class PreparedRevision:
    """A revision cleaned, cut and licensed, ready for :meth:`PassageStore.add_revision`."""

    sections: tuple[Section, ...]
    passages: tuple[Passage, ...]
    license: License
    license_origin: str
    wikitext_bytes: int


def prepare_revision(raw: RawRevision, options: IngestOptions) -> PreparedRevision:
    """Clean and cut one revision and resolve its license; touches no store.

    >>> prepared = prepare_revision(raw, IngestOptions())               # doctest: +SKIP
    >>> [p.passage_id for p in prepared.passages][:2]                   # doctest: +SKIP
    ['enwiki:1270870723:0', 'enwiki:1270870723:1']
    """
    cleaner = dataclasses.replace(options.cleaner, language=raw.site.language)
    sections = tuple(clean_wikitext(raw.wikitext, title=raw.title, config=cleaner))
    page = PageRef(raw.wiki, raw.page_id, raw.revision_id, raw.title, raw.timestamp)
    passages = tuple(chunk_sections(sections, page, options.chunking))
    license, origin = options.licenses.resolve(raw)
    return PreparedRevision(
        sections=sections,
        passages=passages,
        license=license,
        license_origin=origin,
        wikitext_bytes=len(raw.wikitext.encode("utf-8")),
    )


def ingest_sources(
    sources: Sequence[Path],
    store: PassageStore,
    options: IngestOptions = IngestOptions(),
    *,
    on_revision: RevisionHook | None = None,
) -> IngestReport:
    """Read every source into ``store``; Ctrl-C rolls back the open batch and re-raises."""
    report = IngestReport(sources=[str(s) for s in sources])
    started = time.perf_counter()
    bar = tqdm(desc="ingest", unit=" pages", disable=not options.progress, smoothing=0.1)
    try:
        for source in sources:
            items = open_source(
                source,
                wiki=options.wiki,
                namespaces=options.namespaces,
                max_line_bytes=options.max_line_bytes,
            )
            _ingest_items(items, source, store, options, report, bar, on_revision)
    except KeyboardInterrupt:
        report.interrupted = True
        raise
    finally:
        bar.close()
        report.seconds = time.perf_counter() - started
    return report


def _ingest_items(
    items: Iterable[RawRevision | SkippedItem],
    source: Path,
    store: PassageStore,
    options: IngestOptions,
    report: IngestReport,
    bar: tqdm,  # type: ignore[type-arg]
    on_revision: RevisionHook | None,
) -> None:
    source_id = source.name
    iterator = iter(items)
    while True:
        with store.transaction():
            for _ in range(options.commit_every):
                item = next(iterator, None)
                if item is None:
                    return
                if isinstance(item, SkippedItem):
                    report.record_skip(item)
                    continue
                outcome = ingest_revision(item, store, options, report, source_id=source_id)
                bar.update(1)
                if on_revision is not None and outcome is not None:
                    on_revision(item, outcome)


def ingest_revision(
    raw: RawRevision,
    store: PassageStore,
    options: IngestOptions,
    report: IngestReport,
    *,
    source_id: str,
    prepared: PreparedRevision | None = None,
) -> RevisionOutcome | None:
    """Clean, cut and store one revision (inside the caller's transaction).

    Redirects become aliases of their target and return None. ``prepared`` is the revision
    already cleaned and cut elsewhere (:func:`prepare_revision`, run by the workers of a
    distributed build); the store then sees exactly what a local ingest would give it.
    """
    if raw.redirect_target is not None:
        if store.add_alias(raw.site, raw.title, raw.redirect_target, raw.namespace):
            report.redirects += 1
        return None
    report.pages += 1
    # A snapshot lists the titles that redirect to an article; they may be new even when the
    # revision is not.
    for alias in raw.aliases:
        if store.add_alias(raw.site, alias, raw.title, raw.namespace):
            report.redirects += 1
    if store.has_revision(raw.wiki, raw.revision_id):
        report.revisions_unchanged += 1
        return RevisionOutcome.UNCHANGED
    if prepared is None:
        prepared = prepare_revision(raw, options)
    report.wikitext_bytes += prepared.wikitext_bytes
    outcome = store.add_revision(
        raw,
        prepared.license,
        prepared.license_origin,
        prepared.sections,
        prepared.passages,
        source=source_id,
    )
    if outcome is RevisionOutcome.ADDED:
        report.revisions_added += 1
        report.passages += len(prepared.passages)
    elif outcome is RevisionOutcome.SUPERSEDED:
        report.revisions_superseded += 1
    return outcome
