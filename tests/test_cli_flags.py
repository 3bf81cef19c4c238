"""Command-line flags reach the settings exactly as given, 0 and 0.0 included, and are
validated like their ``WIKIRAG_*`` variables.

A flag used to be dropped when its value was falsy (``--alpha 0``, ``--rrf-k 0``, ``--batch
0``), and set without validation otherwise (``--embed-batch-size 0`` went through). These
tests parse real command lines with the real parser, then build a small real index with
``--alpha 0 --rrf-k 0`` and read what its manifest recorded and what search ranks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli.main import build_parser, main
from app.settings import Settings
from indexer.generation import IndexLayout
from tests.test_licensing import real_pages_export


def _settings(argv: list[str]) -> Settings:
    args = build_parser().parse_args(argv)
    settings: Settings = args.settings_from(args)
    return settings


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ALPHA", "RRF_K", "FUSION", "UPDATE_BATCH", "UPDATE_FLUSH_SECONDS", "EMBED_BATCH_SIZE",
        "CANDIDATES",
    ):  # fmt: skip
        monkeypatch.delenv(f"WIKIRAG_{name}", raising=False)


@pytest.mark.parametrize("command", ["build", "rebuild"])
def test_zero_values_reach_the_build_settings(command: str) -> None:
    settings = _settings([command, "x.xml", "--alpha", "0", "--rrf-k", "0", "--fusion", "rrf"])
    assert (settings.alpha, settings.rrf_k, settings.fusion) == (0.0, 0, "rrf")
    assert {"alpha", "rrf_k", "fusion"} <= settings.model_fields_set
    assert settings.retrieval_defaults() == {
        "fusion": "rrf",
        "rrf_k": 0,
        "alpha": 0.0,
        "candidates": 100,
    }


def test_flags_not_given_leave_the_defaults_unset() -> None:
    settings = _settings(["build", "x.xml"])
    assert (settings.alpha, settings.rrf_k, settings.fusion) == (0.45, 60, "linear")
    assert not {"alpha", "rrf_k", "fusion"} & settings.model_fields_set


def test_search_and_eval_take_zero_alpha_and_k() -> None:
    for argv in (
        ["search", "q", "--alpha", "0", "--rrf-k", "0"],
        ["eval", "--questions", "q.jsonl", "--alpha", "0"],
    ):
        settings = _settings(argv)
        assert settings.alpha == 0.0 and "alpha" in settings.model_fields_set, argv
    assert _settings(["search", "q", "--rrf-k", "0"]).rrf_k == 0


def test_update_batch_flag_is_taken_and_validated() -> None:
    assert _settings(["update", "e.ndjson", "--batch", "7"]).update_batch == 7
    assert _settings(["update", "-", "--flush-after", "1.5"]).update_flush_seconds == 1.5
    assert _settings(["update", "-"]).update_flush_seconds == 0.2


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["build", "x.xml", "--alpha", "1.5"], "alpha"),
        (["build", "x.xml", "--alpha", "-0.1"], "alpha"),
        (["build", "x.xml", "--rrf-k", "-1"], "rrf_k"),
        (["build", "x.xml", "--embed-batch-size", "0"], "embed_batch_size"),
        (["build", "x.xml", "--keep-generations", "0"], "keep_generations"),
        (["search", "q", "--alpha", "2"], "alpha"),
        (["update", "e.ndjson", "--batch", "0"], "update_batch"),
        (["update", "-", "--flush-after", "0"], "update_flush_seconds"),
    ],
    ids=[
        "alpha>1",
        "alpha<0",
        "rrf-k<0",
        "embed-batch-0",
        "keep-0",
        "search-alpha",
        "batch-0",
        "flush-0",
    ],
)
def test_out_of_range_values_exit_2_naming_the_setting(
    argv: list[str], names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("wikirag: invalid configuration:"), err
    assert names in err, err


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["search", "q", "-k", "0"], "-k"),
        (["search", "q", "--max-per-article", "0"], "--max-per-article"),
        (["eval", "--questions", "q.jsonl", "--limit", "0"], "--limit"),
        (["eval", "--questions", "q.jsonl", "--limit", "-3"], "--limit"),
        (["prune-revisions", "--keep-days", "0"], "--keep-days"),
    ],
)
def test_counts_below_one_are_usage_errors(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and "at least 1" in err, err


# -- end to end: a real build, its manifest, and search over it ----------------------------

PAGES = ("Albedo", "Answer", "AccessibleComputing", "Autism")
QUERY = "How much sunlight does snow reflect?"


@pytest.fixture(scope="module")
def zero_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four real sample-export pages built with ``--fusion linear --alpha 0 --rrf-k 0``."""
    directory = tmp_path_factory.mktemp("cli-flags")
    export = real_pages_export(directory / "pages.xml.bz2", dict.fromkeys(PAGES))
    index = directory / "index"
    argv = ["build", str(export), "--index", str(index), "--no-progress"]
    with pytest.MonkeyPatch.context() as patch:
        for name in ("ALPHA", "RRF_K", "FUSION"):
            patch.delenv(f"WIKIRAG_{name}", raising=False)
        assert main([*argv, "--fusion", "linear", "--alpha", "0", "--rrf-k", "0"]) == 0
    return index


def test_build_records_zero_alpha_and_rrf_k_in_the_manifest(zero_index: Path) -> None:
    manifest = IndexLayout(zero_index).current().manifest
    assert manifest.retrieval == {
        "fusion": "linear",
        "rrf_k": 0,
        "alpha": 0.0,
        "candidates": 100,
    }


def _ranked(index: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> list[str]:
    capsys.readouterr()
    argv = ["search", QUERY, "--index", str(index), "-k", "5", "--json", *flags]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    return [row["passage_id"] for row in rows]


def test_alpha_zero_ranks_hybrid_as_the_lexical_half(
    zero_index: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Linear fusion with dense weight 0 is BM25's order; the recorded alpha 0 applies
    without a flag, ``--alpha 0`` gives the same, and ``--alpha 1`` is dense's order (the
    dense and lexical orders differ on this query, so a dropped 0 would show)."""
    lexical = _ranked(zero_index, capsys, "--mode", "lexical")
    dense = _ranked(zero_index, capsys, "--mode", "dense")
    assert lexical != dense
    assert _ranked(zero_index, capsys, "--fusion", "linear", "--alpha", "0") == lexical
    assert _ranked(zero_index, capsys) == lexical  # the manifest's alpha 0
    assert _ranked(zero_index, capsys, "--fusion", "linear", "--alpha", "1") == dense
    default_weight = _ranked(zero_index, capsys, "--fusion", "linear", "--alpha", "0.45")
    assert default_weight not in (lexical, dense)
