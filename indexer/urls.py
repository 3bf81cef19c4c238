"""Links into a wiki built from stored data: revision permalinks, page history, article URLs.

Usage::

    >>> revision_url("https://en.wikipedia.org", "Albert Einstein", 1270870723, "Early_life")
    'https://en.wikipedia.org/w/index.php?title=Albert_Einstein&oldid=1270870723#Early_life'
    >>> history_url("https://fr.wikipedia.org", "Joséphine Baker")
    'https://fr.wikipedia.org/w/index.php?title=Jos%C3%A9phine_Baker&action=history'
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import quote

# Characters MediaWiki leaves unescaped in titles within URLs (wfUrlencode).
_TITLE_SAFE = ";@$!*(),/~:"
# Fragments: MediaWiki's html5 fragment mode keeps most characters; escape only what would
# break a URL.
_FRAGMENT_SAFE = "!$&'()*+,;=:@/?-._~"


class HasRevision(Protocol):
    @property
    def base_url(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def revision_id(self) -> int: ...
    @property
    def anchor(self) -> str: ...


def title_for_url(title: str) -> str:
    return quote(title.replace(" ", "_"), safe=_TITLE_SAFE)


def revision_url(base_url: str, title: str, revision_id: int, anchor: str = "") -> str:
    """Permanent link to one revision, with the section anchor where one applies."""
    url = f"{base_url.rstrip('/')}/w/index.php?title={title_for_url(title)}&oldid={revision_id}"
    return f"{url}#{quote(anchor, safe=_FRAGMENT_SAFE)}" if anchor else url


def history_url(base_url: str, title: str) -> str:
    """The page history: the list of the page's authors."""
    return f"{base_url.rstrip('/')}/w/index.php?title={title_for_url(title)}&action=history"


def article_url(base_url: str, title: str) -> str:
    return f"{base_url.rstrip('/')}/wiki/{title_for_url(title)}"


def revision_permalink(record: HasRevision) -> str:
    return revision_url(record.base_url, record.title, record.revision_id, record.anchor)
