"""The ``trust`` object returned with every passage and citation: the credibility signals
its revision's export carried (:class:`indexer.trust.TrustSignals`), how old the revision
is and whether it is the page's current one. Built here only (search, passages, citations,
MCP and the CLI all show this one shape)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from indexer.trust import TrustSignals

__all__ = [
    "EditorInfo",
    "ProtectionInfo",
    "RevertRiskInfo",
    "Trust",
    "revision_age_days",
    "trust_of",
]


class RevertRiskInfo(BaseModel):
    probability: float = Field(ge=0, le=1, description="Probability that the edit is reverted")
    prediction: bool | None = Field(description="The model's own call, when it made one")
    model: str = Field(description="The model that scored it", examples=["revertrisk"])


class EditorInfo(BaseModel):
    name: str | None
    is_anonymous: bool | None = Field(description="Saved by an IP address (null: not said)")
    is_bot: bool | None
    edit_count: int | None
    groups: list[str] = Field(description="The editor's user groups (patroller, sysop…)")
    date_started: str | None = Field(description="Registration, ISO 8601 UTC")


class ProtectionInfo(BaseModel):
    type: str = Field(examples=["edit"])
    level: str = Field(examples=["autoconfirmed"])
    expiry: str | None = Field(description="'infinity' or an ISO 8601 time")


class Trust(BaseModel):
    """How far the passage's revision can be trusted, as its export says: absent signals are
    null (or empty), never invented."""

    revert_risk: RevertRiskInfo | None
    damaging: float | None = Field(description="ORES: probability the edit damages the page")
    goodfaith: float | None = Field(description="ORES: probability of a good-faith edit")
    editor: EditorInfo | None
    tags: list[str] = Field(description="The edit's change tags (mw-undo, mw-reverted…)")
    is_minor_edit: bool | None
    comment: str | None = Field(description="The edit summary (XML exports)")
    protection: list[ProtectionInfo] = Field(description="The page's protection")
    maintenance_tags: dict[str, int] = Field(description="Counts of maintenance templates")
    watchers_count: int | None
    revision_age_days: float = Field(description="Days since the revision was saved")
    is_current: bool = Field(description="Whether it is the page's current revision")


def revision_age_days(timestamp: str, now: datetime | None = None) -> float:
    """Days from ``timestamp`` (ISO 8601 UTC) to ``now`` (default: the clock), to a
    hundredth of a day; 0.0 for a time in the future.

    >>> revision_age_days("2025-01-21T17:03:22Z", datetime(2025, 1, 22, 17, 3, 22, tzinfo=UTC))
    1.0
    """
    saved = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    elapsed = (now or datetime.now(UTC)) - saved
    return max(0.0, round(elapsed.total_seconds() / 86400, 2))


def trust_of(
    signals: TrustSignals,
    *,
    revision_id: int,
    revision_timestamp: str,
    current_revision_id: int | None,
    now: datetime | None = None,
) -> Trust:
    """The ``trust`` object of one revision."""
    return Trust.model_validate(
        {
            **signals.as_dict(),
            "revision_age_days": revision_age_days(revision_timestamp, now),
            "is_current": current_revision_id == revision_id,
        }
    )
