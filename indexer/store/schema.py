"""The store's schema: the DDL of every version as forward migrations, the values its status
columns hold, and the checks that a file has the schema this code reads.

A store file records its schema version in SQLite's ``user_version``. Opening one read-write
(:func:`migrate`) applies the missing migrations, each in its own transaction; opening one
read-only (:func:`check_version`) refuses any other version than :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from indexer.errors import WikiragError

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
    # 2: incremental updates (indexer/update.py): deleted pages, hidden revisions, and the
    # position reached in each update source.
    """
    ALTER TABLE pages ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
    ALTER TABLE pages ADD COLUMN deleted_at_revision INTEGER;
    ALTER TABLE revisions ADD COLUMN visibility TEXT NOT NULL DEFAULT 'visible';
    CREATE TABLE update_checkpoints (
        source TEXT PRIMARY KEY,
        path TEXT,
        position INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 3: the credibility signals of each revision (indexer/trust.py), JSON; NULL for the
    # revisions stored before (no signal recorded, none invented).
    """
    ALTER TABLE revisions ADD COLUMN trust TEXT;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

PAGE_ACTIVE = "active"
PAGE_DELETED = "deleted"
REVISION_VISIBLE = "visible"
REVISION_HIDDEN = "hidden"


class StoreError(WikiragError):
    """The store file is unusable (newer schema, not a wikirag store, read-only…)."""

    code = "store-unusable"


class StoreOutdated(StoreError):
    """The store has an older schema; opening it read-write migrates it (additively)."""


def schema_version(conn: sqlite3.Connection) -> int:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    return int(version)


def check_version(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a store at ``path`` whose schema is not :data:`SCHEMA_VERSION`."""
    try:
        version = schema_version(conn)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a SQLite database: {exc}") from exc
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has store schema {version}, newer than this wikirag "
            f"understands ({SCHEMA_VERSION}); upgrade wikirag"
        )
    if version < SCHEMA_VERSION:
        raise StoreOutdated(
            f"{path} has store schema {version}; open it once read-write "
            f"(e.g. `wikirag ingest`) to migrate it to {SCHEMA_VERSION}"
        )


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the store at ``path`` to :data:`SCHEMA_VERSION`, one migration per transaction."""
    try:
        version = schema_version(conn)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a SQLite database: {exc}") from exc
    if version > SCHEMA_VERSION:
        check_version(conn, path)
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


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
