"""Sustained mixed load while the index changes under the service (issue 8, "Load").

``N`` minutes (default 10) of mixed traffic against a real ``wikirag serve`` on a loopback
port — 80 % ``POST /v1/search`` (real SQuAD questions, hybrid), 10 % ``GET
/v1/passages/{id}``, 5 % citation lookups (half by revision, half by article URL), 5 %
``POST /v1/attribute`` (the first sentence of a stored passage; for list and infobox passages,
which have no ". ", up to 500 characters of their lines: answers of up to 38 "sentences") —
while incremental updates are applied to the served generation (new revisions of the realtime
sample's article, ``data/samples/wme/enwiki-realtime-sample.ndjson.gz``, through
``indexer.update.apply_updates`` every ``--update-every`` seconds; the service picks them up by
polling ``updates.json``) and one new generation is published partway through (``POST
/v1/admin/rebuild`` at ``--rebuild-at`` of the run, which also replays the applied updates).

The plan (2,000 requests) repeats during a run, so the service runs with its embedding cache
off (``--encode-cache-size 0``): every request pays for its embeddings as a first-time request
does.

The load is **open loop**: a separate generator process (this module with ``--generate``)
schedules requests at a fixed rate over ``--connections`` keep-alive connections and counts
each latency from the moment the request was due (no coordinated omission). A short
calibration first (``--calibrate``, the default when ``--rate`` is not given) runs
``--step-seconds`` steps at rising rates (then two bisection steps) and keeps the highest rate
whose p99 is ≤ 200 ms with no errors and ≥ 95 % of the target rate achieved; the long run uses
``--headroom`` × that rate, because the updates and the rebuild run on the same cores.

Reported: requests served, errors (transport errors and non-2xx, except 404/410 on lookups of
content that updates removed, counted apart), p50/p99 overall and per request kind, RSS and
open file descriptors (``/proc/PID/fd``) of the server process tree at the start and the end
of the long run (target: RSS growth ≤ 10 %), updates applied and the rebuild's timing, and a
timeline (per second: requests, p99, max, requests over 200 ms) that shows where a tail came
from.

The index (default ``var/samples/index``, built with the ``make run`` sources when missing)
is copied to a temporary directory first: updates and the rebuild never touch it.

    .venv/bin/python -m benchmarks.load_bench                       # calibrate, 10 minutes
    .venv/bin/python -m benchmarks.load_bench --rate 40 --minutes 10
    .venv/bin/python -m benchmarks.load_bench --minutes 0.5 --rate 5 --no-write   # smoke test
    .venv/bin/python -m benchmarks.load_bench --markdown-only       # table from the JSON
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from benchmarks._common import (
    RESULTS_DIR,
    ROOT,
    SAMPLES,
    LoadSampler,
    machine_info,
    machine_line,
    md_table,
    percentile,
    update_results_md,
    write_result,
)
from benchmarks.openloop import read_status

NAME = "load_bench"
SECTION = "load"
QUESTIONS = SAMPLES / "squad" / "squad-dev-questions.jsonl"
REALTIME = SAMPLES / "wme" / "enwiki-realtime-sample.ndjson.gz"
DEFAULT_INDEX = ROOT / "var" / "samples" / "index"
MIX = {"search": 80, "passage": 10, "citation": 5, "attribute": 5}
P99_TARGET_MS = 200.0
# Lookups of content that an update deleted or hid answer these on purpose.
INTENDED = {"passage": (404, 410), "citation": (404, 410)}
PLAN_SIZE = 2000


# -- the request plan ---------------------------------------------------------------------------


def _make_run_sources() -> list[Path]:
    """The sources ``make run`` indexes (Makefile, target ``run``)."""
    return [
        SAMPLES / "enwiki-sample-pages-articles.xml.bz2",
        SAMPLES / "enwiki-table-markup.xml.bz2",
        *sorted((SAMPLES / "wme").glob("*.tar.gz")),
        REALTIME,
    ]


def ensure_index(index: Path) -> None:
    """Build the sample index with the ``make run`` command when it is missing."""
    if (index / "current").is_symlink():
        return
    print(f"{index} has no published index; building it (make run's build)…", flush=True)
    cmd = [
        sys.executable,
        "-m",
        "app.cli",
        "build",
        "--no-progress",
        "--index",
        str(index),
        "--wiki",
        "enwiki",
        *map(str, _make_run_sources()),
    ]
    subprocess.run(cmd, cwd=ROOT, check=True)


def plan(index: Path, seed: int = 8) -> list[dict[str, Any]]:
    """``PLAN_SIZE`` requests in the ``MIX`` proportions, shuffled (seeded); the generator
    cycles through them. Ids and sentences are sampled from the index's store."""
    rng = random.Random(seed)
    store = (index / "current").resolve() / "store.sqlite"
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT p.passage_id, p.wiki, p.revision_id, p.text, r.title, w.base_url "
            "FROM passages p JOIN revisions r ON r.wiki = p.wiki AND r.revision_id = "
            "p.revision_id JOIN wikis w ON w.wiki = p.wiki ORDER BY p.rowid"
        ).fetchall()
    finally:
        conn.close()
    if not rows:
        raise RuntimeError(f"{store} holds no passages")
    with QUESTIONS.open(encoding="utf-8") as handle:
        questions = [json.loads(line)["question"] for line in handle]
    requests: list[dict[str, Any]] = []
    for kind, share in MIX.items():
        for _ in range(PLAN_SIZE * share // 100):
            passage_id, wiki, revision, text, title, base_url = rng.choice(rows)
            if kind == "search":
                body = {"query": rng.choice(questions), "k": 10, "mode": "hybrid"}
                requests.append(_post(kind, "/v1/search", body))
            elif kind == "passage":
                requests.append(_get(kind, f"/v1/passages/{passage_id}"))
            elif kind == "citation" and rng.random() < 0.5:
                requests.append(_get(kind, f"/v1/citations/{wiki}/revisions/{revision}"))
            elif kind == "citation":
                url = f"{base_url.rstrip('/')}/wiki/{title.replace(' ', '_')}"
                requests.append(_get(kind, f"/v1/citations?url={quote(url, safe='')}"))
            else:
                sentence = next((s for s in text.split(". ") if len(s) > 40), text[:300])
                requests.append(_post(kind, "/v1/attribute", {"answer": sentence[:500] + "."}))
    rng.shuffle(requests)
    return requests


def _get(kind: str, path: str) -> dict[str, Any]:
    return {"kind": kind, "method": "GET", "path": path, "body": None}


def _post(kind: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "method": "POST", "path": path, "body": body}


# -- the open-loop generator (a separate process) ------------------------------------------------


@dataclass
class Tally:
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    # by second of the run (of each request's due time): latencies of every kind
    timeline: dict[int, list[float]] = field(default_factory=dict)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    transport_errors: int = 0
    sent: int = 0


def _request_bytes(host: str, request: dict[str, Any]) -> bytes:
    body = b"" if request["body"] is None else json.dumps(request["body"]).encode()
    lines = [f"{request['method']} {request['path']} HTTP/1.1", f"Host: {host}"]
    if request["method"] == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _exchange(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
    address: tuple[str, int],
    payload: bytes,
) -> tuple[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """Send one request and read its status; a kept-alive connection that the server closed
    meanwhile (uvicorn closes idle ones after 5 s) is reopened once and the request resent."""
    for attempt in (0, 1):
        fresh = connection is None
        if connection is None:
            connection = await asyncio.open_connection(*address)
        reader, writer = connection
        try:
            writer.write(payload)
            await writer.drain()
            return await asyncio.wait_for(read_status(reader), timeout=30), connection
        except (OSError, asyncio.IncompleteReadError, ValueError):
            writer.close()
            connection = None
            if fresh or attempt:
                raise
    raise AssertionError("unreachable")


async def _worker(
    address: tuple[str, int],
    queue: asyncio.Queue[tuple[float, str, bytes] | None],
    tally: Tally,
    start: float,
) -> None:
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while (item := await queue.get()) is not None:
        due, kind, payload = item
        try:
            status, connection = await _exchange(connection, address, payload)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            tally.transport_errors += 1
            if connection is not None:
                connection[1].close()
            connection = None
            continue
        latency = (time.perf_counter() - due) * 1000
        tally.latencies_ms.setdefault(kind, []).append(latency)
        tally.timeline.setdefault(int(due - start), []).append(latency)
        counts = tally.statuses.setdefault(kind, {})
        counts[status] = counts.get(status, 0) + 1
    if connection is not None:
        connection[1].close()


async def generate(
    url: str,
    requests: list[dict[str, Any]],
    *,
    rate: float,
    seconds: float,
    connections: int,
    offset: int = 0,
) -> dict[str, Any]:
    """Schedule ``rate × seconds`` requests, one every ``1/rate`` s, cycling ``requests``
    from index ``offset``."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    payloads = [(r["kind"], _request_bytes(parts.netloc, r)) for r in requests]
    queue: asyncio.Queue[tuple[float, str, bytes] | None] = asyncio.Queue()
    tally = Tally()
    start = time.perf_counter() + 0.05
    workers = [
        asyncio.create_task(_worker(address, queue, tally, start)) for _ in range(connections)
    ]
    for i in range(int(rate * seconds)):
        due = start + i / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        kind, payload = payloads[(offset + i) % len(payloads)]
        queue.put_nowait((due, kind, payload))
        tally.sent += 1
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return summarise(tally, time.perf_counter() - start, rate)


def summarise(tally: Tally, elapsed: float, rate: float) -> dict[str, Any]:
    every = [ms for values in tally.latencies_ms.values() for ms in values]
    kinds: dict[str, Any] = {}
    errors = tally.transport_errors
    intended = 0
    for kind, counts in tally.statuses.items():
        ok = sum(n for status, n in counts.items() if 200 <= status < 300)
        meant = sum(n for status, n in counts.items() if status in INTENDED.get(kind, ()))
        bad = sum(counts.values()) - ok - meant
        errors += bad
        intended += meant
        values = tally.latencies_ms.get(kind, [])
        kinds[kind] = {
            "requests": len(values),
            "errors": bad,
            "intended_4xx": meant,
            "statuses": {str(k): v for k, v in sorted(counts.items())},
            "p50_ms": round(percentile(values, 50), 2),
            "p99_ms": round(percentile(values, 99), 2),
        }
    return {
        "target_rate": rate,
        "seconds": round(elapsed, 1),
        "sent": tally.sent,
        "completed": len(every),
        "achieved_rate": round(len(every) / elapsed, 2) if elapsed > 0 else 0.0,
        "errors": errors,
        "transport_errors": tally.transport_errors,
        "intended_4xx": intended,
        "p50_ms": round(percentile(every, 50), 2),
        "p99_ms": round(percentile(every, 99), 2),
        "max_ms": round(max(every), 2) if every else float("nan"),
        "kinds": kinds,
        "timeline": [
            {
                "s": second,
                "requests": len(values),
                "p99_ms": round(percentile(values, 99), 1),
                "max_ms": round(max(values), 1),
                "over_target": sum(1 for v in values if v > P99_TARGET_MS),
            }
            for second, values in sorted(tally.timeline.items())
        ],
    }


def run_generator(
    url: str, plan_file: Path, rate: float, seconds: float, connections: int, offset: int = 0
) -> dict[str, Any]:
    """Run the generator as a separate process (its CPU is not the bench's), starting at
    request ``offset`` of the plan."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.load_bench",
        "--generate",
        str(plan_file),
        "--url",
        url,
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        "--connections",
        str(connections),
        "--offset",
        str(offset),
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def passes(step: dict[str, Any]) -> bool:
    return bool(
        step["errors"] == 0
        and step["p99_ms"] <= P99_TARGET_MS
        and step["achieved_rate"] >= 0.95 * step["target_rate"]
    )


def calibrate(
    url: str, plan_file: Path, start: float, step_seconds: float, connections: int, steps: int
) -> tuple[float, list[dict[str, Any]], int]:
    """Rising rates (×1.5 per step) until one fails — or, when the first fails, falling rates
    (÷2) until one passes — then two bisection steps between the best passing and the first
    failing rate; returns the highest passing rate (the lowest tried if none), the steps, and
    where in the plan they stopped. Each step goes on through the plan where the last one
    stopped, so that short steps do not all replay its first requests."""
    history: list[dict[str, Any]] = []
    offset = 0

    def step(rate: float) -> bool:
        nonlocal offset
        result = run_generator(url, plan_file, rate, step_seconds, connections, offset)
        offset += result["sent"]
        history.append(result)
        ok = passes(result)
        print(
            f"calibration {rate:g}/s: p99 {result['p99_ms']} ms, achieved "
            f"{result['achieved_rate']}/s, errors {result['errors']} → {'ok' if ok else 'no'}",
            flush=True,
        )
        return ok

    rate, best, failed = start, 0.0, 0.0
    factor = 1.5 if step(rate) else 0.5
    if factor > 1:
        best = rate
    else:
        failed = rate
    for _ in range(steps - 1):
        if (factor > 1 and failed) or (factor < 1 and best):
            break
        rate = round(rate * factor, 2)
        if step(rate):
            best = max(best, rate)
        else:
            failed = rate
    for _ in range(2):  # refine between the best passing and the first failing rate
        if not (best and failed) or len(history) >= steps + 2:
            break
        rate = round((best + failed) / 2, 2)
        if step(rate):
            best = rate
        else:
            failed = rate
    return (best or min(s["target_rate"] for s in history)), history, offset


# -- the server and what it holds ------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn workers)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo += [int(c) for c in task.read_text().split()]
    return pids


def resources(pid: int) -> dict[str, float]:
    """RSS (MB) and open file descriptors of the process tree of ``pid``."""
    rss_kb = fds = 0
    for member in _tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss_kb += int(line.split()[1])
            fds += len(os.listdir(f"/proc/{member}/fd"))
        except OSError:
            continue
    return {"rss_mb": round(rss_kb * 1024 / 1e6, 1), "fds": fds}


def _http(url: str, method: str = "GET", timeout: float = 10) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_ready(url: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, body = _http(url + "/readyz", timeout=5)
            if status == 200:
                return str(body["generation"])
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"service at {url} did not become ready in {timeout:.0f} s")


# -- changes during the run ----------------------------------------------------------------------


def _current_revision(index: Path, article: dict[str, Any]) -> int:
    """The served revision of ``article``'s page (0 when the page is not indexed)."""
    store = (index / "current").resolve() / "store.sqlite"
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT current_revision_id FROM pages WHERE wiki = ? AND page_id = ?",
            (article["is_part_of"]["identifier"], article["identifier"]),
        ).fetchone()
    finally:
        conn.close()
    return int(row[0] or 0) if row else 0


class Changer(threading.Thread):
    """Applies an update every ``every`` seconds and asks for one rebuild at ``rebuild_at``
    (seconds after the start), until stopped."""

    def __init__(self, url: str, index: Path, workdir: Path, every: float, rebuild_at: float):
        super().__init__(daemon=True)
        self.url, self.index, self.workdir = url, index, workdir
        self.every, self.rebuild_at = every, rebuild_at
        self.stop = threading.Event()
        self.updates: list[dict[str, Any]] = []
        self.deferred = 0
        self.rebuild: dict[str, Any] = {}
        self.failures: list[str] = []
        with gzip.open(REALTIME, "rt", encoding="utf-8") as handle:
            self.article: dict[str, Any] = json.loads(handle.readline())
        self.base_revision = max(
            int(self.article["version"]["identifier"]), _current_revision(index, self.article)
        )

    def _event_file(self, n: int) -> Path:
        """The realtime sample's article as its ``n``-th newer revision (a one-line edit)."""
        article = json.loads(json.dumps(self.article))
        article["version"]["identifier"] = self.base_revision + n  # newer than the served one
        article["article_body"]["wikitext"] += f"\n\nLoad benchmark edit number {n}.\n"
        article["article_body"].pop("html", None)
        path = self.workdir / f"update-{n:04d}.ndjson"
        path.write_text(json.dumps({**article, "event": {"type": "update"}}) + "\n", "utf-8")
        return path

    def prepare(self) -> None:
        """Load the model and apply the realtime sample's article once as a newer revision
        (most of its passages are new: seconds of embedding), before the measured run, so
        that the updates during the run are typical one-line edits."""
        from app.retrieval.retriever import published_model
        from indexer.embedding import open_embedder
        from indexer.ingest import IngestOptions
        from indexer.update import UpdateOptions, apply_updates

        # the index's own model (an e5 index refuses MiniLM vectors)
        self.embedder = open_embedder(published_model(self.index), threads=1)
        self.options = UpdateOptions(ingest=IngestOptions(progress=False), batch=1)
        t0 = time.perf_counter()
        report = apply_updates(
            self.index, [str(self._event_file(1))], self.options, embedder=self.embedder
        )
        self.first_update = {
            "seconds": round(time.perf_counter() - t0, 2),
            "passages_indexed": report.passages_indexed,
            "embedded": report.embedding.misses,
        }

    def run(self) -> None:
        from indexer.generation import IndexBusy
        from indexer.update import apply_updates

        embedder, options = self.embedder, self.options
        started = time.monotonic()
        n = 1  # prepare() applied the first
        next_update = started
        while not self.stop.wait(0.5):
            now = time.monotonic()
            if not self.rebuild and now - started >= self.rebuild_at:
                self._start_rebuild(now - started)
            if self.rebuild.get("job_id") and "finished_s" not in self.rebuild:
                self._poll_rebuild(started)
                continue  # no update while the rebuild holds the index
            if now < next_update:
                continue
            next_update = now + self.every
            n += 1
            source = self._event_file(n)
            t0 = time.perf_counter()
            try:
                report = apply_updates(self.index, [str(source)], options, embedder=embedder)
            except IndexBusy:
                self.deferred += 1
                continue
            except Exception as exc:  # recorded, the run goes on
                self.failures.append(f"update {n}: {type(exc).__name__}: {exc}")
                continue
            self.updates.append(
                {
                    "at_s": round(now - started, 1),
                    "seconds": round(time.perf_counter() - t0, 2),
                    "passages_indexed": report.passages_indexed,
                    "embedded": report.embedding.misses,
                }
            )

    def _start_rebuild(self, at: float) -> None:
        status, body = _http(self.url + "/v1/admin/rebuild", "POST", timeout=30)
        if status == 202:
            self.rebuild = {"job_id": body["job_id"], "requested_s": round(at, 1)}
        else:
            self.failures.append(f"rebuild request answered {status}: {body}")
            self.rebuild = {"refused": status}

    def _poll_rebuild(self, started: float) -> None:
        status, body = _http(f"{self.url}/v1/admin/jobs/{self.rebuild['job_id']}")
        if status == 200 and body.get("state") in ("succeeded", "failed"):
            self.rebuild.update(
                state=body["state"],
                finished_s=round(time.monotonic() - started, 1),
                error=body.get("error"),
                served_generation=(body.get("result") or {}).get("served_generation"),
            )


# -- the benchmark ---------------------------------------------------------------------------


def _start_server(
    index: Path, port: int, workers: int, log: Path, encode_cache_size: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "WIKIRAG_ENCODE_CACHE_SIZE": str(encode_cache_size),
        # as `make run`'s build: the table-markup export has no <siteinfo>, and the admin
        # rebuild reads the sources again with the service's settings
        "WIKIRAG_WIKI": "enwiki",
        "WIKIRAG_RATE_LIMIT_PER_MINUTE": "0",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--index",
                str(index),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--open-access",
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(args: argparse.Namespace) -> dict[str, Any]:
    ensure_index(args.index)
    workdir = Path(tempfile.mkdtemp(prefix="wikirag-load-bench-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        index = workdir / "index"
        shutil.copytree(args.index, index, symlinks=True)
        plan_file = workdir / "plan.json"
        plan_file.write_text(json.dumps(plan(index)), encoding="utf-8")
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server = _start_server(
            index, port, args.workers, workdir / "serve.log", args.encode_cache_size
        )
        first = wait_ready(url, timeout=300)
        # warm-up: every worker and every request kind, indexes paged in, before calibrating
        run_generator(url, plan_file, 8.0, 20, args.connections)
        with LoadSampler() as load:
            history: list[dict[str, Any]] = []
            rate, offset = args.rate, 0
            if rate is None or args.calibrate:
                calibrated, history, offset = calibrate(
                    url,
                    plan_file,
                    args.calibrate_start,
                    args.step_seconds,
                    args.connections,
                    args.steps,
                )
                rate = round(calibrated * args.headroom, 2)
            seconds = args.minutes * 60
            print(f"long run: {rate:g} requests/s for {seconds:g} s…", flush=True)
            changer = Changer(url, index, workdir, args.update_every, seconds * args.rebuild_at)
            changer.prepare()
            time.sleep(5.0)  # the service picks the update up (it polls every 2 s)
            changer.start()
            before = resources(server.pid)
            run = run_generator(url, plan_file, rate, seconds, args.connections, offset)
            after = resources(server.pid)
            changer.stop.set()
            changer.join(timeout=120)
            final = wait_ready(url, timeout=30)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    growth = (after["rss_mb"] - before["rss_mb"]) / before["rss_mb"] * 100
    return {
        "index": str(args.index),
        "mix": MIX,
        "loop": f"open loop, fixed rate over {args.connections} keep-alive connections",
        "workers": args.workers,
        "encode_cache_size": args.encode_cache_size,
        "calibration": history,
        "headroom": args.headroom if history else None,
        "rate": rate,
        "run": run,
        "server": {"start": before, "end": after, "rss_growth_pct": round(growth, 1)},
        "generations": {"first": first, "last": final},
        "updates": {
            "before_run": changer.first_update,
            "applied": len(changer.updates),
            "deferred_busy": changer.deferred,
            "items": changer.updates,
        },
        "rebuild": changer.rebuild,
        "failures": changer.failures,
        "targets": {
            "p99_ms_max": P99_TARGET_MS,
            "errors": 0,
            "rss_growth_pct_max": 10.0,
            "met": run["errors"] == 0 and run["p99_ms"] <= P99_TARGET_MS and growth <= 10.0,
        },
        "minutes": args.minutes,
        "load": load.summary(),
        "machine": machine_info(),
    }


def markdown(data: dict[str, Any]) -> str:
    run, server = data["run"], data["server"]
    rows = [
        [kind, k["requests"], k["errors"], k["intended_4xx"], k["p50_ms"], k["p99_ms"]]
        for kind, k in sorted(run["kinds"].items())
    ]
    rows.append(
        [
            "**all**",
            run["completed"],
            run["errors"],
            run["intended_4xx"],
            run["p50_ms"],
            run["p99_ms"],
        ]
    )
    rebuild = data["rebuild"]
    rebuilt = (
        f"requested at {rebuild.get('requested_s')} s, {rebuild.get('state')} at "
        f"{rebuild.get('finished_s')} s, now serving {rebuild.get('served_generation')}"
        if rebuild.get("job_id")
        else f"not run ({rebuild})"
    )
    calibration = ", ".join(
        f"{s['target_rate']:g}/s → p99 {s['p99_ms']} ms" for s in data["calibration"]
    )
    if calibration and data.get("headroom"):
        calibration += f"; the run uses {data['headroom']:g} × the best"
    cache = data.get("encode_cache_size")
    cache_note = (
        f" The service's embedding cache was {'off' if cache == 0 else f'{cache} texts'}."
        if cache is not None
        else ""
    )
    return (
        f"### Mixed load for {data['minutes']:g} min while the index changes\n\n"
        f"`wikirag serve --workers {data['workers']}` on the sample index (a copy), "
        f"{data['loop']} (`benchmarks/load_bench.py`, latency from each request's due time); "
        f"mix {', '.join(f'{k} {v} %' for k, v in data['mix'].items())}. Rate "
        f"**{data['rate']:g} requests/s** "
        + (f"(calibration: {calibration})" if calibration else "(given)")
        + f". During the run: {data['updates']['applied']} incremental updates applied "
        f"({data['updates']['deferred_busy']} deferred while the rebuild held the index); "
        f"rebuild {rebuilt}.\n\n"
        + md_table(["requests", "served", "errors", "404/410 (intended)", "p50 ms", "p99 ms"], rows)
        + "\n\n"
        + _timeline_line(run)
        + cache_note
        + "\n\n"
        + md_table(
            ["server", "RSS MB", "open fds"],
            [
                ["start", server["start"]["rss_mb"], server["start"]["fds"]],
                ["end", server["end"]["rss_mb"], server["end"]["fds"]],
            ],
        )
        + f"\n\nRSS growth {server['rss_growth_pct']} % (target ≤ 10 %); targets "
        f"{'met' if data['targets']['met'] else 'NOT met'}."
        + (f" Failures: {'; '.join(data['failures'])}." if data["failures"] else "")
        + "\n\n"
        + machine_line(data["machine"], data["load"])
    )


def _timeline_line(run: dict[str, Any]) -> str:
    """Where the slow requests were: seconds with any request over the target, the worst."""
    timeline = run.get("timeline") or []
    if not timeline:
        return ""
    slow = [t for t in timeline if t["over_target"]]
    worst = max(timeline, key=lambda t: t["max_ms"])
    return (
        f"Requests over {P99_TARGET_MS:g} ms: {sum(t['over_target'] for t in timeline)} of "
        f"{run['completed']}, in {len(slow)} of {len(timeline)} seconds; slowest at "
        f"{worst['s']} s ({worst['max_ms']} ms)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load_bench",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--index",
        type=Path,
        default=DEFAULT_INDEX,
        help="published index to copy and serve (default: the sample index)",
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the long run")
    parser.add_argument(
        "--rate", type=float, default=None, help="requests/s of the long run (default: calibrate)"
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="calibrate even when --rate is given (it is then ignored)",
    )
    parser.add_argument(
        "--calibrate-start", type=float, default=10.0, help="first calibration rate (×1.5 per step)"
    )
    parser.add_argument("--step-seconds", type=float, default=20.0, help="calibration step")
    parser.add_argument(
        "--headroom",
        type=float,
        default=0.5,
        help="the long run's rate as a share of the calibrated one (default 0.5: calibration "
        "runs without the updates and the rebuild, which share the same cores)",
    )
    parser.add_argument("--steps", type=int, default=8, help="most calibration steps")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--encode-cache-size",
        type=int,
        default=0,
        help="the service's WIKIRAG_ENCODE_CACHE_SIZE (default 0: the plan repeats, and every "
        "request pays for its embeddings as a first-time request does)",
    )
    parser.add_argument(
        "--update-every", type=float, default=30.0, help="seconds between incremental updates"
    )
    parser.add_argument(
        "--rebuild-at",
        type=float,
        default=0.4,
        help="fraction of the run at which the rebuild is requested",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; write no results")
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help=f"only rewrite the RESULTS.md section from results/{NAME}.json",
    )
    parser.add_argument("--generate", type=Path, metavar="PLAN", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate is not None:  # the generator process
        requests = json.loads(args.generate.read_text(encoding="utf-8"))
        result = asyncio.run(
            generate(
                args.url,
                requests,
                rate=args.rate,
                seconds=args.seconds,
                connections=args.connections,
                offset=args.offset,
            )
        )
        print(json.dumps(result))
        return 0
    if args.markdown_only:
        data = json.loads((RESULTS_DIR / f"{NAME}.json").read_text(encoding="utf-8"))
        update_results_md(SECTION, markdown(data))
        return 0
    data = measure(args)
    print(json.dumps({k: v for k, v in data.items() if k != "machine"}, indent=2))
    if not args.no_write:
        write_result(NAME, data)
        update_results_md(SECTION, markdown(data))
    else:
        print(markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
