"""Faults: builds, updates and the service killed (SIGKILL) at random points, a disk that
fills up during a build, and corrupt or missing index files at start-up and on hot reload.

The killed processes are children forked from one server process that loaded the embedding
model once (``tests/fault_worker.py``), so each round costs a fraction of a second instead of
a model load; the index is the three tiny articles of ``test_build.py``, with every passage
already in the embedding cache. Random delays are drawn from a seeded generator and spread over
the whole life of the process; the first rounds of each loop land exactly inside the critical
sections instead (``WIKIRAG_TEST_KILL_AT``, see :mod:`indexer.faults`).

After every round: the published generation opens, answers the fixed queries of the fault
worker with exactly the results it gave before (library API, every search mode), and its store
passes ``PRAGMA integrity_check``; after the next successful run no temporary file, work
directory, journal or held lock is left.

``WIKIRAG_FAULT_ROUNDS`` (default 20) sets the rounds per loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from indexer.generation import IndexBusy, IndexLayout
from indexer.lexical import LexicalIndex
from tests.conftest import ROOT, SAMPLES
from tests.live_server import free_port

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("WIKIRAG_FAULT_ROUNDS", "20"))
SEED = 20261126
WME = SAMPLES / "wme"
SMALL = [
    WME / "simplewiki_namespace_0.tar.gz",  # Albert Einstein, simple English
    WME / "ruwiki_namespace_0.tar.gz",  # Squirrel, Russian
    WME / "enwikiversity_namespace_0.tar.gz",
]
BUILD_STAGES = (
    "build:ingested",
    "build:indexed",
    "publish:manifest",
    "publish:renamed",
    "publish:switched",
)
UPDATE_STAGES = ("update:indexed", "update:committed")


# -- the fork server ------------------------------------------------------------------------


class Zygote:
    """Talks to ``python -m tests.fault_worker`` (see there for the protocol)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self._log_handle = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fault_worker"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_handle,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        )
        self._ended: dict[int, dict[str, Any]] = {}
        self._buffer = b""
        self._queries = 0
        self._last = 0
        assert self._read().get("ready"), self.log.read_text()[-3000:]

    def _line(self, timeout: float = 180) -> dict[str, Any]:
        """The next line from the worker; fails (instead of hanging) after ``timeout``."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError(f"no answer in {timeout} s:\n{self.log.read_text()[-3000:]}")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise AssertionError(f"the fault worker died:\n{self.log.read_text()[-3000:]}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def _read(self) -> dict[str, Any]:
        """The next answer that is not a child's exit status (those are kept)."""
        while "status" in (message := self._line()) and "pid" in message:
            self._ended[int(message["pid"])] = message
        return message

    def _write(self, command: dict[str, Any]) -> None:
        stdin: IO[bytes] | None = self.proc.stdin
        assert stdin is not None
        stdin.write(json.dumps(command, default=str).encode() + b"\n")
        stdin.flush()

    def start(self, op: str, index: Path, **params: Any) -> int:
        """Fork a child running ``op``; returns its pid (call :meth:`finish` next)."""
        self._write({"op": op, "index": str(index), "fork": True, **params})
        self._last = int(self._read()["pid"])
        return self._last

    def finish(self, pid: int | None = None) -> dict[str, Any]:
        """``{"status": exit code or -9, "seconds": …}`` of child ``pid`` (default: the
        one started last), once it has ended."""
        pid = self._last if pid is None else pid
        while pid not in self._ended:
            message = self._line()
            assert "status" in message, f"unexpected answer {message}"
            self._ended[int(message["pid"])] = message
        return self._ended.pop(pid)

    def run(self, op: str, index: Path, **params: Any) -> dict[str, Any]:
        """Run ``op`` to its end in a forked child."""
        pid = self.start(op, index, **params)
        result = self.finish(pid)
        assert result["status"] == 0, f"{op} failed:\n{self.log.read_text()[-3000:]}"
        return result

    def query(self, index: Path) -> dict[str, Any]:
        """Fixed queries through the library API in a forked child, and the integrity check."""
        self._queries += 1
        out = self.log.with_name(f"query-{self._queries}.json")
        self.run("query", index, out=str(out))
        answer: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        out.unlink()
        assert "error" not in answer, answer["error"]
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log_handle.close()


@pytest.fixture(scope="module")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    server = Zygote(tmp_path_factory.mktemp("zygote") / "worker.log")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def base(zygote: Zygote, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A published index of SMALL whose embedding cache holds every passage of the fault
    loops (the update events and SMALL[:2] too)."""
    index = tmp_path_factory.mktemp("base") / "index"
    zygote.run("build", index, sources=SMALL)
    return index


@pytest.fixture(scope="module")
def events(base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five events touching every page: a new revision of the enwikiversity article, a
    hidden simplewiki revision, the Russian page deleted, a new simplewiki revision, and an
    event for a page that is not indexed."""
    versity = _article(WME / "enwikiversity_namespace_0.tar.gz")
    simple = _article(WME / "simplewiki_namespace_0.tar.gz")
    squirrel = _article(WME / "ruwiki_namespace_0.tar.gz")
    versity_next = _next_revision(versity, "The course continues with general relativity.")
    simple_next = _next_revision(simple, "Einstein also played the violin.")
    lines = [
        {**versity_next, "event": {"type": "update"}},
        {
            "event": {"type": "visibility-change"},
            "identifier": simple["identifier"],
            "is_part_of": simple["is_part_of"],
            "version": {"identifier": simple["version"]["identifier"]},
            "visibility": {"text": False, "editor": True, "comment": True},
        },
        {
            "event": {"type": "delete"},
            "identifier": squirrel["identifier"],
            "is_part_of": squirrel["is_part_of"],
            "namespace": {"identifier": 0},
        },
        {**simple_next, "event": {"type": "update"}},
        {
            "event": {"type": "delete"},
            "identifier": 999_999_999,
            "is_part_of": squirrel["is_part_of"],
        },
    ]
    path = tmp_path_factory.mktemp("events") / "events.ndjson"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def _article(snapshot: Path) -> dict[str, Any]:
    with tarfile.open(snapshot) as archive:
        for member in archive.getmembers():
            handle = archive.extractfile(member)
            if handle is not None:
                article: dict[str, Any] = json.loads(handle.readline())
                return article
    raise AssertionError(f"{snapshot} holds no article")


def _next_revision(article: dict[str, Any], sentence: str) -> dict[str, Any]:
    """The article as a newer revision with one more sentence (a realistic small edit)."""
    body = dict(article["article_body"])
    body["wikitext"] = body["wikitext"].rstrip() + "\n\n" + sentence + "\n"
    body.pop("html", None)
    version = {**article["version"], "identifier": article["version"]["identifier"] + 1}
    return {**article, "article_body": body, "version": version}


def _copy(source: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, symlinks=True)
    return target


# -- checks -----------------------------------------------------------------------------------

# A file name ending with one of these is left over by an interrupted write. (A store that
# an update switched to WAL mode keeps an *empty* -wal file after a read-only connection;
# one holding data would be a transaction that no checkpoint folded into the database.)
_LEFTOVER_SUFFIXES = ("-journal", ".tmp")


def _leftover(path: Path) -> bool:
    return (
        path.name.startswith((".building-", ".current.tmp-"))
        or ".tmp-" in path.name
        or path.name.endswith(_LEFTOVER_SUFFIXES)
        or (path.name.endswith("-wal") and path.stat().st_size > 0)
    )


def assert_no_orphans(index: Path, context: str = "") -> None:
    """No work directory, temporary file, SQLite journal or held lock in ``index``."""
    layout = IndexLayout(index)
    leftovers = [str(p.relative_to(index)) for p in index.rglob("*") if _leftover(p)]
    assert not leftovers, f"{context}: {leftovers}"
    try:
        with layout.lock():
            pass
    except IndexBusy as exc:  # pragma: no cover - the assertion message
        raise AssertionError(f"the index lock is still held: {exc}") from exc
    for generation in layout.published():
        # tantivy keeps its (flock) lock files; what matters is that nobody holds them
        LexicalIndex.open(generation / "lexical").writer(heap_bytes=15_000_000, threads=1).close()
        store = generation / "store.sqlite"
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", store


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have finished first
        os.kill(pid, signal.SIGKILL)


def _sleep_then_kill(pid: int, delay: float) -> None:
    time.sleep(delay)
    _kill(pid)


# -- kill loops ------------------------------------------------------------------------------


def test_killed_builds_keep_the_published_generation_answering_the_same(
    zygote: Zygote, base: Path, tmp_path: Path
) -> None:
    index = _copy(base, tmp_path / "index")
    old = zygote.query(index)
    other = _copy(base, tmp_path / "other")
    duration = zygote.run("build", other, sources=SMALL[:2])["seconds"]
    new = zygote.query(other)
    assert new["results"] != old["results"]  # the kill rounds publish something different
    rng = random.Random(SEED)
    killed = 0
    for round_ in range(ROUNDS):
        before = zygote.query(index)
        stage = BUILD_STAGES[round_] if round_ < len(BUILD_STAGES) else None
        pid = zygote.start("build", index, sources=SMALL[:2], kill_at=stage)
        if stage is None:
            _sleep_then_kill(pid, rng.uniform(0.0, duration * 1.2))
        status = zygote.finish()["status"]
        killed += status == -signal.SIGKILL
        after = zygote.query(index)
        assert after["integrity"] == "ok"
        if after["generation"] == before["generation"]:
            assert after["results"] == before["results"], f"round {round_}"
        else:  # the kill came after the switch: the new generation is complete
            assert status == 0 or stage == "publish:switched" or stage is None
            assert after["results"] == new["results"], f"round {round_}"
        if stage is not None and stage != "publish:switched":
            assert status == -signal.SIGKILL and after["generation"] == before["generation"]
        # the next successful run (back to the three articles) cleans up
        zygote.run("build", index, sources=SMALL)
        assert zygote.query(index)["results"] == old["results"]
        assert_no_orphans(index)
    assert killed >= ROUNDS // 2, f"only {killed} of {ROUNDS} builds were killed"


def test_killed_updates_resume_to_the_same_answers(
    zygote: Zygote, base: Path, events: Path, tmp_path: Path
) -> None:
    reference = _copy(base, tmp_path / "reference")
    duration = zygote.run("update", reference, sources=[str(events)])["seconds"]
    expected = zygote.query(reference)
    # the reference run put the new passages' vectors in the cache: share them
    shutil.copy(reference / "cache" / "embeddings.sqlite", base / "cache" / "embeddings.sqlite")
    original = zygote.query(base)
    assert expected["results"] != original["results"]
    rng = random.Random(SEED + 1)
    killed = 0
    for round_ in range(ROUNDS):
        index = _copy(base, tmp_path / "index")
        stage = UPDATE_STAGES[round_] if round_ < len(UPDATE_STAGES) else None
        pid = zygote.start("update", index, sources=[str(events)], kill_at=stage)
        if stage is None:
            _sleep_then_kill(pid, rng.uniform(0.0, duration * 1.2))
        status = zygote.finish()["status"]
        killed += status == -signal.SIGKILL
        # the generation stays readable, consistent and answers every query
        after = zygote.query(index)
        assert after["integrity"] == "ok" and after["generation"] == original["generation"]
        if status == 0:
            assert after["results"] == expected["results"], f"round {round_}"
        # a rerun resumes after the last checkpoint and ends in the same state
        zygote.run("update", index, sources=[str(events)])
        assert zygote.query(index)["results"] == expected["results"], f"round {round_}"
        assert_no_orphans(index, f"round {round_} ({stage or 'random'}, status {status})")
    assert killed >= ROUNDS // 2, f"only {killed} of {ROUNDS} updates were killed"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _search_until(
    url: str, deadline: float, *, rebuild: bool, pid: int, until_job_ends: bool = False
) -> tuple[int, int, str | None]:
    """Hit the service until ``deadline`` or its death (readiness, then searches; one admin
    rebuild when asked; with ``until_job_ends``, also until that rebuild job has ended);
    returns (answered, errors, the job's last state)."""
    answered = errors = 0
    ready = False
    job: str | None = None
    state: str | None = None
    with httpx.Client(base_url=url, timeout=2.0) as client:
        while time.monotonic() < deadline and _alive(pid):
            try:
                if not ready:
                    ready = client.get("/readyz").status_code == 200
                    if not ready:
                        time.sleep(0.05)
                    continue
                if rebuild and job is None:
                    accepted = client.post("/v1/admin/rebuild")
                    job = accepted.json()["job_id"] if accepted.status_code == 202 else None
                response = client.post("/v1/search", json={"query": "Einstein", "k": 3})
                answered += 1
                errors += response.status_code >= 500
                if job is not None:
                    status = client.get(f"/v1/admin/jobs/{job}")
                    state = status.json()["state"] if status.status_code == 200 else state
                    if until_job_ends and state in ("succeeded", "failed"):
                        break
            except httpx.TransportError:
                time.sleep(0.05)
    return answered, errors, state


def test_a_killed_service_leaves_the_index_as_it_was(
    zygote: Zygote, base: Path, tmp_path: Path
) -> None:
    index = _copy(base, tmp_path / "index")
    expected = zygote.query(index)
    # one full life first: start-up, readiness, an admin rebuild and its switch
    port = free_port()
    started = time.monotonic()
    pid = zygote.start("serve", index, port=port)
    url = f"http://127.0.0.1:{port}"
    generation = expected["generation"]
    try:
        deadline = time.monotonic() + 120
        while served_generation(url) is None:
            assert time.monotonic() < deadline, "the service never became ready"
            time.sleep(0.1)
        assert httpx.post(f"{url}/v1/admin/rebuild", timeout=10).status_code == 202
        while served_generation(url) == generation:
            assert time.monotonic() < deadline, "the admin rebuild was never served"
            time.sleep(0.1)
    finally:
        _kill(pid)
        zygote.finish(pid)
    lifetime = time.monotonic() - started
    rng = random.Random(SEED + 2)
    served = 0
    for round_ in range(ROUNDS):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        # the first rounds die inside the admin rebuild's critical sections
        stage = BUILD_STAGES[round_] if round_ < len(BUILD_STAGES) else None
        pid = zygote.start("serve", index, port=port, kill_at=stage)
        delay = 120.0 if stage else rng.uniform(0.0, lifetime * 1.2)
        rebuild = stage is not None or round_ % 2 == 0
        answered, errors, state = _search_until(
            url, time.monotonic() + delay, rebuild=rebuild, pid=pid, until_job_ends=bool(stage)
        )
        if stage is not None:
            # the rebuild runs as a child process: it dies there, the service answers on
            assert state == "failed", f"round {round_}: the rebuild never reached {stage}"
            assert _alive(pid), f"round {round_}: the service died with its rebuild"
            leftover = list((index / "generations").glob(".building-*"))
            assert bool(leftover) == stage.startswith(("build:", "publish:manifest"))
        _kill(pid)
        assert zygote.finish()["status"] == -signal.SIGKILL
        served += answered
        assert errors == 0, f"round {round_}: {errors} server errors"
        after = zygote.query(index)
        assert after["integrity"] == "ok"
        assert after["results"] == expected["results"], f"round {round_}"
        zygote.run("build", index, sources=SMALL)  # the next run cleans up after a rebuild
        assert_no_orphans(index)
    assert served > 0, "no round lived long enough to answer a request"


def served_generation(url: str) -> str | None:
    try:
        response = httpx.get(f"{url}/readyz", timeout=2.0)
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    generation: str = response.json()["generation"]
    return generation


# -- corrupt or missing files at start-up and on reload ---------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(random.Random(SEED).randbytes(path.stat().st_size))


def _clobber_header(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.write(b"this is not a SQLite database\x00" * 4)


CORRUPTIONS: dict[str, tuple[str, Any]] = {
    "dense-truncated": ("dense.faiss", _truncate),
    "dense-garbage": ("dense.faiss", _garbage),
    "lexical-missing": ("lexical", shutil.rmtree),
    "store-corrupt": ("store.sqlite", _clobber_header),
    "manifest-missing": ("manifest.json", Path.unlink),
    "manifest-invalid": ("manifest.json", lambda p: p.write_text("{not json", "utf-8")),
}


def _current_dir(index: Path) -> Path:
    return (index / "current").resolve()


def _wait_answering(url: str, timeout: float = 120) -> httpx.Response:
    """The first /readyz answer (any status) of a service that is starting."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(f"{url}/readyz", timeout=5)
            if response.status_code == 200 or time.monotonic() > deadline:
                return response
            if response.json()["error"]["message"] != "the index has not been loaded yet":
                return response
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the service never answered"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def two_generations(zygote: Zygote, base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index whose current generation holds SMALL[:2], with the SMALL one before it."""
    index = _copy(base, tmp_path_factory.mktemp("two") / "index")
    zygote.run("build", index, sources=SMALL[:2])
    assert len(IndexLayout(index).published()) == 2
    return index


@pytest.mark.parametrize("previous", [False, True], ids=["alone", "with-previous"])
@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_corrupt_generation_is_refused_or_replaced_by_the_previous_one(
    zygote: Zygote,
    base: Path,
    two_generations: Path,
    corruption: str,
    previous: bool,
    tmp_path: Path,
) -> None:
    index = _copy(two_generations if previous else base, tmp_path / "index")
    broken = _current_dir(index)
    older = IndexLayout(index).published()[0].name
    name, damage = CORRUPTIONS[corruption]
    damage(broken / name)
    port, log = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    pid = zygote.start("serve", index, port=port, log=str(log))
    try:
        ready = _wait_answering(url)
        if not previous:
            assert ready.status_code == 503, ready.text
            error = ready.json()["error"]
            assert error["code"] == "not-ready" and name in error["message"], error
            assert error["details"]["file"] == str(broken / name), error
            assert f"not ready: generation {broken.name} cannot be served" in log.read_text()
        else:
            assert ready.status_code == 200, ready.text
            body = ready.json()
            assert body["generation"] == older
            fallback = body["fallback"]
            assert fallback["wanted"] == broken.name and fallback["serving"] == older
            assert name in fallback["reason"] and fallback["file"] == str(broken / name)
            described = httpx.get(f"{url}/v1/index", timeout=5).json()
            assert described["generation"] == older and described["fallback"] == fallback
            assert f"FALLBACK: generation {broken.name}" in log.read_text()
            assert name in log.read_text()
    finally:
        _kill(pid)
        zygote.finish(pid)


def test_a_corrupt_new_generation_is_not_switched_to(
    zygote: Zygote, base: Path, tmp_path: Path
) -> None:
    index = _copy(base, tmp_path / "index")
    served = _current_dir(index).name
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    pid = zygote.start("serve", index, port=port, log=str(tmp_path / "serve.log"))
    try:
        assert _wait_answering(url).status_code == 200
        # a complete new generation, left unpublished by a kill, then damaged and published
        zygote.start("build", index, sources=SMALL[:2], kill_at="publish:renamed")
        assert zygote.finish()["status"] == -signal.SIGKILL
        layout = IndexLayout(index)
        new = next(p for p in layout.published() if p.name != served)
        _truncate(new / "dense.faiss")
        link = index / ".current.tmp-test"
        link.symlink_to(Path("generations") / new.name)
        os.replace(link, index / "current")
        deadline = time.monotonic() + 30
        while (fallback := httpx.get(f"{url}/readyz", timeout=5).json().get("fallback")) is None:
            assert time.monotonic() < deadline, "the service did not notice the new generation"
            time.sleep(0.1)
        assert fallback["wanted"] == new.name and fallback["serving"] == served
        assert fallback["file"] == str(new / "dense.faiss")
        search = httpx.post(f"{url}/v1/search", json={"query": "Einstein", "k": 3}, timeout=10)
        assert search.status_code == 200 and search.json()["generation"] == served
        # a good generation published next is served, and the fallback note goes away
        zygote.run("build", index, sources=SMALL)
        while (body := httpx.get(f"{url}/readyz", timeout=5).json())["generation"] == served:
            assert time.monotonic() < deadline + 30, "the good generation was not served"
            time.sleep(0.1)
        assert body["fallback"] is None
    finally:
        _kill(pid)
        zygote.finish(pid)


def test_wikirag_serve_falls_back_to_the_previous_generation(
    two_generations: Path, tmp_path: Path
) -> None:
    """The real ``wikirag serve`` process (uvicorn), started on a broken current generation."""
    index = _copy(two_generations, tmp_path / "index")
    broken = _current_dir(index)
    older = IndexLayout(index).published()[0].name
    _garbage(broken / "dense.faiss")
    port, log = free_port(), tmp_path / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--index", str(index), "--host",
             "127.0.0.1", "--port", str(port), "--open-access"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        ready = _wait_answering(url, timeout=180)
        assert ready.status_code == 200, log.read_text()[-3000:]
        assert ready.json()["generation"] == older
        assert ready.json()["fallback"]["file"] == str(broken / "dense.faiss")
        search = httpx.post(
            f"{url}/v1/search", json={"query": "theory of relativity", "k": 3}, timeout=30
        )
        assert search.status_code == 200 and search.json()["generation"] == older
        assert search.json()["results"]
        text = log.read_text()
        assert f"FALLBACK: generation {broken.name} cannot be served" in text
        assert str(broken / "dense.faiss") in text
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- disk full ----------------------------------------------------------------------------------


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A size-limited tmpfs (needs root and mount rights; skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _resize(mount: Path, size: int) -> None:
    subprocess.run(
        ["mount", "-o", f"remount,size={size // 4096 * 4096 + 4096}", str(mount)], check=True
    )


def test_a_full_disk_fails_the_build_cleanly_and_keeps_serving(
    zygote: Zygote, base: Path, small_disk: Path, tmp_path: Path
) -> None:
    generation = _size(_current_dir(base))
    _resize(small_disk, _size(base) + generation + (1 << 20))
    index = _copy(base, small_disk / "index")
    _resize(small_disk, _size(base) + generation // 3)  # room for a third of a generation
    before = zygote.query(index)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    pid = zygote.start("serve", index, port=port, log=str(tmp_path / "serve.log"))
    try:
        assert _wait_answering(url).status_code == 200
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        failed = subprocess.run(
            [sys.executable, "-m", "app.cli", "build", "--no-progress", "--index", str(index),
             *map(str, SMALL[:2])],
            cwd=ROOT, capture_output=True, text=True, check=False, timeout=300, env=env,
        )  # fmt: skip
        assert failed.returncode == 1, failed.stderr[-3000:]
        assert "Traceback" not in failed.stderr, failed.stderr[-3000:]
        message = failed.stderr.strip().splitlines()[-1]
        assert message.startswith("wikirag build: no space left on the device holding"), message
        assert f"generation {before['generation']} is still the published one" in message
        # still published and served, unchanged; the unfinished generation is gone
        assert zygote.query(index) == before
        assert not list((index / "generations").glob(".building-*"))
        assert httpx.get(f"{url}/readyz", timeout=5).json()["generation"] == before["generation"]
        search = httpx.post(f"{url}/v1/search", json={"query": "Einstein", "k": 3}, timeout=10)
        assert search.status_code == 200 and search.json()["results"]
        # with room again, the same build succeeds, is served, and leaves nothing behind
        _resize(small_disk, _size(base) + 3 * generation + (1 << 20))
        zygote.run("build", index, sources=SMALL[:2])
        assert_no_orphans(index)
        new = zygote.query(index)["generation"]
        deadline = time.monotonic() + 30
        while served_generation(url) != new:
            assert time.monotonic() < deadline, "the new generation was not served"
            time.sleep(0.1)
    finally:
        _kill(pid)
        zygote.finish(pid)
