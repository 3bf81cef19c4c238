"""Pick the reader for an export file by its name."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from indexer.sources.wme import DEFAULT_MAX_LINE_BYTES, EnterpriseSnapshotReader
from indexer.sources.xml_dump import MediaWikiDumpReader, SourceError

__all__ = ["SUPPORTED_SUFFIXES", "SourceError", "open_source"]

_XML_SUFFIXES: Final = (".xml", ".xml.bz2", ".bz2", ".xml.gz")
_ENTERPRISE_SUFFIXES: Final = (
    ".tar.gz",
    ".tgz",
    ".ndjson",
    ".ndjson.gz",
    ".jsonl",
    ".jsonl.gz",
)
SUPPORTED_SUFFIXES: Final = _XML_SUFFIXES + _ENTERPRISE_SUFFIXES


def open_source(
    path: Path,
    *,
    wiki: str | None = None,
    namespaces: frozenset[int] = frozenset({0}),
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> MediaWikiDumpReader | EnterpriseSnapshotReader:
    """The reader for ``path``: MediaWiki XML (``.xml``, ``.xml.bz2``, ``.bz2``,
    ``.xml.gz``) or Wikimedia Enterprise (``.tar.gz``, ``.tgz``, ``.ndjson[.gz]``,
    ``.jsonl[.gz]``).

    >>> for item in open_source(Path("enwiki-latest-pages-articles.xml.bz2")):  # doctest: +SKIP
    ...     ...

    ``wiki`` names the wiki of an XML export (required when it has no ``<siteinfo>``);
    WME objects name their wiki themselves; NDJSON lines longer than ``max_line_bytes`` are
    skipped and reported (``line-too-long``). Raises :class:`SourceError` for a missing file
    or an unknown format.
    """
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if not path.is_file():
        raise SourceError(f"{path}: not a file (give the export file itself)")
    name = path.name.lower()
    if name.endswith(_ENTERPRISE_SUFFIXES):
        return EnterpriseSnapshotReader(path, namespaces=namespaces, max_line_bytes=max_line_bytes)
    if name.endswith(_XML_SUFFIXES):
        return MediaWikiDumpReader(path, wiki=wiki, namespaces=namespaces)
    raise SourceError(
        f"{path}: unknown export format; supported file names end with "
        f"{', '.join(SUPPORTED_SUFFIXES)} (MediaWiki XML export or Wikimedia Enterprise "
        "snapshot/NDJSON)"
    )
