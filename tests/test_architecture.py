"""The shape of the code, checked: the import contracts of pyproject.toml (import-linter:
`indexer` never imports `app`, delivery sits on the domain, no import cycles) and no module
reaching into another module's private (`_name`) helpers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "indexer")


def _private_imports(folder: str) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if "out" in path.relative_to(ROOT).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            if node.module.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    where = path.relative_to(ROOT)
                    found.append(f"{where}:{node.lineno} imports {node.module}.{alias.name}")
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    for folder in ("app", "indexer", "benchmarks"):
        assert _private_imports(folder) == [], folder


def test_the_import_contracts_hold() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(linter), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "3 kept, 0 broken" in result.stdout


def test_loading_the_settings_loads_nothing_heavy() -> None:
    # `wikirag --help`, a settings error and every worker start read the settings first:
    # they must not wait for FAISS, tantivy, the wikitext parser or torch.
    code = (
        "import sys, app.settings; "
        "print(sorted(m for m in ('faiss', 'tantivy', 'mwparserfromhell', 'torch', "
        "'indexer.build', 'indexer.ingest') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
