"""The one place where domain error codes become HTTP statuses.

Domain errors (:class:`~app.attribution.citations.CitationError`, …) carry a stable ``code``
and no status: what a code means over HTTP is decided here, so the CLI and MCP answer the
same code without knowing anything of HTTP.

>>> http_status("unknown-title"), http_status("revision-hidden"), http_status("new-code")
(404, 410, 400)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

STATUS_BY_CODE: Final[Mapping[str, int]] = {
    # a request the client can fix
    "malformed-url": 400,
    "invalid-revision-id": 400,
    # well-formed, but not something this service answers
    "not-a-wikipedia-url": 422,
    "not-an-article-url": 422,
    # not in the index
    "unknown-wiki": 404,
    "unknown-title": 404,
    "revision-not-indexed": 404,
    # in the index, but no longer served
    "revision-deleted": 410,
    "revision-hidden": 410,
}


def http_status(code: str) -> int:
    """The HTTP status of a domain error code (400 for a code without its own)."""
    return STATUS_BY_CODE.get(code, 400)
