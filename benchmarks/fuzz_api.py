"""HTTP API fuzzing figures: how many schemathesis cases the test suite runs, and what the
service answered.

The fuzzing itself is two tests (bounded by a number of examples per operation and per
generation mode, positive and negative): ``tests/test_api.py`` (open access plus an admin
key: every operation but the rebuild, which would start builds) and
``tests/test_hostile_api.py`` (keys required: no key, an unknown key, a malformed key, a
non-admin key, every operation). This script runs them with ``WIKIRAG_FUZZ_RESULTS`` set, so
that each leaves its counts, and sums them up.

Run::

    .venv/bin/python -m benchmarks.fuzz_api            # ≈ 2–3 min (builds the tiny index)

Writes ``benchmarks/results/fuzz_api.json`` and the ``fuzz_api`` section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    ROOT,
    LoadSampler,
    machine_info,
    machine_line,
    md_table,
    update_results_md,
    write_result,
)

NAME = "fuzz_api"
TESTS = [
    "tests/test_api.py::test_schemathesis_finds_no_server_error_and_no_schema_violation",
    "tests/test_hostile_api.py::"
    "test_schemathesis_with_keys_required_gives_401_403_and_never_a_server_error",
]


def record_fuzz_counts(name: str, data: dict[str, Any]) -> None:
    """Called by the fuzzing tests: where ``WIKIRAG_FUZZ_RESULTS`` names a folder, leave
    the figures there as ``<name>.json`` (otherwise do nothing)."""
    folder = os.environ.get("WIKIRAG_FUZZ_RESULTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{name}.json").write_text(json.dumps(data, indent=2), encoding="utf-8")


def run_tests() -> tuple[dict[str, Any], float, int]:
    with tempfile.TemporaryDirectory(prefix="wikirag-fuzz-api-") as tmp:
        env = {**os.environ, "WIKIRAG_FUZZ_RESULTS": tmp}
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        runs = {p.stem: json.loads(p.read_text()) for p in sorted(Path(tmp).glob("*.json"))}
    if proc.returncode != 0:
        print(proc.stdout[-5000:], file=sys.stderr)
    return runs, seconds, proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-write", action="store_true", help="print only, write no files")
    args = parser.parse_args(argv)
    info = machine_info()
    with LoadSampler() as sampler:
        runs, seconds, status = run_tests()
    load = sampler.summary()
    result = {
        "tests_passed": status == 0,
        "seconds": round(seconds, 1),
        "cases": sum(int(r["cases"]) for r in runs.values()),
        "server_errors": sum(
            n for r in runs.values() for s, n in r["statuses"].items() if int(s) >= 500
        ),
        "runs": runs,
    }
    print(json.dumps(result, indent=2))
    if not args.no_write:
        write_result(NAME, {"machine": info, "load": load, **result})
        rows = [
            [name, r["cases"], r["operations"], ", ".join(f"{k}: {v}" for k, v in
                                                          r["statuses"].items())]
            for name, r in runs.items()
        ]  # fmt: skip
        table = md_table(["run", "cases", "operations", "statuses"], rows)
        update_results_md(
            NAME,
            "## HTTP API fuzzing (`fuzz_api`)\n\n"
            f"{machine_line(info, load)}\n\n"
            "schemathesis over every route of `/openapi.json`, positive and negative cases, "
            "with the response checks `not_a_server_error`, `status_code_conformance`, "
            "`content_type_conformance`, `response_schema_conformance` and "
            "`response_headers_conformance`; `keys_required` fuzzes every operation with no "
            "key, an unknown key, a malformed key and a non-admin key (401/403 expected). "
            f"Tests {'passed' if status == 0 else 'FAILED'}; {result['cases']} cases, "
            f"{result['server_errors']} server errors.\n\n{table}\n",
        )
    return 0 if status == 0 and not result["server_errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
