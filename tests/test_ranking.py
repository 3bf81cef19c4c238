"""The ranking rules (app.retrieval.ranking) shared by the retriever and the shard router:
checked on hand-computed cases and, for materialisation, against a reference implementation
on random candidate lists."""

from __future__ import annotations

import doctest
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.retrieval import ranking
from app.retrieval.fusion import FusedHit, FusionMethod
from app.retrieval.ranking import (
    RetrievalDefaults,
    SearchRequest,
    by_score,
    candidate_count,
    fuse,
    fuse_request,
    materialise,
    resolve_defaults,
    servable,
)
from indexer.models import License
from indexer.store import PassageRecord

LICENSE = License(
    "Creative Commons Attribution-ShareAlike 4.0",
    "CC-BY-SA-4.0",
    "https://creativecommons.org/licenses/by-sa/4.0/",
)


def record(row: int, page: int, *, current: bool = True, status: str = "active") -> PassageRecord:
    revision = 100 + page
    return PassageRecord(
        row_id=row,
        passage_id=f"p{row}",
        wiki="enwiki",
        language="en",
        base_url="https://en.wikipedia.org",
        sitename="Wikipedia",
        page_id=page,
        title=f"Page {page}",
        revision_id=revision,
        revision_timestamp="2024-01-01T00:00:00Z",
        section_path=(),
        anchor="",
        section_ordinal=0,
        ordinal=row,
        start=0,
        end=1,
        text=f"text {row}",
        license=LICENSE,
        editor=None,
        current_revision_id=revision if current else revision + 1,
        page_status=status,
    )


def test_docstring_examples() -> None:
    assert doctest.testmod(ranking).failed == 0


def test_candidate_count_grows_with_k_and_more_under_a_cap() -> None:
    defaults = RetrievalDefaults(candidates=100)
    assert candidate_count(defaults, 10, None) == 100
    assert candidate_count(defaults, 49, 3) == 196
    assert candidate_count(defaults, 60, None) == 120
    assert candidate_count(RetrievalDefaults(candidates=7), 1, None) == 7


def test_by_score_breaks_ties_by_row_id_not_input_order() -> None:
    assert by_score([(9, 1.0), (2, 1.0), (5, 3.0)]) == [(5, 3.0), (2, 1.0), (9, 1.0)]
    assert by_score([]) == []


def test_the_request_parameters_beat_the_defaults() -> None:
    ranked = {"dense": [(1, 0.9), (2, 0.1)], "lexical": [(2, 10.0), (1, 0.0)]}
    defaults = RetrievalDefaults(alpha=0.0)  # lexical decides unless the request says otherwise
    assert [h.doc_id for h in fuse(ranked, defaults)] == [2, 1]
    assert [h.doc_id for h in fuse(ranked, defaults, alpha=1.0)] == [1, 2]
    request = SearchRequest("q", alpha=1.0)
    assert [h.doc_id for h in fuse_request(ranked, request, defaults)] == [1, 2]
    # RRF by the request, with its k: 1/(k+1) + 1/(k+2) for both, tie broken by best rank/id
    rrf = fuse_request(ranked, SearchRequest("q", fusion=FusionMethod.RRF, rrf_k=1), defaults)
    assert [round(h.score, 6) for h in rrf] == [round(1 / 2 + 1 / 3, 6)] * 2
    by_defaults = fuse(ranked, RetrievalDefaults(fusion=FusionMethod.RRF, rrf_k=1))
    assert [h.score for h in by_defaults] == [h.score for h in rrf]


def test_resolve_defaults_overrides_then_recorded_then_fallback() -> None:
    fallback = RetrievalDefaults(FusionMethod.RRF, 10, 0.2, 50)
    assert resolve_defaults(None, fallback) == fallback
    assert resolve_defaults({"alpha": 0.7, "candidates": 80}, fallback, {"candidates": 30}) == (
        RetrievalDefaults(FusionMethod.RRF, 10, 0.7, 30)
    )
    assert resolve_defaults({"fusion": "linear", "rrf_k": "x"}, fallback) == fallback


def test_servable_is_current_and_not_suppressed() -> None:
    assert servable(record(1, 1))
    assert not servable(record(1, 1, current=False))
    assert not servable(record(1, 1, status="deleted"))


def test_materialise_caps_per_article_and_keeps_scores() -> None:
    records = {1: record(1, 10), 2: record(2, 10), 3: record(3, 11), 4: record(4, 12)}
    fused = [FusedHit(i, 1.0 / i, {"dense": 0.5}) for i in (1, 2, 3, 4)]
    hits = materialise(fused, lambda rows: {r: records[r] for r in rows}, 2, 1)
    assert [h.passage.row_id for h in hits] == [1, 3]
    assert hits[1].scores == {"dense": 0.5, "fused": 1.0 / 3}


def reference(
    fused: Sequence[FusedHit], records: Mapping[int, PassageRecord | None], k: int, cap: int | None
) -> list[int]:
    """The rule, written as plainly as possible."""
    out: list[int] = []
    seen: dict[int, int] = {}
    for hit in fused:
        rec = records.get(hit.doc_id)
        if rec is None or rec.revision_id != rec.current_revision_id or rec.suppressed:
            continue
        if cap is not None and seen.get(rec.page_id, 0) >= cap:
            continue
        seen[rec.page_id] = seen.get(rec.page_id, 0) + 1
        out.append(hit.doc_id)
    return out[:k]


@st.composite
def candidates(draw: st.DrawFn) -> tuple[list[FusedHit], dict[int, PassageRecord | None]]:
    rows = draw(st.lists(st.integers(0, 200), unique=True, max_size=60))
    fused = [FusedHit(r, float(len(rows) - i)) for i, r in enumerate(rows)]
    records: dict[int, PassageRecord | None] = {}
    for r in rows:
        kind = draw(st.sampled_from(["ok", "ok", "ok", "old", "deleted", "missing", "none"]))
        page = draw(st.integers(1, 6))
        if kind == "ok":
            records[r] = record(r, page)
        elif kind == "old":
            records[r] = record(r, page, current=False)
        elif kind == "deleted":
            records[r] = record(r, page, status="deleted")
        elif kind == "none":
            records[r] = None
    return fused, records


@given(candidates(), st.integers(1, 12), st.one_of(st.none(), st.integers(1, 3)))
def test_materialise_matches_the_reference_and_fetches_only_what_it_needs(
    case: tuple[list[FusedHit], dict[int, PassageRecord | None]], k: int, cap: int | None
) -> None:
    fused, records = case
    fetched: list[list[int]] = []

    def fetch(rows: Sequence[int]) -> Mapping[int, PassageRecord | None]:
        fetched.append(list(rows))
        return {r: records[r] for r in rows if r in records}

    hits = materialise(fused, fetch, k, cap)
    assert [h.passage.row_id for h in hits] == reference(fused, records, k, cap)
    # the windows are 4k long, in order, and stop once k results are found
    flat = [r for window in fetched for r in window]
    assert flat == [h.doc_id for h in fused[: len(flat)]]
    assert all(len(window) <= 4 * k for window in fetched)
    if len(hits) == k and hits:
        last = next(i for i, h in enumerate(fused) if h.doc_id == hits[-1].passage.row_id)
        assert len(flat) <= (last // (4 * k) + 1) * (4 * k)
    # the router hands over every record at once: the same answer
    everything = materialise(fused, lambda rows: records, k, cap)
    assert [h.passage.row_id for h in everything] == [h.passage.row_id for h in hits]


def test_materialise_refuses_nothing_when_there_is_nothing() -> None:
    assert materialise([], lambda rows: pytest.fail("no fetch for no candidates"), 5, None) == []


def test_the_settings_name_every_fusion_default_and_nothing_else() -> None:
    from dataclasses import fields

    from app.settings import RETRIEVAL_FIELDS, Settings

    assert tuple(f.name for f in fields(RetrievalDefaults)) == RETRIEVAL_FIELDS
    configured = Settings(alpha=0.3, fusion="rrf", rrf_k=7, candidates=40).retrieval_defaults()
    assert resolve_defaults(configured) == RetrievalDefaults(FusionMethod.RRF, 7, 0.3, 40)
