"""The capacity benchmark's measurements on real parts: a real sample ingested into a real
store, a real tantivy index, real FAISS indexes; and the plan calculated from its results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import capacity_bench as cb
from benchmarks._common import RESULTS_DIR, SAMPLES

SIMPLEWIKI = SAMPLES / "wme" / "simplewiki_namespace_0.tar.gz"


def test_corpus_and_lexical_figures_match_the_store(tmp_path: Path) -> None:
    corpus = cb.measure_corpus([SIMPLEWIKI], tmp_path)
    wiki = corpus["by_wiki"]["simplewiki"]
    assert wiki["articles"] >= 1 and wiki["passages"] >= wiki["articles"]
    assert 1 <= wiki["words_per_passage"] <= 100  # the chunker's bound
    assert wiki["wikitext_bytes"] > wiki["text_bytes"] > 0  # markup removed
    store = corpus["store"]
    assert store["bytes"] == (tmp_path / "store-0.sqlite").stat().st_size
    # the store keeps passage text and section text: more than the passage text alone
    assert store["bytes_per_passage"] > store["passage_text_bytes_per_passage"]
    lexical = cb.measure_lexical([tmp_path / "store-0.sqlite"], tmp_path)
    assert lexical["passages"] == wiki["passages"]
    assert lexical["bytes"] > 0


def test_faiss_rows_size_and_recall() -> None:
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((2000, 64)).astype(np.float32)
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    rows = {(r["factory"], r["nprobe"]): r for r in cb.measure_faiss(xb, xb[:50], ("Flat", "SQ8"))}
    flat, sq8 = rows[("Flat", None)], rows[("SQ8", None)]
    assert flat["recall_at_10"] == 1.0
    assert flat["bytes_per_vector"] == pytest.approx(64 * 4 + 8)  # float32 codes + int64 id
    assert sq8["bytes_per_vector"] == pytest.approx(64 + 8)
    assert 0.5 < sq8["recall_at_10"] <= 1.0


@pytest.mark.skipif(not (RESULTS_DIR / "capacity.json").exists(), reason="no capacity.json yet")
def test_plan_from_recorded_results() -> None:
    data = json.loads((RESULTS_DIR / "capacity.json").read_text(encoding="utf-8"))
    plan = cb.calculate(data["measured"])
    en, everything = plan["corpora"]["enwiki"], plan["corpora"]["all"]
    words_per_passage = data["measured"]["corpus"]["groups"]["enwiki"]["words_per_passage"]
    assert en["passages"] == round(cb.EXTERNAL["enwiki"]["words"] / words_per_passage)
    assert everything["passages"] > en["passages"]
    # more cores, fewer hours, in proportion
    hours = en["embedding_hours"]
    assert hours["cpu_16"] == pytest.approx(hours["cpu_64"] * 4, rel=0.02)
    text = cb.docs_markdown({**data, "plan": plan})
    assert "### Serving" in text and "**C**" in text and "**X**" in text
