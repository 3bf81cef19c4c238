"""The read side of the store: lookups and streams for serving, citations and builds.

Every method only reads, so a store opened with ``readonly=True`` (the service's) answers
all of them. Passages come back as :class:`PassageRecord`, joined with their revision,
section, page and wiki (:data:`PASSAGE_SELECT`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from indexer.models import License, SiteInfo
from indexer.store.connection import StoreConnection
from indexer.store.records import PageRecord, PassageRecord, ResolvedTitle, RevisionRecord
from indexer.store.schema import PAGE_DELETED, REVISION_VISIBLE
from indexer.store.titles import normalize_title
from indexer.trust import TrustSignals

# Every column a PassageRecord needs, in the order _passage_from_row reads them; append a
# WHERE clause. Public because benchmarks/query_bench.py times this query on its own.
PASSAGE_SELECT = """
    SELECT p.id, p.passage_id, p.wiki, w.language, w.base_url, w.sitename, p.page_id,
           r.title, p.revision_id, r.timestamp, s.path, s.anchor, p.section_ordinal,
           p.ordinal, p.start_offset, p.end_offset, p.text, r.license_name,
           r.license_identifier, r.license_url, r.editor, pg.current_revision_id,
           pg.status, r.visibility, pg.wikidata_id, r.trust
    FROM passages p
    JOIN revisions r ON r.wiki = p.wiki AND r.revision_id = p.revision_id
    JOIN sections s ON s.wiki = p.wiki AND s.revision_id = p.revision_id
                   AND s.ordinal = p.section_ordinal
    JOIN wikis w ON w.wiki = p.wiki
    JOIN pages pg ON pg.wiki = p.wiki AND pg.page_id = p.page_id
"""


def _passage_from_row(row: tuple[Any, ...]) -> PassageRecord:
    (
        row_id,
        passage_id,
        wiki,
        language,
        base_url,
        sitename,
        page_id,
        title,
        revision_id,
        timestamp,
        path,
        anchor,
        section_ordinal,
        ordinal,
        start,
        end,
        text,
        lic_name,
        lic_id,
        lic_url,
        editor,
        current,
        status,
        visibility,
        wikidata_id,
        trust,
    ) = tuple(row)
    return PassageRecord(
        row_id=int(row_id),
        passage_id=str(passage_id),
        wiki=str(wiki),
        language=str(language),
        base_url=str(base_url),
        sitename=str(sitename),
        page_id=int(page_id),
        title=str(title),
        revision_id=int(revision_id),
        revision_timestamp=str(timestamp),
        section_path=tuple(json.loads(str(path))),
        anchor=str(anchor),
        section_ordinal=int(section_ordinal),
        ordinal=int(ordinal),
        start=int(start),
        end=int(end),
        text=str(text),
        license=License(name=str(lic_name), identifier=str(lic_id), url=str(lic_url)),
        editor=None if editor is None else str(editor),
        current_revision_id=None if current is None else int(current),
        page_status=str(status),
        visibility=str(visibility),
        wikidata_id=None if wikidata_id is None else str(wikidata_id),
        trust=TrustSignals.from_json(None if trust is None else str(trust)),
    )


class StoreReader(StoreConnection):
    """Lookups of pages, revisions, passages and aliases, and the streams a build reads."""

    # -- reads ------------------------------------------------------------------------

    def has_revision(self, wiki: str, revision_id: int) -> bool:
        row = (
            self.connection()
            .execute(
                "SELECT 1 FROM revisions WHERE wiki = ? AND revision_id = ?", (wiki, revision_id)
            )
            .fetchone()
        )
        return row is not None

    def counts(self) -> dict[str, int]:
        conn = self.connection()
        return {
            table: int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in ("wikis", "pages", "revisions", "passages", "aliases")
        }

    def wikis(self) -> list[SiteInfo]:
        rows = self.connection().execute(
            "SELECT wiki, base_url, language, sitename FROM wikis ORDER BY wiki"
        )
        return [SiteInfo(wiki=w, base_url=b, language=lang, sitename=s) for w, b, lang, s in rows]

    def find_pages(self, title_or_id: str, wiki: str | None = None) -> list[tuple[str, int]]:
        """``(wiki, page_id)`` of pages matching a title (or alias) or a numeric page id."""
        conn = self.connection()
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
        rows = (
            self.connection()
            .execute(
                "SELECT wiki, revision_id, page_id, title, parent_id, timestamp, editor, sha1, "
                "license_name, license_identifier, license_url, license_origin, source, trust "
                "FROM revisions WHERE wiki = ? AND page_id = ? ORDER BY revision_id",
                (wiki, page_id),
            )
            .fetchall()
        )
        return [_revision_from_row(r) for r in rows]

    def revision(self, wiki: str, revision_id: int) -> RevisionRecord | None:
        row = (
            self.connection()
            .execute(
                "SELECT wiki, revision_id, page_id, title, parent_id, timestamp, editor, sha1, "
                "license_name, license_identifier, license_url, license_origin, source, trust "
                "FROM revisions WHERE wiki = ? AND revision_id = ?",
                (wiki, revision_id),
            )
            .fetchone()
        )
        return None if row is None else _revision_from_row(row)

    def passages_of_revision(self, wiki: str, revision_id: int) -> list[PassageRecord]:
        rows = (
            self.connection()
            .execute(
                PASSAGE_SELECT + " WHERE p.wiki = ? AND p.revision_id = ? ORDER BY p.ordinal",
                (wiki, revision_id),
            )
            .fetchall()
        )
        return [_passage_from_row(r) for r in rows]

    def passage(self, passage_id: str) -> PassageRecord | None:
        row = (
            self.connection()
            .execute(PASSAGE_SELECT + " WHERE p.passage_id = ?", (passage_id,))
            .fetchone()
        )
        return None if row is None else _passage_from_row(row)

    def passages_by_rows(self, row_ids: Sequence[int]) -> dict[int, PassageRecord]:
        """Passages by their integer row ids (the ids the dense and lexical indexes hold)."""
        if not row_ids:
            return {}
        marks = ",".join("?" * len(row_ids))
        rows = (
            self.connection()
            .execute(PASSAGE_SELECT + f" WHERE p.id IN ({marks})", list(row_ids))
            .fetchall()
        )
        records = (_passage_from_row(r) for r in rows)
        return {rec.row_id: rec for rec in records}

    def languages_by_rows(self, row_ids: Sequence[int]) -> dict[int, str]:
        """The language (of its wiki) of each passage row id; absent: no such row."""
        if not row_ids:
            return {}
        marks = ",".join("?" * len(row_ids))
        rows = self.connection().execute(
            "SELECT p.id, w.language FROM passages p JOIN wikis w ON w.wiki = p.wiki "
            f"WHERE p.id IN ({marks})",
            list(row_ids),
        )
        return {int(row_id): str(language) for row_id, language in rows}

    def section_text(self, wiki: str, revision_id: int, ordinal: int) -> str | None:
        row = (
            self.connection()
            .execute(
                "SELECT text FROM sections WHERE wiki = ? AND revision_id = ? AND ordinal = ?",
                (wiki, revision_id, ordinal),
            )
            .fetchone()
        )
        return None if row is None else str(row[0])

    def iter_current_passages(self, batch_size: int = 1000) -> Iterator[PassageRecord]:
        """Passages of each page's current revision, in row-id order, streamed in batches."""
        last = -1
        conn = self.connection()
        while True:
            rows = conn.execute(
                PASSAGE_SELECT + " WHERE p.id > ? AND p.revision_id = pg.current_revision_id "
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
        row = (
            self.connection()
            .execute(
                "SELECT COUNT(*) FROM passages p JOIN pages pg ON pg.wiki = p.wiki "
                "AND pg.page_id = p.page_id WHERE p.revision_id = pg.current_revision_id"
            )
            .fetchone()
        )
        return int(row[0])

    def current_row_ids(
        self,
        *,
        wikis: Sequence[str] | None = None,
        languages: Sequence[str] | None = None,
        pages: Sequence[tuple[str, int]] | None = None,
    ) -> np.ndarray:
        """Row ids of current passages matching all given filters (int64, sorted)."""
        clauses = ["p.revision_id = pg.current_revision_id", "pg.status = 'active'"]
        args: list[object] = []
        if wikis is not None:
            clauses.append(f"p.wiki IN ({','.join('?' * len(wikis))})")
            args.extend(wikis)
        if languages is not None:
            clauses.append(f"w.language IN ({','.join('?' * len(languages))})")
            args.extend(languages)
        if pages is not None:
            pairs = " OR ".join("(p.wiki = ? AND p.page_id = ?)" for _ in pages) or "0"
            clauses.append(f"({pairs})")
            for wiki, page_id in pages:
                args.extend((wiki, page_id))
        rows = self.connection().execute(
            "SELECT p.id FROM passages p JOIN pages pg ON pg.wiki = p.wiki "
            "AND pg.page_id = p.page_id JOIN wikis w ON w.wiki = p.wiki "
            "JOIN revisions r ON r.wiki = p.wiki AND r.revision_id = p.revision_id "
            "AND r.visibility = 'visible' "
            f"WHERE {' AND '.join(clauses)} ORDER BY p.id",
            args,
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    def current_revisions(self) -> Iterator[tuple[tuple[str, int], int]]:
        """``((wiki, page_id), current_revision_id)`` for every page, streamed."""
        rows = self.connection().execute(
            "SELECT wiki, page_id, current_revision_id FROM pages "
            "WHERE current_revision_id IS NOT NULL"
        )
        for wiki, page_id, revision_id in rows:
            yield (str(wiki), int(page_id)), int(revision_id)

    def aliases_of(self, wiki: str, target_title: str) -> list[str]:
        rows = self.connection().execute(
            "SELECT title FROM aliases WHERE wiki = ? AND target_title = ? ORDER BY title",
            (wiki, target_title),
        )
        return [str(r[0]) for r in rows]

    def page(self, wiki: str, page_id: int) -> PageRecord | None:
        """The stored page ``page_id`` of ``wiki``, or None."""
        row = (
            self.connection()
            .execute(
                "SELECT wiki, page_id, title, namespace, current_revision_id, wikidata_id "
                "FROM pages WHERE wiki = ? AND page_id = ?",
                (wiki, page_id),
            )
            .fetchone()
        )
        return None if row is None else _page_from_row(row)

    def page_by_title(self, wiki: str, title: str) -> PageRecord | None:
        """The page stored under exactly ``title`` (no normalisation, no redirects); when
        several pages had that title, the one with the highest current revision."""
        row = (
            self.connection()
            .execute(
                "SELECT wiki, page_id, title, namespace, current_revision_id, wikidata_id "
                "FROM pages WHERE wiki = ? AND title = ? "
                "ORDER BY current_revision_id DESC LIMIT 1",
                (wiki, title),
            )
            .fetchone()
        )
        return None if row is None else _page_from_row(row)

    def resolve_title(
        self, wiki: str, title: str, *, first_letter_case: bool = True, max_redirects: int = 5
    ) -> ResolvedTitle | None:
        """The page a title names in ``wiki``, following stored redirects (aliases).

        The title is normalised as MediaWiki does (:func:`normalize_title`). Returns None when
        neither a page nor an alias has that title; a :class:`ResolvedTitle` with ``page``
        None when its redirects lead nowhere indexed.

        >>> store.resolve_title("enwiki", "einstein").page.title     # doctest: +SKIP
        'Albert Einstein'
        """
        asked = normalize_title(title, first_letter_case=first_letter_case)
        current, fragment = asked, ""
        redirects: list[str] = []
        conn = self.connection()
        while True:
            page = self.page_by_title(wiki, current)
            if page is not None:
                return ResolvedTitle(asked, current, page, tuple(redirects), fragment)
            row = conn.execute(
                "SELECT target_title FROM aliases WHERE wiki = ? AND title = ?", (wiki, current)
            ).fetchone()
            if row is None:
                if not redirects:
                    return None
                return ResolvedTitle(asked, current, None, tuple(redirects), fragment)
            redirects.append(current)
            target, _, section = str(row[0]).partition("#")
            current = normalize_title(target, first_letter_case=first_letter_case)
            fragment = section or fragment
            if current in redirects or len(redirects) > max_redirects:
                return ResolvedTitle(asked, current, None, tuple(redirects), fragment)

    # -- incremental updates (indexer/update.py) ---------------------------------------

    def searchable_revision(self, wiki: str, page_id: int) -> int | None:
        """The revision of the page that search serves: its current revision when the page
        is active and that revision visible, else None."""
        row = (
            self.connection()
            .execute(
                "SELECT pg.current_revision_id FROM pages pg JOIN revisions r "
                "ON r.wiki = pg.wiki AND r.revision_id = pg.current_revision_id "
                "WHERE pg.wiki = ? AND pg.page_id = ? AND pg.status = 'active' "
                "AND r.visibility = 'visible'",
                (wiki, page_id),
            )
            .fetchone()
        )
        return None if row is None or row[0] is None else int(row[0])

    def page_status(self, wiki: str, page_id: int) -> tuple[str, int | None] | None:
        """``(status, deleted_at_revision)`` of a stored page, or None."""
        row = (
            self.connection()
            .execute(
                "SELECT status, deleted_at_revision FROM pages WHERE wiki = ? AND page_id = ?",
                (wiki, page_id),
            )
            .fetchone()
        )
        return None if row is None else (str(row[0]), None if row[1] is None else int(row[1]))

    def revision_suppression(self, wiki: str, revision_id: int) -> str | None:
        """``"deleted"`` / ``"hidden"`` when a stored revision must not be served, else None."""
        row = (
            self.connection()
            .execute(
                "SELECT pg.status, r.visibility FROM revisions r JOIN pages pg "
                "ON pg.wiki = r.wiki AND pg.page_id = r.page_id "
                "WHERE r.wiki = ? AND r.revision_id = ?",
                (wiki, revision_id),
            )
            .fetchone()
        )
        if row is None:
            return None
        if row[0] == PAGE_DELETED:
            return "deleted"
        return "hidden" if row[1] != REVISION_VISIBLE else None

    def page_row_ids(self, wiki: str, page_id: int) -> list[int]:
        """Row ids of every stored passage of a page, all revisions."""
        rows = self.connection().execute(
            "SELECT id FROM passages WHERE wiki = ? AND page_id = ? ORDER BY id", (wiki, page_id)
        )
        return [int(r[0]) for r in rows]

    def searchable_rows(self, row_ids: Sequence[int]) -> set[int]:
        """Which of ``row_ids`` are passages that search may serve now."""
        found: set[int] = set()
        ids = list(row_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.connection().execute(
                "SELECT p.id FROM passages p JOIN pages pg ON pg.wiki = p.wiki "
                "AND pg.page_id = p.page_id JOIN revisions r ON r.wiki = p.wiki "
                "AND r.revision_id = p.revision_id WHERE p.revision_id = pg.current_revision_id "
                f"AND pg.status = 'active' AND r.visibility = 'visible' AND p.id IN ({marks})",
                chunk,
            )
            found.update(int(r[0]) for r in rows)
        return found

    def integrity_check(self) -> str:
        return str(self.connection().execute("PRAGMA integrity_check").fetchone()[0])


def _revision_from_row(row: tuple[Any, ...]) -> RevisionRecord:
    (wiki, rev, page, title, parent, ts, editor, sha1, lname, lid, lurl, origin, source, trust) = (
        row
    )
    return RevisionRecord(
        wiki=str(wiki),
        revision_id=int(rev),
        page_id=int(page),
        title=str(title),
        parent_id=None if parent is None else int(parent),
        timestamp=str(ts),
        editor=None if editor is None else str(editor),
        sha1=None if sha1 is None else str(sha1),
        license=License(name=str(lname), identifier=str(lid), url=str(lurl)),
        license_origin=str(origin),
        source=str(source),
        trust=TrustSignals.from_json(None if trust is None else str(trust)),
    )


def _page_from_row(row: tuple[Any, ...]) -> PageRecord:
    wiki, page_id, title, namespace, current, wikidata_id = row
    return PageRecord(
        wiki=str(wiki),
        page_id=int(page_id),
        title=str(title),
        namespace=int(namespace),
        current_revision_id=None if current is None else int(current),
        wikidata_id=None if wikidata_id is None else str(wikidata_id),
    )
