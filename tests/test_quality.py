"""Retrieval quality regression: the real evaluator over a small real corpus.

The corpus is four SQuAD 2.0 dev articles that have questions (all 418 of their questions)
plus nine real enwiki articles from the XML sample as distractors (Angolan politics and oil,
ANSI, units, courts, statistics...): 388 passages, embedded in about 18 s on 2 loaded cores.
The index is built by the real build (:func:`indexer.build.build_index`, with the fusion
defaults a ``wikirag build`` records) and measured by :func:`app.evaluation.retrieval.evaluate`, the
function behind ``wikirag eval``, with a retriever set up as that command sets it up.

What it guards: each mode and fusion variant stays above a floor just under today's figures,
hybrid beats each of its components by a clear margin, and the fusion parameters reach the
ranking (the dense weight α in the right direction, the RRF constant k, the defaults the
build recorded).
"""

from __future__ import annotations

import bz2
import contextlib
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.evaluation.retrieval import Variant, evaluate, load_questions
from app.retrieval.fusion import FusionMethod
from app.retrieval.ranking import RetrievalDefaults, SearchMode
from app.retrieval.retriever import HybridRetriever, LoadedIndex
from app.serving import retrieval_defaults
from app.settings import Settings
from indexer.build import BuildOptions, build_index
from indexer.ingest import IngestOptions
from tests.conftest import ENWIKI_XML, SQUAD_QUESTIONS, SQUAD_XML
from tests.test_api import shared_embedder

pytestmark = pytest.mark.slow

# SQuAD articles whose questions are evaluated (the four with the fewest questions).
SQUAD_ARTICLES = ("Normans", "1973 oil crisis", "Packet switching", "Harvard University")
# Real enwiki pages of the XML sample, none of them a redirect; several share vocabulary with
# the questions (oil and Angola's economy, networks and standards, universities and courts).
DISTRACTORS = (
    "Arithmetic mean",
    "American National Standards Institute",
    "Appellate court",
    "Ampere",
    "Atomic number",
    "Politics of Angola",
    "Economy of Angola",
    "Foreign relations of Angola",
    "Algorithms (journal)",
)
QUESTIONS = 418  # 96 + 106 + 104 + 112: every question of SQUAD_ARTICLES

VARIANTS = (
    Variant("hybrid", SearchMode.HYBRID),  # the recorded defaults: linear, α = 0.45
    Variant("dense", SearchMode.DENSE),
    Variant("lexical", SearchMode.LEXICAL),
    Variant("hybrid_rrf", SearchMode.HYBRID, FusionMethod.RRF),  # recorded k = 60
    # explicit parameters, each compared with a figure measured another way
    Variant("linear_045", SearchMode.HYBRID, FusionMethod.LINEAR, alpha=0.45),
    Variant("linear_dense_only", SearchMode.HYBRID, FusionMethod.LINEAR, alpha=1.0),
    Variant("rrf_k0", SearchMode.HYBRID, FusionMethod.RRF, rrf_k=0),
)

# Today's figures (2026-12-03, all-MiniLM-L6-v2, 418 questions, 388 passages):
#
#   variant        top1    top5    top10   top20   mrr20
#   hybrid         0.8254  0.9737  0.9833  0.9928  0.8926   (linear, α = 0.45)
#   hybrid_rrf     0.8014  0.9641  0.9785  0.9904  0.8744   (k = 60)
#   dense          0.6914  0.8900  0.9498  0.9665  0.7786
#   lexical        0.7799  0.9522  0.9713  0.9880  0.8559
#   rrf_k0         0.7919  0.9665  0.9785  0.9928  0.8687
#
# Each floor is 0.02 below (8 of the 418 questions): room for the small ranking changes that
# another torch / FAISS / tantivy build or thread count may bring, while losing a component or
# a sizeable part of the fusion's gain still fails.
MARGIN = 0.02
MEASURED: dict[str, dict[str, float]] = {
    "hybrid": {"top1": 0.8254, "top5": 0.9737, "top10": 0.9833, "top20": 0.9928, "mrr20": 0.8926},
    "hybrid_rrf": {
        "top1": 0.8014,
        "top5": 0.9641,
        "top10": 0.9785,
        "top20": 0.9904,
        "mrr20": 0.8744,
    },
    "dense": {"top1": 0.6914, "top5": 0.8900, "top10": 0.9498, "top20": 0.9665, "mrr20": 0.7786},
    "lexical": {"top1": 0.7799, "top5": 0.9522, "top10": 0.9713, "top20": 0.9880, "mrr20": 0.8559},
}


def _filtered_export(source: Path, titles: tuple[str, ...], target: Path) -> Path:
    """A copy of a MediaWiki XML export (siteinfo included) keeping only the pages titled
    ``titles``; fails when one of them is not in ``source``."""
    with bz2.open(source, "rt", encoding="utf-8") as handle:
        text = handle.read()
    head, *pages = text.split("  <page>")
    kept: list[str] = []
    for page in pages:
        title = re.search(r"<title>(.*?)</title>", page)
        if title is not None and title.group(1) in titles:
            kept.append("  <page>" + page.split("</mediawiki>")[0])
    assert len(kept) == len(titles), f"{source.name}: {len(kept)} of {titles} found"
    with bz2.open(target, "wt", encoding="utf-8") as out:
        out.write(head + "".join(kept) + "</mediawiki>\n")
    return target


@functools.cache
def _quality_index(root: Path) -> Path:
    sources = [
        _filtered_export(SQUAD_XML, SQUAD_ARTICLES, root / "squad-subset.xml.bz2"),
        _filtered_export(ENWIKI_XML, DISTRACTORS, root / "enwiki-distractors.xml.bz2"),
    ]
    options = BuildOptions(
        ingest=IngestOptions(progress=False),
        progress=False,
        retrieval=Settings().retrieval_defaults(),  # what `wikirag build` records
    )
    report = build_index(sources, root / "index", options, embedder=shared_embedder())
    assert report.ingest.skipped_total == 0, report.ingest.skipped_items
    return root / "index"


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> HybridRetriever:
    index_dir = _quality_index(tmp_path_factory.mktemp("quality"))
    embedder = shared_embedder()
    index = LoadedIndex.open(index_dir, embedder.info)
    # as `wikirag eval` sets it up (app.cli.common.open_retriever), with the session's embedder
    settings = Settings(index_dir=index_dir)
    return HybridRetriever(index, embedder, retrieval_defaults(index.manifest, settings))


@contextlib.contextmanager
def _one_query_thread() -> Iterator[None]:
    """Queries on one thread, as ``wikirag eval`` and the service run them
    (``WIKIRAG_QUERY_THREADS``, default 1; :func:`app.retrieval.retriever.serving_embedder`); the
    session's embedder keeps every core for builds. On 2 busy cores one query took 164 ms of
    CPU with torch's 2 threads against 18 ms with one."""
    import faiss
    import torch

    torch_threads, faiss_threads = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)
        faiss.omp_set_num_threads(faiss_threads)


@pytest.fixture(scope="module")
def figures(retriever: HybridRetriever) -> dict[str, Any]:
    questions = [q for q in load_questions(SQUAD_QUESTIONS) if q.title in SQUAD_ARTICLES]
    with _one_query_thread():
        result = evaluate(retriever, questions, variants=VARIANTS, progress=False)
    print({name: scores for name, scores in result["modes"].items()})  # shown with -s
    return result


def test_the_corpus_is_the_one_measured(figures: dict[str, Any]) -> None:
    assert figures["questions"] == QUESTIONS
    # a few hundred passages: embedded in well under a minute on 2 cores
    assert 300 <= figures["passages"] <= 500, figures["passages"]


def test_the_recorded_fusion_defaults_are_used(retriever: HybridRetriever) -> None:
    assert retriever.index.manifest.retrieval == {
        "fusion": "linear",
        "rrf_k": 60,
        "alpha": 0.45,
        "candidates": 100,
    }
    assert retriever.defaults == RetrievalDefaults(FusionMethod.LINEAR, 60, 0.45, 100)


@pytest.mark.parametrize("variant", sorted(MEASURED))
def test_quality_stays_above_its_floor(figures: dict[str, Any], variant: str) -> None:
    scores = figures["modes"][variant]
    floors = {key: round(value - MARGIN, 4) for key, value in MEASURED[variant].items()}
    below = {key: (scores[key], floor) for key, floor in floors.items() if scores[key] < floor}
    assert not below, f"{variant} fell below its floor (measured, floor): {below}"


@pytest.mark.parametrize("fused", ["hybrid", "hybrid_rrf"])
@pytest.mark.parametrize("component", ["dense", "lexical"])
def test_hybrid_beats_each_component(figures: dict[str, Any], fused: str, component: str) -> None:
    """Today hybrid leads lexical (the stronger component) by 0.0455 top-1 and 0.0367 MRR
    (linear), 0.0215 and 0.0185 (RRF); dense by 0.11 or more. Asked: at least 0.01 at top-1 and
    MRR@20, and no worse at top-5 (where the lead over lexical is 0.0119 to 0.0215)."""
    hybrid, alone = figures["modes"][fused], figures["modes"][component]
    assert hybrid["top1"] >= alone["top1"] + 0.01, (hybrid, alone)
    assert hybrid["mrr20"] >= alone["mrr20"] + 0.01, (hybrid, alone)
    assert hybrid["top5"] >= alone["top5"], (hybrid, alone)


def test_linear_fusion_weighs_dense_by_alpha(figures: dict[str, Any]) -> None:
    """α is the dense weight: at α = 1 linear fusion ranks exactly as dense retrieval (its
    min-max scaling keeps the order); with the weights swapped it would rank as BM25
    (lexical top-1 0.7799, dense 0.6914)."""
    assert figures["modes"]["linear_dense_only"] == figures["modes"]["dense"]
    assert figures["modes"]["linear_dense_only"] != figures["modes"]["lexical"]


def test_default_hybrid_is_linear_at_the_recorded_alpha(figures: dict[str, Any]) -> None:
    """The default hybrid ranks exactly as linear fusion with an explicit α = 0.45 (today: the
    same 0.8254 / 0.8926; α = 0.55 would give 0.8230 / 0.8893, RRF 0.8014 / 0.8744)."""
    assert figures["modes"]["hybrid"] == figures["modes"]["linear_045"]
    assert figures["modes"]["hybrid"] != figures["modes"]["hybrid_rrf"]


def test_rrf_uses_its_constant(figures: dict[str, Any]) -> None:
    """The recorded k = 60 reaches RRF and matters: k = 0 (1/rank alone, which lets one
    component's first hit win) answers 4 fewer questions at top-1 today (0.7919 against
    0.8014) and ranks worse by MRR@20 (0.8687 against 0.8744)."""
    default, k0 = figures["modes"]["hybrid_rrf"], figures["modes"]["rrf_k0"]
    assert default["top1"] > k0["top1"], (default, k0)
    assert default["mrr20"] > k0["mrr20"], (default, k0)
