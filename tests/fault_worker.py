"""A fork server for the fault tests (``tests/test_faults.py``): loads the embedding model
once, then runs each build, update or service in a *forked child process* that the test can
``SIGKILL`` at any moment — without paying seconds of model loading for every killed process.

Protocol: one JSON command per line on stdin, JSON lines on stdout.

* ``{"op": "build"|"rebuild"|"update"|"serve", "index": DIR, …, "fork": true}`` → forks;
  answers ``{"pid": N}`` at once, then ``{"pid": N, "status": S, "seconds": T}`` when the
  child ended — children run concurrently, so status lines may come between other answers
  (``S`` as :func:`os.waitstatus_to_exitcode`: 0, 1, or ``-9`` when killed). ``kill_at`` sets
  ``WIKIRAG_TEST_KILL_AT`` in the child (:mod:`indexer.faults`); ``log`` sends the child's
  output to that file. With ``"fork": false`` the
  operation runs in the server itself (reference runs) and only the status line is sent.
* ``{"op": "query", "index": DIR, "out": FILE}`` (forked like the others) writes
  ``{"results": …, "generation": …, "integrity": "ok"}`` to ``FILE``: the library API's
  answers to fixed queries in every mode, and the store's integrity check.

Nothing but the fork server's main thread and the threads that reap children runs in the
server process: a thread holding a lock (tantivy's, a thread pool's) at ``fork()`` would leave
the child waiting forever for it.

Run as ``python -m tests.fault_worker``; it ends at end of input.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

QUERIES = ("theory of relativity", "Einstein Nobel Prize", "squirrel", "языки программирования")


def _build(embedder: Any, command: dict[str, Any]) -> None:
    from indexer.build import BuildOptions, build_index, rebuild_index
    from indexer.ingest import IngestOptions

    options = BuildOptions(ingest=IngestOptions(progress=False), progress=False)
    index = Path(command["index"])
    if command["op"] == "rebuild":
        rebuild_index(index, options=options, embedder=embedder)
    else:
        build_index([Path(s) for s in command["sources"]], index, options, embedder=embedder)


def _update(embedder: Any, command: dict[str, Any]) -> None:
    from indexer.ingest import IngestOptions
    from indexer.update import UpdateOptions, apply_updates

    options = UpdateOptions(ingest=IngestOptions(progress=False), batch=command.get("batch", 1))
    apply_updates(Path(command["index"]), command["sources"], options, embedder=embedder)


def _serve(embedder: Any, command: dict[str, Any]) -> None:
    import uvicorn

    from app.api.main import configure_logging, create_app
    from app.settings import Settings

    configure_logging()
    settings = Settings(
        index_dir=Path(command["index"]),
        open_access=True,
        reload_poll_seconds=0.2,
        update_poll_seconds=0.2,
        metering=False,
        progress=False,
    )
    app = create_app(settings, embedder=embedder)
    uvicorn.run(app, host="127.0.0.1", port=int(command["port"]), log_level="warning")


def _query_to_file(embedder: Any, command: dict[str, Any]) -> None:
    """The query answers, written to ``command["out"]`` (queries run in a child too: the
    retriever's threads must not live in the process that forks)."""
    try:
        answer = _query(embedder, command)
    except Exception as exc:
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    Path(command["out"]).write_text(json.dumps(answer), encoding="utf-8")


def _query(embedder: Any, command: dict[str, Any]) -> dict[str, Any]:
    from app.retrieval.ranking import SearchMode, SearchRequest
    from app.retrieval.retriever import HybridRetriever, LoadedIndex

    index = LoadedIndex.open(Path(command["index"]), embedder.info)
    try:
        retriever = HybridRetriever(index, embedder)
        results = {
            f"{mode.value}:{query}": [
                [hit.passage.passage_id, round(hit.scores.get("fused", 0.0), 5)]
                for hit in retriever.search(SearchRequest(query, k=5, mode=mode))
            ]
            for query in QUERIES
            for mode in SearchMode
        }
        return {
            "results": results,
            "generation": index.generation.generation,
            "integrity": index.store.integrity_check(),
        }
    finally:
        index.close()


OPERATIONS = {
    "build": _build,
    "rebuild": _build,
    "update": _update,
    "serve": _serve,
    "query": _query_to_file,
}


_SEND = threading.Lock()


def _send(message: dict[str, Any]) -> None:
    with _SEND:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def _child(embedder: Any, command: dict[str, Any]) -> None:
    """In the forked child: run the operation, never return."""
    code = 0
    try:
        if command.get("log"):  # the child's own log file
            fd = os.open(command["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 2)
        os.dup2(2, 1)  # keep the protocol channel clean
        sys.stdout = sys.stderr
        if command.get("kill_at"):
            os.environ["WIKIRAG_TEST_KILL_AT"] = command["kill_at"]
        OPERATIONS[command["op"]](embedder, command)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stderr.flush()
        os._exit(code)


def _run(embedder: Any, command: dict[str, Any]) -> None:
    started = time.perf_counter()
    if not command.get("fork", True):
        try:
            OPERATIONS[command["op"]](embedder, command)
            status = 0
        except Exception:
            traceback.print_exc()
            status = 1
        _send({"status": status, "seconds": time.perf_counter() - started})
        return
    pid = os.fork()
    if pid == 0:
        _child(embedder, command)
    _send({"pid": pid})

    def reap() -> None:  # children run concurrently (a service while a build runs)
        _, wait_status = os.waitpid(pid, 0)
        status = os.waitstatus_to_exitcode(wait_status)
        _send({"pid": pid, "status": status, "seconds": time.perf_counter() - started})

    threading.Thread(target=reap, daemon=True).start()


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import faiss

    from indexer.embedding import Embedder

    faiss.omp_set_num_threads(1)
    embedder = Embedder(threads=1)  # one thread: no OpenMP pool to break across fork()
    embedder.encode_query("warm up")
    _send({"ready": True})
    for line in sys.stdin:
        if line.strip():
            _run(embedder, json.loads(line))


if __name__ == "__main__":
    main()
