"""Sections → passages: citable slices of at most N words that never cross a section.

A section's clean text is cut at sentence boundaries into passages of at most
``max_words`` words (default 100, as in DPR), one paragraph at a time: a passage does not
cross a paragraph break, except that a paragraph shorter than ``min_words`` joins a neighbour
when both fit (paragraphs are the units Wikipedia's authors wrote, and passages aligned with
them retrieve better: measured in ``benchmarks/RESULTS.md``). The number of passages a
paragraph needs is fixed first (``ceil(words / max_words)``) and sentences are then packed
towards an equal share each, so a 130-word paragraph becomes two passages of about 65 words
rather than 100 + 30: short tails retrieve badly and quote badly. A sentence longer than
``max_words`` is cut at word boundaries. Every passage records ``start``/``end`` offsets
into its section's text, and its text is exactly ``section.text[start:end]``.

Usage::

    >>> from indexer.models import Section
    >>> section = Section(path=("History",), anchor="History", text="One. Two three.", ordinal=1)
    >>> [p.text for p in chunk_sections([section], PageRef("enwiki", 1, 10, "T", ""))]
    ['One. Two three.']
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from indexer.models import Passage, Section, make_passage_id

DEFAULT_MAX_WORDS = 100

_WORD = re.compile(r"\S+")
# A sentence ends at . ! ? … (optionally followed by closing quotes/brackets) before
# whitespace, or at a line break. CJK full stops end a sentence without a space.
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")
_SENTENCE_END = re.compile(r"(?:[.!?…]['\"”’»)\]]*(?=\s)|[。！？]|\n)")


@dataclass(frozen=True, slots=True)
class ChunkingConfig:
    """``max_words``: hard upper bound per passage; ``overlap_words``: words of the previous
    passage's closing sentences repeated at the start of the next (0 = none);
    ``min_words``: a paragraph shorter than this joins a neighbour when both fit."""

    max_words: int = DEFAULT_MAX_WORDS
    overlap_words: int = 0
    min_words: int = 30

    def __post_init__(self) -> None:
        if self.max_words < 1:
            raise ValueError(f"max_words must be ≥ 1, got {self.max_words}")
        if not 0 <= self.overlap_words < self.max_words:
            raise ValueError(
                f"overlap_words must be between 0 and max_words - 1 ({self.max_words - 1}), "
                f"got {self.overlap_words}"
            )


@dataclass(frozen=True, slots=True)
class PageRef:
    """What a passage needs to know about the revision it was cut from."""

    wiki: str
    page_id: int
    revision_id: int
    title: str
    revision_timestamp: str


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int
    words: int


def _sentence_spans(text: str) -> list[_Span]:
    """Sentence spans (without surrounding whitespace) with their word counts."""
    spans: list[_Span] = []
    pos = 0
    for match in _SENTENCE_END.finditer(text):
        _append_trimmed(text, pos, match.end(), spans)
        pos = match.end()
    _append_trimmed(text, pos, len(text), spans)
    return spans


def _append_trimmed(text: str, start: int, end: int, out: list[_Span]) -> None:
    words = list(_WORD.finditer(text, start, end))
    if words:
        out.append(_Span(words[0].start(), words[-1].end(), len(words)))


def _split_long(text: str, span: _Span, max_words: int) -> list[_Span]:
    """Cut one over-long sentence at word boundaries into pieces of ≤ max_words."""
    words = list(_WORD.finditer(text, span.start, span.end))
    pieces = math.ceil(len(words) / max_words)
    size = math.ceil(len(words) / pieces)
    return [
        _Span(chunk[0].start(), chunk[-1].end(), len(chunk))
        for chunk in (words[i : i + size] for i in range(0, len(words), size))
    ]


def split_section(text: str, config: ChunkingConfig = ChunkingConfig()) -> list[tuple[int, int]]:
    """``(start, end)`` character offsets of the passages of one section's text."""
    units: list[_Span] = []
    for sentence in _sentence_spans(text):
        if sentence.words > config.max_words:
            units.extend(_split_long(text, sentence, config.max_words))
        else:
            units.append(sentence)
    groups: list[list[_Span]] = []
    for block in _paragraph_blocks(text, units, config):
        groups.extend(_pack(block, config))
    return [(g[0].start, g[-1].end) for g in groups if g]


def _paragraph_blocks(text: str, units: list[_Span], config: ChunkingConfig) -> list[list[_Span]]:
    """Sentences grouped by paragraph; a paragraph shorter than ``min_words`` joins its
    neighbour when both fit in one passage (a one-line paragraph retrieves badly alone)."""
    blocks: list[list[_Span]] = []
    for unit in units:
        if blocks and not _PARAGRAPH_BREAK.search(text, blocks[-1][-1].end, unit.start):
            blocks[-1].append(unit)
        else:
            blocks.append([unit])
    merged: list[list[_Span]] = []
    for block in blocks:
        if merged:
            before, here = _words_in(merged[-1]), _words_in(block)
            short = min(before, here) < config.min_words
            if short and before + here <= config.max_words:
                merged[-1] = merged[-1] + block
                continue
        merged.append(block)
    return merged


def _words_in(units: list[_Span]) -> int:
    return sum(u.words for u in units)


def _pack(units: list[_Span], config: ChunkingConfig) -> list[list[_Span]]:
    """Pack one paragraph's sentences into ``ceil(words / max_words)`` balanced groups."""
    total = _words_in(units)
    if total == 0:
        return []
    target = total / math.ceil(total / config.max_words)
    groups: list[list[_Span]] = [[]]
    words_in_group = 0
    for unit in units:
        over_max = words_in_group + unit.words > config.max_words
        # Close the group when adding the sentence would overshoot the equal share by more
        # than stopping short of it would undershoot.
        past_target = words_in_group >= target or (
            words_in_group + unit.words - target > target - words_in_group
        )
        if groups[-1] and (over_max or past_target):
            groups.append(_overlap(groups[-1], config.overlap_words))
            words_in_group = _words_in(groups[-1])
            if words_in_group + unit.words > config.max_words:
                groups[-1] = []
                words_in_group = 0
        groups[-1].append(unit)
        words_in_group += unit.words
    return groups


def _overlap(previous: list[_Span], overlap_words: int) -> list[_Span]:
    """The closing sentences of ``previous`` that fit in ``overlap_words``."""
    carried: list[_Span] = []
    count = 0
    for unit in reversed(previous[1:]):  # never carry the whole previous passage
        if count + unit.words > overlap_words:
            break
        carried.insert(0, unit)
        count += unit.words
    return carried


def chunk_sections(
    sections: Iterable[Section], page: PageRef, config: ChunkingConfig = ChunkingConfig()
) -> Iterator[Passage]:
    """Cut a revision's sections into passages with stable ids ``wiki:revision:ordinal``."""
    ordinal = 0
    for section in sections:
        for start, end in split_section(section.text, config):
            yield Passage(
                passage_id=make_passage_id(page.wiki, page.revision_id, ordinal),
                wiki=page.wiki,
                page_id=page.page_id,
                revision_id=page.revision_id,
                title=page.title,
                section_path=section.path,
                anchor=section.anchor,
                section_ordinal=section.ordinal,
                ordinal=ordinal,
                start=start,
                end=end,
                text=section.text[start:end],
                revision_timestamp=page.revision_timestamp,
            )
            ordinal += 1
