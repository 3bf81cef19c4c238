"""Attribute an AI answer: for each of its sentences, find and cite the Wikipedia passages
that support it.

Pipeline (:class:`AnswerAttributor`):

1. :func:`split_sentences` cuts the answer into sentences with their character offsets
   (abbreviations such as "Dr.", "e.g.", "z. B.", "т. е.", initials, decimals and German
   ordinals such as "14. März" do not end a sentence).
2. Candidates per sentence: the passages the answer engine was given (``passage_ids``),
   checked first; then, unless a given passage already supports the sentence (or
   ``search_fallback`` is off), the best passages of the whole index
   (:class:`~app.retrieval.retriever.HybridRetriever`).
3. A :class:`SupportScorer` scores each (sentence, passage) pair in [0, 1] and picks the quote:
   the passage window (one or two of its sentences) that covers most of the sentence's
   stemmed content words. The default, :class:`LexicalDenseScorer`, averages that coverage
   (:func:`indexer.lexical.query_terms` / :func:`~indexer.lexical.tokenize`) and the cosine
   of the sentence's embedding with the passage's stored vector (nothing but the sentence is
   embedded); across languages the score is the cosine alone. A packaged cross-encoder or
   NLI model can replace it: implement :class:`SupportScorer`.
4. Agreement checks, independent of the scorer: every number (years, dates, amounts) of the
   sentence must appear in the quote (title included), every capitalised name in the passage
   (not in German, where every noun is capitalised), and the quote must keep most of the
   sentence's word order (:data:`MIN_WORD_ORDER`); a failed check, or a passage in another
   language, caps the label at ``partial``. The contradiction rules
   (:mod:`app.attribution.judgement`) say whether the passage states otherwise.
5. Labels from the score: ``contradicted`` when a passage at least
   :data:`CONTRADICTED_THRESHOLD` close says otherwise, ``supported`` ≥ the supported
   threshold, ``partial`` ≥ the partial one, else ``unsupported`` (per embedding model:
   :func:`thresholds_for`; see ``benchmarks/RESULTS.md``).
6. :func:`footnote` rewrites the answer with ``[n]`` markers after supported sentences and a
   numbered reference list, each reference a full attribution (:func:`build_attribution`).
"""

from __future__ import annotations

import html
import itertools
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from app.attribution.judgement import Disagreement, find_disagreement, word_order
from app.attribution.license import Attribution, build_attribution
from app.attribution.present import trust_view
from app.retrieval.ranking import SearchRequest
from app.retrieval.retriever import HybridRetriever
from indexer.embedding import EmbeddingModel
from indexer.lexical import analyzer_group, query_terms, tokenize
from indexer.models import parse_passage_id
from indexer.store import PassageRecord, PassageStore

__all__ = [
    "CONTRADICTED_THRESHOLD",
    "PARTIAL_THRESHOLD",
    "SUPPORTED_THRESHOLD",
    "AnswerAttribution",
    "AnswerAttributor",
    "AttributeOptions",
    "Citation",
    "Footnoted",
    "LexicalDenseScorer",
    "Reference",
    "SentenceAttribution",
    "SentenceSpan",
    "SupportLabel",
    "SupportResult",
    "SupportScorer",
    "check_agreement",
    "cross_language",
    "footnote",
    "numbers_in",
    "sentence_label",
    "split_sentences",
]

# Calibrated by `python -m benchmarks.attribution_eval` (app/evaluation/attribution.py: 240 real
# sentences, 40 per kind, from 5 indexed articles in en/simple/fr/ru and 7 held-out articles;
# thresholds chosen on the calibration half) — see the attribution section of
# benchmarks/RESULTS.md. On the report half (136 sentences): `supported` precision 1.0 and
# recall 1.0 (verbatim, words dropped, clauses reordered), 0 % of held-out, changed-number and
# changed-name sentences labelled supported, top-1 cited passage 1.0. Best scores: positives
# ≥ 0.78, held-out sentences ≤ 0.35; changed numbers and names score 0.78–0.99 and are caught
# by the agreement checks, not by the score. Paraphrases are not measured yet.
SUPPORTED_THRESHOLD = 0.64
PARTIAL_THRESHOLD = 0.49
# A passage this close to the claim is on the same matter: if it says otherwise
# (app.attribution.judgement), the claim is contradicted.
CONTRADICTED_THRESHOLD = 0.6

# (supported, partial, contradicted) thresholds per embedding model. multilingual-e5-small's
# cosines run high (a sentence and an unrelated passage score ~0.8), so its thresholds are
# higher; chosen on data/samples/attribution/claims-dev.jsonl over the sample index
# (benchmarks/RESULTS.md, "attribution-claims"): at supported ≥ 0.88, 1 of 96 contradicted or
# unsupported claims comes back supported (supported recall 0.41); at 0.85, 5 (recall 0.53);
# at 0.75, 5 (recall 0.76). A false "supported" is the worst error, so 0.88. Other models keep
# the thresholds calibrated for all-MiniLM-L6-v2 above (on the same claims: 5 of 96, recall
# 0.76).
MODEL_THRESHOLDS: dict[str, tuple[float, float, float]] = {
    "intfloat/multilingual-e5-small": (0.88, 0.65, 0.6),
}
DEFAULT_THRESHOLDS = (SUPPORTED_THRESHOLD, PARTIAL_THRESHOLD, CONTRADICTED_THRESHOLD)


def thresholds_for(model_id: str) -> tuple[float, float, float]:
    """The (supported, partial, contradicted) thresholds for scores of ``model_id``.

    >>> thresholds_for("intfloat/multilingual-e5-small"), thresholds_for("other")
    ((0.88, 0.65, 0.6), (0.64, 0.49, 0.6))
    """
    return MODEL_THRESHOLDS.get(model_id, DEFAULT_THRESHOLDS)


class SupportLabel(StrEnum):
    """``supported``: a passage states it; ``partial``: a passage states some of it (the
    quote is the part it backs; ``missing_numbers`` / ``missing_names`` what it does not);
    ``contradicted``: a passage on the same matter states otherwise (``disagreement`` says
    what); ``unsupported``: nothing in the index bears on it."""

    SUPPORTED = "supported"
    PARTIAL = "partial"
    CONTRADICTED = "contradicted"
    UNSUPPORTED = "unsupported"


# -- sentence splitting -----------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that end with a period without ending the sentence (lower case, without the final
# period), per language; the splitter uses all of them (answers mix languages little, and a
# missed split costs less than a wrong one).
ABBREVIATIONS: dict[str, frozenset[str]] = {
    "en": _words(
        "mr mrs ms dr prof st jr sr vs etc e.g i.e inc ltd co corp no nos vol fig figs approx "
        "ca cf al gen col lt sgt capt gov sen rep rev hon mt ft jan feb mar apr jun jul aug "
        "sep sept oct nov dec u.s u.k a.m p.m b.c a.d ph.d est dept univ op ed eds pp p"
    ),
    "fr": _words("m mm mme mmes mlle dr st ste av apr env cf etc p ex n° vol éd chap"),
    "de": _words(
        "z.b d.h bzw usw dr nr ca u.a s vgl evtl geb gest jh jhd str hr fr prof bd u.ä o.ä "
        "z u a d h ggf inkl sog ebd"
    ),
    "pt": _words("sr sra srs dr dra av etc pág p ex nº n.º prof séc cap"),
    "ru": _words(
        "т.е т.д т.п т.к т г гг им ул др пр см тыс млн млрд в вв н.э до.н.э н э е д п к с "
        "проф акад род ок"
    ),
}
_ALL_ABBREVIATIONS = frozenset().union(*ABBREVIATIONS.values())
# German (and other) ordinal days before a month: "am 14. März 1879".
_MONTHS_AFTER_ORDINAL = _words(
    "januar jänner februar märz april mai juni juli august september oktober november "
    "dezember jahrhundert jh"
)

_TERMINATOR = re.compile(r"[.!?…]+(?:[ \u00a0\u202f]?[\"'”’»)\]])*(?=\s|$)|\n\s*\n|\n")
_WORD_BEFORE = re.compile(r"([\w.°º-]+)\.+$")


@dataclass(frozen=True, slots=True)
class SentenceSpan:
    """A sentence of a text and its character offsets (``text == source[start:end]``)."""

    text: str
    start: int
    end: int


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the period at ``text[dot]`` belongs to an abbreviation or an initial."""
    match = _WORD_BEFORE.search(text, max(0, dot - 40), dot + 1)
    if match is None:
        return False
    word = match.group(1).lower().strip("-")
    if not word:
        return False
    if word in _ALL_ABBREVIATIONS:
        return True
    last = word.rsplit(".", 1)[-1]
    if len(last) == 1 and last.isalpha():  # an initial ("J. R. R. Tolkien") or "e.g"-like
        return True
    if "." in word and all(len(part) <= 2 for part in word.split(".")):  # "u.s", "z.b"
        return True
    if word.isdigit() and len(word) <= 2:  # a German ordinal, if a month or lower case follows
        following = text[dot + 1 :].lstrip()
        next_word = re.match(r"\w+", following)
        if next_word is None:
            return False
        word_after = next_word.group(0)
        return word_after.lower() in _MONTHS_AFTER_ORDINAL or word_after.islower()
    return False


def split_sentences(text: str) -> list[SentenceSpan]:
    """The sentences of ``text`` with their offsets; whitespace between them is left out.

    >>> [s.text for s in split_sentences("Dr. Smith paid 3.5 dollars, e.g. coins. Then he left!")]
    ['Dr. Smith paid 3.5 dollars, e.g. coins.', 'Then he left!']
    >>> [s.text for s in split_sentences("Einstein wurde am 14. März 1879 geboren. Er starb.")]
    ['Einstein wurde am 14. März 1879 geboren.', 'Er starb.']
    """
    spans: list[SentenceSpan] = []
    start = 0
    for match in _TERMINATOR.finditer(text):
        end = match.end()
        if match.group(0)[0] not in "\n":
            following = text[end:].lstrip()
            if (
                following
                and not (following[0].isupper() or following[0].isdigit())
                and following[0] not in "\"'“‘«([¿¡—–-"
            ):
                continue  # lower case after the period: not a sentence end
            if match.group(0)[0] == "." and _is_abbreviation(text, match.start()):
                continue
        _add_span(spans, text, start, end)
        start = end
    _add_span(spans, text, start, len(text))
    return spans


def _add_span(spans: list[SentenceSpan], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start and any(c.isalnum() for c in text[start:end]):
        spans.append(SentenceSpan(text[start:end], start, end))


# -- agreement of numbers and names --------------------------------------------------------------

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_THOUSANDS = re.compile(r"\d{1,3}(?:[.,]\d{3})+")
_NAME = re.compile(r"[^\W\d_][\w'’-]*")


def numbers_in(text: str) -> set[str]:
    """The numbers of ``text``, normalised: thousands separators removed, decimal comma → dot.

    >>> sorted(numbers_in("In 1921, 3,5 % of 12,000 people (1.5 m)"))
    ['1.5', '12000', '1921', '3.5']
    """
    out: set[str] = set()
    for raw in _NUMBER.findall(text):
        if _THOUSANDS.fullmatch(raw):
            out.add(re.sub(r"[.,]", "", raw))
        else:
            out.add(raw.replace(",", "."))
    return out


def names_in(sentence: str) -> list[str]:
    """Capitalised words of ``sentence`` other than its first word (names, mostly), without
    a possessive ending.

    >>> names_in("He built on Kant's idealism and Hegel’s logic in Berlin.")
    ['Kant', 'Hegel', 'Berlin']
    """
    words = list(_NAME.finditer(sentence))
    return [re.sub(r"['’]s$", "", m.group(0)) for m in words[1:] if m.group(0)[0].isupper()]


@dataclass(frozen=True, slots=True)
class Agreement:
    """What the sentence states that the passage does not contain, and how much of the
    sentence's word order the quote keeps (:func:`~app.attribution.judgement.word_order`)."""

    missing_numbers: tuple[str, ...] = ()
    missing_names: tuple[str, ...] = ()
    word_order: float = 1.0
    # The passage is in another language: only names and numbers were compared, so the
    # passage can back the sentence at most partly (its cosine alone cannot tell a
    # translation from a false claim on the same subject).
    cross_language: bool = False

    @property
    def reordered(self) -> bool:
        """The quote has the sentence's words in another order: they may relate otherwise."""
        return self.word_order < MIN_WORD_ORDER

    @property
    def ok(self) -> bool:
        return (
            not self.missing_numbers
            and not self.missing_names
            and not self.reordered
            and not self.cross_language
        )


# Below this share of word pairs in the sentence's order, a quote does not support the
# sentence (at most partly). Chosen on claims-dev.jsonl: of the claims the score labels
# supported, the contradicted ones keep 0.20–1.0 of their order (6 of 9 below 0.7), the
# supported ones 0.30–1.0 (3 of 41 below 0.6).
MIN_WORD_ORDER = 0.6


def check_agreement(
    sentence: str,
    passage: PassageRecord,
    window: tuple[int, int] | None = None,
    *,
    cross: bool = False,
) -> Agreement:
    """Numbers of ``sentence`` missing from the quoted ``window`` of the passage (default:
    all of it), its title and section headings, and (outside German) capitalised names
    missing from the whole passage.

    Numbers from the window, not the whole passage: a sentence that says 1921 is not
    supported by a passage whose matching sentence says 1922 and that mentions 1921
    elsewhere. Names from the whole passage: a restatement names in one sentence what the
    passage names in the one before ("Einstein … He received")."""
    start, end = window if window is not None else (0, len(passage.text))
    heading = " ".join([passage.title, *passage.section_path])
    numbers = numbers_in(sentence) - numbers_in(f"{heading} {passage.text[start:end]}")
    missing_names: list[str] = []
    if not passage.language.lower().startswith("de"):
        tokens = set(tokenize(f"{heading} {passage.text}", passage.language))
        for name in names_in(sentence):
            name_tokens = tokenize(name, passage.language)
            if name_tokens and not all(t in tokens for t in name_tokens):
                missing_names.append(name)
    quote = passage.text[start:end]
    return Agreement(
        tuple(sorted(numbers)),
        tuple(missing_names),
        word_order(sentence, quote),
        cross_language=cross,
    )


# -- scoring ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SupportResult:
    """How well one passage supports one sentence: ``score`` in [0, 1], the quoted window
    (``passage.text[quote_start:quote_end]``) and the components of the score."""

    score: float
    quote_start: int
    quote_end: int
    components: dict[str, float] = field(default_factory=dict)


class SupportScorer(Protocol):
    """Scores (sentence, passage) pairs. A packaged cross-encoder or NLI model can implement
    this (entailment probability as ``score``; quote window from :func:`best_window`)."""

    name: str

    def score(
        self, sentence: str, passages: Sequence[PassageRecord], language: str | None = None
    ) -> list[SupportResult]:
        """One result per passage, in order; ``language``: the sentence's, when known."""
        ...


def cross_language(sentence_language: str | None, passage: PassageRecord) -> bool:
    """Whether the sentence and the passage are in languages that do not share words (and a
    stemmer): then only names and numbers can be compared word for word.

    """
    if sentence_language is None:
        return False
    return analyzer_group(sentence_language) != analyzer_group(passage.language)


def _windows(text: str) -> list[tuple[int, int]]:
    """Candidate quotes of a passage: each of its sentences, and each two consecutive ones."""
    spans = split_sentences(text)
    if not spans:
        return [(0, len(text))]
    windows = [(s.start, s.end) for s in spans]
    windows += [(a.start, b.end) for a, b in itertools.pairwise(spans)]
    return windows


def coverage(terms: Sequence[str], tokens: set[str]) -> float:
    """Share of the distinct ``terms`` found in ``tokens`` (1.0 when there are no terms)."""
    distinct = set(terms)
    if not distinct:
        return 0.0
    return sum(1 for t in distinct if t in tokens) / len(distinct)


def best_window(
    sentence: str, passage: PassageRecord, *, cross: bool = False
) -> tuple[int, int, float]:
    """The window of ``passage`` that covers most of the sentence's content words (the
    shorter one on a tie): ``(start, end, coverage)``. Across languages (``cross``) only the
    sentence's names and numbers are looked for, and with none of them there, the quote is
    the whole passage."""
    if cross:
        terms = tokenize(" ".join([*names_in(sentence), *numbers_in(sentence)]), passage.language)
        if not terms:
            return (0, len(passage.text), 0.0)
    else:
        terms = query_terms(sentence, passage.language)
    best = (0, len(passage.text), -1.0)
    for start, end in _windows(passage.text):
        cov = coverage(terms, set(tokenize(passage.text[start:end], passage.language)))
        if cov > best[2] or (cov == best[2] and end - start < best[1] - best[0]):
            best = (start, end, cov)
    return best


def _word_sequence(text: str) -> tuple[str, ...]:
    """The words of ``text``, lower-cased, punctuation and spacing left out."""
    return tuple(w.lower() for w in re.findall(r"\w+", text))


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    """Whether ``needle`` occurs in ``haystack`` as a contiguous run."""
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


class LexicalDenseScorer:
    """``score = lexical_weight · coverage + (1 − lexical_weight) · cosine``: the coverage of
    the sentence's stemmed content words by the passage's best window (the quote), and the
    cosine of the sentence's embedding with the passage's own vector.

    The passage's vector is the one the index stores (``similarities``, default
    :meth:`~app.retrieval.retriever.HybridRetriever.passage_similarities`), so scoring embeds
    nothing but the sentence, whose vector its search already computed: embedding each
    candidate's window as well cost ~25 model calls per 5-sentence answer (1.6 s of its 1.7 s
    with multilingual-e5-small), and the passage's cosine separates the claims of
    ``claims-dev.jsonl`` as well as the window's did (benchmarks/RESULTS.md,
    "attribution-claims").
    """

    name = "lexical-dense"

    def __init__(
        self,
        embedder: EmbeddingModel,
        lexical_weight: float = 0.5,
        *,
        encode: Callable[[str], npt.NDArray[np.float32]] | None = None,
        similarities: Callable[[npt.NDArray[np.float32], Sequence[PassageRecord]], list[float]]
        | None = None,
    ) -> None:
        self.embedder = embedder
        self.lexical_weight = lexical_weight
        self._encode = encode or embedder.encode_query
        self._similarities = similarities or self._embedded_similarities

    def _embedded_similarities(
        self, vector: npt.NDArray[np.float32], passages: Sequence[PassageRecord]
    ) -> list[float]:
        """Cosines with the passages embedded here (no index at hand)."""
        vectors = self.embedder.encode([p.text for p in passages])
        return [float(v @ vector) for v in vectors]

    def score(
        self, sentence: str, passages: Sequence[PassageRecord], language: str | None = None
    ) -> list[SupportResult]:
        """Across languages (:func:`cross_language`) the words cannot be compared, so the
        score is the cosine alone."""
        if not passages:
            return []
        crosses = [cross_language(language, p) for p in passages]
        windows = [
            best_window(sentence, p, cross=c) for p, c in zip(passages, crosses, strict=True)
        ]
        cosines = self._similarities(self._encode(sentence), passages)
        results = []
        wanted = _word_sequence(sentence)
        for (start, end, cov), cosine, cross, passage in zip(
            windows, cosines, crosses, passages, strict=True
        ):
            cos = min(1.0, max(0.0, cosine))
            if cross:
                score = cos
                components = {"dense": round(cos, 4), "cross_language": 1.0}
            elif wanted and _contains(_word_sequence(passage.text[start:end]), wanted):
                # the quote states the sentence word for word: nothing to weigh (the cosine
                # with a whole passage is low for one sentence of many)
                score = 1.0
                components = {"lexical": 1.0, "dense": round(cos, 4), "verbatim": 1.0}
            else:
                score = self.lexical_weight * cov + (1 - self.lexical_weight) * cos
                components = {"lexical": round(cov, 4), "dense": round(cos, 4)}
            results.append(SupportResult(round(score, 4), start, end, components))
        return results


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Citation:
    passage: PassageRecord
    label: SupportLabel
    score: float
    quote: str
    quote_start: int
    quote_end: int
    components: dict[str, float]
    agreement: Agreement
    attribution: Attribution
    disagreement: Disagreement | None = None

    @property
    def passage_id(self) -> str:
        return self.passage.passage_id


@dataclass(frozen=True, slots=True)
class SentenceAttribution:
    text: str
    start: int
    end: int
    label: SupportLabel
    score: float
    citations: tuple[Citation, ...]


@dataclass(frozen=True, slots=True)
class Reference:
    number: int
    passage: PassageRecord
    attribution: Attribution


@dataclass(frozen=True, slots=True)
class Footnoted:
    text: str
    markdown: str
    html: str


@dataclass(frozen=True, slots=True)
class AnswerAttribution:
    answer: str
    sentences: tuple[SentenceAttribution, ...]
    footnoted: Footnoted
    references: tuple[Reference, ...]
    unknown_passage_ids: tuple[str, ...]
    scorer: str
    took_ms: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the shape of the HTTP response)."""
        return {
            "sentences": [
                {
                    "text": s.text,
                    "start": s.start,
                    "end": s.end,
                    "label": s.label.value,
                    "score": s.score,
                    "citations": [_citation_dict(c) for c in s.citations],
                }
                for s in self.sentences
            ],
            "footnoted": {
                "text": self.footnoted.text,
                "markdown": self.footnoted.markdown,
                "html": self.footnoted.html,
            },
            "references": [
                {
                    "number": r.number,
                    "passage_id": r.passage.passage_id,
                    "title": r.passage.title,
                    "url": r.attribution.url,
                    "attribution": r.attribution.model_dump(mode="json"),
                }
                for r in self.references
            ],
            "unknown_passage_ids": list(self.unknown_passage_ids),
            "scorer": self.scorer,
            "took_ms": self.took_ms,
        }


def _citation_dict(c: Citation) -> dict[str, Any]:
    return {
        "passage_id": c.passage_id,
        "label": c.label.value,
        "score": c.score,
        "quote": c.quote,
        "quote_start": c.quote_start,
        "quote_end": c.quote_end,
        "components": c.components,
        "missing_numbers": list(c.agreement.missing_numbers),
        "missing_names": list(c.agreement.missing_names),
        "word_order": c.agreement.word_order,
        "cross_language": c.agreement.cross_language,
        "disagreement": None
        if c.disagreement is None
        else {
            "kind": c.disagreement.kind,
            "claim": c.disagreement.claim,
            "passage": c.disagreement.passage,
            "reason": c.disagreement.describe(),
        },
        "attribution": c.attribution.model_dump(mode="json"),
        "trust": trust_view(c.passage).model_dump(mode="json"),
    }


# -- the attributor ---------------------------------------------------------------------------


class MalformedPassageIds(ValueError):
    def __init__(self, ids: Sequence[str]) -> None:
        super().__init__(
            f"malformed passage id(s) {', '.join(map(repr, ids))}: expected "
            "WIKI:REVISION_ID:ORDINAL, for example 'enwiki:1270870723:12'"
        )
        self.ids = list(ids)


@dataclass(frozen=True, slots=True)
class AttributeOptions:
    passage_ids: tuple[str, ...] | None = None
    wikis: tuple[str, ...] | None = None
    languages: tuple[str, ...] | None = None
    k: int = 3  # citations per sentence at most
    candidates: int = 5  # passages retrieved from the index per sentence
    search_fallback: bool = True  # search the index when no given passage supports a sentence
    # None: the embedding model's own (thresholds_for)
    supported_threshold: float | None = None
    partial_threshold: float | None = None
    contradicted_threshold: float | None = None

    def for_model(self, model_id: str) -> AttributeOptions:
        """These options with every unset threshold taken from :func:`thresholds_for`."""
        supported, partial, contradicted = thresholds_for(model_id)
        return replace(
            self,
            supported_threshold=_given(self.supported_threshold, supported),
            partial_threshold=_given(self.partial_threshold, partial),
            contradicted_threshold=_given(self.contradicted_threshold, contradicted),
        )


def _given(value: float | None, default: float) -> float:
    return default if value is None else value


def label_for(
    score: float,
    agreement: Agreement,
    options: AttributeOptions,
    disagreement: Disagreement | None = None,
) -> SupportLabel:
    """The label of a score: ``contradicted`` when a passage this close says otherwise,
    capped at ``partial`` when a number or name is missing from it."""
    supported, partial, contradicted = _thresholds(options)
    if agreement.cross_language:
        # the score is the cosine alone: a passage in another language bears on the
        # sentence only when it is as close as a supporting one (a translation), and even
        # then it backs it only partly (no word was compared) or contradicts it by a number
        if score < supported:
            return SupportLabel.UNSUPPORTED
        return SupportLabel.CONTRADICTED if disagreement is not None else SupportLabel.PARTIAL
    if disagreement is not None and score >= contradicted:
        return SupportLabel.CONTRADICTED
    if score >= supported and agreement.ok:
        return SupportLabel.SUPPORTED
    if score >= partial:
        return SupportLabel.PARTIAL
    return SupportLabel.UNSUPPORTED


# Which citation labels the sentence: support first (a false "supported" is the worst error,
# but a contradiction needs a passage as close as the supporting one: see sentence_label),
# then a contradiction, then partial support.
def _thresholds(options: AttributeOptions) -> tuple[float, float, float]:
    return (
        _given(options.supported_threshold, SUPPORTED_THRESHOLD),
        _given(options.partial_threshold, PARTIAL_THRESHOLD),
        _given(options.contradicted_threshold, CONTRADICTED_THRESHOLD),
    )


_RANK = {
    SupportLabel.SUPPORTED: 3,
    SupportLabel.CONTRADICTED: 2,
    SupportLabel.PARTIAL: 1,
    SupportLabel.UNSUPPORTED: 0,
}


def sentence_label(citations: Sequence[Citation]) -> SupportLabel:
    """The label of a sentence from its citations: ``supported`` when a supporting passage is
    at least as close as every contradicting one; else ``contradicted`` when a passage that
    says otherwise is at least as close as every partly supporting one; else the best of
    partial and unsupported."""
    if not citations:
        return SupportLabel.UNSUPPORTED
    supported = [c.score for c in citations if c.label is SupportLabel.SUPPORTED]
    contradicting = [c.score for c in citations if c.label is SupportLabel.CONTRADICTED]
    partial = [c.score for c in citations if c.label is SupportLabel.PARTIAL]
    if supported and (not contradicting or max(supported) >= max(contradicting)):
        return SupportLabel.SUPPORTED
    # a contradiction needs the closest passage: a negation in a passage on another point of
    # the article does not contradict what a closer passage partly backs
    if contradicting and (not partial or max(contradicting) >= max(partial)):
        return SupportLabel.CONTRADICTED
    return max((c.label for c in citations), key=_RANK.__getitem__)


class AnswerAttributor:
    """Attributes answers against one loaded index (thread-safe as its parts are)."""

    def __init__(self, retriever: HybridRetriever, scorer: SupportScorer | None = None) -> None:
        self.retriever = retriever
        self._given_scorer = scorer
        self.scorer: SupportScorer = scorer or LexicalDenseScorer(
            retriever.embedder,
            encode=retriever.encode_text,
            similarities=retriever.passage_similarities,
        )

    def _call_parts(self) -> tuple[SupportScorer, _Vectors]:
        """The scorer and the embeddings of one call: each text of the call (a sentence, for
        its search and its scores; a window quoted for several sentences) is embedded once,
        even with the retriever's cache off."""
        vectors = _Vectors(self.retriever.encode_text)
        scorer = self._given_scorer or LexicalDenseScorer(
            self.retriever.embedder,
            encode=vectors,
            similarities=self.retriever.passage_similarities,
        )
        return scorer, vectors

    @property
    def store(self) -> PassageStore:
        return self.retriever.index.store

    def resolve(self, passage_ids: Sequence[str]) -> tuple[list[PassageRecord], list[str]]:
        """The given passages (each once, in order) and the ids that are not in the index.
        Raises :class:`MalformedPassageIds` for ids that cannot be parsed."""
        malformed = []
        for pid in passage_ids:
            try:
                parse_passage_id(pid)
            except ValueError:
                malformed.append(pid)
        if malformed:
            raise MalformedPassageIds(malformed)
        found: list[PassageRecord] = []
        unknown: list[str] = []
        for pid in dict.fromkeys(passage_ids):
            record = self.store.passage(pid)
            if record is None:
                unknown.append(pid)
            else:
                found.append(record)
        return found, unknown

    def options(self, options: AttributeOptions | None = None) -> AttributeOptions:
        """``options`` with the thresholds of the retriever's embedding model filled in."""
        return (options or AttributeOptions()).for_model(self.retriever.embedder.model_id)

    def attribute(self, answer: str, options: AttributeOptions | None = None) -> AnswerAttribution:
        options = self.options(options)
        started = time.perf_counter()
        given, unknown = self.resolve(options.passage_ids or ())
        parts = self._call_parts()
        sentences = []
        for span in split_sentences(answer):
            citations = self._candidates(span.text, given, options, *parts)
            citations = [c for c in citations if c.label is not SupportLabel.UNSUPPORTED]
            label = sentence_label(citations)
            citations = _lead_with(label, citations)[: options.k]
            score = citations[0].score if citations else 0.0
            sentences.append(
                SentenceAttribution(span.text, span.start, span.end, label, score, tuple(citations))
            )
        footnoted, references = footnote(answer, sentences)
        return AnswerAttribution(
            answer=answer,
            sentences=tuple(sentences),
            footnoted=footnoted,
            references=tuple(references),
            unknown_passage_ids=tuple(unknown),
            scorer=self.scorer.name,
            took_ms=round((time.perf_counter() - started) * 1000, 2),
        )

    def candidates(
        self,
        sentence: str,
        given: Sequence[PassageRecord] = (),
        options: AttributeOptions | None = None,
    ) -> list[Citation]:
        """Every scored candidate for one sentence, best first (labels included): the
        ``given`` passages, then, unless one of them supports the sentence (or
        ``search_fallback`` is off), the index's best passages for it."""
        return self._candidates(sentence, given, self.options(options), *self._call_parts())

    def _candidates(
        self,
        sentence: str,
        given: Sequence[PassageRecord],
        options: AttributeOptions,
        scorer: SupportScorer,
        vectors: _Vectors,
    ) -> list[Citation]:
        language = self.retriever.query_language(SearchRequest(sentence)).language
        citations = self._cite(sentence, given, options, scorer, language) if given else []
        best = citations[0].label if citations else SupportLabel.UNSUPPORTED
        if best is not SupportLabel.SUPPORTED and (not given or options.search_fallback):
            found = self._cite(
                sentence, self._search(sentence, options, vectors), options, scorer, language
            )
            citations = _merge(citations, found)
        return citations

    def _search(
        self, sentence: str, options: AttributeOptions, vectors: _Vectors
    ) -> list[PassageRecord]:
        request = SearchRequest(
            sentence, k=options.candidates, wikis=options.wikis, languages=options.languages
        )
        return [h.passage for h in self.retriever.search(request, vector=vectors(sentence))]

    def _cite(
        self,
        sentence: str,
        passages: Sequence[PassageRecord],
        options: AttributeOptions,
        scorer: SupportScorer,
        language: str | None,
    ) -> list[Citation]:
        results = scorer.score(sentence, passages, language)
        citations = []
        for passage, result in zip(passages, results, strict=True):
            cross = cross_language(language, passage)
            window = (result.quote_start, result.quote_end)
            agreement = check_agreement(sentence, passage, window, cross=cross)
            disagreement = find_disagreement(
                sentence,
                passage.text[result.quote_start : result.quote_end],
                passage.language,
                context=" ".join([passage.title, *passage.section_path, passage.text]),
                numbers_only=cross,
            )
            citations.append(
                Citation(
                    passage=passage,
                    label=label_for(result.score, agreement, options, disagreement),
                    score=result.score,
                    quote=passage.text[result.quote_start : result.quote_end],
                    quote_start=result.quote_start,
                    quote_end=result.quote_end,
                    components=result.components,
                    agreement=agreement,
                    attribution=build_attribution(passage),
                    disagreement=disagreement,
                )
            )
        citations.sort(key=lambda c: (_RANK[c.label], c.score), reverse=True)
        return citations


class _Vectors:
    """Embeddings computed during one attribution call, each text once."""

    def __init__(self, encode: Callable[[str], npt.NDArray[np.float32]]) -> None:
        self._encode = encode
        self._seen: dict[str, npt.NDArray[np.float32]] = {}

    def __call__(self, text: str) -> npt.NDArray[np.float32]:
        vector = self._seen.get(text)
        if vector is None:
            vector = self._seen[text] = self._encode(text)
        return vector


def _lead_with(label: SupportLabel, citations: list[Citation]) -> list[Citation]:
    """``citations`` with those of ``label`` first (the passage that contradicts, for a
    contradicted sentence), best score first within each label."""
    return sorted(
        citations, key=lambda c: (c.label is label, _RANK[c.label], c.score), reverse=True
    )


def _merge(first: list[Citation], second: list[Citation]) -> list[Citation]:
    seen = {c.passage_id for c in first}
    merged = first + [c for c in second if c.passage_id not in seen]
    merged.sort(key=lambda c: (_RANK[c.label], c.score), reverse=True)
    return merged


# -- footnotes --------------------------------------------------------------------------------


def footnote(
    answer: str, sentences: Sequence[SentenceAttribution]
) -> tuple[Footnoted, list[Reference]]:
    """The answer with ``[n]`` after each supported sentence (one per supporting passage, in
    order of first use) and the numbered references, as plain text, Markdown (footnotes
    ``[^n]``) and HTML (``<sup>`` links to an ordered list)."""
    numbers: dict[str, Reference] = {}
    marks: list[tuple[int, list[int]]] = []
    for sentence in sentences:
        cited = [c for c in sentence.citations if c.label is SupportLabel.SUPPORTED]
        if not cited:
            continue
        ns = []
        for c in cited:
            if c.passage_id not in numbers:
                numbers[c.passage_id] = Reference(len(numbers) + 1, c.passage, c.attribution)
            ns.append(numbers[c.passage_id].number)
        marks.append((sentence.end, ns))
    references = list(numbers.values())

    text_parts: list[str] = []
    md_parts: list[str] = []
    html_parts: list[str] = []
    position = 0
    for end, ns in marks:
        chunk = answer[position:end]
        text_parts.append(chunk + "".join(f"[{n}]" for n in ns))
        md_parts.append(chunk + "".join(f"[^{n}]" for n in ns))
        html_parts.append(
            html.escape(chunk)
            + "".join(f'<sup><a href="#wikirag-ref-{n}">[{n}]</a></sup>' for n in ns)
        )
        position = end
    tail = answer[position:]
    text_parts.append(tail)
    md_parts.append(tail)
    html_parts.append(html.escape(tail))
    text = "".join(text_parts)
    markdown = "".join(md_parts)
    body = "".join(html_parts).replace("\n", "<br>\n")
    html_out = f"<p>{body}</p>"
    if references:
        text += "\n\nReferences\n" + "\n".join(
            f"[{r.number}] {r.attribution.text}" for r in references
        )
        markdown += "\n\n" + "\n".join(
            f"[^{r.number}]: {r.attribution.markdown}" for r in references
        )
        items = "".join(
            f'<li id="wikirag-ref-{r.number}">{r.attribution.html}</li>' for r in references
        )
        html_out += f'\n<ol class="wikirag-references">{items}</ol>'
    return Footnoted(text, markdown, html_out), references
