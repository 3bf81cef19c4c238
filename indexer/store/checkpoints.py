"""Update checkpoints: how far each update source has been applied (indexer/update.py).

The position reached is written in the same transaction as the batch it ends, so an
interrupted update resumes where its last committed batch left off.
"""

from __future__ import annotations

from indexer.store.connection import StoreConnection


class StoreCheckpoints(StoreConnection):
    """The ``update_checkpoints`` table: one position per update source."""

    def checkpoint(self, source: str) -> int:
        """How many events of update source ``source`` are applied (0 when none)."""
        row = (
            self.connection()
            .execute("SELECT position FROM update_checkpoints WHERE source = ?", (source,))
            .fetchone()
        )
        return 0 if row is None else int(row[0])

    def set_checkpoint(self, source: str, position: int, path: str | None) -> None:
        """Record the position reached in ``source`` (inside the batch's transaction)."""
        self.connection().execute(
            "INSERT INTO update_checkpoints (source, path, position, updated_at) "
            "VALUES (?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) ON CONFLICT (source) "
            "DO UPDATE SET position = excluded.position, path = excluded.path, "
            "updated_at = excluded.updated_at",
            (source, path, position),
        )

    def update_sources(self) -> list[tuple[str, str | None, int]]:
        """``(source, path, position)`` of every update source applied, oldest first."""
        rows = self.connection().execute(
            "SELECT source, path, position FROM update_checkpoints ORDER BY updated_at, source"
        )
        return [(str(s), None if p is None else str(p), int(n)) for s, p, n in rows]
