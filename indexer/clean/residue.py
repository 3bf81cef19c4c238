"""Markup that must never reach the clean text: the check (:func:`find_markup_residue`)
and the last scrub that guarantees it finds nothing.
"""

from __future__ import annotations

import re
from typing import Final

# --------------------------------------------------------------------------- residue

# Everything that must never reach the clean text. ``__X__`` covers magic words, the tag
# pattern any HTML/extension tag.
_RESIDUE_RE: Final = re.compile(
    r"\{\{|\}\}|\[\[|\]\]|\{\||\|\}|\|-|(?i:<ref)|(?i:&nbsp;)|__[A-Z]+__|'{2,}|<!--"
    r"|</?[A-Za-z][A-Za-z0-9]*(?:[ \t][^<>\n]*)?/?>"
)
BRUTAL_RE: Final = re.compile(r"[{}\[\]<>|]")


def find_markup_residue(text: str) -> list[str]:
    """The markup fragments left in ``text``: ``{{``, ``}}``, ``[[``, ``]]``, ``{|``, ``|}``,
    ``|-``, ``<ref``, ``&nbsp;``, magic words (``__TOC__``), ``''``/``'''``, ``<!--`` and
    HTML/extension tags (``<b>``, ``</span>``, ``<br/>``). Empty for clean text."""
    return [match.group() for match in _RESIDUE_RE.finditer(text)]


def _residue_replacement(match: re.Match[str]) -> str:
    return "'" if match.group().startswith("''") else " "


def scrub_residue(text: str) -> str:
    """Remove residue; replacing with a space cannot create new residue except in rare
    overlaps, so a few passes suffice, and a character-level pass settles the rest."""
    for _ in range(4):
        if _RESIDUE_RE.search(text) is None:
            return text
        text = _RESIDUE_RE.sub(_residue_replacement, text)
    text = BRUTAL_RE.sub(" ", text)
    text = re.sub(r"'{2,}", "'", text)
    text = re.sub(r"(?i)&nbsp;", " ", text)
    return re.sub(r"__[A-Z]+__", " ", text)
