"""Multilingual retrieval quality and build cost, per embedding model, side by side.

Builds the bundled sample index (every sample `make run` indexes) once per model, then runs
the multilingual dev questions (``data/samples/multilingual/questions-dev.jsonl``: same- and
cross-language, each with its language filter) through ``wikirag eval``'s evaluator, and
reports top-1/5/20 per question language and per kind, with the build's passages/s and the
query language detector's accuracy on the questions.

    python -m benchmarks.multilingual_eval                      # both models
    python -m benchmarks.multilingual_eval --model multilingual-e5-small

Results: ``benchmarks/results/multilingual_eval.json`` and the ``multilingual`` section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    ROOT,
    SAMPLES,
    machine_info,
    md_table,
    peak_rss_mb,
    update_results_md,
    write_result,
)

QUESTIONS = SAMPLES / "multilingual" / "questions-dev.jsonl"
MODELS = ("all-MiniLM-L6-v2", "multilingual-e5-small")
SOURCES = [
    SAMPLES / "enwiki-sample-pages-articles.xml.bz2",
    SAMPLES / "enwiki-table-markup.xml.bz2",
    *sorted((SAMPLES / "wme").glob("*.tar.gz")),
    SAMPLES / "wme" / "enwiki-realtime-sample.ndjson.gz",
]
INDEX_ROOT = ROOT / "var" / "multilingual"


def build(model: str, index_dir: Path, rebuild: bool) -> dict[str, Any]:
    from indexer.build import BuildOptions, build_index
    from indexer.generation import IndexLayout, NoPublishedIndex
    from indexer.ingest import IngestOptions

    try:
        current = IndexLayout(index_dir).current()
        if not rebuild:
            return {"reused": current.generation, "seconds": current.manifest.build_seconds,
                    "passages": current.manifest.counts.indexed_passages}  # fmt: skip
    except NoPublishedIndex:
        pass
    options = BuildOptions(
        model=model, ingest=IngestOptions(wiki="enwiki", progress=False), progress=True
    )
    started = time.perf_counter()
    report = build_index(SOURCES, index_dir, options)
    seconds = time.perf_counter() - started
    embed = report.stage_seconds.get("embed") or report.stage_seconds.get("embedding")
    return {
        "seconds": round(seconds, 1),
        "stage_seconds": {k: round(v, 1) for k, v in report.stage_seconds.items()},
        "passages": report.passages,
        "passages_per_s_embed": round(report.passages / embed, 1) if embed else None,
        "passages_per_s_build": round(report.passages / seconds, 1),
    }


def evaluate_model(model: str, index_dir: Path) -> dict[str, Any]:
    from app.evaluation.retrieval import evaluate, load_questions
    from app.retrieval.ranking import SearchRequest
    from app.retrieval.retriever import HybridRetriever, LoadedIndex
    from indexer.embedding import open_embedder

    embedder = open_embedder(model, threads=1)
    index = LoadedIndex.open(index_dir, embedder.info)
    retriever = HybridRetriever(index, embedder)
    questions = list(load_questions(QUESTIONS))
    detected = [retriever.query_language(SearchRequest(q.question)).language for q in questions]
    right = sum(1 for q, d in zip(questions, detected, strict=True) if d == q.question_language)
    started = time.perf_counter()
    result = evaluate(retriever, questions, progress=False)
    result["eval_seconds"] = round(time.perf_counter() - started, 1)
    result["language_detection"] = {"correct": right, "questions": len(questions)}
    index.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", choices=MODELS, help="default: both")
    parser.add_argument("--rebuild", action="store_true", help="rebuild existing indexes")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": machine_info(),
        "questions": str(QUESTIONS.relative_to(ROOT)),
    }
    for model in args.model or MODELS:
        index_dir = INDEX_ROOT / model
        built = build(model, index_dir, args.rebuild)
        results[model] = {"build": built, "eval": evaluate_model(model, index_dir)}
        print(model, built)
    results["peak_rss_mb"] = peak_rss_mb()
    write_result("multilingual_eval", results)
    models = list(args.model or MODELS)
    first = results[models[0]]["eval"]

    def cell(model: str, group: str, value: str, mode: str) -> str:
        part = results[model]["eval"].get(group, {}).get(value)
        if part is None:
            return "–"
        s = part["modes"][mode]
        return f"{s['top1']:.2f} / {s['top5']:.2f} / {s['top20']:.2f}"

    rows = []
    for group in ("by_kind", "by_language", "by_language_kind"):
        for value, part in first.get(group, {}).items():
            rows.append([f"{group[3:]} = {value}", part["questions"]]
                        + [cell(m, group, value, mode) for m in models
                           for mode in ("hybrid", "dense", "lexical")])  # fmt: skip
    headers = ["questions", "n"] + [f"{m} {mode}" for m in models
                                    for mode in ("hybrid", "dense", "lexical")]  # fmt: skip
    body = (
        f"Multilingual dev questions (`{QUESTIONS.name}`, {first['questions']} questions) over "
        "the bundled sample index (every sample `make run` indexes), one build per model; "
        "top-1 / top-5 / top-20, each question with its own language filter. Language "
        "detection: py3langid restricted to the index's languages.\n\n"
        + md_table(headers, rows)
        + "\n\n"
        + md_table(
            ["model", "passages", "build s", "embed passages/s", "detector correct"],
            [
                [
                    m,
                    results[m]["build"].get("passages"),
                    results[m]["build"].get("seconds"),
                    results[m]["build"].get("passages_per_s_embed"),
                    f"{results[m]['eval']['language_detection']['correct']}/"
                    f"{results[m]['eval']['language_detection']['questions']}",
                ]
                for m in models
            ],
        )
    )
    update_results_md("multilingual", body)
    print(body)


if __name__ == "__main__":
    main()
