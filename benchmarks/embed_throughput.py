"""Embedding throughput of the build's own code (:class:`indexer.embedding.Embedder`) on a CPU
or a GPU: passages per second at several batch sizes, on real passage texts.

This is the per-unit figure behind the capacity plan (``docs/capacity.md``): how long
embedding a corpus takes on N cores or on one GPU. It needs only torch, sentence-transformers
and numpy (no FAISS, tantivy or store), so the same file runs on a GPU machine.

Texts come from a published index's store (``--from-index``, exactly the strings the build
embeds: title and section path, then the passage) or from a JSON-lines file written by
``--export-texts``::

    .venv/bin/python -m benchmarks.embed_throughput --from-index var/squad2 \\
        --export-texts var/capacity/texts.jsonl
    .venv/bin/python -m benchmarks.embed_throughput --texts var/capacity/texts.jsonl \\
        --device cpu --threads 1 2 --batch-sizes 64 --limit 2000 --out var/capacity/cpu.json
    python3 -m benchmarks.embed_throughput --texts texts.jsonl --device cuda \\
        --batch-sizes 64 256 1024 --precision fp32 fp16 --out gpu.json

It prints and writes one JSON document: the device, the model, and per configuration the
passages/s, the mean tokens per passage, and (GPU) the peak memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from indexer.embedding import DEFAULT_MODEL, Embedder


def export_texts(index_dir: Path, target: Path, context: str = "title_section") -> int:
    """Write the embedding texts of every current passage of ``index_dir`` as JSON lines."""
    from app.retrieval.retriever import open_store_for_reading
    from indexer.embedding import embedding_text
    from indexer.generation import IndexLayout

    generation = IndexLayout(index_dir).current()
    store = open_store_for_reading(generation.file("store.sqlite"))
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with target.open("w", encoding="utf-8") as out:
        for record in store.iter_current_passages():
            out.write(json.dumps({"text": embedding_text(record, context)}) + "\n")
            count += 1
    store.close()
    return count


def load_texts(path: Path, limit: int | None) -> list[str]:
    texts = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            texts.append(json.loads(line)["text"])
            if limit is not None and len(texts) >= limit:
                break
    return texts


def measure(
    embedder: Embedder, texts: list[str], *, device: str, min_seconds: float
) -> dict[str, Any]:
    """Embed ``texts`` (repeatedly, until ``min_seconds`` have passed) and time it."""
    import torch

    embedder.encode(texts[: embedder.batch_size * 2])  # warm-up: kernels, allocator
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    done = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    while True:
        vectors = embedder.encode(texts)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        done += len(texts)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            break
    result: dict[str, Any] = {
        "passages": done,
        "seconds": round(elapsed, 2),
        "passages_per_s": round(done / elapsed, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 2),
        "dimension": int(vectors.shape[1]),
        "norm_error": float(np.abs(np.linalg.norm(vectors, axis=1) - 1).max()),
    }
    if device.startswith("cuda"):
        result["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def mean_tokens(embedder: Embedder, texts: list[str]) -> float:
    model = embedder.load()
    limit = int(model.max_seq_length or 512)
    counts = [min(len(model.tokenizer(t)["input_ids"]), limit) for t in texts[:2000]]
    return round(float(np.mean(counts)), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.embed_throughput", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--from-index", type=Path, help="published index to take texts from")
    parser.add_argument("--export-texts", type=Path, help="write the texts here and stop")
    parser.add_argument("--texts", type=Path, help="JSON lines with a 'text' field")
    parser.add_argument("--limit", type=int, help="use at most this many texts")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model (default: packaged MiniLM)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 …")
    parser.add_argument("--threads", type=int, nargs="+", default=[0], help="CPU threads (0: all)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64])
    parser.add_argument(
        "--precision", nargs="+", default=["fp32"], choices=["fp32", "fp16", "bf16"],
        help="model precision (GPU: fp16/bf16 halve the memory traffic)",
    )  # fmt: skip
    parser.add_argument("--min-seconds", type=float, default=10.0, help="time per configuration")
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    args = parser.parse_args(argv)

    if args.export_texts:
        if not args.from_index:
            parser.error("--export-texts needs --from-index")
        print(f"wrote {export_texts(args.from_index, args.export_texts)} texts")
        return 0
    if not args.texts:
        parser.error("--texts (or --from-index with --export-texts) is required")
    import torch

    texts = load_texts(args.texts, args.limit)
    runs = []
    tokens = None
    for threads in args.threads:
        for precision in args.precision:
            for batch_size in args.batch_sizes:
                embedder = Embedder(
                    args.model, device=args.device, batch_size=batch_size, threads=threads or None
                )
                model = embedder.load()
                # always cast: a checkpoint stored in half precision loads as such
                model.to(
                    {"fp32": torch.float32, "fp16": torch.float16}.get(precision, torch.bfloat16)
                )
                tokens = tokens or mean_tokens(embedder, texts)
                run = {
                    "threads": torch.get_num_threads(),
                    "precision": precision,
                    "batch_size": batch_size,
                    **measure(embedder, texts, device=args.device, min_seconds=args.min_seconds),
                }
                runs.append(run)
                print(json.dumps(run), flush=True)
    device_name = (
        torch.cuda.get_device_name(args.device)
        if args.device.startswith("cuda")
        else platform.processor()
    )
    result = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "device": args.device,
        "device_name": device_name,
        "model": args.model,
        "texts": len(texts),
        "mean_tokens_per_passage": tokens,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "runs": runs,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
