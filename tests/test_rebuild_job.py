"""The service's rebuild job runs `wikirag rebuild` as a child process with its settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.accounts.jobs import BUILD_SETTING_NAMES, RebuildFailed, build_environment, run_rebuild
from app.settings import Settings


def test_the_child_sees_the_service_build_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    service = Settings(
        index_dir=tmp_path, wiki="enwiki", namespaces=[0, 4], max_words=80,
        license_rules={"enwiki": "CC-BY-SA-4.0"}, factory="Flat", alpha=0.3, candidates=50,
        keep_generations=2, embed_context="title", progress=False,
    )  # fmt: skip
    env = build_environment(service)
    assert set(env) <= {f"WIKIRAG_{n.upper()}" for n in BUILD_SETTING_NAMES}
    for name in list(Settings.model_fields):
        monkeypatch.delenv(f"WIKIRAG_{name.upper()}", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    child = Settings(index_dir=tmp_path, progress=False)
    assert child.build_options() == service.build_options()


def test_a_failed_rebuild_reports_the_commands_error(tmp_path: Path) -> None:
    index = tmp_path / "nothing-here"
    with pytest.raises(RebuildFailed, match="exit status 1") as failure:
        run_rebuild(Settings(index_dir=index), [], timeout=120)
    message = str(failure.value)
    assert "no published" in message.lower() or "nothing" in message
    # the child's own last words (what `wikirag rebuild` printed on stderr), not just the path
    assert message == (
        f"wikirag rebuild failed (exit status 1): wikirag rebuild: {index} has no published "
        f"index; build one with `wikirag build SOURCE… --index {index}`"
    )
    assert not index.exists()  # nothing was created
