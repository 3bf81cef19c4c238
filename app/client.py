"""A typed Python client for the wikirag HTTP API (sync and async, on httpx).

Responses are parsed into the service's own pydantic models (:mod:`app.api.schemas`,
:class:`app.attribution.citations.CitationRecord`), so a client and the server agree on
every field::

    >>> from app.client import WikiragClient                            # doctest: +SKIP
    >>> with WikiragClient("http://127.0.0.1:8000", api_key="wr_…") as wr:  # doctest: +SKIP
    ...     hits = wr.search("When did Einstein receive the Nobel Prize?", k=3)
    ...     print(hits.results[0].attribution.text)

Any 4xx/5xx answer raises :class:`WikiragAPIError` with the status and the ``code`` and
``message`` of the service's JSON error body (``{"error": {"code", "message", "details"}}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from app.api.routes.attribute import AttributeResponse
from app.api.schemas import IndexResponse, PassageResponse, SearchResponse
from app.attribution.citations import CitationRecord
from app.retrieval.fusion import FusionMethod
from app.retrieval.ranking import SearchMode

__all__ = [
    "AsyncWikiragClient",
    "AttributeResponse",
    "CitationRecord",
    "IndexResponse",
    "PassageResponse",
    "SearchResponse",
    "WikiragAPIError",
    "WikiragClient",
]

DEFAULT_TIMEOUT = 30.0


class WikiragAPIError(Exception):
    """The service answered with an error status.

    ``code`` is the service's stable error code (``unknown-wiki``, ``invalid-k``…; or
    ``http-<status>`` when the body is not the service's error shape), ``details`` the facts
    the message names.
    """

    def __init__(
        self, status: int, code: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    @classmethod
    def from_response(cls, response: httpx.Response) -> WikiragAPIError:
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and "code" in error:
            details = error.get("details")
            return cls(
                response.status_code,
                str(error["code"]),
                str(error.get("message", "")),
                details if isinstance(details, dict) else None,
            )
        text = response.text.strip()[:500] or response.reason_phrase
        return cls(response.status_code, f"http-{response.status_code}", text)


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _search_body(
    query: str,
    k: int,
    mode: SearchMode | str,
    wikis: Sequence[str] | None,
    languages: Sequence[str] | None,
    max_per_article: int | None,
    fusion: FusionMethod | str | None,
    max_revert_risk: float | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"query": query, "k": k, "mode": str(SearchMode(mode))}
    if wikis is not None:
        body["wikis"] = list(wikis)
    if languages is not None:
        body["languages"] = list(languages)
    if max_per_article is not None:
        body["max_per_article"] = max_per_article
    if fusion is not None:
        body["fusion"] = str(FusionMethod(fusion))
    if max_revert_risk is not None:
        body["max_revert_risk"] = max_revert_risk
    return body


def _attribute_body(
    answer: str,
    passage_ids: Sequence[str] | None,
    wikis: Sequence[str] | None,
    languages: Sequence[str] | None,
    k: int,
    search_fallback: bool,
) -> dict[str, Any]:
    body: dict[str, Any] = {"answer": answer, "k": k, "search_fallback": search_fallback}
    for name, value in (("passage_ids", passage_ids), ("wikis", wikis), ("languages", languages)):
        if value is not None:
            body[name] = list(value)
    return body


def _revision_path(wiki: str, revision_id: int) -> str:
    return f"/v1/citations/{quote(wiki, safe='')}/revisions/{int(revision_id)}"


def _passage_path(passage_id: str) -> str:
    # ':' may stay in a path segment; '/', '?', '#' and the rest are escaped.
    return f"/v1/passages/{quote(passage_id, safe=':')}"


def _checked(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise WikiragAPIError.from_response(response)
    return response.json()


class WikiragClient:
    """Blocking client. ``transport`` (an ``httpx.BaseTransport``) lets tests talk to an
    application in process; ``client`` wraps an existing ``httpx.Client`` instead."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self._owned = client is None
        self._http = client or httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        self._headers = _headers(api_key)  # per request: a shared ``client`` is not changed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def search(
        self,
        query: str,
        k: int = 10,
        mode: SearchMode | str = SearchMode.HYBRID,
        *,
        wikis: Sequence[str] | None = None,
        languages: Sequence[str] | None = None,
        max_per_article: int | None = None,
        fusion: FusionMethod | str | None = None,
        max_revert_risk: float | None = None,
    ) -> SearchResponse:
        """``POST /v1/search`` (``max_revert_risk``: leave out passages of revisions scored
        more likely than this to be reverted)."""
        body = _search_body(
            query, k, mode, wikis, languages, max_per_article, fusion, max_revert_risk
        )
        data = _checked(self._http.post("/v1/search", json=body, headers=self._headers))
        return SearchResponse.model_validate(data)

    def passage(self, passage_id: str) -> PassageResponse:
        """``GET /v1/passages/{passage_id}``."""
        data = _checked(self._http.get(_passage_path(passage_id), headers=self._headers))
        return PassageResponse.model_validate(data)

    def citation_by_revision(self, wiki: str, revision_id: int) -> CitationRecord:
        """``GET /v1/citations/{wiki}/revisions/{revision_id}``."""
        data = _checked(self._http.get(_revision_path(wiki, revision_id), headers=self._headers))
        return CitationRecord.model_validate(data)

    def citation_by_url(self, url: str) -> CitationRecord:
        """``GET /v1/citations?url=…``."""
        data = _checked(self._http.get("/v1/citations", params={"url": url}, headers=self._headers))
        return CitationRecord.model_validate(data)

    def index(self) -> IndexResponse:
        """``GET /v1/index``."""
        data = _checked(self._http.get("/v1/index", headers=self._headers))
        return IndexResponse.model_validate(data)

    def attribute(
        self,
        answer: str,
        *,
        passage_ids: Sequence[str] | None = None,
        wikis: Sequence[str] | None = None,
        languages: Sequence[str] | None = None,
        k: int = 3,
        search_fallback: bool = True,
    ) -> AttributeResponse:
        """``POST /v1/attribute``."""
        body = _attribute_body(answer, passage_ids, wikis, languages, k, search_fallback)
        data = _checked(self._http.post("/v1/attribute", json=body, headers=self._headers))
        return AttributeResponse.model_validate(data)


class AsyncWikiragClient:
    """The same API for asyncio (``async with AsyncWikiragClient(…) as wr``)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._owned = client is None
        self._http = client or httpx.AsyncClient(
            base_url=base_url, timeout=timeout, transport=transport
        )
        self._headers = _headers(api_key)  # per request: a shared ``client`` is not changed

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()

    async def search(
        self,
        query: str,
        k: int = 10,
        mode: SearchMode | str = SearchMode.HYBRID,
        *,
        wikis: Sequence[str] | None = None,
        languages: Sequence[str] | None = None,
        max_per_article: int | None = None,
        fusion: FusionMethod | str | None = None,
        max_revert_risk: float | None = None,
    ) -> SearchResponse:
        """``POST /v1/search`` (``max_revert_risk``: leave out passages of revisions scored
        more likely than this to be reverted)."""
        body = _search_body(
            query, k, mode, wikis, languages, max_per_article, fusion, max_revert_risk
        )
        response = await self._http.post("/v1/search", json=body, headers=self._headers)
        return SearchResponse.model_validate(_checked(response))

    async def passage(self, passage_id: str) -> PassageResponse:
        """``GET /v1/passages/{passage_id}``."""
        response = await self._http.get(_passage_path(passage_id), headers=self._headers)
        return PassageResponse.model_validate(_checked(response))

    async def citation_by_revision(self, wiki: str, revision_id: int) -> CitationRecord:
        """``GET /v1/citations/{wiki}/revisions/{revision_id}``."""
        response = await self._http.get(_revision_path(wiki, revision_id), headers=self._headers)
        return CitationRecord.model_validate(_checked(response))

    async def citation_by_url(self, url: str) -> CitationRecord:
        """``GET /v1/citations?url=…``."""
        response = await self._http.get("/v1/citations", params={"url": url}, headers=self._headers)
        return CitationRecord.model_validate(_checked(response))

    async def index(self) -> IndexResponse:
        """``GET /v1/index``."""
        response = await self._http.get("/v1/index", headers=self._headers)
        return IndexResponse.model_validate(_checked(response))

    async def attribute(
        self,
        answer: str,
        *,
        passage_ids: Sequence[str] | None = None,
        wikis: Sequence[str] | None = None,
        languages: Sequence[str] | None = None,
        k: int = 3,
        search_fallback: bool = True,
    ) -> AttributeResponse:
        """``POST /v1/attribute``."""
        body = _attribute_body(answer, passage_ids, wikis, languages, k, search_fallback)
        response = await self._http.post("/v1/attribute", json=body, headers=self._headers)
        return AttributeResponse.model_validate(_checked(response))
