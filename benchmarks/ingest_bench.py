"""Ingestion throughput and peak memory of ``indexer.ingest.ingest_sources``.

The real enwiki sample (106 articles, 5.7 M characters of wikitext) is replicated into
multistream bz2 XML exports of 1×, 3× and 10× its size (each copy of a ``<page>`` gets new
page and revision ids and a suffixed title; 100 pages per bz2 stream, as in Wikimedia's
``multistream`` dumps). Each size is ingested into a fresh store, in a fresh Python process,
so that the peak RSS (``ru_maxrss``) of each run is its own: it should stay flat as the input
grows (the pipeline streams page by page).

Run::

    .venv/bin/python -m benchmarks.ingest_bench                 # 1×, 3×, 10× (≈ 2–3 min)
    .venv/bin/python -m benchmarks.ingest_bench --sizes 1 3 10 --repeat 2

Writes ``benchmarks/results/ingest_bench.json`` and the ``ingest`` section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import bz2
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import (
    RESULTS_DIR,
    SAMPLES,
    LoadSampler,
    child_json,
    cpu_seconds,
    current_rss_mb,
    dir_size_bytes,
    machine_info,
    machine_line,
    md_table,
    peak_rss_mb,
    update_results_md,
    write_result,
)

NAME = "ingest_bench"
SAMPLE = SAMPLES / "enwiki-sample-pages-articles.xml.bz2"
PAGES_PER_STREAM = 100
PAGE_ID_STEP = 100_000_000  # copy c gets page ids + c·step (sample ids are < 10^8)
REVISION_ID_STEP = 1_000_000_000  # and revision ids + c·step (sample ids are < 10^9)
MIN_LARGE_MB = 50.0

_PAGE = re.compile(r"[ \t]*<page>.*?</page>[ \t]*\n", re.S)
_PAGE_ID = re.compile(r"(</ns>\s*<id>)(\d+)(</id>)")
_REVISION_ID = re.compile(r"(<revision>\s*<id>)(\d+)(</id>)")
_PARENT_ID = re.compile(r"(<parentid>)(\d+)(</parentid>)")
_TITLE = re.compile(r"(<title>)(.*?)(</title>)")
_REDIRECT = re.compile(r'(<redirect title=")([^"]*)(")')
_TEXT = re.compile(r"<text[^>]*>(.*?)</text>", re.S)


def split_export(xml: str) -> tuple[str, list[str], str]:
    """``(header with <siteinfo>, [page elements], footer)`` of a MediaWiki XML export."""
    pages = list(_PAGE.finditer(xml))
    if not pages:
        raise ValueError("no <page> elements in the export")
    header = xml[: pages[0].start()]
    footer = xml[pages[-1].end() :]
    return header, [m.group(0) for m in pages], footer


def copy_page(page: str, copy: int) -> str:
    """Copy number ``copy`` (0 = the original) of a ``<page>`` element: new ids, new title."""
    if copy == 0:
        return page

    def shift(step: int) -> Callable[[re.Match[str]], str]:
        return lambda m: f"{m.group(1)}{int(m.group(2)) + copy * step}{m.group(3)}"

    def rename(m: re.Match[str]) -> str:
        return f"{m.group(1)}{m.group(2)} (copy {copy + 1}){m.group(3)}"

    page = _PAGE_ID.sub(shift(PAGE_ID_STEP), page, count=1)
    page = _REVISION_ID.sub(shift(REVISION_ID_STEP), page, count=1)
    page = _PARENT_ID.sub(shift(REVISION_ID_STEP), page, count=1)
    page = _TITLE.sub(rename, page, count=1)
    return _REDIRECT.sub(rename, page, count=1)


def write_replicated(source: Path, copies: int, out: Path) -> dict[str, Any]:
    """Write ``copies`` copies of every page of ``source`` as a multistream bz2 export."""
    with bz2.open(source, "rt", encoding="utf-8") as handle:
        xml = handle.read()
    header, pages, footer = split_export(xml)
    xml_bytes = 0
    with out.open("wb") as sink:

        def stream(text: str) -> None:
            nonlocal xml_bytes
            data = text.encode("utf-8")
            xml_bytes += len(data)
            sink.write(bz2.compress(data, 9))

        stream(header)
        batch: list[str] = []
        for copy in range(copies):
            for page in pages:
                batch.append(copy_page(page, copy))
                if len(batch) == PAGES_PER_STREAM:
                    stream("".join(batch))
                    batch = []
        if batch:
            stream("".join(batch))
        stream(footer)
    return {
        "copies": copies,
        "pages": len(pages) * copies,
        "xml_mb": round(xml_bytes / 1e6, 2),
        "bz2_mb": round(out.stat().st_size / 1e6, 2),
    }


def wikitext_mb_per_copy(source: Path) -> float:
    """MB (UTF-8) of the wikitext of the namespace-0 non-redirect pages of one copy (what
    the ingest report counts as ``wikitext_mb``)."""
    with bz2.open(source, "rt", encoding="utf-8") as handle:
        _, pages, _ = split_export(handle.read())
    total = 0
    for page in pages:
        if "<ns>0</ns>" not in page or "<redirect" in page:
            continue
        text = _TEXT.search(page)
        if text:
            # XML entities count a little more than the decoded text; close enough to choose
            # the number of copies.
            total += len(text.group(1).encode("utf-8"))
    return total / 1e6


# --------------------------------------------------------------------------- child


def run_child(source: Path, store_path: Path) -> dict[str, Any]:
    """Ingest ``source`` into a fresh store; runs in its own process (peak RSS is its own)."""
    from indexer.ingest import IngestOptions, ingest_sources
    from indexer.store import PassageStore

    rss_before = current_rss_mb()
    cpu_before = cpu_seconds()
    store = PassageStore(store_path)
    started = time.perf_counter()
    report = ingest_sources([source], store, IngestOptions(progress=False))
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    counts = store.counts()
    store.close()
    mb = report.wikitext_bytes / 1e6
    return {
        "pages": report.pages,
        "passages": report.passages,
        "redirects": report.redirects,
        "skipped": dict(report.skipped),
        "wikitext_mb": round(mb, 2),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "mb_per_s": round(mb / seconds, 3),
        "passages_per_s": round(report.passages / seconds, 1),
        "mb_per_cpu_s": round(mb / cpu, 3) if cpu > 0 else None,
        "rss_after_imports_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
        "store_mb": round(dir_size_bytes(store_path) / 1e6, 1),
        "store_counts": counts,
    }


# --------------------------------------------------------------------------- parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ingest_bench",
        description=(
            "Ingestion throughput (MB of wikitext/s, passages/s) and peak RSS of "
            "ingest_sources on the enwiki sample replicated N× (one fresh process and store "
            "per run)."
        ),
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1, 3, 10],
        help="replication factors (default: 1 3 10; the largest is raised until the input "
        f"holds ≥ {MIN_LARGE_MB:.0f} MB of wikitext)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (default 1)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where inputs and stores go (default: a temp dir, removed afterwards)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; write no results")
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help=f"only rewrite the RESULTS.md section from results/{NAME}.json (no measurement)",
    )
    parser.add_argument("--child", nargs=2, metavar=("SOURCE", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(run_child(Path(args.child[0]), Path(args.child[1]))))
        return 0
    if args.markdown_only:
        data = json.loads((RESULTS_DIR / f"{NAME}.json").read_text(encoding="utf-8"))
        update_results_md("ingest", _markdown(data))
        return 0

    info = machine_info()
    per_copy_mb = wikitext_mb_per_copy(SAMPLE)
    sizes = sorted(set(args.sizes))
    needed = math.ceil(MIN_LARGE_MB / per_copy_mb)
    if sizes[-1] < needed:
        print(f"raising the largest size from {sizes[-1]}× to {needed}× (≥ {MIN_LARGE_MB} MB)")
        sizes[-1] = needed
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="wikirag-ingest-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    inputs: dict[int, dict[str, Any]] = {}
    try:
        with LoadSampler() as load:
            for size in sizes:
                source = workdir / f"enwiki-x{size}-pages-articles-multistream.xml.bz2"
                t0 = time.perf_counter()
                inputs[size] = write_replicated(SAMPLE, size, source)
                inputs[size]["write_seconds"] = round(time.perf_counter() - t0, 1)
                print(f"{size}×: {inputs[size]}", flush=True)
                for attempt in range(args.repeat):
                    store = workdir / f"store-x{size}-{attempt}.sqlite"
                    load_before = [round(x, 2) for x in os.getloadavg()]
                    result = child_json(
                        [
                            sys.executable,
                            "-m",
                            "benchmarks.ingest_bench",
                            "--child",
                            str(source),
                            str(store),
                        ]
                    )
                    result.update(size=size, attempt=attempt, loadavg_before=load_before)
                    runs.append(result)
                    print(
                        f"  {size:>3}× run {attempt}: {result['wikitext_mb']} MB, "
                        f"{result['passages']} passages in {result['seconds']} s → "
                        f"{result['mb_per_s']} MB/s, {result['passages_per_s']} passages/s, "
                        f"peak RSS {result['peak_rss_mb']} MB",
                        flush=True,
                    )
                    for leftover in workdir.glob(f"store-x{size}-{attempt}.sqlite*"):
                        leftover.unlink()
                source.unlink()
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    load_summary = load.summary()
    peaks = [r["peak_rss_mb"] for r in runs]
    small = min(r["peak_rss_mb"] for r in runs if r["size"] == sizes[0])
    large = max(r["peak_rss_mb"] for r in runs if r["size"] == sizes[-1])
    largest = [r for r in runs if r["size"] == sizes[-1]]
    best_large = max(largest, key=lambda r: r["mb_per_s"])
    summary = {
        "largest_input_wikitext_mb": best_large["wikitext_mb"],
        "largest_input_target_met": best_large["wikitext_mb"] >= MIN_LARGE_MB,
        "mb_per_s_largest": best_large["mb_per_s"],
        "passages_per_s_largest": best_large["passages_per_s"],
        "peak_rss_mb_range": [min(peaks), max(peaks)],
        "peak_rss_growth_mb_smallest_to_largest": round(large - small, 1),
        "input_growth": f"{sizes[0]}× → {sizes[-1]}×",
        "memory_flat": (large - small) <= max(50.0, 0.15 * small),
    }
    data = {
        "benchmark": NAME,
        "machine": info,
        "load": load_summary,
        "source": str(SAMPLE.relative_to(SAMPLE.parents[2])),
        "wikitext_mb_per_copy": round(per_copy_mb, 2),
        "inputs": {str(k): v for k, v in inputs.items()},
        "runs": runs,
        "summary": summary,
    }
    print(json.dumps(summary, indent=2))
    if args.no_write:
        return 0
    write_result(NAME, data)
    update_results_md("ingest", _markdown(data))
    print(f"wrote benchmarks/results/{NAME}.json and the ingest section of RESULTS.md")
    return 0


def _markdown(data: dict[str, Any]) -> str:
    runs, summary = data["runs"], data["summary"]
    sizes = sorted({r["size"] for r in runs})
    rows = [
        [
            f"{r['size']}×",
            r["pages"],
            r["wikitext_mb"],
            r["passages"],
            r["seconds"],
            r["mb_per_s"],
            r["passages_per_s"],
            r["mb_per_cpu_s"],
            r["peak_rss_mb"],
            r["store_mb"],
            r["loadavg_before"][0],
        ]
        for r in runs
    ]
    table = md_table(
        [
            "input",
            "articles",
            "wikitext MB",
            "passages",
            "s",
            "MB/s",
            "passages/s",
            "MB per CPU-s",
            "peak RSS MB",
            "store MB",
            "load (1 min) before",
        ],
        rows,
    )
    first = min(runs, key=lambda r: r["size"])
    per_copy = first["wikitext_mb"] / first["size"]
    best = max((r for r in runs if r["size"] == sizes[-1]), key=lambda r: r["mb_per_s"])
    low, high = summary["peak_rss_mb_range"]
    flat = "yes" if summary["memory_flat"] else "NO"
    replicas = ", ".join(f"{s}×" for s in sizes)
    growth = summary["peak_rss_growth_mb_smallest_to_largest"]
    return f"""## Ingestion (`python -m benchmarks.ingest_bench`)

`ingest_sources` (read → clean → chunk → SQLite store) on the enwiki sample \
(`{data["source"]}`, {per_copy:.2f} MB of article wikitext) replicated {replicas} into \
multistream bz2 exports with new page and revision ids; one fresh process and fresh store per \
run; peak RSS = that process's `VmHWM`.

{table}

- Throughput on the largest input ({best["wikitext_mb"]} MB of wikitext, ≥ 50 MB: \
{"yes" if summary["largest_input_target_met"] else "NO"}): \
**{best["mb_per_s"]} MB/s, {best["passages_per_s"]} passages/s** wall clock, \
{best["mb_per_cpu_s"]} MB per CPU-second (the CPU figure is less sensitive to the other jobs \
on the machine).
- Peak RSS {sizes[0]}× → {sizes[-1]}×: {low} → {high} MB ({growth:+} MB for \
{sizes[-1] // sizes[0]}× the input): memory flat as the input grows — **{flat}**.

{machine_line(data["machine"], data["load"])}
"""


if __name__ == "__main__":
    raise SystemExit(main())
