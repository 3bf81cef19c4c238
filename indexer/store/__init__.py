"""The passage store: SQLite (WAL) tables of wikis, pages, revisions, sections, passages and
aliases, with a versioned schema and forward migrations.

Every passage keeps full provenance: its revision (id, timestamp, editor, sha1, license as
stated by the source or by the wiki's license rule) and its section (path, anchor, clean
text), so attribution is always derived from stored data.

Usage::

    >>> store = PassageStore(Path("var/store.sqlite"))          # doctest: +SKIP
    >>> with store.transaction():                                 # doctest: +SKIP
    ...     store.add_revision(raw, license, sections, passages)
    >>> store.counts()                                            # doctest: +SKIP
    {'wikis': 1, 'pages': 106, 'revisions': 106, 'passages': 8123, 'aliases': 99}

The package is cut by job; :class:`PassageStore` is the one public type and combines the
parts, and every public name importable from ``indexer.store`` before the cut still is.
Each module imports only those listed above it:

- ``schema.py``: the DDL as forward migrations, :data:`SCHEMA_VERSION`, the status values
  of pages and revisions, the errors, and the version check and migration run on open;
- ``records.py``: the frozen records returned (:class:`PassageRecord` and the others);
- ``titles.py``: :func:`normalize_title`, MediaWiki's title rule (no SQL);
- ``connection.py``: :class:`StoreConnection`, the file and its per-thread connections,
  ``close()`` and ``transaction()``, which every part of the store builds on;
- ``read.py``: :class:`StoreReader`, the lookups and streams of serving, citations and
  builds (it only reads, so a read-only store answers all of it);
- ``write.py``: :class:`StoreWriter`, a reader that also writes (ingest, aliases,
  deletions, visibility, retention, ``finalize()``): adding a revision first asks whether
  it is stored;
- ``checkpoints.py``: :class:`StoreCheckpoints`, the position each update source reached.

``PassageStore(StoreWriter, StoreCheckpoints)``, ``StoreWriter(StoreReader)``, and both
``StoreReader`` and ``StoreCheckpoints`` on ``StoreConnection``.
"""

from __future__ import annotations

from indexer.store.checkpoints import StoreCheckpoints
from indexer.store.read import PASSAGE_SELECT
from indexer.store.records import PageRecord, PassageRecord, ResolvedTitle, RevisionRecord
from indexer.store.schema import (
    MIGRATIONS,
    PAGE_ACTIVE,
    PAGE_DELETED,
    REVISION_HIDDEN,
    REVISION_VISIBLE,
    SCHEMA_VERSION,
    StoreError,
    StoreOutdated,
)
from indexer.store.titles import normalize_title
from indexer.store.write import RevisionOutcome, StoreWriter

__all__ = [
    "MIGRATIONS",
    "PAGE_ACTIVE",
    "PAGE_DELETED",
    "PASSAGE_SELECT",
    "REVISION_HIDDEN",
    "REVISION_VISIBLE",
    "SCHEMA_VERSION",
    "PageRecord",
    "PassageRecord",
    "PassageStore",
    "ResolvedTitle",
    "RevisionOutcome",
    "RevisionRecord",
    "StoreError",
    "StoreOutdated",
    "normalize_title",
]


class PassageStore(StoreWriter, StoreCheckpoints):
    """SQLite store of pages, revisions, sections, passages and aliases.

    One writer at a time (the ingest/build/update pipelines); any number of readers, each
    thread with its own connection (``readonly=True`` opens the file read-only).
    """
