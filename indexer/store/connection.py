"""The store file and its connections: the part of :class:`~indexer.store.PassageStore` that
the reading, writing and checkpoint parts share.

Opening a store read-write creates the file and migrates its schema (:func:`migrate`);
opening it read-only checks that the schema is the one this code reads
(:func:`check_version`). Each thread gets its own connection, in autocommit mode: writes
group into :meth:`StoreConnection.transaction` blocks.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexer.store.schema import StoreError, check_version, migrate


class StoreConnection:
    """A store file, opened read-write (migrated) or read-only (version checked), with one
    SQLite connection per thread."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly and not self.path.exists():
            raise StoreError(f"no passage store at {self.path}")
        self._local = threading.local()
        self._depth = 0
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            migrate(self.connection(), self.path)
        else:
            check_version(self.connection(), self.path)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (autocommit: write inside
        :meth:`transaction`). Public for the SQL the store has no method for: the journal
        mode switch of indexer/update.py, checks in tests and benchmarks."""
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

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all (nested blocks join the outer)."""
        conn = self.connection()
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
