"""Security properties read off the code itself (issue 8): nothing loads pickles (``pickle``,
``allow_pickle=True``, ``torch.load`` without ``weights_only=True``), nothing extracts
archives to disk, and API keys are compared in constant time (``hmac.compare_digest``, on
the path every request takes)."""

from __future__ import annotations

import ast
import hmac
import inspect
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import app.api.deps
from app.accounts.keys import AuthenticationFailed, KeyStore
from tests.conftest import ROOT

CODE_DIRS = ("app", "indexer", "benchmarks")


def python_files() -> Iterator[Path]:
    """The project's own code; not ``benchmarks/out/`` (ignored generated output, e.g. the
    mutation benchmark's copies of the code: minutes to parse on a busy machine)."""
    generated = ROOT / "benchmarks" / "out"
    for folder in CODE_DIRS:
        yield from sorted(p for p in (ROOT / folder).rglob("*.py") if generated not in p.parents)


def calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def dotted(node: ast.expr) -> str:
    """``np.lib.format.load`` for the function part of a call ("" when not a plain name)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return f"{inner}.{node.attr}" if inner else node.attr
    return ""


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def scan(source: str, where: object) -> list[str]:
    """What ``source`` (the code of ``where``) does that the service must never do."""
    problems = []
    tree = ast.parse(source, filename=str(where))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names]
            module = getattr(node, "module", None) or ""
            if {"pickle", "cPickle", "dill", "cloudpickle", "shelve"} & {module, *names}:
                problems.append(f"{where}:{node.lineno}: imports a pickle module")
    for call in calls(tree):
        name = dotted(call.func)
        line = f"{where}:{call.lineno}"
        if is_true(keyword(call, "allow_pickle")):
            problems.append(f"{line}: allow_pickle=True")
        if name.endswith(("np.load", "numpy.load")):
            allow = keyword(call, "allow_pickle")
            if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                problems.append(f"{line}: np.load with a non-literal allow_pickle")
        if name.endswith("torch.load") and not is_true(keyword(call, "weights_only")):
            problems.append(f"{line}: torch.load without weights_only=True")
        if name.split(".")[-1] in {"extractall", "extract"} and "tar" in source:
            problems.append(f"{line}: extracts an archive to disk")
        if isinstance(call.func, ast.Name) and name in {"eval", "exec"}:
            problems.append(f"{line}: {name}()")
        if name.endswith(("pickle.load", "pickle.loads", "marshal.loads")):
            problems.append(f"{line}: {name}")
    return problems


def test_no_code_loads_pickles_or_extracts_archives() -> None:
    problems = []
    files = list(python_files())
    assert len(files) > 30
    for path in files:
        problems += scan(path.read_text(encoding="utf-8"), path.relative_to(ROOT))
    assert problems == []


def test_the_scan_catches_what_it_forbids() -> None:
    """The checks above, on code that does each forbidden thing."""
    source = (
        "import pickle\nnp.load(p, allow_pickle=True)\ntorch.load(p)\n"
        "archive.extractall(d)\nnp.load(p, allow_pickle=flag)\n"
    )
    bad = ast.parse(source)
    names = [dotted(c.func) for c in calls(bad)]
    assert names == ["np.load", "torch.load", "archive.extractall", "np.load"]
    assert is_true(keyword(next(calls(bad)), "allow_pickle"))
    # the scan itself, on that code and on more: every forbidden thing is reported, once
    more = (
        "from dill import loads\neval(x)\nexec(y)\nimport shelve\npickle.loads(b)\n"
        "marshal.loads(b)\nnumpy.load(p, allow_pickle=False)\ntorch.load(p, weights_only=True)\n"
        "tarfile.open(p).extract(m)\n"
    )
    assert scan(source, "bad.py") == [
        "bad.py:1: imports a pickle module",
        "bad.py:2: allow_pickle=True",
        "bad.py:2: np.load with a non-literal allow_pickle",
        "bad.py:3: torch.load without weights_only=True",
        "bad.py:5: np.load with a non-literal allow_pickle",
    ]
    assert scan(more, "more.py") == [
        "more.py:1: imports a pickle module",
        "more.py:4: imports a pickle module",
        "more.py:2: eval()",
        "more.py:3: exec()",
        "more.py:5: pickle.loads",
        "more.py:6: marshal.loads",
        "more.py:9: extracts an archive to disk",
    ]
    assert scan("np.load(p)\nnp.load(p, allow_pickle=False)\narchive.extractall(d)\n", "ok") == []


def test_api_keys_are_compared_in_constant_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the code: the digest comparison is hmac.compare_digest, never ==
    for function in (KeyStore.authenticate, app.api.deps.authenticate_bearer):
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        names = {dotted(c.func) for c in calls(tree)}
        assert "hmac.compare_digest" in names, function
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(
                isinstance(op, ast.Eq | ast.NotEq) for op in node.ops
            ):
                text = ast.unparse(node)
                assert not any(s in text for s in ("digest", "admin_key", "token")), text
    # the behaviour: every authentication, right or wrong, goes through compare_digest
    seen: list[tuple[object, object]] = []
    original = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        seen.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module app.accounts.keys calls
    store = KeyStore(tmp_path / "keys.sqlite")
    _, raw = store.create("timing")
    store.authenticate(raw)
    with pytest.raises(AuthenticationFailed):
        store.authenticate(raw[:-1] + ("x" if raw[-1] != "x" else "y"))
    assert len(seen) == 2
    assert all(isinstance(a, str) and len(a) == 64 for a, _ in seen)  # hex SHA-256 digests
    # the presented key's digest against the stored one: equal for the key, not for the other
    (right, stored), (wrong, stored_again) = seen
    assert right == stored == stored_again and wrong != stored
    assert all(isinstance(b, str) and len(b) == 64 for _, b in seen)
