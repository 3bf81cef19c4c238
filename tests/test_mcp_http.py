"""``wikirag mcp --transport http`` (streamable HTTP at ``/mcp``) as a real subprocess on a
free loopback port, over the tiny test index of ``test_api.py``, driven by the ``mcp``
package's own HTTP client (``streamable_http_client`` + ``ClientSession``): initialize, list
the tools, call each one and compare the answers with the stored passages; then SIGTERM
stops the server cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from app.mcp.server import INSTRUCTIONS
from indexer import __version__
from indexer.generation import IndexLayout
from indexer.store import PassageRecord, PassageStore
from tests.conftest import ROOT
from tests.live_server import free_port
from tests.test_api import CURRENT_REVISION, OLDER_REVISION, index_dir

__all__ = ["index_dir"]  # the session's tiny index, shared with test_api

pytestmark = pytest.mark.slow

T = TypeVar("T")
TOOLS = {"search_wikipedia", "get_passage", "cite", "attribute_answer"}
EINSTEIN = f"simplewiki:{CURRENT_REVISION}:0"  # the lead passage of the current revision
PERMALINK = "https://simple.wikipedia.org/w/index.php?title=Albert_Einstein&oldid={}"
HISTORY = "https://simple.wikipedia.org/w/index.php?title=Albert_Einstein&action=history"
CC_BY_SA_3 = {
    "identifier": "CC-BY-SA-3.0",
    "short_name": "CC BY-SA 3.0",
    "url": "https://creativecommons.org/licenses/by-sa/3.0/",
}


@dataclass(frozen=True)
class McpHttp:
    proc: subprocess.Popen[bytes]
    url: str  # the MCP endpoint, http://127.0.0.1:PORT/mcp
    log: Path
    index_dir: Path

    def store(self) -> PassageStore:
        return PassageStore(
            IndexLayout(self.index_dir).current().file("store.sqlite"), readonly=True
        )


def _wait_listening(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Until the endpoint answers HTTP at all (a bare GET is refused with a 4xx)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"wikirag mcp exited with {proc.returncode}:\n{log.read_text()}")
        try:
            httpx.get(url, timeout=5)
            return
        except httpx.TransportError:
            time.sleep(0.3)
    raise AssertionError(f"wikirag mcp did not listen in {timeout} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpHttp]:
    log = tmp_path_factory.mktemp("mcp-http") / "mcp.log"
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "mcp", "--index", str(index_dir), "--transport",
             "http", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        _wait_listening(url, proc, log, 180)
        yield McpHttp(proc, url, log, index_dir)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _session(url: str, body: Callable[[ClientSession], Awaitable[T]]) -> T:
    """``body`` run in a fresh, initialized MCP session over streamable HTTP."""

    async def run() -> T:
        async with (
            streamable_http_client(url) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await body(session)

    return asyncio.run(run())


def _call(url: str, tool: str, arguments: dict[str, Any]) -> Any:
    return _session(url, lambda session: session.call_tool(tool, arguments))


def _payload(result: Any) -> dict[str, Any]:
    """A tool's structured result, checked against its text form (clients read either)."""
    assert not result.is_error, result.content
    data = dict(result.structured_content)
    assert json.loads(result.content[0].text) == data
    return data


def _error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return " ".join(getattr(c, "text", "") for c in result.content)


def _check_stored(passage: dict[str, Any], record: PassageRecord) -> None:
    """Every field of a returned passage equals the stored passage's."""
    assert passage["passage_id"] == record.passage_id
    assert passage["title"] == record.title and passage["wiki"] == record.wiki
    assert passage["language"] == record.language and passage["text"] == record.text
    assert passage["section"] == " > ".join(record.section_path)
    assert passage["revision_id"] == record.revision_id
    assert passage["revision_timestamp"] == record.revision_timestamp
    assert passage["license"] == CC_BY_SA_3 and record.license.identifier == "CC-BY-SA-3.0"


def _check_einstein_attribution(passage: dict[str, Any], revision: int, date: str) -> None:
    url = PERMALINK.format(revision)
    assert passage["url"] == url
    attribution = passage["attribution"]
    assert attribution["authors_url"] == HISTORY
    assert attribution["text"] == (
        f'"Albert Einstein" by Wikipedia contributors ({HISTORY}), from Simple English '
        f"Wikipedia, the free encyclopedia, revision {revision} of {date} ({url}), licensed "
        "under CC BY-SA 3.0 (https://creativecommons.org/licenses/by-sa/3.0/). Excerpt; wiki "
        "markup removed."
    )
    assert f"[revision {revision} of {date}]({url})" in attribution["markdown"]
    assert (
        f'<a href="{url.replace("&", "&amp;")}">revision {revision} of {date}</a>'
        in (attribution["html"])
    )


# -- the tests -----------------------------------------------------------------------------


def test_initialize_names_the_server_and_lists_the_four_tools(server: McpHttp) -> None:
    async def run() -> tuple[Any, Any]:
        async with (
            streamable_http_client(server.url) as (read, write),
            ClientSession(read, write) as session,
        ):
            return await session.initialize(), await session.list_tools()

    init, listed = asyncio.run(run())
    assert (init.server_info.name, init.server_info.version) == ("wikirag", __version__)
    assert init.instructions == INSTRUCTIONS
    assert init.capabilities.tools is not None
    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == TOOLS
    properties = {name: set(tool.input_schema["properties"]) for name, tool in tools.items()}
    assert properties == {
        "search_wikipedia": {"query", "k", "mode", "wikis", "languages", "max_revert_risk"},
        "get_passage": {"passage_id"},
        "cite": {"url", "wiki", "revision_id", "max_passages"},
        "attribute_answer": {"answer", "passage_ids", "k"},
    }
    required = {name: set(tool.input_schema.get("required", ())) for name, tool in tools.items()}
    assert required == {
        "search_wikipedia": {"query"},
        "get_passage": {"passage_id"},
        "cite": set(),
        "attribute_answer": {"answer"},
    }
    mode = tools["search_wikipedia"].input_schema["properties"]["mode"]
    assert mode["enum"] == ["hybrid", "dense", "lexical"] and mode["default"] == "hybrid"


def test_search_over_http_returns_stored_passages_with_their_attribution(
    server: McpHttp,
) -> None:
    found = _payload(
        _call(server.url, "search_wikipedia", {"query": "Einstein Nobel Prize", "k": 3})
    )
    generation = IndexLayout(server.index_dir).current().generation
    assert (found["query"], found["mode"], found["generation"]) == (
        "Einstein Nobel Prize", "hybrid", generation,
    )  # fmt: skip
    results = found["results"]
    assert [r["rank"] for r in results] == [1, 2, 3]
    top = results[0]
    assert top["passage_id"] == EINSTEIN and top["revision_id"] == CURRENT_REVISION
    assert "Nobel Prize in Physics in 1921" in top["text"]
    store = server.store()
    try:
        for result in results:
            record = store.passage(result["passage_id"])
            assert record is not None and record.current_revision_id == record.revision_id
            _check_stored(result, record)
            assert set(result["scores"]) <= {"dense", "lexical", "fused"}
            assert "fused" in result["scores"]
    finally:
        store.close()
    _check_einstein_attribution(top, CURRENT_REVISION, "30 July 2022")

    russian = _payload(
        _call(server.url, "search_wikipedia", {"query": "языки программирования", "k": 2,
                                               "mode": "lexical", "languages": ["ru"]})
    )  # fmt: skip
    assert russian["mode"] == "lexical"
    assert [(r["wiki"], r["language"], r["title"]) for r in russian["results"]] == [
        ("ruwiki", "ru", "Squirrel")
    ] * 2
    versity = _payload(
        _call(server.url, "search_wikipedia",
              {"query": "learning projects", "k": 2, "wikis": ["enwikiversity"]})
    )  # fmt: skip
    assert {(r["wiki"], r["title"], r["revision_id"]) for r in versity["results"]} == {
        ("enwikiversity", "Albert Einstein", 2254003)
    }


def test_get_passage_current_and_older_revision(server: McpHttp) -> None:
    current = _payload(_call(server.url, "get_passage", {"passage_id": EINSTEIN}))
    older_id = f"simplewiki:{OLDER_REVISION}:0"
    older = _payload(_call(server.url, "get_passage", {"passage_id": older_id}))
    generation = IndexLayout(server.index_dir).current().generation
    store = server.store()
    try:
        for passage, passage_id in ((current, EINSTEIN), (older, older_id)):
            record = store.passage(passage_id)
            assert record is not None
            _check_stored(passage, record)
            assert passage["current_revision_id"] == CURRENT_REVISION
            assert passage["generation"] == generation
    finally:
        store.close()
    assert current["is_current"] is True and older["is_current"] is False
    assert older["revision_id"] == OLDER_REVISION
    assert older["revision_timestamp"] == "2022-07-01T00:00:00Z"
    assert older["text"] == current["text"]  # the same article, relabelled
    _check_einstein_attribution(current, CURRENT_REVISION, "30 July 2022")
    _check_einstein_attribution(older, OLDER_REVISION, "1 July 2022")


def test_cite_by_url_and_by_revision(server: McpHttp) -> None:
    by_url = _payload(
        _call(server.url, "cite", {"url": "https://simple.wikipedia.org/wiki/Albert_Einstein"})
    )
    by_revision = _payload(
        _call(server.url, "cite",
              {"wiki": "simplewiki", "revision_id": OLDER_REVISION, "max_passages": 2})
    )  # fmt: skip
    store = server.store()
    try:
        stored = {
            revision: [p.passage_id for p in store.passages_of_revision("simplewiki", revision)]
            for revision in (CURRENT_REVISION, OLDER_REVISION)
        }
    finally:
        store.close()
    for cited, revision, current in (
        (by_url, CURRENT_REVISION, True), (by_revision, OLDER_REVISION, False),
    ):  # fmt: skip
        assert (cited["wiki"], cited["title"], cited["page_id"]) == (
            "simplewiki", "Albert Einstein", 2138,
        )  # fmt: skip
        assert cited["revision_id"] == revision and cited["is_current"] is current
        assert cited["current_revision_id"] == CURRENT_REVISION
        assert cited["permalink"] == cited["url"] == PERMALINK.format(revision)
        assert cited["history_url"] == HISTORY
        assert cited["license"]["identifier"] == "CC-BY-SA-3.0"
        assert cited["license"]["short_name"] == "CC BY-SA 3.0"
        assert set(cited["attribution"]) == {"text", "markdown", "html", "authors_url"}
        assert f"revision {revision} of " in cited["attribution"]["text"]
        assert cited["passage_count"] == len(stored[revision]) > 2
    assert by_url["superseded_by"] is None
    assert by_revision["superseded_by"] == {
        "revision_id": CURRENT_REVISION, "url": PERMALINK.format(CURRENT_REVISION),
    }  # fmt: skip
    assert [p["passage_id"] for p in by_url["passages"]] == stored[CURRENT_REVISION][:20]
    assert [p["passage_id"] for p in by_revision["passages"]] == stored[OLDER_REVISION][:2]


def test_attribute_answer_labels_each_sentence(server: McpHttp) -> None:
    answer = (
        "Albert Einstein received the Nobel Prize in Physics in 1921. Einstein was born in 1890."
    )
    attributed = _payload(
        _call(server.url, "attribute_answer",
              {"answer": answer, "passage_ids": [EINSTEIN], "k": 1})
    )  # fmt: skip
    first, second = attributed["sentences"]
    assert (first["text"], first["start"], first["end"]) == (
        "Albert Einstein received the Nobel Prize in Physics in 1921.", 0, 60,
    )  # fmt: skip
    assert first["label"] == "supported"
    [cited] = first["citations"]
    assert cited["passage_id"] == EINSTEIN and cited["label"] == "supported"
    assert (
        cited["quote"] == "He received the Nobel Prize in Physics in 1921 for theoretical physics."
    )
    assert cited["attribution"]["revision_id"] == CURRENT_REVISION
    assert cited["attribution"]["license"]["identifier"] == "CC-BY-SA-3.0"
    # a wrong year: the passage says otherwise, and the answer learns what disagrees
    assert second["text"] == "Einstein was born in 1890." and second["label"] == "contradicted"
    [near] = second["citations"]
    assert near["missing_numbers"] == ["1890"] and near["label"] == "contradicted"
    assert near["disagreement"] == {
        "kind": "number",
        "claim": "1890",
        "passage": "1879",
        "reason": "the passage says 1879 where the claim says 1890",
    }
    assert near["attribution"]["revision_id"] == CURRENT_REVISION
    assert attributed["unknown_passage_ids"] == []
    assert attributed["generation"] == IndexLayout(server.index_dir).current().generation
    reference = attributed["references"][0]
    assert (reference["number"], reference["passage_id"]) == (1, EINSTEIN)
    assert reference["url"] == PERMALINK.format(CURRENT_REVISION)
    assert "[1]" in attributed["footnoted"]["text"]


def test_bad_tool_calls_are_tool_errors_that_say_what_is_wrong(server: McpHttp) -> None:
    async def body(session: ClientSession) -> list[str]:
        calls: list[tuple[str, dict[str, Any]]] = [
            ("get_passage", {"passage_id": "nonsense"}),
            ("get_passage", {"passage_id": "dewiki:1:0"}),
            ("get_passage", {"passage_id": f"simplewiki:{CURRENT_REVISION}:99999"}),
            ("search_wikipedia", {"query": "x", "wikis": ["dewiki"]}),
            ("search_wikipedia", {"query": "  "}),
            ("search_wikipedia", {"query": "x", "k": 51}),
            ("cite", {}),
            ("cite", {"url": "https://simple.wikipedia.org/wiki/No_such_page_here"}),
            ("attribute_answer", {"answer": " "}),
        ]
        return [_error_text(await session.call_tool(name, args)) for name, args in calls]

    errors = _session(server.url, body)
    expected = [
        "expected WIKI:REVISION_ID:ORDINAL",
        "wiki 'dewiki' is not indexed; indexed wikis: enwikiversity, ruwiki, simplewiki",
        f"no passage 'simplewiki:{CURRENT_REVISION}:99999' in generation",
        "wiki(s) dewiki are not indexed; indexed wikis: enwikiversity, ruwiki, simplewiki",
        "the query is empty",
        "k must be between 1 and 50, not 51",
        "give either url, or wiki and revision_id",
        "unknown-title",
        "the answer is empty",
    ]
    for text, part in zip(errors, expected, strict=True):
        assert part in text, text
    # a failed call leaves the server serving
    assert _payload(_call(server.url, "get_passage", {"passage_id": EINSTEIN}))["is_current"]


def test_sigterm_stops_the_http_server_cleanly(server: McpHttp) -> None:
    """Last in the module: the server exits 0 on SIGTERM (uvicorn's graceful shutdown, then
    the opened generation is closed)."""
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0, server.log.read_text()
    log = server.log.read_text()
    assert "Application shutdown complete." in log and "Traceback" not in log
