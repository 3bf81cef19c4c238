"""Work units: the pieces of the sources that the workers of a distributed build read alone.

:func:`plan_units` cuts the sources, in order, into units that together read exactly what the
local build reads, in the same order:

* a bz2 **multistream** XML dump with its index file next to it
  (``…-multistream.xml.bz2`` + ``…-multistream-index.txt[.bz2]``): groups of
  ``streams_per_unit`` consecutive bz2 streams (100 pages each in Wikimedia's dumps); each unit
  is parsed with the dump's ``<siteinfo>`` header in front of it;
* a WME snapshot (``.tar.gz``): one unit per NDJSON member, or line ranges of
  ``lines_per_unit`` lines of a bigger member;
* a plain or gzip NDJSON file: line ranges of ``lines_per_unit`` lines;
* anything else (an XML dump without an index, a broken archive): one unit for the whole file.

Usage::

    >>> units = plan_units([Path("data/samples/wme/enwiki_namespace_0.tar.gz")], SplitOptions())
    >>> units[0].describe()                                               # doctest: +SKIP
    'u00000 enwiki_namespace_0.tar.gz member 0 (enwiki_namespace_0_0.ndjson)'
    >>> items = list(read_unit(units[0], IngestOptions()))               # doctest: +SKIP
"""

from __future__ import annotations

import bz2
import io
import logging
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Literal

from indexer.ingest import IngestOptions
from indexer.models import RawRevision, SkippedItem
from indexer.sources.open import open_source
from indexer.sources.wme import EnterpriseSnapshotReader, unsafe_member
from indexer.sources.xml_dump import ByteStream, MediaWikiDumpReader, open_maybe_compressed

log = logging.getLogger(__name__)

UnitKind = Literal["file", "multistream", "member", "lines"]

_TAR_SUFFIXES: Final = (".tar.gz", ".tgz", ".tar")
_NDJSON_SUFFIXES: Final = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
_MEMBER_SUFFIXES: Final = (".ndjson", ".json", ".jsonl")
_FOOTER: Final = b"</mediawiki>\n"


@dataclass(frozen=True, slots=True)
class SplitOptions:
    """How finely the sources are cut. A unit should take a worker seconds to minutes:
    20 streams of a multistream dump are ~2 000 pages; 2 000 WME lines are 2 000 articles."""

    streams_per_unit: int = 20
    lines_per_unit: int = 2_000

    def __post_init__(self) -> None:
        if self.streams_per_unit < 1 or self.lines_per_unit < 1:
            raise ValueError("streams_per_unit and lines_per_unit must be >= 1")


@dataclass(frozen=True, slots=True)
class WorkUnit:
    """One piece of one source. ``start``/``stop`` are byte offsets (``multistream``; stop
    None = to the end of the file) or 1-based line numbers ``[start, stop)`` (``lines``, of
    the whole file or of archive member ``member``); ``header_end`` is where the header
    stream of a multistream dump ends."""

    unit_id: str
    index: int
    source: str
    kind: UnitKind
    member: int | None = None
    member_name: str | None = None
    start: int = 0
    stop: int | None = None
    header_end: int = 0

    def describe(self) -> str:
        name = Path(self.source).name
        where = {
            "file": " (whole file)",
            "multistream": f" bytes {self.start}-{'' if self.stop is None else self.stop}",
            "member": f" member {self.member} ({self.member_name})",
            "lines": f" lines {self.start}-{'' if self.stop is None else self.stop - 1}",
        }[self.kind]
        if self.kind == "lines" and self.member is not None:
            where += f" of member {self.member} ({self.member_name})"
        return f"{self.unit_id} {name}{where}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- planning


def plan_units(sources: Sequence[Path], options: SplitOptions = SplitOptions()) -> list[WorkUnit]:
    """The work units of ``sources``, in the order the local build reads them."""
    pieces: list[dict[str, Any]] = []
    for source in sources:
        pieces.extend(_pieces(Path(source), options))
    return [WorkUnit(unit_id=f"u{i:05d}", index=i, **piece) for i, piece in enumerate(pieces)]


def _pieces(path: Path, options: SplitOptions) -> list[dict[str, Any]]:
    name = path.name.lower()
    whole: list[dict[str, Any]] = [{"source": str(path), "kind": "file"}]
    try:
        if name.endswith(_TAR_SUFFIXES):
            return _archive_pieces(path, options) or whole
        if name.endswith(_NDJSON_SUFFIXES):
            with open_maybe_compressed(path) as stream:
                lines = _count_lines(stream)
            return _line_pieces(str(path), None, None, lines, options) or whole
        if name.endswith(".bz2"):
            return _multistream_pieces(path, options) or whole
    except (OSError, EOFError, tarfile.TarError, ValueError) as exc:
        # The reader reports the damage with its location; one unit reads it as locally.
        log.warning("%s: cannot split (%s); one work unit for the whole file", path.name, exc)
    return whole


def _count_lines(stream: ByteStream) -> int:
    count = 0
    last = b"\n"
    while block := stream.read(1 << 20):
        count += block.count(b"\n")
        last = block[-1:]
    return count + (last != b"\n")


def _line_pieces(
    source: str, member: int | None, member_name: str | None, lines: int, options: SplitOptions
) -> list[dict[str, Any]]:
    kind = "member" if member is not None and lines <= options.lines_per_unit else "lines"
    if kind == "member":
        return [{"source": source, "kind": kind, "member": member, "member_name": member_name}]
    starts = range(1, max(lines, 1) + 1, options.lines_per_unit)
    return [
        {
            "source": source,
            "kind": "lines",
            "member": member,
            "member_name": member_name,
            "start": start,
            "stop": None
            if start + options.lines_per_unit > lines
            else start + options.lines_per_unit,
        }
        for start in starts
    ]


def _archive_pieces(path: Path, options: SplitOptions) -> list[dict[str, Any]]:
    """One piece per member the reader would read (NDJSON files, and unsafe members, which
    the reader reports); directories and other files are passed over as the reader does."""
    pieces: list[dict[str, Any]] = []
    with tarfile.open(path, "r|*") as archive:
        for position, member in enumerate(archive):
            named = {"source": str(path), "member": position, "member_name": member.name}
            if unsafe_member(member) is not None:
                pieces.append({**named, "kind": "member"})
                continue
            if member.isdir() or not member.name.lower().endswith(_MEMBER_SUFFIXES):
                continue
            stream = archive.extractfile(member)
            lines = _count_lines(stream) if stream is not None else 0
            pieces.extend(_line_pieces(str(path), position, member.name, lines, options))
    return pieces


def multistream_index(path: Path) -> Path | None:
    """The index file of a multistream dump (``X-multistream.xml.bz2`` →
    ``X-multistream-index.txt.bz2`` or ``.txt``), when it is there."""
    name = path.name
    for suffix in (".xml.bz2", ".bz2"):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            for candidate in (f"{stem}-index.txt.bz2", f"{stem}-index.txt"):
                if (path.parent / candidate).is_file():
                    return path.parent / candidate
    return None


def stream_offsets(index: Path) -> list[int]:
    """The distinct byte offsets of the page streams listed in a multistream index
    (lines ``offset:page_id:title``), ascending."""
    opener = bz2.open if index.name.endswith(".bz2") else open
    offsets: set[int] = set()
    with opener(index, "rt", encoding="utf-8") as handle:
        for line in handle:
            head, _, _ = line.partition(":")
            if head.strip():
                offsets.add(int(head))
    return sorted(offsets)


def _multistream_pieces(path: Path, options: SplitOptions) -> list[dict[str, Any]]:
    index = multistream_index(path)
    if index is None:
        return []
    offsets = stream_offsets(index)
    size = path.stat().st_size
    if not offsets or offsets[0] <= 0 or offsets[-1] >= size:
        log.warning("%s: index %s does not fit the dump; not split", path.name, index.name)
        return []
    starts = offsets[:: options.streams_per_unit]
    stops: list[int | None] = [*starts[1:], None]
    return [
        {
            "source": str(path),
            "kind": "multistream",
            "start": start,
            "stop": stop,
            "header_end": offsets[0],
        }
        for start, stop in zip(starts, stops, strict=True)
    ]


# --------------------------------------------------------------------------- reading


def read_unit(unit: WorkUnit, options: IngestOptions) -> Iterable[RawRevision | SkippedItem]:
    """The items of one unit, exactly as the local build's reader yields them there."""
    path = Path(unit.source)
    if unit.kind == "file":
        return open_source(
            path,
            wiki=options.wiki,
            namespaces=options.namespaces,
            max_line_bytes=options.max_line_bytes,
        )
    if unit.kind == "multistream":
        reader = MediaWikiDumpReader(path, wiki=options.wiki, namespaces=options.namespaces)
        return _read_multistream(reader, unit)
    lines = None if unit.kind == "member" else (unit.start, unit.stop)
    return EnterpriseSnapshotReader(
        path,
        namespaces=options.namespaces,
        member=unit.member,
        lines=lines,
        max_line_bytes=options.max_line_bytes,
    )


def _read_multistream(
    reader: MediaWikiDumpReader, unit: WorkUnit
) -> Iterator[RawRevision | SkippedItem]:
    with io.BufferedReader(_MultistreamSlice(Path(unit.source), unit)) as stream:
        yield from reader.read_stream(stream, "bz2")


class _MultistreamSlice(io.RawIOBase):
    """The decompressed bytes of ``<siteinfo>`` header + the unit's streams + footer."""

    def __init__(self, path: Path, unit: WorkUnit) -> None:
        super().__init__()
        with path.open("rb") as handle:
            header = bz2.decompress(handle.read(unit.header_end))
            handle.seek(unit.start)
            body = handle.read(-1 if unit.stop is None else unit.stop - unit.start)
        # The last unit reads to the end of the file, which holds the footer stream.
        footer = b"" if unit.stop is None else _FOOTER
        self._parts: Iterator[bytes] = _chain(header, bz2.BZ2File(io.BytesIO(body)), footer)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._parts, None)
            if chunk is None:
                return 0
            self._pending = chunk
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _chain(header: bytes, body: bz2.BZ2File, footer: bytes) -> Iterator[bytes]:
    yield header
    with body:
        while block := body.read(1 << 16):
            yield block
    yield footer
