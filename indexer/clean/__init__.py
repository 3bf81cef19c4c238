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
chunks too dense in markup for the parser (garbage only, see
:func:`~indexer.clean.chunks.parser_friendly`). Measured
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

Package layout
==============

One module per concern. A module imports only from the modules listed before it here, so
there are no import cycles:

1. :mod:`~indexer.clean.sentinels`: the control characters that passes leave for later ones
   (``HARD``, ``APOS``, ``CUT``) and the control characters removed from the input
2. :mod:`~indexer.clean.config`: :class:`CleanerConfig` and the word lists (excluded
   headings, file and category namespaces, language codes)
3. :mod:`~indexer.clean.residue`: :func:`find_markup_residue` and the last scrub
4. :mod:`~indexer.clean.tables`: table cells, spans, rows → lines
5. :mod:`~indexer.clean.anchors`: heading anchors, unique within a page
6. :mod:`~indexer.clean.prepare`: step 1, preparation
7. :mod:`~indexer.clean.chunks`: prepared text in pieces for the parser
8. :mod:`~indexer.clean.finish`: step 3, finishing (quotes, list markers, lines)
9. :mod:`~indexer.clean.tex`: ``<math>`` → plain text
10. :mod:`~indexer.clean.templates`: the template renderers and their registry
11. :mod:`~indexer.clean.render`: step 2, the walk of the parsed tree
12. :mod:`~indexer.clean.fallback`: the regex/stack stripper
13. :mod:`~indexer.clean.cleaner`: :class:`WikitextCleaner`, :func:`clean_wikitext`,
    :func:`heading_anchor`

Names without a leading underscore may be imported by the modules after their own; the
public API is what this package exports (``__all__``).
"""

from indexer.clean.cleaner import WikitextCleaner, clean_wikitext, heading_anchor
from indexer.clean.config import (
    CATEGORY_NAMESPACES,
    EXCLUDED_SECTION_HEADINGS,
    FILE_NAMESPACES,
    LANGUAGE_CODES,
    CleanerConfig,
)
from indexer.clean.residue import find_markup_residue
from indexer.clean.templates import TEMPLATE_POLICY

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
