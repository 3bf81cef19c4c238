"""Shards: what the workers of a distributed build write, and how the driver merges them.

A work unit (:mod:`indexer.distributed.units`) becomes one shard in ``SHARD_DIR``:

* ``<unit>.items.ndjson.gz`` — what :func:`prepare_unit` read, cleaned and cut, one JSON
  object a line, in source order: ``{"raw": …, "prepared": …}`` for a revision (its wikitext
  dropped: the sections and passages are there), ``{"skip": …}`` for an unreadable item;
* ``<unit>.vectors.npy`` — :func:`embed_unit`'s float32 vectors of the unit's passages, in the
  order they appear in the items file.

Both are written to a temporary name and renamed into place, so a task that is retried after
its worker died overwrites its shard instead of adding a second one, and a half-written file
is never taken for a shard. The driver then replays the items of every shard, in unit order,
into the store with the local build's own :func:`~indexer.ingest.ingest_revision`
(:func:`merge_shards`) — same inputs in the same order, so the same rows and passage ids —
and fills the lexical and dense indexes from the store's current passages, taking each
passage's vector from its shard (:func:`fill_indexes`).

Usage (what :func:`indexer.distributed.ray_build.build_index_ray` does on a cluster)::

    >>> summary = prepare_unit(unit, IngestOptions(), shard_dir)          # doctest: +SKIP
    >>> summary = embed_unit(summary, shard_dir, Embedder(), BuildOptions(),
    ...                      cache_path=Path("var/index/cache/embeddings.sqlite"))  # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import secrets
import signal
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from indexer.build import BuildError, BuildOptions, BuildReport, file_checksum
from indexer.dense import DenseIndex, default_index_factory, nlist_of, train_size
from indexer.distributed.units import WorkUnit, read_unit
from indexer.embedding import (
    EmbeddingCache,
    EmbeddingModel,
    EmbedStats,
    embed_with_cache,
    embedding_text,
)
from indexer.generation import LEXICAL_DIR
from indexer.ingest import (
    IngestOptions,
    IngestReport,
    PreparedRevision,
    ingest_revision,
    prepare_revision,
)
from indexer.lexical import LexicalIndex, lexical_doc
from indexer.models import License, Passage, RawRevision, Section, SiteInfo, SkippedItem
from indexer.store import PassageStore
from indexer.trust import TrustSignals

log = logging.getLogger(__name__)

SHARD_DIR = "shards"
ITEMS_SUFFIX = ".items.ndjson.gz"
VECTORS_SUFFIX = ".vectors.npy"
_DENSE_BATCH = 65_536


@dataclass(frozen=True, slots=True)
class FailOnce:
    """**Test-only fault injection.** At each ``(stage, unit)`` of ``points`` (stage
    ``"prepare"`` or ``"embed"``, unit the work unit's number), the first ``times`` attempts
    kill their own worker process with SIGKILL midway — after writing part of their output to
    the temporary file. The marker file ``marker_dir/<stage>-<unit>`` counts the kills, so
    that the retries Ray makes after them run normally. Never set it outside tests
    (``RayOptions.fail_once``).

    >>> FailOnce("/tmp/markers", (("prepare", 1), ("embed", 2)))      # doctest: +SKIP
    """

    marker_dir: str
    points: tuple[tuple[str, int], ...]
    times: int = 1

    def maybe_die(self, stage: str, unit: int) -> None:
        if (stage, unit) not in self.points:
            return
        marker = Path(self.marker_dir) / f"{stage}-{unit}"
        kills = int(marker.read_text() or 0) if marker.is_file() else 0
        if kills >= self.times:
            return  # a retry: run normally
        marker.write_text(str(kills + 1))
        log.warning("fault injection: killing worker %d in %s of unit %d", os.getpid(), stage, unit)
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class ShardSummary:
    """What a worker reports about the shard it wrote."""

    unit: WorkUnit
    revisions: int = 0
    redirects: int = 0
    skipped: int = 0
    passages: int = 0
    items_sha256: str = ""
    vectors_sha256: str = ""
    embedding: dict[str, Any] = field(default_factory=dict)

    @property
    def unit_id(self) -> str:
        return self.unit.unit_id

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ShardSummary:
        data = json.loads(text)
        return cls(**{**data, "unit": WorkUnit(**data["unit"])})

    def manifest_entry(self) -> dict[str, Any]:
        return {
            "unit": self.unit_id,
            "source": Path(self.unit.source).name,
            "part": self.unit.describe().split(" ", 1)[1],
            "revisions": self.revisions,
            "passages": self.passages,
            "vectors_sha256": self.vectors_sha256,
        }


def items_path(shard_dir: Path, unit_id: str) -> Path:
    return shard_dir / f"{unit_id}{ITEMS_SUFFIX}"


def vectors_path(shard_dir: Path, unit_id: str) -> Path:
    return shard_dir / f"{unit_id}{VECTORS_SUFFIX}"


def _temp_name(final: Path) -> Path:
    """A name of its own for this attempt's output (hidden: never taken for a shard)."""
    return final.with_name(f".{final.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def count_attempt(shard_dir: Path, stage: str, unit_id: str) -> int:
    """Record one more attempt at ``stage`` of a unit; returns how many there were, this one
    included. Ray retries a task whose worker died (and restarts a dead actor) without end;
    the workers use this count to give up on a unit that keeps killing them."""
    counter = shard_dir / f".{unit_id}.{stage}.attempts"
    previous = int(counter.read_text() or 0) if counter.is_file() else 0
    counter.write_text(str(previous + 1))
    return previous + 1


def _publish(tmp: Path, final: Path) -> None:
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, final)


# --------------------------------------------------------------------------- codecs


def encode_item(item: RawRevision | SkippedItem, prepared: PreparedRevision | None) -> str:
    if isinstance(item, SkippedItem):
        return json.dumps({"skip": asdict(item)})
    raw = asdict(replace(item, wikitext=""))
    raw["trust"] = item.trust.to_json()
    # ASCII escapes: even a lone surrogate survives the round trip exactly.
    return json.dumps({"raw": raw, "prepared": None if prepared is None else asdict(prepared)})


def decode_item(line: str) -> tuple[RawRevision | SkippedItem, PreparedRevision | None]:
    obj = json.loads(line)
    if "skip" in obj:
        return SkippedItem(**obj["skip"]), None
    raw = dict(obj["raw"])
    license = raw.pop("license")
    raw_revision = RawRevision(
        **{
            **raw,
            "site": SiteInfo(**raw["site"]),
            "license": None if license is None else License(**license),
            "aliases": tuple(raw["aliases"]),
            "trust": TrustSignals.from_json(raw.get("trust")),
        }
    )
    prep = obj["prepared"]
    if prep is None:
        return raw_revision, None
    prepared = PreparedRevision(
        sections=tuple(Section(**{**s, "path": tuple(s["path"])}) for s in prep["sections"]),
        passages=tuple(
            Passage(**{**p, "section_path": tuple(p["section_path"])}) for p in prep["passages"]
        ),
        license=License(**prep["license"]),
        license_origin=prep["license_origin"],
        wikitext_bytes=prep["wikitext_bytes"],
    )
    return raw_revision, prepared


def read_items(path: Path) -> Iterator[tuple[RawRevision | SkippedItem, PreparedRevision | None]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            yield decode_item(line)


def shard_passages(path: Path) -> Iterator[Passage]:
    """The passages of a shard, in the order of its vectors."""
    for _, prepared in read_items(path):
        if prepared is not None:
            yield from prepared.passages


# --------------------------------------------------------------------------- workers


def prepare_unit(
    unit: WorkUnit, options: IngestOptions, shard_dir: Path, fail_once: FailOnce | None = None
) -> ShardSummary:
    """Read, clean and cut one unit into its items file; returns what it wrote.

    Every revision that is not a redirect is prepared (cleaned and cut), even one the store
    will turn out to hold already: only the driver knows that."""
    final = items_path(shard_dir, unit.unit_id)
    tmp = _temp_name(final)
    counts = {"revisions": 0, "redirects": 0, "skipped": 0, "passages": 0}
    try:
        # No name and no time in the gzip header: a retry writes the very same bytes.
        with (
            tmp.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=3, mtime=0) as gz,
            io.TextIOWrapper(gz, encoding="utf-8") as out,
        ):
            for n, item in enumerate(read_unit(unit, options)):
                prepared = None
                if isinstance(item, SkippedItem):
                    counts["skipped"] += 1
                elif item.redirect_target is not None:
                    counts["redirects"] += 1
                else:
                    prepared = prepare_revision(item, options)
                    counts["revisions"] += 1
                    counts["passages"] += len(prepared.passages)
                out.write(encode_item(item, prepared) + "\n")
                if n == 0 and fail_once is not None:
                    out.flush()
                    fail_once.maybe_die("prepare", unit.index)
        checksum = file_checksum(tmp)
        _publish(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return ShardSummary(
        unit=unit,
        revisions=counts["revisions"],
        redirects=counts["redirects"],
        skipped=counts["skipped"],
        passages=counts["passages"],
        items_sha256=checksum,
    )


def embed_unit(
    summary: ShardSummary,
    shard_dir: Path,
    embedder: EmbeddingModel,
    options: BuildOptions,
    *,
    cache_path: Path,
    fail_once: FailOnce | None = None,
) -> ShardSummary:
    """Embed the passages of one shard into its vectors file, through the index's embedding
    cache at ``cache_path`` (on the shared file system, like the shards)."""
    items = items_path(shard_dir, summary.unit_id)
    if file_checksum(items) != summary.items_sha256:
        raise BuildError(f"shard {summary.unit_id}: items file changed since it was written")
    texts = [embedding_text(p, options.embed_context) for p in shard_passages(items)]
    if len(texts) != summary.passages:
        raise BuildError(
            f"shard {summary.unit_id}: {len(texts)} passages, expected {summary.passages}"
        )
    final = vectors_path(shard_dir, summary.unit_id)
    tmp = _temp_name(final)
    stats = EmbedStats()
    try:
        out = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.float32, shape=(len(texts), embedder.info.dimension)
        )
        row = 0
        with EmbeddingCache(cache_path) as cache:
            for batch in embed_with_cache(
                embedder, cache, texts, batch_size=options.embed_batch_size, progress=False,
                stats=stats,
            ):  # fmt: skip
                out[row : row + len(batch)] = batch
                row += len(batch)
                if fail_once is not None:
                    out.flush()
                    fail_once.maybe_die("embed", summary.unit.index)
        out.flush()
        del out
        checksum = file_checksum(tmp)
        _publish(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return replace(summary, vectors_sha256=checksum, embedding=stats.as_dict())


# --------------------------------------------------------------------------- driver


def check_shards(
    shard_dir: Path, summaries: Sequence[ShardSummary], units: Sequence[WorkUnit]
) -> None:
    """Every unit produced exactly one complete shard whose files are those its worker
    reported; leftovers of killed attempts (temporary names) are removed."""
    if [s.unit_id for s in summaries] != [u.unit_id for u in units]:
        raise BuildError("the workers did not return one shard per work unit, in order")
    for leftover in shard_dir.glob(".*.tmp-*"):
        log.info("removing %s (left by a killed attempt)", leftover.name)
        leftover.unlink(missing_ok=True)
    expected = {items_path(shard_dir, u.unit_id).name for u in units}
    expected |= {vectors_path(shard_dir, u.unit_id).name for u in units}
    found = {p.name for p in shard_dir.iterdir() if not p.name.endswith(".attempts")}
    if found != expected:
        extra, missing = sorted(found - expected), sorted(expected - found)
        raise BuildError(
            f"shard files do not match the work units: extra {extra}, missing {missing}"
        )
    for summary in summaries:
        for path, checksum in (
            (items_path(shard_dir, summary.unit_id), summary.items_sha256),
            (vectors_path(shard_dir, summary.unit_id), summary.vectors_sha256),
        ):
            if file_checksum(path) != checksum:
                raise BuildError(f"{path.name} is not the file its worker reported")


def merge_shards(
    sources: Sequence[Path],
    shard_dir: Path,
    summaries: Sequence[ShardSummary],
    store: PassageStore,
    options: IngestOptions,
) -> IngestReport:
    """Replay every shard's items into ``store`` in unit order, as the local ingest would."""
    report = IngestReport(sources=[str(s) for s in sources])
    for summary in summaries:
        source_id = Path(summary.unit.source).name
        items = read_items(items_path(shard_dir, summary.unit_id))
        done = False
        while not done:
            with store.transaction():  # batches of whole pages, as the local ingest commits
                for _ in range(options.commit_every):
                    entry = next(items, None)
                    if entry is None:
                        done = True
                        break
                    item, prepared = entry
                    if isinstance(item, SkippedItem):
                        report.record_skip(item)
                        continue
                    ingest_revision(
                        item, store, options, report, source_id=source_id, prepared=prepared
                    )
    return report


@dataclass(slots=True)
class _Placement:
    """Where each current passage's vector is: row id, shard number, row in the shard."""

    row_ids: np.ndarray
    shard: np.ndarray
    position: np.ndarray


def fill_indexes(
    store: PassageStore,
    shard_dir: Path,
    summaries: Sequence[ShardSummary],
    work: Path,
    options: BuildOptions,
    report: BuildReport,
    dim: int,
) -> DenseIndex:
    """Build the lexical index (in ``work``) and the dense index from the store's current
    passages in row order — the order of the local build — with their vectors from the
    shards: a passage's vector is its first occurrence at or after the previous passage's."""
    total = store.count_current_passages()
    if total == 0:
        raise BuildError("the sources gave no passages; nothing to index (see skipped items)")
    placement = _Placement(
        np.empty(total, np.int64), np.empty(total, np.int32), np.empty(total, np.int64)
    )
    shards = _ShardCursor(shard_dir, summaries)
    with LexicalIndex.create(work / LEXICAL_DIR) as writer:
        for i, record in enumerate(store.iter_current_passages()):
            placement.row_ids[i] = record.row_id
            placement.shard[i], placement.position[i] = shards.find(record.passage_id)
            writer.add(lexical_doc(record))
        writer.commit()
    report.passages = total
    factory = options.factory or default_index_factory(total)
    sample = None
    if not DenseIndex.create_empty(factory, dim).is_trained:
        sample = _train_sample(shard_dir, summaries, placement, factory)
    dense = DenseIndex.build(
        _shard_batches(shard_dir, summaries, placement),
        dim=dim,
        factory=factory,
        n_hint=total,
        train_sample=sample,
    )
    if dense.ntotal != total:
        raise BuildError(f"dense index holds {dense.ntotal} vectors, expected {total}")
    return dense


class _ShardCursor:
    """Walks the passages of the shards in order, to find each current passage's vector."""

    def __init__(self, shard_dir: Path, summaries: Sequence[ShardSummary]) -> None:
        self._dir = shard_dir
        self._summaries = summaries
        self._shard = -1
        self._ids: list[str] = []
        self._pos = 0

    def find(self, passage_id: str) -> tuple[int, int]:
        while True:
            try:
                at = self._ids.index(passage_id, self._pos)
            except ValueError:
                self._next_shard(passage_id)
                continue
            self._pos = at + 1
            return self._shard, at

    def _next_shard(self, passage_id: str) -> None:
        self._shard += 1
        if self._shard >= len(self._summaries):
            raise BuildError(f"passage {passage_id} is in the store but in no shard after the last")
        path = items_path(self._dir, self._summaries[self._shard].unit_id)
        self._ids = [p.passage_id for p in shard_passages(path)]
        self._pos = 0


def _vectors(shard_dir: Path, summary: ShardSummary) -> np.ndarray:
    vectors: np.ndarray = np.load(vectors_path(shard_dir, summary.unit_id), mmap_mode="r")
    return vectors


def _shard_batches(
    shard_dir: Path, summaries: Sequence[ShardSummary], placement: _Placement
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(row ids, vectors)`` shard by shard, each shard's file memory-mapped in turn."""
    bounds = np.searchsorted(placement.shard, np.arange(len(summaries) + 1))
    for shard_no, summary in enumerate(summaries):
        lo, hi = int(bounds[shard_no]), int(bounds[shard_no + 1])
        if lo == hi:
            continue
        vectors = _vectors(shard_dir, summary)
        for start in range(lo, hi, _DENSE_BATCH):
            stop = min(hi, start + _DENSE_BATCH)
            yield placement.row_ids[start:stop], np.asarray(vectors[placement.position[start:stop]])


def _train_sample(
    shard_dir: Path, summaries: Sequence[ShardSummary], placement: _Placement, factory: str
) -> np.ndarray:
    """The local build's sample (the same rows of the same vectors), gathered from shards."""
    total = len(placement.row_ids)
    nlist = nlist_of(factory)
    wanted = train_size(nlist) if nlist else total
    rows = np.arange(total)
    if total > wanted:
        rows = np.sort(np.random.default_rng(0).choice(total, wanted, replace=False))
    parts = []
    for shard_no, summary in enumerate(summaries):
        chosen = rows[placement.shard[rows] == shard_no]
        if len(chosen):
            parts.append(np.asarray(_vectors(shard_dir, summary)[placement.position[chosen]]))
    return np.concatenate(parts)
