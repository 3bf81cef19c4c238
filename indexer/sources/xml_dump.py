"""Streaming reader for MediaWiki XML exports (``pages-articles``, schema 0.10 and 0.11).

The reader feeds the decompressed bytes in small chunks to a *defused* expat parser whose
target keeps only the fields of the page being read, so memory does not grow with the size
of the dump. Plain ``.xml``, ``.xml.bz2`` (single or multistream: bz2 decompression handles
concatenated streams) and ``.xml.gz`` are read; the compression is recognised by its magic
bytes.

Besides the reader, this module holds what every source reader shares: :class:`SourceError`
and :func:`site_for_wiki`.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from indexer.errors import InvalidInput, WikiragError
from indexer.licensing import utc_timestamp
from indexer.models import RawRevision, SiteInfo, SkippedItem
from indexer.trust import from_xml

logger = logging.getLogger(__name__)

__all__ = [
    "ByteStream",
    "DumpStats",
    "MediaWikiDumpReader",
    "SourceError",
    "compression_of",
    "open_maybe_compressed",
    "site_for_wiki",
    "url_origin",
]

_CHUNK_BYTES: Final = 64 * 1024
_XML_LANG: Final = "{http://www.w3.org/XML/1998/namespace}lang"
_BZ2_MAGIC: Final = b"BZh"
_GZIP_MAGIC: Final = b"\x1f\x8b"


class ByteStream(Protocol):
    """A readable binary stream: a file, or a bz2/gzip/tar member reader."""

    def read(self, size: int = ..., /) -> bytes: ...

    def readline(self, size: int = ..., /) -> bytes: ...


def compression_of(path: Path) -> str | None:
    """``"bz2"``, ``"gzip"`` or None (uncompressed), from the file's magic bytes.

    Raises ``OSError`` when the file cannot be read.
    """
    with path.open("rb") as probe:
        magic = probe.read(3)
    if magic.startswith(_BZ2_MAGIC):
        return "bz2"
    if magic.startswith(_GZIP_MAGIC):
        return "gzip"
    return None


def open_maybe_compressed(path: Path) -> AbstractContextManager[ByteStream]:
    """Open ``path`` for reading, decompressing bz2 or gzip as its magic bytes say.

    Raises ``OSError`` when the file cannot be opened.
    """
    compression = compression_of(path)
    if compression == "bz2":
        return bz2.open(path, "rb")
    if compression == "gzip":
        return gzip.open(path, "rb")
    return path.open("rb")


class SourceError(WikiragError):
    """A problem with a whole source that makes reading it pointless (missing file,
    unknown format, export that does not say which wiki it comes from)."""

    code = "unreadable-source"


# --------------------------------------------------------------------------- wiki → site

# (dbname suffix, domain, site name); longer suffixes first so that "enwikiversity" is not
# taken for a Wikipedia.
_PROJECTS: Final = (
    ("wiktionary", "wiktionary.org", "Wiktionary"),
    ("wikiversity", "wikiversity.org", "Wikiversity"),
    ("wikibooks", "wikibooks.org", "Wikibooks"),
    ("wikiquote", "wikiquote.org", "Wikiquote"),
    ("wikinews", "wikinews.org", "Wikinews"),
    ("wikisource", "wikisource.org", "Wikisource"),
    ("wikivoyage", "wikivoyage.org", "Wikivoyage"),
    ("wiki", "wikipedia.org", "Wikipedia"),
)
# A language prefix of a database name: "en", "simple", "zh_min_nan", "be_x_old"…
# (commonswiki, metawiki, wikidatawiki… do not match and are refused).
_LANGUAGE_PREFIX: Final = re.compile(r"(?:[a-z]{2,3}(?:_[a-z0-9]+)*|simple)")


def site_for_wiki(wiki: str) -> SiteInfo:
    """The language and base URL of a Wikimedia content wiki, from its database name.

    >>> site_for_wiki("enwikiversity")
    SiteInfo(wiki='enwikiversity', base_url='https://en.wikiversity.org', language='en', sitename='Wikiversity')

    Raises ``ValueError`` for names that are not ``{language}{project}`` database names.
    """  # noqa: E501
    for suffix, domain, sitename in _PROJECTS:
        if not wiki.endswith(suffix):
            continue
        prefix = wiki[: -len(suffix)]
        if _LANGUAGE_PREFIX.fullmatch(prefix):
            language = prefix.replace("_", "-")
            return SiteInfo(
                wiki=wiki,
                base_url=f"https://{language}.{domain}",
                language=language,
                sitename=sitename,
            )
        break
    raise InvalidInput(
        f"cannot tell the language and site of wiki {wiki!r}: expected a Wikimedia database "
        "name such as 'enwiki', 'simplewiki', 'frwiktionary' or 'enwikiversity'"
    )


def url_origin(url: str | None) -> str | None:
    """``https://en.wikipedia.org/wiki/Main_Page`` → ``https://en.wikipedia.org``."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


# --------------------------------------------------------------------------- XML events


def _local(tag: str) -> str:
    """Strip the export namespace: ``{http://www.mediawiki.org/xml/export-0.10/}page``."""
    return tag.rpartition("}")[2]


# Paths (below the root element) whose text is kept.
_SITEINFO_FIELDS: Final = frozenset({"sitename", "dbname", "base"})
_PAGE_FIELDS: Final = frozenset({"title", "ns", "id"})
_REVISION_FIELDS: Final = frozenset(
    {"id", "parentid", "timestamp", "sha1", "text", "comment", "minor"}
)
_CONTRIBUTOR_FIELDS: Final = frozenset({"username", "ip"})


@dataclass(slots=True)
class _Page:
    """The fields of one ``<page>`` (they all precede its revisions in the export)."""

    fields: dict[str, str] = field(default_factory=dict)
    redirect_target: str | None = None
    revisions: int = 0
    checked: bool = False
    filtered: bool = False
    broken: bool = False
    page_id: int | None = None
    namespace: int = 0


@dataclass(slots=True)
class _SiteinfoEnd:
    fields: dict[str, str]


@dataclass(slots=True)
class _RevisionEnd:
    page: _Page
    fields: dict[str, str]


@dataclass(slots=True)
class _PageEnd:
    page: _Page


_Event = _SiteinfoEnd | _RevisionEnd | _PageEnd


class _DumpTarget:
    """Parser target that turns expat callbacks into page/revision events.

    Only the text of the elements listed above is accumulated; everything else is dropped
    as it streams by, so the memory held is that of one revision.
    """

    def __init__(self, file_name: str) -> None:
        self._file_name = file_name
        self.root_attrib: dict[str, str] | None = None
        self.events: list[_Event] = []
        self._path: list[str] = []
        self._text: list[str] | None = None
        self._siteinfo: dict[str, str] = {}
        self._page = _Page()
        self._revision: dict[str, str] = {}

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        name = _local(tag)
        if self.root_attrib is None:
            if name != "mediawiki":
                raise SourceError(
                    f"{self._file_name} is not a MediaWiki XML export: its root element is "
                    f"<{name}>, expected <mediawiki>"
                )
            self.root_attrib = dict(attrib)
            return
        self._path.append(name)
        path = tuple(self._path)
        if path == ("page",):
            self._page = _Page()
        elif path == ("page", "redirect"):
            self._page.redirect_target = attrib.get("title", "")
        elif path == ("page", "revision"):
            self._revision = {}
        elif path == ("page", "revision", "text") and "deleted" in attrib:
            self._revision["text-deleted"] = "1"
        if self._wanted(path):
            self._text = []

    def data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def end(self, tag: str) -> None:
        if not self._path:
            return  # </mediawiki>
        path = tuple(self._path)
        self._path.pop()
        if self._text is not None:
            self._store(path, "".join(self._text))
            self._text = None
        if path == ("siteinfo",):
            self.events.append(_SiteinfoEnd(self._siteinfo))
        elif path == ("page", "revision"):
            self.events.append(_RevisionEnd(self._page, self._revision))
        elif path == ("page",):
            self.events.append(_PageEnd(self._page))

    def close(self) -> None:
        return None

    def drain(self) -> list[_Event]:
        events, self.events = self.events, []
        return events

    @staticmethod
    def _wanted(path: tuple[str, ...]) -> bool:
        match path:
            case ("siteinfo", name):
                return name in _SITEINFO_FIELDS
            case ("page", name):
                return name in _PAGE_FIELDS
            case ("page", "revision", name):
                return name in _REVISION_FIELDS
            case ("page", "revision", "contributor", name):
                return name in _CONTRIBUTOR_FIELDS
        return False

    def _store(self, path: tuple[str, ...], value: str) -> None:
        if path[0] == "siteinfo":
            self._siteinfo[path[-1]] = value
        elif len(path) == 2:
            self._page.fields[path[-1]] = value
        else:
            self._revision["/".join(path[2:])] = value


# --------------------------------------------------------------------------- reader


@dataclass(slots=True)
class DumpStats:
    """Counts of one pass over an export (reset at each iteration)."""

    pages_seen: int = 0
    filtered_namespace: int = 0
    revisions: int = 0
    skipped: int = 0


def _parse_int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not text.isascii() or not text.lstrip("-").isdigit():
        return None
    return int(text)


class MediaWikiDumpReader:
    """Stream the revisions of a MediaWiki XML export.

    >>> reader = MediaWikiDumpReader(Path("data/samples/enwiki-sample-pages-articles.xml.bz2"))
    >>> revisions = [item for item in reader if isinstance(item, RawRevision)]
    >>> len(revisions), revisions[0].title, revisions[0].revision_id
    (205, 'AccessibleComputing', 631144794)
    >>> reader.stats.pages_seen, reader.stats.filtered_namespace
    (206, 1)

    ``wiki`` names the wiki (database name, ``enwiki``) and overrides the export's
    ``<siteinfo>``; it is required for exports without ``<siteinfo>``. ``base_url`` and
    ``language`` override what is read or derived. Pages outside ``namespaces`` are
    filtered silently (counted in :attr:`stats`). Unusable pages and a broken end of the
    file are reported as :class:`SkippedItem`; a problem with the whole file raises
    :class:`SourceError`.
    """

    def __init__(
        self,
        path: Path,
        *,
        wiki: str | None = None,
        base_url: str | None = None,
        language: str | None = None,
        namespaces: frozenset[int] = frozenset({0}),
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"{self.path}: no such file")
        self.wiki = wiki
        self.base_url = base_url
        self.language = language
        self.namespaces = namespaces
        self.stats = DumpStats()
        self._site: SiteInfo | None = None
        self._last_page_id: int | None = None
        self._compression: str | None = None

    # -- public ---------------------------------------------------------------------

    def __iter__(self) -> Iterator[RawRevision | SkippedItem]:
        try:
            compression = compression_of(self.path)
            opened = open_maybe_compressed(self.path)
        except OSError as exc:
            raise SourceError(f"{self.path}: cannot open: {exc}") from exc
        with opened as stream:
            yield from self.read_stream(stream, compression)

    def read_stream(
        self, stream: ByteStream, compression: str | None = None
    ) -> Iterator[RawRevision | SkippedItem]:
        """Read the export from an open, decompressed ``stream`` instead of the file: one
        slice of a multistream dump, say (``<siteinfo>`` header, some page streams,
        ``</mediawiki>``). ``compression`` only names errors (``truncated-bz2``)."""
        self.stats = DumpStats()
        self._site = None
        self._last_page_id = None
        self._compression = compression
        yield from self._parse(stream)

    # -- reading --------------------------------------------------------------------

    def _parse(self, stream: ByteStream) -> Iterator[RawRevision | SkippedItem]:
        target = _DumpTarget(self.path.name)
        parser = DefusedXMLParser(
            target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
        compression = self._compression or "file"
        lines = 0
        while True:
            try:
                chunk = stream.read(_CHUNK_BYTES)
            except EOFError as exc:
                detail = f"compressed data ended early: {exc}"
                yield self._fatal(f"truncated-{compression}", lines + 1, detail)
                return
            except OSError as exc:
                detail = f"cannot decompress: {exc}"
                yield self._fatal(f"corrupt-{compression}", lines + 1, detail)
                return
            try:
                if chunk:
                    parser.feed(chunk)
                else:
                    parser.close()
            except ParseError as exc:
                yield from self._handle(target)
                yield self._fatal("malformed-xml", exc.position[0], str(exc))
                return
            except DefusedXmlException as exc:
                yield from self._handle(target)
                line = getattr(getattr(parser, "parser", None), "CurrentLineNumber", lines + 1)
                yield self._fatal(
                    "unsafe-xml", int(line), f"DTD and entity declarations are refused: {exc!r}"
                )
                return
            yield from self._handle(target)
            if not chunk:
                if target.root_attrib is not None and self._site is None:
                    self._resolve_site({}, target.root_attrib)  # empty export: check --wiki
                return
            lines += chunk.count(b"\n")

    def _fatal(self, reason: str, line: int, detail: str) -> SkippedItem:
        after = (
            f"after page {self._last_page_id}"
            if self._last_page_id is not None
            else "before the first page"
        )
        logger.warning("%s: %s %s, line %d: %s", self.path.name, reason, after, line, detail)
        self.stats.skipped += 1
        return SkippedItem(
            source=str(self.path),
            location=f"{self.path.name}: {after}, line {line}",
            reason=reason,
            detail=detail,
        )

    def _handle(self, target: _DumpTarget) -> Iterator[RawRevision | SkippedItem]:
        for event in target.drain():
            if isinstance(event, _SiteinfoEnd):
                self._site = self._resolve_site(event.fields, target.root_attrib or {})
            elif isinstance(event, _RevisionEnd):
                if self._site is None:
                    self._site = self._resolve_site({}, target.root_attrib or {})
                item = self._revision(self._site, event.page, event.fields)
                if item is not None:
                    yield item
            else:
                item = self._page_end(event.page)
                if item is not None:
                    yield item

    # -- site -----------------------------------------------------------------------

    def _resolve_site(self, siteinfo: dict[str, str], root: dict[str, str]) -> SiteInfo:
        dbname = siteinfo.get("dbname", "").strip() or None
        wiki = self.wiki or dbname
        if wiki is None:
            what = "has no <siteinfo>" if not siteinfo else "has no <dbname> in its <siteinfo>"
            raise SourceError(
                f"{self.path.name} {what}, so the wiki it comes from is unknown; "
                "name its wiki with --wiki (its database name, e.g. --wiki enwiki)"
            )
        own = dbname is None or dbname == wiki
        if not own:
            logger.warning(
                "%s: <siteinfo> names wiki %r but %r was given; using %r",
                self.path.name,
                dbname,
                wiki,
                wiki,
            )
        base_url = self.base_url or (url_origin(siteinfo.get("base")) if own else None)
        language = self.language or (root.get(_XML_LANG) if own else None)
        sitename = siteinfo.get("sitename") if own else None
        if base_url is None or language is None or sitename is None:
            derived = self._derived_site(wiki, base_url is None or language is None)
            base_url = base_url or derived.base_url
            language = language or derived.language
            sitename = sitename or derived.sitename
        site = SiteInfo(wiki=wiki, base_url=base_url, language=language, sitename=sitename)
        logger.info("%s: reading wiki %s (%s, %s)", self.path.name, wiki, base_url, language)
        return site

    def _derived_site(self, wiki: str, required: bool) -> SiteInfo:
        try:
            return site_for_wiki(wiki)
        except ValueError as exc:
            if not required:
                return SiteInfo(wiki=wiki, base_url="", language="")
            raise SourceError(
                f"{self.path.name}: {exc}; give the base URL and language explicitly "
                "(MediaWikiDumpReader(base_url=..., language=...))"
            ) from exc

    # -- pages ----------------------------------------------------------------------

    def _location(self, page: _Page) -> str:
        if page.page_id is not None:
            return f"{self.path.name}: page {page.page_id}"
        title = page.fields.get("title")
        if title:
            return f'{self.path.name}: page "{title}"'
        return f"{self.path.name}: page {page.fields.get('id', '?')!r}"

    def _malformed(self, page: _Page, detail: str) -> SkippedItem:
        logger.warning("%s: malformed page: %s", self._location(page), detail)
        self.stats.skipped += 1
        return SkippedItem(
            source=str(self.path),
            location=self._location(page),
            reason="malformed-page",
            detail=detail,
        )

    def _check_page(self, page: _Page) -> SkippedItem | None:
        """Validate the page-level fields once; mark it filtered or broken."""
        page.checked = True
        page.page_id = _parse_int(page.fields.get("id"))
        namespace = _parse_int(page.fields.get("ns"))
        if namespace is not None and namespace not in self.namespaces:
            page.filtered = True
            return None
        problem: str | None = None
        if namespace is None:
            problem = f"namespace {page.fields.get('ns')!r} is not a number"
        elif page.page_id is None:
            problem = f"page id {page.fields.get('id')!r} is not a number"
        elif not page.fields.get("title"):
            problem = "page has no <title>"
        if problem is not None or namespace is None:
            page.broken = True
            return self._malformed(page, problem or "no namespace")
        page.namespace = namespace
        return None

    def _revision(
        self, site: SiteInfo, page: _Page, fields: dict[str, str]
    ) -> RawRevision | SkippedItem | None:
        page.revisions += 1
        if not page.checked:
            problem = self._check_page(page)
            if problem is not None:
                return problem
        if page.filtered or page.broken or page.page_id is None:
            return None
        revision_id = _parse_int(fields.get("id"))
        timestamp = fields.get("timestamp", "").strip()
        if revision_id is None:
            return self._malformed(page, f"revision id {fields.get('id')!r} is not a number")
        if not timestamp:
            return self._malformed(page, f"revision {revision_id} has no <timestamp>")
        try:
            timestamp = utc_timestamp(timestamp)  # the license rule and the store compare it
        except ValueError as exc:
            return self._malformed(page, f"revision {revision_id}: <timestamp>: {exc}")
        if "text-deleted" in fields:
            self.stats.skipped += 1
            return SkippedItem(
                source=str(self.path),
                location=self._location(page),
                reason="text-deleted",
                detail=f"the text of revision {revision_id} is deleted in this export",
            )
        self.stats.revisions += 1
        return RawRevision(
            site=site,
            page_id=page.page_id,
            title=page.fields["title"],
            namespace=page.namespace,
            revision_id=revision_id,
            timestamp=timestamp,
            wikitext=fields.get("text", ""),
            location=f"{self.path.name}: page {page.page_id}",
            parent_id=_parse_int(fields.get("parentid")),
            editor=fields.get("contributor/username") or fields.get("contributor/ip") or None,
            sha1=fields.get("sha1") or None,
            redirect_target=page.redirect_target,
            trust=from_xml(
                fields.get("contributor/username"),
                fields.get("contributor/ip"),
                fields.get("comment"),
                minor="minor" in fields,
            ),
        )

    def _page_end(self, page: _Page) -> SkippedItem | None:
        self.stats.pages_seen += 1
        problem: SkippedItem | None = None
        if not page.checked:  # a page without any <revision>
            problem = self._check_page(page)
            if problem is None and not page.filtered:
                problem = self._malformed(page, "page has no <revision>")
        if page.filtered:
            self.stats.filtered_namespace += 1
        if page.page_id is not None:
            self._last_page_id = page.page_id
        return problem
