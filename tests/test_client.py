"""The Python client (:mod:`app.client`) against the service: in process (TestClient and
``httpx.ASGITransport``, with an API key) and against a real ``wikirag serve`` process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.accounts.keys import KeyStore
from app.api.main import create_app
from app.client import AsyncWikiragClient, WikiragAPIError, WikiragClient
from indexer.embedding import Embedder
from indexer.generation import IndexLayout
from indexer.manifest import record_json
from tests.live_server import LiveServer, live_server
from tests.test_api import (
    CURRENT_REVISION,
    OLDER_REVISION,
    embedder,
    index_dir,
    revision_passage_ids,
    service_settings,
)

__all__ = ["embedder", "index_dir", "live_server"]  # shared session fixtures

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def keyed(
    index_dir: Path, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FastAPI, TestClient, str]]:
    """The service with access control on, and one API key."""
    tmp = tmp_path_factory.mktemp("client")
    _, key = KeyStore(tmp / "keys.sqlite").create("client-test")
    app = create_app(service_settings(index_dir, tmp, open_access=False), embedder=embedder)
    with TestClient(app) as test_client:
        yield app, test_client, key


def test_sync_client_search_passage_citations_index_and_attribute(
    keyed: tuple[FastAPI, TestClient, str], index_dir: Path
) -> None:
    _, test_client, key = keyed
    with WikiragClient(api_key=key, client=test_client) as wr:
        found = wr.search("Einstein Nobel Prize", k=3, mode="hybrid", languages=["simple"])
        assert found.generation == IndexLayout(index_dir).current().generation
        top = found.results[0]
        assert top.title == "Albert Einstein" and top.revision_id == CURRENT_REVISION
        assert top.attribution.license.identifier == "CC-BY-SA-3.0"
        assert f"oldid={CURRENT_REVISION}" in top.url and top.scores.fused > 0
        lexical = wr.search("языки программирования", k=2, mode="lexical", wikis=["ruwiki"])
        assert lexical.mode.value == "lexical" and lexical.results[0].wiki == "ruwiki"

        passage = wr.passage(top.passage_id)
        assert passage.text == top.text and passage.is_current
        old = wr.passage(f"simplewiki:{OLDER_REVISION}:0")
        assert not old.is_current and old.superseded_by is not None
        assert old.superseded_by.revision_id == CURRENT_REVISION
        assert f"oldid={CURRENT_REVISION}" in old.superseded_by.url

        cited = wr.citation_by_revision("simplewiki", OLDER_REVISION)
        assert cited.revision_id == OLDER_REVISION and cited.passages
        stored = revision_passage_ids(index_dir, "simplewiki", OLDER_REVISION)
        assert [p.passage_id for p in cited.passages] == stored
        by_url = wr.citation_by_url("https://simple.wikipedia.org/wiki/Albert_Einstein")
        assert by_url.revision_id == CURRENT_REVISION and by_url.is_current
        assert by_url.license.identifier == "CC-BY-SA-3.0"

        described = wr.index()
        assert {w.wiki for w in described.wikis} >= {"simplewiki", "ruwiki"}
        assert described.counts["passages"] > 0
        counts = IndexLayout(index_dir).current().manifest.counts
        assert described.counts == record_json(counts)

        sentence = top.text.split(". ")[0] + "."  # the passage's own words
        attributed = wr.attribute(sentence, passage_ids=[top.passage_id], k=1)
        assert attributed.references[0].passage_id == top.passage_id
        assert attributed.sentences[0].citations[0].attribution.url == top.url


def test_client_errors_carry_status_code_and_message(
    keyed: tuple[FastAPI, TestClient, str],
) -> None:
    _, test_client, key = keyed
    anonymous = WikiragClient(client=test_client)
    with pytest.raises(WikiragAPIError) as missing:
        anonymous.search("Einstein")
    assert missing.value.status == 401 and missing.value.code == "missing-api-key"
    wr = WikiragClient(api_key=key, client=test_client)
    with pytest.raises(WikiragAPIError) as bad_wiki:
        wr.search("Einstein", wikis=["dewiki"])
    error = bad_wiki.value
    assert (error.status, error.code) == (422, "unknown-wiki")
    assert "simplewiki" in error.message and error.details["unknown"] == ["dewiki"]
    with pytest.raises(WikiragAPIError) as unknown:
        wr.passage("simplewiki:1:99")
    assert (unknown.value.status, unknown.value.code) == (404, "passage-not-found")
    with pytest.raises(WikiragAPIError) as title:
        wr.citation_by_url("https://simple.wikipedia.org/wiki/No_such_article_here")
    assert (title.value.status, title.value.code) == (404, "unknown-title")
    with pytest.raises(WikiragAPIError) as not_ours:
        wr.citation_by_revision("dewiki", 5)
    assert not_ours.value.code == "unknown-wiki"


def test_async_client_over_asgi_transport(keyed: tuple[FastAPI, TestClient, str]) -> None:
    app, _, key = keyed  # the TestClient keeps the lifespan (services) running

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with AsyncWikiragClient(
            "http://wikirag.test", api_key=key, transport=transport
        ) as wr:
            found = await wr.search("theory of relativity", k=2, mode="dense")
            assert found.fusion is None and len(found.results) == 2
            passage = await wr.passage(found.results[0].passage_id)
            assert passage.attribution.text == found.results[0].attribution.text
            cited = await wr.citation_by_revision("simplewiki", CURRENT_REVISION)
            assert cited.title == "Albert Einstein"
            assert (await wr.citation_by_url(cited.permalink)).revision_id == CURRENT_REVISION
            assert (await wr.index()).generation == found.generation
            with pytest.raises(WikiragAPIError) as error:
                await wr.search("x", k=0)
            assert (error.value.status, error.value.code) == (422, "invalid-k")

    asyncio.run(run())


def test_clients_against_a_real_uvicorn_process(live_server: LiveServer) -> None:
    with WikiragClient(live_server.url, timeout=30) as wr:  # open access: no key
        found = wr.search("Einstein Nobel Prize", k=1)
        assert found.results[0].attribution.license.identifier
        assert found.results[0].attribution.license.identifier == "CC-BY-SA-3.0"
        assert found.results[0].revision_id == CURRENT_REVISION
        assert wr.citation_by_url(found.results[0].url).revision_id == found.results[0].revision_id

    async def run() -> None:
        async with AsyncWikiragClient(live_server.url) as wr:
            with pytest.raises(WikiragAPIError) as error:
                await wr.passage("not-a-passage-id")
            assert (error.value.status, error.value.code) == (400, "malformed-passage-id")

    asyncio.run(run())
