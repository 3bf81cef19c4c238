"""pytest plugin: a run in which a test was skipped fails when skips are not allowed.

Some tests skip where a part of the machine is missing (Chromium for the browser tests, Ray,
the notebook kernel, root for the disk-full test). On a developer's machine that is a
convenience; in CI it would hide a test that never ran, so CI sets ``WIKIRAG_STRICT_SKIPS=1``
(or passes ``--strict-skips``) and every skip then fails the run, its reason listed. The skip
reasons are printed in every run (``-rs`` in the pytest options). Doctests whose examples are
all marked ``+SKIP`` (usage shown on files a user has, not the repo) are not skips of a test.

Registered with ``-p tests.strict_skips`` in ``pyproject.toml``.
"""

from __future__ import annotations

import os

import pytest

ENV = "WIKIRAG_STRICT_SKIPS"
_DOCTEST_ALL_SKIPPED = "all tests skipped by +SKIP option"
_skips: list[tuple[str, str]] = []  # (node id, reason), this run's


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--strict-skips",
        action="store_true",
        default=os.environ.get(ENV, "") not in ("", "0", "false", "no"),
        help=f"fail the run when any test was skipped (also {ENV}=1; CI sets it)",
    )


def pytest_configure(config: pytest.Config) -> None:
    _skips.clear()


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _record(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = _reason(report)
    if reason != _DOCTEST_ALL_SKIPPED:
        _skips.append((report.nodeid, reason))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _record(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _record(report)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    strict = session.config.getoption("strict_skips")
    if strict and _skips and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not (terminalreporter.config.getoption("strict_skips") and _skips):
        return
    terminalreporter.section("skips are not allowed in this run (--strict-skips)", red=True)
    for nodeid, reason in _skips:
        terminalreporter.line(f"SKIPPED {nodeid}: {reason}", red=True)
    terminalreporter.line(
        f"{len(_skips)} test(s) skipped: install what they need (see .ci/run) or fix them; "
        "the run fails.",
        red=True,
    )
