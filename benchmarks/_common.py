"""Shared helpers of the benchmark scripts: machine info, load sampling, peak RSS, percentiles,
result files (``benchmarks/results/<name>.json``) and the sections of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
RESULTS_DIR = BENCH_DIR / "results"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
SAMPLES = ROOT / "data" / "samples"

RESULTS_MD_HEADER = """# Benchmark results

Measured with the scripts in this folder (see `README.md` for what each one does and how to
run it). Machine-readable results, with the machine, library versions and the CPU load during
the run, are in `results/*.json`. Each section below is rewritten by its own script, between
its `BEGIN`/`END` markers; text outside the markers is kept.
"""


_DISTRIBUTIONS = {
    "faiss": "faiss-cpu",
    "tantivy": "tantivy",
    "torch": "torch",
    "sentence_transformers": "sentence-transformers",
    "numpy": "numpy",
}


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    """CPU, memory, library versions and the current load average."""
    return {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "versions": {name: _version(dist) for name, dist in _DISTRIBUTIONS.items()},
        "git_commit": _git_commit(),
    }


class LoadSampler:
    """Samples ``os.getloadavg()`` every few seconds in a daemon thread while a benchmark
    runs, so that each result says how busy the (shared) machine was."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s = every_s
        self.samples: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg())
            if self._stop.wait(self.every_s):
                return

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg())

    def summary(self) -> dict[str, Any]:
        one = [s[0] for s in self.samples] or [os.getloadavg()[0]]
        return {
            "loadavg_1min_mean": round(statistics.fmean(one), 2),
            "loadavg_1min_max": round(max(one), 2),
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
            "samples": len(one),
            "note": "load average of the whole machine (other engineers share its 2 cores)",
        }


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB: ``VmHWM`` of
    ``/proc/self/status`` (the high-water mark of this process's own address space), else
    ``ru_maxrss``. (On Linux ``ru_maxrss`` of a child started by fork + exec starts from its
    parent's RSS at the fork, so it over-reports for small children of big parents.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) * 1024 / 1e6, 1)
    except OSError:
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb * 1024 / 1e6 if sys.platform != "darwin" else kb / 1e6, 1)


def current_rss_mb() -> float:
    """Current resident set size of this process (``VmRSS``), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) * 1024 / 1e6, 1)
    except OSError:
        pass
    return float("nan")


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def latency_summary(ms: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/mean/max of latencies in milliseconds."""
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
        "max_ms": round(max(ms), 2) if ms else float("nan"),
    }


def dir_size_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def update_results_md(section: str, body: str, *, path: Path = RESULTS_MD) -> None:
    """Replace the text between ``<!-- BEGIN section -->`` and ``<!-- END section -->`` in
    RESULTS.md (appending the section when it is not there yet); everything else is kept."""
    begin, end = f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else RESULTS_MD_HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join("---" for _ in headers) + " |",
    ]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line(info: dict[str, Any], load: dict[str, Any]) -> str:
    """One Markdown line naming the machine, versions and load of a run."""
    versions = info["versions"]
    return (
        f"Run {info['timestamp']} on {info['cpu_count']} × {info['cpu_model']}, "
        f"{info['memory_gb']} GB; Python {info['python']}, faiss {versions['faiss']}, "
        f"tantivy {versions['tantivy']}, torch {versions['torch']}; "
        f"load average (1 min) mean {load['loadavg_1min_mean']}, max {load['loadavg_1min_max']} "
        f"on {info['cpu_count']} cores (shared machine)."
    )


def child_json(cmd: Sequence[str], *, timeout: float | None = None) -> dict[str, Any]:
    """Run ``cmd`` (a benchmark's child mode) and parse the JSON object it prints last on
    stdout; its stderr (progress, logs) goes to ours."""
    proc = subprocess.run(
        list(cmd), cwd=ROOT, stdout=subprocess.PIPE, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd)} printed no JSON result")
    result: dict[str, Any] = json.loads(lines[-1])
    return result
