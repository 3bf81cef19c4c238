"""One real ``wikirag serve --open-access`` process on a free loopback port, over the tiny
index of ``test_api.py``, shared by the client and browser tests (one model load)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.test_api import copy_index, shared_index


@dataclass(frozen=True)
class LiveServer:
    url: str
    index_dir: Path
    log: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"wikirag serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"wikirag serve was not ready in {timeout} s:\n{log.read_text()}")


def start_server(
    index: Path,
    log: Path,
    env: dict[str, str] | None = None,
    extra_args: Sequence[str] = (),
    *,
    open_access: bool = True,
    new_session: bool = False,
    ready_timeout: float = 180.0,
) -> tuple[subprocess.Popen[bytes], str]:
    """``wikirag serve --open-access`` on ``index`` and a free loopback port, its output in
    ``log``, with ``env`` added to the environment and ``extra_args`` after the default flags
    (a repeated flag, e.g. ``--reload-poll-seconds``, overrides the default); returns once it
    is ready (the process and its base URL). ``open_access=False`` leaves ``--open-access``
    out (API keys needed); ``new_session`` starts it in its own session and process group, so
    that ``os.killpg(proc.pid, ...)`` reaches its worker processes too. The caller stops it."""
    port = free_port()
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    access = ["--open-access"] if open_access else []
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--index", str(index), "--host",
             "127.0.0.1", "--port", str(port), *access, "--reload-poll-seconds", "0",
             *extra_args],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=full_env,
            start_new_session=new_session,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log, ready_timeout)
    except BaseException:
        if new_session:  # the workers too
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()
        raise
    return proc, url


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL if it has not exited within 30 s."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("live")
    own = copy_index(shared_index(tmp_path_factory), root / "index")
    log = root / "serve.log"
    proc, url = start_server(own, log)
    try:
        yield LiveServer(url, own, log)
    finally:
        stop_server(proc)
