"""Test-only fault injection: die at a named point of a build or an update.

Setting ``WIKIRAG_TEST_KILL_AT=<stage>`` makes the process send itself ``SIGKILL`` when it
reaches ``<stage>`` — the fault tests (``tests/test_faults.py``) use it to land kills exactly
inside the critical sections (between a write and the commit or switch that makes it visible),
which random timing alone hits rarely. It is not a setting: never set it outside tests.

Stages, in the order a build and an update reach them::

    build:ingested            the work directory's store is filled, nothing indexed yet
    build:indexed             dense + lexical written, the store not finalized
    publish:manifest          manifest.json written into the work directory
    publish:renamed           the work directory renamed to its final name, `current` unchanged
    publish:switched          `current` switched, older generations not yet pruned
    update:indexed            a batch's tantivy commit and delta file written, store uncommitted
    update:committed          the batch's store transaction committed, updates.json not written

Usage::

    >>> kill_point("publish:renamed")   # a no-op unless WIKIRAG_TEST_KILL_AT names it
"""

from __future__ import annotations

import os
import signal

KILL_AT_ENV = "WIKIRAG_TEST_KILL_AT"


def kill_point(stage: str) -> None:
    """SIGKILL this process if ``WIKIRAG_TEST_KILL_AT`` is ``stage`` (test-only)."""
    if os.environ.get(KILL_AT_ENV) == stage:
        os.kill(os.getpid(), signal.SIGKILL)
