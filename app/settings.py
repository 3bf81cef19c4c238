"""One settings object for the whole of wikirag.

Every value can be set by an environment variable with the ``WIKIRAG_`` prefix
(``WIKIRAG_MAX_WORDS=120``, ``WIKIRAG_LICENSE_RULES='{"squadeval": "CC-BY-SA-4.0"}'``) and,
for the commands that use it, by a command-line flag, which wins. Settings are validated once
at start-up and then passed explicitly; nothing reads the environment deep in the code.
"""

from __future__ import annotations

from pathlib import Path
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
