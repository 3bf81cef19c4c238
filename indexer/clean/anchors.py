"""Heading anchors as MediaWiki makes them, unique within a page."""

from __future__ import annotations

import re
from typing import Final

# --------------------------------------------------------------------------- anchors

_ANCHOR_COLLAPSE_RE: Final = re.compile(r"[ _]+")
_ANCHOR_SPACE_RE: Final = re.compile(r"[\t\n\f\r ]")
_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def anchor_from_text(text: str) -> str:
    """MediaWiki's ``normalizeSectionNameWhitespace`` then the HTML5 id escaping."""
    text = _ANCHOR_COLLAPSE_RE.sub(" ", text).strip(" \t\n\r\x0b")
    return _ANCHOR_SPACE_RE.sub("_", text)


class AnchorRegistry:
    """Makes anchors unique within a page like MediaWiki: the second ``History`` becomes
    ``History_2``; the comparison ignores ASCII case."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._next: dict[str, int] = {}  # next suffix to try per anchor: keeps this linear

    def add(self, anchor: str) -> str:
        key = anchor.translate(_ASCII_LOWER)
        if key not in self._seen:
            self._seen.add(key)
            return anchor
        number = self._next.get(key, 2)
        while f"{key}_{number}" in self._seen:
            number += 1
        self._next[key] = number + 1
        self._seen.add(f"{key}_{number}")
        return f"{anchor}_{number}"
