"""Index build throughput by stage, and the embedding pipeline's overhead over the raw model.

1. ``indexer.build.build_index`` on a few Wikimedia Enterprise snapshots (by default frwiki,
   simplewiki, ruwiki, dewiki and ptwiki: ≈ 950 passages in five languages), into a fresh
   index directory with an empty embedding cache. The build reports its ``stage_seconds``
   (ingest = read + clean + chunk + store; embed; lexical index; dense index) and its
   embedding stats; throughput is derived per stage.
2. Embedding speed on the same texts (what the build embeds: ``embedding_text`` of every
   current passage), in interleaved rounds, each variant once per round in a rotating order:

   * ``pipeline`` — ``indexer.embedding.embed_with_cache`` with an empty cache (hash, cache
     lookup, encode the misses, store them, copy into the output), batch 256 as in the build;
   * ``raw_chunked`` — ``SentenceTransformer.encode`` on the same 256-text chunks the pipeline
     hands to the model (isolates the pipeline's own work);
   * ``raw_whole`` — ``SentenceTransformer.encode`` on all texts in one call (the model's best
     case: it sorts the whole list by length, so batches pad less).

   All use the same model object (same torch threads) and model batch size (64). Target:
   pipeline overhead ≤ 10 % over ``raw_whole``.

Run::

    .venv/bin/python -m benchmarks.build_bench               # ≈ 5 min on 2 cores
    .venv/bin/python -m benchmarks.build_bench --rounds 5 \
        --sources data/samples/wme/frwiki_namespace_0.tar.gz

Writes ``benchmarks/results/build_bench.json`` and the ``build`` section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import (
    RESULTS_DIR,
    ROOT,
    SAMPLES,
    LoadSampler,
    cpu_seconds,
    machine_info,
    machine_line,
    md_table,
    peak_rss_mb,
    update_results_md,
    write_result,
)

NAME = "build_bench"
DEFAULT_SOURCES = [
    SAMPLES / "wme" / f"{wiki}_namespace_0.tar.gz"
    for wiki in ("frwiki", "simplewiki", "ruwiki", "dewiki", "ptwiki")
]
OVERHEAD_TARGET = 0.10
VARIANTS = ("pipeline", "raw_chunked", "raw_whole")


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def run_build(sources: list[Path], index_dir: Path, embedder: Any) -> dict[str, Any]:
    from indexer.build import BuildOptions, build_index
    from indexer.ingest import IngestOptions

    options = BuildOptions(ingest=IngestOptions(progress=False), progress=False)
    cpu0 = cpu_seconds()
    started = time.perf_counter()
    report = build_index(sources, index_dir, options, embedder=embedder)
    wall = time.perf_counter() - started
    stages = report.stage_seconds
    passages = report.passages
    mb = report.ingest.wikitext_bytes / 1e6
    throughput = {
        "ingest": {
            "seconds": round(stages["ingest"], 2),
            "wikitext_mb_per_s": round(mb / stages["ingest"], 3),
            "passages_per_s": round(report.ingest.passages / stages["ingest"], 1),
        },
        **{
            stage: {
                "seconds": round(stages[stage], 2),
                "passages_per_s": round(passages / stages[stage], 1),
            }
            for stage in ("embed", "lexical_index", "dense_index")
        },
    }
    emb = report.embedding
    return {
        "sources": [_rel(s) for s in sources],
        "pages": report.ingest.pages,
        "passages": passages,
        "wikitext_mb": round(mb, 3),
        "stage_seconds": {k: round(v, 2) for k, v in stages.items()},
        "stage_share": {k: round(v / sum(stages.values()), 3) for k, v in stages.items()},
        "throughput": throughput,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu_seconds() - cpu0, 2),
        "overall_passages_per_s": round(passages / wall, 1),
        "embedding": emb.as_dict(),
        "embedding_model_share_of_embed_stage": round(emb.encode_seconds / stages["embed"], 3),
        "dense": report.dense_params,
        "generation": report.generation,
    }


def embedding_texts(index_dir: Path) -> list[str]:
    """What the build embedded: ``embedding_text`` of each current passage, in row order."""
    from indexer.embedding import embedding_text
    from indexer.generation import STORE_FILE, IndexLayout
    from indexer.store import PassageStore

    generation = IndexLayout(index_dir).current()
    store = PassageStore(generation.file(STORE_FILE), readonly=True)
    try:
        context = generation.manifest.model.embed_context
        return [embedding_text(r, context) for r in store.iter_current_passages()]
    finally:
        store.close()


def compare_embedding(
    embedder: Any, texts: list[str], rounds: int, workdir: Path
) -> dict[str, Any]:
    from indexer.embedding import EmbeddingCache, embed_with_cache

    model = embedder.load()
    batch = 256  # BuildOptions.embed_batch_size

    def raw(chunk: list[str]) -> np.ndarray:
        out = model.encode(
            chunk,
            batch_size=embedder.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(out, dtype=np.float32)

    def pipeline(tag: str) -> np.ndarray:
        with EmbeddingCache(workdir / f"cache-{tag}.sqlite") as cache:  # new file: empty
            stream = embed_with_cache(embedder, cache, texts, batch_size=batch, progress=False)
            return np.concatenate(list(stream))

    def raw_chunked() -> np.ndarray:
        return np.concatenate([raw(texts[i : i + batch]) for i in range(0, len(texts), batch)])

    def raw_whole() -> np.ndarray:
        return raw(texts)

    raw(texts[:64])  # warm-up: first calls allocate and tune kernels
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    outputs: dict[str, np.ndarray] = {}
    for r in range(rounds):
        order = VARIANTS[r % 3 :] + VARIANTS[: r % 3]
        for variant in order:
            fn: Callable[[], np.ndarray] = {
                "pipeline": lambda r=r: pipeline(str(r)),
                "raw_chunked": raw_chunked,
                "raw_whole": raw_whole,
            }[variant]
            cpu0 = cpu_seconds()
            t0 = time.perf_counter()
            outputs[variant] = fn()
            wall = time.perf_counter() - t0
            cpu = cpu_seconds() - cpu0
            runs[variant].append(
                {
                    "round": r,
                    "seconds": round(wall, 3),
                    "cpu_seconds": round(cpu, 3),
                    "passages_per_s": round(len(texts) / wall, 2),
                }
            )
            print(
                f"  round {r} {variant:<12} {wall:6.1f} s  {len(texts) / wall:6.1f} passages/s",
                flush=True,
            )
    medians = {
        v: {
            "seconds": round(statistics.median(x["seconds"] for x in runs[v]), 3),
            "cpu_seconds": round(statistics.median(x["cpu_seconds"] for x in runs[v]), 3),
        }
        for v in VARIANTS
    }
    for v in VARIANTS:
        medians[v]["passages_per_s"] = round(len(texts) / medians[v]["seconds"], 2)
    pipe = medians["pipeline"]

    def over(ref: str, key: str) -> float:
        return round(pipe[key] / medians[ref][key] - 1, 4)

    # Paired per-round ratios are less sensitive to the load drifting between rounds.
    paired = [
        p["seconds"] / w["seconds"] - 1
        for p, w in zip(runs["pipeline"], runs["raw_whole"], strict=True)
    ]
    same = float(np.abs(outputs["pipeline"] - outputs["raw_whole"]).max())
    return {
        "texts": len(texts),
        "mean_chars": round(statistics.fmean(len(t) for t in texts), 1),
        "pipeline_batch": batch,
        "model_batch": embedder.batch_size,
        "rounds": rounds,
        "runs": runs,
        "median": medians,
        "overhead_vs_raw_whole": over("raw_whole", "seconds"),
        "overhead_vs_raw_whole_paired_median": round(statistics.median(paired), 4),
        "overhead_vs_raw_whole_cpu": over("raw_whole", "cpu_seconds"),
        "overhead_vs_raw_chunked": over("raw_chunked", "seconds"),
        "overhead_vs_raw_chunked_cpu": over("raw_chunked", "cpu_seconds"),
        "max_abs_diff_pipeline_vs_raw": same,
        "target": OVERHEAD_TARGET,
        "target_met": over("raw_whole", "seconds") <= OVERHEAD_TARGET,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.build_bench",
        description=(
            "Build throughput by stage (ingest, embed, lexical, dense) on sample snapshots, "
            "and embed_with_cache (empty cache) vs raw SentenceTransformer.encode."
        ),
    )
    parser.add_argument(
        "--sources",
        type=Path,
        nargs="+",
        default=DEFAULT_SOURCES,
        help="exports to build from (default: the frwiki, simplewiki, ruwiki, dewiki and "
        "ptwiki WME snapshots under data/samples/wme/)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved embedding rounds (default 3)"
    )
    parser.add_argument(
        "--skip-compare", action="store_true", help="only the build, no embedding comparison"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; write no results")
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help=f"only rewrite the RESULTS.md section from results/{NAME}.json (no measurement)",
    )
    args = parser.parse_args(argv)
    if args.markdown_only:
        data = json.loads((RESULTS_DIR / f"{NAME}.json").read_text(encoding="utf-8"))
        update_results_md("build", _markdown(data, data["machine"], data["load"]))
        return 0

    from indexer.embedding import Embedder

    info = machine_info()
    workdir = Path(tempfile.mkdtemp(prefix="wikirag-build-bench-"))
    try:
        with LoadSampler() as load:
            embedder = Embedder()
            t0 = time.perf_counter()
            embedder.load()
            model_load = time.perf_counter() - t0
            print(f"model loaded in {model_load:.1f} s; building…", flush=True)
            build = run_build(list(args.sources), workdir / "index", embedder)
            build["model_load_seconds"] = round(model_load, 2)
            print(json.dumps(build["stage_seconds"]), flush=True)
            compare = None
            if not args.skip_compare:
                texts = embedding_texts(workdir / "index")
                print(f"embedding {len(texts)} texts × 3 variants × {args.rounds} rounds…")
                compare = compare_embedding(embedder, texts, args.rounds, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load_summary = load.summary()
    data = {
        "benchmark": NAME,
        "machine": info,
        "load": load_summary,
        "build": build,
        "embedding_overhead": compare,
        "peak_rss_mb": peak_rss_mb(),
    }
    summary = {
        "stage_seconds": build["stage_seconds"],
        "passages": build["passages"],
        "embed_passages_per_s": build["throughput"]["embed"]["passages_per_s"],
    }
    if compare:
        summary.update(
            {
                "pipeline_passages_per_s": compare["median"]["pipeline"]["passages_per_s"],
                "raw_whole_passages_per_s": compare["median"]["raw_whole"]["passages_per_s"],
                "overhead_vs_raw_whole": compare["overhead_vs_raw_whole"],
                "overhead_target_met": compare["target_met"],
            }
        )
    data["summary"] = summary
    print(json.dumps(summary, indent=2))
    if args.no_write:
        return 0
    write_result(NAME, data)
    update_results_md("build", _markdown(data, info, load_summary))
    print(f"wrote benchmarks/results/{NAME}.json and the build section of RESULTS.md")
    return 0


def _markdown(data: dict[str, Any], info: dict[str, Any], load: dict[str, Any]) -> str:
    build = data["build"]
    tp = build["throughput"]
    rows = [
        [
            "ingest (read + clean + chunk + store)",
            tp["ingest"]["seconds"],
            f"{build['stage_share']['ingest']:.0%}",
            f"{tp['ingest']['passages_per_s']} passages/s, "
            f"{tp['ingest']['wikitext_mb_per_s']} MB wikitext/s",
        ],
        *[
            [
                label,
                tp[stage]["seconds"],
                f"{build['stage_share'][stage]:.0%}",
                f"{tp[stage]['passages_per_s']} passages/s",
            ]
            for stage, label in (
                ("embed", "embed (store scan + cache + model)"),
                ("lexical_index", "lexical index (tantivy)"),
                ("dense_index", f"dense index (FAISS {build['dense'].get('factory')})"),
            )
        ],
    ]
    stage_table = md_table(["stage", "s", "share", "throughput"], rows)
    sources = ", ".join(f"`{Path(s).name}`" for s in build["sources"])
    model_share = build["embedding_model_share_of_embed_stage"]
    text = f"""## Index build (`python -m benchmarks.build_bench`)

`build_index` on {sources}: {build["pages"]} articles, {build["wikitext_mb"]} MB of wikitext, \
{build["passages"]} passages; fresh index directory, empty embedding cache, model loaded \
beforehand ({build["model_load_seconds"]} s, not in the stages).

{stage_table}

Total {build["wall_seconds"]} s ({build["overall_passages_per_s"]} passages/s end to end); \
the model's forward passes are {model_share:.1%} of the embed stage. (The lexical and dense \
stages at 1 M passages: see the synthetic build in the query section.) Peak RSS of the \
benchmark process (build, then the comparison below): {data["peak_rss_mb"]} MB.
"""
    compare = data["embedding_overhead"]
    if compare:
        med = compare["median"]
        rows = [
            [
                name,
                med[name]["seconds"],
                med[name]["passages_per_s"],
                med[name]["cpu_seconds"],
                " / ".join(str(r["seconds"]) for r in compare["runs"][name]),
            ]
            for name in VARIANTS
        ]
        verdict = "met" if compare["target_met"] else "**NOT met**"

        def spread(key: str) -> float:
            return max(
                (max(r[key] for r in runs) - min(r[key] for r in runs))
                / statistics.median(r[key] for r in runs)
                for runs in compare["runs"].values()
            )

        text += f"""
Embedding pipeline vs raw model on the same {compare["texts"]} texts (medians of \
{compare["rounds"]} interleaved rounds; model batch {compare["model_batch"]}, pipeline batch \
{compare["pipeline_batch"]}):

{md_table(["variant", "s", "passages/s", "CPU-s", "s per round"], rows)}

- Pipeline overhead vs `raw_whole` (one `SentenceTransformer.encode` call): \
**{compare["overhead_vs_raw_whole"]:+.1%}** wall (paired per round \
{compare["overhead_vs_raw_whole_paired_median"]:+.1%}, CPU time \
{compare["overhead_vs_raw_whole_cpu"]:+.1%}); target ≤ {compare["target"]:.0%}: {verdict}.
- The pipeline's own work (hashing, cache, copies), vs `raw_chunked` on the same 256-text \
chunks: {compare["overhead_vs_raw_chunked"]:+.1%} wall, \
{compare["overhead_vs_raw_chunked_cpu"]:+.1%} CPU time.
- Same vectors as the raw model (max abs diff {compare["max_abs_diff_pipeline_vs_raw"]:.1e}).
- Round-to-round spread (max − min over the median) of one variant: up to \
{spread("seconds"):.0%} in wall time, {spread("cpu_seconds"):.0%} in CPU time — the machine is \
shared, so read the CPU-time ratios as the stable ones.
"""
    text += f"\n{machine_line(info, load)}\n"
    return text


if __name__ == "__main__":
    raise SystemExit(main())
