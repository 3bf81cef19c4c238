"""The regex/stack based stripper: the sections of text the parser could not handle or
is not given, with no parser at all.
"""

from __future__ import annotations

import re
from typing import Final

from indexer.clean.finish import finish_fragment, normalise_line
from indexer.clean.render import MAGIC_WORD_RE, RawSection, decode_entities, hidden_link, pipe_trick
from indexer.clean.residue import BRUTAL_RE
from indexer.clean.sentinels import CONTROL_RE, CUT, HARD
from indexer.models import Section

# --------------------------------------------------------------------------- fallback

_FALLBACK_HEADING_RE: Final = re.compile(r"^(={1,6})(.+?)(={1,6})[ \t]*$", re.MULTILINE)
_FALLBACK_DROP_BLOCK_RE: Final = re.compile(
    r"<(ref|gallery|math|chem|ce|score|timeline|graph|mapframe|imagemap|templatedata|"
    r"templatestyles|includeonly|inputbox|categorytree|hiero|style|script)\b[^<>]*(?<!/)>"
    r".*?</\1\s*>",
    re.IGNORECASE | re.DOTALL,
)
_FALLBACK_SELF_CLOSING_RE: Final = re.compile(r"<(?:ref|references)\b[^<>]*/>", re.IGNORECASE)
_FALLBACK_BR_RE: Final = re.compile(r"<br\s*/?>", re.IGNORECASE)
_FALLBACK_TAG_RE: Final = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
# Possessive and bounded, so that a line of many "[http…" without "]" stays linear.
_FALLBACK_EXT_LINK_RE: Final = re.compile(
    r"\[(?:(?:[A-Za-z][A-Za-z0-9+.-]{0,15}:)?//|(?:mailto|news|tel):)[^\s\]<>\"]{0,2000}+"
    r"[ \t]*+([^\]\n]{0,1000}+)\]"
)
_BARE_URL_RE: Final = re.compile(r"(?:https?|ftp)://[^\s<>\[\]|]+", re.IGNORECASE)
_BRACKET_TOKEN_RE: Final = re.compile(r"\{\{|\}\}|\[\[|\]\]")
_FALLBACK_MAX_DEPTH: Final = 100


def _fallback_link(inner: str) -> str:
    target, pipe, label = inner.partition("|")
    if hidden_link(target):
        return ""
    target = target.strip().lstrip(":").strip()
    if pipe:
        return label if label.strip() else pipe_trick(target)
    return target


def _fallback_brackets(text: str) -> str:
    """Drop templates and resolve links with one stack scan (linear; deep nesting is flattened
    beyond ``_FALLBACK_MAX_DEPTH``)."""
    stack: list[tuple[str, list[str]]] = [("", [])]
    pos = 0
    for match in _BRACKET_TOKEN_RE.finditer(text):
        stack[-1][1].append(text[pos : match.start()])
        pos = match.end()
        token = match.group()
        if token in ("{{", "[["):
            if len(stack) < _FALLBACK_MAX_DEPTH:
                stack.append((token, []))
            continue
        wanted = "{{" if token == "}}" else "[["
        if len(stack) > 1 and stack[-1][0] == wanted:
            opener, parts = stack.pop()
            if opener == "[[":
                stack[-1][1].append(_fallback_link("".join(parts)))
    stack[-1][1].append(text[pos:])
    while len(stack) > 1:
        _, parts = stack.pop()
        stack[-1][1].append("".join(parts))
    return "".join(stack[0][1])


def drop_blocks(text: str) -> str:
    """Remove footnotes and media blocks with their content (the regex path's first step; the
    text is balanced, so every block finds its closing tag)."""
    text = _FALLBACK_DROP_BLOCK_RE.sub(CUT, text)
    return _FALLBACK_SELF_CLOSING_RE.sub(CUT, text)


def fallback_strip(text: str) -> str:
    """Regex/stack based markup removal for text the parser could not handle (blocks already
    removed by :func:`drop_blocks`)."""
    text = _fallback_brackets(text)
    text = _FALLBACK_EXT_LINK_RE.sub(r"\1", text)
    text = _BARE_URL_RE.sub("", text)
    text = _FALLBACK_BR_RE.sub(HARD, text)
    text = _FALLBACK_TAG_RE.sub("", text)
    text = MAGIC_WORD_RE.sub("", text)
    return decode_entities(text)


def last_resort(text: str) -> list[Section]:
    """One lead section of the text with every markup character removed."""
    text = BRUTAL_RE.sub(" ", CONTROL_RE.sub("", text))
    lines = (normalise_line(line) for line in text.split("\n"))
    body = "\n".join(line for line in lines if line)
    return [Section(path=(), anchor="", text=body, ordinal=0)] if body else []


def fallback_sections(text: str) -> list[RawSection]:
    """The raw sections of prepared text, without the parser."""
    text = drop_blocks(text)
    sections: list[RawSection] = []
    pos = 0
    level, title = 0, ""
    for match in _FALLBACK_HEADING_RE.finditer(text):
        sections.append(RawSection(level, title, fallback_strip(text[pos : match.start()])))
        level = min(len(match.group(1)), len(match.group(3)))
        title = finish_fragment(fallback_strip(match.group(2)), " ")
        pos = match.end()
    sections.append(RawSection(level, title, fallback_strip(text[pos:])))
    return sections
