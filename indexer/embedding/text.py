"""The text a passage is embedded as (its title and section as context, then its text)."""

from __future__ import annotations

from typing import Protocol


class Embeddable(Protocol):
    """What :func:`embedding_text` reads: a stored :class:`~indexer.store.PassageRecord` or a
    freshly cut :class:`~indexer.models.Passage` (the workers of a distributed build embed
    those)."""

    @property
    def title(self) -> str: ...

    @property
    def section_path(self) -> tuple[str, ...]: ...

    @property
    def text(self) -> str: ...


def embedding_text(record: Embeddable, context: str) -> str:
    """The text embedded for a passage: its words, prefixed with where it stands."""
    if context == "none":
        return record.text
    if context == "title" or not record.section_path:
        return f"{record.title}. {record.text}"
    if context == "title_section":
        return f"{record.title} — {' > '.join(record.section_path)}. {record.text}"
    raise ValueError(f"unknown embed_context {context!r}; use none, title or title_section")
