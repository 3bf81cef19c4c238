"""Wikitext → clean, sectioned plain text.

:func:`clean_wikitext` turns one page's wikitext into :class:`~indexer.models.Section`
records: section 0 is the lead (``path == ()``, ``anchor == ""``), then one section per heading
(levels 1–6) in document order. ``path`` is the chain of clean enclosing headings,
``anchor`` the fragment MediaWiki gives the heading (:func:`heading_anchor`, duplicates within a
page get ``_2``, ``_3``… as in MediaWiki), ``ordinal`` the heading's position among *all*
headings (0 = lead), so ordinals stay stable when sections are dropped. Sections whose clean
text is empty are not returned, nor are reference-type sections (:data:`EXCLUDED_SECTION_HEADINGS`)
and their subsections.

Text layout: paragraphs are separated by ``"\\n\\n"``; list items, table rows, infobox lines and
``<br>`` breaks by a single ``"\\n"``; consecutive source lines of one paragraph are joined
with a space (as MediaWiki renders them). Whitespace is collapsed, NBSP and other spaces become
a plain space, and leftovers of removed markup are tidied (``"( )"``, ``"(; "``, ``" ,"``).

How it works, in time linear in the input:

1. *Preparation*: comments and footnotes (``<ref>``) are removed, and delimiters MediaWiki
   would not pair are neutralised (unmatched or crossing ``{{ }}``, ``[[ ]]``, HTML/extension
   tags, line-start ``{| |}``, ``[http…`` links not closed on their line). mwparserfromhell
   backtracks on each of them and turns quadratic otherwise (20,000 unclosed ``{{``: 200 s).
2. *Parsing*: ``mwparserfromhell.parse(text, skip_style_tags=True)``, once, in pieces of about
   16 KB cut at line starts outside any template/link/tag/table (which changes nothing in the
   tree but bounds the parser's worst cases); the node tree is walked once.
3. *Finishing*: bold/italic quotes are removed line by line with MediaWiki's own ``doQuotes``
   rules (``l'''Europe''`` → ``l'Europe``), list markers stripped, lines normalised, and a last
   pass guarantees that :func:`find_markup_residue` finds nothing.

If parsing or walking fails (``RecursionError`` on deep nesting, a parser bug), a regex/stack
based stripper produces the sections instead, with the same finishing; it also takes the
chunks too dense in markup for the parser (garbage only, see ``_parser_friendly``). Measured
on the 2-core development machine (shared, load ~4): the 106-article enwiki sample (5.7 M
characters) cleans in 2.5 s, 43 pages/s or 2.3 MB/s, which is less than
``mwparserfromhell.parse`` alone takes on the raw pages (2.4 s): footnotes are cut first.

Cleaning policy
===============

==================================  ===========  ==========================================
Markup                              Result       Why
==================================  ===========  ==========================================
``<ref>…</ref>``, ``<ref/>``,       dropped      footnotes, not prose (their targets live in
``<references/>``                                the dropped reference sections)
comments, ``__TOC__`` and other     dropped      invisible on the page
magic words
``<gallery>``, ``<imagemap>``,      dropped      media and graphics, no prose
``<timeline>``, ``<score>``,
``<graph>``, ``<mapframe>``,
``<chem>``/``<ce>``,
``<templatestyles>``…
``<math>``                          simple TeX   kept when it linearises to plain text
                                                 (``E = mc^2``; ``\\alpha \\leq 1`` →
                                                 ``α ≤ 1``), dropped otherwise: raw TeX
                                                 (``\\frac{a}{b}``) reads badly and leaves
                                                 braces
``<nowiki>``, ``<pre>``,            text kept    visible text (``<poem>`` keeps its line
``<syntaxhighlight>``, ``<code>``,               breaks)
``<poem>``
other HTML tags (``<b>``,           inner text   formatting only; ``<br>`` → line break,
``<span>``, ``<sup>``, ``<div>``,                block tags → paragraph break
``<blockquote>``…)
``[[File:…]]``, ``[[Image:…]]``,    dropped      images, captions included; aliases in en,
``[[Datei:…]]``, ``[[Fichier:…]]``,              fr, de, pt, ru, es, it, nl, pl
``[[Файл:…]]``, ``[[Media:…]]``…                 (:data:`FILE_NAMESPACES`)
``[[Category:…]]`` and its          dropped      page metadata (:data:`CATEGORY_NAMESPACES`)
localised names
``[[fr:…]]``, ``[[zh-yue:…]]``      dropped      interlanguage links live in the sidebar
(known language code, no leading                 (:data:`LANGUAGE_CODES`)
colon)
``[[Target|label]]``,               ``label``,   the visible text; ``[[A (b)|]]`` (pipe
``[[Target]]s``                     ``Targets``  trick) → ``A``
``[http://x label]``                ``label``    the visible text
``[http://x]``, bare URLs           dropped      shown as ``[1]`` or a raw URL: no prose
``''``, ``'''``, list markers       dropped      formatting
``* # : ;``, ``----``
HTML entities (``&nbsp;``,          characters   NBSP and other spaces → plain space
``&amp;``, ``&#8211;``)
tables (``{| … |}``, ``<table>``)   linearised   one line per row, see below
infoboxes                           linearised   ``key: value`` lines, see below
templates of                        rendered     the inline text a reader sees
:data:`TEMPLATE_POLICY`
every other template                dropped      navboxes, hatnotes, maintenance tags,
                                                 citations, icons: the safe default
==================================  ===========  ==========================================

Tables (``include_tables``): one line per row. When the table has a header row (all cells
``!``), every data cell is written ``Header: value`` and cells are joined with ``"; "``
(``Year: 1921; Award: Nobel Prize in Physics``); ``rowspan`` cells are repeated in the rows they
span, ``colspan`` is honoured for the header mapping, a header row of a single cell is written
as its own line, and the caption (``|+``) is the first line. Attributes (``style``, ``class``,
``rowspan``, ``colspan``) never reach the text. A table is a paragraph of its own.

Infoboxes (``include_infobox``): templates named ``Infobox …`` (any language),
``Taxobox``/``Speciesbox``/``Automatic taxobox``…, pt ``Info/…``, ru ``Карточка …``/``Таксон``
become lines ``key: value`` (parameter name with ``_`` → space, value cleaned recursively, list
values joined with ``"; "``), skipping empty values, positional parameters and media/layout
parameters (image, caption, alt, signature, map, coordinates, logo, flag, seal, size…). An
embedded infobox (``module = {{Infobox …}}``) adds its own lines. The lines form the last
paragraph of their section, i.e. of the lead for the usual top-of-page infobox.

Headings: section headings are compared case-insensitively with every list of
:data:`EXCLUDED_SECTION_HEADINGS` at once (the lists do not collide across languages) and
compound headings made only of listed words are dropped too (``Notes and references``,
``Notes et références``, ``Sources, Literatur``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final

import mwparserfromhell
from mwparserfromhell.nodes import (
    Argument,
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Tag,
    Template,
    Text,
    Wikilink,
)

from indexer.clean.anchors import AnchorRegistry as _AnchorRegistry
from indexer.clean.anchors import anchor_from_text as _anchor_from_text
from indexer.clean.chunks import parser_friendly as _parser_friendly
from indexer.clean.chunks import split_chunks as _split_chunks
from indexer.clean.config import ALL_EXCLUDED as _ALL_EXCLUDED
from indexer.clean.config import (
    CATEGORY_NAMESPACES,
    EXCLUDED_SECTION_HEADINGS,
    FILE_NAMESPACES,
    LANGUAGE_CODES,
    CleanerConfig,
)
from indexer.clean.config import HEADING_CONJUNCTION_RE as _HEADING_CONJUNCTION_RE
from indexer.clean.config import phrases as _phrases
from indexer.clean.config import words as _words
from indexer.clean.prepare import prepare as _prepare
from indexer.clean.residue import BRUTAL_RE as _BRUTAL_RE
from indexer.clean.residue import find_markup_residue
from indexer.clean.residue import scrub_residue as _scrub_residue
from indexer.clean.sentinels import APOS as _APOS
from indexer.clean.sentinels import CONTROL_RE as _CONTROL_RE
from indexer.clean.sentinels import CUT as _CUT
from indexer.clean.sentinels import HARD as _HARD
from indexer.clean.tables import CELL_ATTRIBUTES_RE as _CELL_ATTRIBUTES_RE
from indexer.clean.tables import MAX_COLSPAN as _MAX_COLSPAN
from indexer.clean.tables import MAX_ROWSPAN as _MAX_ROWSPAN
from indexer.clean.tables import Cell as _Cell
from indexer.clean.tables import linearise_rows as _linearise_rows
from indexer.clean.tables import span as _span
from indexer.clean.tables import text_span_value as _text_span_value
from indexer.clean.tex import linearise_tex as _linearise_tex
from indexer.models import Section

__all__ = [
    "CATEGORY_NAMESPACES",
    "EXCLUDED_SECTION_HEADINGS",
    "FILE_NAMESPACES",
    "LANGUAGE_CODES",
    "TEMPLATE_POLICY",
    "CleanerConfig",
    "WikitextCleaner",
    "clean_wikitext",
    "find_markup_residue",
    "heading_anchor",
]


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


def _normalise_line(line: str) -> str:
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
    line = _scrub_residue(line)
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
        for piece in item.split(_HARD):
            clean = _normalise_line(piece)
            if clean:
                lines.append(clean)
    return lines


def _finish_blocks(raw: str) -> list[list[str]]:
    """Rendered text (still holding quotes, list markers, sentinels) → paragraphs of lines."""
    raw = _strip_quotes(raw).replace(_APOS, "'").replace(_CUT, "")
    state = [False]  # inside table syntax left as text
    blocks: list[list[str]] = []
    for block in _BLANK_LINE_RE.split(raw):
        lines = _block_lines(block, state)
        if lines:
            blocks.append(lines)
    return blocks


def _finish_text(raw: str) -> str:
    return "\n\n".join("\n".join(lines) for lines in _finish_blocks(raw))


def _finish_fragment(raw: str, sep: str) -> str:
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
    return _scrub_residue(out)  # joining lines may bring "<a" and "b>" together


# --------------------------------------------------------------------------- templates

_MONTH_TEXT: Final = (
    "January February March April May June July August September October November December"
)
_MONTHS_EN: Final = tuple(_MONTH_TEXT.split())
_MONTH_NUMBERS: Final = {name.lower(): i for i, name in enumerate(_MONTHS_EN, 1)} | {
    name.lower()[:3]: i for i, name in enumerate(_MONTHS_EN, 1)
}
_TRUE_FLAGS: Final = frozenset({"y", "yes", "on", "true", "1"})
_NUMBER_RE: Final = re.compile(r"-?\d+")
_YEAR_RE: Final = re.compile(r"-?\d{1,6}")
_SUPERSCRIPTS: Final = str.maketrans("0123456789-−", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁻")
_SUPERSCRIPTABLE_RE: Final = re.compile(r"[-−]?[0-9]{1,3}")


class _Args:
    """A template's arguments, rendered on demand. Positional arguments are numbered like
    MediaWiki (``|x|2=y`` → 1: x, 2: y); named ones are looked up case-insensitively."""

    __slots__ = ("_items", "_named", "_pos", "_renderer", "name")

    def __init__(self, renderer: _Renderer, template: Any, name: str) -> None:
        self._renderer = renderer
        self.name = name
        self._pos: dict[int, Any] = {}
        self._named: dict[str, Any] = {}
        self._items: list[tuple[Any, Any]] = []
        index = 0
        for param in template.params:
            if not param.showkey:
                index += 1
                self._pos[index] = param.value
                continue
            key = str(param.name).strip()
            if key.isascii() and key.isdigit() and len(key) < 7:
                self._pos[int(key)] = param.value
            else:
                self._named[key.lower()] = param.value
                self._items.append((param.name, param.value))

    @property
    def language(self) -> str:
        return self._renderer.language

    def _render(self, code: Any) -> str:
        return self._renderer.render(code).strip()

    def pos(self, index: int) -> str:
        code = self._pos.get(index)
        return "" if code is None else self._render(code)

    def named(self, *names: str) -> str:
        for name in names:
            code = self._named.get(name)
            if code is not None:
                value = self._render(code)
                if value:
                    return value
        return ""

    def text(self, index: int, *names: str) -> str:
        """A named argument when given, else the positional one."""
        return self.named(*names) or self.pos(index)

    def positional(self) -> list[str]:
        return [self._render(self._pos[i]) for i in sorted(self._pos)]

    def flag(self, name: str) -> bool:
        return self.named(name).lower() in _TRUE_FLAGS

    def items(self) -> list[tuple[Any, Any]]:
        """The named arguments as (name, value) wikicode, in order."""
        return self._items


TemplateRenderer = Callable[[_Args], str]


def _first(args: _Args) -> str:
    return args.text(1, "text")


def _second(args: _Args) -> str:
    return args.text(2, "text")


def _last(args: _Args) -> str:
    values = [value for value in args.positional() if value]
    return values[-1] if values else ""


def _joined(sep: str) -> TemplateRenderer:
    def render(args: _Args) -> str:
        return sep.join(value for value in args.positional() if value)

    return render


def _constant(text: str) -> TemplateRenderer:
    def render(args: _Args) -> str:
        return text

    return render


def _with_prefix(prefix: str) -> TemplateRenderer:
    def render(args: _Args) -> str:
        value = args.pos(1)
        return f"{prefix} {value}" if value else prefix

    return render


def _label_or_first(default: str) -> TemplateRenderer:
    def render(args: _Args) -> str:
        return args.pos(1) or default

    return render


def _month_number(month: str) -> int | None:
    if month.isascii() and month.isdigit() and len(month) <= 2:
        number = int(month)
        return number if 1 <= number <= 12 else None
    return _MONTH_NUMBERS.get(month.strip().lower())


def _format_date(year: str, month: str, day: str, *, language: str, mdy: bool = False) -> str:
    """``1879, 3, 14`` → ``14 March 1879`` (en; ``March 14, 1879`` with ``mdy``) or
    ``1879-03-14`` (other languages). Anything unusual is returned as written."""
    if not _YEAR_RE.fullmatch(year):
        return " ".join(part for part in (day, month, year) if part)
    number = _month_number(month) if month else None
    if month and number is None:
        return " ".join(part for part in (day, month, year) if part)
    valid_day = day.isascii() and day.isdigit() and len(day) <= 2 and 1 <= int(day) <= 31
    if language not in ("en", "simple"):
        if number is None:
            return year
        iso = f"{year}-{number:02d}"
        return f"{iso}-{int(day):02d}" if valid_day else iso
    if number is None:
        return year
    name = _MONTHS_EN[number - 1]
    if not valid_day:
        return f"{name} {year}"
    return f"{name} {int(day)}, {year}" if mdy else f"{int(day)} {name} {year}"


def _date_from(args: _Args, start: int) -> str:
    return _format_date(
        args.pos(start),
        args.pos(start + 1),
        args.pos(start + 2),
        language=args.language,
        mdy=args.flag("mf") and not args.flag("df"),
    )


def _date(args: _Args) -> str:
    return _date_from(args, 1)


def _age(later: tuple[str, str, str], earlier: tuple[str, str, str]) -> int | None:
    if any(len(part) > 6 for part in (*later, *earlier)):
        return None
    try:
        y2, m2, d2 = (int(part or 1) for part in later)
        y1, m1, d1 = (int(part or 1) for part in earlier)
    except ValueError:
        return None
    age = y2 - y1 - ((m2, d2) < (m1, d1))
    return age if 0 <= age < 200 else None


def _death_date_and_age(args: _Args) -> str:
    date = _date_from(args, 1)
    age = _age((args.pos(1), args.pos(2), args.pos(3)), (args.pos(4), args.pos(5), args.pos(6)))
    return f"{date} (aged {age})" if date and age is not None else date


def _plain_join(args: _Args) -> str:
    """fr ``{{date|14|mars|1879}}`` and other "words as arguments" dates."""
    values = [args.pos(i) for i in (1, 2, 3)]
    return " ".join(value for value in values if value)


def _as_of(args: _Args) -> str:
    date = _date_from(args, 1)
    return f"As of {date}" if date else ""


_RANGE_SEPARATORS: Final = {
    "-": "–",
    "–": "–",
    "to": " to ",
    "to(-)": " to ",
    "and": " and ",
    "and(-)": " and ",
    "or": " or ",
    "by": " by ",
    "x": " × ",
    "×": " × ",
    "+/-": " ± ",
    "±": " ± ",
}
_UNIT_LABELS: Final = {
    "C": "°C",
    "F": "°F",
    "K": "K",
    "km2": "km²",
    "sqkm": "km²",
    "m2": "m²",
    "cm2": "cm²",
    "ha": "ha",
    "sqmi": "sq mi",
    "mi2": "sq mi",
    "sqft": "sq ft",
    "ft2": "sq ft",
    "m3": "m³",
    "km3": "km³",
    "cm3": "cm³",
    "cuft": "cu ft",
    "ft3": "cu ft",
    "km/h": "km/h",
    "kph": "km/h",
}


def _convert(args: _Args) -> str:
    """``{{convert|5|km|mi}}`` → ``5 km``; ``{{convert|5|to|10|km}}`` → ``5 to 10 km``."""
    values = args.positional()
    if not values or not values[0]:
        return ""
    out = values[0]
    i = 1
    while i + 1 < len(values) and values[i].lower() in _RANGE_SEPARATORS:
        out += _RANGE_SEPARATORS[values[i].lower()] + values[i + 1]
        i += 2
    unit = values[i] if i < len(values) else ""
    return f"{out} {_unit_label(unit)}".strip()


_UNIT_MULTIPLIERS: Final = {"e3": "thousand", "e6": "million", "e9": "billion", "e12": "trillion"}
_UNIT_MULTIPLIER_RE: Final = re.compile(r"(e3|e6|e9|e12)(\D.*)")


def _unit_label(unit: str) -> str:
    """``km2`` → ``km²``, ``e6acre`` → ``million acre``; other units as written."""
    scaled = _UNIT_MULTIPLIER_RE.fullmatch(unit)
    if scaled is not None:
        return f"{_UNIT_MULTIPLIERS[scaled.group(1)]} {_unit_label(scaled.group(2))}"
    return _UNIT_LABELS.get(unit, unit)


def _unite(args: _Args) -> str:
    """fr ``{{unité|3|km}}`` → ``3 km``; an integer after a unit is its exponent (km²)."""
    out: list[str] = []
    after_unit = False
    for value in args.positional():
        if not value:
            continue
        if after_unit and _NUMBER_RE.fullmatch(value):
            out[-1] += value.translate(_SUPERSCRIPTS)
            after_unit = False
            continue
        out.append(value)
        after_unit = len(out) > 1
    return " ".join(out)


def _val(args: _Args) -> str:
    """``{{val|1.23|e=5|u=m}}`` → ``1.23×10⁵ m``."""
    out = args.pos(1)
    uncertainty = args.pos(2)
    if uncertainty:
        out += f" ± {uncertainty}"
    exponent = args.named("e")
    if exponent:
        out += "×10" + exponent.translate(_SUPERSCRIPTS)
    unit = args.named("u", "ul", "up", "upl")
    return f"{out} {unit}" if unit else out


def _fraction(args: _Args) -> str:
    values = [value for value in args.positional() if value]
    if len(values) == 1:
        return f"1/{values[0]}"
    if len(values) == 2:
        return f"{values[0]}/{values[1]}"
    if len(values) >= 3:
        return f"{values[0]} {values[1]}/{values[2]}"
    return ""


_IPAC_KEYWORDS: Final = _words("lang local pron ipa also uk us ca au nz ie audio")


def _ipac(args: _Args) -> str:
    """``{{IPAc-en|ˈ|aɪ|n|s|t|aɪ|n}}`` → ``/ˈaɪnstaɪn/``."""
    pieces = [p for p in args.positional() if p and p.lower() not in _IPAC_KEYWORDS]
    text = "".join(pieces).replace("_", " ").strip()
    return f"/{text}/" if text else ""


def _nihongo(args: _Args) -> str:
    """``{{nihongo|Tokyo|東京|Tōkyō}}`` → ``Tokyo (東京, Tōkyō)``."""
    english, *others = [args.pos(1), args.pos(2), args.pos(3)]
    others = [value for value in others if value]
    if not english:
        english = others.pop(0) if others else ""
    return f"{english} ({', '.join(others)})" if others else english


def _quote(args: _Args) -> str:
    """Block quotations are prose: their text (and author) as a paragraph of its own."""
    text = args.text(1, "text", "quote", "zitat", "citation")
    author = args.named("author", "sign", "autor", "auteur", "character") or args.pos(2)
    if not text:
        return ""
    body = f"{text} — {author}" if author and len(author) < 200 else text
    return f"\n\n{body}\n\n"


def _marriage(args: _Args) -> str:
    name, start, end = args.pos(1), args.pos(2), args.pos(3)
    if not start:
        return name
    years = f"{start}–{end}" if end else start
    return f"{name} (m. {years})" if name else f"m. {years}"


def _list_items(args: _Args) -> str:
    values = [value for value in args.positional() if value]
    return _HARD.join(values)


def _sortname(args: _Args) -> str:
    return " ".join(value for value in (args.pos(1), args.pos(2)) if value)


def _sort(args: _Args) -> str:
    return args.pos(2) or args.pos(1)


def _interlanguage_link(args: _Args) -> str:
    return args.named("lt", "texte", "fr") or args.pos(1)


def _ru_interlanguage_link(args: _Args) -> str:
    return args.pos(2) or args.pos(1)


def _literal(args: _Args) -> str:
    value = args.pos(1)
    return f"lit. {_APOS}{value}{_APOS}" if value else ""


def _circa(args: _Args) -> str:
    value = args.pos(1)
    return f"c. {value}" if value else "c."


def _siecle(suffix: str) -> TemplateRenderer:
    def render(args: _Args) -> str:
        roman = args.pos(1)
        return f"{roman}e{suffix}" if roman else ""

    return render


def _roman(upper: bool | None) -> TemplateRenderer:
    def render(args: _Args) -> str:
        value = args.pos(1)
        if upper is None:
            return value
        return value.upper() if upper else value.lower()

    return render


def _fr_quote(args: _Args) -> str:
    value = args.pos(1)
    return f"« {value} »" if value else ""


def _chem(args: _Args) -> str:
    return "".join(args.positional())


def _hlist(args: _Args) -> str:
    return " · ".join(value for value in args.positional() if value)


def _ordinal_name(args: _Args) -> str:
    """fr ``{{XIXe siècle}}``, ``{{1er|mai}}``: the name is the text."""
    value = args.pos(1)
    return f"{args.name} {value}" if value else args.name


def _ipa(args: _Args) -> str:
    """``{{IPA|ˈaɪn}}`` and the newer ``{{IPA|de|ˈaɪn|lang}}`` (language code first)."""
    first, second = args.pos(1), args.pos(2)
    if second and first.lower() in LANGUAGE_CODES:
        return second
    return args.named("text") or first


def _quoted(args: _Args) -> str:
    """``{{qi|…}}``, ``{{tq|…}}``: an inline quotation, in quotation marks."""
    value = args.text(1, "text")
    return f'"{value}"' if value else ""


def _native_with_gloss(args: _Args) -> str:
    """fr ``{{grec ancien|ἀναρχία|anarkhía}}`` → ``ἀναρχία (anarkhía)``."""
    first, second = args.pos(1), args.pos(2)
    return f"{first} ({second})" if first and second else first or second


def _incise(args: _Args) -> str:
    value = args.pos(1)
    return f" — {value} — " if value else ""


def _hyphenated(args: _Args) -> str:
    """``{{nuclide2|einsteinium|254}}`` → ``einsteinium-254``."""
    return "-".join(value for value in (args.pos(1), args.pos(2)) if value)


def _ship(prefix: str) -> TemplateRenderer:
    """``{{USS|Hornet|CV-12}}`` → ``USS Hornet (CV-12)``."""

    def render(args: _Args) -> str:
        name, designation = args.pos(1), args.pos(2)
        if not name:
            return ""
        return f"{prefix} {name} ({designation})" if designation else f"{prefix} {name}"

    return render


def _times_ten(args: _Args) -> str:
    """en ``{{e|24}}`` → ``×10²⁴``; fr ``{{e}}`` (an ordinal suffix) → ``e``."""
    value = args.pos(1)
    if _NUMBER_RE.fullmatch(value):
        return "×10" + value.translate(_SUPERSCRIPTS)
    return args.name


def _boxed_text(args: _Args) -> str:
    """fr ``{{encadré|contenu=…}}``: a box of prose, as a paragraph."""
    value = args.named("contenu", "content", "text") or args.pos(1)
    return f"\n\n{value}\n\n" if value else ""


# The templates that are rendered (every other template is dropped). Names are compared
# case-insensitively with "_" read as a space; "lang-xx", "IPA-xx", "IPAc-xx", fr ordinals and
# infoboxes are recognised by their form (see ``_prefix_renderer`` and ``_is_infobox``).
_COMMON_TEMPLATES: Final[dict[str, TemplateRenderer]] = {
    # measurements and numbers
    "convert": _convert,
    "cvt": _convert,
    "unité": _unite,
    "unit": _unite,
    "val": _val,
    "formatnum": _first,
    "fmtn": _first,
    "nts": _first,
    "nombre": _joined(" "),
    "nb": _joined(" "),
    "currency": _joined(" "),
    "frac": _fraction,
    "sfrac": _fraction,
    "fraction": _fraction,
    "e": _times_ten,
    "chem": _chem,
    "chem2": _first,
    "linktext": _joined(""),
    "nuclide2": _hyphenated,
    "simplenuclide2": _hyphenated,
    "bartable": _first,
    # languages and pronunciation
    "lang": _second,
    "langx": _second,
    "langue": _second,
    "rtl-lang": _second,
    "native name": _second,
    "script": _second,
    "transl": _last,
    "transliteration": _last,
    "ipa": _ipa,
    "respell": _joined("-"),
    "audio": _second,
    "nihongo": _nihongo,
    "japonais": _native_with_gloss,
    "grec ancien": _native_with_gloss,
    "polytonisch": _first,
    "lit": _literal,
    "literally": _literal,
    "literal translation": _literal,
    # dates
    "birth date": _date,
    "death date": _date,
    "birth date and age": _date,
    "death date and age": _death_date_and_age,
    "start date": _date,
    "end date": _date,
    "start date and age": _date,
    "end date and age": _date,
    "start-date": _first,
    "end-date": _first,
    "film date": _date,
    "dts": _date,
    "birth year and age": _first,
    "death year and age": _first,
    "as of": _as_of,
    "date": _plain_join,
    "date-": _plain_join,
    "date de naissance": _plain_join,
    "date de décès": _plain_join,
    "circa": _circa,
    "c.": _circa,
    "ca.": _circa,
    "floruit": _with_prefix("fl."),
    "fl.": _with_prefix("fl."),
    "s": _siecle(" siècle"),
    "siècle": _siecle(" siècle"),
    "-s": _siecle(" siècle av. J.-C."),
    "s-": _siecle(""),
    "séc": _with_prefix("século"),
    "romain": _roman(None),
    "rom": _roman(None),
    "rom-maj": _roman(True),
    "rom-min": _roman(False),
    "1er": _ordinal_name,
    "er": _ordinal_name,
    "re": _ordinal_name,
    # wrappers: the wrapped text
    "nowrap": _first,
    "nobr": _first,
    "nobreak": _first,
    "nobold": _first,
    "noitalic": _first,
    "small": _first,
    "smaller": _first,
    "big": _first,
    "larger": _first,
    "midsize": _first,
    "resize": _last,
    "sc": _first,
    "smallcaps": _first,
    "small caps": _first,
    "sup": _first,
    "sub": _first,
    "strong": _first,
    "em": _first,
    "code": _first,
    "mono": _first,
    "kbd": _first,
    "samp": _first,
    "var": _first,
    "math": _first,
    "mvar": _first,
    "bigmath": _first,
    "center": _first,
    "centre": _first,
    "abbr": _first,
    "abbrlink": _first,
    "tooltip": _first,
    "vanchor": _first,
    "visible anchor": _first,
    "vr": _first,
    "not a typo": _first,
    "sic": _joined(""),
    "unicode": _first,
    "angbr": _first,
    "keypress": _first,
    "longitem": _last,
    "legend": _second,
    "citation needed span": _first,
    "cn span": _first,
    "clarify span": _first,
    "refnec": _first,
    "référence nécessaire": _first,
    "pas clair": _first,
    "incise": _incise,
    "vol.": _with_prefix("vol."),
    "p.": _with_prefix("p."),
    "numéro": _with_prefix("no"),
    # names and links
    "flag": _first,
    "flagcountry": _first,
    "flagu": _first,
    "ill": _interlanguage_link,
    "interlanguage link": _interlanguage_link,
    "lien": _interlanguage_link,
    "нп3": _ru_interlanguage_link,
    "не переведено 3": _ru_interlanguage_link,
    "sortname": _sortname,
    "sort": _sort,
    "marriage": _marriage,
    "uss": _ship("USS"),
    "hms": _ship("HMS"),
    # quotations
    "quote": _quote,
    "blockquote": _quote,
    "bquote": _quote,
    "cquote": _quote,
    "quotation": _quote,
    "quote box": _quote,
    "zitat": _quote,
    "citation bloc": _quote,
    "encadré": _boxed_text,
    "qi": _quoted,
    "tq": _quoted,
    "quote inline": _quoted,
    # lists
    "hlist": _hlist,
    "flatlist": _first,
    "plainlist": _first,
    "indented plainlist": _first,
    "colonnes": _first,
    "columns-list": _last,
    "unbulleted list": _list_items,
    "ubl": _list_items,
    "bulleted list": _list_items,
    "collapsible list": _list_items,
    "vunblist": _list_items,
    # characters and words
    "'": _constant(_APOS),
    "'s": _constant(f"{_APOS}s"),
    "snd": _constant(" – "),
    "snds": _constant(" – "),
    "spnd": _constant(" – "),
    "sndash": _constant(" – "),
    "spaced ndash": _constant(" – "),
    "spaced en dash": _constant(" – "),
    "ndash": _constant("–"),
    "endash": _constant("–"),
    "en dash": _constant("–"),
    "mdash": _constant("—"),
    "em dash": _constant("—"),
    "mdashb": _constant(" — "),
    "nbsp": _constant(" "),
    "nbs": _constant(" "),
    "thinsp": _constant(" "),
    "thin space": _constant(" "),
    "sp": _constant(" "),
    "space": _constant(" "),
    "spaces": _constant(" "),
    "·": _constant(" · "),
    "dot": _constant(" · "),
    "middot": _constant(" · "),
    "•": _constant(" • "),
    "bull": _constant(" • "),
    ",": _constant(","),
    "=": _constant("="),
    "n/a": _label_or_first("N/A"),
    "na": _label_or_first("N/A"),
    "yes": _label_or_first("Yes"),
    "no": _label_or_first("No"),
    "won": _label_or_first("Won"),
    "nom": _label_or_first("Nominated"),
    "tba": _label_or_first("TBA"),
    "tbd": _label_or_first("TBD"),
    "unknown": _label_or_first("Unknown"),
}
_LANGUAGE_TEMPLATES: Final[dict[str, dict[str, TemplateRenderer]]] = {
    "fr": {"citation": _fr_quote},
}
# fr ordinal templates whose name is their text: {{1er}}, {{23e}}, {{XIXe siècle}}, {{Ier}}
# (case-sensitive roman numerals, so that {{de}} or {{le}} never match).
_FR_ORDINAL_RE: Final = re.compile(
    r"(?:[0-9]+(?:e|er|re|ère|ème|es|ers|res)|[IVXLCDM]{2,}e|[IVXLCDM]+(?:er|re|ers))"
    r"(?: (?:siècle|millénaire))?(?: av\. J\.-C\.)?"
)
_INFOBOX_NAMES: Final = _phrases(
    "taxobox|speciesbox|automatic taxobox|subspeciesbox|infraspeciesbox|virusbox|hybridbox|таксон"
)
_INFOBOX_PREFIXES: Final = ("infobox", "info/", "карточка", "ficha de")
_INFOBOX_SKIP_KEY_RE: Final = re.compile(
    r"\b(?:image\w*|imagem|img|bild|caption|légende|legenda|alt|signature\w*|map\w*|carte|karte"
    r"|coord\w*|coordinates|logo\w*|flag\w*|seal\w*|emblem\w*|pushpin\w*|locator\w*|upright"
    r"|size|width|height|embed|onlysourced|qid|wikidata|photo|insignia|lang|ref|refs"
    r"|footnotes?|footnote \w+|blason|drapeau|charte|latitude|longitude)\b"
    r"|^(?:lat|long)[dms]?$|^(?:latns|longew|child)$"
)
# An infobox value that is a media file name ("Flag of Calvi.svg").
_MEDIA_FILE_RE: Final = re.compile(
    r".*\.(?:jpe?g|png|svg|gif|tiff?|webp|xcf|ogg|ogv|oga|webm|mp3|wav|flac|midi?|pdf|djvu)",
    re.IGNORECASE | re.DOTALL,
)
_MAGIC_VARIABLES_TITLE: Final = _words(
    "pagename pagenamee fullpagename fullpagenamee subpagename basepagename"
)
_CASE_FUNCTIONS: Final[dict[str, Callable[[str], str]]] = {
    "formatnum": lambda value: value,
    "lc": str.lower,
    "uc": str.upper,
    "lcfirst": lambda value: value[:1].lower() + value[1:],
    "ucfirst": lambda value: value[:1].upper() + value[1:],
}
_TEMPLATE_PREFIX_RE: Final = re.compile(
    r"^(?:safesubst:|subst:)?\s*(?:template|modèle|vorlage|predefinição|шаблон|plantilla)\s*:\s*",
    re.IGNORECASE,
)
_NAME_SPACES_RE: Final = re.compile(r"[\s_]+")

# Documentation: the rendered templates (name → what it becomes).
TEMPLATE_POLICY: Final[Mapping[str, str]] = MappingProxyType(
    {
        "convert, cvt": "value + unit as written (ranges kept): '5 km', '5 to 10 km'",
        "unité, unit, val, nombre": "value + unit ('3 km', '1.23×10⁵ m')",
        "formatnum:, fmtn, nts, frac, sfrac, chem": "the number ('1234', '1/2', 'H2O')",
        "lang, langx, lang-xx, langue, native name, transl": "the foreign text",
        "IPA, IPA-xx, IPAc-xx, respell, nihongo": "the pronunciation / native text",
        "birth/death/start/end date (and age), dts, as of": "'14 March 1879' (en), ISO otherwise",
        "date, date-, date de naissance/décès (fr)": "the words as written ('14 mars 1879')",
        "circa, c., floruit, s, siècle, 1er, XIXe siècle (fr)": "'c. 1900', 'XIXe siècle'",
        "nowrap, nobr, small, abbr, math, mvar, sup, sub…": "the wrapped text",
        "quote, blockquote, cquote, zitat, citation bloc": "the quotation as a paragraph",
        "ill, lien, нп3, sortname, sort, flag, marriage": "the visible text",
        "hlist, ubl, plainlist, flatlist": "the items",
        "', snd, mdash, nbsp, ·, yes, no, n/a": "the character or word",
        "ndash": "'–' unspaced, as MediaWiki renders it ({{snd}} is the spaced ' – ')",
        "PAGENAME, lc:, uc:, ucfirst:": "the page title / the cased text",
        "Infobox …, Taxobox, Speciesbox, Info/… (pt), Карточка (ru)": "'key: value' lines",
        "everything else": "dropped (citations, navboxes, hatnotes, maintenance, icons)",
    }
)


def _normalise_template_name(raw: str) -> str:
    name = _TEMPLATE_PREFIX_RE.sub("", raw.replace(_CUT, "").strip())
    return _NAME_SPACES_RE.sub(" ", name).strip().lower()


def _is_infobox(name: str) -> bool:
    return name in _INFOBOX_NAMES or name.startswith(_INFOBOX_PREFIXES)


def _prefix_renderer(name: str, raw_name: str) -> TemplateRenderer | None:
    if name.startswith("lang-"):
        return _first
    if name.startswith("ipac-"):
        return _ipac
    if name.startswith("ipa-"):
        return _first
    if _FR_ORDINAL_RE.fullmatch(raw_name):
        return _ordinal_name
    return None


# --------------------------------------------------------------------------- rendering

_DROPPED_TAGS: Final = _words(
    """
    ref references gallery chem ce score timeline graph mapframe maplink templatedata
    templatestyles imagemap inputbox categorytree includeonly indicator hiero charinsert section
    style script img meta link wbr dynamicpagelist rss
    """
)
_LITERAL_TAGS: Final = frozenset({"nowiki", "pre"})
_PARAGRAPH_TAGS: Final = _words(
    "p div blockquote center pre ul ol dl h1 h2 h3 h4 h5 h6 syntaxhighlight source figure"
)
_TABLE_TAGS: Final = frozenset({"table"})
_LINE_PRESERVING_TAGS: Final = frozenset({"poem", "syntaxhighlight", "source"})
_LINE_TAGS: Final = frozenset({"li", "dt", "dd", "tr"})
_MAGIC_WORD_RE: Final = re.compile(
    r"__(?:NOTOC|TOC|FORCETOC|NOEDITSECTION|NEWSECTIONLINK|NONEWSECTIONLINK|NOGALLERY|HIDDENCAT"
    r"|EXPECTUNUSEDCATEGORY|NOCONTENTCONVERT|NOCC|NOTITLECONVERT|NOTC|INDEX|NOINDEX"
    r"|STATICREDIRECT|DISAMBIG|EXPECTED_UNCONNECTED_PAGE|NOTALK|ARCHIVEDTALK|SOMMAIRE"
    r"|AUCUNSOMMAIRE|PASDESOMMAIRE|FORCERSOMMAIRE|INHALTSVERZEICHNIS|KEIN_INHALTSVERZEICHNIS"
    r"|SEM_TDC|SEMTDC|TDC|ОГЛАВЛЕНИЕ|БЕЗ_ОГЛАВЛЕНИЯ|(?-i:[A-Z]+))__",
    re.IGNORECASE,
)
_ENTITY_RE: Final = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_PIPE_TRICK_PAREN_RE: Final = re.compile(r"\s*\([^()]*\)\s*$")


def _decode_entity(entity: str) -> str:
    char = html.unescape(entity)
    if char == entity:
        return entity
    if char == "'":
        return _APOS
    if char in ("\n", "\t"):
        return " "
    return _CONTROL_RE.sub("", char).replace("\r", "")


def _decode_entities(text: str) -> str:
    if "&" not in text:
        return text
    return _ENTITY_RE.sub(lambda match: _decode_entity(match.group()), text)


@dataclass
class _RawSection:
    level: int
    title: str
    body: str
    infobox: list[str] = field(default_factory=list)


class _Renderer:
    """Walks a mwparserfromhell tree and returns the visible text, still carrying quote markup,
    list markers and the ``_HARD``/``_APOS`` sentinels (see :func:`_finish_blocks`)."""

    def __init__(self, cleaner: WikitextCleaner, title: str) -> None:
        self._cleaner = cleaner
        self._config = cleaner.config
        self.language = cleaner.language
        self._title = title.replace("'", _APOS)
        self.infobox: list[str] = []
        self._handlers: dict[type, Callable[[Any], str]] = {
            Text: self._text,
            Wikilink: self._wikilink,
            Template: self._template,
            Tag: self._tag,
            HTMLEntity: self._entity,
            ExternalLink: self._external_link,
            Heading: self._heading,
            Argument: self._argument,
            Comment: self._nothing,
        }

    def render(self, code: Any) -> str:
        if code is None:
            return ""
        return self.render_nodes(code.nodes)

    def render_nodes(self, nodes: Iterable[Any]) -> str:
        handlers = self._handlers
        parts: list[str] = []
        for node in nodes:
            handler = handlers.get(type(node))
            if handler is not None:
                parts.append(handler(node))
        return "".join(parts)

    # -- simple nodes

    def _nothing(self, node: Any) -> str:
        return ""

    def _text(self, node: Any) -> str:
        value: str = node.value
        return _MAGIC_WORD_RE.sub("", value) if "__" in value else value

    def _entity(self, node: Any) -> str:
        return _decode_entity(str(node))

    def _argument(self, node: Any) -> str:
        return self.render(node.default)

    def _heading(self, node: Any) -> str:
        return f"\n\n{self.render(node.title)}\n\n"

    def _external_link(self, node: Any) -> str:
        if node.brackets and node.title is not None:
            return self.render(node.title)
        return ""

    def _wikilink(self, node: Any) -> str:
        target = str(node.title).replace(_CUT, "")
        if _hidden_link(target):
            return ""
        if node.text is not None:
            if str(node.text).strip():
                return self.render(node.text)
            return _pipe_trick(target.strip().lstrip(":").strip())
        shown = self.render(node.title).strip()
        return shown[1:] if shown.startswith(":") else shown

    # -- templates

    def _template(self, node: Any) -> str:
        raw_name = str(node.name)
        if ":" in raw_name and not _TEMPLATE_PREFIX_RE.match(raw_name.strip()):
            return self._parser_function(node)
        name = _normalise_template_name(raw_name)
        label = _NAME_SPACES_RE.sub(" ", raw_name).strip()
        renderer = self._cleaner.templates.get(name) or _prefix_renderer(name, label)
        if renderer is not None:
            return renderer(_Args(self, node, label))
        if name in _MAGIC_VARIABLES_TITLE:
            return self._title
        if _is_infobox(name):
            self._infobox(node)
        return ""

    def _parser_function(self, node: Any) -> str:
        """``{{formatnum:1234}}``, ``{{lc:…}}``…; other parser functions are dropped."""
        head, _, rest = self.render(node.name).partition(":")
        function = _CASE_FUNCTIONS.get(head.strip().lower())
        return function(rest.strip()) if function is not None else ""

    def _infobox(self, node: Any) -> None:
        if not self._config.include_infobox:
            return
        for key, value in _Args(self, node, "").items():
            label = _finish_fragment(self.render(key).replace("_", " "), " ")
            if not label or _INFOBOX_SKIP_KEY_RE.search(label.lower()):
                continue
            text = _finish_fragment(self.render(value), "; ")
            if text and not _MEDIA_FILE_RE.fullmatch(text):
                self.infobox.append(f"{label}: {text}")

    # -- tags

    def _tag(self, node: Any) -> str:
        name = str(node.tag).strip().lower()
        if node.wiki_markup is not None and name in ("li", "dt", "dd"):
            return str(node.wiki_markup)
        if name in _DROPPED_TAGS:
            return _CUT
        if name in _TABLE_TAGS:
            return self._table(node) if self._config.include_tables else ""
        if name == "br":
            return _HARD
        if name == "hr":
            return "\n\n"
        if name == "math":
            return self._math(node)
        if name in _LITERAL_TAGS:
            literal = _decode_entities(str(node.contents or "")).replace("'", _APOS)
            return f"\n\n{literal.replace(chr(10), _HARD)}\n\n" if name == "pre" else literal
        inner = self.render(node.contents)
        if name == "sup" and _SUPERSCRIPTABLE_RE.fullmatch(inner):
            return inner.translate(_SUPERSCRIPTS)
        if name in _LINE_PRESERVING_TAGS:
            return f"\n\n{inner.strip(chr(10)).replace(chr(10), _HARD)}\n\n"
        if name in _PARAGRAPH_TAGS:
            return f"\n\n{inner}\n\n"
        if name in _LINE_TAGS:
            return f"{_HARD}{inner}{_HARD}"
        return inner

    def _math(self, node: Any) -> str:
        if not self._config.include_math or node.contents is None:
            return ""
        return _linearise_tex(str(node.contents))

    # -- tables

    def _table(self, node: Any) -> str:
        caption: list[str] = []
        rows: list[list[_Cell]] = []
        self._collect_rows(node.contents, rows, caption)
        lines = caption + _linearise_rows(rows)
        return f"\n\n{_HARD.join(lines)}\n\n" if lines else ""

    def _collect_rows(self, code: Any, rows: list[list[_Cell]], caption: list[str]) -> None:
        if code is None:
            return
        loose: list[_Cell] = []
        for child in code.nodes:
            if not isinstance(child, Tag):
                continue
            name = str(child.tag).strip().lower()
            if name == "tr":
                if loose:
                    rows.append(loose)
                    loose = []
                cells = self._row_cells(child.contents)
                if cells:  # MediaWiki drops rows without cells ("|-" twice)
                    rows.append(cells)
            elif name in ("td", "th"):
                cell = self._cell(child, name == "th")
                if name == "td" and str(child.contents or "").lstrip().startswith("+"):
                    caption.append(cell.text.lstrip("+ "))  # "|+ caption"
                else:
                    loose.append(cell)
            elif name == "caption":
                caption.append(self._cell(child, False).text)
            elif name in ("tbody", "thead", "tfoot"):
                self._collect_rows(child.contents, rows, caption)
        if loose:
            rows.append(loose)

    def _row_cells(self, code: Any) -> list[_Cell]:
        cells: list[_Cell] = []
        if code is None:
            return cells
        for child in code.nodes:
            if isinstance(child, Tag):
                name = str(child.tag).strip().lower()
                if name in ("td", "th"):
                    cells.append(self._cell(child, name == "th"))
        return cells

    def _cell(self, tag: Any, header: bool) -> _Cell:
        """A cell's clean text and spans. Attributes the parser could not separate (``|
        colspan="5" {{Template}}``, where the template supplies the ``|``) are read from the
        start of the text and removed."""
        raw = self.render(tag.contents)
        rowspan = _span(tag, "rowspan", _MAX_ROWSPAN)
        colspan = _span(tag, "colspan", _MAX_COLSPAN)
        leading = _CELL_ATTRIBUTES_RE.match(raw)
        if leading is not None:
            raw = raw[leading.end() :]
            rowspan = max(rowspan, _text_span_value(leading.group(1), "rowspan", _MAX_ROWSPAN))
            colspan = max(colspan, _text_span_value(leading.group(1), "colspan", _MAX_COLSPAN))
        text = _finish_fragment(raw, ", ")
        return _Cell(header=header, text=text, rowspan=rowspan, colspan=colspan)


def _hidden_link(target: str) -> bool:
    """Links that show no text: files and images (captions included), categories and
    interlanguage links; a leading colon (``[[:Category:X]]``) makes them ordinary links."""
    target = target.strip()
    if target.startswith(":"):
        return False
    prefix, colon, _ = target.partition(":")
    if not colon:
        return False
    namespace = _NAME_SPACES_RE.sub(" ", prefix).strip().lower()
    return (
        namespace in FILE_NAMESPACES
        or namespace in CATEGORY_NAMESPACES
        or namespace in LANGUAGE_CODES
    )


def _pipe_trick(target: str) -> str:
    """``[[Paris (France)|]]`` → ``Paris``; ``[[Help:Contents|]]`` → ``Contents``."""
    _, colon, rest = target.partition(":")
    shown = rest if colon and rest else target
    stripped = _PIPE_TRICK_PAREN_RE.sub("", shown)
    if stripped == shown:
        stripped = shown.split(",", 1)[0]
    return stripped.strip()


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
    if _hidden_link(target):
        return ""
    target = target.strip().lstrip(":").strip()
    if pipe:
        return label if label.strip() else _pipe_trick(target)
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


def _drop_blocks(text: str) -> str:
    """Remove footnotes and media blocks with their content (the regex path's first step; the
    text is balanced, so every block finds its closing tag)."""
    text = _FALLBACK_DROP_BLOCK_RE.sub(_CUT, text)
    return _FALLBACK_SELF_CLOSING_RE.sub(_CUT, text)


def _fallback_strip(text: str) -> str:
    """Regex/stack based markup removal for text the parser could not handle (blocks already
    removed by :func:`_drop_blocks`)."""
    text = _fallback_brackets(text)
    text = _FALLBACK_EXT_LINK_RE.sub(r"\1", text)
    text = _BARE_URL_RE.sub("", text)
    text = _FALLBACK_BR_RE.sub(_HARD, text)
    text = _FALLBACK_TAG_RE.sub("", text)
    text = _MAGIC_WORD_RE.sub("", text)
    return _decode_entities(text)


def _last_resort(text: str) -> list[Section]:
    """One lead section of the text with every markup character removed."""
    text = _BRUTAL_RE.sub(" ", _CONTROL_RE.sub("", text))
    lines = (_normalise_line(line) for line in text.split("\n"))
    body = "\n".join(line for line in lines if line)
    return [Section(path=(), anchor="", text=body, ordinal=0)] if body else []


def _fallback_sections(text: str) -> list[_RawSection]:
    """The raw sections of prepared text, without the parser."""
    text = _drop_blocks(text)
    sections: list[_RawSection] = []
    pos = 0
    level, title = 0, ""
    for match in _FALLBACK_HEADING_RE.finditer(text):
        sections.append(_RawSection(level, title, _fallback_strip(text[pos : match.start()])))
        level = min(len(match.group(1)), len(match.group(3)))
        title = _finish_fragment(_fallback_strip(match.group(2)), " ")
        pos = match.end()
    sections.append(_RawSection(level, title, _fallback_strip(text[pos:])))
    return sections


class _SectionStream:
    """Builds the raw sections of a page chunk by chunk: parsed chunks through the renderer,
    chunks the parser is not given (see :func:`_parser_friendly`) through the regex stripper."""

    def __init__(self, renderer: _Renderer) -> None:
        self._renderer = renderer
        self._sections: list[_RawSection] = []
        self._current = _RawSection(0, "", "")
        self._parts: list[str] = []
        renderer.infobox = []

    def add_nodes(self, nodes: Iterable[Any]) -> None:
        run: list[Any] = []
        for node in nodes:
            if isinstance(node, Heading):
                self._parts.append(self._renderer.render_nodes(run))
                run = []
                title = _finish_fragment(self._renderer.render(node.title), " ")
                self._start(node.level, title)
            else:
                run.append(node)
        self._parts.append(self._renderer.render_nodes(run))

    def add_stripped(self, text: str) -> None:
        first, *rest = _fallback_sections(text)
        self._parts.append(first.body)
        for section in rest:
            self._start(section.level, section.title)
            self._parts.append(section.body)

    def finish(self) -> list[_RawSection]:
        self._close()
        return self._sections

    def _start(self, level: int, title: str) -> None:
        self._close()
        self._current = _RawSection(level, title, "")

    def _close(self) -> None:
        self._current.body = "".join(self._parts)
        self._current.infobox = self._renderer.infobox
        self._sections.append(self._current)
        self._parts = []
        self._renderer.infobox = []


# --------------------------------------------------------------------------- the cleaner


class WikitextCleaner:
    """Cleans pages with one configuration; :func:`clean_wikitext` keeps one per config."""

    def __init__(self, config: CleanerConfig = CleanerConfig()) -> None:
        self.config = config
        self.language = config.language.strip().lower()
        self.templates: dict[str, TemplateRenderer] = {
            **_COMMON_TEMPLATES,
            **_LANGUAGE_TEMPLATES.get(self.language, {}),
        }
        extra = {_normalise_heading(heading) for heading in config.extra_excluded_headings}
        self._excluded = _ALL_EXCLUDED | extra

    def clean(self, wikitext: str, *, title: str = "") -> list[Section]:
        """Sections of one page (see the module docstring). Never raises on any string."""
        text = wikitext
        try:
            text = _prepare(wikitext)
            return self._assemble(self._tree_sections(text, title))
        except Exception:  # any parser/walker failure (RecursionError…): the regex path
            pass
        try:
            return self._assemble(_fallback_sections(text))
        except Exception:  # should not happen; the text still deserves to be indexed
            return _last_resort(text)

    def clean_inline(self, wikitext: str, *, title: str = "") -> str:
        """One line of wikitext (a heading, a title) → clean text."""
        text = wikitext
        try:
            text = _prepare(wikitext)
            renderer = _Renderer(self, title)
            raw = "".join(
                renderer.render(mwparserfromhell.parse(chunk, skip_style_tags=True))
                if _parser_friendly(chunk)
                else _fallback_strip(_drop_blocks(chunk))
                for chunk in _split_chunks(text)
            )
        except Exception:  # as in clean()
            try:
                raw = _fallback_strip(_drop_blocks(text))
            except Exception:  # as in clean()
                raw = _BRUTAL_RE.sub(" ", _CONTROL_RE.sub("", text))
        return _finish_fragment(raw, " ")

    def is_excluded_heading(self, heading: str) -> bool:
        """Whether a section with this clean heading carries no prose (References…)."""
        key = _normalise_heading(heading)
        if not key:
            return False
        if key in self._excluded:
            return True
        parts = [part for part in _HEADING_CONJUNCTION_RE.split(key) if part]
        return len(parts) > 1 and all(part in self._excluded for part in parts)

    def _tree_sections(self, text: str, title: str) -> list[_RawSection]:
        stream = _SectionStream(_Renderer(self, title))
        for chunk in _split_chunks(text):
            if _parser_friendly(chunk):
                stream.add_nodes(mwparserfromhell.parse(chunk, skip_style_tags=True).nodes)
            else:
                stream.add_stripped(chunk)
        return stream.finish()

    def _assemble(self, raw_sections: list[_RawSection]) -> list[Section]:
        sections: list[Section] = []
        anchors = _AnchorRegistry()
        stack: list[tuple[int, str]] = []
        dropped_level: int | None = None
        for ordinal, raw in enumerate(raw_sections):
            path: tuple[str, ...] = ()
            anchor = ""
            if ordinal:
                while stack and stack[-1][0] >= raw.level:
                    stack.pop()
                stack.append((raw.level, raw.title))
                path = tuple(title for _, title in stack)
                anchor = anchors.add(_anchor_from_text(raw.title))
                if dropped_level is None or raw.level <= dropped_level:
                    dropped_level = raw.level if self.is_excluded_heading(raw.title) else None
                if dropped_level is not None:
                    continue
            text = _finish_text(raw.body)
            if raw.infobox:
                text = f"{text}\n\n" + "\n".join(raw.infobox) if text else "\n".join(raw.infobox)
            if text:
                sections.append(Section(path=path, anchor=anchor, text=text, ordinal=ordinal))
        return sections


def _normalise_heading(heading: str) -> str:
    return " ".join(heading.lower().split()).rstrip(" :")


@lru_cache(maxsize=16)
def _cleaner_for(config: CleanerConfig) -> WikitextCleaner:
    return WikitextCleaner(config)


def clean_wikitext(
    wikitext: str, *, title: str = "", config: CleanerConfig = CleanerConfig()
) -> list[Section]:
    """Clean one page's wikitext into sections (see the module docstring).

    ``title`` fills ``{{PAGENAME}}``. Never raises on any input string.
    """
    return _cleaner_for(config).clean(wikitext, title=title)


def heading_anchor(heading: str) -> str:
    """The URL fragment MediaWiki gives a heading: markup stripped, runs of spaces and
    underscores → one ``_``, Unicode kept (``"Life & work"`` → ``"Life_&_work"``). Duplicate
    headings of one page get ``_2``, ``_3``… from :func:`clean_wikitext`."""
    return _anchor_from_text(_cleaner_for(CleanerConfig()).clean_inline(heading))
