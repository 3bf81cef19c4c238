"""Query latency (p50/p95/p99 per mode) and peak RSS of ``HybridRetriever.search``, in-process,
query embedding included, on a sample index and on a synthetic 1 M-passage index.

a. **Sample index**: ``--index DIR`` if given, else ``var/squad`` (SQuAD-dev corpus + enwiki
   sample, ≈ 7.2 k passages) if it is published, else one built into ``var/bench-sample`` from
   the enwiki, simplewiki and frwiki WME snapshots.
b. **Synthetic 1 M-passage index** in ``var/bench-1m`` (reused unless ``--rebuild``), built
   without the model through the real classes: 100 k pages × 10 passages written with
   ``PassageStore.add_revision`` (batched in transactions), ``LexicalIndex.create`` (tantivy)
   and ``DenseIndex.build`` with ``default_index_factory(1_000_000)`` (IVF4096,SQ8), published
   as a generation with ``IndexLayout`` and a manifest naming the default model, so that
   ``LoadedIndex.open`` accepts it. Passage texts recombine real sentences of the enwiki
   samples (lengths drawn from the real passages' word counts); titles and section headings
   are real ones. Vectors are 384-d float32, unit length, drawn as noise around 5 000 random
   centroids with skewed cluster sizes (so the IVF lists are uneven, as with real data), and
   passages of one page share a page offset.

Queries are real SQuAD-dev questions (``data/samples/squad/squad-dev-questions.jsonl``),
embedded by the real model at query time: a fixed random sample of ``--queries`` (300) after
``--warmup`` (20) others, the three modes interleaved question by question, each mode with its
own retriever (so no mode reuses another's cached query vector). Each index is measured in a
fresh process (its own peak RSS). Then a per-component breakdown (query embedding, FAISS
search, tantivy search, fusion, passage lookup in SQLite) over the same questions, and a
cProfile of hybrid search.

Targets at 1 M passages: hybrid p50 ≤ 15 ms, p99 ≤ 40 ms.

Run::

    .venv/bin/python -m benchmarks.query_bench                # builds var/bench-1m once (≈ 10 min)
    .venv/bin/python -m benchmarks.query_bench --skip-synthetic --index var/index
    .venv/bin/python -m benchmarks.query_bench --rebuild      # regenerate the 1 M index

Writes ``benchmarks/results/query_bench.json`` and the ``query`` section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._common import (
    RESULTS_DIR,
    ROOT,
    SAMPLES,
    LoadSampler,
    child_json,
    current_rss_mb,
    dir_size_bytes,
    latency_summary,
    machine_info,
    machine_line,
    md_table,
    peak_rss_mb,
    update_results_md,
    write_result,
)

NAME = "query_bench"
QUESTIONS = SAMPLES / "squad" / "squad-dev-questions.jsonl"
SQUAD_INDEX = ROOT / "var" / "squad"
SAMPLE_INDEX = ROOT / "var" / "bench-sample"
SAMPLE_SOURCES = [
    SAMPLES / "wme" / f"{wiki}_namespace_0.tar.gz" for wiki in ("enwiki", "simplewiki", "frwiki")
]
SYNTHETIC_INDEX = ROOT / "var" / "bench-1m"
TEXT_SOURCES = [
    SAMPLES / "enwiki-sample-pages-articles.xml.bz2",
    SAMPLES / "wme" / "enwiki_namespace_0.tar.gz",
    SAMPLES / "squad" / "squad-dev-corpus.xml.bz2",
]
MODES = ("hybrid", "dense", "lexical")
TARGET_P50_MS = 15.0
TARGET_P99_MS = 40.0
DIM = 384
CENTROIDS = 5_000
SYNTHETIC_FORMAT = 1  # bump when the generator changes (an older index is rebuilt)


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- queries


def load_question_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line)["question"] for line in handle if line.strip()]


def _pick_questions(path: Path, warmup: int, n: int, seed: int) -> tuple[list[str], list[str]]:
    texts = load_question_texts(path)
    random.Random(seed).shuffle(texts)
    if warmup + n > len(texts):
        raise SystemExit(f"{path} has {len(texts)} questions; asked for {warmup} + {n}")
    return texts[:warmup], texts[warmup : warmup + n]


def _top_functions(profile: cProfile.Profile, n_queries: int, key: str, limit: int) -> list[Any]:
    stats = pstats.Stats(profile, stream=io.StringIO())
    rows = []
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (file, line, func), (_cc, ncalls, tottime, cumtime, _callers) in table.items():
        rows.append(
            {
                "function": f"{_rel(Path(file)) if file != '~' else ''}:{line}({func})",
                "calls_per_query": round(ncalls / n_queries, 1),
                "tottime_ms_per_query": round(1000 * tottime / n_queries, 3),
                "cumtime_ms_per_query": round(1000 * cumtime / n_queries, 3),
            }
        )
    rows.sort(key=lambda r: -r[key])
    return rows[:limit]


def run_queries(
    index_dir: Path,
    questions: Path,
    n: int,
    warmup: int,
    k: int,
    profile_n: int,
    seed: int,
    threads: int = 0,
    query_encoder: str = "onnx",
) -> dict[str, Any]:
    """Latencies of the three modes on one index (runs in its own process). ``threads`` 0
    keeps the libraries' defaults (``Embedder`` sets torch to all cores, FAISS's OpenMP uses
    all cores); N > 0 sets both torch's intra-op threads and FAISS's OpenMP threads to N."""
    import faiss
    import torch

    from app.retrieval.fusion import rrf
    from app.retrieval.ranking import SearchMode, SearchRequest
    from app.retrieval.retriever import HybridRetriever, LoadedIndex
    from indexer.embedding import Embedder

    rss_start = current_rss_mb()
    from indexer.embedding.onnx import default_onnx_cache_dir

    embedder = Embedder(
        threads=threads or None,
        query_encoder=query_encoder,
        onnx_cache_dir=default_onnx_cache_dir() if query_encoder == "onnx" else None,
    )
    if threads:
        faiss.omp_set_num_threads(threads)
    t0 = time.perf_counter()
    embedder.load()
    thread_info = {
        "query_encoder": embedder.query_backend,
        "setting": threads or "default",
        "torch_threads": torch.get_num_threads(),
        "faiss_omp_threads": faiss.omp_get_max_threads(),
    }
    model_load = time.perf_counter() - t0
    rss_model = current_rss_mb()
    t0 = time.perf_counter()
    index = LoadedIndex.open(index_dir, embedder.info)
    open_s = time.perf_counter() - t0
    rss_open = current_rss_mb()
    warm, measured = _pick_questions(questions, warmup, n, seed)

    retrievers = {mode: HybridRetriever(index, embedder) for mode in MODES}
    candidates = max(retrievers["hybrid"].defaults.candidates, 2 * k)
    for q in warm:
        for mode in MODES:
            retrievers[mode].search(SearchRequest(q, k=k, mode=SearchMode(mode)))
    latencies: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu_ms: dict[str, list[float]] = {mode: [] for mode in MODES}
    short: dict[str, int] = dict.fromkeys(MODES, 0)
    for i, q in enumerate(measured):
        order = MODES[i % 3 :] + MODES[: i % 3]
        for mode in order:
            request = SearchRequest(q, k=k, mode=SearchMode(mode))
            c0 = time.process_time()
            t0 = time.perf_counter()
            hits = retrievers[mode].search(request)
            latencies[mode].append(1000 * (time.perf_counter() - t0))
            cpu_ms[mode].append(1000 * (time.process_time() - c0))
            short[mode] += len(hits) < k
    rss_after = current_rss_mb()

    # Per-component breakdown: the calls HybridRetriever.search makes, timed one by one.
    store = index.store
    comp: dict[str, list[float]] = {
        c: []
        for c in (
            "query_embedding",
            "dense_search",
            "lexical_search",
            "fusion",
            "passage_lookup",
            "passage_lookup_sql_only",
        )
    }
    from indexer.store import PASSAGE_SELECT

    comp_cpu: dict[str, list[float]] = {c: [] for c in comp}

    def timed(name: str, fn: Any) -> Any:
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = fn()
        comp[name].append(1000 * (time.perf_counter() - t0))
        comp_cpu[name].append(1000 * (time.process_time() - c0))
        return out

    conn = store.connection()
    for q in measured:
        vector = timed("query_embedding", lambda q=q: embedder.encode_query(q))
        dense = timed("dense_search", lambda v=vector: index.dense.search(v, candidates))
        lexical = timed("lexical_search", lambda q=q: index.lexical.search(q, candidates))
        ranked = {
            "dense": [(h.doc_id, h.score) for h in dense],
            "lexical": [(h.doc_id, h.score) for h in lexical],
        }
        fused = timed("fusion", lambda r=ranked: rrf(r))
        rows = [h.doc_id for h in fused[: 4 * k]]  # the first window _materialise looks up
        timed("passage_lookup", lambda r=rows: store.passages_by_rows(r))
        sql = PASSAGE_SELECT + f" WHERE p.id IN ({','.join('?' * len(rows))})"
        timed("passage_lookup_sql_only", lambda r=rows, s=sql: conn.execute(s, r).fetchall())

    profile_result: dict[str, Any] = {}
    if profile_n:
        retriever = HybridRetriever(index, embedder)  # empty query-vector cache
        profile = cProfile.Profile()
        qs = measured[:profile_n]
        profile.enable()
        for q in qs:
            retriever.search(SearchRequest(q, k=k, mode=SearchMode.HYBRID))
        profile.disable()
        profile_result = {
            "queries": len(qs),
            "note": "cProfile adds overhead to Python-level calls; compare shares, not totals",
            "top_cumulative": _top_functions(profile, len(qs), "cumtime_ms_per_query", 25),
            "top_self": _top_functions(profile, len(qs), "tottime_ms_per_query", 15),
        }

    manifest = index.manifest
    return {
        "index": _rel(index_dir),
        "threads": thread_info,
        "generation": manifest.generation,
        "passages": manifest.counts.indexed_passages,
        "dense_factory": manifest.dense.factory,
        "nprobe": manifest.dense.nprobe,
        "synthetic": manifest.synthetic is not None,
        "disk_mb": round(dir_size_bytes(index.generation.path) / 1e6, 1),
        "k": k,
        "candidates": candidates,
        "queries": len(measured),
        "warmup": len(warm),
        "latency": {mode: latency_summary(latencies[mode]) for mode in MODES},
        "cpu_time_per_query": {mode: latency_summary(cpu_ms[mode]) for mode in MODES},
        "cpu_time_note": "process CPU time per search (all threads): with 1 thread, about "
        "what the search would take on an idle core",
        "fewer_than_k_hits": short,
        "components": {c: latency_summary(v) for c, v in comp.items()},
        "components_cpu_time": {c: latency_summary(v) for c, v in comp_cpu.items()},
        "profile_hybrid": profile_result,
        "model_load_seconds": round(model_load, 2),
        "index_open_seconds": round(open_s, 3),
        "rss_mb": {
            "start": rss_start,
            "after_model_load": rss_model,
            "after_index_open": rss_open,
            "after_queries": rss_after,
            "peak": peak_rss_mb(),
        },
        "raw_latencies_ms": {mode: [round(x, 3) for x in latencies[mode]] for mode in MODES},
    }


# --------------------------------------------------------------------------- sample index


def _store_schema(generation_path: Path) -> int:
    import sqlite3

    path = generation_path / "store.sqlite"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def _migrate_store(generation_path: Path) -> None:
    """Open a generation's store read-write once (runs the store's forward migrations), then
    switch it back to a rollback journal for read-only readers, as a build leaves it."""
    from indexer.store import PassageStore

    store = PassageStore(generation_path / "store.sqlite")
    try:
        store.finalize()
    finally:
        store.close()


def readable_index(index_dir: Path) -> tuple[Path, dict[str, Any]]:
    """``index_dir``, or, when its store's schema is older than this code's, a migrated copy
    of its current generation in ``var/bench-migrated/<name>`` (the original is left alone:
    it may belong to someone else)."""
    from indexer.generation import IndexLayout
    from indexer.store import SCHEMA_VERSION

    generation = IndexLayout(index_dir).current()
    schema = _store_schema(generation.path)
    if schema >= SCHEMA_VERSION:
        return index_dir, {}
    copy_root = ROOT / "var" / "bench-migrated" / index_dir.name
    target = copy_root / "generations" / generation.generation
    if not target.exists() or _store_schema(target) < SCHEMA_VERSION:
        shutil.rmtree(copy_root, ignore_errors=True)
        shutil.copytree(generation.path, target)
        _migrate_store(target)
        (copy_root / "current").symlink_to(Path("generations") / generation.generation)
    print(
        f"{_rel(index_dir)}: store schema {schema} < {SCHEMA_VERSION}; measuring a migrated "
        f"copy in {_rel(copy_root)}",
        flush=True,
    )
    return copy_root, {
        "migrated_copy_of": _rel(index_dir),
        "store_schema": [schema, SCHEMA_VERSION],
    }


def ensure_sample_index(index: Path | None) -> tuple[Path, dict[str, Any]]:
    """The sample index to measure: ``--index``, else var/squad, else a fresh small build."""
    from indexer.generation import IndexLayout, NoPublishedIndex

    for candidate in [index] if index else [SQUAD_INDEX, SAMPLE_INDEX]:
        try:
            IndexLayout(candidate).current()
            return candidate, {"built": False}
        except NoPublishedIndex:
            if index:
                raise SystemExit(f"{index} has no published index") from None
    from indexer.build import BuildOptions, build_index

    print(f"building a sample index in {_rel(SAMPLE_INDEX)} from the WME snapshots…", flush=True)
    t0 = time.perf_counter()
    from indexer.ingest import IngestOptions

    options = BuildOptions(ingest=IngestOptions(progress=False), progress=False)
    report = build_index(SAMPLE_SOURCES, SAMPLE_INDEX, options)
    return SAMPLE_INDEX, {
        "built": True,
        "sources": [_rel(s) for s in SAMPLE_SOURCES],
        "seconds": round(time.perf_counter() - t0, 1),
        "passages": report.passages,
    }


# --------------------------------------------------------------------------- synthetic index

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def _corpus(tmp: Path) -> dict[str, Any]:
    """Real sentences, titles, section headings and passage lengths of the English samples."""
    from indexer.ingest import IngestOptions, ingest_sources
    from indexer.licensing import LicensePolicy
    from indexer.store import PassageStore

    store = PassageStore(tmp / "corpus.sqlite")
    options = IngestOptions(progress=False, licenses=LicensePolicy.from_rules({}))
    ingest_sources(TEXT_SOURCES, store, options)
    sentences: list[str] = []
    lengths: list[int] = []
    titles: set[str] = set()
    headings: set[str] = set()
    for record in store.iter_current_passages():
        lengths.append(len(record.text.split()))
        titles.add(record.title)
        if record.section_path:
            headings.add(record.section_path[-1])
        for sentence in _SENTENCE_END.split(record.text):
            words = len(sentence.split())
            if 3 <= words <= 60:
                sentences.append(sentence.strip())
    store.close()
    return {
        "sentences": sentences,
        "sentence_words": [len(s.split()) for s in sentences],
        "lengths": lengths,
        "titles": sorted(titles),
        "headings": sorted(headings),
    }


class _PassageTexts:
    """Passage texts recombining real sentences, lengths following the real distribution."""

    def __init__(self, corpus: dict[str, Any], seed: int, max_words: int = 100) -> None:
        self.rng = random.Random(seed)
        self.sentences: list[str] = corpus["sentences"]
        self.words: list[int] = corpus["sentence_words"]
        self.lengths: list[int] = corpus["lengths"]
        self.max_words = max_words

    def __call__(self) -> str:
        rng, n = self.rng, len(self.sentences)
        target = self.lengths[rng.randrange(len(self.lengths))]
        parts: list[str] = []
        words = 0
        while words < target:
            i = rng.randrange(n)
            parts.append(self.sentences[i])
            words += self.words[i]
        text = " ".join(parts)
        if words > self.max_words:
            text = " ".join(text.split()[: self.max_words])
        return text


def _synthetic_pages(
    n_pages: int, per_page: int, corpus: dict[str, Any], seed: int
) -> Iterator[tuple[Any, list[Any], list[Any]]]:
    """``(RawRevision, sections, passages)`` of each synthetic page."""
    from indexer.models import CC_BY_SA_4, Passage, RawRevision, Section, SiteInfo

    site = SiteInfo(wiki="enwiki", base_url="https://en.wikipedia.org", language="en")
    rng = random.Random(seed + 1)
    texts = _PassageTexts(corpus, seed + 2)
    titles, headings = corpus["titles"], corpus["headings"]
    for p in range(n_pages):
        page_id, revision_id = 1 + p, 1_000_000_000 + p
        title = f"{titles[rng.randrange(len(titles))]} {p}"
        timestamp = "2025-01-01T00:00:00Z"
        raw = RawRevision(
            site=site,
            page_id=page_id,
            title=title,
            namespace=0,
            revision_id=revision_id,
            timestamp=timestamp,
            wikitext="",
            location=f"synthetic page {page_id}",
            license=CC_BY_SA_4,
        )
        # Split the page's passages over 1–4 sections (the lead first).
        n_sections = min(per_page, rng.randint(1, 4))
        cuts = sorted(rng.sample(range(1, per_page), n_sections - 1)) if n_sections > 1 else []
        bounds = [0, *cuts, per_page]
        sections: list[Any] = []
        passages: list[Any] = []
        ordinal = 0
        for s in range(n_sections):
            path: tuple[str, ...] = () if s == 0 else (headings[rng.randrange(len(headings))],)
            anchor = "" if s == 0 else path[0].replace(" ", "_")
            bodies = [texts() for _ in range(bounds[s + 1] - bounds[s])]
            section_text = "\n\n".join(bodies)
            sections.append(Section(path=path, anchor=anchor, text=section_text, ordinal=s))
            start = 0
            for body in bodies:
                end = start + len(body)
                passages.append(
                    Passage(
                        passage_id=f"enwiki:{revision_id}:{ordinal}",
                        wiki="enwiki",
                        page_id=page_id,
                        revision_id=revision_id,
                        title=title,
                        section_path=path,
                        anchor=anchor,
                        section_ordinal=s,
                        ordinal=ordinal,
                        start=start,
                        end=end,
                        text=body,
                        revision_timestamp=timestamp,
                    )
                )
                ordinal += 1
                start = end + 2
        yield raw, sections, passages


class _Vectors:
    """Unit 384-d vectors: centroid of the page's cluster + page offset + passage noise."""

    def __init__(self, n_pages: int, per_page: int, seed: int) -> None:
        import numpy as np

        self.np = np
        rng = np.random.default_rng(seed)
        centroids = rng.standard_normal((CENTROIDS, DIM)).astype(np.float32)
        self.centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
        weights = rng.lognormal(0.0, 1.0, CENTROIDS)  # uneven cluster sizes
        self.page_cluster = rng.choice(CENTROIDS, size=n_pages, p=weights / weights.sum())
        self.per_page = per_page
        self.rng = rng
        self.page_scale = 0.6 / math.sqrt(DIM)  # noise norms ≈ 0.6: cos to centroid ≈ 0.75
        self.passage_scale = 0.6 / math.sqrt(DIM)

    def for_pages(self, first: int, last: int) -> Any:
        np, rng = self.np, self.rng
        pages = np.arange(first, last)
        page_offsets = rng.standard_normal((len(pages), DIM)).astype(np.float32) * self.page_scale
        base = self.centroids[self.page_cluster[pages]] + page_offsets
        vecs = np.repeat(base, self.per_page, axis=0)
        vecs += rng.standard_normal(vecs.shape).astype(np.float32) * self.passage_scale
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs

    def sample(self, n: int) -> Any:
        """``n`` vectors of the same distribution (random pages), to train the quantisers."""
        np, rng = self.np, self.rng
        pages = rng.choice(len(self.page_cluster), size=n)
        vecs = self.centroids[self.page_cluster[pages]]
        vecs = vecs + rng.standard_normal((n, DIM)).astype(np.float32) * self.page_scale
        vecs += rng.standard_normal((n, DIM)).astype(np.float32) * self.passage_scale
        return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)


def build_synthetic(out: Path, n_passages: int, per_page: int, seed: int) -> dict[str, Any]:
    """Generate, index and publish the synthetic index (runs in its own process)."""
    import numpy as np

    from indexer import __version__
    from indexer.dense import DenseIndex, default_index_factory, nlist_of, train_size
    from indexer.embedding import DEFAULT_MODEL_ID
    from indexer.generation import DENSE_FILE, LEXICAL_DIR, STORE_FILE, IndexLayout
    from indexer.lexical import LexicalDoc, LexicalIndex
    from indexer.manifest import ChunkingRecord, Counts, DenseRecord, Manifest, ModelRecord
    from indexer.models import CC_BY_SA_4
    from indexer.store import PassageStore

    n_pages = n_passages // per_page
    n_passages = n_pages * per_page
    stages: dict[str, float] = {}
    started = time.perf_counter()
    layout = IndexLayout(out)
    with tempfile.TemporaryDirectory(prefix="wikirag-corpus-") as tmp:
        t0 = time.perf_counter()
        corpus = _corpus(Path(tmp))
        stages["corpus"] = time.perf_counter() - t0
    print(
        f"corpus: {len(corpus['sentences'])} real sentences, {len(corpus['titles'])} titles, "
        f"{len(corpus['headings'])} headings; generating {n_pages} pages × {per_page} passages",
        flush=True,
    )
    with layout.lock():
        layout.cleanup_incomplete()
        with layout.new_generation() as work:
            store = PassageStore(work.path / STORE_FILE)
            store_s = lexical_s = gen_text_s = 0.0
            t_gen = time.perf_counter()
            row = 0
            words = 0
            with LexicalIndex.create(work.path / LEXICAL_DIR) as writer:
                pages = _synthetic_pages(n_pages, per_page, corpus, seed)
                done = False
                while not done:
                    with store.transaction():
                        for _ in range(1000):
                            t0 = time.perf_counter()
                            item = next(pages, None)
                            gen_text_s += time.perf_counter() - t0
                            if item is None:
                                done = True
                                break
                            raw, sections, passages = item
                            t0 = time.perf_counter()
                            store.add_revision(
                                raw, CC_BY_SA_4, "source", sections, passages, source="synthetic"
                            )
                            t1 = time.perf_counter()
                            for passage in passages:
                                row += 1  # a fresh store numbers passages 1, 2, 3…
                                words += len(passage.text.split())
                                writer.add(
                                    LexicalDoc(
                                        doc_id=row,
                                        text=passage.text,
                                        title=passage.title,
                                        section=" > ".join(passage.section_path),
                                        wiki=passage.wiki,
                                        language="en",
                                        page_id=passage.page_id,
                                    )
                                )
                            t2 = time.perf_counter()
                            store_s += t1 - t0
                            lexical_s += t2 - t1
                        t_commit = time.perf_counter()
                    store_s += time.perf_counter() - t_commit
                    if row % 100_000 == 0 or done:
                        print(f"  {row} passages ({time.perf_counter() - t_gen:.0f} s)", flush=True)
                t0 = time.perf_counter()
                writer.commit()
                lexical_s += time.perf_counter() - t0
            total_gen = time.perf_counter() - t_gen
            stages["store_write"] = store_s
            stages["lexical_index"] = lexical_s
            stages["text_generation"] = gen_text_s
            stages["other"] = total_gen - store_s - lexical_s - gen_text_s
            conn = store.connection()
            lo, hi, count = conn.execute(
                "SELECT MIN(id), MAX(id), COUNT(*) FROM passages"
            ).fetchone()
            if (lo, hi, count) != (1, row, row):
                raise RuntimeError(f"passage row ids are {lo}..{hi} ({count}), expected 1..{row}")

            t0 = time.perf_counter()
            vectors = _Vectors(n_pages, per_page, seed + 3)
            train = vectors.sample(train_size(nlist_of(default_index_factory(n_passages))))
            stages["vectors_train_sample"] = time.perf_counter() - t0
            gen_s = 0.0

            def batches() -> Iterator[tuple[Any, Any]]:
                nonlocal gen_s
                step = 6_400  # pages per batch: 64 k vectors
                for first in range(0, n_pages, step):
                    t = time.perf_counter()
                    last = min(n_pages, first + step)
                    vecs = vectors.for_pages(first, last)
                    ids = np.arange(first * per_page + 1, last * per_page + 1, dtype=np.int64)
                    gen_s += time.perf_counter() - t
                    yield ids, vecs

            t0 = time.perf_counter()
            factory = default_index_factory(n_passages)
            dense = DenseIndex.build(
                batches(), dim=DIM, factory=factory, n_hint=n_passages, train_sample=train
            )
            dense.save(work.path / DENSE_FILE)
            stages["vectors_generation"] = gen_s
            stages["dense_index"] = time.perf_counter() - t0 - gen_s
            del train

            t0 = time.perf_counter()
            store.finalize()
            counts = store.counts()
            store.close()
            stages["store_finalize"] = time.perf_counter() - t0
            build_seconds = time.perf_counter() - started
            synthetic = {
                "format": SYNTHETIC_FORMAT,
                "seed": seed,
                "pages": n_pages,
                "passages_per_page": per_page,
                "mean_words_per_passage": round(words / max(1, row), 1),
                "text": "recombined real sentences of " + ", ".join(_rel(s) for s in TEXT_SOURCES),
                "real_sentences": len(corpus["sentences"]),
                "vectors": f"unit noise around {CENTROIDS} random centroids (lognormal sizes)",
                "stage_seconds": {k: round(v, 1) for k, v in stages.items()},
                "build_seconds": round(build_seconds, 1),
                "build_peak_rss_mb": peak_rss_mb(),
            }
            manifest = Manifest(
                wikirag_version=__version__,
                built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                build_seconds=round(build_seconds, 2),
                model=ModelRecord(DEFAULT_MODEL_ID, DIM, True, 256, "title_section"),
                dense=DenseRecord.of(dense.params),
                chunking=ChunkingRecord(max_words=100, overlap_words=0),
                counts=Counts.of(counts, row),
                synthetic=synthetic,
            )
            generation = layout.publish(work, manifest)
        layout.prune(1)
    sizes = {
        name: round(dir_size_bytes(generation.path / name) / 1e6, 1)
        for name in (STORE_FILE, DENSE_FILE, LEXICAL_DIR)
    }
    return {
        **synthetic,
        "generation": generation.generation,
        "passages": row,
        "dense": dense.params,
        "disk_mb": {**sizes, "total": round(dir_size_bytes(generation.path) / 1e6, 1)},
    }


def existing_synthetic(out: Path, n_passages: int) -> dict[str, Any] | None:
    """The build record of a published synthetic index of this size and format, if any."""
    from indexer.generation import DENSE_FILE, LEXICAL_DIR, STORE_FILE, IndexError_, IndexLayout
    from indexer.manifest import record_json

    try:
        generation = IndexLayout(out).current()
    except IndexError_:
        return None
    synthetic = generation.manifest.synthetic
    indexed = generation.manifest.counts.indexed_passages
    if not synthetic or synthetic.get("format") != SYNTHETIC_FORMAT or indexed != n_passages:
        return None
    from indexer.store import SCHEMA_VERSION

    schema = _store_schema(generation.path)
    if schema < SCHEMA_VERSION:  # our own index: migrate it in place (cheap ALTER TABLEs)
        print(f"migrating {_rel(out)}'s store from schema {schema} to {SCHEMA_VERSION}…")
        t0 = time.perf_counter()
        _migrate_store(generation.path)
        synthetic = {
            **synthetic,
            "store_migrated": {
                "from_schema": schema,
                "to_schema": SCHEMA_VERSION,
                "seconds": round(time.perf_counter() - t0, 1),
            },
        }
    sizes = {
        name: round(dir_size_bytes(generation.path / name) / 1e6, 1)
        for name in (STORE_FILE, DENSE_FILE, LEXICAL_DIR)
    }
    return {
        **synthetic,
        "generation": generation.generation,
        "passages": indexed,
        "dense": record_json(generation.manifest.dense),
        "disk_mb": {**sizes, "total": round(dir_size_bytes(generation.path) / 1e6, 1)},
        "reused": True,
    }


# --------------------------------------------------------------------------- report


def _label(threads: str) -> str:
    return "default (all cores)" if threads == "default" else f"{threads}"


def _latency_rows(runs: dict[str, dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for threads, result in runs.items():
        for mode in MODES:
            lat = result["latency"][mode]
            cpu = result["cpu_time_per_query"][mode]
            rows.append(
                [
                    mode,
                    _label(threads),
                    lat["p50_ms"],
                    lat["p95_ms"],
                    lat["p99_ms"],
                    lat["mean_ms"],
                    lat["max_ms"],
                    cpu["p50_ms"],
                    cpu["p99_ms"],
                ]
            )
    return rows


def _component_table(runs: dict[str, dict[str, Any]]) -> str:
    first = next(iter(runs.values()))
    labels = {
        "query_embedding": "query embedding (MiniLM, 1 query)",
        "dense_search": f"dense search ({first['dense_factory']}, top {first['candidates']})",
        "lexical_search": f"lexical search (tantivy BM25, top {first['candidates']})",
        "fusion": "fusion (RRF)",
        "passage_lookup": f"passage lookup (`passages_by_rows`, {4 * first['k']} rows)",
        "passage_lookup_sql_only": "… of which the SQL query alone",
    }
    headers = ["component"]
    for threads in runs:
        headers += [f"p50 ({threads})", f"p99 ({threads})", f"CPU p50 ({threads})"]
    rows = []
    for c, label in labels.items():
        row: list[Any] = [label]
        for result in runs.values():
            row += [
                result["components"][c]["p50_ms"],
                result["components"][c]["p99_ms"],
                result["components_cpu_time"][c]["p50_ms"],
            ]
        rows.append(row)
    return md_table(headers, rows)


def _shares(runs: dict[str, dict[str, Any]]) -> list[str]:
    """Each component's share of the summed per-component CPU p50 (one-thread run)."""
    key = "1" if "1" in runs else next(iter(runs))
    cpu = runs[key]["components_cpu_time"]
    parts = [c for c in cpu if c != "passage_lookup_sql_only"]
    total = sum(cpu[c]["p50_ms"] for c in parts)
    shares = ", ".join(
        f"{c.replace('_', ' ')} {cpu[c]['p50_ms'] / total:.0%}"
        for c in sorted(parts, key=lambda c: -cpu[c]["p50_ms"])
    )
    return [
        "",
        f"Shares of the summed component CPU time (p50, threads {key}, {total:.1f} ms): {shares}.",
    ]


def _short_function(name: str) -> str:
    marker = "site-packages/"
    return name.split(marker, 1)[1] if marker in name else name


def _profile_table(runs: dict[str, dict[str, Any]], limit: int = 8) -> list[str]:
    """The top self-time functions of the cProfile'd hybrid searches (one-thread run when
    there is one: its times are the least distorted by thread contention)."""
    key = "1" if "1" in runs else next(iter(runs))
    profile = runs[key].get("profile_hybrid") or {}
    if not profile:
        return []
    rows = [
        [f"`{_short_function(r['function'])}`", r["calls_per_query"], r["tottime_ms_per_query"]]
        for r in profile["top_self"][:limit]
    ]
    total = next(
        (
            r["cumtime_ms_per_query"]
            for r in profile["top_cumulative"]
            if r["function"].startswith("app/retrieval/retriever.py")
            and r["function"].endswith("(search)")
        ),
        None,
    )
    return [
        "",
        f"cProfile of {profile['queries']} hybrid searches (threads {key}; "
        f"{total} ms per search under the profiler), top functions by self time:",
        "",
        md_table(["function", "calls/query", "self ms/query"], rows),
    ]


def _rss_line(runs: dict[str, dict[str, Any]]) -> str:
    return "; ".join(
        f"threads {threads}: peak RSS {r['rss_mb']['peak']} MB (after model load "
        f"{r['rss_mb']['after_model_load']} MB, after opening the index "
        f"{r['rss_mb']['after_index_open']} MB)"
        for threads, r in runs.items()
    )


def _markdown(data: dict[str, Any]) -> str:
    info, load = data["machine"], data["load"]
    headers = ["mode", "threads", "p50", "p95", "p99", "mean", "max", "CPU p50", "CPU p99"]
    parts = [
        "## Query latency (`python -m benchmarks.query_bench`)",
        "",
        "`HybridRetriever.search` in-process, k = 10, query embedding included; real SQuAD-dev "
        "questions (a fixed random sample, after a warm-up), the three modes interleaved "
        "question by question; each index and thread setting measured in a fresh process. "
        "Latencies in ms (wall clock). *threads*: torch intra-op and FAISS OpenMP threads — "
        "*default* is what the service does today (`Embedder` sets torch to all cores; FAISS "
        "uses all cores), *1* is one thread for both. *CPU*: process CPU time per query (with "
        "1 thread, about the latency on an idle core; the machine is shared, see the load "
        "below).",
    ]
    sample = data.get("sample")
    if sample:
        first = next(iter(sample["runs"].values()))
        parts += [
            "",
            f"### Sample index: `{first['index']}` ({first['passages']:,} passages, "
            f"{first['dense_factory']}, {first['disk_mb']} MB)",
            "",
            md_table(headers, _latency_rows(sample["runs"])),
            "",
            f"{first['queries']} queries per mode. {_rss_line(sample['runs'])}.",
        ]
    synth = data.get("synthetic_1m")
    if synth:
        build = data["synthetic_build"]
        first = next(iter(synth["runs"].values()))
        reused = " (reused from an earlier run)" if build.get("reused") else ""
        parts += [
            "",
            f"### Synthetic index: `{first['index']}` ({first['passages']:,} passages, "
            f"{first['dense_factory']}, nprobe {first['nprobe']})",
            "",
            f"Built without the model ({build['pages']:,} pages × {build['passages_per_page']} "
            f"passages of {build['mean_words_per_passage']} words on average, recombining "
            f"{build['real_sentences']:,} real sentences; {build['vectors']}) in "
            f"**{build['build_seconds']} s**{reused}, peak RSS {build['build_peak_rss_mb']} MB; "
            "stages: "
            + ", ".join(f"{k} {v} s" for k, v in build["stage_seconds"].items())
            + f". Disk **{build['disk_mb']['total']} MB**: "
            + ", ".join(f"{k} {v} MB" for k, v in build["disk_mb"].items() if k != "total")
            + ".",
            "",
            md_table(headers, _latency_rows(synth["runs"])),
            "",
            f"{first['queries']} queries per mode. {_rss_line(synth['runs'])}. The index files "
            "are memory-mapped: RSS counts the pages touched.",
            "",
        ]
        for threads, verdict in data["targets"].items():
            p50 = "met" if verdict["p50_met"] else "**NOT met**"
            p99 = "met" if verdict["p99_met"] else "**NOT met**"
            hybrid_cpu = synth["runs"][threads]["cpu_time_per_query"]["hybrid"]
            cpu = (
                f" CPU time per hybrid query p50 {hybrid_cpu['p50_ms']} ms, "
                f"p99 {hybrid_cpu['p99_ms']} ms."
            )
            parts.append(
                f"- Targets at 1 M, threads {_label(threads)}: hybrid p50 ≤ {TARGET_P50_MS:.0f} ms "
                f"{p50} ({verdict['hybrid_p50_ms']} ms); hybrid p99 ≤ {TARGET_P99_MS:.0f} ms "
                f"{p99} ({verdict['hybrid_p99_ms']} ms).{cpu}"
            )
        parts += [
            "",
            "Where a hybrid query's time goes (each call timed alone, same questions):",
            "",
            _component_table(synth["runs"]),
        ]
        parts += _shares(synth["runs"])
        parts += _profile_table(synth["runs"])
    if sample:
        parts += ["", "Same breakdown on the sample index:", "", _component_table(sample["runs"])]
    parts += ["", machine_line(info, load), ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.query_bench",
        description=(
            "Query latency p50/p95/p99 per mode (hybrid, dense, lexical) and peak RSS of "
            "HybridRetriever.search on a sample index and on a synthetic 1 M-passage index."
        ),
    )
    parser.add_argument(
        "--index",
        type=Path,
        help="sample index to measure (default: var/squad if published, else one built into "
        "var/bench-sample from WME snapshots)",
    )
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help="JSONL questions")
    parser.add_argument("--queries", type=int, default=300, help="measured queries per mode")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up queries (not measured)")
    parser.add_argument("--k", type=int, default=10, help="passages per query (default 10)")
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[0, 1],
        help="thread settings to measure, each in its own process: 0 = the libraries' defaults "
        "(all cores), N = N torch and FAISS threads (default: 0 1)",
    )
    parser.add_argument(
        "--profile-queries", type=int, default=100, help="hybrid queries under cProfile (0: none)"
    )
    parser.add_argument("--seed", type=int, default=0, help="question sample and generator seed")
    parser.add_argument("--skip-sample", action="store_true", help="no sample-index measurement")
    parser.add_argument("--skip-synthetic", action="store_true", help="no 1 M-passage measurement")
    parser.add_argument(
        "--synthetic-dir", type=Path, default=SYNTHETIC_INDEX, help="default: var/bench-1m"
    )
    parser.add_argument(
        "--passages", type=int, default=1_000_000, help="synthetic passages (default 1 000 000)"
    )
    parser.add_argument(
        "--passages-per-page", type=int, default=10, help="synthetic passages per page"
    )
    parser.add_argument("--rebuild", action="store_true", help="regenerate the synthetic index")
    parser.add_argument("--no-write", action="store_true", help="print only; write no results")
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help=f"only rewrite the RESULTS.md section from results/{NAME}.json (no measurement)",
    )
    parser.add_argument("--child-query", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--query-encoder", choices=["onnx", "torch"], default="onnx",
        help="query embedding backend (the service's WIKIRAG_QUERY_ENCODER; default onnx)",
    )  # fmt: skip
    parser.add_argument("--child-threads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--child-build", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child_query:
        result = run_queries(
            args.child_query,
            args.questions,
            args.queries,
            args.warmup,
            args.k,
            args.profile_queries,
            args.seed,
            args.child_threads,
            args.query_encoder,
        )
        print(json.dumps(result))
        return 0
    if args.child_build:
        result = build_synthetic(args.child_build, args.passages, args.passages_per_page, args.seed)
        print(json.dumps(result))
        return 0
    if args.markdown_only:
        data = json.loads((RESULTS_DIR / f"{NAME}.json").read_text(encoding="utf-8"))
        update_results_md("query", _markdown(data))
        return 0

    info = machine_info()
    me = [sys.executable, "-m", "benchmarks.query_bench"]
    common = [
        f"--questions={args.questions}",
        f"--queries={args.queries}",
        f"--warmup={args.warmup}",
        f"--k={args.k}",
        f"--profile-queries={args.profile_queries}",
        f"--seed={args.seed}",
        f"--query-encoder={args.query_encoder}",
    ]

    def measure(label: str, index: Path) -> dict[str, dict[str, Any]]:
        runs: dict[str, dict[str, Any]] = {}
        for threads in args.threads:
            key = str(threads) if threads else "default"
            print(
                f"{label} index {_rel(index)}, threads {key}: {args.queries} queries × "
                f"{len(MODES)} modes…",
                flush=True,
            )
            cmd = [*me, *common, f"--child-threads={threads}", f"--child-query={index}"]
            runs[key] = child_json(cmd)
            runs[key]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
            _print_latency(f"{label}/{key}", runs[key])
        return runs

    data = {"benchmark": NAME, "machine": info}
    with LoadSampler() as load:
        if not args.skip_sample:
            index, how = ensure_sample_index(args.index)
            index, migrated = readable_index(index)
            how.update(migrated)
            data["sample"] = {"index": _rel(index), "how": how, "runs": measure("sample", index)}
        if not args.skip_synthetic:
            build = None if args.rebuild else existing_synthetic(args.synthetic_dir, args.passages)
            if build is None:
                print(f"building the synthetic index in {_rel(args.synthetic_dir)}…", flush=True)
                if args.synthetic_dir.exists() and args.rebuild:
                    shutil.rmtree(args.synthetic_dir)
                build = child_json(
                    [
                        *me,
                        f"--passages={args.passages}",
                        f"--passages-per-page={args.passages_per_page}",
                        f"--seed={args.seed}",
                        f"--child-build={args.synthetic_dir}",
                    ]
                )
            else:
                print(f"reusing {_rel(args.synthetic_dir)} ({build['generation']})", flush=True)
            data["synthetic_build"] = build
            runs = measure("1M", args.synthetic_dir)
            data["synthetic_1m"] = {"index": _rel(args.synthetic_dir), "runs": runs}
            data["targets"] = {}
            for key, result in runs.items():
                hybrid = result["latency"]["hybrid"]
                data["targets"][key] = {
                    "hybrid_p50_ms": hybrid["p50_ms"],
                    "hybrid_p99_ms": hybrid["p99_ms"],
                    "p50_target_ms": TARGET_P50_MS,
                    "p99_target_ms": TARGET_P99_MS,
                    "p50_met": hybrid["p50_ms"] <= TARGET_P50_MS,
                    "p99_met": hybrid["p99_ms"] <= TARGET_P99_MS,
                    "hybrid_cpu_p50_ms": result["cpu_time_per_query"]["hybrid"]["p50_ms"],
                    "hybrid_cpu_p99_ms": result["cpu_time_per_query"]["hybrid"]["p99_ms"],
                }
    data["load"] = load.summary()
    if "targets" in data:
        print(json.dumps(data["targets"], indent=2))
    if args.no_write:
        return 0
    write_result(NAME, data)
    update_results_md("query", _markdown(data))
    print(f"wrote benchmarks/results/{NAME}.json and the query section of RESULTS.md")
    return 0


def _print_latency(label: str, result: dict[str, Any]) -> None:
    for mode in MODES:
        lat = result["latency"][mode]
        print(
            f"  {label:<9} {mode:<8} p50 {lat['p50_ms']:7.2f}  p95 {lat['p95_ms']:7.2f}  "
            f"p99 {lat['p99_ms']:7.2f} ms",
            flush=True,
        )
    for name, comp in result["components"].items():
        print(f"  {label:<9} {name:<24} p50 {comp['p50_ms']:7.2f}  p99 {comp['p99_ms']:7.2f} ms")
    print(f"  {label:<9} peak RSS {result['rss_mb']['peak']} MB", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
