"""Citation lookups: from a revision id, or from any Wikipedia article URL, to the stored
revision with its license, attribution and passages.

:meth:`CitationResolver.by_url` understands the URL forms people paste: ``/wiki/Title``
(the page's *current* revision), with a ``#section`` fragment, ``/w/index.php?title=…&oldid=…``,
``/w/index.php?oldid=…`` (no title), ``/wiki/Special:PermanentLink/…``, ``?curid=<page id>``,
percent-encoded titles, mobile hosts (``en.m.wikipedia.org``), ``http://`` and no scheme at
all. Titles are normalised as MediaWiki does (underscores and spaces, first letter upper-case
except on Wiktionary) and redirects are followed through the stored aliases. The wiki is
found from the host through the store's ``wikis`` table.

Every failure is a :class:`CitationError` with a stable ``code``, a message that says exactly
what was wrong, and the HTTP status that fits.

Usage::

    >>> resolver = CitationResolver(PassageStore(path, readonly=True))   # doctest: +SKIP
    >>> record = resolver.by_url("https://en.m.wikipedia.org/wiki/Einstein#Early_life")
    ...                                                                  # doctest: +SKIP
    >>> record.title, record.revision_id, record.is_current, record.redirected_from
    ...                                                                  # doctest: +SKIP
    ('Albert Einstein', 1270870723, True, 'Einstein')
    >>> resolver.by_revision("enwiki", 1097822042).current_revision_id  # doctest: +SKIP
    1270870723
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, Field

from app.attribution.license import Attribution, AttributionSubject, LicenseInfo, build_attribution
from app.attribution.trust import Trust, trust_of
from indexer.errors import WikiragError
from indexer.models import SiteInfo
from indexer.store import PageRecord, PassageStore, RevisionRecord, normalize_title
from indexer.urls import article_url, history_url, revision_url

__all__ = [
    "CitationError",
    "CitationRecord",
    "CitationResolver",
    "CitedPassage",
    "SupersededBy",
]

# Hosts of Wikimedia projects: a URL there is a wiki we could index but may not have.
_WIKIMEDIA_DOMAINS = (
    "wikipedia.org",
    "wiktionary.org",
    "wikibooks.org",
    "wikiquote.org",
    "wikisource.org",
    "wikinews.org",
    "wikiversity.org",
    "wikivoyage.org",
    "wikimedia.org",
    "wikidata.org",
    "mediawiki.org",
    "wikifunctions.org",
)
# The multilingual portals: not a wiki, so not an article.
_PORTALS = frozenset(
    f"{prefix}{domain}" for prefix in ("", "www.") for domain in _WIKIMEDIA_DOMAINS
)
# Names of the Special namespace (canonical and in the languages the attribution speaks).
_SPECIAL_NAMESPACES = frozenset({"special", "spécial", "spezial", "especial", "служебная"})
_PERMALINK_PAGES = frozenset(
    {
        "permanentlink",
        "permalink",
        "lien permanent",
        "lienpermanent",
        "permanenter link",
        "ligação permanente",
        "link permanente",
        "постоянная ссылка",
    }
)
# Canonical names of the namespaces other than articles (for a hint in unknown-title errors).
_OTHER_NAMESPACES = frozenset(
    {
        "talk",
        "user",
        "user talk",
        "wikipedia",
        "wikipedia talk",
        "project",
        "file",
        "image",
        "mediawiki",
        "template",
        "template talk",
        "help",
        "category",
        "category talk",
        "portal",
        "draft",
        "module",
    }
)
# Characters MediaWiki never allows in a title (Title::legalChars), and control characters.
_ILLEGAL_TITLE = re.compile(r"[\[\]{}|<>\x00-\x1f\x7f]")
# A URL's scheme (https:, mailto:, javascript:…), not a host name followed by a port.
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+-]*:(?!\d+(?:[/?#]|$))")
_ARTICLE_PATH = "/wiki/"
_SCRIPT_PATHS = ("/w/index.php", "/index.php")


class CitationError(WikiragError):
    """Why a citation could not be resolved.

    ``code`` is stable: ``malformed-url``, ``invalid-revision-id``, ``not-a-wikipedia-url``,
    ``not-an-article-url``, ``unknown-wiki``, ``unknown-title``, ``revision-not-indexed``,
    ``revision-deleted``, ``revision-hidden`` (the HTTP layer maps each to a status:
    :mod:`app.api.errors`). ``details`` holds what the message names (the indexed wikis,
    the stored revisions of the page…).
    """

    def __init__(self, code: str, message: str, **details: object) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details: dict[str, object] = dict(details)

    def as_dict(self) -> dict[str, object]:
        """The error as a JSON-ready object (``{"code", "message", "details"}``)."""
        return {"code": self.code, "message": self.message, "details": self.details}


class CitedPassage(BaseModel):
    """One stored passage of the cited revision, with its permalink to its section."""

    passage_id: str
    section: str = Field(description="Section headings from the top, joined by ' > '")
    section_path: list[str]
    anchor: str
    url: str = Field(description="Revision permalink with the section anchor")
    text: str


class SupersededBy(BaseModel):
    """The page's current revision, when it is newer than the one cited."""

    revision_id: int
    url: str = Field(description="Permanent link to the current revision")


class CitationRecord(BaseModel):
    """A cited revision as stored: where it is, its license and attribution, whether it is
    still the page's current revision, and its passages.

    ``fragment`` is the section fragment of the URL asked for (or of the redirect followed),
    decoded; ``redirected_from`` the title that redirected to this page.
    """

    wiki: str
    language: str
    page_id: int
    wikidata_id: str | None = Field(
        default=None, description="The page's Wikidata item (one article across languages)"
    )
    title: str
    revision_id: int
    revision_timestamp: str
    permalink: str = Field(description="Permanent link to the revision (no anchor)")
    history_url: str
    article_url: str = Field(description="The page's live article URL")
    license: LicenseInfo
    attribution: Attribution
    is_current: bool
    current_revision_id: int | None
    superseded_by: SupersededBy | None = Field(
        default=None, description="The page's current revision, when newer than this one"
    )
    passages: list[CitedPassage]
    trust: Trust = Field(description="The revision's credibility signals")
    fragment: str | None = None
    redirected_from: str | None = None


@dataclass(frozen=True, slots=True)
class _Target:
    """What a URL points at, before looking anything up."""

    wiki: str
    site: SiteInfo
    title: str | None = None
    revision_id: int | None = None
    page_id: int | None = None
    fragment: str | None = None


class CitationResolver:
    """Resolves citations against one passage store.

    >>> resolver = CitationResolver(store)                               # doctest: +SKIP
    >>> resolver.by_url("fr.wikipedia.org/wiki/Jos%C3%A9phine_Baker").page_id  # doctest: +SKIP
    27493
    """

    def __init__(self, store: PassageStore, *, language: str | None = None) -> None:
        """``language`` sets the language of attribution strings (default: each wiki's)."""
        self.store = store
        self.language = language

    # -- public -----------------------------------------------------------------------

    def by_revision(self, wiki: str, revision_id: int) -> CitationRecord:
        """The citation of revision ``revision_id`` of ``wiki`` (e.g. ``"enwiki"``)."""
        site = self._site(wiki)
        if isinstance(revision_id, bool) or not isinstance(revision_id, int) or revision_id < 1:
            raise CitationError(
                "invalid-revision-id",
                f"revision ids are positive integers, not {revision_id!r}",
                revision_id=revision_id,
            )
        revision = self.store.revision(site.wiki, revision_id)
        if revision is None:
            raise self._revision_not_indexed(site.wiki, revision_id, page=None)
        return self._record(site, revision)

    def by_url(self, url: str) -> CitationRecord:
        """The citation a Wikipedia URL points at: the revision of ``oldid`` or
        ``Special:PermanentLink``, else the current revision of the (redirected) page."""
        target = self._parse(url)
        if target.revision_id is not None:
            page = self._page_for_title(target) if target.title else None
            revision = self.store.revision(target.wiki, target.revision_id)
            if revision is None:
                raise self._revision_not_indexed(target.wiki, target.revision_id, page=page)
            return self._record(target.site, revision, fragment=target.fragment)
        redirected_from: str | None = None
        fragment = target.fragment
        if target.page_id is not None:
            page = self.store.page(target.wiki, target.page_id)
            if page is None:
                raise CitationError(
                    "unknown-title",
                    f"no page with id {target.page_id} in {target.wiki}",
                    wiki=target.wiki,
                    page_id=target.page_id,
                )
        else:
            page, redirected_from, redirect_fragment = self._resolve_title(target)
            fragment = fragment or redirect_fragment
        if page.current_revision_id is None:
            raise self._revision_not_indexed(target.wiki, None, page=page)
        revision = self.store.revision(target.wiki, page.current_revision_id)
        if revision is None:
            raise self._revision_not_indexed(target.wiki, page.current_revision_id, page=page)
        return self._record(
            target.site, revision, fragment=fragment, redirected_from=redirected_from
        )

    # -- building the record ----------------------------------------------------------

    def _record(
        self,
        site: SiteInfo,
        revision: RevisionRecord,
        *,
        fragment: str | None = None,
        redirected_from: str | None = None,
    ) -> CitationRecord:
        suppressed = self.store.revision_suppression(site.wiki, revision.revision_id)
        if suppressed is not None:
            # Suppressed content is never served, not even to cite it.
            raise CitationError(
                f"revision-{suppressed}",
                f"revision {revision.revision_id} of {site.wiki} is no longer available: "
                + ("its page was deleted" if suppressed == "deleted" else "its text was hidden"),
                wiki=site.wiki,
                revision_id=revision.revision_id,
                reason=suppressed,
            )
        page = self.store.page(site.wiki, revision.page_id)
        current = page.current_revision_id if page is not None else None
        passages = self.store.passages_of_revision(site.wiki, revision.revision_id)
        anchors = {p.anchor for p in passages if p.anchor}
        # The URL's fragment names a section of this revision: the attribution links to it.
        anchor = ""
        if fragment:
            wanted = fragment.replace(" ", "_")
            anchor = wanted if wanted in anchors else ""
        subject = AttributionSubject.from_revision(revision, site, anchor=anchor)
        attribution = build_attribution(subject, language=self.language)
        base = site.base_url
        return CitationRecord(
            wiki=site.wiki,
            language=site.language,
            page_id=revision.page_id,
            wikidata_id=page.wikidata_id if page is not None else None,
            title=revision.title,
            revision_id=revision.revision_id,
            revision_timestamp=revision.timestamp,
            permalink=revision_url(base, revision.title, revision.revision_id),
            history_url=history_url(base, revision.title),
            article_url=article_url(base, page.title if page is not None else revision.title),
            license=attribution.license,
            attribution=attribution,
            is_current=current == revision.revision_id,
            current_revision_id=current,
            superseded_by=(
                SupersededBy(
                    revision_id=current,
                    url=revision_url(base, page.title if page else revision.title, current),
                )
                if current is not None and current != revision.revision_id
                else None
            ),
            passages=[
                CitedPassage(
                    passage_id=p.passage_id,
                    section=" > ".join(p.section_path),
                    section_path=list(p.section_path),
                    anchor=p.anchor,
                    url=revision_url(base, p.title, p.revision_id, p.anchor),
                    text=p.text,
                )
                for p in passages
            ],
            trust=trust_of(
                revision.trust,
                revision_id=revision.revision_id,
                revision_timestamp=revision.timestamp,
                current_revision_id=current,
            ),
            fragment=fragment or None,
            redirected_from=redirected_from,
        )

    # -- lookups ----------------------------------------------------------------------

    def _sites(self) -> list[SiteInfo]:
        return self.store.wikis()

    def _site(self, wiki: str) -> SiteInfo:
        sites = self._sites()
        for site in sites:
            if site.wiki == wiki:
                return site
        raise CitationError(
            "unknown-wiki",
            f"wiki {wiki!r} is not indexed; indexed wikis: {_wiki_list(sites)}",
            wiki=wiki,
            indexed_wikis=[s.wiki for s in sites],
        )

    def _resolve_title(self, target: _Target) -> tuple[PageRecord, str | None, str | None]:
        """``(page, redirected from, redirect's fragment)`` for the title of ``target``."""
        assert target.title is not None
        resolved = self.store.resolve_title(
            target.wiki, target.title, first_letter_case=_first_letter_case(target.wiki)
        )
        if resolved is None:
            raise CitationError(
                "unknown-title",
                f"no article titled {_normalized(target)!r} in {target.wiki} (neither a page "
                f"nor a redirect in the index){_namespace_hint(_normalized(target))}",
                wiki=target.wiki,
                title=_normalized(target),
            )
        if resolved.page is None:
            chain = " → ".join([*resolved.redirects, resolved.target])
            raise CitationError(
                "unknown-title",
                f"{resolved.title!r} in {target.wiki} is a redirect ({chain}) to a page that is "
                "not in the index",
                wiki=target.wiki,
                title=resolved.title,
                redirect_target=resolved.target,
            )
        redirected_from = resolved.redirects[0] if resolved.redirects else None
        return resolved.page, redirected_from, resolved.fragment or None

    def _page_for_title(self, target: _Target) -> PageRecord | None:
        """The page a URL's title names, for error messages; None when it names none."""
        try:
            return self._resolve_title(target)[0]
        except CitationError:
            return None

    def _revision_not_indexed(
        self, wiki: str, revision_id: int | None, *, page: PageRecord | None
    ) -> CitationError:
        if page is not None:
            revisions = self.store.revisions_of(wiki, page.page_id)
            listed = ", ".join(
                f"{r.revision_id} ({r.timestamp[:10]}"
                + (", current)" if r.revision_id == page.current_revision_id else ")")
                for r in revisions
            )
            what = f"revision {revision_id} of {wiki}" if revision_id else "no revision"
            return CitationError(
                "revision-not-indexed",
                f"{what} is not in the index; the indexed revisions of {page.title!r} are: "
                f"{listed or 'none'}",
                wiki=wiki,
                revision_id=revision_id,
                title=page.title,
                indexed_revisions=[r.revision_id for r in revisions],
            )
        elsewhere = [
            s.wiki
            for s in self._sites()
            if s.wiki != wiki
            and revision_id is not None
            and self.store.has_revision(s.wiki, revision_id)
        ]
        hint = (
            f" (a revision {revision_id} is indexed in {', '.join(elsewhere)})" if elsewhere else ""
        )
        return CitationError(
            "revision-not-indexed",
            f"revision {revision_id} of {wiki} is not in the index{hint}",
            wiki=wiki,
            revision_id=revision_id,
        )

    # -- URL parsing ------------------------------------------------------------------

    def _parse(self, url: str) -> _Target:
        raw = url.strip() if isinstance(url, str) else ""
        if not raw:
            raise CitationError("malformed-url", "the URL is empty")
        if raw.startswith("//"):
            raw = "https:" + raw
        elif not _SCHEME.match(raw):  # "en.wikipedia.org/wiki/A?from=https://…" has none
            raw = "https://" + raw
        try:
            parts = urlsplit(raw)
            host = (parts.hostname or "").rstrip(".").lower()
            _ = parts.port  # raises ValueError on a bad port
        except ValueError as exc:
            raise CitationError("malformed-url", f"cannot parse {url!r}: {exc}", url=url) from exc
        if parts.scheme.lower() not in ("http", "https"):
            raise CitationError(
                "not-a-wikipedia-url",
                f"{url!r} uses the {parts.scheme}: scheme; Wikipedia URLs are http(s)",
                url=url,
            )
        if not host or " " in host:
            raise CitationError("malformed-url", f"{url!r} has no host name", url=url)
        host = _desktop_host(host)
        sites = self._sites()
        site = _site_by_host(sites).get(host)
        if site is None:
            if host in _PORTALS:
                raise CitationError(
                    "not-an-article-url",
                    f"{host} is a multilingual portal, not a wiki; use a language edition's "
                    "article URL such as https://en.wikipedia.org/wiki/Albert_Einstein",
                    url=url,
                )
            if any(host == d or host.endswith("." + d) for d in _WIKIMEDIA_DOMAINS):
                raise CitationError(
                    "unknown-wiki",
                    f"{host} is not indexed; indexed wikis: {_wiki_list(sites)}",
                    host=host,
                    indexed_wikis=[s.wiki for s in sites],
                )
            raise CitationError(
                "not-a-wikipedia-url",
                f"{host} is not a Wikipedia (Wikimedia) site; indexed wikis: {_wiki_list(sites)}",
                url=url,
                host=host,
            )
        try:
            query = parse_qs(parts.query, keep_blank_values=True, errors="strict")
            path = unquote(parts.path, errors="strict")
            fragment = unquote(parts.fragment, errors="strict") or None
        except UnicodeDecodeError as exc:
            raise CitationError(
                "malformed-url", f"{url!r} has percent-escapes that are not UTF-8: {exc}", url=url
            ) from exc
        params = {key: values[0] for key, values in query.items() if values}
        if "diff" in params:
            raise CitationError(
                "not-an-article-url",
                f"{url!r} is a diff between two revisions; cite one revision "
                "(…/w/index.php?title=…&oldid=…)",
                url=url,
            )
        path_title: str | None = None
        if path.startswith(_ARTICLE_PATH):
            path_title = path[len(_ARTICLE_PATH) :]
        elif path.startswith(tuple(p + "/" for p in _SCRIPT_PATHS)):
            path_title = path.split(".php/", 1)[1]
        elif path not in _SCRIPT_PATHS:
            raise CitationError(
                "not-an-article-url",
                f"{url!r} does not name an article (expected /wiki/Title, "
                "/w/index.php?title=Title[&oldid=N] or /w/index.php?oldid=N)",
                url=url,
            )
        title = params.get("title", path_title)
        if title is not None and "#" in title:
            title, _, in_title = title.partition("#")
            fragment = fragment or in_title or None
        target = _Target(wiki=site.wiki, site=site, fragment=fragment)
        if "oldid" in params:
            return replace(target, title=title, revision_id=_number(params["oldid"], "oldid", url))
        if "curid" in params:
            return replace(target, page_id=_number(params["curid"], "curid", url))
        if title is None or not normalize_title(title):
            raise CitationError(
                "not-an-article-url", f"{url!r} names no article (an empty title)", url=url
            )
        return self._special(replace(target, title=title), url)

    def _special(self, target: _Target, url: str) -> _Target:
        """Resolve ``Special:PermanentLink/N`` and ``Special:Redirect/…``; refuse other
        special pages; check the title is a legal one."""
        assert target.title is not None
        title = normalize_title(target.title)
        bad = _ILLEGAL_TITLE.search(title)
        if bad:
            raise CitationError(
                "malformed-url",
                f"{url!r}: the title {title!r} contains {bad.group()!r}, which MediaWiki "
                "never allows in titles",
                url=url,
            )
        prefix, colon, rest = title.partition(":")
        if not colon or prefix.strip().lower() not in _SPECIAL_NAMESPACES:
            return target
        name, _, argument = rest.strip().partition("/")
        key = name.replace("_", " ").strip().lower()
        if key in _PERMALINK_PAGES:
            return replace(target, title=None, revision_id=_number(argument, "revision id", url))
        if key == "redirect":
            kind, _, number = argument.partition("/")
            if kind == "revision":
                return replace(target, title=None, revision_id=_number(number, "revision id", url))
            if kind == "page":
                return replace(target, title=None, page_id=_number(number, "page id", url))
        raise CitationError(
            "not-an-article-url",
            f"{url!r} is the special page {title!r}, not an article",
            url=url,
        )


def _number(value: str, what: str, url: str) -> int:
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise CitationError(
            "malformed-url",
            f"{url!r}: the {what} must be a positive integer, not {value!r}",
            url=url,
        )
    return int(text)


def _site_by_host(sites: list[SiteInfo]) -> dict[str, SiteInfo]:
    """The stored sites by their desktop host name (a site without one is not reachable by
    URL)."""
    by_host: dict[str, SiteInfo] = {}
    for site in sites:
        site_host = urlsplit(site.base_url).hostname
        if site_host:
            by_host[_desktop_host(site_host.lower())] = site
    return by_host


def _desktop_host(host: str) -> str:
    """``en.m.wikipedia.org`` → ``en.wikipedia.org``: the mobile and zero hosts of a wiki
    are ``<language>.m.<project>.org`` and ``<language>.zero.<project>.org``."""
    labels = host.split(".")
    if len(labels) >= 4 and labels[1] in ("m", "zero"):
        del labels[1]
    return ".".join(labels)


def _first_letter_case(wiki: str) -> bool:
    """Every Wikimedia wiki upper-cases the first letter of titles, except Wiktionaries."""
    return not wiki.endswith("wiktionary")


def _normalized(target: _Target) -> str:
    return normalize_title(target.title or "", first_letter_case=_first_letter_case(target.wiki))


def _namespace_hint(title: str) -> str:
    prefix, colon, _ = title.partition(":")
    if colon and prefix.strip().lower() in _OTHER_NAMESPACES:
        return f"; {prefix}: pages are not articles and only articles are indexed"
    return ""


def _wiki_list(sites: list[SiteInfo]) -> str:
    if not sites:
        return "none (the store is empty)"
    return ", ".join(f"{s.wiki} ({urlsplit(s.base_url).hostname or s.base_url})" for s in sites)
