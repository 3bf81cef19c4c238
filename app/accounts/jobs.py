"""The service's background rebuild: ``wikirag rebuild`` run as a child process.

A rebuild reads every source again, cleans and cuts it, and builds the indexes: seconds to
hours of CPU and memory. Run inside the service it would hold the worker's GIL (stalling its
requests) and leave its peak memory in the service's heap (RSS grew 16.7 % over a 10-minute
load run with one in-process rebuild, `benchmarks/RESULTS.md`, load section). As a child
process its memory goes back to the system when it exits, a crash (or an out-of-memory kill)
costs the job and not the service, and the service keeps answering from the published
generation throughout. If the service dies, the child is killed with it (Linux). The child
gets the service's build settings as ``WIKIRAG_*`` variables and prints its report as JSON.

Usage::

    >>> report = run_rebuild(settings, [])            # doctest: +SKIP
    >>> report["generation"], report["passages"]       # doctest: +SKIP
    ('20261127T010203.456Z-ab12cd', 9113)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.settings import Settings

__all__ = ["BUILD_SETTING_NAMES", "RebuildFailed", "build_environment", "run_rebuild"]

BUILD_SETTING_NAMES = (
    "wiki", "namespaces", "max_words", "overlap_words", "license_rules", "commit_every",
    "max_line_bytes", "model", "factory", "embed_batch_size", "embed_context",
    "keep_generations", "fusion", "rrf_k", "alpha", "candidates",
)  # fmt: skip
"""The settings :meth:`Settings.build_options` reads: what the child must see as the service
does."""

_OK_EXIT_CODES = (0, 3)  # 3: published, with skipped items reported
_PR_SET_PDEATHSIG = 1


def _die_with_the_service() -> None:  # pragma: no cover - runs in the child, before exec
    """In the child: a lower CPU priority (``nice`` +10), so that requests keep the cores
    when both want them; and, on Linux, SIGKILL when the service dies, so that no orphaned
    rebuild goes on holding the index lock (a killed build leaves nothing published; the
    next build removes its leftovers)."""
    os.nice(10)
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class RebuildFailed(Exception):
    """The rebuild command failed; the message is its own last words."""


def build_environment(settings: Settings) -> dict[str, str]:
    """The service's build settings as ``WIKIRAG_*`` variables (JSON for lists and maps)."""
    env: dict[str, str] = {}
    for name in BUILD_SETTING_NAMES:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, (list, tuple, set, frozenset, dict)):
            encoded = json.dumps(sorted(value) if isinstance(value, (set, frozenset)) else value)
        else:
            encoded = str(value)
        env[f"WIKIRAG_{name.upper()}"] = encoded
    return env


def run_rebuild(
    settings: Settings, sources: Sequence[Path], *, timeout: float | None = None
) -> dict[str, Any]:
    """Run ``wikirag rebuild --json`` on ``settings.index_dir`` and return its report;
    :class:`RebuildFailed` with the command's error if it fails (nothing published then)."""
    command = [
        sys.executable, "-m", "app.cli", "rebuild", "--json", "--no-progress",
        "--index", str(settings.index_dir), *(str(s) for s in sources),
    ]  # fmt: skip
    env = {**os.environ, **build_environment(settings), "WIKIRAG_PROGRESS": "false"}
    try:
        done = subprocess.run(
            command,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=_die_with_the_service,
        )
    except subprocess.TimeoutExpired as exc:
        raise RebuildFailed(f"the rebuild did not finish in {timeout:g} s") from exc
    if done.returncode not in _OK_EXIT_CODES:
        last = [line for line in done.stderr.strip().splitlines() if line.strip()][-5:]
        why = (
            f"exit status {done.returncode}"
            if done.returncode > 0
            else (f"killed by signal {-done.returncode}")
        )
        raise RebuildFailed(f"wikirag rebuild failed ({why}): " + " | ".join(last))
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise RebuildFailed(
            f"wikirag rebuild printed no JSON report: {done.stdout[-500:]}"
        ) from exc
    return report
