"""The write side of the store: what the ingest, build, update and retention pipelines change.

Row writes go inside :meth:`~indexer.store.connection.StoreConnection.transaction`;
:meth:`StoreWriter.finalize` (it changes the journal mode) goes after the last one. The
writer is a reader too (:class:`StoreReader`): adding a revision first asks whether it is
stored already.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import Enum

from indexer.models import License, Passage, RawRevision, Section, SiteInfo
from indexer.store.read import StoreReader
from indexer.store.schema import REVISION_HIDDEN, REVISION_VISIBLE


class RevisionOutcome(Enum):
    ADDED = "added"
    UNCHANGED = "unchanged"  # this revision is already stored
    SUPERSEDED = "superseded"  # the same source holds a higher revision of the page


class StoreWriter(StoreReader):
    """Revisions with their sections and passages, aliases, deletions, visibility, retention,
    and the finishing step before serving."""

    # -- writes -----------------------------------------------------------------------

    def upsert_wiki(self, site: SiteInfo) -> None:
        self.connection().execute(
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
        conn = self.connection()
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
            "source, trust) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                raw.wiki,
                raw.revision_id,
                raw.page_id,
                raw.title,
                raw.parent_id,
                raw.timestamp,
                raw.editor,
                raw.sha1,
                license.name,
                license.identifier,
                license.url,
                license_origin,
                source,
                None if raw.trust.empty else raw.trust.to_json(),
            ),
        )
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
                (
                    p.passage_id,
                    p.wiki,
                    p.page_id,
                    p.revision_id,
                    p.section_ordinal,
                    p.ordinal,
                    p.start,
                    p.end,
                    p.text,
                )
                for p in passages
            ],
        )
        return RevisionOutcome.ADDED

    def _delete_revision(self, wiki: str, revision_id: int) -> None:
        conn = self.connection()
        for table in ("passages", "sections", "revisions"):
            conn.execute(
                f"DELETE FROM {table} WHERE wiki = ? AND revision_id = ?", (wiki, revision_id)
            )
        conn.execute(
            "UPDATE pages SET current_revision_id = (SELECT MAX(revision_id) FROM revisions r "
            "WHERE r.wiki = pages.wiki AND r.page_id = pages.page_id) "
            "WHERE wiki = ? AND current_revision_id = ?",
            (wiki, revision_id),
        )

    def prune_superseded_revisions(self, saved_before: str) -> list[tuple[str, int]]:
        """Retention: delete revisions that are no longer current and were saved before
        ``saved_before`` (ISO 8601 UTC), with their sections and passages. Current revisions
        are never pruned. Call inside a transaction; returns ``(wiki, revision_id)`` pruned.

        Off by default (see ``Settings.revision_retention_days``): every revision ever
        indexed stays citable unless an operator opts in.
        """
        rows = (
            self.connection()
            .execute(
                "SELECT r.wiki, r.revision_id FROM revisions r JOIN pages p "
                "ON p.wiki = r.wiki AND p.page_id = r.page_id "
                "WHERE r.revision_id != p.current_revision_id AND r.timestamp < ? "
                "ORDER BY r.wiki, r.revision_id",
                (saved_before,),
            )
            .fetchall()
        )
        pruned = [(str(wiki), int(revision)) for wiki, revision in rows]
        for wiki, revision in pruned:
            self._delete_revision(wiki, revision)
        return pruned

    def add_alias(self, site: SiteInfo, title: str, target_title: str, namespace: int) -> bool:
        """Record that ``title`` redirects to ``target_title``; False if already known."""
        self.upsert_wiki(site)
        cursor = self.connection().execute(
            "INSERT INTO aliases (wiki, title, target_title, namespace) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (wiki, title) DO UPDATE SET target_title = excluded.target_title "
            "WHERE aliases.target_title != excluded.target_title",
            (site.wiki, title, target_title, namespace),
        )
        return cursor.rowcount > 0

    def finalize(self) -> None:
        """Prepare a finished store for read-only serving: fold the WAL into the main file
        and switch to a rollback journal, so readers need no write access."""
        conn = self.connection()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("ANALYZE")

    # -- incremental updates (indexer/update.py) ---------------------------------------

    def delete_page(self, wiki: str, page_id: int, revision_id: int | None = None) -> bool:
        """Mark a page deleted (its revisions stay stored but are no longer served). The
        deletion covers revisions up to ``revision_id`` (default: the highest stored); a
        later update with a higher revision restores the page. False if the page is unknown.
        """
        conn = self.connection()
        cursor = conn.execute(
            "UPDATE pages SET status = 'deleted', deleted_at_revision = MAX("
            "COALESCE(deleted_at_revision, 0), COALESCE(?, current_revision_id, 0)) "
            "WHERE wiki = ? AND page_id = ?",
            (revision_id, wiki, page_id),
        )
        return cursor.rowcount > 0

    def restore_if_newer(self, wiki: str, page_id: int) -> None:
        """Reactivate a deleted page whose current revision is newer than its deletion."""
        self.connection().execute(
            "UPDATE pages SET status = 'active', deleted_at_revision = NULL "
            "WHERE wiki = ? AND page_id = ? AND status = 'deleted' "
            "AND current_revision_id > COALESCE(deleted_at_revision, 0)",
            (wiki, page_id),
        )

    def set_revision_visibility(self, wiki: str, revision_id: int, visibility: str) -> int | None:
        """Hide or show a stored revision's text; returns its page id, None if unknown."""
        if visibility not in (REVISION_VISIBLE, REVISION_HIDDEN):
            raise ValueError(f"visibility must be visible or hidden, not {visibility!r}")
        conn = self.connection()
        row = conn.execute(
            "SELECT page_id FROM revisions WHERE wiki = ? AND revision_id = ?",
            (wiki, revision_id),
        ).fetchone()
        if row is None:
            return None
        conn.execute(
            "UPDATE revisions SET visibility = ? WHERE wiki = ? AND revision_id = ?",
            (visibility, wiki, revision_id),
        )
        return int(row[0])
