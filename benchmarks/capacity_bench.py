"""Capacity plan inputs: the per-unit figures behind ``docs/capacity.md``, measured here, and
the plan calculated from them.

Measured by this script (sizes do not depend on the machine's load):

- per wiki, from the bundled real samples (``data/samples/enwiki-sample-pages-articles.xml.bz2``
  and ``data/samples/wme/*_namespace_0.tar.gz``, ingested with ``ingest_sources`` into a
  temporary store, no embedding): articles, wikitext bytes per article, passages per article,
  clean words and UTF-8 bytes per passage, store bytes per passage;
- lexical (tantivy) index bytes per passage, built over those passages the way the build feeds
  it, and the sizes of built indexes in ``var/`` when present;
- FAISS bytes per vector (serialized, marginal and fixed) and recall@10 against exact search for
  Flat, SQ, PQ and IVF variants, on the real vectors of ``var/squad2`` (8,571 passages) with
  SQuAD dev questions embedded by ``Embedder.encode_query`` as queries.

Read from other benchmarks' results (not measured here): embedding throughput
(``embed_throughput_*.json``, else ``build_bench.json``), ingestion CPU cost
(``ingest_bench.json``), per-component query CPU time (``query_bench.json``) and HTTP QPS
(``http_bench_synthetic-1m.json``). External inputs (article and word counts of the
Wikipedias) are constants below, with their sources.

Run time: 2–3 minutes on a quiet 2-core machine (FAISS PQ training dominates; 12 minutes at a
load average of 7–12).

    .venv/bin/python -m benchmarks.capacity_bench                 # measure, write, regenerate docs
    .venv/bin/python -m benchmarks.capacity_bench --queries 50 --no-write   # smoke
    .venv/bin/python -m benchmarks.capacity_bench --markdown-only # tables from capacity.json
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import (
    RESULTS_DIR,
    ROOT,
    SAMPLES,
    LoadSampler,
    dir_size_bytes,
    machine_info,
    machine_line,
    md_table,
    update_results_md,
    write_result,
)

NAME = "capacity"
DOC = ROOT / "docs" / "capacity.md"
DOC_SECTION = "capacity-generated"
SQUAD_INDEX = ROOT / "var" / "squad2"
BENCH_1M = ROOT / "var" / "bench-1m"
QUESTIONS = SAMPLES / "squad" / "squad-dev-questions.jsonl"

FACTORIES = (
    "Flat",
    "SQfp16",
    "SQ8",
    "PQ96",
    "PQ48",
    "IVF128,Flat",
    "IVF128,SQ8",
    "IVF128,PQ48",
)
NPROBES = (8, 32)
NOT_WIKIPEDIA = frozenset({"enwikiversity"})

# External inputs: not measured here. Wikipedia:Size of Wikipedia (26 July 2025): 7,028,569
# articles, "over 5 billion words", mean ≈ 702 words per article. All Wikipedias: 64,314,083
# articles (24 January 2025, as reported from Wikimedia statistics); words: Wikipedia:Size
# comparisons gives "more than 29 billion words in 55 million articles" (≈ 527 words per
# article, c. 2022); scaled to today's article count at that mean.
EXTERNAL: dict[str, dict[str, Any]] = {
    "enwiki": {
        "articles": 7_028_569,
        "words": 5.0e9,
        "source": "Wikipedia:Size of Wikipedia, as of 26 July 2025 (7,028,569 articles, "
        "over 5 billion words, mean ≈ 702 words/article)",
    },
    "all": {
        "articles": 64_314_083,
        "words": 64_314_083 * 29e9 / 55e6,
        "source": "all Wikipedias: 64,314,083 articles (24 January 2025); words scaled from "
        "Wikipedia:Size comparisons ('more than 29 billion words in 55 million articles', "
        "≈ 527 words/article) to that article count",
    },
}

# Plan parameters (choices, not measurements).
CPU_CORES = (16, 64, 512)
GPUS = (1, 8)
TARGET_QPS = (100, 1_000, 10_000)
SHARD_PASSAGES = 10_000_000
RAY_CLUSTER = {"gpus": 8, "cpu_cores": 128}
CPU_UTILISATION = 0.7  # plan cores for 70 % busy at the target QPS


# -- measurement: corpus --------------------------------------------------------------------


def sample_sources() -> list[Path]:
    sources = [SAMPLES / "enwiki-sample-pages-articles.xml.bz2"]
    sources += sorted((SAMPLES / "wme").glob("*_namespace_0.tar.gz"))
    return [s for s in sources if s.exists()]


def ingest_source(source: Path, store_path: Path) -> dict[str, Any]:
    """Ingest one sample into a fresh store and read per-wiki counts back from it."""
    from indexer.ingest import IngestOptions, ingest_sources
    from indexer.models import RawRevision
    from indexer.store import PassageStore, RevisionOutcome

    wikitext: Counter[str] = Counter()
    articles: Counter[str] = Counter()

    def hook(raw: RawRevision, outcome: RevisionOutcome) -> None:
        if outcome is RevisionOutcome.ADDED:
            wikitext[raw.wiki] += len(raw.wikitext.encode("utf-8"))
            articles[raw.wiki] += 1

    store = PassageStore(store_path)
    started = time.perf_counter()
    ingest_sources([source], store, IngestOptions(progress=False), on_revision=hook)
    seconds = time.perf_counter() - started
    store.finalize()
    store.close()
    wikis: dict[str, dict[str, Any]] = {}
    conn = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    try:
        for (wiki,) in conn.execute("SELECT wiki FROM wikis"):
            words: list[int] = []
            text_bytes = chars = 0
            for (text,) in conn.execute("SELECT text FROM passages WHERE wiki = ?", (wiki,)):
                words.append(len(text.split()))
                chars += len(text)
                text_bytes += len(text.encode("utf-8"))
            (section_bytes,) = conn.execute(
                "SELECT COALESCE(SUM(LENGTH(CAST(text AS BLOB))), 0) FROM sections WHERE wiki = ?",
                (wiki,),
            ).fetchone()
            n = len(words)
            wikis[wiki] = {
                "articles": articles[wiki],
                "wikitext_bytes": wikitext[wiki],
                "passages": n,
                "words": sum(words),
                "chars": chars,
                "text_bytes": text_bytes,
                "section_text_bytes": int(section_bytes),
                "median_words_per_passage": statistics.median(words) if words else 0,
            }
    finally:
        conn.close()
    return {
        "source": str(source.relative_to(ROOT)),
        "seconds": round(seconds, 2),
        "store_bytes": store_path.stat().st_size,
        "wikis": wikis,
    }


def per_unit(w: dict[str, Any]) -> dict[str, float]:
    """Per-article and per-passage ratios of one wiki's (or a sum of wikis') counts."""
    articles, passages = max(w["articles"], 1), max(w["passages"], 1)
    return {
        "passages_per_article": round(w["passages"] / articles, 2),
        "wikitext_bytes_per_article": round(w["wikitext_bytes"] / articles),
        "words_per_article": round(w["words"] / articles, 1),
        "words_per_passage": round(w["words"] / passages, 2),
        "chars_per_passage": round(w["chars"] / passages, 1),
        "bytes_per_passage": round(w["text_bytes"] / passages, 1),
        "bytes_per_word": round(w["text_bytes"] / max(w["words"], 1), 3),
        "clean_words_per_wikitext_kb": round(1000 * w["words"] / max(w["wikitext_bytes"], 1), 1),
    }


def summed(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("articles", "wikitext_bytes", "passages", "words", "chars", "text_bytes")
    return {k: sum(r[k] for r in rows) for k in keys}


def measure_corpus(sources: list[Path], work: Path) -> dict[str, Any]:
    runs = []
    for i, source in enumerate(sources):
        run = ingest_source(source, work / f"store-{i}.sqlite")
        print(f"ingested {run['source']}: {run['seconds']} s", file=sys.stderr, flush=True)
        runs.append(run)
    rows = [{"wiki": wiki, **w} for run in runs for wiki, w in run["wikis"].items()]
    by_wiki: dict[str, dict[str, Any]] = {}
    for wiki in sorted({r["wiki"] for r in rows}):
        total = summed([r for r in rows if r["wiki"] == wiki])
        by_wiki[wiki] = {**total, **per_unit(total)}
    wikipedia = [r for r in rows if r["wiki"] not in NOT_WIKIPEDIA]
    groups = {
        "enwiki": summed([r for r in rows if r["wiki"] == "enwiki"]),
        "wikipedias": summed(wikipedia),
        "non_english_wikipedias": summed([r for r in wikipedia if r["wiki"] != "enwiki"]),
    }
    passages = sum(r["passages"] for r in rows)
    store_bytes = sum(run["store_bytes"] for run in runs)
    text_bytes = sum(r["text_bytes"] for r in rows)
    section_bytes = sum(r["section_text_bytes"] for r in rows)
    return {
        "sources": runs,
        "by_wiki": by_wiki,
        "groups": {name: {**g, **per_unit(g)} for name, g in groups.items()},
        "store": {
            "passages": passages,
            "bytes": store_bytes,
            "bytes_per_passage": round(store_bytes / max(passages, 1), 1),
            "passage_text_bytes_per_passage": round(text_bytes / max(passages, 1), 1),
            "section_text_bytes_per_passage": round(section_bytes / max(passages, 1), 1),
            "note": "the store keeps each revision's clean section text and its passages' "
            "text (the clean text twice), revision and page metadata and indexes; no wikitext",
        },
    }


# -- measurement: lexical index ---------------------------------------------------------------


def measure_lexical(stores: list[Path], work: Path) -> dict[str, Any]:
    """Build one tantivy index over every sample passage, as the build feeds it."""
    from indexer.lexical import LexicalIndex, lexical_doc
    from indexer.store import PassageStore

    path = work / "lexical"
    count = 0
    started = time.perf_counter()
    with LexicalIndex.create(path) as writer:
        for store_path in stores:
            store = PassageStore(store_path, readonly=True)
            for record in store.iter_current_passages():
                writer.add(lexical_doc(record))
                count += 1
            store.close()
        writer.commit()
    size = dir_size_bytes(path)
    return {
        "passages": count,
        "bytes": size,
        "bytes_per_passage": round(size / max(count, 1), 1),
        "seconds": round(time.perf_counter() - started, 2),
    }


def existing_indexes() -> dict[str, Any]:
    """Sizes of built index generations in ``var/`` (skipped when absent)."""
    from indexer.generation import MANIFEST, IndexLayout

    found: dict[str, Any] = {}
    for name, root in (("squad2", SQUAD_INDEX), ("synthetic-1m", BENCH_1M)):
        current = root / "current"
        if not (current / MANIFEST).exists():
            continue
        meta = IndexLayout(root).current().manifest
        passages = meta.counts.indexed_passages
        if not passages:
            continue
        sizes = {
            "store": dir_size_bytes(current / "store.sqlite"),
            "dense": dir_size_bytes(current / "dense.faiss"),
            "lexical": dir_size_bytes(current / "lexical"),
        }
        found[name] = {
            "path": str(root.relative_to(ROOT)),
            "passages": passages,
            "dense_factory": meta.dense.factory,
            "bytes": sizes,
            "bytes_per_passage": {k: round(v / passages, 1) for k, v in sizes.items()},
        }
    return found


# -- measurement: FAISS -----------------------------------------------------------------------


def squad_vectors() -> np.ndarray | None:
    """The real passage vectors of ``var/squad2`` (exact index: reconstructed losslessly)."""
    import faiss

    path = SQUAD_INDEX / "current" / "dense.faiss"
    if not path.exists():
        return None
    index: Any = faiss.read_index(str(path))
    inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
    return np.ascontiguousarray(inner.reconstruct_n(0, inner.ntotal), dtype=np.float32)


def query_vectors(n: int, passages: np.ndarray) -> tuple[np.ndarray, str]:
    """The first ``n`` SQuAD dev questions embedded as the service does; passage vectors when
    ``n`` is 0 or the questions file is missing."""
    if n <= 0 or not QUESTIONS.exists():
        rows = np.random.default_rng(0).choice(len(passages), 500, replace=False)
        return passages[np.sort(rows)], "500 passage vectors used as queries"
    from indexer.embedding import Embedder

    questions = []
    with QUESTIONS.open(encoding="utf-8") as lines:
        for line in lines:
            questions.append(json.loads(line)["question"])
            if len(questions) >= n:
                break
    embedder = Embedder()
    vectors = np.stack([embedder.encode_query(q) for q in questions])
    return vectors, f"first {len(questions)} SQuAD dev questions, Embedder.encode_query"


def measure_faiss(
    xb: np.ndarray, xq: np.ndarray, factories: tuple[str, ...]
) -> list[dict[str, Any]]:
    import faiss

    k = 10
    # One thread: FAISS's k-means (PQ training) slows down several-fold when its OpenMP
    # threads compete with other work on a small shared machine; sizes and recall do not
    # depend on it.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return _faiss_rows(xb, xq, factories, k)
    finally:
        faiss.omp_set_num_threads(threads)


def _faiss_rows(
    xb: np.ndarray, xq: np.ndarray, factories: tuple[str, ...], k: int
) -> list[dict[str, Any]]:
    import faiss

    from indexer.dense import DenseIndex

    n, dim = xb.shape
    exact = faiss.IndexFlatIP(dim)
    exact.add(xb)
    _, truth = exact.search(xq, k)
    ids = np.arange(n, dtype=np.int64)
    rows = []
    for factory in factories:
        index = DenseIndex.create_empty(factory, dim)
        started = time.perf_counter()
        if not index.is_trained:
            index.train(xb)
        train_s = time.perf_counter() - started
        empty = len(faiss.serialize_index(index))
        index.add_with_ids(xb, ids)
        full = len(faiss.serialize_index(index))
        ivf = faiss.try_extract_index_ivf(index)
        nprobes: tuple[int | None, ...] = NPROBES if ivf is not None else (None,)
        for nprobe in nprobes:
            if ivf is not None and nprobe is not None:
                ivf.nprobe = nprobe
            started = time.perf_counter()
            _, found = index.search(xq, k)
            search_ms = 1000 * (time.perf_counter() - started) / len(xq)
            hits = sum(len(set(t) & set(f)) for t, f in zip(truth, found, strict=True))
            rows.append(
                {
                    "factory": factory,
                    "stored_as": DenseIndex(index).factory_string,
                    "nprobe": nprobe,
                    "vectors": n,
                    "file_bytes": full,
                    "fixed_bytes": empty,
                    "bytes_per_vector": round((full - empty) / n, 1),
                    "recall_at_10": round(hits / (k * len(xq)), 4),
                    "train_seconds": round(train_s, 2),
                    "search_ms_per_query_batch": round(search_ms, 3),
                }
            )
            print(f"faiss {factory} nprobe={nprobe}: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


# -- figures read from other benchmarks ----------------------------------------------------


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / name
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def read_embedding() -> dict[str, Any]:
    """Passages/s per CPU core and per GPU from the embedding benchmarks' results."""
    out: dict[str, Any] = {}
    local = _load("embed_throughput_cpu_local.json")
    if local:
        runs = local["runs"]
        one = [r for r in runs if r["threads"] == 1] or runs
        best = max(one, key=lambda r: r["passages_per_s"])
        out["per_core"] = {
            "passages_per_s": best["passages_per_s"],
            "passages_per_cpu_s": round(best["passages"] / best["cpu_seconds"], 1),
            "from": "benchmarks/results/embed_throughput_cpu_local.json (1 thread, best batch)",
            "runs": [
                {k: r[k] for k in ("threads", "batch_size", "passages_per_s", "cpu_seconds")}
                for r in runs
            ],
            "mean_tokens_per_passage": local.get("mean_tokens_per_passage"),
        }
    else:
        build = _load("build_bench.json")
        if build:
            runs = build["embedding_overhead"]["runs"]["pipeline"]
            cpu = statistics.median(r["cpu_seconds"] for r in runs)
            texts = build["embedding_overhead"]["texts"]
            out["per_core"] = {
                "passages_per_s": round(texts / cpu, 1),
                "passages_per_cpu_s": round(texts / cpu, 1),
                "wall_passages_per_s_2_cores": build["summary"]["embed_passages_per_s"],
                "from": "benchmarks/results/build_bench.json (RESULTS.md build section; "
                "embed_throughput_cpu_local.json absent): passages per CPU-second of the "
                "build's embedding pipeline on the shared 2-core machine",
            }
    host = _load("embed_throughput_cpu16_h200host.json")
    if host:
        run = max(host["runs"], key=lambda r: r["passages_per_s"])
        out["cpu16_host"] = {
            "threads": run["threads"],
            "passages_per_s": run["passages_per_s"],
            "passages_per_cpu_s": round(run["passages"] / run["cpu_seconds"], 1),
            "mean_tokens_per_passage": host.get("mean_tokens_per_passage"),
            "from": "benchmarks/results/embed_throughput_cpu16_h200host.json",
            "note": host.get("note"),
        }
    gpu = _load("embed_throughput_gpu_h200.json")
    if gpu:
        for precision in ("fp32", "fp16"):
            runs = [r for r in gpu["runs"] if r["precision"] == precision]
            if runs:
                best = max(runs, key=lambda r: r["passages_per_s"])
                out[f"gpu_{precision}"] = {
                    "device": gpu.get("device_name"),
                    "batch_size": best["batch_size"],
                    "passages_per_s": best["passages_per_s"],
                    "peak_gpu_memory_mb": best.get("peak_gpu_memory_mb"),
                    "from": "benchmarks/results/embed_throughput_gpu_h200.json",
                }
        out["gpu_note"] = gpu.get("note")
        out["gpu_mean_tokens_per_passage"] = gpu.get("mean_tokens_per_passage")
    return out


def read_ingest() -> dict[str, Any] | None:
    data = _load("ingest_bench.json")
    if not data:
        return None
    run = max(data["runs"], key=lambda r: r["wikitext_mb"])
    return {
        "passages_per_cpu_s": round(run["passages"] / run["cpu_seconds"], 1),
        "wikitext_mb_per_cpu_s": run["mb_per_cpu_s"],
        "passages_per_s_wall": run["passages_per_s"],
        "from": "benchmarks/results/ingest_bench.json (largest input, "
        f"{run['wikitext_mb']} MB wikitext, {run['passages']} passages)",
    }


def read_query() -> dict[str, Any] | None:
    """Per-component CPU time of a hybrid query (1 thread) on the sample and the 1 M index."""
    data = _load("query_bench.json")
    if not data:
        return None
    out: dict[str, Any] = {"from": "benchmarks/results/query_bench.json (threads 1, CPU p50)"}
    for key in ("sample", "synthetic_1m"):
        run = data.get(key, {}).get("runs", {}).get("1")
        if run:
            out[key] = {
                "passages": run["passages"],
                "dense_factory": run["dense_factory"],
                "components_cpu_ms": {
                    k: v["p50_ms"] for k, v in run["components_cpu_time"].items()
                },
                "hybrid_cpu_ms": run["cpu_time_per_query"]["hybrid"]["p50_ms"],
                "rss_mb": run.get("rss_mb"),
            }
    build = data.get("synthetic_build")
    if build:
        out["synthetic_build_stage_seconds"] = build.get("stage_seconds")
    return out


def read_http() -> dict[str, Any] | None:
    data = _load("http_bench_synthetic-1m.json")
    if not data:
        return None
    runs = data.get("runs", [])
    closed = [r for r in runs if r.get("loop", "closed") == "closed" and "qps" in r]
    best16 = max(
        (r for r in closed if r.get("clients") == 16), key=lambda r: r["qps"], default=None
    )
    best = best16 or max(closed, key=lambda r: r["qps"], default=None)
    open_rows = [
        {
            "target_rate": r["target_rate"],
            "achieved_rate": r["qps"],  # http_bench's row: the achieved rate as "qps"
            "errors": r.get("errors"),
            "p50_ms": r["p50_ms"],
            "p99_ms": r["p99_ms"],
        }
        for r in runs
        if r.get("loop") == "open"
    ]
    return {
        "from": "benchmarks/results/http_bench_synthetic-1m.json",
        "index": data.get("index"),
        "workers": data.get("workers", 1),
        "query_encoder": data.get("query_encoder", "torch"),
        "cpu_count": data.get("machine", {}).get("cpu_count"),
        "timestamp": data.get("machine", {}).get("timestamp"),
        "load": data.get("load", {}).get("loadavg_1min_mean"),
        "closed_loop_best": best,
        "closed_loop": closed,
        "open_loop": open_rows,
    }


# -- the plan (calculated) --------------------------------------------------------------------


def _corpus_plan(measured: dict[str, Any], key: str, group: str) -> dict[str, Any]:
    ext = EXTERNAL[key]
    unit = measured["corpus"]["groups"][group]
    by_articles = ext["articles"] * unit["passages_per_article"]
    by_words = max(ext["words"] / unit["words_per_passage"], ext["articles"])
    return {
        "articles": ext["articles"],
        "words": ext["words"],
        "source": ext["source"],
        "sample_group": group,
        "sample_words_per_article": unit["words_per_article"],
        "external_words_per_article": round(ext["words"] / ext["articles"], 1),
        "passages_by_articles": round(by_articles),
        "passages_by_words": round(by_words),
        "passages": round(by_words),
        "words_per_passage": unit["words_per_passage"],
        "bytes_per_word": unit["bytes_per_word"],
        "clean_text_bytes": round(ext["words"] * unit["bytes_per_word"]),
    }


def _dense_row(faiss_rows: list[dict[str, Any]], factory: str) -> dict[str, Any] | None:
    rows = [r for r in faiss_rows if r["factory"] == factory]
    return max(rows, key=lambda r: r["nprobe"] or 0) if rows else None


def _query_cost(query: dict[str, Any], shard_passages: float) -> dict[str, float]:
    """CPU ms per hybrid query for one shard of ``shard_passages`` (lexical scaled by the power
    law fitted between the sample and the 1 M index; IVF dense by √n; lookup, fusion flat)."""
    small, big = query["sample"], query["synthetic_1m"]
    lex_small = small["components_cpu_ms"]["lexical_search"]
    lex_big = big["components_cpu_ms"]["lexical_search"]
    exponent = math.log(lex_big / lex_small) / math.log(big["passages"] / small["passages"])
    scale = shard_passages / big["passages"]
    c = big["components_cpu_ms"]
    lexical = lex_big * scale**exponent
    dense = c["dense_search"] * math.sqrt(scale)
    shard = lexical + dense + c["fusion"] + c["passage_lookup"]
    return {
        "lexical_exponent": round(exponent, 3),
        "lexical_ms": round(lexical, 2),
        "dense_ms": round(dense, 2),
        "shard_ms": round(shard, 2),
        "embed_ms": c["query_embedding"],
    }


def calculate(measured: dict[str, Any]) -> dict[str, Any]:
    """Every derived figure of docs/capacity.md, from the measured and read figures."""
    emb, ingest, query, http = (
        measured["embedding"],
        measured["ingest"],
        measured["query"],
        measured["http"],
    )
    lex_pp = measured["lexical"]["bytes_per_passage"]
    store_pp = measured["corpus"]["store"]["bytes_per_passage"]
    plan: dict[str, Any] = {"corpora": {}}
    per_core = emb["per_core"]["passages_per_cpu_s"]
    for key, group in (("enwiki", "enwiki"), ("all", "wikipedias")):
        c = _corpus_plan(measured, key, group)
        p = c["passages"]
        dense = {}
        for factory in ("Flat", "SQ8", "PQ96", "PQ48", "IVF128,SQ8", "IVF128,PQ48"):
            row = _dense_row(measured["faiss"], factory)
            if row:
                dense[factory] = {
                    "bytes": round(p * row["bytes_per_vector"]),
                    "recall_at_10": row["recall_at_10"],
                }
        c["sizes"] = {
            "clean_text": c["clean_text_bytes"],
            "store": round(p * store_pp),
            "lexical": round(p * lex_pp),
            "dense": dense,
        }
        hours = {f"cpu_{n}": p / (per_core * n) / 3600 for n in CPU_CORES}
        for precision in ("fp32", "fp16"):
            g = emb.get(f"gpu_{precision}")
            if g:
                for n in GPUS:
                    hours[f"gpu{n}_{precision}"] = p / (g["passages_per_s"] * n) / 3600
        c["embedding_hours"] = {k: round(v, 1) for k, v in hours.items()}
        c["ray_build"] = _ray_build(p, emb, ingest, query)
        c["serving"] = _serving(p, c["sizes"], query, http)
        plan["corpora"][key] = c
    return plan


def _ray_build(
    passages: float, emb: dict[str, Any], ingest: dict[str, Any] | None, query: dict[str, Any]
) -> dict[str, Any] | None:
    gpu = emb.get("gpu_fp16") or emb.get("gpu_fp32")
    stages = query.get("synthetic_build_stage_seconds") if query else None
    if not (gpu and ingest and stages):
        return None
    gpus, cores = RAY_CLUSTER["gpus"], RAY_CLUSTER["cpu_cores"]
    parse_rate = ingest["passages_per_cpu_s"] * cores
    embed_rate = gpu["passages_per_s"] * gpus
    streaming_s = passages / min(parse_rate, embed_rate)
    # index tail per 1 M passages (synthetic build, 2-core machine), spread over the cores
    tail_per_m = stages["dense_index"] + stages["lexical_index"] + stages["store_write"]
    tail_s = passages / 1e6 * tail_per_m / cores
    return {
        "gpus": gpus,
        "cpu_cores": cores,
        "parse_passages_per_s": round(parse_rate),
        "embed_passages_per_s": round(embed_rate),
        "bottleneck": "embedding" if embed_rate < parse_rate else "parsing",
        "streaming_hours": round(streaming_s / 3600, 2),
        "index_tail_hours": round(tail_s / 3600, 2),
        "total_hours": round((streaming_s + tail_s) / 3600, 2),
        "precision": "fp16" if emb.get("gpu_fp16") else "fp32",
    }


def _serving(
    passages: float, sizes: dict[str, Any], query: dict[str, Any], http: dict[str, Any] | None
) -> dict[str, Any] | None:
    if not (query and "sample" in query and "synthetic_1m" in query):
        return None
    shards = max(1, math.ceil(passages / SHARD_PASSAGES))
    cost = _query_cost(query, passages / shards)
    cpu_ms = cost["embed_ms"] + shards * cost["shard_ms"]
    measured_qps = http["closed_loop_best"]["qps"] if http and http["closed_loop_best"] else None
    measured_cores = (http or {}).get("cpu_count") or 2
    efficiency = (
        measured_qps * query["synthetic_1m"]["hybrid_cpu_ms"] / (1000 * measured_cores)
        if measured_qps
        else 1.0
    )
    per_shard = {
        "passages": round(passages / shards),
        "lexical_bytes": round(sizes["lexical"] / shards),
        "store_bytes": round(sizes["store"] / shards),
        "dense_bytes": {f: round(v["bytes"] / shards) for f, v in sizes["dense"].items()},
    }
    cores = {
        str(q): math.ceil(q * cpu_ms / 1000 / min(efficiency, 1.0) / CPU_UTILISATION)
        for q in TARGET_QPS
    }
    return {
        "shard_passages": SHARD_PASSAGES,
        "shards": shards,
        "per_shard": per_shard,
        "query_cost": cost,
        "cpu_ms_per_query": round(cpu_ms, 1),
        "qps_per_core": round(1000 / cpu_ms * min(efficiency, 1.0), 2),
        "measured_replica_qps_1m": measured_qps,
        "measured_replica_cores": measured_cores,
        "measured_efficiency": round(efficiency, 3),
        "cores_for_target_qps": cores,
        "utilisation": CPU_UTILISATION,
    }


# -- Markdown -------------------------------------------------------------------------------


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"


def _m(n: float) -> str:
    return f"{n / 1e6:,.1f} M"


def _faiss_table(rows: list[dict[str, Any]]) -> str:
    """The measured FAISS index types as a Markdown table."""
    return md_table(
        ["factory", "nprobe", "bytes/vector", "fixed bytes", "recall@10"],
        [
            [r["factory"], r["nprobe"] or "–", r["bytes_per_vector"], r["fixed_bytes"],
             r["recall_at_10"]]
            for r in rows
        ],
    )  # fmt: skip


def results_markdown(data: dict[str, Any]) -> str:
    m = data["measured"]
    corpus = m["corpus"]
    lines = [
        "## Capacity inputs (`python -m benchmarks.capacity_bench`)",
        "",
        "Per-unit figures measured on the bundled real samples (ingested into a temporary "
        "store, no embedding); the plan calculated from them is `docs/capacity.md`.",
        "",
        md_table(
            [
                "wiki",
                "articles",
                "wikitext KB/article",
                "passages/article",
                "words/passage",
                "bytes/passage",
                "bytes/word",
            ],
            [
                [
                    w,
                    u["articles"],
                    round(u["wikitext_bytes_per_article"] / 1000, 1),
                    u["passages_per_article"],
                    u["words_per_passage"],
                    u["bytes_per_passage"],
                    u["bytes_per_word"],
                ]
                for w, u in corpus["by_wiki"].items()
            ],
        ),
        "",
        f"Store: **{corpus['store']['bytes_per_passage']} B/passage** "
        f"(passage text {corpus['store']['passage_text_bytes_per_passage']} B, section text "
        f"{corpus['store']['section_text_bytes_per_passage']} B). Lexical (tantivy): "
        f"**{m['lexical']['bytes_per_passage']} B/passage** over {m['lexical']['passages']} "
        "passages.",
        "",
        f"FAISS on {m['faiss_vectors']}; queries: {m['faiss_queries']}:",
        "",
        _faiss_table(m["faiss"]),
        "",
        machine_line(data["machine"], data["load"]),
    ]
    return "\n".join(lines)


def docs_markdown(data: dict[str, Any]) -> str:
    """The generated block of docs/capacity.md."""
    m, plan = data["measured"], data["plan"]
    c = plan["corpora"]
    corpus, emb = m["corpus"], m["embedding"]
    out: list[str] = [
        f"*Generated by `python -m benchmarks.capacity_bench` from "
        f"`benchmarks/results/capacity.json` ({data['machine']['timestamp']}). "
        "Labels: **M** measured (file named), **C** calculated (formula given), "
        "**X** external input.*",
        "",
        "### Per-unit figures",
        "",
        md_table(
            [
                "wiki (sample)",
                "articles",
                "wikitext KB/article",
                "clean words/article",
                "passages/article",
                "words/passage",
                "UTF-8 bytes/passage",
                "bytes/word",
            ],
            [
                [
                    w,
                    u["articles"],
                    round(u["wikitext_bytes_per_article"] / 1000, 1),
                    u["words_per_article"],
                    u["passages_per_article"],
                    u["words_per_passage"],
                    u["bytes_per_passage"],
                    u["bytes_per_word"],
                ]
                for w, u in {
                    **corpus["by_wiki"],
                    **{f"**{k}**": v for k, v in corpus["groups"].items()},
                }.items()
            ],
        ),
        "",
        "**M** `capacity.json` → `measured.corpus` (samples ingested by `ingest_sources`; "
        "words = whitespace-separated tokens of the clean passage text). The groups sum "
        "their wikis (`wikipedias` leaves out enwikiversity).",
        "",
        md_table(
            ["figure", "value", "label / source"],
            [
                [
                    "store bytes per passage",
                    corpus["store"]["bytes_per_passage"],
                    "**M** samples' stores after `finalize` (file size / passages)",
                ],
                [
                    "lexical bytes per passage",
                    m["lexical"]["bytes_per_passage"],
                    f"**M** tantivy index over the {m['lexical']['passages']} sample passages",
                ],
                *[
                    [
                        f"existing `{k}`: store / dense / lexical bytes per passage",
                        " / ".join(
                            str(v["bytes_per_passage"][x]) for x in ("store", "dense", "lexical")
                        ),
                        f"**M** `{v['path']}` ({v['passages']:,} passages, {v['dense_factory']})",
                    ]
                    for k, v in m["existing_indexes"].items()
                ],
                [
                    "embedding, passages per CPU-second",
                    emb["per_core"]["passages_per_cpu_s"],
                    f"**M** {emb['per_core']['from']}",
                ],
                *(
                    [
                        [
                            "embedding, 16-thread CPU (H200 host)",
                            f"{emb['cpu16_host']['passages_per_s']} /s "
                            f"({emb['cpu16_host']['passages_per_cpu_s']} per CPU-s)",
                            f"**M** {emb['cpu16_host']['from']}",
                        ]
                    ]
                    if "cpu16_host" in emb
                    else []
                ),
                *[
                    [
                        f"embedding, one GPU {p}",
                        f"{emb[f'gpu_{p}']['passages_per_s']} /s "
                        f"(batch {emb[f'gpu_{p}']['batch_size']})",
                        f"**M** {emb[f'gpu_{p}']['from']} ({emb[f'gpu_{p}']['device']})",
                    ]
                    for p in ("fp32", "fp16")
                    if f"gpu_{p}" in emb
                ],
                *(
                    [
                        [
                            "parse/clean/chunk, passages per CPU-second",
                            m["ingest"]["passages_per_cpu_s"],
                            f"**M** {m['ingest']['from']}",
                        ]
                    ]
                    if m["ingest"]
                    else []
                ),
                *(
                    [
                        [
                            "HTTP hybrid QPS, one replica (1 M passages)",
                            m["http"]["closed_loop_best"]["qps"],
                            f"**M** {m['http']['from']} "
                            f"({m['http']['closed_loop_best']['clients']} "
                            f"clients, {m['http']['cpu_count']} cores, {m['http']['workers']} "
                            f"worker(s), {m['http']['query_encoder']} query encoder)",
                        ]
                    ]
                    if m["http"] and m["http"]["closed_loop_best"]
                    else []
                ),
            ],
        ),
        "",
        f"FAISS index types on {m['faiss_vectors']}; queries: {m['faiss_queries']}; "
        "recall@10 against exact search; bytes per vector = (serialized size − serialized "
        "size of the trained empty index) / vectors, ids included (**M**):",
        "",
        _faiss_table(m["faiss"]),
        "",
        "### Corpus",
        "",
        md_table(
            ["", "enwiki", "all Wikipedias", "label"],
            [
                ["articles", f"{c['enwiki']['articles']:,}", f"{c['all']['articles']:,}", "**X**"],
                [
                    "words",
                    f"{c['enwiki']['words'] / 1e9:.1f} B",
                    f"{c['all']['words'] / 1e9:.1f} B",
                    "**X** (all: scaled, see *External inputs*)",
                ],
                [
                    "words/article: external vs samples",
                    f"{c['enwiki']['external_words_per_article']} vs "
                    f"{c['enwiki']['sample_words_per_article']}",
                    f"{c['all']['external_words_per_article']} vs "
                    f"{c['all']['sample_words_per_article']}",
                    "**X** vs **M**",
                ],
                [
                    "passages = articles × passages/article",
                    _m(c["enwiki"]["passages_by_articles"]),
                    _m(c["all"]["passages_by_articles"]),
                    "**C** (samples are long articles: overestimate)",
                ],
                [
                    "**passages = words ÷ words/passage** (used)",
                    f"**{_m(c['enwiki']['passages'])}**",
                    f"**{_m(c['all']['passages'])}**",
                    "**C**",
                ],
                [
                    "clean text = words × bytes/word",
                    _gb(c["enwiki"]["sizes"]["clean_text"]),
                    _gb(c["all"]["sizes"]["clean_text"]),
                    "**C**",
                ],
                [
                    "store = passages × store bytes/passage",
                    _gb(c["enwiki"]["sizes"]["store"]),
                    _gb(c["all"]["sizes"]["store"]),
                    "**C**",
                ],
                [
                    "lexical = passages × lexical bytes/passage",
                    _gb(c["enwiki"]["sizes"]["lexical"]),
                    _gb(c["all"]["sizes"]["lexical"]),
                    "**C**",
                ],
                *[
                    [
                        f"dense {f} = passages × bytes/vector (recall@10 {v['recall_at_10']})",
                        _gb(v["bytes"]),
                        _gb(c["all"]["sizes"]["dense"][f]["bytes"]),
                        "**C**",
                    ]
                    for f, v in c["enwiki"]["sizes"]["dense"].items()
                ],
            ],
        ),
        "",
        "### Embedding time",
        "",
        "hours = passages ÷ (rate × units) ÷ 3600 (**C**; perfect scaling assumed, model "
        "loading and I/O left out):",
        "",
        md_table(
            ["hardware", "rate", "enwiki (h)", "all Wikipedias (h)"],
            [
                *[
                    [
                        f"{n} CPU cores",
                        f"{emb['per_core']['passages_per_cpu_s']}/s per core",
                        f"{c['enwiki']['embedding_hours'][f'cpu_{n}']:,}",
                        f"{c['all']['embedding_hours'][f'cpu_{n}']:,}",
                    ]
                    for n in CPU_CORES
                ],
                *[
                    [
                        f"{n} × {emb[f'gpu_{p}']['device']} {p}",
                        f"{emb[f'gpu_{p}']['passages_per_s']}/s per GPU",
                        f"{c['enwiki']['embedding_hours'][f'gpu{n}_{p}']:,}",
                        f"{c['all']['embedding_hours'][f'gpu{n}_{p}']:,}",
                    ]
                    for p in ("fp32", "fp16")
                    if f"gpu_{p}" in emb
                    for n in GPUS
                ],
            ],
        ),
        "",
    ]
    ray = c["enwiki"]["ray_build"]
    if ray:
        ray_all = c["all"]["ray_build"]
        out += [
            "### Build on a Ray cluster",
            "",
            f"Cluster: {ray['gpus']} GPU workers ({ray['precision']}) + {ray['cpu_cores']} CPU "
            "cores for parse/clean/chunk and the index tail. Streaming stage = passages ÷ "
            "min(parse rate, embed rate); index tail = passages/1 M × (dense + lexical + store "
            "seconds per 1 M, measured on the synthetic 1 M build) ÷ cores (**C**):",
            "",
            md_table(
                [
                    "",
                    "parse passages/s",
                    "embed passages/s",
                    "bottleneck",
                    "streaming h",
                    "index tail h",
                    "total h",
                ],
                [
                    [
                        name,
                        r["parse_passages_per_s"],
                        r["embed_passages_per_s"],
                        r["bottleneck"],
                        r["streaming_hours"],
                        r["index_tail_hours"],
                        r["total_hours"],
                    ]
                    for name, r in (("enwiki", ray), ("all Wikipedias", ray_all))
                ],
            ),
            "",
        ]
    serving = c["enwiki"]["serving"]
    if serving:
        s_all = c["all"]["serving"]
        out += [
            "### Serving",
            "",
            f"Shards of ≤ {SHARD_PASSAGES / 1e6:.0f} M passages; the router embeds each query "
            "once and every shard searches dense + lexical and looks up passages. CPU ms per "
            "query = embed + shards × shard cost (**C**: lexical search scaled by the power law "
            f"fitted between the measured sample and 1 M indexes, exponent "
            f"{serving['query_cost']['lexical_exponent']}; IVF dense by √n; lookup and fusion "
            "as at 1 M). Efficiency = measured replica QPS × CPU ms per query ÷ (1000 × cores) "
            f"= {serving['measured_efficiency']} (above 1 when the per-component CPU times, "
            "from `query_bench`, were measured with a slower query encoder than the replica's; "
            "capped at 1, so the estimate stays conservative); cores = target × CPU ms ÷ 1000 ÷ "
            f"efficiency ÷ {CPU_UTILISATION} utilisation.",
            "",
            md_table(
                [
                    "",
                    "shards",
                    "shard CPU ms",
                    "CPU ms/query",
                    "QPS per core",
                    *[f"cores for {q:,} QPS" for q in TARGET_QPS],
                ],
                [
                    [
                        name,
                        s["shards"],
                        s["query_cost"]["shard_ms"],
                        s["cpu_ms_per_query"],
                        s["qps_per_core"],
                        *[f"{s['cores_for_target_qps'][str(q)]:,}" for q in TARGET_QPS],
                    ]
                    for name, s in (("enwiki", serving), ("all Wikipedias", s_all))
                ],
            ),
            "",
            *_replica_lines(m["http"]),
            "Memory per shard (one copy; each replica of a shard needs the same):",
            "",
            md_table(
                [
                    "",
                    "passages/shard",
                    "dense Flat",
                    "dense SQ8",
                    "dense PQ48",
                    "lexical",
                    "store (disk)",
                ],
                [
                    [
                        name,
                        _m(s["per_shard"]["passages"]),
                        *[
                            _gb(s["per_shard"]["dense_bytes"].get(f, 0))
                            for f in ("Flat", "SQ8", "PQ48")
                        ],
                        _gb(s["per_shard"]["lexical_bytes"]),
                        _gb(s["per_shard"]["store_bytes"]),
                    ]
                    for name, s in (("enwiki", serving), ("all Wikipedias", s_all))
                ],
            ),
        ]
    return "\n".join(out)


def _replica_lines(http: dict[str, Any] | None) -> list[str]:
    """Replicas of the measured single-index replica for each target QPS (**C**), and the
    open-loop rows when the HTTP benchmark has them (**M**)."""
    if not http or not http["closed_loop_best"]:
        return []
    qps = http["closed_loop_best"]["qps"]
    lines = [
        f"One replica as measured (1 M passages, {http['cpu_count']} cores, "
        f"{http['workers']} uvicorn worker(s)): **{qps} QPS** closed loop "
        f"({http['closed_loop_best']['clients']} clients, p99 "
        f"{http['closed_loop_best'].get('p99_ms')} ms; **M** `{http['from']}`). Replicas of it "
        "for an index of that size = ⌈target ÷ QPS⌉ (**C**): "
        + ", ".join(f"{q:,} QPS → {math.ceil(q / qps):,}" for q in TARGET_QPS)
        + ".",
        "",
    ]
    if http["open_loop"]:
        lines += [
            "Open loop on the same replica (**M**, requests scheduled at a fixed rate):",
            "",
            md_table(
                ["target/s", "achieved/s", "p50 ms", "p99 ms", "errors"],
                [
                    [r["target_rate"], r["achieved_rate"], r["p50_ms"], r["p99_ms"], r["errors"]]
                    for r in http["open_loop"]
                ],
            ),
            "",
        ]
    return lines


# -- main -----------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, Any]:
    info = machine_info()
    with LoadSampler() as load, tempfile.TemporaryDirectory(prefix="wikirag-capacity-") as tmp:
        work = Path(tmp)
        sources = sample_sources()
        corpus = measure_corpus(sources, work)
        stores = sorted(work.glob("store-*.sqlite"))
        lexical = measure_lexical(stores, work)
        xb = squad_vectors()
        if xb is None:
            raise SystemExit(f"{SQUAD_INDEX} is missing: build it first (see RESULTS.md quality)")
        xq, queries_how = query_vectors(args.queries, xb)
        faiss_rows = measure_faiss(xb, xq, tuple(args.factories))
    measured = {
        "corpus": corpus,
        "lexical": lexical,
        "existing_indexes": existing_indexes(),
        "faiss": faiss_rows,
        "faiss_vectors": f"{len(xb):,} real {xb.shape[1]}-d passage vectors of "
        f"{SQUAD_INDEX.relative_to(ROOT)} (all-MiniLM-L6-v2)",
        "faiss_queries": queries_how,
        "embedding": read_embedding(),
        "ingest": read_ingest(),
        "query": read_query(),
        "http": read_http(),
    }
    return {
        "benchmark": NAME,
        "machine": info,
        "load": load.summary(),
        "external": EXTERNAL,
        "measured": measured,
    }


def write_docs(data: dict[str, Any]) -> None:
    if not DOC.exists():
        raise SystemExit(f"{DOC} is missing (its prose surrounds the generated block)")
    update_results_md(DOC_SECTION, docs_markdown(data), path=DOC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.capacity_bench",
        description="Measure the capacity plan's per-unit figures (passages, text, store, "
        "lexical and FAISS sizes, FAISS recall) on the bundled samples, read the throughput "
        "figures of the other benchmarks, calculate the plan for enwiki and all Wikipedias, "
        "and write results/capacity.json, the RESULTS.md section and docs/capacity.md.",
    )
    parser.add_argument(
        "--queries",
        type=int,
        default=500,
        help="SQuAD questions embedded as FAISS recall queries (default 500; 0: use 500 "
        "passage vectors instead, no model load)",
    )
    parser.add_argument(
        "--factories", nargs="+", default=list(FACTORIES), help="FAISS factory strings to test"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; write no results")
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help=f"no measurement: recalculate the plan from results/{NAME}.json (and the other "
        "results it reads), rewrite it, its RESULTS.md section and docs/capacity.md",
    )
    parser.add_argument(
        "--no-docs", action="store_true", help="do not rewrite the block in docs/capacity.md"
    )
    args = parser.parse_args(argv)

    if args.markdown_only:
        data = json.loads((RESULTS_DIR / f"{NAME}.json").read_text(encoding="utf-8"))
        m = data["measured"]
        m.update(embedding=read_embedding(), ingest=read_ingest(), query=read_query())
        m["http"] = read_http()
        data["external"] = EXTERNAL
    else:
        data = measure(args)
    data["plan"] = calculate(data["measured"])
    if args.no_write:
        print(json.dumps(data["plan"], indent=2))
        print(docs_markdown(data))
        return 0
    path = write_result(NAME, data)
    update_results_md("capacity", results_markdown(data))
    if not args.no_docs:
        write_docs(data)
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
