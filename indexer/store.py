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
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from indexer.models import License, Passage, RawRevision, Section, SiteInfo

# Each entry migrates the schema from version i to i + 1. Never edit a released entry:
# append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE wikis (
        wiki TEXT PRIMARY KEY,
        language TEXT NOT NULL,
        base_url TEXT NOT NULL,
        sitename TEXT NOT NULL
    );
    CREATE TABLE pages (
        wiki TEXT NOT NULL REFERENCES wikis(wiki),
        page_id INTEGER NOT NULL,
        title TEXT NOT NULL,
        namespace INTEGER NOT NULL,
        current_revision_id INTEGER,
        wikidata_id TEXT,
        PRIMARY KEY (wiki, page_id)
    );
    CREATE INDEX pages_by_title ON pages (wiki, title);
    CREATE TABLE revisions (
        wiki TEXT NOT NULL,
        revision_id INTEGER NOT NULL,
        page_id INTEGER NOT NULL,
        title TEXT NOT NULL,
        parent_id INTEGER,
        timestamp TEXT NOT NULL,
        editor TEXT,
        sha1 TEXT,
        license_name TEXT NOT NULL,
        license_identifier TEXT NOT NULL,
        license_url TEXT NOT NULL,
        license_origin TEXT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (wiki, revision_id),
        FOREIGN KEY (wiki, page_id) REFERENCES pages (wiki, page_id)
    );
    CREATE INDEX revisions_by_page ON revisions (wiki, page_id);
    CREATE TABLE sections (
        wiki TEXT NOT NULL,
        revision_id INTEGER NOT NULL,
        ordinal INTEGER NOT NULL,
        path TEXT NOT NULL,
        anchor TEXT NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (wiki, revision_id, ordinal),
        FOREIGN KEY (wiki, revision_id) REFERENCES revisions (wiki, revision_id)
    );
    CREATE TABLE passages (
        id INTEGER PRIMARY KEY,
        passage_id TEXT NOT NULL UNIQUE,
        wiki TEXT NOT NULL,
        page_id INTEGER NOT NULL,
        revision_id INTEGER NOT NULL,
        section_ordinal INTEGER NOT NULL,
        ordinal INTEGER NOT NULL,
        start_offset INTEGER NOT NULL,
        end_offset INTEGER NOT NULL,
        text TEXT NOT NULL,
        FOREIGN KEY (wiki, revision_id, section_ordinal)
            REFERENCES sections (wiki, revision_id, ordinal)
    );
    CREATE INDEX passages_by_revision ON passages (wiki, revision_id);
    CREATE TABLE aliases (
        wiki TEXT NOT NULL,
        title TEXT NOT NULL,
        target_title TEXT NOT NULL,
        namespace INTEGER NOT NULL,
        PRIMARY KEY (wiki, title)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The store file is unusable (newer schema, not a wikirag store, read-only…)."""


class RevisionOutcome(Enum):
    ADDED = "added"
    UNCHANGED = "unchanged"  # this revision is already stored
    SUPERSEDED = "superseded"  # the same source holds a higher revision of the page


@dataclass(frozen=True, slots=True)
class PassageRecord:
    """A passage joined with everything attribution needs, as stored."""

    row_id: int
    passage_id: str
    wiki: str
    language: str
    base_url: str
    sitename: str
    page_id: int
    title: str
    revision_id: int
    revision_timestamp: str
    section_path: tuple[str, ...]
    anchor: str
    section_ordinal: int
    ordinal: int
    start: int
    end: int
    text: str
    license: License
    editor: str | None
    current_revision_id: int | None


@dataclass(frozen=True, slots=True)
class RevisionRecord:
    wiki: str
    revision_id: int
    page_id: int
    title: str
    parent_id: int | None
    timestamp: str
    editor: str | None
    sha1: str | None
    license: License
    license_origin: str
    source: str


_PASSAGE_SELECT = """
    SELECT p.id, p.passage_id, p.wiki, w.language, w.base_url, w.sitename, p.page_id,
           r.title, p.revision_id, r.timestamp, s.path, s.anchor, p.section_ordinal,
           p.ordinal, p.start_offset, p.end_offset, p.text, r.license_name,
           r.license_identifier, r.license_url, r.editor, pg.current_revision_id
    FROM passages p
    JOIN revisions r ON r.wiki = p.wiki AND r.revision_id = p.revision_id
    JOIN sections s ON s.wiki = p.wiki AND s.revision_id = p.revision_id
                   AND s.ordinal = p.section_ordinal
    JOIN wikis w ON w.wiki = p.wiki
    JOIN pages pg ON pg.wiki = p.wiki AND pg.page_id = p.page_id
"""


def _passage_from_row(row: sqlite3.Row | tuple[object, ...]) -> PassageRecord:
    (row_id, passage_id, wiki, language, base_url, sitename, page_id, title, revision_id,
     timestamp, path, anchor, section_ordinal, ordinal, start, end, text, lic_name, lic_id,
     lic_url, editor, current) = tuple(row)  # fmt: skip
    return PassageRecord(
        row_id=int(row_id),  # type: ignore[call-overload]
        passage_id=str(passage_id),
        wiki=str(wiki),
        language=str(language),
        base_url=str(base_url),
        sitename=str(sitename),
        page_id=int(page_id),  # type: ignore[call-overload]
        title=str(title),
        revision_id=int(revision_id),  # type: ignore[call-overload]
        revision_timestamp=str(timestamp),
        section_path=tuple(json.loads(str(path))),
        anchor=str(anchor),
        section_ordinal=int(section_ordinal),  # type: ignore[call-overload]
        ordinal=int(ordinal),  # type: ignore[call-overload]
        start=int(start),  # type: ignore[call-overload]
        end=int(end),  # type: ignore[call-overload]
        text=str(text),
        license=License(name=str(lic_name), identifier=str(lic_id), url=str(lic_url)),
        editor=None if editor is None else str(editor),
        current_revision_id=None if current is None else int(current),  # type: ignore[call-overload]
    )


class PassageStore:
    """SQLite store of pages, revisions, sections, passages and aliases.

    One writer at a time (the ingest/build/update pipelines); any number of readers, each
    thread with its own connection (``readonly=True`` opens the file read-only).
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly and not self.path.exists():
            raise StoreError(f"no passage store at {self.path}")
        self._local = threading.local()
        self._depth = 0
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._migrate(self._conn())
        else:
            self._check_version(self._conn())

    # -- connections and schema -------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.readonly:
                conn = sqlite3.connect(
                    f"file:{self.path}?mode=ro", uri=True, check_same_thread=False
                )
            else:
                conn = sqlite3.connect(self.path, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.isolation_level = None  # explicit transactions only
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        return int(version)

    def _check_version(self, conn: sqlite3.Connection) -> None:
        try:
            version = self._schema_version(conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a SQLite database: {exc}") from exc
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has store schema {version}, newer than this wikirag "
                f"understands ({SCHEMA_VERSION}); upgrade wikirag"
            )
        if version < SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has store schema {version}; open it once read-write "
                f"(e.g. `wikirag ingest`) to migrate it to {SCHEMA_VERSION}"
            )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        try:
            version = self._schema_version(conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a SQLite database: {exc}") from exc
        if version > SCHEMA_VERSION:
            self._check_version(conn)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(MIGRATIONS[target - 1]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all (nested blocks join the outer)."""
        conn = self._conn()
        if self._depth == 0:
            conn.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                conn.execute("ROLLBACK")
            raise
        self._depth -= 1
        if self._depth == 0:
            conn.execute("COMMIT")

    # -- writes -----------------------------------------------------------------------

    def upsert_wiki(self, site: SiteInfo) -> None:
        self._conn().execute(
            "INSERT INTO wikis (wiki, language, base_url, sitename) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (wiki) DO UPDATE SET language = excluded.language, "
            "base_url = excluded.base_url, sitename = excluded.sitename",
            (site.wiki, site.language, site.base_url, site.sitename),
        )

    def add_revision(
        self,
        raw: RawRevision,
        license: License,
        license_origin: str,
        sections: Sequence[Section],
        passages: Sequence[Passage],
        *,
        source: str,
    ) -> RevisionOutcome:
        """Store one revision with its sections and passages (call inside a transaction).

        A revision already stored is left as it is. When ``source`` (a snapshot) already
        gave a *different* revision of the same page, only the higher one is kept.
        """
        conn = self._conn()
        if self.has_revision(raw.wiki, raw.revision_id):
            return RevisionOutcome.UNCHANGED
        same_source = conn.execute(
            "SELECT revision_id FROM revisions WHERE wiki = ? AND page_id = ? AND source = ?",
            (raw.wiki, raw.page_id, source),
        ).fetchall()
        for (other,) in same_source:
            if other > raw.revision_id:
                return RevisionOutcome.SUPERSEDED
            self._delete_revision(raw.wiki, int(other))
        self.upsert_wiki(raw.site)
        conn.execute(
            "INSERT INTO pages (wiki, page_id, title, namespace, current_revision_id, "
            "wikidata_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (wiki, page_id) DO UPDATE SET "
            "title = CASE WHEN excluded.current_revision_id >= "
            "COALESCE(pages.current_revision_id, 0) THEN excluded.title ELSE pages.title END, "
            "wikidata_id = COALESCE(excluded.wikidata_id, pages.wikidata_id), "
            "current_revision_id = MAX(COALESCE(pages.current_revision_id, 0), "
            "excluded.current_revision_id)",
            (raw.wiki, raw.page_id, raw.title, raw.namespace, raw.revision_id, raw.wikidata_id),
        )
        conn.execute(
            "INSERT INTO revisions (wiki, revision_id, page_id, title, parent_id, timestamp, "
            "editor, sha1, license_name, license_identifier, license_url, license_origin, "
            "source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (raw.wiki, raw.revision_id, raw.page_id, raw.title, raw.parent_id, raw.timestamp,
             raw.editor, raw.sha1, license.name, license.identifier, license.url,
             license_origin, source),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO sections (wiki, revision_id, ordinal, path, anchor, text) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (raw.wiki, raw.revision_id, s.ordinal, json.dumps(list(s.path)), s.anchor, s.text)
                for s in sections
            ],
        )
        conn.executemany(
            "INSERT INTO passages (passage_id, wiki, page_id, revision_id, section_ordinal, "
            "ordinal, start_offset, end_offset, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (p.passage_id, p.wiki, p.page_id, p.revision_id, p.section_ordinal, p.ordinal,
                 p.start, p.end, p.text)
                for p in passages
            ],
        )  # fmt: skip
        return RevisionOutcome.ADDED

    def _delete_revision(self, wiki: str, revision_id: int) -> None:
        conn = self._conn()
        for table in ("passages", "sections", "revisions"):
            conn.execute(f"DELETE FROM {table} WHERE wiki = ? AND revision_id = ?",
                         (wiki, revision_id))  # fmt: skip
        conn.execute(
            "UPDATE pages SET current_revision_id = (SELECT MAX(revision_id) FROM revisions r "
            "WHERE r.wiki = pages.wiki AND r.page_id = pages.page_id) "
            "WHERE wiki = ? AND current_revision_id = ?",
            (wiki, revision_id),
        )

    def add_alias(self, site: SiteInfo, title: str, target_title: str, namespace: int) -> bool:
        """Record that ``title`` redirects to ``target_title``; False if already known."""
        self.upsert_wiki(site)
        cursor = self._conn().execute(
            "INSERT INTO aliases (wiki, title, target_title, namespace) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (wiki, title) DO UPDATE SET target_title = excluded.target_title "
            "WHERE aliases.target_title != excluded.target_title",
            (site.wiki, title, target_title, namespace),
        )
        return cursor.rowcount > 0

    # -- reads ------------------------------------------------------------------------

    def has_revision(self, wiki: str, revision_id: int) -> bool:
        row = self._conn().execute(
            "SELECT 1 FROM revisions WHERE wiki = ? AND revision_id = ?", (wiki, revision_id)
        ).fetchone()
        return row is not None

    def counts(self) -> dict[str, int]:
        conn = self._conn()
        return {
            table: int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in ("wikis", "pages", "revisions", "passages", "aliases")
        }

    def wikis(self) -> list[SiteInfo]:
        rows = self._conn().execute(
            "SELECT wiki, base_url, language, sitename FROM wikis ORDER BY wiki"
        )
        return [SiteInfo(wiki=w, base_url=b, language=lang, sitename=s) for w, b, lang, s in rows]

    def find_pages(self, title_or_id: str, wiki: str | None = None) -> list[tuple[str, int]]:
        """``(wiki, page_id)`` of pages matching a title (or alias) or a numeric page id."""
        conn = self._conn()
        wiki_clause, args = ("AND wiki = ?", [wiki]) if wiki else ("", [])
        if title_or_id.isdigit():
            rows = conn.execute(
                f"SELECT wiki, page_id FROM pages WHERE page_id = ? {wiki_clause}",
                [int(title_or_id), *args],
            ).fetchall()
            if rows:
                return [(str(w), int(p)) for w, p in rows]
        title = title_or_id.replace("_", " ").strip()
        rows = conn.execute(
            f"SELECT wiki, page_id FROM pages WHERE title = ? {wiki_clause}", [title, *args]
        ).fetchall()
        if not rows:
            rows = conn.execute(
                "SELECT p.wiki, p.page_id FROM aliases a JOIN pages p "
                f"ON p.wiki = a.wiki AND p.title = a.target_title WHERE a.title = ? "
                f"{wiki_clause.replace('wiki', 'a.wiki')}",
                [title, *args],
            ).fetchall()
        return [(str(w), int(p)) for w, p in rows]

    def revisions_of(self, wiki: str, page_id: int) -> list[RevisionRecord]:
        rows = self._conn().execute(
            "SELECT wiki, revision_id, page_id, title, parent_id, timestamp, editor, sha1, "
            "license_name, license_identifier, license_url, license_origin, source "
            "FROM revisions WHERE wiki = ? AND page_id = ? ORDER BY revision_id",
            (wiki, page_id),
        ).fetchall()
        return [_revision_from_row(r) for r in rows]

    def revision(self, wiki: str, revision_id: int) -> RevisionRecord | None:
        row = self._conn().execute(
            "SELECT wiki, revision_id, page_id, title, parent_id, timestamp, editor, sha1, "
            "license_name, license_identifier, license_url, license_origin, source "
            "FROM revisions WHERE wiki = ? AND revision_id = ?",
            (wiki, revision_id),
        ).fetchone()
        return None if row is None else _revision_from_row(row)

    def passages_of_revision(self, wiki: str, revision_id: int) -> list[PassageRecord]:
        rows = self._conn().execute(
            _PASSAGE_SELECT + " WHERE p.wiki = ? AND p.revision_id = ? ORDER BY p.ordinal",
            (wiki, revision_id),
        ).fetchall()
        return [_passage_from_row(r) for r in rows]

    def passage(self, passage_id: str) -> PassageRecord | None:
        row = self._conn().execute(
            _PASSAGE_SELECT + " WHERE p.passage_id = ?", (passage_id,)
        ).fetchone()
        return None if row is None else _passage_from_row(row)

    def passages_by_rows(self, row_ids: Sequence[int]) -> dict[int, PassageRecord]:
        """Passages by their integer row ids (the ids the dense and lexical indexes hold)."""
        if not row_ids:
            return {}
        marks = ",".join("?" * len(row_ids))
        rows = self._conn().execute(
            _PASSAGE_SELECT + f" WHERE p.id IN ({marks})", list(row_ids)
        ).fetchall()
        records = (_passage_from_row(r) for r in rows)
        return {rec.row_id: rec for rec in records}

    def section_text(self, wiki: str, revision_id: int, ordinal: int) -> str | None:
        row = self._conn().execute(
            "SELECT text FROM sections WHERE wiki = ? AND revision_id = ? AND ordinal = ?",
            (wiki, revision_id, ordinal),
        ).fetchone()
        return None if row is None else str(row[0])

    def iter_current_passages(self, batch_size: int = 1000) -> Iterator[PassageRecord]:
        """Passages of each page's current revision, in row-id order, streamed in batches."""
        last = -1
        conn = self._conn()
        while True:
            rows = conn.execute(
                _PASSAGE_SELECT + " WHERE p.id > ? AND p.revision_id = pg.current_revision_id "
                "ORDER BY p.id LIMIT ?",
                (last, batch_size),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                record = _passage_from_row(row)
                last = record.row_id
                yield record

    def count_current_passages(self) -> int:
        row = self._conn().execute(
            "SELECT COUNT(*) FROM passages p JOIN pages pg ON pg.wiki = p.wiki "
            "AND pg.page_id = p.page_id WHERE p.revision_id = pg.current_revision_id"
        ).fetchone()
        return int(row[0])

    def aliases_of(self, wiki: str, target_title: str) -> list[str]:
        rows = self._conn().execute(
            "SELECT title FROM aliases WHERE wiki = ? AND target_title = ? ORDER BY title",
            (wiki, target_title),
        )
        return [str(r[0]) for r in rows]

    def integrity_check(self) -> str:
        return str(self._conn().execute("PRAGMA integrity_check").fetchone()[0])


def _revision_from_row(row: tuple[object, ...]) -> RevisionRecord:
    (wiki, rev, page, title, parent, ts, editor, sha1, lname, lid, lurl, origin, source) = row
    return RevisionRecord(
        wiki=str(wiki),
        revision_id=int(rev),  # type: ignore[call-overload]
        page_id=int(page),  # type: ignore[call-overload]
        title=str(title),
        parent_id=None if parent is None else int(parent),  # type: ignore[call-overload]
        timestamp=str(ts),
        editor=None if editor is None else str(editor),
        sha1=None if sha1 is None else str(sha1),
        license=License(name=str(lname), identifier=str(lid), url=str(lurl)),
        license_origin=str(origin),
        source=str(source),
    )


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
