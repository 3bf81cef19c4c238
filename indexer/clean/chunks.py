"""Prepared text in pieces for the parser, cut where parsing separately changes nothing,
and which pieces the parser is given at all.
"""

from __future__ import annotations

import itertools
import re
from typing import Final

from indexer.clean.prepare import LITERAL_EXTENSION_TAGS, VOID_TAGS

CHUNK_SIZE: Final = 16_000
_MAX_MARKUP_SHARE: Final = 0.4
_MAX_LINE: Final = 20_000
_SMALL_CHUNK: Final = 4_000
# Delimiters for split_chunks. Group 1: a table start/end, 2: a closing tag, 3: an opening tag.
_CHUNK_TOKEN_RE: Final = re.compile(
    r"\{\{|\}\}|\[\[|\]\]|(?m:^[ \t:]*(\{\||\|\}(?!\})))"
    r"|<(?:/([A-Za-z][A-Za-z0-9]*)\s*|([A-Za-z][A-Za-z0-9]*)(?:\s[^<>]*)?)>"
)


def parser_friendly(chunk: str) -> bool:
    """False for chunks dense in markup characters or holding a huge line: no article comes
    near (at most 19% of markup characters, in 22 KB chunks, and 4,000-character lines in the
    samples), but such garbage is where mwparserfromhell's backtracking goes quadratic, so it
    goes to the linear regex stripper instead. Chunks that could not be cut small (one huge
    table or template) get the stricter limit; small ones are always parsed."""
    if len(chunk) <= _SMALL_CHUNK:
        return True
    markup = sum(chunk.count(char) for char in "{}[]|<>!=")
    oversized = len(chunk) > 2 * CHUNK_SIZE
    if markup > (_MAX_MARKUP_SHARE / 2 if oversized else _MAX_MARKUP_SHARE) * len(chunk):
        return False
    return len(chunk) <= _MAX_LINE or max(map(len, chunk.split("\n"))) <= _MAX_LINE


def split_chunks(text: str) -> list[str]:
    """``text`` in pieces of about ``CHUNK_SIZE`` characters cut at line starts outside any
    template, link, tag or table, where parsing separately changes nothing in the tree.
    mwparserfromhell's worst cases grow faster than linearly with the size of what it parses
    at once; this bounds them by the chunk size."""
    if len(text) <= CHUNK_SIZE:
        return [text]
    starts = [0]
    depth = 0
    pos = 0
    target = CHUNK_SIZE
    while True:
        match = _CHUNK_TOKEN_RE.search(text, pos)
        limit = len(text) if match is None else match.start()
        if depth == 0 and limit > target:
            newline = text.find("\n", max(pos, target), limit)
            if newline >= 0:
                starts.append(newline + 1)
                target = newline + 1 + CHUNK_SIZE
        if match is None:
            break
        depth, pos = _chunk_depth(text, match, depth)
    starts.append(len(text))
    return [text[a:b] for a, b in itertools.pairwise(starts) if a < b]


def _chunk_depth(text: str, match: re.Match[str], depth: int) -> tuple[int, int]:
    """Nesting depth after a delimiter of (already balanced) wikitext, and where to go on."""
    token = match.group()
    if token in ("{{", "[[") or match.group(1) == "{|":
        return depth + 1, match.end()
    if token in ("}}", "]]") or match.group(1) == "|}":
        return max(depth - 1, 0), match.end()
    closing, opening = match.group(2), match.group(3)
    if closing is not None:
        return (
            (depth, match.end())
            if closing.lower() in VOID_TAGS
            else (max(depth - 1, 0), match.end())
        )
    name = opening.lower()
    if name in VOID_TAGS or token.endswith("/>"):
        return depth, match.end()
    if name in LITERAL_EXTENSION_TAGS:
        closer = re.compile(rf"</{name}\s*>", re.IGNORECASE).search(text, match.end())
        return depth, (closer.end() if closer is not None else match.end())
    return depth + 1, match.end()
