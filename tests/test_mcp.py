"""``wikirag mcp`` as a real stdio subprocess (the venv's python, the tiny test index),
driven by the ``mcp`` package's own client: list the tools, call each one."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from app.attribution.license import build_attribution
from indexer.generation import IndexLayout
from indexer.store import PassageStore
from tests.conftest import ROOT
from tests.test_api import CURRENT_REVISION, OLDER_REVISION, index_dir, revision_passage_ids

__all__ = ["index_dir"]  # the session's tiny index, shared with test_api

pytestmark = pytest.mark.slow


def _payload(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        data = result.structured_content
        return dict(data.get("result", data)) if set(data) == {"result"} else dict(data)
    return dict(json.loads(result.content[0].text))


def _error_text(result: Any) -> str:
    assert result.is_error
    return " ".join(getattr(c, "text", "") for c in result.content)


def _check_attributed(passage: dict[str, Any], index_dir: Path) -> None:
    """``passage`` is the stored passage of its id, with the license and the attribution
    built from the store; every revision of the test index is CC BY-SA 3.0."""
    assert passage["text"] and passage["title"]
    assert f"oldid={passage['revision_id']}" in passage["url"]
    assert passage["license"]["identifier"].startswith("CC-BY-SA-")
    assert passage["license"] == {
        "identifier": "CC-BY-SA-3.0",
        "short_name": "CC BY-SA 3.0",
        "url": "https://creativecommons.org/licenses/by-sa/3.0/",
    }
    assert passage["license"]["url"].startswith("https://creativecommons.org/licenses/by-sa/")
    attribution = passage["attribution"]
    assert passage["license"]["short_name"] in attribution["text"]
    assert str(passage["revision_id"]) in attribution["text"]
    assert attribution["markdown"] and attribution["html"].count("<a ") >= 1
    store = PassageStore(IndexLayout(index_dir).current().file("store.sqlite"), readonly=True)
    try:
        record = store.passage(passage["passage_id"])
    finally:
        store.close()
    assert record is not None, passage["passage_id"]
    assert (passage["text"], passage["title"]) == (record.text, record.title)
    assert passage["revision_id"] == record.revision_id
    expected = build_attribution(record)
    assert attribution == {
        "text": expected.text,
        "markdown": expected.markdown,
        "html": expected.html,
        "authors_url": expected.authors_url,
    }


def test_mcp_stdio_server_lists_and_answers_every_tool(index_dir: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "app.cli", "mcp", "--index", str(index_dir)],
        env=env,
        cwd=ROOT,
    )

    async def run() -> None:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            assert set(tools) == {"search_wikipedia", "get_passage", "cite", "attribute_answer"}
            schema = tools["search_wikipedia"].input_schema
            assert {"query", "k", "mode", "wikis", "languages"} <= set(schema["properties"])

            found = _payload(
                await session.call_tool(
                    "search_wikipedia", {"query": "Einstein Nobel Prize", "k": 3}
                )
            )
            assert len(found["results"]) == 3
            top = found["results"][0]
            assert top["title"] == "Albert Einstein" and top["revision_id"] == CURRENT_REVISION
            for passage in found["results"]:
                _check_attributed(passage, index_dir)
            russian = _payload(
                await session.call_tool(
                    "search_wikipedia",
                    {"query": "языки программирования", "k": 2, "mode": "lexical",
                     "languages": ["ru"]},
                )
            )  # fmt: skip
            assert {r["wiki"] for r in russian["results"]} == {"ruwiki"}
            unknown = await session.call_tool(
                "search_wikipedia", {"query": "x", "wikis": ["dewiki"]}
            )
            assert "dewiki" in _error_text(unknown) and "simplewiki" in _error_text(unknown)

            passage = _payload(
                await session.call_tool("get_passage", {"passage_id": top["passage_id"]})
            )
            assert passage["text"] == top["text"] and passage["is_current"]
            _check_attributed(passage, index_dir)
            old = _payload(
                await session.call_tool(
                    "get_passage", {"passage_id": f"simplewiki:{OLDER_REVISION}:0"}
                )
            )
            assert not old["is_current"] and old["current_revision_id"] == CURRENT_REVISION
            missing = await session.call_tool("get_passage", {"passage_id": "nonsense"})
            assert "WIKI:REVISION_ID:ORDINAL" in _error_text(missing)

            cited = _payload(
                await session.call_tool(
                    "cite", {"url": "https://simple.wikipedia.org/wiki/Albert_Einstein"}
                )
            )
            assert cited["revision_id"] == CURRENT_REVISION and cited["is_current"]
            assert cited["permalink"].endswith(f"oldid={CURRENT_REVISION}")
            assert cited["license"]["identifier"] == "CC-BY-SA-3.0"
            assert "CC BY-SA 3.0" in cited["attribution"]["text"] and cited["passages"]
            stored = revision_passage_ids(index_dir, "simplewiki", CURRENT_REVISION)
            assert cited["passage_count"] == len(stored) > 1
            assert [p["passage_id"] for p in cited["passages"]] == stored[:20]  # the default cap
            by_revision = _payload(
                await session.call_tool(
                    "cite", {"wiki": "simplewiki", "revision_id": OLDER_REVISION}
                )
            )
            assert not by_revision["is_current"]
            assert f"oldid={OLDER_REVISION}" in by_revision["permalink"]
            nowhere = await session.call_tool(
                "cite", {"url": "https://simple.wikipedia.org/wiki/No_such_page_here"}
            )
            assert "unknown-title" in _error_text(nowhere)

            sentence = top["text"].split(". ")[0] + "."
            attributed = _payload(
                await session.call_tool(
                    "attribute_answer",
                    {"answer": sentence, "passage_ids": [top["passage_id"]], "k": 1},
                )
            )
            reference = attributed["references"][0]
            assert reference["passage_id"] == top["passage_id"]
            assert reference["attribution"]["license"]["identifier"] == "CC-BY-SA-3.0"
            assert "[1]" in attributed["footnoted"]["text"]

    asyncio.run(run())
