"""The typed manifest of a published generation: what was built, from what, and how.

``manifest.json`` is written last when a generation is published
(:meth:`indexer.generation.IndexLayout.publish`) and read by everything that serves, updates,
splits or describes an index. :class:`Manifest` is the only code that knows its keys: every
other module reads attributes (``manifest.model.dimension``, ``manifest.counts.indexed_passages``)
and the type checker follows them. One version field, ``format_version``, says how to read the
file; keys this version does not know (written by a newer wikirag, or by an older one, like the
retired ``schema_version``) are kept in :attr:`Manifest.extra` and written back unchanged.

>>> manifest = Manifest(
...     generation="20261204T120000.000Z-ab12cd",
...     model=ModelRecord("sentence-transformers/all-MiniLM-L6-v2", 384, True, 256),
...     dense=DenseRecord(factory="IDMap2,Flat", dim=384),
...     counts=Counts(wikis=1, pages=3, revisions=3, passages=40, indexed_passages=40),
... )
>>> data = manifest.to_json()
>>> data["format_version"], data["model"]["dimension"], data["counts"]["indexed_passages"]
(1, 384, 40)
>>> Manifest.from_json(data) == manifest
True
>>> Manifest.from_json({**data, "written_by_a_newer_wikirag": [1]}).extra
{'written_by_a_newer_wikirag': [1]}
>>> Manifest.from_json({**data, "format_version": 2})
Traceback (most recent call last):
    ...
indexer.manifest.ManifestError: has format 2; this wikirag reads format 1
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from indexer.embedding.base import ModelInfo
from indexer.errors import WikiragError

MANIFEST_FORMAT = 1
# The files of a generation a manifest names by default.
DENSE_FILE = "dense.faiss"
LEXICAL_DIR = "lexical"

T = TypeVar("T")


class ManifestError(WikiragError):
    """A manifest that this wikirag cannot read; the message says why (the caller names the
    file, see :class:`indexer.generation.CorruptGeneration`)."""

    code = "corrupt-manifest"


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """The embedding model the dense index was built with: everything that defines its vector
    space (:class:`indexer.embedding.ModelInfo`); a server or updater must match."""

    model_id: str
    dimension: int
    normalized: bool = True
    max_seq_length: int | None = None
    embed_context: str = "title_section"
    revision: str = ""
    quantisation: str = ""
    query_prefix: str = ""
    passage_prefix: str = ""

    @classmethod
    def of(cls, info: ModelInfo, embed_context: str) -> ModelRecord:
        return cls(
            model_id=info.model_id,
            dimension=info.dimension,
            normalized=info.normalized,
            max_seq_length=info.max_seq_length,
            embed_context=embed_context,
            revision=info.revision,
            quantisation=info.quantisation,
            query_prefix=info.query_prefix,
            passage_prefix=info.passage_prefix,
        )

    def differences(self, info: ModelInfo) -> list[str]:
        """The vector-space fields in which ``info`` differs from this record, as
        ``field: recorded != configured`` (empty: the embedder may query or extend the index).

        >>> from indexer.embedding.base import ModelInfo
        >>> ModelRecord("m", 384).differences(ModelInfo("m", 384, True, 256, revision="r2"))
        ["revision: '' != 'r2'"]
        """
        fields = ("model_id", "dimension", "normalized", "revision", "quantisation",
                  "query_prefix", "passage_prefix")  # fmt: skip
        return [
            f"{name}: {getattr(self, name)!r} != {getattr(info, name)!r}"
            for name in fields
            if getattr(self, name) != getattr(info, name)
        ]


@dataclass(frozen=True, slots=True)
class DenseRecord:
    """The FAISS index: its file and the parameters :attr:`indexer.dense.DenseIndex.params`
    reports."""

    factory: str
    dim: int
    file: str = DENSE_FILE
    metric: str = "inner_product"
    nlist: int = 0
    nprobe: int | None = None

    @classmethod
    def of(cls, params: Mapping[str, Any], file: str = DENSE_FILE) -> DenseRecord:
        """From a dense index's ``params`` (``factory``, ``metric``, ``dim``, ``nlist``,
        ``nprobe``)."""
        return cls._parse({**params, "file": file}, "dense")

    @classmethod
    def _parse(cls, data: Any, where: str) -> DenseRecord:
        d = _object(data, where)
        return cls(
            factory=_get(d, "factory", str, where),
            dim=_get(d, "dim", int, where),
            file=_get(d, "file", str, where, DENSE_FILE),
            metric=_get(d, "metric", str, where, "inner_product"),
            nlist=_get(d, "nlist", int, where, 0),
            nprobe=_optional(d, "nprobe", int, where),
        )


@dataclass(frozen=True, slots=True)
class LexicalStats:
    """Documents and tokens per language field of a shard's BM25 index: what a router needs
    to merge BM25 statistics across shards."""

    documents: int
    tokens: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LexicalRecord:
    """The tantivy index directory and how it scores."""

    dir: str = LEXICAL_DIR
    engine: str = "tantivy"
    scoring: str = "BM25"
    stats: LexicalStats | None = None


@dataclass(frozen=True, slots=True)
class ChunkingRecord:
    """How passages were cut, so that an update cuts new revisions the same way."""

    max_words: int
    overlap_words: int


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One input file of the build (a rebuild re-reads it; the checksum shows a change)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Counts:
    """Rows of the passage store and how many passages the indexes hold."""

    wikis: int = 0
    pages: int = 0
    revisions: int = 0
    passages: int = 0
    indexed_passages: int = 0
    aliases: int = 0

    @classmethod
    def of(cls, store_counts: Mapping[str, int], indexed_passages: int) -> Counts:
        """From :meth:`PassageStore.counts` and the number of passages indexed."""
        return cls(
            wikis=int(store_counts.get("wikis", 0)),
            pages=int(store_counts.get("pages", 0)),
            revisions=int(store_counts.get("revisions", 0)),
            passages=int(store_counts.get("passages", 0)),
            indexed_passages=int(indexed_passages),
            aliases=int(store_counts.get("aliases", 0)),
        )


@dataclass(frozen=True, slots=True)
class IngestRecord:
    """What a rebuild needs to read the recorded sources the same way, and what was skipped."""

    wiki: str | None = None
    namespaces: tuple[int, ...] | None = None
    skipped: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ShardRecord:
    """Which part of a split index this generation is (``wikirag shard``)."""

    id: int
    of: int
    by: str
    key: str
    wikis: tuple[str, ...]
    source_generation: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """A generation's manifest. ``generation`` is empty until
    :meth:`IndexLayout.publish` names it; ``retrieval`` holds the fusion defaults recorded at
    build time, read by :func:`app.retrieval.ranking.resolve_defaults`; ``embedding``,
    ``changes``, ``shards`` and ``synthetic`` are reports, kept as written."""

    model: ModelRecord
    dense: DenseRecord
    counts: Counts
    generation: str = ""
    format_version: int = MANIFEST_FORMAT
    wikirag_version: str | None = None
    built_at: str | None = None
    build_seconds: float = 0.0
    lexical: LexicalRecord = LexicalRecord()
    chunking: ChunkingRecord | None = None
    retrieval: Mapping[str, Any] = field(default_factory=dict)
    sources: tuple[SourceRecord, ...] = ()
    ingest: IngestRecord = IngestRecord()
    embedding: Mapping[str, Any] | None = None
    changes: Mapping[str, Any] | None = None
    engine: str | None = None
    shards: tuple[Mapping[str, Any], ...] | None = None
    shard: ShardRecord | None = None
    synthetic: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> Manifest:
        """A copy with ``changes`` (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The ``manifest.json`` object. Optional parts (``engine``, ``shards``, ``shard``,
        ``synthetic``) are written only when set; unknown keys read in come back out."""
        data: dict[str, Any] = {
            **self.extra,
            "format_version": self.format_version,
            "generation": self.generation,
            "wikirag_version": self.wikirag_version,
            "built_at": self.built_at,
            "build_seconds": self.build_seconds,
            "model": record_json(self.model),
            "dense": record_json(self.dense),
            "lexical": _lexical_json(self.lexical),
            "chunking": None if self.chunking is None else record_json(self.chunking),
            "retrieval": _plain(self.retrieval),
            "sources": [record_json(s) for s in self.sources],
            "counts": record_json(self.counts),
            "ingest": record_json(self.ingest),
            "embedding": _plain(self.embedding),
            "changes": _plain(self.changes),
        }
        optional = {"engine": self.engine, "shards": self.shards, "shard": self.shard,
                    "synthetic": self.synthetic}  # fmt: skip
        data.update({key: _plain(value) for key, value in optional.items() if value is not None})
        return data

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        """Parse a ``manifest.json`` object; :class:`ManifestError` says what is wrong."""
        if not isinstance(data, dict) or not isinstance(data.get("generation"), str):
            raise ManifestError("is not a generation manifest (no generation id)")
        if data.get("format_version") != MANIFEST_FORMAT:
            raise ManifestError(
                f"has format {data.get('format_version')!r}; this wikirag reads format "
                f"{MANIFEST_FORMAT}"
            )
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        shards = _optional(data, "shards", list, "manifest")
        return cls(
            generation=data["generation"],
            format_version=MANIFEST_FORMAT,
            wikirag_version=_optional(data, "wikirag_version", str, "manifest"),
            built_at=_optional(data, "built_at", str, "manifest"),
            build_seconds=float(_get(data, "build_seconds", float, "manifest", 0.0)),
            model=_model(_get(data, "model", dict, "manifest")),
            dense=DenseRecord._parse(data.get("dense"), "dense"),
            lexical=_lexical(data.get("lexical") or {}),
            chunking=_chunking(data.get("chunking")),
            retrieval=dict(_get(data, "retrieval", dict, "manifest", {}) or {}),
            sources=tuple(
                _source(s, f"sources[{i}]") for i, s in enumerate(data.get("sources") or [])
            ),
            counts=_counts(_get(data, "counts", dict, "manifest", {})),
            ingest=_ingest(data.get("ingest") or {}),
            embedding=_optional(data, "embedding", dict, "manifest"),
            changes=_optional(data, "changes", dict, "manifest"),
            engine=_optional(data, "engine", str, "manifest"),
            shards=None if shards is None else tuple(_object(s, "shards[]") for s in shards),
            shard=None if data.get("shard") is None else _shard(data["shard"]),
            synthetic=_optional(data, "synthetic", dict, "manifest"),
            extra={k: v for k, v in data.items() if k not in known},
        )


def record_json(record: Any) -> dict[str, Any]:
    """One part of a manifest (a :class:`ModelRecord`, :class:`Counts`, :class:`ShardRecord`…)
    as the JSON object ``manifest.json`` holds for it.

    >>> shard = ShardRecord(0, 2, "wiki", "wiki", ("enwiki", "dewiki"), "g1")
    >>> record_json(shard)["wikis"], record_json(Counts(pages=3))["pages"]
    (['enwiki', 'dewiki'], 3)
    """
    return {f.name: _plain(getattr(record, f.name)) for f in dataclasses.fields(record)}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return record_json(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


# -- parsing: each checks its types, so a bad manifest is one clear message ------------------


def _describe(expected: type) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             dict: "an object", list: "a list"}  # fmt: skip
    return names.get(expected, expected.__name__)


def _check(value: Any, expected: type[T], where: str) -> T:
    ok = isinstance(value, expected)
    if expected is int or expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if expected is int and ok and float(value) != int(value):
            ok = False
        if ok:
            value = cast(Any, expected)(value)
    if not ok:
        raise ManifestError(
            f"is not a generation manifest ({where}: expected {_describe(expected)}, "
            f"got {value!r:.40})"
        )
    return value  # type: ignore[no-any-return]


def _object(data: Any, where: str) -> dict[str, Any]:
    return _check(data, dict, where)


_MISSING: Any = object()


def _get(
    data: Mapping[str, Any], key: str, expected: type[T], where: str, default: Any = _MISSING
) -> T:
    if key not in data or (data[key] is None and default is not _MISSING):
        if default is _MISSING:
            raise ManifestError(f"is not a generation manifest (no {where}.{key})")
        return default  # type: ignore[no-any-return]
    return _check(data[key], expected, f"{where}.{key}")


def _optional(data: Mapping[str, Any], key: str, expected: type[T], where: str) -> T | None:
    value = data.get(key)
    return None if value is None else _check(value, expected, f"{where}.{key}")


def _model(d: dict[str, Any]) -> ModelRecord:
    return ModelRecord(
        model_id=_get(d, "model_id", str, "model"),
        dimension=_get(d, "dimension", int, "model"),
        normalized=_get(d, "normalized", bool, "model", True),
        max_seq_length=_optional(d, "max_seq_length", int, "model"),
        embed_context=_get(d, "embed_context", str, "model", "title_section"),
        **{
            name: _get(d, name, str, "model", "")
            for name in ("revision", "quantisation", "query_prefix", "passage_prefix")
        },
    )


def _lexical(data: Any) -> LexicalRecord:
    d = _object(data, "lexical")
    stats = _optional(d, "stats", dict, "lexical")
    return LexicalRecord(
        dir=_get(d, "dir", str, "lexical", LEXICAL_DIR),
        engine=_get(d, "engine", str, "lexical", "tantivy"),
        scoring=_get(d, "scoring", str, "lexical", "BM25"),
        stats=None
        if stats is None
        else LexicalStats(
            documents=_get(stats, "documents", int, "lexical.stats"),
            tokens={
                str(k): _check(v, int, f"lexical.stats.tokens.{k}")
                for k, v in _get(stats, "tokens", dict, "lexical.stats", {}).items()
            },
        ),
    )


def _lexical_json(record: LexicalRecord) -> dict[str, Any]:
    data = record_json(record)
    if record.stats is None:
        del data["stats"]  # written only for a shard
    return data


def _chunking(data: Any) -> ChunkingRecord | None:
    if not data:
        return None
    d = _object(data, "chunking")
    return ChunkingRecord(
        max_words=_get(d, "max_words", int, "chunking"),
        overlap_words=_get(d, "overlap_words", int, "chunking"),
    )


def _source(data: Any, where: str) -> SourceRecord:
    d = _object(data, where)
    return SourceRecord(
        path=_get(d, "path", str, where),
        size=_get(d, "size", int, where),
        sha256=_get(d, "sha256", str, where),
    )


def _counts(d: dict[str, Any]) -> Counts:
    return Counts(**{f.name: _get(d, f.name, int, "counts", 0) for f in dataclasses.fields(Counts)})


def _ingest(data: Any) -> IngestRecord:
    d = _object(data, "ingest")
    namespaces = _optional(d, "namespaces", list, "ingest")
    return IngestRecord(
        wiki=_optional(d, "wiki", str, "ingest"),
        namespaces=None
        if namespaces is None
        else tuple(_check(n, int, "ingest.namespaces[]") for n in namespaces),
        skipped={
            str(k): _check(v, int, f"ingest.skipped.{k}")
            for k, v in _get(d, "skipped", dict, "ingest", {}).items()
        },
    )


def _shard(data: Any) -> ShardRecord:
    d = _object(data, "shard")
    wikis: Sequence[Any] = _get(d, "wikis", list, "shard", [])
    return ShardRecord(
        id=_get(d, "id", int, "shard"),
        of=_get(d, "of", int, "shard"),
        by=_get(d, "by", str, "shard"),
        key=_get(d, "key", str, "shard"),
        wikis=tuple(_check(w, str, "shard.wikis[]") for w in wikis),
        source_generation=_get(d, "source_generation", str, "shard"),
    )
