"""What every ``wikirag`` command shares: exit codes, the operator-facing error, and the one
way flags become :class:`~app.settings.Settings`.

A flag that was given — ``0`` and ``0.0`` included — overrides its ``WIKIRAG_*`` variable and
is validated exactly like it (:func:`settings_from_args`); a flag left out leaves the
environment's value (or the default) in place.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from app.settings import Settings
from indexer.errors import WikiragError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SKIPPED = 3
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """exit status:
  0    success
  1    the command failed (the message says why; nothing published was changed)
  2    bad arguments or configuration
  3    finished, but some input items were skipped (the summary lists them)
  130  interrupted (Ctrl-C); committed batches are kept, the open one is rolled back
"""

Handler = Callable[[argparse.Namespace, Settings], int]


class CommandError(WikiragError):
    """A failure the operator can act on; printed without a traceback."""

    code = "command-failed"


def settings_from_args(args: argparse.Namespace, names: Sequence[str]) -> Settings:
    """Settings from the environment, overridden by each flag in ``names`` that was given
    (argparse leaves a flag that was not given at ``None``). ``--no-progress`` turns the
    progress bars off, and ``--license-rule WIKI=RULE`` (repeated) sets ``license_rules``.

    >>> args = argparse.Namespace(alpha=0.0, rrf_k=None, no_progress=True)
    >>> settings = settings_from_args(args, ("alpha", "rrf_k"))
    >>> settings.alpha, settings.rrf_k == Settings().rrf_k, settings.progress
    (0.0, True, False)
    """
    if getattr(args, "license_rule", None):
        args.license_rules = dict(args.license_rule)
    overrides: dict[str, Any] = {}
    for name in names:
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    settings = Settings(**overrides)
    if getattr(args, "no_progress", False):
        settings.progress = False
    return settings


def whole_number(text: str, minimum: int, what: str = "a whole number") -> int:
    """``text`` as an int of at least ``minimum``, else an argparse usage error (exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a number of at least {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (0 or less is a usage error, exit 2)."""
    return whole_number(text, 1)


def probability(text: str) -> float:
    """An argparse type: a number from 0 to 1 (anything else is a usage error, exit 2).

    >>> probability("0.8")
    0.8
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def license_rule(item: str) -> tuple[str, str]:
    """``WIKI=RULE`` → ``(wiki, rule)``; a malformed value is a usage error (exit 2)."""
    wiki, sep, rule = item.partition("=")
    if not sep or not wiki or not rule:
        raise argparse.ArgumentTypeError(f"expected WIKI=RULE (e.g. enwiki=auto), got {item!r}")
    return wiki, rule


RETRIEVAL_SETTING_NAMES = ("index_dir", "model", "fusion", "rrf_k", "alpha")


def retrieval_settings(args: argparse.Namespace) -> Settings:
    """Settings of a command that opens an index to query it (search, eval, attribute)."""
    return settings_from_args(args, RETRIEVAL_SETTING_NAMES)


def open_retriever(settings: Settings) -> Any:
    from app.retrieval.retriever import HybridRetriever, LoadedIndex, serving_embedder
    from app.serving import retrieval_defaults

    embedder = serving_embedder(
        settings.model,
        settings.query_threads,
        query_encoder=settings.query_encoder,
        onnx_cache_dir=settings.onnx_cache_dir,
        index_dir=settings.index_dir,
    )
    index = LoadedIndex.open(settings.index_dir, embedder.info)
    return HybridRetriever(
        index,
        embedder,
        retrieval_defaults(index.manifest, settings),
        encode_cache_size=settings.encode_cache_size,
    )
