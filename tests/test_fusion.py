"""Fusion is a pure function: checked on hand-computed cases, ties and degenerate inputs."""

from __future__ import annotations

import doctest
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.retrieval import fusion
from app.retrieval.fusion import linear, min_max, rrf


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


# --------------------------------------------------------------------------- exact values


def test_rrf_exact_ties_break_by_best_rank_before_doc_id() -> None:
    # With k = 0, doc 99 (ranks 2 and 6) and doc 30 (ranks 3 and 3) both score exactly 2/3:
    # 99 has the better best rank, so it comes first although its id is higher.
    ranked = {
        "dense": [(1, 0.9), (99, 0.8), (30, 0.7)],
        "lexical": [(2, 9.0), (3, 8.0), (30, 7.0), (4, 6.0), (5, 5.0), (99, 4.0)],
    }
    hits = rrf(ranked, k=0)
    assert [(h.doc_id, h.score) for h in hits] == [
        (1, 1.0),
        (2, 1.0),
        (99, 1 / 2 + 1 / 6),
        (30, 1 / 3 + 1 / 3),
        (3, 0.5),
        (4, 0.25),
        (5, 0.2),
    ]
    assert hits[2].score == hits[3].score
    assert hits[2].components == {"dense": 0.8, "lexical": 4.0}
    assert hits[4].components == {"lexical": 8.0}


def test_rrf_default_k_and_weights() -> None:
    ranked = {"dense": [(1, 0.9), (2, 0.8)], "lexical": [(2, 12.0), (3, 9.0)]}
    assert [(h.doc_id, h.score) for h in rrf(ranked)] == [
        (2, 1 / 62 + 1 / 61),
        (1, 1 / 61),
        (3, 1 / 62),
    ]
    # A component missing from ``weights`` weighs 1.
    weighted = rrf(ranked, k=0, weights={"dense": 3.0})
    assert [(h.doc_id, h.score) for h in weighted] == [(1, 3.0), (2, 1.5 + 1.0), (3, 0.5)]
    assert [(h.doc_id, h.score) for h in rrf(ranked, k=0, weights={})] == [
        (2, 0.5 + 1.0),
        (1, 1.0),
        (3, 0.5),
    ]


def test_rrf_duplicates_count_once_at_their_best_rank() -> None:
    hits = rrf({"dense": [(1, 0.9), (2, 0.8), (1, 0.7), (3, 0.6)]}, k=60)
    assert [(h.doc_id, h.score) for h in hits] == [(1, 1 / 61), (2, 1 / 62), (3, 1 / 64)]
    assert hits[0].components == {"dense": 0.9}  # the first (best) score is kept


def test_rrf_k_zero_is_allowed_and_negative_k_is_refused() -> None:
    assert [h.score for h in rrf({"dense": [(1, 0.0), (2, 0.0)]}, k=0)] == [1.0, 0.5]
    with pytest.raises(ValueError) as caught:
        rrf({"dense": [(1, 0.0)]}, k=-1)
    assert str(caught.value) == "RRF k must be ≥ 0, got -1"


def test_linear_exact_scores_and_ties() -> None:
    ranked = {"dense": [(1, 1.0), (2, 0.75), (3, 0.5)], "lexical": [(2, 3.0), (4, 1.0)]}
    hits = linear(ranked, alpha=0.25)
    # 2: 0.25·0.5 + 0.75·1; 1: 0.25·1; 3 and 4 both 0, 4 has the better best rank (2nd).
    assert [(h.doc_id, h.score) for h in hits] == [(2, 0.875), (1, 0.25), (4, 0.0), (3, 0.0)]
    assert hits[0].components == {"dense": 0.75, "lexical": 3.0}
    assert hits[2].components == {"lexical": 1.0}
    swapped = linear(ranked, alpha=0.25, dense="lexical")
    assert [(h.doc_id, h.score) for h in swapped] == [(1, 0.75), (2, 0.625), (4, 0.0), (3, 0.0)]
    assert [(h.doc_id, h.score) for h in linear(ranked)] == [
        (2, 0.75),
        (1, 0.5),
        (4, 0.0),
        (3, 0.0),
    ]


def test_linear_alpha_bounds_are_inclusive() -> None:
    ranked = {"dense": [(1, 1.0), (2, 0.0)], "lexical": [(2, 1.0), (1, 0.0)]}
    assert [(h.doc_id, h.score) for h in linear(ranked, alpha=1.0)] == [(1, 1.0), (2, 0.0)]
    assert [(h.doc_id, h.score) for h in linear(ranked, alpha=0.0)] == [(2, 1.0), (1, 0.0)]
    for alpha in (-0.5, 1.5):
        with pytest.raises(ValueError) as caught:
            linear(ranked, alpha=alpha)
        assert str(caught.value) == f"alpha must be between 0 and 1, got {alpha}"


def test_linear_single_component_weighs_one_and_duplicates_count_once() -> None:
    ranked = {"lexical": [(5, 3.0), (4, 2.0), (5, 2.0), (9, 1.0)]}
    hits = linear(ranked, alpha=0.2)
    assert [(h.doc_id, h.score) for h in hits] == [(5, 1.0), (4, 0.5), (9, 0.0)]
    assert hits[0].components == {"lexical": 3.0}


def test_min_max_exact_values_and_threshold() -> None:
    assert min_max([2.0, 4.0, 3.0, 2.0]) == [0.0, 1.0, 0.5, 0.0]
    assert min_max([-1.0, 1.0]) == [0.0, 1.0]
    assert min_max([7.0]) == [1.0]
    # Spreads up to 1e-12 are "identical"; anything wider is scaled.
    assert min_max([0.0, 1e-12]) == [1.0, 1.0]
    assert min_max([0.0, 4e-12]) == [0.0, 1.0]


# ------------------------------------------------------------ another language's passages


def test_linear_stand_in_for_a_passage_bm25_could_not_score() -> None:
    # 1 is French (BM25 of an English query cannot score it), 2 and 3 are English.
    ranked = {"dense": [(1, 1.0), (2, 0.5), (3, 0.0)], "lexical": [(2, 4.0), (3, 2.0)]}
    plain = linear(ranked, alpha=0.25)
    assert [(h.doc_id, h.score) for h in plain] == [(2, 0.875), (1, 0.25), (3, 0.0)]
    # 1's normalised dense score (1.0), times the stand-in, takes the lexical weight 0.75.
    half = linear(ranked, alpha=0.25, unscorable={1}, stand_in=0.5)
    assert [(h.doc_id, h.score) for h in half] == [(2, 0.875), (1, 0.625), (3, 0.0)]
    full = linear(ranked, alpha=0.25, unscorable={1}, stand_in=1.0)
    assert [(h.doc_id, h.score) for h in full] == [(1, 1.0), (2, 0.875), (3, 0.0)]
    assert full[0].components == {"dense": 1.0}  # the raw scores stay what was found
    # a document BM25 did score, or one the dense half did not find, gets no stand-in
    assert linear(ranked, alpha=0.25, unscorable={2, 3, 9}, stand_in=1.0) == plain


def test_rrf_stand_in_adds_the_dense_term_again() -> None:
    ranked = {"dense": [(1, 0.9), (2, 0.8)], "lexical": [(2, 9.0), (3, 1.0)]}
    hits = rrf(ranked, k=0, unscorable={1}, stand_in=0.5)
    assert [(h.doc_id, h.score) for h in hits] == [(1, 1.5), (2, 1.5), (3, 0.5)]
    assert rrf(ranked, k=0, unscorable={1}) == rrf(ranked, k=0)  # stand_in 0: as before


@given(dense=ranked_lists, lexical=ranked_lists, stand_in=st.floats(0, 1))
def test_a_stand_in_only_raises_unscorable_documents(dense, lexical, stand_in) -> None:  # type: ignore[no-untyped-def]
    ranked = {"dense": dense, "lexical": lexical}
    unscorable = {d for d, _ in dense if d % 2}
    for fuse in (linear, rrf):
        before = {h.doc_id: h.score for h in fuse(ranked)}
        after = {h.doc_id: h.score for h in fuse(ranked, unscorable=unscorable, stand_in=stand_in)}
        assert before.keys() == after.keys()
        lexical_ids = {d for d, _ in lexical}
        for doc, score in after.items():
            if doc in unscorable and doc not in lexical_ids:
                assert score >= before[doc] - 1e-12
            else:
                assert score == before[doc]
