"""A Model Context Protocol server over a published index (``wikirag mcp --index DIR``).

Assistants that speak MCP (stdio, or streamable HTTP with ``--transport http``) get four
tools, answered from the library objects directly (the generation is opened as
:func:`app.serving.open_serving` opens it for the HTTP service; no HTTP in between):

* ``search_wikipedia(query, k, mode?, wikis?, languages?)`` — passages for a question;
* ``get_passage(passage_id)`` — one stored passage (of any stored revision);
* ``cite(url | wiki + revision_id)`` — the citation record of a revision or Wikipedia URL;
* ``attribute_answer(answer, passage_ids?, k?)`` — the passages behind each sentence of an
  answer (:mod:`app.attribution.verifier`).

Every passage comes with its revision permalink, its license as recorded for the revision
and its attribution as text, Markdown and HTML: what a quoting assistant must show.
Failures (unknown wiki, malformed id, suppressed revision…) are tool errors whose message
says what is wrong.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from app.attribution.citations import CitationError
from app.attribution.present import present
from app.attribution.verifier import AnswerAttributor, AttributeOptions, MalformedPassageIds
from app.retrieval.ranking import SearchMode, SearchRequest
from app.retrieval.retriever import serving_embedder
from app.serving import ServingIndex, open_serving
from app.settings import Settings
from indexer import __version__
from indexer.generation import IndexLayout
from indexer.models import parse_passage_id

log = logging.getLogger(__name__)

MAX_K = 50
MAX_CITED_PASSAGES = 50

INSTRUCTIONS = (
    "Search licensed Wikipedia content and cite exact revisions. Every passage carries its "
    "revision permalink ('url'), its license and a ready-to-use attribution ('attribution.text'"
    ", '.markdown', '.html'): when you quote or paraphrase a passage, show its attribution."
)


class WikiragTools:
    """The tools' logic over one opened generation (usable without MCP, e.g. in tests)."""

    def __init__(self, serving: ServingIndex) -> None:
        self.serving = serving

    def _check(self, wikis: Sequence[str] | None, languages: Sequence[str] | None) -> None:
        sites, langs = self.serving.sites, self.serving.languages
        unknown = sorted(set(wikis or ()) - set(sites))
        if unknown:
            raise ToolError(
                f"wiki(s) {', '.join(unknown)} are not indexed; indexed wikis: "
                f"{', '.join(sorted(sites))}"
            )
        unknown = sorted(set(languages or ()) - set(langs))
        if unknown:
            raise ToolError(
                f"language(s) {', '.join(unknown)} are not indexed; indexed languages: "
                f"{', '.join(sorted(langs))}"
            )

    def search(
        self,
        query: str,
        k: int = 5,
        mode: str = "hybrid",
        wikis: Sequence[str] | None = None,
        languages: Sequence[str] | None = None,
        max_revert_risk: float | None = None,
    ) -> dict[str, Any]:
        if not query.strip():
            raise ToolError("the query is empty")
        if not 1 <= k <= MAX_K:
            raise ToolError(f"k must be between 1 and {MAX_K}, not {k}")
        if max_revert_risk is not None and not 0 <= max_revert_risk <= 1:
            raise ToolError(f"max_revert_risk must be between 0 and 1, not {max_revert_risk}")
        try:
            search_mode = SearchMode(mode)
        except ValueError:
            raise ToolError(f"mode must be 'hybrid', 'dense' or 'lexical', not {mode!r}") from None
        self._check(wikis, languages)
        hits = self.serving.retriever.search(
            SearchRequest(
                query,
                k=k,
                mode=search_mode,
                wikis=tuple(wikis) if wikis else None,
                languages=tuple(languages) if languages else None,
                max_revert_risk=max_revert_risk,
            )
        )
        results = []
        for rank, hit in enumerate(hits, start=1):
            scores = {name: round(value, 4) for name, value in hit.scores.items()}
            results.append({"rank": rank, **present(hit.passage).tool_fields(), "scores": scores})
        return {
            "query": query,
            "mode": search_mode.value,
            "generation": self.serving.name,
            "results": results,
        }

    def passage(self, passage_id: str) -> dict[str, Any]:
        try:
            wiki, _, _ = parse_passage_id(passage_id)
        except ValueError as exc:
            raise ToolError(f"{exc} (expected WIKI:REVISION_ID:ORDINAL)") from None
        if wiki not in self.serving.sites:
            indexed = ", ".join(sorted(self.serving.sites))
            raise ToolError(f"wiki {wiki!r} is not indexed; indexed wikis: {indexed}")
        record = self.serving.index.store.passage(passage_id)
        if record is None:
            raise ToolError(f"no passage {passage_id!r} in generation {self.serving.name}")
        if record.suppressed is not None:
            raise ToolError(f"passage {passage_id!r} is no longer available ({record.suppressed})")
        current = record.current_revision_id
        return {
            **present(record).tool_fields(),
            "is_current": record.revision_id == current,
            "current_revision_id": current,
            "generation": self.serving.name,
        }

    def cite(
        self,
        url: str | None = None,
        wiki: str | None = None,
        revision_id: int | None = None,
        max_passages: int = 20,
    ) -> dict[str, Any]:
        try:
            if url:
                record = self.serving.citations.by_url(url)
            elif wiki and revision_id is not None:
                record = self.serving.citations.by_revision(wiki, revision_id)
            else:
                raise ToolError("give either url, or wiki and revision_id")
        except CitationError as exc:
            raise ToolError(f"{exc.code}: {exc.message}") from None
        data = record.model_dump(mode="json")
        passages = data.pop("passages")
        limit = max(0, min(max_passages, MAX_CITED_PASSAGES))
        attribution = data.pop("attribution")
        return {
            **data,
            "url": data["permalink"],
            "attribution": {
                key: attribution[key] for key in ("text", "markdown", "html", "authors_url")
            },
            "passage_count": len(passages),
            "passages": passages[:limit],
        }

    def attribute(
        self, answer: str, passage_ids: Sequence[str] | None = None, k: int = 3
    ) -> dict[str, Any]:
        if not answer.strip():
            raise ToolError("the answer is empty")
        options = AttributeOptions(
            passage_ids=tuple(passage_ids) if passage_ids else None, k=max(1, min(k, 10))
        )
        try:
            result = AnswerAttributor(self.serving.retriever).attribute(answer, options)
        except MalformedPassageIds as exc:
            raise ToolError(str(exc)) from None
        return {**result.as_dict(), "generation": self.serving.name}


def build_server(tools: WikiragTools) -> MCPServer[Any]:
    """The MCP server exposing ``tools``."""
    server: MCPServer[Any] = MCPServer(
        name="wikirag", version=__version__, instructions=INSTRUCTIONS
    )

    @server.tool()
    def search_wikipedia(
        query: str,
        k: int = 5,
        mode: Literal["hybrid", "dense", "lexical"] = "hybrid",
        wikis: list[str] | None = None,
        languages: list[str] | None = None,
        max_revert_risk: float | None = None,
    ) -> dict[str, Any]:
        """Search Wikipedia passages for a question (hybrid: semantic + keyword). Each result
        has the passage text, title, section, revision permalink ('url'), license, an
        attribution (text/markdown/html) to show with anything quoted from it, and 'trust'
        (revert risk, editor, tags… of its revision). 'wikis' (e.g. enwiki) and 'languages'
        (e.g. en) restrict the search; 'max_revert_risk' (0–1) leaves out passages of
        revisions scored more likely than that to be reverted."""
        return tools.search(query, k, mode, wikis, languages, max_revert_risk)

    @server.tool()
    def get_passage(passage_id: str) -> dict[str, Any]:
        """One passage by id (WIKI:REVISION_ID:ORDINAL, as returned by search_wikipedia),
        with its permalink, license, attribution and whether its revision is current."""
        return tools.passage(passage_id)

    @server.tool()
    def cite(
        url: str | None = None,
        wiki: str | None = None,
        revision_id: int | None = None,
        max_passages: int = 20,
    ) -> dict[str, Any]:
        """The citation of a Wikipedia article: give a Wikipedia URL ('url': /wiki/Title,
        ?oldid=N, Special:PermanentLink/N…) or 'wiki' plus 'revision_id'. Returns the
        revision permalink, license, attribution, whether it is current, and its passages."""
        return tools.cite(url, wiki, revision_id, max_passages)

    @server.tool()
    def attribute_answer(
        answer: str, passage_ids: list[str] | None = None, k: int = 3
    ) -> dict[str, Any]:
        """Find the Wikipedia passages that support each sentence of an answer (those in
        'passage_ids' first, then the whole index): per sentence a label (supported /
        partial / contradicted / unsupported; a contradiction says what disagrees), the quotes
        and their attributions, plus the answer with
        footnotes and its references."""
        return tools.attribute(answer, passage_ids, k)

    return server


def open_tools(index_dir: Path, settings: Settings) -> WikiragTools:
    """Load the embedding model and open the published generation of ``index_dir``."""
    embedder = serving_embedder(
        settings.model,
        settings.query_threads,
        query_encoder=settings.query_encoder,
        onnx_cache_dir=settings.onnx_cache_dir,
        index_dir=index_dir,
    )
    # Nothing may reach stdout before the stdio transport owns it.
    with contextlib.redirect_stdout(sys.stderr):
        embedder.load()
        serving = open_serving(IndexLayout(index_dir).current(), embedder, settings)
    log.info("wikirag MCP server: serving generation %s of %s", serving.name, index_dir)
    return WikiragTools(serving)


def run(
    index_dir: Path,
    settings: Settings,
    transport: Literal["stdio", "http"] = "stdio",
    host: str = "127.0.0.1",
    port: int = 8001,
) -> None:
    """Serve until stdin closes (stdio) or the process gets SIGTERM / SIGINT (HTTP; SIGINT
    then raises KeyboardInterrupt, once the generation is closed)."""
    tools = open_tools(index_dir, settings)
    server = build_server(tools)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the
    # handler that was there before it: these note it, so that the generation is closed and
    # the command exits 0 after a SIGTERM (130 after Ctrl-C) instead of dying by the signal.
    received: list[int] = []
    previous: dict[signal.Signals, Any] = {}
    if transport != "stdio":
        previous = {
            sig: signal.signal(sig, lambda signum, frame: received.append(signum))
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
    try:
        if transport == "stdio":
            server.run("stdio")
        else:
            server.run("streamable-http", host=host, port=port)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        tools.serving.close()
    if signal.SIGINT in received:
        raise KeyboardInterrupt
