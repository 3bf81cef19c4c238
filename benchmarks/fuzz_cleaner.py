"""A bounded coverage-guided fuzz run of the wikitext cleaner and the chunker (atheris).

Each input is turned into a page, half of the time as raw UTF-8 text (invalid bytes
replaced) and half as a sequence of markup fragments (``{{``, ``[[``, ``{|``, ``<ref>``,
``'''``…) and text, then cleaned (``indexer.clean.clean_wikitext``) and cut
(``indexer.chunking.chunk_sections``). A *finding* is an input for which the cleaner or the
chunker raises, leaves markup residue (``find_markup_residue``), gives a passage that is
not the exact slice of its section, or takes longer than ``--page-seconds``. Findings are
counted and saved (``benchmarks/results/fuzz_cleaner_findings/``), and the run goes on.

atheris (libFuzzer) is in the ``fuzz`` extra (``pip install -e '.[fuzz]'``); without it
the script falls back to a random generator of the same inputs (no coverage guidance) and
says so in the result.

Run::

    .venv/bin/python -m benchmarks.fuzz_cleaner --seconds 120      # ≈ 2 min
    .venv/bin/python -m benchmarks.fuzz_cleaner --runs 2000        # a fixed number of inputs

Then one page of ``--big-page-mb`` MB (50) on a single line is cleaned and cut, timed: the
per-page bound on the largest input.

Writes ``benchmarks/results/fuzz_cleaner.json`` and the ``fuzz_cleaner`` section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    RESULTS_DIR,
    LoadSampler,
    machine_info,
    machine_line,
    md_table,
    update_results_md,
    write_result,
)

NAME = "fuzz_cleaner"
FINDINGS_DIR = RESULTS_DIR / "fuzz_cleaner_findings"
MAX_LEN = 20_000  # bytes per input
FRAGMENTS = [
    "{{", "}}", "{{{", "}}}", "[[", "]]", "[", "]", "|", "||", "!!", "=", "==", "\n== ",
    " ==\n", "{|", "|}", "|-", "|+", "\n", "\n\n", "'''", "''", "<ref>", "</ref>",
    "<ref name=a/>", "<!--", "-->", "<nowiki>", "</nowiki>", "<math>", "</math>", "<div>",
    "</div>", "<br/>", "<pre>", "</pre>", "<gallery>", "&nbsp;", "&amp;", "&#x41;", "__TOC__",
    "[[File:x.jpg|thumb|", "[[Category:", "[[fr:", "[http://x.org ", "http://x.org",
    "{{Infobox person|name=", "{{cite web|url=", "{{lang|fr|", "{{convert|1|km}}", "*", "#",
    ":", ";", "----", "word", "Word. ", "é", "\x00", "\u202e", "🧑‍🔬", " ",
]  # fmt: skip
_STATE_EVERY = 1.0  # seconds between state-file writes in the fuzzing process


# -- one input ----------------------------------------------------------------------------


def page_from_bytes(data: bytes) -> str:
    """The page an input stands for: raw text, or fragments picked by its bytes."""
    if not data:
        return ""
    if data[0] % 2 == 0:
        return data[1:].decode("utf-8", "replace")
    parts = []
    for i in range(1, len(data) - 1, 2):
        choice, extra = data[i], data[i + 1]
        parts.append(FRAGMENTS[choice % len(FRAGMENTS)] if choice < 200 else chr(extra + 32))
    return "".join(parts)


def check_page(text: str, page_seconds: float) -> str | None:
    """None when the page is handled as promised, else what went wrong."""
    from indexer.chunking import ChunkingConfig, PageRef, chunk_sections
    from indexer.clean import clean_wikitext, find_markup_residue

    started = time.perf_counter()
    try:
        sections = clean_wikitext(text, title="Fuzz")
        by_ordinal = {s.ordinal: s for s in sections}
        for section in sections:
            residue = find_markup_residue(section.text)
            if residue:
                return f"residue {residue[:5]} in section {section.ordinal}"
            if not section.text or section.text != section.text.strip():
                return f"section {section.ordinal} is empty or not stripped"
        page = PageRef("enwiki", 1, 1, "Fuzz", "2025-01-01T00:00:00Z")
        for passage in chunk_sections(sections, page, ChunkingConfig(max_words=40)):
            section = by_ordinal[passage.section_ordinal]
            if passage.text != section.text[passage.start : passage.end]:
                return f"passage {passage.ordinal} is not its section's slice"
    except Exception as exc:  # a finding, not a reason to stop
        return f"raised {type(exc).__name__}: {str(exc)[:200]}"
    seconds = time.perf_counter() - started
    if seconds > page_seconds:
        return f"took {seconds:.1f} s (bound {page_seconds} s)"
    return None


class Tally:
    """Executions and findings of the fuzzing process, written to ``state`` now and then
    (libFuzzer ends the process with ``exit()``: no Python clean-up runs)."""

    def __init__(self, state: Path, page_seconds: float) -> None:
        self.state = state
        self.page_seconds = page_seconds
        self.executions = 0
        self.findings: list[dict[str, str]] = []
        self.slowest = 0.0
        self._written = 0.0

    def run(self, data: bytes) -> None:
        text = page_from_bytes(data)
        started = time.perf_counter()
        problem = check_page(text, self.page_seconds)
        self.slowest = max(self.slowest, time.perf_counter() - started)
        self.executions += 1
        if problem is not None:
            self._record(problem, data)
        if time.monotonic() - self._written > _STATE_EVERY or problem is not None:
            self.write()

    def _record(self, problem: str, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()[:16]
        kind = re.sub(r"\d+(\.\d+)?", "N", problem)[:80]
        if any(f["kind"] == kind for f in self.findings):
            return  # one example per kind of problem
        FINDINGS_DIR.mkdir(parents=True, exist_ok=True)
        (FINDINGS_DIR / f"{digest}.bin").write_bytes(data)
        self.findings.append({"kind": kind, "problem": problem, "input": f"{digest}.bin"})

    def write(self) -> None:
        self._written = time.monotonic()
        data = {
            "executions": self.executions,
            "findings": self.findings,
            "slowest_page_seconds": round(self.slowest, 3),
        }
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.state)


# -- the fuzzing process ------------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    """Runs in its own process: atheris, or the random fallback."""
    tally = Tally(Path(args.state), args.page_seconds)
    if args.engine == "atheris":
        import atheris

        with atheris.instrument_imports():
            import indexer.chunking
            import indexer.clean  # noqa: F401

        libfuzzer = [sys.argv[0], f"-max_len={MAX_LEN}", "-rss_limit_mb=4096"]
        libfuzzer += [f"-seed={args.seed}", "-print_final_stats=1"]
        if args.seconds:
            libfuzzer.append(f"-max_total_time={int(args.seconds)}")
        if args.runs:
            libfuzzer.append(f"-runs={args.runs}")
        atheris.Setup(libfuzzer, tally.run)
        atheris.Fuzz()  # ends the process
    rng = random.Random(args.seed)
    deadline = time.monotonic() + (args.seconds or float("inf"))
    while time.monotonic() < deadline and (not args.runs or tally.executions < args.runs):
        size = rng.randrange(1, MAX_LEN // 10)
        tally.run(bytes(rng.randrange(256) for _ in range(size)))
    tally.write()


def have_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def fuzz(
    seconds: float, runs: int, page_seconds: float, seed: int, engine: str = "auto"
) -> dict[str, Any]:
    if engine == "auto":
        engine = "atheris" if have_atheris() else "random"
    with tempfile.TemporaryDirectory(prefix="wikirag-fuzz-") as tmp:
        state = Path(tmp) / "state.json"
        cmd = [sys.executable, "-m", "benchmarks.fuzz_cleaner", "--child", "--state", str(state),
               "--engine", engine, "--seconds", str(seconds), "--runs", str(runs),
               "--page-seconds", str(page_seconds), "--seed", str(seed)]  # fmt: skip
        started = time.perf_counter()
        limit = (seconds or 3600) * 2 + 120
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
        wall = time.perf_counter() - started
        tally = json.loads(state.read_text(encoding="utf-8")) if state.exists() else {}
    stats = dict(re.findall(r"^stat::(\w+):\s+(\d+)$", proc.stderr, re.M))
    executions = int(stats.get("number_of_executed_units", tally.get("executions", 0)))
    if proc.returncode != 0 and not tally.get("findings"):
        raise SystemExit(f"the fuzzing process failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return {
        "engine": engine,
        "coverage_guided": engine == "atheris",
        "seconds": round(wall, 1),
        "executions": executions,
        "executions_per_second": round(executions / wall, 1) if wall else None,
        "findings": tally.get("findings", []),
        "findings_count": len(tally.get("findings", [])),
        "slowest_page_seconds": tally.get("slowest_page_seconds"),
        "page_seconds_bound": page_seconds,
        "max_input_bytes": MAX_LEN,
        "seed": seed,
        "libfuzzer_stats": {k: int(v) for k, v in stats.items()},
    }


def big_page(megabytes: int) -> dict[str, Any]:
    """Clean and cut one page of ``megabytes`` MB on a single line (markup every few words):
    the per-page time bound on the largest input the readers pass on."""
    from indexer.chunking import ChunkingConfig, PageRef, chunk_sections
    from indexer.clean import clean_wikitext

    unit = "Word [[a|b]] {{c|d}} ''e'' <ref>f</ref> text. "
    size = megabytes * 1_000_000
    text = (unit * (size // len(unit) + 1))[:size]
    started, cpu_started = time.perf_counter(), time.process_time()
    sections = clean_wikitext(text)
    cleaned = time.perf_counter() - started
    page = PageRef("enwiki", 1, 1, "Big", "2025-01-01T00:00:00Z")
    passages = sum(1 for _ in chunk_sections(sections, page, ChunkingConfig()))
    return {
        "megabytes": megabytes,
        "clean_seconds": round(cleaned, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),
        "passages": passages,
    }


def report(result: dict[str, Any], info: dict[str, Any], load: dict[str, Any]) -> None:
    rows = [[result["engine"], result["seconds"], result["executions"],
             result["executions_per_second"], result["findings_count"],
             result["slowest_page_seconds"]]]  # fmt: skip
    table = md_table(
        ["engine", "seconds", "inputs run", "inputs/s", "findings", "slowest page (s)"], rows
    )
    kinds = "\n".join(f"- `{f['kind']}` (input `{f['input']}`)" for f in result["findings"])
    body = (
        "## Wikitext cleaner fuzzing (`fuzz_cleaner`)\n\n"
        f"{machine_line(info, load)}\n\n"
        "Coverage-guided inputs (atheris/libFuzzer; `random` when atheris is not installed) "
        "of up to 20 kB, as raw text or as markup fragments, cleaned and cut; a finding is "
        "an exception, markup residue, a passage that is not its section's slice, or a page "
        f"slower than {result['page_seconds_bound']} s.\n\n{table}\n\n"
        + (f"Findings:\n\n{kinds}\n" if kinds else "No findings.\n")
    )
    if big := result.get("big_page"):
        body += (
            f"\nA {big['megabytes']} MB wikitext page on a single line (markup every few "
            f"words): cleaned in {big['clean_seconds']} s, cut into {big['passages']} passages "
            f"in {big['total_seconds']} s in all ({big['cpu_seconds']} s of CPU).\n"
        )
    update_results_md(NAME, body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="run time (0: no limit)")
    parser.add_argument("--runs", type=int, default=0, help="inputs to run (0: no limit)")
    parser.add_argument("--page-seconds", type=float, default=5.0, help="slowest page allowed")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument(
        "--big-page-mb",
        type=int,
        default=50,
        help="then time one page of this many MB on a single line (0: skip)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no files")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument(
        "--engine",
        choices=["auto", "atheris", "random"],
        default="auto",
        help="atheris (coverage-guided), random, or auto: atheris when it is installed",
    )
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    if not args.seconds and not args.runs:
        parser.error("give --seconds or --runs (the run must be bounded)")
    info = machine_info()
    with LoadSampler() as sampler:
        result = fuzz(args.seconds, args.runs, args.page_seconds, args.seed, args.engine)
        if args.big_page_mb:
            result["big_page"] = big_page(args.big_page_mb)
    load = sampler.summary()
    print(json.dumps(result, indent=2))
    if not args.no_write:
        write_result(NAME, {"machine": info, "load": load, **result})
        report(result, info, load)
    return 1 if result["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
