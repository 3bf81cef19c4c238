"""One settings object for the whole of wikirag.

Every value can be set by an environment variable with the ``WIKIRAG_`` prefix
(``WIKIRAG_MAX_WORDS=120``, ``WIKIRAG_LICENSE_RULES='{"squadeval": "CC-BY-SA-4.0"}'``) and,
for the commands that use it, by a command-line flag, which wins. Settings are validated once
at start-up and then passed explicitly; nothing reads the environment deep in the code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from indexer.build import BuildOptions
from indexer.chunking import DEFAULT_MAX_WORDS, ChunkingConfig
from indexer.ingest import IngestOptions
from indexer.licensing import LicensePolicy


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
    progress: bool = True

    # -- index ----------------------------------------------------------------------------
    index_dir: Path = Field(default=Path("var/index"), description="index directory")
    model: str | None = Field(
        default=None,
        description="sentence-transformers model directory or name; default: the packaged "
        "all-MiniLM-L6-v2",
    )
    factory: str | None = Field(
        default=None, description="FAISS index_factory string; default chosen by corpus size"
    )
    embed_batch_size: int = Field(default=256, ge=1)
    embed_context: Literal["none", "title", "title_section"] = "title_section"
    keep_generations: int = Field(default=3, ge=1, description="published generations kept")

    # -- retrieval --------------------------------------------------------------------------
    fusion: Literal["rrf", "linear"] = "rrf"
    rrf_k: int = Field(default=60, ge=0)
    alpha: float = Field(default=0.5, ge=0.0, le=1.0, description="dense weight (linear)")
    candidates: int = Field(default=100, ge=1, le=10_000, description="per component")

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
        return IngestOptions(
            chunking=self.chunking(),
            licenses=self.license_policy(),
            wiki=self.wiki,
            namespaces=frozenset(self.namespaces),
            commit_every=self.commit_every,
            progress=self.progress,
        )

    def retrieval_defaults(self) -> dict[str, object]:
        return {
            "fusion": self.fusion,
            "rrf_k": self.rrf_k,
            "alpha": self.alpha,
            "candidates": self.candidates,
        }

    def build_options(self) -> BuildOptions:
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
