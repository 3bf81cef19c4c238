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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
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
from indexer.clean.config import words as _words
from indexer.clean.finish import finish_fragment as _finish_fragment
from indexer.clean.finish import finish_text as _finish_text
from indexer.clean.finish import normalise_line as _normalise_line
from indexer.clean.prepare import prepare as _prepare
from indexer.clean.residue import BRUTAL_RE as _BRUTAL_RE
from indexer.clean.residue import find_markup_residue
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
from indexer.clean.templates import CASE_FUNCTIONS as _CASE_FUNCTIONS
from indexer.clean.templates import COMMON_TEMPLATES as _COMMON_TEMPLATES
from indexer.clean.templates import INFOBOX_SKIP_KEY_RE as _INFOBOX_SKIP_KEY_RE
from indexer.clean.templates import LANGUAGE_TEMPLATES as _LANGUAGE_TEMPLATES
from indexer.clean.templates import MAGIC_VARIABLES_TITLE as _MAGIC_VARIABLES_TITLE
from indexer.clean.templates import MEDIA_FILE_RE as _MEDIA_FILE_RE
from indexer.clean.templates import NAME_SPACES_RE as _NAME_SPACES_RE
from indexer.clean.templates import SUPERSCRIPTABLE_RE as _SUPERSCRIPTABLE_RE
from indexer.clean.templates import SUPERSCRIPTS as _SUPERSCRIPTS
from indexer.clean.templates import TEMPLATE_POLICY, TemplateRenderer
from indexer.clean.templates import TEMPLATE_PREFIX_RE as _TEMPLATE_PREFIX_RE
from indexer.clean.templates import Args as _Args
from indexer.clean.templates import is_infobox as _is_infobox
from indexer.clean.templates import normalise_template_name as _normalise_template_name
from indexer.clean.templates import prefix_renderer as _prefix_renderer
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
