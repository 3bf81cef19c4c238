"""Step 2 of the cleaner, the walk of the mwparserfromhell tree (:class:`Renderer`):
visible text, still carrying quote markup, list markers and sentinels; links, tags,
entities, tables and infoboxes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

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

from indexer.clean.config import (
    CATEGORY_NAMESPACES,
    FILE_NAMESPACES,
    LANGUAGE_CODES,
    CleanerConfig,
    words,
)
from indexer.clean.finish import finish_fragment
from indexer.clean.sentinels import APOS, CONTROL_RE, CUT, HARD
from indexer.clean.tables import (
    CELL_ATTRIBUTES_RE,
    MAX_COLSPAN,
    MAX_ROWSPAN,
    Cell,
    linearise_rows,
    span,
    text_span_value,
)
from indexer.clean.templates import (
    CASE_FUNCTIONS,
    INFOBOX_SKIP_KEY_RE,
    MAGIC_VARIABLES_TITLE,
    MEDIA_FILE_RE,
    NAME_SPACES_RE,
    SUPERSCRIPTABLE_RE,
    SUPERSCRIPTS,
    TEMPLATE_PREFIX_RE,
    Args,
    TemplateRenderer,
    is_infobox,
    normalise_template_name,
    prefix_renderer,
)
from indexer.clean.tex import linearise_tex

# --------------------------------------------------------------------------- rendering

_DROPPED_TAGS: Final = words(
    """
    ref references gallery chem ce score timeline graph mapframe maplink templatedata
    templatestyles imagemap inputbox categorytree includeonly indicator hiero charinsert section
    style script img meta link wbr dynamicpagelist rss
    """
)
_LITERAL_TAGS: Final = frozenset({"nowiki", "pre"})
_PARAGRAPH_TAGS: Final = words(
    "p div blockquote center pre ul ol dl h1 h2 h3 h4 h5 h6 syntaxhighlight source figure"
)
_TABLE_TAGS: Final = frozenset({"table"})
_LINE_PRESERVING_TAGS: Final = frozenset({"poem", "syntaxhighlight", "source"})
_LINE_TAGS: Final = frozenset({"li", "dt", "dd", "tr"})
MAGIC_WORD_RE: Final = re.compile(
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
        return APOS
    if char in ("\n", "\t"):
        return " "
    return CONTROL_RE.sub("", char).replace("\r", "")


def decode_entities(text: str) -> str:
    if "&" not in text:
        return text
    return _ENTITY_RE.sub(lambda match: _decode_entity(match.group()), text)


@dataclass
class RawSection:
    level: int
    title: str
    body: str
    infobox: list[str] = field(default_factory=list)


class CleanerSettings(Protocol):
    """What a :class:`Renderer` reads from the
    :class:`~indexer.clean.cleaner.WikitextCleaner` it renders for."""

    config: CleanerConfig
    language: str
    templates: dict[str, TemplateRenderer]


class Renderer:
    """Walks a mwparserfromhell tree and returns the visible text, still carrying quote markup,
    list markers and the ``HARD``/``APOS`` sentinels (see ``_finish_blocks`` in
    :mod:`indexer.clean.finish`)."""

    def __init__(self, cleaner: CleanerSettings, title: str) -> None:
        self._cleaner = cleaner
        self._config = cleaner.config
        self.language = cleaner.language
        self._title = title.replace("'", APOS)
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
        return MAGIC_WORD_RE.sub("", value) if "__" in value else value

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
        target = str(node.title).replace(CUT, "")
        if hidden_link(target):
            return ""
        if node.text is not None:
            if str(node.text).strip():
                return self.render(node.text)
            return pipe_trick(target.strip().lstrip(":").strip())
        shown = self.render(node.title).strip()
        return shown[1:] if shown.startswith(":") else shown

    # -- templates

    def _template(self, node: Any) -> str:
        raw_name = str(node.name)
        if ":" in raw_name and not TEMPLATE_PREFIX_RE.match(raw_name.strip()):
            return self._parser_function(node)
        name = normalise_template_name(raw_name)
        label = NAME_SPACES_RE.sub(" ", raw_name).strip()
        renderer = self._cleaner.templates.get(name) or prefix_renderer(name, label)
        if renderer is not None:
            return renderer(Args(self, node, label))
        if name in MAGIC_VARIABLES_TITLE:
            return self._title
        if is_infobox(name):
            self._infobox(node)
        return ""

    def _parser_function(self, node: Any) -> str:
        """``{{formatnum:1234}}``, ``{{lc:…}}``…; other parser functions are dropped."""
        head, _, rest = self.render(node.name).partition(":")
        function = CASE_FUNCTIONS.get(head.strip().lower())
        return function(rest.strip()) if function is not None else ""

    def _infobox(self, node: Any) -> None:
        if not self._config.include_infobox:
            return
        for key, value in Args(self, node, "").items():
            label = finish_fragment(self.render(key).replace("_", " "), " ")
            if not label or INFOBOX_SKIP_KEY_RE.search(label.lower()):
                continue
            text = finish_fragment(self.render(value), "; ")
            if text and not MEDIA_FILE_RE.fullmatch(text):
                self.infobox.append(f"{label}: {text}")

    # -- tags

    def _tag(self, node: Any) -> str:
        name = str(node.tag).strip().lower()
        if node.wiki_markup is not None and name in ("li", "dt", "dd"):
            return str(node.wiki_markup)
        if name in _DROPPED_TAGS:
            return CUT
        if name in _TABLE_TAGS:
            return self._table(node) if self._config.include_tables else ""
        if name == "br":
            return HARD
        if name == "hr":
            return "\n\n"
        if name == "math":
            return self._math(node)
        if name in _LITERAL_TAGS:
            literal = decode_entities(str(node.contents or "")).replace("'", APOS)
            return f"\n\n{literal.replace(chr(10), HARD)}\n\n" if name == "pre" else literal
        inner = self.render(node.contents)
        if name == "sup" and SUPERSCRIPTABLE_RE.fullmatch(inner):
            return inner.translate(SUPERSCRIPTS)
        if name in _LINE_PRESERVING_TAGS:
            return f"\n\n{inner.strip(chr(10)).replace(chr(10), HARD)}\n\n"
        if name in _PARAGRAPH_TAGS:
            return f"\n\n{inner}\n\n"
        if name in _LINE_TAGS:
            return f"{HARD}{inner}{HARD}"
        return inner

    def _math(self, node: Any) -> str:
        if not self._config.include_math or node.contents is None:
            return ""
        return linearise_tex(str(node.contents))

    # -- tables

    def _table(self, node: Any) -> str:
        caption: list[str] = []
        rows: list[list[Cell]] = []
        self._collect_rows(node.contents, rows, caption)
        lines = caption + linearise_rows(rows)
        return f"\n\n{HARD.join(lines)}\n\n" if lines else ""

    def _collect_rows(self, code: Any, rows: list[list[Cell]], caption: list[str]) -> None:
        if code is None:
            return
        loose: list[Cell] = []
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

    def _row_cells(self, code: Any) -> list[Cell]:
        cells: list[Cell] = []
        if code is None:
            return cells
        for child in code.nodes:
            if isinstance(child, Tag):
                name = str(child.tag).strip().lower()
                if name in ("td", "th"):
                    cells.append(self._cell(child, name == "th"))
        return cells

    def _cell(self, tag: Any, header: bool) -> Cell:
        """A cell's clean text and spans. Attributes the parser could not separate (``|
        colspan="5" {{Template}}``, where the template supplies the ``|``) are read from the
        start of the text and removed."""
        raw = self.render(tag.contents)
        rowspan = span(tag, "rowspan", MAX_ROWSPAN)
        colspan = span(tag, "colspan", MAX_COLSPAN)
        leading = CELL_ATTRIBUTES_RE.match(raw)
        if leading is not None:
            raw = raw[leading.end() :]
            rowspan = max(rowspan, text_span_value(leading.group(1), "rowspan", MAX_ROWSPAN))
            colspan = max(colspan, text_span_value(leading.group(1), "colspan", MAX_COLSPAN))
        text = finish_fragment(raw, ", ")
        return Cell(header=header, text=text, rowspan=rowspan, colspan=colspan)


def hidden_link(target: str) -> bool:
    """Links that show no text: files and images (captions included), categories and
    interlanguage links; a leading colon (``[[:Category:X]]``) makes them ordinary links."""
    target = target.strip()
    if target.startswith(":"):
        return False
    prefix, colon, _ = target.partition(":")
    if not colon:
        return False
    namespace = NAME_SPACES_RE.sub(" ", prefix).strip().lower()
    return (
        namespace in FILE_NAMESPACES
        or namespace in CATEGORY_NAMESPACES
        or namespace in LANGUAGE_CODES
    )


def pipe_trick(target: str) -> str:
    """``[[Paris (France)|]]`` → ``Paris``; ``[[Help:Contents|]]`` → ``Contents``."""
    _, colon, rest = target.partition(":")
    shown = rest if colon and rest else target
    stripped = _PIPE_TRICK_PAREN_RE.sub("", shown)
    if stripped == shown:
        stripped = shown.split(",", 1)[0]
    return stripped.strip()
