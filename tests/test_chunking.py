"""Passages: ≤ N words, exact slices of their section, never crossing sections, stable ids."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.chunking import ChunkingConfig, PageRef, chunk_sections, split_section
from indexer.models import Passage, Section, parse_passage_id

PAGE = PageRef("enwiki", 736, 1270870723, "Albert Einstein", "2025-01-21T17:03:22Z")

PROSE = (
    "Albert Einstein was a German-born theoretical physicist who is best known for developing "
    "the theory of relativity. Einstein also made important contributions to quantum mechanics. "
    "His mass–energy equivalence formula E = mc2, which arises from special relativity, has "
    'been called "the world\'s most famous equation". He received the 1921 Nobel Prize in '
    "Physics for his services to theoretical physics, and especially for his discovery of the "
    "law of the photoelectric effect.\n\nBorn in the German Empire, Einstein moved to "
    "Switzerland in 1895, forsaking his German citizenship the following year. In 1897, at "
    "the age of seventeen, he enrolled in the mathematics and physics teaching diploma "
    "program at the Swiss federal polytechnic school in Zurich, graduating in 1900."
)


def _words(text: str) -> list[str]:
    return text.split()


def test_every_passage_is_an_exact_slice_within_the_word_limit() -> None:
    config = ChunkingConfig(max_words=40)
    spans = split_section(PROSE, config)
    assert len(spans) >= 3
    for start, end in spans:
        piece = PROSE[start:end]
        assert piece == piece.strip()
        assert 0 < len(_words(piece)) <= 40
    # No overlap by default: the passages cover every word exactly once, in order.
    joined = [w for s, e in spans for w in _words(PROSE[s:e])]
    assert joined == _words(PROSE)


def test_passages_end_at_sentence_boundaries_when_sentences_fit() -> None:
    for start, end in split_section(PROSE, ChunkingConfig(max_words=60)):
        assert re.search(r"[.!?\"]$", PROSE[start:end]), PROSE[start:end]


def test_sizes_are_balanced_rather_than_leaving_a_short_tail() -> None:
    text = " ".join(f"Sentence number {i} has six words." for i in range(22))  # 132 words
    sizes = [len(_words(text[s:e])) for s, e in split_section(text, ChunkingConfig(100))]
    assert len(sizes) == 2
    assert min(sizes) >= 50, sizes


def test_a_sentence_longer_than_the_limit_is_cut_at_word_boundaries() -> None:
    text = " ".join(["word"] * 250) + "."
    spans = split_section(text, ChunkingConfig(max_words=100))
    assert [len(_words(text[s:e])) for s, e in spans] == [84, 84, 82]


def test_overlap_repeats_closing_sentences_without_exceeding_the_limit() -> None:
    config = ChunkingConfig(max_words=40, overlap_words=20)
    spans = split_section(PROSE, config)
    overlaps = 0
    for (_, prev_end), (start, end) in itertools.pairwise(spans):
        assert len(_words(PROSE[start:end])) <= 40
        if start < prev_end:
            overlaps += 1
            assert len(_words(PROSE[start:prev_end])) <= 20
    assert overlaps >= 1


def test_passages_never_cross_sections_and_ids_are_stable() -> None:
    sections = [
        Section((), "", PROSE, 0),
        Section(
            ("Life", "Early life"), "Early_life", "He was born in Ulm. He grew up in Munich.", 2
        ),
    ]
    first = list(chunk_sections(sections, PAGE, ChunkingConfig(max_words=50)))
    second = list(chunk_sections(sections, PAGE, ChunkingConfig(max_words=50)))
    assert first == second
    assert [p.ordinal for p in first] == list(range(len(first)))
    last = first[-1]
    assert last.section_path == ("Life", "Early life")
    assert last.anchor == "Early_life"
    assert last.section_ordinal == 2
    assert last.text == "He was born in Ulm. He grew up in Munich."
    for p in first:
        section = next(s for s in sections if s.ordinal == p.section_ordinal)
        assert section.text[p.start : p.end] == p.text
        assert parse_passage_id(p.passage_id) == ("enwiki", 1270870723, p.ordinal)


def test_malformed_passage_ids_are_rejected_with_the_expected_shape() -> None:
    for bad in ("", "enwiki", "enwiki:12", "enwiki:x:1", ":1:2", "enwiki:1:2:3"):
        with pytest.raises(ValueError, match="WIKI:REVISION_ID:ORDINAL"):
            parse_passage_id(bad)


def test_invalid_configuration_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_words"):
        ChunkingConfig(max_words=0)
    with pytest.raises(ValueError, match="overlap_words"):
        ChunkingConfig(max_words=10, overlap_words=10)
    with pytest.raises(ValueError) as caught:
        ChunkingConfig(max_words=10, overlap_words=-1)
    assert str(caught.value) == "overlap_words must be between 0 and max_words - 1 (9), got -1"


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(
        st.sampled_from([*"ab .!?\n\"'é。", "word", "Dr.", "  ", "\n\n"]), max_size=150
    ).map("".join),
    max_words=st.integers(min_value=1, max_value=30),
)
def test_chunking_invariants_hold_on_arbitrary_text(text: str, max_words: int) -> None:
    spans = split_section(text, ChunkingConfig(max_words=max_words))
    covered: list[str] = []
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        piece = text[start:end]
        assert 1 <= len(_words(piece)) <= max_words
        covered.extend(_words(piece))
        previous_end = end
    # Every character of content is in exactly one passage (a CJK full stop may end a
    # sentence inside a whitespace-delimited "word", so compare characters, not words).
    assert "".join(covered) == "".join(_words(text))


# --------------------------------------------------------------------------- exact packing


def _sentence(words: int, tag: str) -> str:
    """A sentence of exactly ``words`` words, starting with ``tag``."""
    return " ".join([tag] + ["w"] * (words - 1)) + "."


def _paragraph(sizes: list[int], tag: str) -> str:
    return " ".join(_sentence(n, f"{tag}{i}") for i, n in enumerate(sizes))


def _sizes(text: str, config: ChunkingConfig) -> list[int]:
    return [len(_words(text[s:e])) for s, e in split_section(text, config)]


def _pieces(text: str, config: ChunkingConfig) -> list[str]:
    return [text[s:e] for s, e in split_section(text, config)]


@pytest.mark.parametrize(
    ("sentences", "expected"),
    [
        ([5, 5], [10]),  # exactly max_words fits in one passage
        ([4, 4, 4], [8, 4]),  # overshooting the share (6) by 2 = undershooting it by 2: keep
        ([7, 3, 6], [7, 9]),  # overshooting by 2 > undershooting by 1: close before the 3
        ([10], [10]),  # one sentence of exactly max_words is not cut
        ([11], [6, 5]),  # one over-long sentence is cut in balanced pieces
    ],
)
def test_sentences_are_packed_towards_an_equal_share(
    sentences: list[int], expected: list[int]
) -> None:
    text = _paragraph(sentences, "s")
    assert _sizes(text, ChunkingConfig(max_words=10, min_words=0)) == expected


@pytest.mark.parametrize(
    ("paragraphs", "expected"),
    [
        ([[5], [40]], [45]),  # a short paragraph joins its neighbour
        ([[40], [5]], [45]),
        ([[30], [40]], [30, 40]),  # exactly min_words is not short
        ([[40], [50]], [40, 50]),  # two long paragraphs stay apart although both fit
        ([[10], [90]], [100]),  # short, and both fit exactly
        ([[10], [91]], [10, 91]),  # short, but both do not fit
        ([[10], [45, 50]], [10, 95]),
    ],
)
def test_short_paragraphs_join_a_neighbour_only_when_both_fit(
    paragraphs: list[list[int]], expected: list[int]
) -> None:
    text = "\n\n".join(_paragraph(p, f"p{i}s") for i, p in enumerate(paragraphs))
    assert _sizes(text, ChunkingConfig()) == expected


def test_overlap_carries_exactly_the_closing_sentences_that_fit() -> None:
    text = _paragraph([2] * 8, "s")
    assert _pieces(text, ChunkingConfig(max_words=6, overlap_words=4, min_words=0)) == [
        "s0 w. s1 w. s2 w.",
        "s1 w. s2 w. s3 w.",
        "s2 w. s3 w. s4 w.",
        "s3 w. s4 w. s5 w.",
        "s4 w. s5 w. s6 w.",
        "s5 w. s6 w. s7 w.",
    ]
    assert split_section(text, ChunkingConfig(max_words=6, overlap_words=2, min_words=0)) == [
        (0, 17),
        (12, 29),
        (24, 41),
        (36, 47),
    ]
    # When the carried sentences and the next one do not fit, nothing is carried.
    text = _paragraph([2, 2, 2, 4, 2], "s")
    assert _pieces(text, ChunkingConfig(max_words=6, overlap_words=4, min_words=0)) == [
        "s0 w. s1 w. s2 w.",
        "s3 w w w. s4 w.",
    ]


def test_chunk_sections_fills_every_field_from_the_page_and_the_section() -> None:
    lead = (
        "Albert Einstein was a German-born physicist. He developed relativity.\n\n"
        "He received the 1921 Nobel Prize in Physics."
    )
    life = "He was born in Ulm. He grew up in Munich."
    sections = [Section((), "", lead, 0), Section(("Life", "Early life"), "Early_life", life, 2)]
    common = {
        "wiki": "enwiki",
        "page_id": 736,
        "revision_id": 1270870723,
        "title": "Albert Einstein",
        "revision_timestamp": "2025-01-21T17:03:22Z",
    }
    lead_fields = {"section_path": (), "anchor": "", "section_ordinal": 0}
    life_fields = {"section_path": ("Life", "Early life"), "anchor": "Early_life"}
    expected = [
        (lead_fields, 0, 44, "Albert Einstein was a German-born physicist."),
        (lead_fields, 45, 69, "He developed relativity."),
        (lead_fields, 71, 115, "He received the 1921 Nobel Prize in Physics."),
        ({**life_fields, "section_ordinal": 2}, 0, 19, "He was born in Ulm."),
        ({**life_fields, "section_ordinal": 2}, 20, 41, "He grew up in Munich."),
    ]
    passages = list(chunk_sections(sections, PAGE, ChunkingConfig(max_words=8, min_words=1)))
    assert passages == [
        Passage(
            passage_id=f"enwiki:1270870723:{i}",
            ordinal=i,
            start=start,
            end=end,
            text=text,
            **common,  # type: ignore[arg-type]
            **fields,  # type: ignore[arg-type]
        )
        for i, (fields, start, end, text) in enumerate(expected)
    ]
    # The default configuration keeps both sections whole.
    assert [(p.passage_id, p.start, p.end) for p in chunk_sections(sections, PAGE)] == [
        ("enwiki:1270870723:0", 0, 115),
        ("enwiki:1270870723:1", 0, 41),
    ]


def test_the_overlap_counts_every_carried_sentence_against_its_budget() -> None:
    # One-word sentences: a budget of 2 carries two of them, never three.
    text = "One. Two. Three. Four. Five. Six. Seven. Eight."
    assert _pieces(text, ChunkingConfig(max_words=4, overlap_words=2)) == [
        "One. Two. Three. Four.",
        "Three. Four. Five. Six.",
        "Five. Six. Seven. Eight.",
    ]


def test_a_long_sentence_is_cut_within_itself_not_into_the_next() -> None:
    text = "a b c d e f g. h i."
    assert _pieces(text, ChunkingConfig(max_words=3, overlap_words=0)) == [
        "a b c",
        "d e f",
        "g. h i.",
    ]
