"""The one public view of a passage: what a client may see of a stored passage, with its
revision permalink and its attribution, built in one place and shaped here for each
delivery — the HTTP ``PassageFields`` (:meth:`PublicPassage.api_fields`), the MCP tools'
dict (:meth:`PublicPassage.tool_fields`) and the CLI's row (:meth:`PublicPassage.cli_row`).

A field added to the public view is added here, and every delivery that shows it agrees
on its value (the permalink rule, the license, the attribution text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.attribution.license import Attribution, build_attribution
from app.attribution.trust import Trust, trust_of
from indexer.store import PassageRecord
from indexer.urls import revision_permalink


def trust_view(record: PassageRecord) -> Trust:
    """The ``trust`` object of a passage (:func:`app.attribution.trust.trust_of`)."""
    return trust_of(
        record.trust,
        revision_id=record.revision_id,
        revision_timestamp=record.revision_timestamp,
        current_revision_id=record.current_revision_id,
    )


@dataclass(frozen=True)
class PublicPassage:
    """A stored passage as clients see it."""

    record: PassageRecord
    url: str
    attribution: Attribution

    @property
    def section(self) -> str:
        """The section path written as one string (``"Life > Early life"``; ``""`` = lead)."""
        return " > ".join(self.record.section_path)

    def api_fields(self) -> dict[str, object]:
        """The HTTP API's ``PassageFields`` (:mod:`app.api.schemas`)."""
        r = self.record
        return {
            "passage_id": r.passage_id,
            "text": r.text,
            "wiki": r.wiki,
            "language": r.language,
            "page_id": r.page_id,
            "wikidata_id": r.wikidata_id,
            "title": r.title,
            "section": list(r.section_path),
            "anchor": r.anchor,
            "revision_id": r.revision_id,
            "revision_timestamp": r.revision_timestamp,
            "url": self.url,
            "attribution": self.attribution,
            "trust": trust_view(r),
        }

    def tool_fields(self) -> dict[str, Any]:
        """What the MCP tools return: text, where it is, license and attribution."""
        r, license_ = self.record, self.attribution.license
        return {
            "passage_id": r.passage_id,
            "title": r.title,
            "section": self.section,
            "wiki": r.wiki,
            "wikidata_id": r.wikidata_id,
            "language": r.language,
            "revision_id": r.revision_id,
            "revision_timestamp": r.revision_timestamp,
            "url": self.url,
            "text": r.text,
            "license": {
                "identifier": license_.identifier,
                "short_name": license_.short_name,
                "url": license_.url,
            },
            "attribution": {
                "text": self.attribution.text,
                "markdown": self.attribution.markdown,
                "html": self.attribution.html,
                "authors_url": self.attribution.authors_url,
            },
            "trust": trust_view(r).model_dump(mode="json"),
        }

    def cli_row(self, rank: int, scores: dict[str, float]) -> dict[str, Any]:
        """A row of ``wikirag search`` (``--json`` prints these)."""
        r = self.record
        return {
            "rank": rank,
            "passage_id": r.passage_id,
            "title": r.title,
            "wikidata_id": r.wikidata_id,
            "section": self.section,
            "revision_id": r.revision_id,
            "revision_timestamp": r.revision_timestamp,
            "url": self.url,
            "license": self.attribution.license.identifier,
            "scores": {k: round(v, 4) for k, v in scores.items()},
            "trust": trust_view(r).model_dump(mode="json"),
            "text": r.text,
        }


def present(record: PassageRecord) -> PublicPassage:
    """The public view of a stored passage."""
    return PublicPassage(record, revision_permalink(record), build_attribution(record))
