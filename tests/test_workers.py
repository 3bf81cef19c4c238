"""The recommended production setup, ``wikirag serve --workers 2``, as real processes: uvicorn's
supervisor and two worker processes, each with its own model, index handles, reloader and
usage meter, over a private copy of the tiny index of ``test_api.py``, with API keys.

Which worker answered a request is read from the operating system, not guessed: the server
end of the response's TCP connection (``/proc/net/tcp``) is a socket that only one worker
process holds open (``/proc/PID/fd``). Every check below is made through a connection to each
of the two workers.

- a newly published generation (a real rebuild, picked up by the ``current`` link poll) is
  served by both workers, and nothing answers from the old one afterwards;
- ``wikirag update`` applied while both serve is visible through both (passages, citations,
  search);
- usage of requests spread over both workers is counted exactly (requests, per route,
  passages and characters per article), flush after flush;
- a crash (SIGKILL of the process group mid-traffic) loses at most the last flush interval of
  counts and counts nothing twice; a graceful shutdown (SIGTERM) of both workers loses nothing.

Quotas are not checked across workers: each process enforces them on its own view (a known
limitation, README "Usage metering and quotas"). Linux only (``/proc``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.accounts.metering import requests_by_route, usage_rows
from app.cli.main import main as cli_main
from indexer.build import rebuild_index
from indexer.generation import IndexLayout
from tests.conftest import ROOT
from tests.live_server import start_server
from tests.test_api import (
    CURRENT_REVISION,
    OPTIONS,
    SIMPLE,
    copy_index,
    shared_embedder,
    shared_index,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="needs Linux /proc"),
]

FLUSH_SECONDS = 1.0  # WIKIRAG_USAGE_FLUSH_SECONDS of the first service (the default, explicit)
# A flush starts FLUSH_SECONDS after the previous one ended and takes milliseconds (one SQLite
# transaction), but the flusher thread competes for the GIL and for two busy cores with the
# request threads: the margin covers the flush itself and that scheduling delay.
CRASH_MARGIN_SECONDS = 0.5
RELOAD_POLL_SECONDS = 0.5
UPDATE_POLL_SECONDS = 0.3
SWITCH_DEADLINE = 60.0  # a worker opens and warms up a generation in well under a second
SIMPLE_WIKI, SIMPLE_PAGE = "simplewiki", 2138  # "Albert Einstein" in the simplewiki sample
NEW_REVISION = 8400001  # a later revision of it, made by the test (see _new_revision_event)
NEW_TOKEN = "Wikiragtestium"  # a word no indexed text contains, added to that revision
OLD_PASSAGE = f"{SIMPLE_WIKI}:{CURRENT_REVISION}:0"


# -- which worker answered -------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (uvicorn's workers, multiprocessing's helper)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # after "pid (comm)": state, ppid, ...
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry))
    return found


def _server_socket_inode(server_port: int, client_port: int) -> int:
    """The inode of the server end of the loopback connection from ``client_port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], int(fields[9])
                if (
                    inode
                    and int(local.rsplit(":", 1)[1], 16) == server_port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port
                ):
                    return inode
    raise AssertionError(f"no server socket for the connection from port {client_port}")


def _holders(inode: int, pids: list[int]) -> list[int]:
    target = f"socket:[{inode}]"
    holders = []
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        holders.append(pid)
                        break
    return holders


@dataclass
class Service:
    """A running ``wikirag serve --workers 2`` (its own session and process group)."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def worker_of(self, response: httpx.Response) -> int:
        """The pid of the worker process that answered ``response`` (its connection is still
        open: keep-alive)."""
        client_port = int(response.extensions["network_stream"].get_extra_info("client_addr")[1])
        inode = _server_socket_inode(self.port, client_port)
        holders = _holders(inode, _children(self.proc.pid))
        assert len(holders) == 1, f"socket {inode} is held by {holders}"
        return holders[0]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the supervisor (it stops its workers gracefully); its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.wait()


class Workers:
    """One keep-alive HTTP connection to each worker process of ``service``."""

    def __init__(self, service: Service, key: str, workers: int = 2) -> None:
        self.service = service
        self.headers = {"Authorization": f"Bearer {key}"}
        self.workers = workers
        self.clients: dict[int, httpx.Client] = {}
        self.reconnect()

    @property
    def pids(self) -> list[int]:
        return sorted(self.clients)

    def reconnect(self, deadline_seconds: float = 120.0) -> None:
        """Open fresh connections until one reaches each worker (and it is ready)."""
        self.close()
        deadline = time.monotonic() + deadline_seconds
        attempts = 0
        while len(self.clients) < self.workers:
            assert time.monotonic() < deadline, (
                f"{attempts} connections reached only workers {self.pids}:\n"
                + self.service.log.read_text()[-3000:]
            )
            attempts += 1
            client = httpx.Client(base_url=self.service.url, headers=self.headers, timeout=60)
            try:
                ready = client.get("/readyz")
            except httpx.TransportError:
                client.close()
                time.sleep(0.2)
                continue
            pid = self.service.worker_of(ready) if ready.status_code == 200 else None
            if pid is None or pid in self.clients:
                client.close()
                time.sleep(0.05)
            else:
                self.clients[pid] = client
        assert set(self.pids) <= set(_children(self.service.proc.pid))

    def send(self, pid: int, method: str, path: str, **kwargs: Any) -> tuple[int, httpx.Response]:
        """One request on the connection to worker ``pid``; who answered it (another worker
        only if the idle connection was closed and httpx opened a new one)."""
        response = self.clients[pid].request(method, path, **kwargs)
        return self.service.worker_of(response), response

    def ask(self, pid: int, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A read-only request answered by worker ``pid`` (resent on a new connection to it
        when the idle one was closed)."""
        for _ in range(3):
            answered, response = self.send(pid, method, path, **kwargs)
            if answered == pid:
                return response
            self.reconnect()
        raise AssertionError(f"could not reach worker {pid}")

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        self.clients = {}


# -- the service and its keys ------------------------------------------------------------------


@dataclass
class Setup:
    index: Path
    keys_db: Path
    usage_db: Path
    keys: dict[str, str]  # name -> raw key
    key_ids: dict[str, str]  # name -> key id
    logs: Path
    services: list[Service] = field(default_factory=list)

    def start(self, flush_seconds: float) -> Service:
        env = {
            "WIKIRAG_USAGE_FLUSH_SECONDS": str(flush_seconds),
            "WIKIRAG_UPDATE_POLL_SECONDS": str(UPDATE_POLL_SECONDS),
            "WIKIRAG_PROGRESS": "false",
        }
        args = [
            "--workers",
            "2",
            "--keys-db",
            str(self.keys_db),
            "--rate-limit-per-minute",
            "0",
            "--reload-poll-seconds",
            str(RELOAD_POLL_SECONDS),
        ]
        log = self.logs / f"serve-{len(self.services)}.log"
        proc, url = start_server(
            self.index, log, env, args, open_access=False, new_session=True, ready_timeout=300
        )
        service = Service(proc, url, log)
        self.services.append(service)
        return service


def _create_key(keys_db: Path, name: str, *, admin: bool = False) -> dict[str, Any]:
    """``wikirag keys create --json``: the record and the key, printed once."""
    out = io.StringIO()
    args = ["keys", "--keys-db", str(keys_db), "create", "--name", name, "--json"]
    with contextlib.redirect_stdout(out):
        assert cli_main([*args, *(["--admin"] if admin else [])]) == 0
    text = out.getvalue()
    created: dict[str, Any] = json.loads(text[text.index("{") :])
    return created


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("workers")
    index = copy_index(shared_index(tmp_path_factory), root / "index")
    keys_db = root / "keys.sqlite"
    created = {
        name: _create_key(keys_db, name, admin=name == "ops")
        for name in ("ops", "engine", "crash", "shutdown")
    }
    state = Setup(
        index=index,
        keys_db=keys_db,
        usage_db=root / "usage.sqlite",  # next to the keys database
        keys={name: str(c["key"]) for name, c in created.items()},
        key_ids={name: str(c["key_id"]) for name, c in created.items()},
        logs=root,
    )
    try:
        yield state
    finally:
        for service in state.services:
            if service.proc.poll() is None:
                service.stop()


@pytest.fixture(scope="module")
def service(setup: Setup) -> Service:
    """The first service (flush every FLUSH_SECONDS); the crash test kills it last."""
    return setup.start(FLUSH_SECONDS)


def _alive(service: Service) -> Service:
    assert service.proc.poll() is None, "the service was stopped by an earlier test"
    return service


def _usage(workers: Workers, pid: int, key_id: str, group_by: str = "day") -> dict[str, Any]:
    response = workers.ask(pid, "GET", "/v1/usage", params={"key_id": key_id, "group_by": group_by})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- (a) reload ----------------------------------------------------------------------------------


def test_a_published_generation_is_served_by_both_workers_and_the_old_one_by_none(
    setup: Setup, service: Service
) -> None:
    workers = Workers(_alive(service), setup.keys["ops"])
    layout = IndexLayout(setup.index)
    old = layout.current().generation
    before = {pid: workers.ask(pid, "GET", "/v1/index").json() for pid in workers.pids}
    assert {b["generation"] for b in before.values()} == {old}
    # two processes, each with the generation opened by itself
    assert len({b["loaded_at"] for b in before.values()}) == 2

    report = rebuild_index(setup.index, options=OPTIONS, embedder=shared_embedder())
    published = time.monotonic()
    new = layout.current().generation
    assert report.generation == new != old
    assert report.embedding.misses == 0  # the embedding cache answered every text

    switched: dict[int, float] = {}
    while len(switched) < len(workers.pids):
        waited = time.monotonic() - published
        still = sorted(set(workers.pids) - set(switched))
        assert waited < SWITCH_DEADLINE, f"workers {still} still serve {old} after {waited:.1f}s"
        for pid in still:
            during = workers.ask(pid, "GET", "/v1/index")
            assert during.status_code == 200, during.text  # no request dropped by the switch
            generation = during.json()["generation"]
            assert generation in (old, new)
            if generation == new:
                switched[pid] = waited
        time.sleep(0.05)

    for pid in workers.pids:
        for _ in range(3):
            index = workers.ask(pid, "GET", "/v1/index").json()
            assert index["generation"] == new and index["loaded_at"] > before[pid]["loaded_at"]
            found = workers.ask(
                pid, "POST", "/v1/search", json={"query": "Einstein", "k": 3, "mode": "lexical"}
            )
            assert found.status_code == 200 and found.json()["generation"] == new
            passage = workers.ask(pid, "GET", f"/v1/passages/{OLD_PASSAGE}")
            assert passage.status_code == 200 and passage.json()["generation"] == new
        metrics = workers.ask(pid, "GET", "/metrics").text
        assert f'wikirag_index_info{{generation="{new}"' in metrics
        assert f'generation="{old}"' not in metrics
    # and over fresh connections, whichever worker takes them
    answered: Counter[int] = Counter()
    for _ in range(10):
        with httpx.Client(base_url=service.url, headers=workers.headers) as client:
            response = client.get("/v1/index")
            answered[service.worker_of(response)] += 1
            assert response.json()["generation"] == new
    workers.close()
    assert max(switched.values()) < SWITCH_DEADLINE
    print(f"switched after {switched} s; fresh connections answered by {dict(answered)}")


# -- (b) incremental updates ---------------------------------------------------------------------


def _new_revision_event(directory: Path) -> Path:
    """The simplewiki "Albert Einstein" article as a later revision (id, date, CC BY-SA 4.0
    as a 2026 revision states it) with one sentence added to its lead."""
    with tarfile.open(SIMPLE) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith(".ndjson"))
        handle = archive.extractfile(member)
        assert handle is not None
        article = json.loads(handle.readline())
    assert article["identifier"] == SIMPLE_PAGE
    assert article["version"]["identifier"] == CURRENT_REVISION
    lead = "was a German-born American scientist."
    wikitext = article["article_body"]["wikitext"]
    assert wikitext.count(lead) == 1
    article["article_body"]["wikitext"] = wikitext.replace(
        lead, f"{lead} He also described the {NEW_TOKEN} effect."
    )
    article["version"]["identifier"] = NEW_REVISION
    article["date_modified"] = "2026-11-30T12:00:00Z"
    article["license"] = [
        {
            "name": "Creative Commons Attribution Share Alike 4.0 International",
            "identifier": "CC-BY-SA-4.0",
            "url": "https://creativecommons.org/licenses/by-sa/4.0/",
        }
    ]
    article["event"] = {"type": "update"}
    path = directory / "simplewiki-einstein-2026.ndjson.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write(json.dumps(article) + "\n")
    return path


def test_b_an_update_applied_while_both_workers_serve_is_visible_through_both(
    setup: Setup, service: Service
) -> None:
    workers = Workers(_alive(service), setup.keys["ops"])
    lexical = {"query": NEW_TOKEN, "k": 5, "mode": "lexical", "wikis": [SIMPLE_WIKI]}
    for pid in workers.pids:
        missing = workers.ask(pid, "GET", f"/v1/citations/{SIMPLE_WIKI}/revisions/{NEW_REVISION}")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "revision-not-indexed"
        found = workers.ask(pid, "POST", "/v1/search", json=lexical).json()["results"]
        assert not [r for r in found if NEW_TOKEN in r["text"]]
    workers.close()  # idle through the update: the connections would time out

    events = _new_revision_event(setup.logs)
    env = {**os.environ, "WIKIRAG_PROGRESS": "false", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "update",
            "--index",
            str(setup.index),
            "--json",
            str(events),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["events"] == {"update": 1}
    assert summary["pages_updated"] == 1 and summary["pages_reindexed"] == 1
    assert summary["embedding"]["misses"] == 1  # only the passage with the new sentence
    applied = time.monotonic()

    workers.reconnect()
    citation_path = f"/v1/citations/{SIMPLE_WIKI}/revisions/{NEW_REVISION}"
    visible: dict[int, float] = {}
    while len(visible) < len(workers.pids):
        waited = time.monotonic() - applied
        still = sorted(set(workers.pids) - set(visible))
        assert waited < SWITCH_DEADLINE, f"workers {still} do not serve the update ({waited:.1f}s)"
        for pid in still:
            if workers.ask(pid, "GET", citation_path).status_code == 200:
                visible[pid] = waited
        time.sleep(0.05)

    for pid in workers.pids:
        citation = workers.ask(pid, "GET", citation_path).json()
        assert citation["is_current"] is True and citation["revision_id"] == NEW_REVISION
        assert citation["revision_timestamp"] == "2026-11-30T12:00:00Z"
        assert citation["license"]["identifier"] == "CC-BY-SA-4.0"

        results = workers.ask(pid, "POST", "/v1/search", json=lexical).json()["results"]
        assert results and NEW_TOKEN in results[0]["text"]
        top = results[0]
        assert top["revision_id"] == NEW_REVISION and top["page_id"] == SIMPLE_PAGE
        assert top["passage_id"].startswith(f"{SIMPLE_WIKI}:{NEW_REVISION}:")
        assert top["attribution"]["license"]["identifier"] == "CC-BY-SA-4.0"
        assert f"oldid={NEW_REVISION}" in top["url"]

        passage = workers.ask(pid, "GET", f"/v1/passages/{top['passage_id']}").json()
        assert passage["is_current"] is True and passage["text"] == top["text"]

        hybrid = {"query": "Albert Einstein theory of relativity", "k": 10, "wikis": [SIMPLE_WIKI]}
        hits = workers.ask(pid, "POST", "/v1/search", json=hybrid).json()["results"]
        revisions = {r["revision_id"] for r in hits}
        assert revisions == {NEW_REVISION}  # the superseded revision is out of search

        old = workers.ask(pid, "GET", f"/v1/passages/{OLD_PASSAGE}").json()
        assert old["is_current"] is False and old["current_revision_id"] == NEW_REVISION
        assert old["superseded_by"]["revision_id"] == NEW_REVISION
        assert old["attribution"]["license"]["identifier"] == "CC-BY-SA-3.0"
    workers.close()
    print(f"update visible after {visible} s")


# -- (c) metering across two workers -------------------------------------------------------------


@dataclass
class Traffic:
    """What the client was served, to compare with what the meter counted."""

    requests: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    by_worker: Counter[int] = field(default_factory=Counter)
    passages: int = 0
    chars: int = 0
    articles: Counter[tuple[str, int, str]] = field(default_factory=Counter)

    def served(self, route: str, pid: int, items: list[dict[str, Any]]) -> None:
        self.requests += 1
        self.by_route[route] += 1
        self.by_worker[pid] += 1
        for item in items:
            self.passages += 1
            self.chars += len(item["text"])
            self.articles[(item["wiki"], item["page_id"], "passages")] += 1
            self.articles[(item["wiki"], item["page_id"], "chars")] += len(item["text"])

    def by_article(self) -> dict[tuple[str, int], tuple[int, int]]:
        pages = {(w, p) for w, p, _ in self.articles}
        return {
            (w, p): (self.articles[(w, p, "passages")], self.articles[(w, p, "chars")])
            for w, p in pages
        }


QUERIES = ("Einstein", "relativity", "university", "Эйнштейн")
SEARCH_ROUTE, PASSAGE_ROUTE = "/v1/search", "/v1/passages/{passage_id}"


def _traffic(workers: Workers, passage_ids: list[str], n: int, traffic: Traffic) -> None:
    """``n`` metered requests, alternating workers and routes (lexical search, k=3, and
    passage lookups)."""
    pids = workers.pids
    for i in range(n):
        pid = pids[i % len(pids)]
        if (i // len(pids)) % 2 == 0:
            body = {"query": QUERIES[i % len(QUERIES)], "k": 3, "mode": "lexical"}
            answered, response = workers.send(pid, "POST", "/v1/search", json=body)
            assert response.status_code == 200, response.text
            traffic.served(SEARCH_ROUTE, answered, response.json()["results"])
        else:
            path = f"/v1/passages/{passage_ids[i % len(passage_ids)]}"
            answered, response = workers.send(pid, "GET", path)
            assert response.status_code == 200, response.text
            traffic.served(PASSAGE_ROUTE, answered, [response.json()])


def _passage_ids(workers: Workers) -> list[str]:
    pid = workers.pids[0]
    ids = []
    for query in QUERIES:
        body = {"query": query, "k": 2, "mode": "lexical"}
        ids += [
            r["passage_id"]
            for r in workers.ask(pid, "POST", "/v1/search", json=body).json()["results"]
        ]
    return sorted(set(ids))


def _assert_counted(workers: Workers, key_id: str, traffic: Traffic) -> None:
    """Every worker's /v1/usage shows exactly ``traffic`` once the flush interval passed (the
    answering worker flushes first; the other one's counts come from its flusher)."""
    deadline = time.monotonic() + 2 * FLUSH_SECONDS + 10
    while True:
        totals = _usage(workers, workers.pids[0], key_id)["totals"]
        assert totals["requests"] <= traffic.requests, totals  # never more than was sent
        if totals["requests"] == traffic.requests or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for pid in workers.pids:
        usage = _usage(workers, pid, key_id)
        totals = usage["totals"]
        assert totals["requests"] == traffic.requests
        assert totals["requests_by_route"] == dict(traffic.by_route)
        assert totals["passages"] == traffic.passages and totals["chars"] == traffic.chars
        assert totals["citations"] == 0 and totals["attributions"] == 0
        today = dt.datetime.now(dt.UTC).date().isoformat()
        assert [(r["day"], r["requests"], r["passages"]) for r in usage["rows"]] == [
            (today, traffic.requests, traffic.passages)
        ]
        articles = _usage(workers, pid, key_id, "article")["rows"]
        assert {(r["wiki"], r["page_id"]): (r["passages"], r["chars"]) for r in articles} == (
            traffic.by_article()
        )


def test_c_usage_served_by_both_workers_is_counted_exactly(setup: Setup, service: Service) -> None:
    admin = Workers(_alive(service), setup.keys["ops"])
    engine = Workers(service, setup.keys["engine"])
    passage_ids = _passage_ids(admin)
    assert len(passage_ids) >= 4
    traffic = Traffic()
    for _ in range(2):  # a second round: flushes add to what is stored
        _traffic(engine, passage_ids, 40, traffic)
        assert sorted(traffic.by_worker) == engine.pids
        assert min(traffic.by_worker.values()) >= 10  # both workers served a share
        _assert_counted(admin, setup.key_ids["engine"], traffic)
    assert traffic.by_route[SEARCH_ROUTE] > 0 and traffic.by_route[PASSAGE_ROUTE] > 0
    assert len(traffic.by_article()) >= 2
    admin.close()
    engine.close()
    print(
        f"counted {traffic.requests} requests, {traffic.passages} passages, "
        f"{traffic.chars} chars; per worker {dict(traffic.by_worker)}"
    )


# -- (d) a crash, then a graceful shutdown ------------------------------------------------------


@dataclass
class Crash:
    answered: list[float]  # when each response came back (time.time())
    unanswered: int  # requests in flight when the service died
    killed_at: float
    text_chars: int  # characters of the passage every request fetched
    restarted: Service


def _hammer(
    service: Service,
    key: str,
    pid: int,
    path: str,
    stop: threading.Event,
    answered: list[float],
    unanswered: list[int],
) -> None:
    """Send ``path`` to worker ``pid`` as fast as it answers until the service dies."""
    workers = Workers(service, key, workers=2)
    client = workers.clients[pid]
    for other in set(workers.pids) - {pid}:
        workers.clients.pop(other).close()
    try:
        while True:
            try:
                response = client.get(path)
            except httpx.TransportError:
                unanswered.append(1)
                return
            if response.status_code != 200:
                raise AssertionError(response.text)
            answered.append(time.time())
            if stop.is_set():
                return
    finally:
        client.close()


@pytest.fixture(scope="module")
def crash(setup: Setup, service: Service) -> Crash:
    """Traffic from the "crash" key through both workers; SIGKILL of the whole process group
    mid-traffic; a new service on the same keys and usage databases (flushing only when it
    stops: see test_e)."""
    _alive(service)
    admin = Workers(service, setup.keys["ops"])
    passage = admin.ask(admin.pids[0], "GET", f"/v1/passages/{OLD_PASSAGE}").json()
    pids = admin.pids
    admin.close()
    answered: list[float] = []
    unanswered: list[int] = []
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_hammer,
            args=(
                service,
                setup.keys["crash"],
                pid,
                f"/v1/passages/{OLD_PASSAGE}",
                stop,
                answered,
                unanswered,
            ),
        )
        for pid in pids
    ]
    for thread in threads:
        thread.start()
    time.sleep(3.0)  # three flush intervals of traffic
    killed_at = time.time()
    os.killpg(service.proc.pid, signal.SIGKILL)
    service.proc.wait()
    for thread in threads:
        thread.join(timeout=60)
    stop.set()
    for pid in pids:  # the workers died too
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
            assert time.monotonic() < deadline, f"worker {pid} survived SIGKILL"
            time.sleep(0.05)
    restarted = setup.start(3600.0)
    return Crash(answered, len(unanswered), killed_at, len(passage["text"]), restarted)


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat[stat.rindex(")") + 2 :].split()[0]


def test_d_a_crash_loses_at_most_the_last_flush_interval_and_counts_nothing_twice(
    setup: Setup, crash: Crash
) -> None:
    workers = Workers(crash.restarted, setup.keys["ops"])
    usage = _usage(workers, workers.pids[0], setup.key_ids["crash"])
    totals = usage["totals"]
    counted = totals["requests"]
    answered = sorted(crash.answered)
    cutoff = crash.killed_at - FLUSH_SECONDS - CRASH_MARGIN_SECONDS
    must = sum(1 for t in answered if t <= cutoff)  # answered long enough before the kill
    assert must >= 20, f"too little traffic before {cutoff}: {len(answered)} answered"
    assert answered[-1] <= crash.killed_at + 1.0  # nothing answered after the kill
    # nothing counted twice: at most what was answered plus what was in flight
    assert counted <= len(answered) + crash.unanswered
    # a crash loses at most the last flush interval
    assert counted >= must, (
        f"{counted} counted, but {must} requests were answered more than "
        f"{FLUSH_SECONDS + CRASH_MARGIN_SECONDS}s before the kill"
    )
    assert totals["requests_by_route"] == {PASSAGE_ROUTE: counted}
    # A request is counted when admitted and its passage when served: a flush that falls
    # between the two, followed by the kill, keeps the request and loses the passage, at
    # most one per hammering connection. Each request served exactly one passage.
    hammers = len(workers.pids)
    assert must <= totals["passages"] <= counted
    assert totals["passages"] >= counted - hammers, (totals["passages"], counted, hammers)
    assert totals["chars"] == totals["passages"] * crash.text_chars
    assert _usage(workers, workers.pids[1], setup.key_ids["crash"])["totals"] == totals
    workers.close()
    lost = len(answered) - counted
    window = crash.killed_at - answered[max(0, counted - 1)] if counted else float("inf")
    print(
        f"answered {len(answered)} (+{crash.unanswered} in flight), counted {counted}, "
        f"lost {lost} (about the last {window:.2f}s before the kill)"
    )


def test_e_a_graceful_shutdown_of_both_workers_loses_nothing(setup: Setup, crash: Crash) -> None:
    service = _alive(crash.restarted)  # flushes every hour: only the shutdown writes
    admin = Workers(service, setup.keys["ops"])
    client = Workers(service, setup.keys["shutdown"])
    traffic = Traffic()
    _traffic(client, _passage_ids(admin), 24, traffic)
    assert sorted(traffic.by_worker) == client.pids and min(traffic.by_worker.values()) >= 6
    client.close()
    # each process keeps its counts: a worker's /v1/usage flushes its own, not the other's
    first = admin.pids[0]
    seen = _usage(admin, first, setup.key_ids["shutdown"])["totals"]["requests"]
    assert seen == traffic.by_worker[first]
    admin.close()

    assert service.stop(signal.SIGTERM) == 0
    log = service.log.read_text()
    assert log.count("wikirag service stopped") == 2, log[-3000:]
    today = dt.datetime.now(dt.UTC).date()
    key_id = setup.key_ids["shutdown"]
    (row,) = usage_rows(setup.usage_db, "key", today, today, key_id=key_id)
    assert row.requests == traffic.requests and row.passages == traffic.passages
    assert row.chars == traffic.chars
    assert requests_by_route(setup.usage_db, today, today, key_id=key_id) == dict(traffic.by_route)
    articles = usage_rows(setup.usage_db, "article", today, today, key_id=key_id)
    assert {(r.wiki, r.page_id): (r.passages, r.chars) for r in articles} == traffic.by_article()
