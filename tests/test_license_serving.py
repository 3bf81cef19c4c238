"""What the service says about each revision's license, over every way it is served.

The other service tests index only CC BY-SA 3.0 content, so a service that always said 3.0
would pass them. This index holds both licenses, from both kinds of source and both ways of
deciding (built once per session, four small articles, about 30 passages):

* enwiki "Answer" 706708349: a REAL XML export revision re-dated 2024-03-01 (the export
  states no license; the ``auto`` rule makes it CC BY-SA 4.0);
* enwiki "Aa River" 707884782: a real XML export revision as exported (2016: 3.0 by rule);
* frwiki "Alexandros Ioannis Ginnis" 214373211: a Wikimedia Enterprise object stating 4.0;
* ruwiki "Squirrel" 131059810: an Enterprise object saved after 2023-06-07 that states 3.0.

For every revision the exact license identifier, URL, attribution text, HTML and Markdown are
checked against strings written out here, over HTTP (a real ``wikirag serve`` process:
``/v1/search``, ``/v1/passages/{id}``, ``/v1/citations/{wiki}/revisions/{id}``), through the
Python client (``app.client``) against that server, and over MCP (``wikirag mcp`` on stdio,
driven by the ``mcp`` package's own client).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from app.client import WikiragClient
from indexer.build import build_index
from indexer.generation import IndexLayout
from indexer.models import CC_BY_SA_3, CC_BY_SA_4, License
from indexer.store import PassageStore
from tests.conftest import ROOT, SAMPLES
from tests.live_server import start_server, stop_server
from tests.test_api import OPTIONS, shared_embedder
from tests.test_licensing import STATED_3, STATED_4, real_pages_export

pytestmark = pytest.mark.slow

WME = SAMPLES / "wme"


# -- what each revision must be served with ---------------------------------------------------


def _href(url: str) -> str:
    return url.replace("&", "&amp;")


@dataclass(frozen=True)
class Revision:
    """One indexed revision and the attribution it must get (in its wiki's language)."""

    wiki: str
    revision_id: int
    title: str
    base: str
    timestamp: str
    date: str  # the day as the wiki's language writes it
    license: License
    short: str
    localized: str  # the license's long name in the wiki's language
    query: str

    @property
    def permalink(self) -> str:
        title = self.title.replace(" ", "_")
        return f"{self.base}/w/index.php?title={title}&oldid={self.revision_id}"

    @property
    def history(self) -> str:
        return f"{self.base}/w/index.php?title={self.title.replace(' ', '_')}&action=history"

    def url(self, anchor: str = "") -> str:
        fragment = quote(anchor, safe="!$&'()*+,;=:@/?-._~")  # as MediaWiki's html5 mode
        return f"{self.permalink}#{fragment}" if anchor else self.permalink

    def text(self, anchor: str = "") -> str:
        link, lic = self.url(anchor), f"{self.short} ({self.license.url})"
        if self.wiki == "frwiki":
            return (
                f"«\u00a0{self.title}\u00a0» par les contributeurs de Wikipédia "
                f"({self.history}), tiré de Wikipédia, l'encyclopédie libre, révision "
                f"{self.revision_id} du {self.date} ({link}), sous licence {lic}. "
                "Extrait ; balisage wiki supprimé."
            )
        if self.wiki == "ruwiki":
            return (
                f"«{self.title}», авторы: участники проекта Википедия ({self.history}), "
                f"источник: Википедия — свободная энциклопедия, версия {self.revision_id} от "
                f"{self.date} ({link}), лицензия: {lic}. Фрагмент; вики-разметка удалена."
            )
        return (
            f'"{self.title}" by Wikipedia contributors ({self.history}), from Wikipedia, the '
            f"free encyclopedia, revision {self.revision_id} of {self.date} ({link}), "
            f"licensed under {lic}. Excerpt; wiki markup removed."
        )

    def html(self, anchor: str = "") -> str:
        link, history = _href(self.url(anchor)), _href(self.history)
        title = f'<a href="{link}">{self.title}</a>'
        lic = (
            f'<a href="{self.license.url}" rel="license" title="{self.localized}">{self.short}</a>'
        )
        if self.wiki == "frwiki":
            return (
                f'«\u00a0{title}\u00a0» par <a href="{history}">les contributeurs de '
                "Wikipédia</a>, tiré de Wikipédia, l'encyclopédie libre, "
                f'<a href="{link}">révision {self.revision_id} du {self.date}</a>, sous '
                f"licence {lic}. Extrait ; balisage wiki supprimé."
            )
        if self.wiki == "ruwiki":
            return (
                f'«{title}», авторы: <a href="{history}">участники проекта Википедия</a>, '
                "источник: Википедия — свободная энциклопедия, "
                f'<a href="{link}">версия {self.revision_id} от {self.date}</a>, лицензия: '
                f"{lic}. Фрагмент; вики-разметка удалена."
            )
        return (
            f'"{title}" by <a href="{history}">Wikipedia contributors</a>, from Wikipedia, '
            f'the free encyclopedia, <a href="{link}">revision {self.revision_id} of '
            f"{self.date}</a>, licensed under {lic}. Excerpt; wiki markup removed."
        )

    def markdown(self, anchor: str = "") -> str:
        link, history = self.url(anchor), self.history
        lic = f"[{self.short}]({self.license.url})"
        if self.wiki == "frwiki":
            return (
                f"«\u00a0[{self.title}]({link})\u00a0» par [les contributeurs de Wikipédia]"
                f"({history}), tiré de Wikipédia, l'encyclopédie libre, [révision "
                f"{self.revision_id} du {self.date}]({link}), sous licence {lic}. Extrait ; "
                "balisage wiki supprimé."
            )
        if self.wiki == "ruwiki":
            return (
                f"«[{self.title}]({link})», авторы: [участники проекта Википедия]({history}), "
                f"источник: Википедия — свободная энциклопедия, [версия {self.revision_id} от "
                f"{self.date}]({link}), лицензия: {lic}. Фрагмент; вики-разметка удалена."
            )
        return (
            f'"[{self.title}]({link})" by [Wikipedia contributors]({history}), from '
            f"Wikipedia, the free encyclopedia, [revision {self.revision_id} of {self.date}]"
            f"({link}), licensed under {lic}. Excerpt; wiki markup removed."
        )


EN = "https://en.wikipedia.org"
ANSWER = Revision(
    "enwiki", 706708349, "Answer", EN, "2024-03-01T12:00:00Z", "1 March 2024", CC_BY_SA_4,
    "CC BY-SA 4.0", "Creative Commons Attribution-ShareAlike 4.0 International",
    "answer pleading defendant complaint",
)  # fmt: skip
AA_RIVER = Revision(
    "enwiki", 707884782, "Aa River", EN, "2016-03-02T10:29:10Z", "2 March 2016", CC_BY_SA_3,
    "CC BY-SA 3.0", "Creative Commons Attribution-ShareAlike 3.0 Unported",
    "Aa rivers Netherlands Switzerland",
)  # fmt: skip
GINNIS = Revision(
    "frwiki", 214373211, "Alexandros Ioannis Ginnis", "https://fr.wikipedia.org",
    "2024-04-18T21:14:32Z", "18 avril 2024", STATED_4, "CC BY-SA 4.0",
    "Creative Commons Attribution – Partage dans les Mêmes Conditions 4.0", "Ginnis",
)  # fmt: skip
SQUIRREL = Revision(
    "ruwiki", 131059810, "Squirrel", "https://ru.wikipedia.org", "2023-06-15T12:06:20Z",
    "15 июня 2023 г.", STATED_3, "CC BY-SA 3.0",
    "Creative Commons «Атрибуция — С сохранением условий» 3.0", "белки",
)  # fmt: skip
REVISIONS = {(r.wiki, r.revision_id): r for r in (ANSWER, AA_RIVER, GINNIS, SQUIRREL)}


def _ginnis_source(directory: Path) -> Path:
    """The frwiki snapshot's "Alexandros Ioannis Ginnis" object, alone in an .ndjson.gz."""
    with tarfile.open(WME / "frwiki_namespace_0.tar.gz") as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith(".ndjson"))
        handle = archive.extractfile(member)
        assert handle is not None
        line = next(raw for raw in handle if json.loads(raw)["name"] == GINNIS.title)
    path = directory / "frwiki-ginnis.ndjson.gz"
    with gzip.open(path, "wb") as out:
        out.write(line)
    return path


@pytest.fixture(scope="session")
def mixed_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's 3.0 + 4.0 index (see the module docstring)."""
    root = tmp_path_factory.mktemp("mixed-licenses")
    export = real_pages_export(
        root / "enwiki-redated.xml.bz2",
        {ANSWER.title: ANSWER.timestamp, AA_RIVER.title: None},
    )
    sources = [export, _ginnis_source(root), WME / "ruwiki_namespace_0.tar.gz"]
    report = build_index(sources, root / "index", OPTIONS, embedder=shared_embedder())
    assert report.ingest.skipped_total == 0, report.ingest.skipped_items
    return root / "index"


@pytest.fixture(scope="session")
def passages(mixed_index: Path) -> dict[tuple[str, int], list[tuple[str, str]]]:
    """``(passage_id, anchor)`` of every indexed revision's passages, from the store."""
    store = PassageStore(IndexLayout(mixed_index).current().file("store.sqlite"), readonly=True)
    try:
        found = {
            key: [(p.passage_id, p.anchor) for p in store.passages_of_revision(*key)]
            for key in REVISIONS
        }
        for key, revision in REVISIONS.items():
            stored = store.revision(*key)
            assert stored is not None and stored.license == revision.license, key
            assert stored.timestamp == revision.timestamp
    finally:
        store.close()
    assert all(len(ids) > 1 for ids in found.values()), found
    return found


@pytest.fixture(scope="module")
def server_url(mixed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("mixed-serve") / "serve.log"
    proc, url = start_server(mixed_index, log)
    try:
        yield url
    finally:
        stop_server(proc)


# -- checks shared by every surface -----------------------------------------------------------


def _expected(wiki: str, revision_id: int) -> Revision:
    revision = REVISIONS.get((wiki, revision_id))
    assert revision is not None, f"unexpected revision {wiki}:{revision_id}"
    return revision


def check_license(license_: dict[str, Any], revision: Revision) -> None:
    assert license_["identifier"] == revision.license.identifier
    assert license_["url"] == revision.license.url
    assert license_["short_name"] == revision.short
    if "name" in license_:
        assert license_["name"] == revision.license.name
        assert license_["localized_name"] == revision.localized


def check_attribution(attribution: dict[str, Any], revision: Revision, anchor: str) -> None:
    assert attribution["text"] == revision.text(anchor)
    assert attribution["html"] == revision.html(anchor)
    assert attribution["markdown"] == revision.markdown(anchor)
    assert attribution["authors_url"] == revision.history
    if "license" in attribution:  # the full attribution (HTTP, client)
        check_license(attribution["license"], revision)
        assert attribution["url"] == revision.url(anchor)
        assert attribution["revision_id"] == revision.revision_id
        assert attribution["last_modified"] == revision.timestamp


def check_passage(passage: dict[str, Any], anchors: dict[str, str]) -> Revision:
    """A served passage (search result, passage lookup): its license and attribution."""
    revision = _expected(passage["wiki"], passage["revision_id"])
    anchor = anchors[passage["passage_id"]]
    assert passage["revision_timestamp"] == revision.timestamp
    assert passage["url"] == revision.url(anchor)
    if "license" in passage:  # MCP puts the license beside the attribution
        check_license(passage["license"], revision)
    check_attribution(passage["attribution"], revision, anchor)
    return revision


def check_citation(record: dict[str, Any], revision: Revision, ids: list[str]) -> None:
    assert (record["wiki"], record["revision_id"]) == (revision.wiki, revision.revision_id)
    assert record["revision_timestamp"] == revision.timestamp
    assert record["permalink"] == revision.permalink
    check_license(record["license"], revision)
    check_attribution(record["attribution"], revision, "")
    assert [p["passage_id"] for p in record["passages"]] == ids


def _anchors(passages: dict[tuple[str, int], list[tuple[str, str]]]) -> dict[str, str]:
    return {pid: anchor for rows in passages.values() for pid, anchor in rows}


def _search_body(revision: Revision) -> dict[str, Any]:
    return {"query": revision.query, "k": 3, "wikis": [revision.wiki]}


# -- HTTP ---------------------------------------------------------------------------------


def test_http_serves_each_revision_with_its_own_license(
    server_url: str, passages: dict[tuple[str, int], list[tuple[str, str]]]
) -> None:
    import httpx

    anchors = _anchors(passages)
    with httpx.Client(base_url=server_url, timeout=60) as http:
        for key, revision in REVISIONS.items():
            found = http.post("/v1/search", json=_search_body(revision))
            assert found.status_code == 200, found.text
            results = found.json()["results"]
            assert len(results) == 3 and results[0]["revision_id"] == revision.revision_id
            for result in results:
                check_passage(result, anchors)

            for passage_id, _ in (passages[key][0], passages[key][-1]):
                got = http.get(f"/v1/passages/{passage_id}")
                assert got.status_code == 200, got.text
                assert check_passage(got.json(), anchors) is revision

            cited = http.get(f"/v1/citations/{revision.wiki}/revisions/{revision.revision_id}")
            assert cited.status_code == 200, cited.text
            check_citation(cited.json(), revision, [pid for pid, _ in passages[key]])


# -- the Python client ----------------------------------------------------------------------


def test_client_reads_each_revisions_license(
    server_url: str, passages: dict[tuple[str, int], list[tuple[str, str]]]
) -> None:
    anchors = _anchors(passages)
    with WikiragClient(server_url, timeout=60) as client:
        for key, revision in REVISIONS.items():
            found = client.search(revision.query, k=3, wikis=[revision.wiki])
            assert found.results[0].revision_id == revision.revision_id
            for result in found.results:
                check_passage(result.model_dump(mode="json"), anchors)
                assert result.attribution.license.identifier == revision.license.identifier
            passage = client.passage(passages[key][0][0])
            assert check_passage(passage.model_dump(mode="json"), anchors) is revision
            record = client.citation_by_revision(revision.wiki, revision.revision_id)
            check_citation(record.model_dump(mode="json"), revision, [p for p, _ in passages[key]])
            assert record.license.url == revision.license.url
            by_url = client.citation_by_url(revision.permalink)
            assert by_url.revision_id == revision.revision_id
            assert by_url.attribution.text == revision.text()


# -- MCP ------------------------------------------------------------------------------------


def _payload(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        data = result.structured_content
        return dict(data.get("result", data)) if set(data) == {"result"} else dict(data)
    return dict(json.loads(result.content[0].text))


def test_mcp_tools_give_each_revisions_license(
    mixed_index: Path, passages: dict[tuple[str, int], list[tuple[str, str]]]
) -> None:
    anchors = _anchors(passages)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "app.cli", "mcp", "--index", str(mixed_index)],
        env=env,
        cwd=ROOT,
    )

    async def run() -> None:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            for key, revision in REVISIONS.items():
                found = _payload(
                    await session.call_tool(
                        "search_wikipedia",
                        {"query": revision.query, "k": 3, "wikis": [revision.wiki]},
                    )
                )
                results = found["results"]
                assert len(results) == 3 and results[0]["revision_id"] == revision.revision_id
                for result in results:
                    check_passage(result, anchors)
                passage_id = passages[key][-1][0]
                passage = _payload(
                    await session.call_tool("get_passage", {"passage_id": passage_id})
                )
                assert check_passage(passage, anchors) is revision
                cited = _payload(
                    await session.call_tool(
                        "cite", {"wiki": revision.wiki, "revision_id": revision.revision_id}
                    )
                )
                check_citation(cited, revision, [pid for pid, _ in passages[key]])

    asyncio.run(run())
