"""Streaming reader for Wikimedia Enterprise (WME) exports.

A WME *snapshot* is a ``.tar.gz`` holding NDJSON files, one article object a line; realtime
batches and samples are plain ``.ndjson`` (optionally gzip-compressed). The archive is read
in tar streaming mode and each member line by line; nothing is extracted to disk and nothing
is buffered beyond one line.

Duplicate pages (the same page twice in one snapshot) are all yielded: the store keeps the
highest revision.
"""

from __future__ import annotations

import json
import logging
import re
import tarfile
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from indexer.licensing import utc_timestamp
from indexer.models import License, RawRevision, SiteInfo, SkippedItem
from indexer.sources.xml_dump import (
    ByteStream,
    SourceError,
    open_maybe_compressed,
    site_for_wiki,
    url_origin,
)
from indexer.trust import from_enterprise

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "EnterpriseSnapshotReader",
    "SnapshotStats",
    "iter_ndjson_lines",
    "load_json_line",
    "parse_enterprise_article",
]

DEFAULT_MAX_LINE_BYTES: Final = 64 * 1024 * 1024
_DRAIN_BYTES: Final = 1024 * 1024
_TAR_SUFFIXES: Final = (".tar.gz", ".tgz", ".tar")
_MEMBER_SUFFIXES: Final = (".ndjson", ".json", ".jsonl")
_REQUIRED: Final = (
    "name",
    "identifier",
    "version.identifier",
    "is_part_of.identifier",
    "article_body.wikitext",
    "date_modified",
)
# What a broken gzip stream / tar archive raises while it is being read.
_STREAM_ERRORS: Final = (tarfile.TarError, OSError, EOFError, zlib.error)


# --------------------------------------------------------------------------- one object


class _FieldProblem(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _get(obj: dict[str, object], dotted: str) -> object:
    """``_get(obj, "version.identifier")``; None when any step is absent or not an object."""
    value: object = obj
    for key in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _get_str(obj: dict[str, object], dotted: str) -> str | None:
    value = _get(obj, dotted)
    return value if isinstance(value, str) and value else None


_WIKIDATA_ITEM = re.compile(r"Q[1-9][0-9]{0,11}")


def wikidata_item(value: str | None) -> str | None:
    """``value`` when it is a Wikidata item id (``Q42``), else None: the id is served on
    every passage and groups articles across languages, so an export's odd value is dropped.

    >>> wikidata_item("Q937"), wikidata_item("q937"), wikidata_item("Q0"), wikidata_item("<b>")
    ('Q937', None, None, None)
    """
    return value if value is not None and _WIKIDATA_ITEM.fullmatch(value) else None


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _require_int(obj: dict[str, object], dotted: str) -> int:
    value = _as_int(_get(obj, dotted))
    if value is None:
        raise _FieldProblem("invalid-field", f"{dotted} is not an integer: {_get(obj, dotted)!r}")
    return value


def _require_str(obj: dict[str, object], dotted: str, *, allow_empty: bool = False) -> str:
    value = _get(obj, dotted)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise _FieldProblem("invalid-field", f"{dotted} is not a non-empty string: {value!r}")
    return value


def _require_timestamp(obj: dict[str, object], dotted: str) -> str:
    """An ISO 8601 field, written as the store keeps timestamps (UTC, ``Z``)."""
    try:
        return utc_timestamp(_require_str(obj, dotted))
    except ValueError as exc:
        raise _FieldProblem("invalid-field", f"{dotted}: {exc}") from None


def _check_required(obj: dict[str, object]) -> None:
    missing = [name for name in _REQUIRED if _get(obj, name) is None]
    if missing:
        raise _FieldProblem("missing-field", f"missing required field(s): {', '.join(missing)}")


def _license(obj: dict[str, object]) -> License | None:
    """The first ``license[]`` entry exactly as stated; None when the source states none."""
    entries = obj.get("license")
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        return None
    first: dict[str, object] = entries[0]
    identifier = _get_str(first, "identifier")
    if identifier is None:
        return None
    return License(
        name=_get_str(first, "name") or identifier,
        identifier=identifier,
        url=_get_str(first, "url") or "",
    )


def _aliases(obj: dict[str, object]) -> tuple[str, ...]:
    redirects = obj.get("redirects")
    if not isinstance(redirects, list):
        return ()
    names = (_get_str(entry, "name") for entry in redirects if isinstance(entry, dict))
    return tuple(name for name in names if name)


def _site(obj: dict[str, object], wiki: str) -> SiteInfo:
    try:
        derived: SiteInfo | None = site_for_wiki(wiki)
    except ValueError:
        derived = None
    base_url = (
        url_origin(_get_str(obj, "is_part_of.url"))
        or url_origin(_get_str(obj, "url"))
        or (derived.base_url if derived else None)
    )
    language = _get_str(obj, "in_language.identifier") or (derived.language if derived else None)
    if base_url is None:
        raise _FieldProblem("missing-field", f"is_part_of.url (or url) for wiki {wiki!r}")
    if language is None:
        raise _FieldProblem("missing-field", f"in_language.identifier for wiki {wiki!r}")
    sitename = _get_str(obj, "is_part_of.name") or (derived.sitename if derived else "Wikipedia")
    return SiteInfo(wiki=wiki, base_url=base_url, language=language, sitename=sitename)


def _namespace(obj: dict[str, object]) -> int:
    """``namespace.identifier``; 0 when absent (snapshots are split by namespace)."""
    raw = _get(obj, "namespace.identifier")
    if raw is None:
        return 0
    namespace = _as_int(raw)
    if namespace is None:
        raise _FieldProblem("invalid-field", f"namespace.identifier is not an integer: {raw!r}")
    return namespace


def _article(obj: dict[str, object], location: str, namespace: int) -> RawRevision:
    _check_required(obj)
    wiki = _require_str(obj, "is_part_of.identifier")
    return RawRevision(
        site=_site(obj, wiki),
        page_id=_require_int(obj, "identifier"),
        title=_require_str(obj, "name"),
        namespace=namespace,
        revision_id=_require_int(obj, "version.identifier"),
        timestamp=_require_timestamp(obj, "date_modified"),
        wikitext=_require_str(obj, "article_body.wikitext", allow_empty=True),
        location=location,
        parent_id=_as_int(_get(obj, "previous_version.identifier")),
        editor=_get_str(obj, "version.editor.name"),
        license=_license(obj),
        aliases=_aliases(obj),
        wikidata_id=wikidata_item(_get_str(obj, "main_entity.identifier")),
        trust=from_enterprise(obj),
    )


def parse_enterprise_article(
    obj: dict[str, object],
    *,
    source: str,
    location: str,
    namespaces: frozenset[int],
) -> RawRevision | SkippedItem | None:
    """Turn one WME article object into a :class:`RawRevision`.

    Returns a :class:`SkippedItem` when a required field is missing or has the wrong type,
    and None when the article is in a namespace outside ``namespaces``. ``event`` is not
    interpreted here.

    >>> article = {"name": "Calvi", "identifier": 3, "namespace": {"identifier": 0}}
    >>> parse_enterprise_article(article, source="x.ndjson",
    ...                          location="x.ndjson: line 1", namespaces=frozenset({0}))
    ... # doctest: +ELLIPSIS
    SkippedItem(source='x.ndjson', location='x.ndjson: line 1', reason='missing-field', ...)
    >>> parse_enterprise_article({**article, "namespace": {"identifier": 2}}, source="x.ndjson",
    ...                          location="x.ndjson: line 1", namespaces=frozenset({0}))
    """
    try:
        namespace = _namespace(obj)
        if namespace not in namespaces:
            return None
        return _article(obj, location, namespace)
    except _FieldProblem as problem:
        logger.warning("%s: %s: %s", location, problem.reason, problem.detail)
        return SkippedItem(
            source=source, location=location, reason=problem.reason, detail=problem.detail
        )


# --------------------------------------------------------------------------- files


@dataclass(slots=True)
class SnapshotStats:
    """Counts of one pass over a WME export (reset at each iteration)."""

    members: int = 0
    lines: int = 0
    filtered_namespace: int = 0
    revisions: int = 0
    skipped: int = 0


def _iter_lines(stream: ByteStream, max_line_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, line)``; the line is None when longer than ``max_line_bytes``
    (it is then skipped without being held in memory beyond the limit)."""
    number = 0
    while True:
        line = stream.readline(max_line_bytes + 1)
        if not line:
            return
        number += 1
        if len(line) <= max_line_bytes or line.endswith(b"\n"):
            yield number, line
            continue
        while line and not line.endswith(b"\n"):
            line = stream.readline(_DRAIN_BYTES)
        yield number, None


_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _without_lone_surrogates(obj: object, location: str) -> object:
    """``obj`` with every lone surrogate (``"\\ud800"`` in the JSON: valid JSON, not valid
    Unicode, and unwritable as UTF-8) replaced by U+FFFD; a warning names the line.

    >>> _without_lone_surrogates({"a": ["x" + chr(0xD800)]}, "f: line 1")
    {'a': ['x�']}
    """
    replaced = 0

    def walk(value: object) -> object:
        nonlocal replaced
        if isinstance(value, str):
            clean, count = _LONE_SURROGATE.subn("\ufffd", value)
            replaced += count
            return clean
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    result = walk(obj)
    if replaced:
        logger.warning("%s: %d lone surrogate(s) replaced by U+FFFD", location, replaced)
    return result


def iter_ndjson_lines(
    stream: ByteStream, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, line)`` of an NDJSON stream; the line is None when it is longer than
    ``max_line_bytes`` (it is skipped without being held in memory beyond the limit)."""
    return _iter_lines(stream, max_line_bytes)


def load_json_line(line: bytes, location: str) -> object:
    """``json.loads`` of one NDJSON line, with lone surrogates replaced by U+FFFD (see
    :func:`_without_lone_surrogates`); raises ``ValueError`` or ``RecursionError`` as
    ``json.loads`` does."""
    obj: object = json.loads(line)
    if _SURROGATE_ESCAPE.search(line):  # JSON can escape what UTF-8 cannot hold
        obj = _without_lone_surrogates(obj, location)
    return obj


def unsafe_member(member: tarfile.TarInfo) -> str | None:
    """Why a member must not be read, or None for a regular file with a safe name."""
    name = member.name
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute():
        return "absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "path with '..'"
    if member.issym() or member.islnk():
        return f"link to {member.linkname!r}"
    if not member.isfile() and not member.isdir():
        return "not a regular file"
    return None


class EnterpriseSnapshotReader:
    """Stream the articles of a WME snapshot (``.tar.gz`` of NDJSON) or NDJSON file.

    >>> reader = EnterpriseSnapshotReader(Path("data/samples/wme/enwiki_namespace_0.tar.gz"))
    >>> for item in reader:
    ...     if isinstance(item, RawRevision):
    ...         print(item.title, item.revision_id, item.license and item.license.identifier)
    Albert Einstein 1270870723 CC-BY-SA-4.0
    Angela Merkel 1272022165 CC-BY-SA-4.0
    Josephine Baker 1271516754 CC-BY-SA-4.0
    United States 1272790964 CC-BY-SA-4.0
    Squirrel 1171934824 CC-BY-SA-3.0
    >>> reader.stats.revisions
    5

    Plain ``.ndjson``/``.jsonl`` files are read too, gzip-compressed or not. Bad lines are
    reported as :class:`SkippedItem` (``invalid-json``, ``not-an-object``,
    ``missing-field``, ``invalid-field``, ``line-too-long``), unsafe archive members as
    ``unsafe-tar-member``, a broken compressed stream as ``corrupt-gzip`` (reading stops).

    A part of the file can be read alone (a work unit of a distributed build): ``member``
    is the position of one archive member (0 = the first entry of the tar, directories
    included) and ``lines`` a range ``[first, stop)`` of 1-based line numbers (``stop`` None:
    to the end) of that member or of a plain NDJSON file. Locations keep the numbering of the
    whole file.
    """

    def __init__(
        self,
        path: Path,
        *,
        namespaces: frozenset[int] = frozenset({0}),
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        member: int | None = None,
        lines: tuple[int, int | None] | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"{self.path}: no such file")
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be positive, not {max_line_bytes}")
        self.namespaces = namespaces
        self.max_line_bytes = max_line_bytes
        self.member = member
        self.lines = lines
        self.stats = SnapshotStats()

    def __iter__(self) -> Iterator[RawRevision | SkippedItem]:
        self.stats = SnapshotStats()
        if self.path.name.lower().endswith(_TAR_SUFFIXES):
            yield from self._read_archive()
        else:
            yield from self._read_plain()

    # -- containers -----------------------------------------------------------------

    def _read_archive(self) -> Iterator[RawRevision | SkippedItem]:
        try:
            archive = tarfile.open(self.path, "r|*")  # noqa: SIM115 (closed below)
        except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
            raise SourceError(f"{self.path}: cannot open: {exc}") from exc
        except _STREAM_ERRORS as exc:
            yield self._skip(self.path.name, "corrupt-gzip", f"cannot read the archive: {exc}")
            return
        with archive:
            members = iter(archive)
            position = -1
            while True:
                try:
                    member = next(members)
                except StopIteration:
                    return
                except _STREAM_ERRORS as exc:
                    yield self._skip(self.path.name, "corrupt-gzip", f"archive broken: {exc}")
                    return
                position += 1
                if self.member is not None and position != self.member:
                    if position > self.member:
                        return
                    continue
                prefix = f"{self.path.name}:{member.name}"
                stream = self._member_stream(archive, member)
                if isinstance(stream, SkippedItem):
                    yield stream
                    continue
                if stream is None:
                    continue
                if not (yield from self._read_stream(stream, prefix)):
                    return

    def _member_stream(
        self, archive: tarfile.TarFile, member: tarfile.TarInfo
    ) -> ByteStream | SkippedItem | None:
        problem = unsafe_member(member)
        if problem is not None:
            return self._skip(
                f"{self.path.name}:{member.name}", "unsafe-tar-member", f"{problem}; not read"
            )
        if member.isdir():
            return None
        if not member.name.lower().endswith(_MEMBER_SUFFIXES):
            logger.info("%s: ignoring member %s (not NDJSON)", self.path.name, member.name)
            return None
        self.stats.members += 1
        return archive.extractfile(member)

    def _read_plain(self) -> Iterator[RawRevision | SkippedItem]:
        try:
            opened = open_maybe_compressed(self.path)
        except OSError as exc:
            raise SourceError(f"{self.path}: cannot open: {exc}") from exc
        self.stats.members += 1
        with opened as stream:
            yield from self._read_stream(stream, self.path.name)

    # -- lines ----------------------------------------------------------------------

    def _read_stream(
        self, stream: ByteStream, prefix: str
    ) -> Generator[RawRevision | SkippedItem, None, bool]:
        """Yield the items of one NDJSON stream; the generator's return value is False
        when the stream broke (the caller must stop)."""
        lines = _iter_lines(stream, self.max_line_bytes)
        first, stop = self.lines if self.lines is not None else (1, None)
        last = 0
        while True:
            try:
                number, line = next(lines)
            except StopIteration:
                return True
            except _STREAM_ERRORS as exc:
                location = f"{prefix}: line {last + 1}"
                yield self._skip(location, "corrupt-gzip", f"compressed data broken: {exc}")
                return False
            last = number
            if number < first:
                continue
            if stop is not None and number >= stop:
                return True
            item = self._line(line, f"{prefix}: line {number}")
            if item is not None:
                yield item

    def _line(self, line: bytes | None, location: str) -> RawRevision | SkippedItem | None:
        self.stats.lines += 1
        if line is None:
            detail = f"line longer than {self.max_line_bytes} bytes; not parsed"
            return self._skip(location, "line-too-long", detail)
        if not line.strip():
            return None
        try:
            obj = load_json_line(line, location)
        except (ValueError, RecursionError) as exc:
            return self._skip(location, "invalid-json", str(exc)[:200])
        if not isinstance(obj, dict):
            return self._skip(location, "not-an-object", f"a JSON {type(obj).__name__}")
        item = parse_enterprise_article(
            obj, source=str(self.path), location=location, namespaces=self.namespaces
        )
        if item is None:
            self.stats.filtered_namespace += 1
        elif isinstance(item, SkippedItem):
            self.stats.skipped += 1
        else:
            self.stats.revisions += 1
        return item

    def _skip(self, location: str, reason: str, detail: str) -> SkippedItem:
        logger.warning("%s: %s: %s", location, reason, detail)
        self.stats.skipped += 1
        return SkippedItem(source=str(self.path), location=location, reason=reason, detail=detail)
