"""``wikirag shard`` and ``wikirag eval-attribution`` as real subprocesses (the venv's python,
``python -m app.cli.main``) over the tiny test index of ``test_api.py``: their exact output, the
shards they write (directories, manifests, passage counts, each one searchable) and the exit
status and message of bad arguments."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.retrieval.ranking import SearchMode, SearchRequest
from app.retrieval.retriever import HybridRetriever, LoadedIndex
from indexer.generation import IndexLayout
from indexer.lexical import LexicalIndex
from indexer.manifest import record_json
from indexer.sharding import hash_shard
from tests.conftest import ROOT
from tests.test_api import CURRENT_REVISION, copy_index, index_dir, shared_embedder

__all__ = ["index_dir"]  # the session's tiny index, shared with test_api

pytestmark = pytest.mark.slow

WIKIS = ["enwikiversity", "ruwiki", "simplewiki"]
# stored / indexed (current revision) passages per wiki of the tiny index: simplewiki also
# stores the older revision of its article (72 more passages, not indexed)
PASSAGES = {"enwikiversity": 8, "ruwiki": 11, "simplewiki": 144}
INDEXED = {"enwikiversity": 8, "ruwiki": 11, "simplewiki": 72}
QUERIES = {
    "enwikiversity": "learning projects and courses",
    "ruwiki": "языки программирования",  # its sample article is the Squirrel language
    "simplewiki": "Einstein Nobel Prize",
}


def wikirag(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *map(str, args)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _usage_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit status 2, ``message`` on stderr, nothing on stdout, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert message in result.stderr, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr


def _wiki_passages(store: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT wiki, COUNT(*) FROM passages GROUP BY wiki ORDER BY wiki")
        return {str(w): int(n) for w, n in rows}
    finally:
        conn.close()


def _pages(store: Path) -> set[tuple[str, int]]:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return {(str(w), int(p)) for w, p in conn.execute("SELECT wiki, page_id FROM pages")}
    finally:
        conn.close()


# -- wikirag shard ------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    out: Path
    report: dict[str, Any]


@pytest.fixture(scope="module")
def source(index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_index(index_dir, tmp_path_factory.mktemp("cmd-shard") / "index")


@pytest.fixture(scope="module")
def splits(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Split]]:
    """The source split three ways by ``wikirag shard --json``."""
    root = tmp_path_factory.mktemp("cmd-splits")
    out: dict[str, Split] = {}
    for name, flags in {
        "wiki": ["--by", "wiki"],
        "wiki2": ["--by", "wiki", "--shards", "2"],
        "hash2": ["--by", "hash", "--shards", "2"],
    }.items():
        result = wikirag("shard", "--index", source, "--out", root / name, *flags, "--json")
        assert result.returncode == 0, result.stderr
        out[name] = Split(root / name, json.loads(result.stdout))
    yield out


def test_shard_reports_exact_shards_and_passage_counts(
    source: Path, splits: dict[str, Split]
) -> None:
    generation = IndexLayout(source).current()
    # (wikis, pages, stored passages, indexed passages) per shard, in shard order
    expected = {
        "wiki": [(["enwikiversity"], 1, 8, 8), (["ruwiki"], 1, 11, 11),
                 (["simplewiki"], 1, 144, 72)],
        # packed largest first into the emptiest group
        "wiki2": [(["simplewiki"], 1, 144, 72), (["enwikiversity", "ruwiki"], 2, 19, 19)],
        "hash2": [(["ruwiki"], 1, 11, 11), (["enwikiversity", "simplewiki"], 2, 152, 80)],
    }  # fmt: skip
    counts = generation.manifest.counts
    assert (counts.pages, counts.passages, counts.indexed_passages) == (3, 163, 91)
    for name, split in splits.items():
        report = split.report
        assert (report["source_generation"], report["by"]) == (
            generation.generation, "hash" if name.startswith("hash") else "wiki",
        )  # fmt: skip
        shards = report["shards"]
        assert [s["id"] for s in shards] == list(range(len(expected[name])))
        assert [s["path"] for s in shards] == [
            str(split.out / f"shard-{i}") for i in range(len(shards))
        ]
        assert sorted(p.name for p in split.out.iterdir()) == [
            f"shard-{i}" for i in range(len(shards))
        ]
        got = [(s["wikis"], s["pages"], s["passages"], s["indexed_passages"]) for s in shards]
        assert got == expected[name], name
        assert {s["vectors_from"] for s in shards} == {"faiss"}  # the source is Flat
        # nothing lost, nothing twice
        assert sum(s["pages"] for s in shards) == counts.pages
        assert sum(s["passages"] for s in shards) == counts.passages
        assert sum(s["indexed_passages"] for s in shards) == counts.indexed_passages
        if name.startswith("wiki"):
            assert sorted(w for s in shards for w in s["wikis"]) == WIKIS  # each in one shard


def test_shard_writes_published_indexes_with_their_manifest(
    source: Path, splits: dict[str, Split]
) -> None:
    src = IndexLayout(source).current()
    source_pages = _pages(src.file("store.sqlite"))
    for name, split in splits.items():
        seen: set[tuple[str, int]] = set()
        of = len(split.report["shards"])
        for summary in split.report["shards"]:
            generation = IndexLayout(Path(summary["path"])).current()
            assert generation.generation == summary["generation"]
            manifest = generation.manifest
            by = "hash" if name.startswith("hash") else "wiki"
            assert manifest.shard is not None and record_json(manifest.shard) == {
                "id": summary["id"],
                "of": of,
                "by": by,
                "key": f"sha256(wiki:page_id) mod {of}" if by == "hash" else "wiki",
                "wikis": summary["wikis"],
                "source_generation": src.generation,
            }
            assert manifest.model == src.manifest.model
            assert manifest.counts.indexed_passages == summary["indexed_passages"]
            assert manifest.counts.passages == summary["passages"]
            assert manifest.dense.factory == src.manifest.dense.factory
            stats = manifest.lexical.stats
            assert stats is not None and stats.documents == summary["indexed_passages"]
            assert LexicalIndex.open(generation.file("lexical")).num_docs == stats.documents
            store = generation.file("store.sqlite")
            per_wiki = _wiki_passages(store)
            assert per_wiki == {w: PASSAGES[w] for w in summary["wikis"]}
            pages = _pages(store)
            assert not pages & seen, "a page in two shards"
            seen |= pages
            if by == "hash":
                assert {hash_shard(w, p, of) for w, p in pages} == {summary["id"]}
        assert seen == source_pages


def test_each_shard_answers_a_search_like_the_unsharded_index(
    source: Path, splits: dict[str, Split]
) -> None:
    """Dense search (exact vectors copied from the Flat source): a shard's top passages are
    the source's top passages among those the shard holds, with the same scores."""
    embedder = shared_embedder()
    whole = LoadedIndex.open(source, embedder.info)
    try:
        reference = HybridRetriever(whole, embedder)
        for split in splits.values():
            for summary in split.report["shards"]:
                shard = LoadedIndex.open(Path(summary["path"]), embedder.info)
                try:
                    retriever = HybridRetriever(shard, embedder)
                    for wiki in summary["wikis"]:
                        query = QUERIES[wiki]
                        hits = retriever.search(SearchRequest(query, k=3, mode=SearchMode.DENSE))
                        everything = reference.search(
                            SearchRequest(query, k=91, mode=SearchMode.DENSE)
                        )
                        held = [h for h in everything if h.passage.wiki in summary["wikis"]][:3]
                        assert [h.passage.passage_id for h in hits] == [
                            h.passage.passage_id for h in held
                        ]
                        for hit, ref in zip(hits, held, strict=True):
                            assert hit.scores["dense"] == pytest.approx(ref.scores["dense"])
                        lexical = retriever.search(
                            SearchRequest(query, k=2, mode=SearchMode.LEXICAL)
                        )
                        assert len(lexical) == 2, (query, summary)
                        assert {h.passage.wiki for h in lexical} <= set(summary["wikis"])
                    if "simplewiki" in summary["wikis"]:
                        top = retriever.search(SearchRequest(QUERIES["simplewiki"], k=1))[0]
                        assert top.passage.passage_id == f"simplewiki:{CURRENT_REVISION}:0"
                        assert top.passage.license.identifier == "CC-BY-SA-3.0"
                finally:
                    shard.close()
    finally:
        whole.close()


def test_shard_prints_a_readable_report(source: Path, tmp_path: Path) -> None:
    result = wikirag("shard", "--index", source, "--out", tmp_path / "out", "--by", "wiki")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    generation = IndexLayout(source).current().generation
    assert re.fullmatch(rf"split generation {generation} by wiki in \d+\.\d s", lines[0])
    assert lines[1:] == [
        f"  shard {i}: {tmp_path / 'out' / f'shard-{i}'}  1 pages, {INDEXED[wiki]} indexed "
        f"passages, wikis {wiki} (vectors: faiss)"
        for i, wiki in enumerate(WIKIS)
    ]


def test_shard_bad_arguments_exit_2_and_say_why(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _usage_error(wikirag("shard", "--index", source), "the following arguments are required: --out")
    _usage_error(
        wikirag("shard", "--index", source, "--out", out, "--by", "page"),
        "argument --by: invalid choice: 'page'",
    )
    _usage_error(
        wikirag("shard", "--index", source, "--out", out, "--shards", "two"),
        "argument --shards: invalid int value: 'two'",
    )
    _usage_error(
        wikirag("shard", "--index", source, "--out", out, "--by", "hash"),
        "wikirag shard: --by hash needs --shards N (N ≥ 1)",
    )
    _usage_error(
        wikirag("shard", "--index", source, "--out", out, "--by", "hash", "--shards", "0"),
        "wikirag shard: --by hash needs --shards N (N ≥ 1)",
    )
    _usage_error(
        wikirag("shard", "--index", source, "--out", out, "--by", "wiki", "--shards", "4"),
        "wikirag shard: --by wiki with 3 wiki(s) allows 1 to 3 shards, not 4",
    )
    assert not out.exists()  # nothing written
    first = wikirag("shard", "--index", source, "--out", out, "--by", "hash", "--shards", "1")
    assert first.returncode == 0, first.stderr
    before = IndexLayout(out / "shard-0").current().generation
    _usage_error(
        wikirag("shard", "--index", source, "--out", out, "--by", "wiki"),
        f"wikirag shard: {out} already holds shards (shard-0…); use a new one",
    )
    assert sorted(p.name for p in out.iterdir()) == ["shard-0"]
    assert IndexLayout(out / "shard-0").current().generation == before
    missing = wikirag(
        "shard", "--index", tmp_path / "none", "--out", tmp_path / "o2", "--by", "wiki"
    )
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert f"wikirag shard: {tmp_path / 'none'} has no published index" in missing.stderr


# -- wikirag eval-attribution ---------------------------------------------------------------

PER_KIND = 4
KINDS = ("verbatim", "dropped", "reordered", "heldout", "changed_number", "changed_name")
# items per kind and half with --per-kind 4 --seed 13 (the default) on the tiny index, with
# negatives from the bundled WME samples (the default --heldout)
BY_KIND_N = {
    "calibration": {"verbatim": 3, "dropped": 3, "reordered": 2, "heldout": 2,
                    "changed_number": 0, "changed_name": 1},
    "report": {"verbatim": 1, "dropped": 1, "reordered": 2, "heldout": 2,
               "changed_number": 4, "changed_name": 3},
}  # fmt: skip


@pytest.fixture(scope="module")
def evaluation(
    index_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    output = tmp_path_factory.mktemp("cmd-eval") / "figures.json"
    result = wikirag(
        "eval-attribution", "--index", index_dir, "--per-kind", str(PER_KIND), "--output", output
    )
    assert result.returncode == 0, result.stderr
    return result, json.loads(output.read_text())


def test_eval_attribution_counts_every_kind_of_claim(
    evaluation: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    _, figures = evaluation
    assert figures["items"] == 6 * PER_KIND == 24
    assert figures["indexed_articles"] == [
        "enwikiversity:Albert Einstein", "ruwiki:Squirrel", "simplewiki:Albert Einstein",
    ]  # fmt: skip
    # negatives from articles whose title is not indexed (dewiki's sample is Einstein and
    # Squirrel again: left out)
    assert figures["heldout_articles"] == [
        "enwiki:Josephine Baker", "frwiki:Anarchisme", "frwiki:Calvi", "frwiki:Joséphine Baker",
    ]  # fmt: skip
    assert figures["languages"] == ["en", "ru", "simple"]
    assert figures["scorer"] == "lexical-dense"
    for half, kinds in BY_KIND_N.items():
        metrics = figures[half]
        assert {kind: v["n"] for kind, v in metrics["by_kind"].items()} == kinds
        assert metrics["n"] == sum(kinds.values())
    assert figures["calibration"]["n"] + figures["report"]["n"] == figures["items"]
    # labels: verbatim sentences and sentences with two words dropped are supported; a
    # changed name never is (the passage must contain the sentence's names), nor is a
    # held-out sentence. A sentence whose halves are swapped at a comma keeps too few of the
    # quote's word pairs in order (word_order < 0.6: at most partial), so no threshold
    # supports both of the calibration half's: it calibrates down to 0.3, where one changed
    # number whose new value the quoted window states elsewhere passes in the report half.
    expected = {
        "calibration": {"verbatim": 1.0, "dropped": 1.0, "reordered": 0.0, "heldout": 0.0,
                        "changed_number": None, "changed_name": 0.0},
        "report": {"verbatim": 1.0, "dropped": 1.0, "reordered": 0.5, "heldout": 0.0,
                   "changed_number": 0.25, "changed_name": 0.0},
    }  # fmt: skip
    for half, rates in expected.items():
        assert {k: v["supported_rate"] for k, v in figures[half]["by_kind"].items()} == rates
    assert (figures["calibration"]["precision"], figures["calibration"]["recall"]) == (1.0, 0.75)
    assert (figures["report"]["precision"], figures["report"]["recall"]) == (0.75, 0.75)
    assert figures["calibration"]["top1_passage_accuracy"] == 1.0
    thresholds = figures["thresholds"]
    assert thresholds == {"supported": 0.3, "partial": 0.3}
    assert set(figures["best_score_by_kind"]) == set(BY_KIND_N["report"])
    assert figures["best_score_by_kind"]["verbatim"]["min"] == 1.0
    latency = figures["latency_5_sentences"]
    assert latency["answers"] == 10 and 0 < latency["p50_s"] <= latency["max_s"]


def test_eval_attribution_prints_the_figures_it_writes(
    evaluation: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    result, figures = evaluation
    lines = result.stdout.splitlines()
    t = figures["thresholds"]
    assert lines[0] == (
        f"24 sentences; thresholds: supported ≥ {t['supported']}, partial ≥ {t['partial']} "
        "(calibrated on the calibration half)"
    )
    assert lines[1].split() == ["half", "n", "precision", "recall", "top1", "supported",
                                "rate", "by", "kind"]  # fmt: skip
    for line, half in zip(lines[2:4], ("calibration", "report"), strict=True):
        m = figures[half]
        by_kind = m["by_kind"]  # printed in KINDS order, the kinds with items only
        rates = [
            t for k in KINDS if by_kind[k]["n"] for t in (k, str(by_kind[k]["supported_rate"]))
        ]
        assert line.split() == [
            half,
            str(m["n"]),
            str(m["precision"]),
            str(m["recall"]),
            str(m["top1_passage_accuracy"]),
            *rates,
        ]
    assert [line.split()[0] for line in lines[2:4]] == ["calibration", "report"]
    assert "changed_number" not in lines[2] and "changed_number 0.25" in lines[3]
    lat = figures["latency_5_sentences"]
    assert lines[4:] == [f"5-sentence answer latency: p50 {lat['p50_s']} s, max {lat['max_s']} s"]


def test_eval_attribution_bad_arguments_exit_2_and_say_why(index_dir: Path) -> None:
    cmd = ("eval-attribution", "--index", index_dir)
    _usage_error(wikirag(*cmd, "--per-kind", "x"), "argument --per-kind: invalid int value: 'x'")
    _usage_error(wikirag(*cmd, "--seed", "1.5"), "argument --seed: invalid int value: '1.5'")
    _usage_error(wikirag(*cmd, "--output"), "argument --output: expected one argument")
    _usage_error(wikirag(*cmd, "--json"), "unrecognized arguments: --json")
