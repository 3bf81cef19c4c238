"""Rank fusion: pure functions that merge ranked lists from the dense and lexical retrievers.

Both take ``{component: [(doc_id, score), ...]}`` lists, best first, and return
:class:`FusedHit` s ordered by fused score, ties broken by the best rank any component gave the
document and then by doc id, so the order is deterministic.

Usage::

    >>> hits = rrf({"dense": [(1, 0.9), (2, 0.8)], "lexical": [(2, 12.0), (3, 9.0)]}, k=60)
    >>> [h.doc_id for h in hits]
    [2, 1, 3]
    >>> ranked = {"dense": [(1, 0.9), (2, 0.7), (3, 0.5)], "lexical": [(2, 3.0)]}
    >>> [h.doc_id for h in linear(ranked, alpha=0.5)]
    [2, 1, 3]
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

Ranked = Sequence[tuple[int, float]]

DEFAULT_RRF_K = 60


class FusionMethod(StrEnum):
    RRF = "rrf"
    LINEAR = "linear"


@dataclass(frozen=True, slots=True)
class FusedHit:
    """A document with its fused score and each component's raw score (absent = not found
    by that component)."""

    doc_id: int
    score: float
    components: dict[str, float] = field(default_factory=dict)


def _best_ranks(ranked: Mapping[str, Ranked]) -> dict[int, int]:
    best: dict[int, int] = {}
    for hits in ranked.values():
        for rank, (doc_id, _) in enumerate(hits):
            best[doc_id] = min(best.get(doc_id, rank), rank)
    return best


def _raw_scores(ranked: Mapping[str, Ranked]) -> dict[int, dict[str, float]]:
    raw: dict[int, dict[str, float]] = {}
    for name, hits in ranked.items():
        for doc_id, score in hits:
            raw.setdefault(doc_id, {}).setdefault(name, score)
    return raw


def _ordered(fused: dict[int, float], ranked: Mapping[str, Ranked]) -> list[FusedHit]:
    best = _best_ranks(ranked)
    raw = _raw_scores(ranked)
    order = sorted(fused, key=lambda d: (-fused[d], best[d], d))
    return [FusedHit(doc_id=d, score=fused[d], components=raw[d]) for d in order]


def _stand_ins(
    fused: dict[int, float],
    parts: Mapping[str, dict[int, float]],
    dense: str,
    weights: Mapping[str, float],
    unscorable: Collection[int],
    stand_in: float,
) -> None:
    """Add, for each document of ``unscorable`` that the ``dense`` component found, ``stand_in``
    times its dense part in place of every other component it is missing from."""
    if not unscorable or dense not in parts:
        return
    for doc_id, part in parts[dense].items():
        if doc_id not in unscorable:
            continue
        for name in parts:
            if name != dense and doc_id not in parts[name]:
                fused[doc_id] += stand_in * part * weights[name] / weights[dense]


def rrf(
    ranked: Mapping[str, Ranked],
    *,
    k: int = DEFAULT_RRF_K,
    weights: Mapping[str, float] | None = None,
    dense: str = "dense",
    unscorable: Collection[int] = (),
    stand_in: float = 0.0,
) -> list[FusedHit]:
    """Reciprocal rank fusion: ``score(d) = Σ w_c / (k + rank_c(d))`` with ranks from 1.

    ``unscorable`` documents could not be scored by the other components at all (a passage in
    another language than the query's, which BM25 does not compare): for each component they
    are missing from, ``stand_in`` times their dense term stands in (0: they count as not found,
    1: as ranked there as by the dense half).

    >>> ranked = {"dense": [(1, 0.9), (2, 0.8)], "lexical": [(2, 12.0)]}
    >>> [h.doc_id for h in rrf(ranked, k=0)]
    [2, 1]
    >>> [h.doc_id for h in rrf(ranked, k=0, unscorable={1}, stand_in=1.0)]
    [1, 2]
    """
    if k < 0:
        raise ValueError(f"RRF k must be ≥ 0, got {k}")
    fused: dict[int, float] = {}
    parts: dict[str, dict[int, float]] = {}
    weight_of: dict[str, float] = {}
    for name, hits in ranked.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        weight_of[name] = weight
        part = parts.setdefault(name, {})
        for rank, (doc_id, _) in enumerate(hits, start=1):
            if doc_id in part:  # a duplicate in one list counts once, at its best rank
                continue
            part[doc_id] = weight / (k + rank)
            fused[doc_id] = fused.get(doc_id, 0.0) + part[doc_id]
    if weight_of.get(dense):
        _stand_ins(fused, parts, dense, weight_of, unscorable, stand_in)
    return _ordered(fused, ranked)


def min_max(scores: Sequence[float]) -> list[float]:
    """Scale scores to [0, 1]; identical scores (or a single one) all become 1.0."""
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high - low <= 1e-12:
        return [1.0] * len(scores)
    return [(s - low) / (high - low) for s in scores]


def linear(
    ranked: Mapping[str, Ranked],
    *,
    alpha: float = 0.5,
    dense: str = "dense",
    unscorable: Collection[int] = (),
    stand_in: float = 0.0,
) -> list[FusedHit]:
    """Normalised linear combination: ``α·minmax(dense) + (1-α)·minmax(other)``.

    A document missing from one list contributes 0 for that component, unless it is
    ``unscorable`` there (another language than the query's: BM25 could not have found it);
    then ``stand_in`` times its normalised dense score stands in for the missing one.

    >>> ranked = {"dense": [(1, 0.9), (2, 0.5)], "lexical": [(2, 7.0), (3, 1.0)]}
    >>> [(h.doc_id, round(h.score, 2)) for h in linear(ranked, alpha=0.5)]
    [(1, 0.5), (2, 0.5), (3, 0.0)]
    >>> [(h.doc_id, round(h.score, 2)) for h in linear(ranked, alpha=0.5, unscorable={1},
    ...                                               stand_in=0.8)]
    [(1, 0.9), (2, 0.5), (3, 0.0)]
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    fused: dict[int, float] = {}
    parts: dict[str, dict[int, float]] = {}
    weight_of: dict[str, float] = {}
    for name, hits in ranked.items():
        weight = alpha if name == dense else 1.0 - alpha
        if len(ranked) == 1:
            weight = 1.0
        weight_of[name] = weight
        part = parts.setdefault(name, {})
        for (doc_id, _), norm in zip(hits, min_max([s for _, s in hits]), strict=True):
            if doc_id in part:
                continue
            part[doc_id] = weight * norm
            fused[doc_id] = fused.get(doc_id, 0.0) + part[doc_id]
    if weight_of.get(dense):
        _stand_ins(fused, parts, dense, weight_of, unscorable, stand_in)
    return _ordered(fused, ranked)
