"""Mutation score of the modules whose mistakes are legal or silent (issue 15).

A wrong license, a link to the wrong revision, a fused ranking that quietly changes or a
passage whose offsets drift do not crash anything: only a test that checks the exact value
notices. This script measures how many of those mistakes the unit tests notice, with
mutmut (3.x): every mutant (a one-token change: ``<`` → ``<=``, ``+`` → ``-``, a string
changed, an argument dropped…) of

    indexer/licensing.py  indexer/urls.py  indexer/chunking.py
    app/retrieval/fusion.py  app/attribution/license.py  app/attribution/citations.py

is run against the fast unit tests that guard them (:data:`TESTS`; no model is loaded, no
index is built) and counted as killed (a test failed), timed out (counted as killed) or
survived. Survivors listed in :data:`EQUIVALENT` change no observable behaviour; each has its
reason there.

The run happens in a scratch copy of the sources (``benchmarks/out/mutation/``, git-ignored),
so the working tree is never touched. The store that ``tests/conftest.py``'s ``sample_store``
fixture ingests from the bundled samples (7 s) is ingested once, by the unmutated code, and
handed to each mutant's test session by this module acting as a pytest plugin
(:func:`pytest_fixture_setup`): mutants of the chunker and the license rule must therefore
be killed by their unit tests, not by the store they would have built.

Run (one worker, niced; ≈ 15–25 min on 2 shared cores)::

    .venv/bin/python -m benchmarks.mutation             # full run, then the summary
    .venv/bin/python -m benchmarks.mutation --resume    # re-run the survivors (new tests)
    .venv/bin/python -m benchmarks.mutation --report    # summary of the last run only

``--resume`` keeps the last run's verdicts and re-runs only the mutants that were not killed,
with the current tests (tests are only ever added, so a killed mutant stays killed); the
sources stay those of the last full run (``module_sha256`` in the result names them).

Writes ``benchmarks/results/mutation.json`` and the ``mutation`` section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "out" / "mutation"
STORE_ENV = "WIKIRAG_MUTATION_STORE"

MODULES = [
    "indexer/licensing.py",
    "indexer/urls.py",
    "indexer/chunking.py",
    "app/retrieval/fusion.py",
    "app/attribution/license.py",
    "app/attribution/citations.py",
]
# The unit tests that guard those modules (none loads a model or builds an index).
TESTS = [
    "tests/test_licensing_units.py",
    "tests/test_urls.py",
    "tests/test_chunking.py",
    "tests/test_fusion.py",
    "tests/test_attribution.py",
    "tests/test_citations.py",
]
# Copied into the scratch tree next to app/ and indexer/ (tests/ and pyproject.toml are
# copied by mutmut itself).
COPIED = ["app", "indexer", "tests", "data/samples", "pyproject.toml", "benchmarks/__init__.py"]

# Why each listed survivor is equivalent (no input that reaches the function tells it from
# the original; a "never reached" one is guarded by the store invariant its reason names).
_WHY_01 = (
    "at `words_in_group == target` the second clause is `unit.words > 0`, true for every unit "
    "(a sentence or piece always has a word), so `>` and `>=` close the same groups"
)
_WHY_02 = (
    'a sentence of exactly `max_words` words is "cut" by `_split_long` into one piece from '
    "its first to its last word, which is the sentence's own span"
)
_WHY_03 = (
    "`min_max` returns one value per score, so the two sequences zipped always have the same "
    "length and `strict` never acts"
)
_WHY_04 = "`html.escape` only tests `if quote:`; `None` and `False` are both false"
_WHY_05 = (
    "the translation tables name exactly the identifiers of `LICENSE_SHORT_NAMES` "
    "(test_translation_tables_are_complete), so a long name is found exactly when the "
    "identifier is known"
)
_WHY_06 = (
    "the English fallback is reached only for an identifier missing from a language's table, "
    "and every table names both known licenses (test_translation_tables_are_complete)"
)
_WHY_07 = "the first piece of a split is the same for any maxsplit"
_WHY_08 = "an empty code and `xxxx` are both no translation's code: both fall back to English"
_WHY_09 = "`_resolve_title`, the only caller with a target, asserts its title is not None"
_WHY_10 = (
    'an empty and a missing path title both end as "names no article", and with an oldid or '
    "curid the title is only used when it is non-empty"
)
_WHY_11 = "`urlsplit` lower-cases the scheme"
_WHY_12 = "`hostname` is lower-case, so an upper-case `X` is never there to strip"
_WHY_13 = (
    "a stored revision always has its page row (add_revision writes both; pages are only ever "
    "marked deleted), so `page` is never None"
)
_WHY_14 = "a stored revision always has its page row, so `page` is never None"
_WHY_15 = (
    "without a fragment the anchor only reaches `revision_url`, which writes no fragment for "
    '`None` or `""` alike'
)
_WHY_16 = (
    "only reached (with no revision id, or a page with no stored revision) for a page without "
    "a current revision, which the store never holds: add_revision sets it in the statement "
    "that creates the page and only current revisions are never pruned"
)
_WHY_17 = (
    "`normalize_title` has already turned every `_` into a blank, so the replacement never "
    "finds anything"
)
_WHY_18 = (
    "the `Special:` title left in the target is only used to find a page for an error "
    "message, and no page is titled `Special:…` (namespace −1 is never exported)"
)
_WHY_19 = (
    "`by_url` looks a page id up before it looks at the title, so the leftover `Special:` "
    "title is never read"
)
_WHY_20 = (
    "a page without a current revision, or whose current revision is not stored, never exists "
    "in the store (see `_revision_not_indexed`), so this refusal is never raised"
)

# Survivors that are equivalent: mutant name → (a piece of the mutated line, so a
# renumbered mutant is not taken for another, reason).
EQUIVALENT: dict[str, tuple[str, str]] = {
    "app.attribution.license.x__html_text__mutmut_2": ("quote=None", _WHY_04),
    "app.attribution.license.x_license_info__mutmut_23": ("known or localized", _WHY_05),
    "app.attribution.license.x_license_info__mutmut_8": ("None", _WHY_06),
    "app.attribution.license.x_strings_for__mutmut_14": ('code.split("-", )[0]', _WHY_07),
    "app.attribution.license.x_strings_for__mutmut_17": ('code.split("-", 2)[0]', _WHY_07),
    "app.attribution.license.x_strings_for__mutmut_8": ('"XXXX"', _WHY_08),
    "app.attribution.citations.x__normalized__mutmut_6": ('"XXXX"', _WHY_09),
    "app.attribution.citations.xǁCitationResolverǁ_parse__mutmut_166": (
        'path_title: str | None = ""',
        _WHY_10,
    ),
    "app.attribution.citations.xǁCitationResolverǁ_parse__mutmut_20": ('"HTTPS:', _WHY_11),
    "app.attribution.citations.xǁCitationResolverǁ_parse__mutmut_26": ('"HTTPS:', _WHY_11),
    "app.attribution.citations.xǁCitationResolverǁ_parse__mutmut_35": ('"XX.XX"', _WHY_12),
    "app.attribution.citations.xǁCitationResolverǁ_record__mutmut_118": (
        "(page is not None) or True",
        _WHY_13,
    ),
    "app.attribution.citations.xǁCitationResolverǁ_record__mutmut_134": (
        "page.title if (page) or True",
        _WHY_14,
    ),
    "app.attribution.citations.xǁCitationResolverǁ_record__mutmut_34": (
        "(page is not None) or True",
        _WHY_13,
    ),
    "app.attribution.citations.xǁCitationResolverǁ_record__mutmut_42": ("anchor = None", _WHY_15),
    "app.attribution.citations.xǁCitationResolverǁ_revision_not_indexed__mutmut_20": (
        'what = f"revision {revision_id} of {wiki}" if (revision_id) or True else "no revision"',
        _WHY_16,
    ),
    "app.attribution.citations.xǁCitationResolverǁ_revision_not_indexed__mutmut_21": (
        'what = f"revision {revision_id} of {wiki}" if revision_id else "XXno revisionXX"',
        _WHY_16,
    ),
    "app.attribution.citations.xǁCitationResolverǁ_revision_not_indexed__mutmut_22": (
        'what = f"revision {revision_id} of {wiki}" if revision_id else "NO REVISION"',
        _WHY_16,
    ),
    "app.attribution.citations.xǁCitationResolverǁ_revision_not_indexed__mutmut_38": (
        "f\"{listed or 'XXnoneXX'}\",",
        _WHY_16,
    ),
    "app.attribution.citations.xǁCitationResolverǁ_revision_not_indexed__mutmut_39": (
        "f\"{listed or 'NONE'}\",",
        _WHY_16,
    ),
    "app.attribution.citations.xǁCitationResolverǁ_special__mutmut_34": (
        'name.replace("XX_XX"',
        _WHY_17,
    ),
    "app.attribution.citations.xǁCitationResolverǁ_special__mutmut_35": (
        'name.replace("_", "XX XX")',
        _WHY_17,
    ),
    "app.attribution.citations.xǁCitationResolverǁ_special__mutmut_40": (
        "return replace(target, revision_id=",
        _WHY_18,
    ),
    "app.attribution.citations.xǁCitationResolverǁ_special__mutmut_63": (
        "return replace(target, revision_id=",
        _WHY_18,
    ),
    "app.attribution.citations.xǁCitationResolverǁ_special__mutmut_79": (
        "return replace(target, page_id=",
        _WHY_19,
    ),
    "app.attribution.citations.xǁCitationResolverǁby_url__mutmut_50": (
        "_revision_not_indexed(",
        _WHY_20,
    ),
    "app.attribution.citations.xǁCitationResolverǁby_url__mutmut_51": (
        "_revision_not_indexed(",
        _WHY_20,
    ),
    "app.attribution.citations.xǁCitationResolverǁby_url__mutmut_52": (
        "_revision_not_indexed(",
        _WHY_20,
    ),
    "app.attribution.citations.xǁCitationResolverǁby_url__mutmut_53": (
        "_revision_not_indexed(",
        _WHY_20,
    ),
    "app.attribution.citations.xǁCitationResolverǁby_url__mutmut_54": (
        "_revision_not_indexed(",
        _WHY_20,
    ),
    "app.attribution.citations.xǁCitationResolverǁby_url__mutmut_61": (
        "_revision_not_indexed(",
        _WHY_20,
    ),
    "app.attribution.citations.xǁCitationResolverǁby_url__mutmut_62": (
        "_revision_not_indexed(",
        _WHY_20,
    ),
    "app.attribution.citations.xǁCitationResolverǁby_url__mutmut_63": (
        "_revision_not_indexed(",
        _WHY_20,
    ),
    "app.attribution.citations.xǁCitationResolverǁby_url__mutmut_64": (
        "_revision_not_indexed(",
        _WHY_20,
    ),
    "app.attribution.citations.xǁCitationResolverǁby_url__mutmut_65": (
        "_revision_not_indexed(",
        _WHY_20,
    ),
    "app.attribution.citations.xǁCitationResolverǁby_url__mutmut_66": (
        "_revision_not_indexed(",
        _WHY_20,
    ),
    "app.retrieval.fusion.x_linear__mutmut_24": ("strict=", _WHY_03),
    "app.retrieval.fusion.x_linear__mutmut_27": ("min_max([s for _, s in hits]), )", _WHY_03),
    "app.retrieval.fusion.x_linear__mutmut_29": ("strict=", _WHY_03),
    "indexer.chunking.x__pack__mutmut_17": ("words_in_group > target", _WHY_01),
    "indexer.chunking.x_split_section__mutmut_3": ("sentence.words >= config.max_words", _WHY_02),
}

_KILLED = {"killed", "timeout"}


def _tests() -> list[str]:
    return [t for t in TESTS if (ROOT / t).exists()]


# ----------------------------------------------------------------------- pytest plugin


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> Path | None:
    """Serve ``sample_store`` from the store ingested once by :func:`_prepare` (a fresh
    copy per test session), instead of ingesting the samples again for each mutant."""
    cached = os.environ.get(STORE_ENV)
    if fixturedef.argname != "sample_store" or not cached:
        return None
    folder = Path(tempfile.mkdtemp(prefix="wikirag-mutation-store-"))
    fixturedef.addfinalizer(lambda: shutil.rmtree(folder, ignore_errors=True))
    copy = folder / "store.sqlite"
    shutil.copyfile(cached, copy)
    fixturedef.cached_result = (copy, fixturedef.cache_key(request), None)
    return copy


# ----------------------------------------------------------------------------- run


def _mutmut_config() -> str:
    lines = ["[mutmut]", "source_paths =", "    app", "    indexer", "only_mutate ="]
    lines += [f"    {m}" for m in MODULES]
    lines += ["also_copy =", "    benchmarks", "    data/samples"]
    lines += ["pytest_add_cli_args_test_selection ="]
    lines += [f"    {t}" for t in _tests()]
    lines += [
        "pytest_add_cli_args =",
        "    -p",
        "    benchmarks.mutation",
        "    -p",
        "    no:cacheprovider",
    ]
    return "\n".join(lines) + "\n"


def _prepare() -> Path:
    """A fresh scratch tree with the mutmut config, and the store ingested once."""
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    for name in COPIED:
        source, target = ROOT / name, WORK / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    # The plugin must be importable from the mutants tree as ``benchmarks.mutation``.
    shutil.copy2(Path(__file__), WORK / "benchmarks" / "mutation.py")
    (WORK / "setup.cfg").write_text(_mutmut_config(), encoding="utf-8")
    # Only [tool.mutmut] in pyproject.toml would shadow setup.cfg; the project has none.
    store = WORK / "sample_store.sqlite"
    _ingest_samples(store)
    return store


def _ingest_samples(path: Path) -> None:
    """What ``tests/conftest.py``'s ``sample_store`` fixture ingests, with the unmutated code."""
    from indexer.ingest import IngestOptions, ingest_sources
    from indexer.store import PassageStore
    from tests.conftest import ENWIKI_XML, REALTIME, TABLE_XML, WME_SNAPSHOTS

    store = PassageStore(path)
    report = ingest_sources(
        [ENWIKI_XML, *WME_SNAPSHOTS, REALTIME], store, IngestOptions(progress=False)
    )
    assert report.skipped_total == 0, report.skipped_items
    ingest_sources([TABLE_XML], store, IngestOptions(progress=False, wiki="enwiki"))
    store.close()


def _command(names: list[str] | None = None) -> list[str]:
    mutmut = Path(sys.executable).with_name("mutmut")
    return ["nice", "-n", "10", str(mutmut), "run", "--max-children", "1", *(names or [])]


def _mutmut(args: list[str], *, store: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if store is not None:
        env[STORE_ENV] = str(store)
    return subprocess.run(args, cwd=WORK, env=env, check=True, text=True)


def _refresh_tests() -> None:
    """Copy the current tests (and this plugin) into the scratch tree and its mutants tree,
    for a run that keeps the previous verdicts (``--resume``)."""
    for tree in (WORK, WORK / "mutants"):
        for test in TESTS:
            if (ROOT / test).exists():
                shutil.copy2(ROOT / test, tree / test)
        shutil.copy2(Path(__file__), tree / "benchmarks" / "mutation.py")


# -------------------------------------------------------------------------- results


def _statuses() -> dict[str, dict[str, str]]:
    """``{module: {mutant name: status}}`` from mutmut's meta files in the scratch tree."""
    from mutmut.stats import status_by_exit_code

    out: dict[str, dict[str, str]] = {}
    for module in MODULES:
        meta = WORK / "mutants" / f"{module}.meta"
        data = json.loads(meta.read_text(encoding="utf-8"))
        out[module] = {
            name: status_by_exit_code[code]
            for name, code in sorted(data["exit_code_by_key"].items())
        }
    return out


def _diff(name: str) -> list[str]:
    """The changed lines of one mutant (``-`` original, ``+`` mutant), from ``mutmut show``."""
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("mutmut")), "show", name],
        cwd=WORK,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [
        " ".join(line.split())
        for line in shown.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def _equivalence(name: str, diff: list[str]) -> str | None:
    """The reason a survivor is equivalent, when it is listed and its change is the one the
    reason was written for."""
    listed = EQUIVALENT.get(name)
    if listed is None:
        return None
    change, reason = listed
    return reason if any(change in line for line in diff if line.startswith("+")) else None


def _module_hashes() -> dict[str, str]:
    return {
        m: hashlib.sha256((WORK / m).read_bytes()).hexdigest()[:16]
        for m in MODULES
        if (WORK / m).exists()
    }


def _summary(statuses: dict[str, dict[str, str]], meta: dict[str, Any]) -> dict[str, Any]:
    modules: dict[str, Any] = {}
    fields = ("mutants", "killed", "timeout", "survived", "no_tests", "other", "equivalent")
    totals: Counter[str] = Counter()
    for module, by_name in statuses.items():
        counts = Counter(by_name.values())
        survivors: dict[str, Any] = {}
        for name in sorted(n for n, status in by_name.items() if status not in _KILLED):
            diff = _diff(name)
            survivors[name] = {
                "status": by_name[name],
                "diff": diff,
                "equivalent": _equivalence(name, diff),
            }
        equivalent = sum(1 for s in survivors.values() if s["equivalent"])
        mutants = len(by_name)
        killed = counts["killed"] + counts["timeout"]
        row: dict[str, Any] = {
            "mutants": mutants,
            "killed": counts["killed"],
            "timeout": counts["timeout"],
            "survived": counts["survived"],
            "no_tests": counts["no tests"],
            "other": mutants - killed - counts["survived"] - counts["no tests"],
            "equivalent": equivalent,
            "score": round(killed / mutants, 4) if mutants else None,
            "score_without_equivalent": (
                round(killed / (mutants - equivalent), 4) if mutants > equivalent else None
            ),
            "survivors": survivors,
        }
        modules[module] = row
        totals.update({k: row[k] for k in fields})
    detected = totals["killed"] + totals["timeout"]
    overall: dict[str, Any] = {k: totals[k] for k in fields}
    overall["score"] = round(detected / totals["mutants"], 4) if totals["mutants"] else None
    overall["score_without_equivalent"] = (
        round(detected / (totals["mutants"] - totals["equivalent"]), 4)
        if totals["mutants"] > totals["equivalent"]
        else None
    )
    return {
        "tool": "mutmut",
        "version": importlib.metadata.version("mutmut"),
        "command": "nice -n 10 mutmut run --max-children 1",
        "script": ".venv/bin/python -m benchmarks.mutation",
        "config": _mutmut_config(),
        "tests": _tests(),
        "module_sha256": _module_hashes(),
        **meta,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "modules": modules,
        "overall": overall,
    }


def _markdown(result: dict[str, Any]) -> str:
    from benchmarks._common import md_table

    rows = []
    for module, row in [*result["modules"].items(), ("**overall**", result["overall"])]:
        rows.append(
            [
                module if module.startswith("*") else f"`{module}`",
                row["mutants"],
                row["killed"] + row["timeout"],
                row["survived"],
                row["no_tests"],
                row["equivalent"],
                f"{100 * row['score']:.1f} %",
                f"{100 * row['score_without_equivalent']:.1f} %",
            ]
        )
    headers = ["module", "mutants", "killed", "survived", "no tests", "equivalent", "score"]
    table = md_table([*headers, "score, equivalent ones left out"], rows)
    equivalent: list[str] = []
    by_function: dict[str, int] = {}
    for row in result["modules"].values():
        for name, survivor in row["survivors"].items():
            change = next((d for d in survivor["diff"] if d.startswith("+")), "")
            if survivor["equivalent"]:
                equivalent.append(f"- `{name}` (`{change[1:].strip()}`): {survivor['equivalent']}")
            else:  # counted per function here; each one's diff is in the JSON
                function = name.rsplit("__mutmut_", 1)[0]  # module.x_function, module.xǁCǁm
                function = function.replace(".x\u01c1", ".").replace("\u01c1", ".")
                function = function.replace(".x_", ".", 1)
                by_function[function] = by_function.get(function, 0) + 1
    others = [
        f"- `{function}`: {count}"
        for function, count in sorted(by_function.items(), key=lambda item: (-item[1], item[0]))
    ]
    seconds = result.get("run_seconds")
    resumed = result.get("resumed_seconds")
    timing = f"{seconds / 60:.0f} min" if seconds else "time not recorded"
    if resumed:
        timing += f", then {resumed / 60:.0f} min re-running the survivors with new tests"
    return "\n\n".join(
        [
            "## Mutation score",
            f"{result['tool']} {result['version']}, `{result['command']}`, run by "
            f"`{result['script']}` on {result['timestamp'][:10]} ({timing}, one worker on "
            "2 shared cores). Modules: "
            + ", ".join(f"`{m}`" for m in result["modules"])
            + ". Tests: "
            + ", ".join(f"`{t}`" for t in result["tests"])
            + ". A timeout counts as killed; score = killed / mutants. Per-mutant verdicts "
            "and diffs: `results/mutation.json`.",
            table,
            "Equivalent survivors (no input tells them from the original):\n\n"
            + ("\n".join(equivalent) or "- none"),
            "Other survivors, per mutated function (most first):\n\n"
            + ("\n".join(others) or "- none"),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--report", action="store_true", help="summarise the last run only")
    mode.add_argument(
        "--resume",
        action="store_true",
        help="keep the last run's verdicts; re-run its survivors with the current tests",
    )
    args = parser.parse_args(argv)
    previous_path = ROOT / "benchmarks" / "results" / "mutation.json"
    previous = json.loads(previous_path.read_text()) if previous_path.exists() else {}
    meta: dict[str, Any] = {
        "run_seconds": previous.get("run_seconds"),
        "resumed_seconds": previous.get("resumed_seconds"),
    }
    if args.resume:
        _refresh_tests()
        names = [
            name
            for by_name in _statuses().values()
            for name, status in by_name.items()
            if status not in _KILLED
        ]
        started = time.monotonic()
        if names:
            _mutmut(_command(names), store=WORK / "sample_store.sqlite")
        meta["resumed_seconds"] = round(time.monotonic() - started, 1) + (
            meta["resumed_seconds"] or 0.0
        )
    elif not args.report:
        store = _prepare()
        started = time.monotonic()
        _mutmut(_command(), store=store)
        meta = {"run_seconds": round(time.monotonic() - started, 1), "resumed_seconds": None}
    result = _summary(_statuses(), meta)
    from benchmarks._common import update_results_md, write_result

    write_result("mutation", result)
    update_results_md("mutation", _markdown(result))
    for module, row in [*result["modules"].items(), ("overall", result["overall"])]:
        print(
            f"{module:24} {row['mutants']:4} mutants  {row['killed'] + row['timeout']:4} killed  "
            f"{row['survived']:3} survived  {row['no_tests']:3} no tests  "
            f"{row['equivalent']:3} equivalent  score {100 * row['score']:.1f} % "
            f"({100 * row['score_without_equivalent']:.1f} % without the equivalent ones)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
