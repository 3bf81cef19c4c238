"""``wikirag serve`` as a real process: uvicorn on a free loopback port, an API key, hot
reload on SIGHUP and through the admin route, JSON access logs, and a clean SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.accounts.keys import KeyStore
from indexer.build import build_index
from indexer.embedding import Embedder
from indexer.generation import IndexLayout
from tests.conftest import ROOT
from tests.test_api import (
    OPTIONS,
    SIMPLE,
    SOURCES,
    copy_index,
    embedder,
    index_dir,
    key_secret,
    leaked_pieces,
)

__all__ = ["embedder", "index_dir"]  # session fixtures shared with test_api

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_serve_runs_uvicorn_reloads_on_sighup_and_admin_and_stops_cleanly(
    tmp_path: Path, index_dir: Path, embedder: Embedder
) -> None:
    own = copy_index(index_dir, tmp_path / "index")
    _, admin_key = KeyStore(own / "keys.sqlite").create("operator", admin=True)
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "WIKIRAG_RELOAD_GRACE_SECONDS": "1", "HF_HUB_OFFLINE": "1"}
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--index", str(own), "--host",
             "127.0.0.1", "--port", str(port), "--reload-poll-seconds", "0"],
            cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {admin_key}"}
    try:
        with httpx.Client(base_url=base, timeout=30) as client:

            def generation() -> Any:
                return client.get("/v1/index", headers=auth).json()["generation"]

            wait_for(lambda: client.get("/readyz").status_code == 200, 120, "readiness")
            first = IndexLayout(own).current().generation
            assert client.get("/healthz").json() == {"status": "ok"}
            found = client.post("/v1/search", json={"query": "Nobel Prize", "k": 2}, headers=auth)
            assert found.status_code == 200 and found.json()["generation"] == first
            top = found.json()["results"][0]
            assert top["attribution"]["license"]["identifier"]
            assert top["attribution"]["license"]["identifier"] == "CC-BY-SA-3.0"
            refused = client.post("/v1/search", json={"query": "Nobel Prize"})
            assert refused.status_code == 401 and "www-authenticate" in refused.headers

            # publish a generation; polling is off, so nothing changes until SIGHUP
            second = build_index([SIMPLE], own, OPTIONS, embedder=embedder).generation
            time.sleep(0.5)
            assert generation() == first
            proc.send_signal(signal.SIGHUP)
            wait_for(lambda: generation() == second, 30, "the SIGHUP reload")

            third = build_index(SOURCES, own, OPTIONS, embedder=embedder).generation
            reload = client.post("/v1/admin/reload", headers=auth).json()
            assert reload == {**reload, "reloaded": True, "generation": third,
                              "previous_generation": second}  # fmt: skip
            assert (
                client.post("/v1/search", json={"query": "белка"}, headers=auth).json()[
                    "generation"
                ]
                == third
            )
            metrics = client.get("/metrics").text
            assert f'wikirag_index_info{{generation="{third}"' in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    log = log_path.read_text()
    assert code == 0, log
    assert "wikirag service stopped" in log and "Traceback" not in log
    access = [json.loads(line) for line in log.splitlines() if line.startswith('{"ts"')]
    searches = [a for a in access if a["route"] == "/v1/search"]
    assert len(searches) == 3 and searches[0]["status"] == 200
    assert {a["generation"] for a in searches} == {first, None, third}
    assert searches[0]["key_id"] == admin_key.split("_")[1] and searches[1]["status"] == 401
    assert all(
        set(a) >= {"method", "route", "status", "ms", "key_id", "generation"} for a in access
    )
    assert admin_key not in log and admin_key.split("_", 2)[2] not in log
    assert leaked_pieces(key_secret(admin_key), log) == []
    assert "SIGHUP" in log and f"serving generation {third}" in log
