"""Retrieval quality on real questions: top-k answer accuracy and MRR@20 per mode.

A question is a hit at k when any of the top-k passages contains one of its answer strings
(case-insensitive, whitespace-normalised), the top-k accuracy of the DPR paper. Each question
is retrieved once per component (dense, lexical); the modes and fusion variants are derived
from those lists, exactly as :class:`~app.retrieval.retriever.HybridRetriever` derives them.

Usage::

    >>> result = evaluate(retriever, load_questions(Path("questions.jsonl")))  # doctest: +SKIP
    >>> result["modes"]["hybrid"]["top5"]                                      # doctest: +SKIP
    0.921
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from app.retrieval.fusion import FusionMethod
from app.retrieval.ranking import SearchMode, SearchRequest
from app.retrieval.retriever import HybridRetriever
from indexer.errors import InvalidInput

KS = (1, 5, 10, 20)
MRR_DEPTH = 20
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Question:
    """One evaluation question. ``languages`` is the filter to search with (None: every
    language); ``question_language`` and ``kind`` (``mono``: answered in the question's
    language, ``cross``: only in another) group the report."""

    id: str
    question: str
    answers: tuple[str, ...]
    title: str = ""
    question_language: str | None = None
    languages: tuple[str, ...] | None = None
    kind: str | None = None


def _optional_text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"{key} must be a non-empty string or null, got {value!r}")
    return value.strip()


def _languages(obj: dict[str, Any]) -> tuple[str, ...] | None:
    value = obj.get("languages")
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise TypeError(
            f"languages must be a non-empty list of language codes or null, got {value!r}"
        )
    return tuple(v.strip() for v in value)


def load_questions(path: Path) -> Iterator[Question]:
    """Questions from JSONL lines ``{"id", "question", "answers": [...], "title"?,
    "question_language"?, "languages"?, "kind"?}``."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                yield Question(
                    id=str(obj.get("id", number)),
                    question=str(obj["question"]),
                    answers=tuple(str(a) for a in obj["answers"]),
                    title=str(obj.get("title", "")),
                    question_language=_optional_text(obj, "question_language"),
                    languages=_languages(obj),
                    kind=_optional_text(obj, "kind"),
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInput(f"{path}: line {number} is not a question: {exc}") from exc


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def first_hit_rank(passages: Sequence[str], answers: Sequence[str]) -> int | None:
    """1-based rank of the first passage containing an answer, or None."""
    wanted = [normalise(a) for a in answers if a.strip()]
    for rank, text in enumerate(passages, start=1):
        haystack = normalise(text)
        if any(a in haystack for a in wanted):
            return rank
    return None


@dataclass(frozen=True, slots=True)
class Variant:
    """One way to rank: a mode and, for hybrid, a fusion method with its parameters."""

    name: str
    mode: SearchMode
    fusion: FusionMethod | None = None
    rrf_k: int | None = None
    alpha: float | None = None


DEFAULT_VARIANTS = (
    Variant("hybrid", SearchMode.HYBRID),
    Variant("dense", SearchMode.DENSE),
    Variant("lexical", SearchMode.LEXICAL),
)


def summarise(ranks: Sequence[int | None]) -> dict[str, float]:
    n = len(ranks) or 1
    scores = {f"top{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in KS}
    scores["mrr20"] = sum(1.0 / r for r in ranks if r is not None and r <= MRR_DEPTH) / n
    return {key: round(value, 4) for key, value in scores.items()}


def evaluate(
    retriever: HybridRetriever,
    questions: Iterable[Question],
    *,
    variants: Sequence[Variant] = DEFAULT_VARIANTS,
    max_per_article: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Top-k accuracy (k = 1, 5, 10, 20) and MRR@20 for each variant, overall and — where the
    questions carry them — per question language (``by_language``) and per kind
    (``by_kind``) and per both (``by_language_kind``, ``"fr/mono"``), each group with its
    question count."""
    ranks: dict[str, list[int | None]] = {v.name: [] for v in variants}
    groups: dict[str, dict[str, list[int]]] = {
        "by_language": {},
        "by_kind": {},
        "by_language_kind": {},
    }
    count = 0
    for question in tqdm(list(questions), desc="eval", unit=" q", disable=not progress):
        for field_name, value in (
            ("by_language", question.question_language),
            ("by_kind", question.kind),
            (
                "by_language_kind",
                f"{question.question_language}/{question.kind}"
                if question.question_language and question.kind
                else None,
            ),
        ):
            if value is not None:
                groups[field_name].setdefault(value, []).append(count)
        count += 1
        for variant in variants:
            request = SearchRequest(
                question.question,
                k=max(KS),
                mode=variant.mode,
                fusion=variant.fusion,
                rrf_k=variant.rrf_k,
                alpha=variant.alpha,
                languages=question.languages,
                max_per_article=max_per_article,
            )
            hits = retriever.search(request)
            ranks[variant.name].append(
                first_hit_rank([h.passage.text for h in hits], question.answers)
            )
    result: dict[str, Any] = {
        "modes": {name: summarise(r) for name, r in ranks.items()},
        "questions": count,
        "passages": retriever.index.manifest.counts.indexed_passages,
    }
    for field_name, members in groups.items():
        if members:
            result[field_name] = {
                value: {
                    "questions": len(rows),
                    "modes": {name: summarise([r[i] for i in rows]) for name, r in ranks.items()},
                }
                for value, rows in sorted(members.items())
            }
    return result
