"""The cleaner: :class:`WikitextCleaner` (prepare, parse in chunks, render, finish, with
the regex fallback), :func:`clean_wikitext` and :func:`heading_anchor`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import mwparserfromhell
from mwparserfromhell.nodes import Heading

from indexer.clean.anchors import AnchorRegistry, anchor_from_text
from indexer.clean.chunks import parser_friendly, split_chunks
from indexer.clean.config import ALL_EXCLUDED, HEADING_CONJUNCTION_RE, CleanerConfig
from indexer.clean.fallback import drop_blocks, fallback_sections, fallback_strip, last_resort
from indexer.clean.finish import finish_fragment, finish_text
from indexer.clean.prepare import prepare
from indexer.clean.render import RawSection, Renderer
from indexer.clean.residue import BRUTAL_RE
from indexer.clean.sentinels import CONTROL_RE
from indexer.clean.templates import COMMON_TEMPLATES, LANGUAGE_TEMPLATES, TemplateRenderer
from indexer.models import Section


class _SectionStream:
    """Builds the raw sections of a page chunk by chunk: parsed chunks through the renderer,
    chunks the parser is not given (see :func:`~indexer.clean.chunks.parser_friendly`)
    through the regex stripper."""

    def __init__(self, renderer: Renderer) -> None:
        self._renderer = renderer
        self._sections: list[RawSection] = []
        self._current = RawSection(0, "", "")
        self._parts: list[str] = []
        renderer.infobox = []

    def add_nodes(self, nodes: Iterable[Any]) -> None:
        run: list[Any] = []
        for node in nodes:
            if isinstance(node, Heading):
                self._parts.append(self._renderer.render_nodes(run))
                run = []
                title = finish_fragment(self._renderer.render(node.title), " ")
                self._start(node.level, title)
            else:
                run.append(node)
        self._parts.append(self._renderer.render_nodes(run))

    def add_stripped(self, text: str) -> None:
        first, *rest = fallback_sections(text)
        self._parts.append(first.body)
        for section in rest:
            self._start(section.level, section.title)
            self._parts.append(section.body)

    def finish(self) -> list[RawSection]:
        self._close()
        return self._sections

    def _start(self, level: int, title: str) -> None:
        self._close()
        self._current = RawSection(level, title, "")

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
            **COMMON_TEMPLATES,
            **LANGUAGE_TEMPLATES.get(self.language, {}),
        }
        extra = {_normalise_heading(heading) for heading in config.extra_excluded_headings}
        self._excluded = ALL_EXCLUDED | extra

    def clean(self, wikitext: str, *, title: str = "") -> list[Section]:
        """Sections of one page (see the :mod:`indexer.clean` docstring). Never raises on
        any string."""
        text = wikitext
        try:
            text = prepare(wikitext)
            return self._assemble(self._tree_sections(text, title))
        except Exception:  # any parser/walker failure (RecursionError…): the regex path
            pass
        try:
            return self._assemble(fallback_sections(text))
        except Exception:  # should not happen; the text still deserves to be indexed
            return last_resort(text)

    def clean_inline(self, wikitext: str, *, title: str = "") -> str:
        """One line of wikitext (a heading, a title) → clean text."""
        text = wikitext
        try:
            text = prepare(wikitext)
            renderer = Renderer(self, title)
            raw = "".join(
                renderer.render(mwparserfromhell.parse(chunk, skip_style_tags=True))
                if parser_friendly(chunk)
                else fallback_strip(drop_blocks(chunk))
                for chunk in split_chunks(text)
            )
        except Exception:  # as in clean()
            try:
                raw = fallback_strip(drop_blocks(text))
            except Exception:  # as in clean()
                raw = BRUTAL_RE.sub(" ", CONTROL_RE.sub("", text))
        return finish_fragment(raw, " ")

    def is_excluded_heading(self, heading: str) -> bool:
        """Whether a section with this clean heading carries no prose (References…)."""
        key = _normalise_heading(heading)
        if not key:
            return False
        if key in self._excluded:
            return True
        parts = [part for part in HEADING_CONJUNCTION_RE.split(key) if part]
        return len(parts) > 1 and all(part in self._excluded for part in parts)

    def _tree_sections(self, text: str, title: str) -> list[RawSection]:
        stream = _SectionStream(Renderer(self, title))
        for chunk in split_chunks(text):
            if parser_friendly(chunk):
                stream.add_nodes(mwparserfromhell.parse(chunk, skip_style_tags=True).nodes)
            else:
                stream.add_stripped(chunk)
        return stream.finish()

    def _assemble(self, raw_sections: list[RawSection]) -> list[Section]:
        sections: list[Section] = []
        anchors = AnchorRegistry()
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
                anchor = anchors.add(anchor_from_text(raw.title))
                if dropped_level is None or raw.level <= dropped_level:
                    dropped_level = raw.level if self.is_excluded_heading(raw.title) else None
                if dropped_level is not None:
                    continue
            text = finish_text(raw.body)
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
    """Clean one page's wikitext into sections (see the :mod:`indexer.clean` docstring).

    ``title`` fills ``{{PAGENAME}}``. Never raises on any input string.
    """
    return _cleaner_for(config).clean(wikitext, title=title)


def heading_anchor(heading: str) -> str:
    """The URL fragment MediaWiki gives a heading: markup stripped, runs of spaces and
    underscores → one ``_``, Unicode kept (``"Life & work"`` → ``"Life_&_work"``). Duplicate
    headings of one page get ``_2``, ``_3``… from :func:`clean_wikitext`."""
    return anchor_from_text(_cleaner_for(CleanerConfig()).clean_inline(heading))
