"""Fusion is a pure function: checked on hand-computed cases, ties and degenerate inputs."""

from __future__ import annotations

import doctest
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import fusion
from app.fusion import linear, min_max, rrf


def test_rrf_matches_the_formula() -> None:
    hits = rrf({"dense": [(1, 0.9), (2, 0.8)], "lexical": [(2, 12.0), (3, 9.0)]}, k=60)
    scores = {h.doc_id: h.score for h in hits}
    assert scores[2] == pytest.approx(1 / 62 + 1 / 61)
    assert scores[1] == pytest.approx(1 / 61)
    assert scores[3] == pytest.approx(1 / 62)
    assert [h.doc_id for h in hits] == [2, 1, 3]
    assert hits[0].components == {"dense": 0.8, "lexical": 12.0}


def test_rrf_ties_break_by_best_rank_then_id() -> None:
    # 1 and 2 both get 1/61 + 1/62: equal fused scores, equal best rank → lower id first.
    hits = rrf({"dense": [(2, 1.0), (1, 0.5)], "lexical": [(1, 3.0), (2, 2.0)]})
    assert [h.doc_id for h in hits] == [1, 2]
    assert hits[0].score == hits[1].score


def test_linear_min_max_and_identical_scores_do_not_divide_by_zero() -> None:
    assert min_max([3.0, 3.0, 3.0]) == [1.0, 1.0, 1.0]
    assert min_max([]) == []
    hits = linear({"dense": [(1, 0.5), (2, 0.5)], "lexical": [(2, 7.0)]}, alpha=0.5)
    assert [h.doc_id for h in hits] == [2, 1]
    assert hits[0].score == pytest.approx(1.0)
    assert hits[1].score == pytest.approx(0.5)


def test_linear_alpha_weights_the_dense_component() -> None:
    ranked = {"dense": [(1, 0.9), (2, 0.1)], "lexical": [(2, 10.0), (1, 0.0)]}
    assert linear(ranked, alpha=1.0)[0].doc_id == 1
    assert linear(ranked, alpha=0.0)[0].doc_id == 2
    with pytest.raises(ValueError, match="alpha"):
        linear(ranked, alpha=1.5)


def test_a_single_component_keeps_its_order() -> None:
    ranked = {"lexical": [(5, 3.0), (4, 2.0), (9, 1.0)]}
    assert [h.doc_id for h in rrf(ranked)] == [5, 4, 9]
    assert [h.doc_id for h in linear(ranked)] == [5, 4, 9]
    assert rrf({}) == [] and linear({}) == []


def test_docstring_examples() -> None:
    assert doctest.testmod(fusion).failed == 0


ranked_lists = st.lists(
    st.tuples(st.integers(0, 30), st.floats(-5, 5, allow_nan=False)), max_size=20
)


@given(dense=ranked_lists, lexical=ranked_lists, k=st.integers(0, 100))
def test_fusion_returns_each_document_once_sorted(dense, lexical, k) -> None:  # type: ignore[no-untyped-def]
    for hits in (
        rrf({"dense": dense, "lexical": lexical}, k=k),
        linear({"dense": dense, "lexical": lexical}),
    ):
        ids = [h.doc_id for h in hits]
        assert len(ids) == len(set(ids)) == len({d for d, _ in dense} | {d for d, _ in lexical})
        assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
