"""Step 3 of the cleaner, *finishing*: bold/italic quotes removed with MediaWiki's
``doQuotes`` rules, list markers stripped, table syntax left as text linearised,
lines normalised and scrubbed of residue, paragraphs formed.
"""

from __future__ import annotations

import re
from typing import Final

from indexer.clean.residue import scrub_residue
from indexer.clean.sentinels import APOS, CUT, HARD

# --------------------------------------------------------------------------- quotes


_QUOTE_RUN_RE: Final = re.compile(r"('{2,})")


def _strip_quotes(text: str) -> str:
    """Remove bold/italic apostrophes line by line with MediaWiki's ``doQuotes`` rules."""
    if "''" not in text:
        return text
    return "\n".join(
        _strip_quotes_line(line) if "''" in line else line for line in text.split("\n")
    )


def _strip_quotes_line(line: str) -> str:
    parts = _QUOTE_RUN_RE.split(line)
    bold = italic = 0
    for i in range(1, len(parts), 2):
        size = len(parts[i])
        if size == 4:  # one apostrophe of text, then bold
            parts[i - 1] += "'"
            parts[i] = "'''"
            size = 3
        elif size > 5:  # all but the last five are text
            parts[i - 1] += "'" * (size - 5)
            parts[i] = "'''''"
            size = 5
        italic += size in (2, 5)
        bold += size in (3, 5)
    if bold % 2 and italic % 2:
        _demote_one_bold(parts)
    return "".join(parts[0::2])


def _demote_one_bold(parts: list[str]) -> None:
    """With odd bold and italic counts, one ``'''`` is an apostrophe + italics: preferably the
    one after a single-letter word (``l'''Europe''``), else after a longer word, else after a
    space."""
    single = multi = space = -1
    for i in range(1, len(parts), 2):
        if len(parts[i]) != 3:
            continue
        before = parts[i - 1]
        x1 = before[-1:]
        x2 = before[-2:-1] if len(before) >= 2 else before[:1]
        if x1 == " ":
            if space < 0:
                space = i
        elif x2 == " ":
            single = i
            break
        elif multi < 0:
            multi = i
    chosen = next((i for i in (single, multi, space) if i > 0), -1)
    if chosen > 0:
        parts[chosen] = "''"
        parts[chosen - 1] += "'"


# --------------------------------------------------------------------------- line finishing

_BLANK_LINE_RE: Final = re.compile(r"\n[ \t]*\n")
_LIST_MARKER_RE: Final = re.compile(r"[*#:;]+[ \t]*")
_SPACE_RUN_RE: Final = re.compile(r"[^\S\n]+")  # any whitespace but a line break
_INVISIBLE_RE: Final = re.compile(r"[\u00ad\u200b\u200e\u200f\u2060\ufeff]")
_EMPTY_BRACKETS_RE: Final = re.compile(r"\s*(?:\((?:\s|[,;:–—-])*\)|\[\s*\])")
_PAREN_OPEN_SEP_RE: Final = re.compile(r"\(\s*(?:[,;:]\s*)+")
_PAREN_CLOSE_SEP_RE: Final = re.compile(r"(?:\s*[,;])+\s*\)")
_PAREN_INNER_SPACE_RE: Final = re.compile(r"\(\s+|\s+\)")
_SPACE_BEFORE_PUNCT_RE: Final = re.compile(r"\s+([,.])(?=\s|$)")
_REPEATED_SEPARATOR_RE: Final = re.compile(r"([,;])(?:\s*[,;])+")
_SEPARATOR_BEFORE_STOP_RE: Final = re.compile(r"[,;]\s*\.(?!\.)")
_WORD_RE: Final = re.compile(r"\w")
_TABLE_CELL_SPLIT_RE: Final = re.compile(r"\|\||!!")


def _paren_inner_space(match: re.Match[str]) -> str:
    return "(" if match.group().startswith("(") else ")"


def normalise_line(line: str) -> str:
    """Whitespace, leftovers of removed markup, residue; "" when no word is left."""
    line = _INVISIBLE_RE.sub("", line)
    line = _SPACE_RUN_RE.sub(" ", line)
    line = _REPEATED_SEPARATOR_RE.sub(r"\1", line)
    if "(" in line or "[" in line:
        line = _EMPTY_BRACKETS_RE.sub("", line)
        line = _PAREN_OPEN_SEP_RE.sub("(", line)
        line = _PAREN_CLOSE_SEP_RE.sub(")", line)
        line = _PAREN_INNER_SPACE_RE.sub(_paren_inner_space, line)
    line = _SEPARATOR_BEFORE_STOP_RE.sub(".", line)
    line = _SPACE_BEFORE_PUNCT_RE.sub(r"\1", line)
    line = scrub_residue(line)
    line = _SPACE_RUN_RE.sub(" ", line).strip().rstrip(" ,;")
    return line if _WORD_RE.search(line) else ""


def _raw_table_cell(cell: str) -> str:
    """A cell of table syntax the parser left as text: attributes before a single ``|``."""
    if "|" in cell and "[[" not in cell and "{{" not in cell:
        cell = cell.split("|", 1)[1]
    return cell.strip()


def _raw_table_line(line: str, in_table: bool) -> str | None:
    """Table syntax left as text → a linearised line ("" = drop the line), None = not table."""
    if line.startswith(("{|", "|}", "|-")):
        return ""
    if line.startswith("|+"):
        return _raw_table_cell(line[2:])
    if line.startswith("|") or (in_table and line.startswith("!")):
        cells = (_raw_table_cell(cell) for cell in _TABLE_CELL_SPLIT_RE.split(line[1:]))
        return "; ".join(cell for cell in cells if cell)
    return None


def _block_lines(block: str, state: list[bool]) -> list[str]:
    """One paragraph of rendered text → its clean lines. List items and table lines stand
    alone, other source lines are joined with a space, hard breaks split lines."""
    merged: list[str] = []
    joinable = False
    for raw_line in block.split("\n"):
        line = raw_line.strip(" \t")
        if not line:
            continue
        marker = _LIST_MARKER_RE.match(line)
        if marker is not None:
            merged.append(line[marker.end() :])
            joinable = False
            continue
        table_line = _raw_table_line(line, state[0])
        if table_line is not None:
            state[0] = not line.startswith("|}")
            if table_line:
                merged.append(table_line)
            joinable = False
            continue
        if joinable:
            merged[-1] += " " + line
        else:
            merged.append(line)
        joinable = True
    lines: list[str] = []
    for item in merged:
        for piece in item.split(HARD):
            clean = normalise_line(piece)
            if clean:
                lines.append(clean)
    return lines


def _finish_blocks(raw: str) -> list[list[str]]:
    """Rendered text (still holding quotes, list markers, sentinels) → paragraphs of lines."""
    raw = _strip_quotes(raw).replace(APOS, "'").replace(CUT, "")
    state = [False]  # inside table syntax left as text
    blocks: list[list[str]] = []
    for block in _BLANK_LINE_RE.split(raw):
        lines = _block_lines(block, state)
        if lines:
            blocks.append(lines)
    return blocks


def finish_text(raw: str) -> str:
    return "\n\n".join("\n".join(lines) for lines in _finish_blocks(raw))


def finish_fragment(raw: str, sep: str) -> str:
    """Rendered text → one clean line (a heading, a table cell, an infobox value); lines are
    joined with ``sep`` unless one already ends with punctuation."""
    out = ""
    for lines in _finish_blocks(raw):
        for line in lines:
            if not out:
                out = line
            elif out[-1] in ",;:" or line[0] == "(":
                out += " " + line
            else:
                out += sep + line
    return scrub_residue(out)  # joining lines may bring "<a" and "b>" together
