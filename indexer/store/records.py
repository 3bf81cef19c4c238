"""The records the store returns: a passage with everything attribution needs, a revision,
a page, and what a title resolves to (frozen dataclasses of the stored values)."""

from __future__ import annotations

from dataclasses import dataclass

from indexer.models import License
from indexer.store.schema import PAGE_ACTIVE, PAGE_DELETED, REVISION_VISIBLE
from indexer.trust import TrustSignals


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
    page_status: str = PAGE_ACTIVE
    visibility: str = REVISION_VISIBLE
    # The page's Wikidata item (``Q42``): one article across languages; None when unknown.
    wikidata_id: str | None = None
    # What the export said about the revision's credibility (indexer/trust.py).
    trust: TrustSignals = TrustSignals()

    @property
    def suppressed(self) -> str | None:
        """Why this passage must not be served: ``"deleted"`` (its page was deleted),
        ``"hidden"`` (its revision's text was hidden), or None."""
        if self.page_status == PAGE_DELETED:
            return "deleted"
        if self.visibility != REVISION_VISIBLE:
            return "hidden"
        return None


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
    trust: TrustSignals = TrustSignals()


@dataclass(frozen=True, slots=True)
class PageRecord:
    """One page as stored: its current title and the highest revision the store holds."""

    wiki: str
    page_id: int
    title: str
    namespace: int
    current_revision_id: int | None
    wikidata_id: str | None


@dataclass(frozen=True, slots=True)
class ResolvedTitle:
    """What a title names, after MediaWiki normalisation and the stored redirects (aliases).

    ``title`` is the normalised title asked for; ``redirects`` the alias titles followed, in
    order (empty when ``title`` names a page itself); ``target`` the title finally reached;
    ``fragment`` the section the last redirect points to (``""`` when none); ``page`` the page
    stored under ``target``, or None when a redirect leads to a page that is not indexed (or
    the redirects loop).
    """

    title: str
    target: str
    page: PageRecord | None
    redirects: tuple[str, ...] = ()
    fragment: str = ""
