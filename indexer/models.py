"""Typed records that cross the seams of the indexing pipeline.

source readers → :class:`RawRevision` (or :class:`SkippedItem`)
wikitext cleaner → :class:`Section`
chunker → :class:`Passage`

All are plain frozen dataclasses: cheap to create, hashable, and free of behaviour beyond
small derived properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from indexer.trust import TrustSignals


@dataclass(frozen=True, slots=True)
class License:
    """A content license as stated by the source (never assumed by the reader).

    ``identifier`` is the SPDX id, e.g. ``CC-BY-SA-4.0``.
    """

    name: str
    identifier: str
    url: str


CC_BY_SA_3 = License(
    name="Creative Commons Attribution-ShareAlike License 3.0",
    identifier="CC-BY-SA-3.0",
    url="https://creativecommons.org/licenses/by-sa/3.0/",
)
CC_BY_SA_4 = License(
    name="Creative Commons Attribution-ShareAlike License 4.0",
    identifier="CC-BY-SA-4.0",
    url="https://creativecommons.org/licenses/by-sa/4.0/",
)


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """Which wiki a revision belongs to.

    ``wiki`` is the database name (``enwiki``), ``base_url`` the scheme and host
    (``https://en.wikipedia.org``), ``language`` the content language code (``en``,
    ``simple``, ``fr``…).
    """

    wiki: str
    base_url: str
    language: str
    sitename: str = "Wikipedia"


@dataclass(frozen=True, slots=True)
class RawRevision:
    """One revision of one page, as read from an export, before any cleaning.

    ``timestamp`` is ISO 8601 UTC (``2016-05-01T12:00:00Z``). ``license`` is None when the
    source does not state one (MediaWiki XML); the store then applies the wiki's license rule.
    ``redirect_target`` is set for redirect pages; ``aliases`` lists other titles that
    redirect here (WME ``redirects[]``). ``location`` names where in the input the record
    came from, for error reports (``file.xml.bz2: page 736``).
    """

    site: SiteInfo
    page_id: int
    title: str
    namespace: int
    revision_id: int
    timestamp: str
    wikitext: str
    location: str
    parent_id: int | None = None
    editor: str | None = None
    sha1: str | None = None
    license: License | None = None
    redirect_target: str | None = None
    aliases: tuple[str, ...] = ()
    wikidata_id: str | None = None
    # What the export says about how far the revision can be trusted (indexer/trust.py).
    trust: TrustSignals = field(default_factory=TrustSignals)

    @property
    def wiki(self) -> str:
        return self.site.wiki

    @property
    def is_redirect(self) -> bool:
        return self.redirect_target is not None


@dataclass(frozen=True, slots=True)
class SkippedItem:
    """An input item that could not be read. ``reason`` is a short stable category
    (``invalid-json``, ``missing-field``, ``malformed-xml``, ``truncated-bz2``…), ``location``
    says where (file, line, page id) and ``detail`` says what exactly was wrong."""

    source: str
    location: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Section:
    """A section of an article's clean text.

    ``path`` is the list of headings from the top (``()`` for the lead), ``anchor`` the
    fragment Wikipedia uses in URLs for the section's heading (``""`` for the lead),
    ``ordinal`` the position of the section in the article (0 = lead).
    """

    path: tuple[str, ...]
    anchor: str
    text: str
    ordinal: int

    @property
    def path_label(self) -> str:
        return " > ".join(self.path)


@dataclass(frozen=True, slots=True)
class Passage:
    """A citable slice of a section: ``text == section.text[start:end]``.

    ``passage_id`` is stable: the same revision cut with the same settings always gives the
    same ids (``{wiki}:{revision_id}:{ordinal}``).
    """

    passage_id: str
    wiki: str
    page_id: int
    revision_id: int
    title: str
    section_path: tuple[str, ...]
    anchor: str
    section_ordinal: int
    ordinal: int
    start: int
    end: int
    text: str
    revision_timestamp: str = ""

    @property
    def section_label(self) -> str:
        return " > ".join(self.section_path)


def make_passage_id(wiki: str, revision_id: int, ordinal: int) -> str:
    """The stable id of the ``ordinal``-th passage of a revision."""
    return f"{wiki}:{revision_id}:{ordinal}"


def parse_passage_id(passage_id: str) -> tuple[str, int, int]:
    """Split a passage id into ``(wiki, revision_id, ordinal)``.

    Raises ``ValueError`` with the expected shape when the id is malformed.
    """
    parts = passage_id.split(":")
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2].isdigit():
        raise ValueError(
            f"malformed passage id {passage_id!r}: expected WIKI:REVISION_ID:ORDINAL, "
            "for example 'enwiki:1270870723:12'"
        )
    return parts[0], int(parts[1]), int(parts[2])
