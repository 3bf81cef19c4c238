"""The CI guard against silent skips (tests/strict_skips.py), run on small inner suites with
pytest's own ``pytester``: a skip fails a strict run and is listed with its reason; a run that
is not strict passes; a doctest made only of ``+SKIP`` examples is not a skipped test."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _plugin_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner runs are subprocesses in a temporary folder: they import the plugin from
    the repository, and start not strict unless a test says so."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


INNER = """
import pytest

def test_runs():
    assert True

def test_needs_chromium():
    pytest.skip("no /usr/bin/chromium")
"""


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_inner=INNER)
    return pytester.runpytest_subprocess("-p", "tests.strict_skips", "-rs", *args)


def test_a_skip_fails_a_strict_run_and_names_the_test_and_reason(
    pytester: pytest.Pytester,
) -> None:
    result = _run(pytester, "--strict-skips")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*skips are not allowed in this run*",
         "SKIPPED test_inner.py::test_needs_chromium: no /usr/bin/chromium",
         "1 test(s) skipped*"]
    )  # fmt: skip


def test_the_environment_variable_makes_a_run_strict(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WIKIRAG_STRICT_SKIPS", "1")
    assert _run(pytester).ret == pytest.ExitCode.TESTS_FAILED


def test_a_run_that_is_not_strict_passes_and_prints_the_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WIKIRAG_STRICT_SKIPS", raising=False)  # CI sets it for the outer run
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] test_inner.py:*: no /usr/bin/chromium"])


def test_a_module_level_skip_counts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod='import pytest\npytest.importorskip("no_such_module_xyz")\n')
    result = pytester.runpytest_subprocess("-p", "tests.strict_skips", "--strict-skips")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["SKIPPED test_mod.py: could not import 'no_such_module_xyz'*"])


def test_doctests_of_skipped_examples_only_are_not_skips(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(mod='def f():\n    """\n    >>> f()  # doctest: +SKIP\n    1\n    """\n')
    result = pytester.runpytest_subprocess(
        "-p", "tests.strict_skips", "--strict-skips", "--doctest-modules", "mod.py"
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
