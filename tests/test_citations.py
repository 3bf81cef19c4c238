"""Citation lookups on a real store: every Wikipedia URL form, redirects, old revisions, and
each error with its code, status and message."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.api.errors import http_status
from app.attribution.citations import CitationError, CitationRecord, CitationResolver
from indexer.chunking import PageRef, chunk_sections
from indexer.models import CC_BY_SA_4, RawRevision, Section, SiteInfo
from indexer.store import PassageStore, normalize_title

EINSTEIN_CURRENT = 1270870723
EINSTEIN_OLD = 1097822042  # the realtime sample (2022)
EINSTEIN_XML = 716825343  # the XML sample (2016)
FR_BAKER = 222515879


@pytest.fixture(scope="module")
def store(sample_store: Path) -> Iterator[PassageStore]:
    """The session store ingested from every bundled real sample, opened read-only."""
    opened = PassageStore(sample_store, readonly=True)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def resolver(store: PassageStore) -> CitationResolver:
    return CitationResolver(store)


# --------------------------------------------------------------------------- URL forms

EINSTEIN_URLS = [
    "https://en.wikipedia.org/wiki/Albert_Einstein",
    "https://en.wikipedia.org/wiki/Albert_Einstein#Early_life",
    "https://en.wikipedia.org/w/index.php?title=Albert_Einstein&oldid=1270870723",
    "https://en.wikipedia.org/w/index.php?oldid=1270870723",
    "https://en.wikipedia.org/wiki/Special:PermanentLink/1270870723",
    "https://en.wikipedia.org/wiki/Special:Permalink/1270870723#Early_life",
    "https://en.wikipedia.org/wiki/Special:Redirect/revision/1270870723",
    "https://en.wikipedia.org/wiki/Albert_Einstein?oldid=1270870723",
    "https://en.wikipedia.org/w/index.php?title=Albert_Einstein",
    "https://en.wikipedia.org/w/index.php?title=Albert+Einstein&action=history",
    "https://en.wikipedia.org/w/index.php?curid=736",
    "https://en.wikipedia.org/wiki/Albert%20Einstein",
    "https://en.wikipedia.org/wiki/Albert%5FEinstein",
    "https://en.m.wikipedia.org/wiki/Albert_Einstein",
    "http://en.wikipedia.org/wiki/Albert_Einstein",
    "en.wikipedia.org/wiki/Albert_Einstein",
    "//en.wikipedia.org/wiki/Albert_Einstein",
    "  HTTPS://EN.WIKIPEDIA.ORG/wiki/Albert_Einstein  ",
    "https://en.wikipedia.org/wiki/albert_einstein",  # a stored redirect (Albert einstein)
    "https://en.wikipedia.org/wiki/Albert__Einstein_",
    "https://en.wikipedia.org/wiki/:Albert_Einstein",
    "https://en.wikipedia.org/wiki/Einstein",
    "https://en.m.wikipedia.org/wiki/Einstein_(physicist)",
    "https://en.wikipedia.org/wiki/Einstein%2C_Albert",
]


@pytest.mark.parametrize("url", EINSTEIN_URLS)
def test_every_url_form_resolves_to_the_current_einstein(
    resolver: CitationResolver, url: str
) -> None:
    record = resolver.by_url(url)
    assert (record.wiki, record.page_id, record.title) == ("enwiki", 736, "Albert Einstein")
    assert record.revision_id == EINSTEIN_CURRENT
    assert record.is_current and record.current_revision_id == EINSTEIN_CURRENT
    assert record == resolver.by_url(url)  # deterministic
    base = resolver.by_revision("enwiki", EINSTEIN_CURRENT)
    assert record.passages == base.passages
    assert record.license == base.license


def test_plain_url_is_the_same_record_as_the_revision(resolver: CitationResolver) -> None:
    by_url = resolver.by_url("https://en.wikipedia.org/wiki/Albert_Einstein")
    by_revision = resolver.by_revision("enwiki", EINSTEIN_CURRENT)
    assert by_url == by_revision


def test_record_fields(resolver: CitationResolver, store: PassageStore) -> None:
    record = resolver.by_revision("enwiki", EINSTEIN_CURRENT)
    assert record.language == "en"
    assert record.revision_timestamp == "2025-01-21T17:03:22Z"
    assert record.permalink == (
        "https://en.wikipedia.org/w/index.php?title=Albert_Einstein&oldid=1270870723"
    )
    assert record.history_url == (
        "https://en.wikipedia.org/w/index.php?title=Albert_Einstein&action=history"
    )
    assert record.article_url == "https://en.wikipedia.org/wiki/Albert_Einstein"
    assert record.license.identifier == "CC-BY-SA-4.0"
    assert record.license.url == "https://creativecommons.org/licenses/by-sa/4.0/"
    assert record.attribution.url == record.permalink
    assert record.attribution.authors_url == record.history_url
    assert record.attribution.license == record.license
    assert "revision 1270870723 of 21 January 2025" in record.attribution.text
    stored = store.passages_of_revision("enwiki", EINSTEIN_CURRENT)
    assert [p.passage_id for p in record.passages] == [p.passage_id for p in stored]
    assert len(record.passages) > 50
    for cited, original in zip(record.passages, stored, strict=True):
        assert cited.text == original.text
        assert cited.anchor == original.anchor
        assert cited.section_path == list(original.section_path)
        assert cited.section == " > ".join(original.section_path)
        assert cited.url.startswith(record.permalink)
        assert "&oldid=1270870723" in cited.url
        if original.anchor:
            assert "#" in cited.url and cited.url != record.permalink
        else:
            assert cited.url == record.permalink
    assert record.fragment is None and record.redirected_from is None
    again = CitationRecord.model_validate_json(record.model_dump_json())
    assert again == record


def test_fragment_is_noted_and_links_the_section_when_it_exists(
    resolver: CitationResolver,
) -> None:
    record = resolver.by_url(
        "https://en.wikipedia.org/wiki/Albert_Einstein#Childhood,_youth_and_education"
    )
    assert record.fragment == "Childhood,_youth_and_education"
    assert record.attribution.url == (
        "https://en.wikipedia.org/w/index.php?title=Albert_Einstein&oldid=1270870723"
        "#Childhood,_youth_and_education"
    )
    missing = resolver.by_url("https://en.wikipedia.org/wiki/Albert_Einstein#Early_life")
    assert missing.fragment == "Early_life"  # noted, though this revision has no such section
    assert missing.attribution.url == missing.permalink


def test_redirects_are_followed_through_stored_aliases(resolver: CitationResolver) -> None:
    record = resolver.by_url("https://en.wikipedia.org/wiki/Einstein")
    assert record.title == "Albert Einstein" and record.redirected_from == "Einstein"
    lower = resolver.by_url("https://en.wikipedia.org/wiki/albert_einstein")
    assert lower.redirected_from == "Albert einstein"
    simple = resolver.by_url("https://simple.wikipedia.org/wiki/E%3Dmc2")
    assert (simple.wiki, simple.title, simple.redirected_from) == (
        "simplewiki",
        "Albert Einstein",
        "E=mc2",
    )
    french = resolver.by_url("https://fr.wikipedia.org/wiki/Josephine_Baker")
    assert (french.wiki, french.page_id, french.redirected_from) == (
        "frwiki",
        27493,
        "Josephine Baker",
    )
    # The English Wikipedia has its own "Josephine Baker" page (not a redirect).
    english = resolver.by_url("https://en.wikipedia.org/wiki/Josephine_Baker")
    assert (english.wiki, english.page_id, english.redirected_from) == ("enwiki", 255083, None)


def test_xml_redirect_is_followed(resolver: CitationResolver, store: PassageStore) -> None:
    # "AynRand" → "Ayn Rand" (both in the XML sample).
    record = resolver.by_url("https://en.wikipedia.org/wiki/AynRand")
    assert record.title == "Ayn Rand" and record.redirected_from == "AynRand"
    assert store.find_pages("Ayn Rand", wiki="enwiki") == [("enwiki", record.page_id)]


@pytest.mark.parametrize(
    "url",
    [
        "https://fr.wikipedia.org/wiki/Jos%C3%A9phine_Baker",
        "https://fr.wikipedia.org/wiki/Joséphine_Baker",
        "https://fr.m.wikipedia.org/wiki/jos%C3%A9phine_baker".replace("baker", "Baker"),
        "https://fr.wikipedia.org/w/index.php?title=Jos%C3%A9phine_Baker&oldid=222515879",
        "https://fr.wikipedia.org/wiki/Sp%C3%A9cial:Lien_permanent/222515879",
        "fr.wikipedia.org/wiki/Jos%C3%A9phine_Baker#Jeunesse",
    ],
)
def test_french_article_urls(resolver: CitationResolver, url: str) -> None:
    record = resolver.by_url(url)
    assert (record.wiki, record.page_id, record.title) == ("frwiki", 27493, "Joséphine Baker")
    assert record.revision_id == FR_BAKER and record.is_current
    assert record.language == "fr"
    assert record.permalink == (
        "https://fr.wikipedia.org/w/index.php?title=Jos%C3%A9phine_Baker&oldid=222515879"
    )
    assert record.attribution.language == "fr"
    assert record.attribution.source == "Wikipédia, l'encyclopédie libre"
    assert "révision 222515879 du 29 janvier 2025" in record.attribution.text


@pytest.mark.parametrize(
    ("url", "wiki", "title", "revision_id"),
    [
        ("https://de.wikipedia.org/wiki/Einstein", "dewiki", "Albert Einstein", 224705825),
        (
            "https://de.wikipedia.org/wiki/Spezial:Permanenter_Link/224705825",
            "dewiki",
            "Albert Einstein",
            224705825,
        ),
        ("https://pt.wikipedia.org/wiki/Portugal", "ptwiki", "Portugal", 69455388),
        (
            "https://pt.m.wikipedia.org/wiki/Rep%C3%BAblica_Portuguesa",
            "ptwiki",
            "Portugal",
            69455388,
        ),
        ("https://ru.wikipedia.org/wiki/Squirrel", "ruwiki", "Squirrel", 131059810),
        (
            "https://simple.wikipedia.org/wiki/Albert_Einstein",
            "simplewiki",
            "Albert Einstein",
            8368147,
        ),
        (
            "https://en.wikiversity.org/wiki/Albert_Einstein",
            "enwikiversity",
            "Albert Einstein",
            2254003,
        ),
    ],
)
def test_other_wikis(
    resolver: CitationResolver, url: str, wiki: str, title: str, revision_id: int
) -> None:
    record = resolver.by_url(url)
    assert (record.wiki, record.title, record.revision_id) == (wiki, title, revision_id)
    assert record.is_current
    assert record.attribution.revision_id == revision_id


# --------------------------------------------------------------------------- old revisions


@pytest.mark.parametrize(
    "url",
    [
        "https://en.wikipedia.org/w/index.php?title=Albert_Einstein&oldid=1097822042",
        "https://en.wikipedia.org/w/index.php?oldid=1097822042",
        "https://en.m.wikipedia.org/wiki/Special:PermanentLink/1097822042",
        "https://en.wikipedia.org/wiki/Einstein?oldid=1097822042",
    ],
)
def test_old_revision_resolves_and_says_it_is_not_current(
    resolver: CitationResolver, url: str
) -> None:
    record = resolver.by_url(url)
    assert record.revision_id == EINSTEIN_OLD
    assert record.is_current is False
    assert record.current_revision_id == EINSTEIN_CURRENT
    assert record.license.identifier == "CC-BY-SA-3.0"
    assert record.revision_timestamp == "2022-07-12T19:43:49Z"
    assert record.permalink.endswith("&oldid=1097822042")
    assert all("&oldid=1097822042" in p.url for p in record.passages)
    assert "CC BY-SA 3.0" in record.attribution.text
    assert record == resolver.by_revision("enwiki", EINSTEIN_OLD)


def test_xml_revision_by_id(resolver: CitationResolver) -> None:
    record = resolver.by_revision("enwiki", EINSTEIN_XML)
    assert not record.is_current and record.current_revision_id == EINSTEIN_CURRENT
    assert record.license.identifier == "CC-BY-SA-3.0"
    assert record.revision_timestamp.startswith("2016-")


# --------------------------------------------------------------------------- errors


def _error(resolver: CitationResolver, url: str) -> CitationError:
    with pytest.raises(CitationError) as caught:
        resolver.by_url(url)
    return caught.value


def test_unknown_wiki_lists_the_indexed_wikis(resolver: CitationResolver) -> None:
    error = _error(resolver, "https://it.wikipedia.org/wiki/Albert_Einstein")
    assert (error.code, http_status(error.code)) == ("unknown-wiki", 404)
    assert "it.wikipedia.org is not indexed" in error.message
    for wiki in ("enwiki (en.wikipedia.org)", "frwiki (fr.wikipedia.org)", "simplewiki"):
        assert wiki in error.message
    assert error.details["indexed_wikis"] == [
        "dewiki",
        "enwiki",
        "enwikiversity",
        "frwiki",
        "ptwiki",
        "ruwiki",
        "simplewiki",
    ]
    other_project = _error(resolver, "https://en.wiktionary.org/wiki/squirrel")
    assert other_project.code == "unknown-wiki"
    with pytest.raises(CitationError) as caught:
        resolver.by_revision("itwiki", 1)
    assert caught.value.code == "unknown-wiki" and "'itwiki' is not indexed" in (
        caught.value.message
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://en.wikipedia.org/wiki/No_such_article_here", "no article titled 'No such"),
        ("https://en.wikipedia.org/wiki/Einstein_(disambiguation)", "no article titled"),
        ("https://fr.wikipedia.org/wiki/Albert_Einstein", "in frwiki"),
        ("https://en.wikipedia.org/wiki/Talk:Albert_Einstein", "only articles are indexed"),
        ("https://en.wikipedia.org/w/index.php?curid=999999999", "no page with id 999999999"),
    ],
)
def test_unknown_title(resolver: CitationResolver, url: str, expected: str) -> None:
    error = _error(resolver, url)
    assert (error.code, http_status(error.code)) == ("unknown-title", 404)
    assert expected in error.message


def test_redirect_to_a_page_that_is_not_indexed(resolver: CitationResolver) -> None:
    error = _error(resolver, "https://en.wikipedia.org/wiki/AccessibleComputing")
    assert error.code == "unknown-title"
    assert "redirect (AccessibleComputing → Computer accessibility)" in error.message
    assert "not in the index" in error.message
    assert error.details["redirect_target"] == "Computer accessibility"


def test_revision_not_indexed_lists_the_stored_revisions_of_the_page(
    resolver: CitationResolver,
) -> None:
    error = _error(
        resolver, "https://en.wikipedia.org/w/index.php?title=Albert_Einstein&oldid=123456"
    )
    assert (error.code, http_status(error.code)) == ("revision-not-indexed", 404)
    assert "revision 123456 of enwiki is not in the index" in error.message
    assert "'Albert Einstein'" in error.message
    assert "1270870723 (2025-01-21, current)" in error.message
    assert "1097822042 (2022-07-12)" in error.message and "716825343 (2016-04-24)" in (
        error.message
    )
    assert error.details["indexed_revisions"] == [EINSTEIN_XML, EINSTEIN_OLD, EINSTEIN_CURRENT]
    # Through a redirect as well.
    via_alias = _error(resolver, "https://en.wikipedia.org/wiki/Einstein?oldid=123456")
    assert via_alias.details["indexed_revisions"] == error.details["indexed_revisions"]
    # Without a title, the page is unknown.
    bare = _error(resolver, "https://en.wikipedia.org/w/index.php?oldid=123456")
    assert bare.code == "revision-not-indexed"
    assert bare.message == "revision 123456 of enwiki is not in the index"


def test_revision_not_indexed_by_revision(resolver: CitationResolver) -> None:
    with pytest.raises(CitationError) as caught:
        resolver.by_revision("frwiki", EINSTEIN_CURRENT)
    error = caught.value
    assert (error.code, http_status(error.code)) == ("revision-not-indexed", 404)
    assert "revision 1270870723 of frwiki is not in the index" in error.message
    assert "indexed in enwiki" in error.message  # a likely mix-up of wikis is named
    with pytest.raises(CitationError) as caught:
        resolver.by_revision("enwiki", 0)
    assert (caught.value.code, http_status(caught.value.code)) == ("invalid-revision-id", 400)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/wiki/Albert_Einstein", "example.com is not a Wikipedia"),
        ("https://en.wikipedia.org.evil.com/wiki/Albert_Einstein", "is not a Wikipedia"),
        ("https://notwikipedia.org/wiki/Albert_Einstein", "is not a Wikipedia"),
        ("ftp://en.wikipedia.org/wiki/Albert_Einstein", "uses the ftp: scheme"),
        ("mailto:someone@en.wikipedia.org", "uses the mailto: scheme"),
    ],
)
def test_not_a_wikipedia_url(resolver: CitationResolver, url: str, expected: str) -> None:
    error = _error(resolver, url)
    assert (error.code, http_status(error.code)) == ("not-a-wikipedia-url", 422)
    assert expected in error.message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.wikipedia.org/", "multilingual portal"),
        ("https://en.wikipedia.org/", "does not name an article"),
        ("https://en.wikipedia.org/w/api.php?action=query", "does not name an article"),
        ("https://en.wikipedia.org/wiki/", "names no article"),
        ("https://en.wikipedia.org/w/index.php", "names no article"),
        ("https://en.wikipedia.org/wiki/Special:Search?search=einstein", "special page"),
        ("https://en.wikipedia.org/w/index.php?diff=1270870723&oldid=1097822042", "a diff"),
    ],
)
def test_not_an_article_url(resolver: CitationResolver, url: str, expected: str) -> None:
    error = _error(resolver, url)
    assert (error.code, http_status(error.code)) == ("not-an-article-url", 422)
    assert expected in error.message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", "the URL is empty"),
        ("   ", "the URL is empty"),
        ("https://", "has no host name"),
        ("http://[::1/wiki/X", "cannot parse"),
        ("https://en.wikipedia.org:notaport/wiki/X", "cannot parse"),
        ("https://en.wikipedia.org/wiki/%E9t%E9", "not UTF-8"),
        ("https://en.wikipedia.org/w/index.php?oldid=abc", "the oldid must be a positive integer"),
        ("https://en.wikipedia.org/w/index.php?oldid=-5", "the oldid must be a positive integer"),
        ("https://en.wikipedia.org/wiki/Special:PermanentLink/x", "revision id must be"),
        ("https://en.wikipedia.org/wiki/A%3Cb%3E", "never allows in titles"),
        ("https://en.wikipedia.org/wiki/Foo%7Cbar", "never allows in titles"),
    ],
)
def test_malformed_url(resolver: CitationResolver, url: str, expected: str) -> None:
    error = _error(resolver, url)
    assert (error.code, http_status(error.code)) == ("malformed-url", 400)
    assert expected in error.message


def test_error_as_dict(resolver: CitationResolver) -> None:
    error = _error(resolver, "https://en.wikipedia.org/wiki/No_such_article_here")
    payload = error.as_dict()
    assert payload["code"] == "unknown-title"
    assert payload["message"] == error.message
    assert payload["details"] == {"wiki": "enwiki", "title": "No such article here"}
    assert str(error).startswith("unknown-title: ")


# --------------------------------------------------------------------------- store reads


def test_normalize_title() -> None:
    assert normalize_title("albert_einstein") == "Albert einstein"
    assert normalize_title("  Albert__Einstein\u00a0") == "Albert Einstein"
    assert normalize_title(":éclair") == "Éclair"
    assert normalize_title("iPhone", first_letter_case=False) == "iPhone"
    assert normalize_title("\u200eFoo\u200f bar") == "Foo bar"
    assert normalize_title("ßtraße") == "ßtraße"  # no two-letter upper case
    assert normalize_title("") == ""


def test_resolve_title_and_page(store: PassageStore) -> None:
    resolved = store.resolve_title("enwiki", "einstein")
    assert resolved is not None and resolved.page is not None
    assert (resolved.title, resolved.target, resolved.redirects) == (
        "Einstein",
        "Albert Einstein",
        ("Einstein",),
    )
    assert resolved.page.page_id == 736
    assert resolved.page.current_revision_id == EINSTEIN_CURRENT
    direct = store.resolve_title("frwiki", "Joséphine_Baker")
    assert direct is not None and direct.redirects == () and direct.page is not None
    assert direct.page.page_id == 27493
    assert store.resolve_title("enwiki", "No such article here") is None
    dangling = store.resolve_title("enwiki", "AccessibleComputing")
    assert dangling is not None and dangling.page is None
    assert dangling.target == "Computer accessibility"
    page = store.page("frwiki", 27493)
    assert page is not None and page.title == "Joséphine Baker" and page.namespace == 0
    assert store.page("frwiki", 1) is None
    assert store.page_by_title("enwiki", "Albert Einstein") == store.page("enwiki", 736)


# --------------------------------------------------------------------------- exact errors

ALL_WIKIS = (
    "dewiki (de.wikipedia.org), enwiki (en.wikipedia.org), enwikiversity (en.wikiversity.org), "
    "frwiki (fr.wikipedia.org), ptwiki (pt.wikipedia.org), ruwiki (ru.wikipedia.org), "
    "simplewiki (simple.wikipedia.org)"
)
EINSTEIN_REVISIONS = (
    "716825343 (2016-04-24), 1097822042 (2022-07-12), 1270870723 (2025-01-21, current)"
)
WIKTIONARY = SiteInfo(
    wiki="enwiktionary", base_url="https://en.wiktionary.org", language="en", sitename="Wiktionary"
)


@pytest.fixture(scope="module")
def extended_store(
    sample_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PassageStore]:
    """The sample store plus what the samples lack: a Wiktionary entry (lower-case first
    letter; its revision id is also frwiki's "Joséphine Baker") and a redirect to a section."""
    path = tmp_path_factory.mktemp("extended") / "store.sqlite"
    shutil.copyfile(sample_store, path)
    store = PassageStore(path)
    text = "squirrel: any of the rodents of the family Sciuridae."
    raw = RawRevision(
        site=WIKTIONARY,
        page_id=4242,
        title="squirrel",
        namespace=0,
        revision_id=FR_BAKER,
        timestamp="2024-11-02T10:00:00Z",
        wikitext=text,
        location="test",
        license=CC_BY_SA_4,
    )
    sections = [Section((), "", text, 0)]
    page = PageRef("enwiktionary", 4242, FR_BAKER, "squirrel", raw.timestamp)
    with store.transaction():
        store.add_revision(
            raw, CC_BY_SA_4, "source", sections, list(chunk_sections(sections, page)), source="t"
        )
        enwiki = next(s for s in store.wikis() if s.wiki == "enwiki")
        store.add_alias(
            enwiki, "Einstein's youth", "Albert Einstein#Childhood, youth and education", 0
        )
    store.close()
    opened = PassageStore(path, readonly=True)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def extended(extended_store: PassageStore) -> CitationResolver:
    return CitationResolver(extended_store)


def test_unknown_wiki_message_and_details_are_exact(resolver: CitationResolver) -> None:
    error = _error(resolver, "https://it.wikipedia.org/wiki/Albert_Einstein")
    assert error.message == f"it.wikipedia.org is not indexed; indexed wikis: {ALL_WIKIS}"
    assert error.details == {
        "host": "it.wikipedia.org",
        "indexed_wikis": [
            "dewiki",
            "enwiki",
            "enwikiversity",
            "frwiki",
            "ptwiki",
            "ruwiki",
            "simplewiki",
        ],
    }
    with pytest.raises(CitationError) as caught:
        resolver.by_revision("itwiki", 1)
    assert caught.value.message == f"wiki 'itwiki' is not indexed; indexed wikis: {ALL_WIKIS}"
    assert caught.value.details["wiki"] == "itwiki"


def test_an_empty_store_says_so(tmp_path: Path) -> None:
    store = PassageStore(tmp_path / "empty.sqlite")
    try:
        error = _error(CitationResolver(store), "https://en.wikipedia.org/wiki/Albert_Einstein")
        assert (error.code, http_status(error.code)) == ("unknown-wiki", 404)
        assert error.message == (
            "en.wikipedia.org is not indexed; indexed wikis: none (the store is empty)"
        )
        assert error.details == {"host": "en.wikipedia.org", "indexed_wikis": []}
    finally:
        store.close()


def test_revision_not_indexed_messages_and_details_are_exact(resolver: CitationResolver) -> None:
    url = "https://en.wikipedia.org/wiki/Einstein?oldid=123456"
    error = _error(resolver, url)
    assert error.message == (
        "revision 123456 of enwiki is not in the index; the indexed revisions of "
        f"'Albert Einstein' are: {EINSTEIN_REVISIONS}"
    )
    assert error.details == {
        "wiki": "enwiki",
        "revision_id": 123456,
        "title": "Albert Einstein",
        "indexed_revisions": [EINSTEIN_XML, EINSTEIN_OLD, EINSTEIN_CURRENT],
    }
    bare = _error(resolver, "https://en.wikipedia.org/w/index.php?oldid=123456")
    assert bare.details == {"wiki": "enwiki", "revision_id": 123456}
    with pytest.raises(CitationError) as caught:
        resolver.by_revision("dewiki", EINSTEIN_CURRENT)
    assert caught.value.message == (
        "revision 1270870723 of dewiki is not in the index (a revision 1270870723 is indexed in "
        "enwiki)"
    )
    assert caught.value.details == {"wiki": "dewiki", "revision_id": EINSTEIN_CURRENT}


def test_a_revision_id_indexed_in_two_other_wikis_names_both(extended: CitationResolver) -> None:
    with pytest.raises(CitationError) as caught:
        extended.by_revision("dewiki", FR_BAKER)
    assert caught.value.message == (
        "revision 222515879 of dewiki is not in the index (a revision 222515879 is indexed in "
        "enwiktionary, frwiki)"
    )


def test_wiktionary_titles_keep_their_lower_case_first_letter(
    extended: CitationResolver,
) -> None:
    record = extended.by_url("https://en.wiktionary.org/wiki/squirrel")
    assert (record.wiki, record.page_id, record.title) == ("enwiktionary", 4242, "squirrel")
    assert record.article_url == "https://en.wiktionary.org/wiki/squirrel"
    assert record.attribution.source == "Wiktionary"
    # Wikipedia upper-cases the first letter; Wiktionary does not.
    assert extended.by_url("https://en.wikipedia.org/wiki/squirrel").title == "Squirrel"
    error = _error(extended, "https://en.wiktionary.org/wiki/iPhone_case")
    assert error.message == (
        "no article titled 'iPhone case' in enwiktionary (neither a page nor a redirect in "
        "the index)"
    )
    assert error.details == {"wiki": "enwiktionary", "title": "iPhone case"}
    upper = _error(extended, "https://en.wiktionary.org/wiki/Squirrel")
    assert upper.code == "unknown-title"


def test_a_redirect_to_a_section_links_the_section(extended: CitationResolver) -> None:
    record = extended.by_url("https://en.wikipedia.org/wiki/Einstein%27s_youth")
    assert record.title == "Albert Einstein" and record.redirected_from == "Einstein's youth"
    assert record.fragment == "Childhood, youth and education"
    assert record.attribution.url == (
        "https://en.wikipedia.org/w/index.php?title=Albert_Einstein&oldid=1270870723"
        "#Childhood,_youth_and_education"
    )
    # The URL's own fragment wins over the redirect's.
    own = extended.by_url("https://en.wikipedia.org/wiki/Einstein%27s_youth#Personal_life")
    assert own.fragment == "Personal_life"


def test_redirect_to_a_page_not_indexed_message_and_details(resolver: CitationResolver) -> None:
    error = _error(resolver, "https://en.wikipedia.org/wiki/AccessibleComputing")
    assert error.message == (
        "'AccessibleComputing' in enwiki is a redirect (AccessibleComputing → Computer "
        "accessibility) to a page that is not in the index"
    )
    assert error.details == {
        "wiki": "enwiki",
        "title": "AccessibleComputing",
        "redirect_target": "Computer accessibility",
    }


@pytest.mark.parametrize(
    ("path", "hint"),
    [
        ("Talk:Albert_Einstein", "; Talk: pages are not articles and only articles are indexed"),
        ("Talk:Foo:Bar", "; Talk: pages are not articles and only articles are indexed"),
        ("Einstein:_A_Life", ""),
        ("Talk", ""),
    ],
)
def test_unknown_title_message_and_namespace_hint(
    resolver: CitationResolver, path: str, hint: str
) -> None:
    error = _error(resolver, f"https://en.wikipedia.org/wiki/{path}")
    title = path.replace("_", " ")
    assert error.message == (
        f"no article titled {title!r} in enwiki (neither a page nor a redirect in the index){hint}"
    )
    assert error.details == {"wiki": "enwiki", "title": title}


def test_a_special_page_with_a_colon_in_its_argument_is_refused(
    resolver: CitationResolver,
) -> None:
    url = "https://en.wikipedia.org/wiki/Special:Search/a:b"
    error = _error(resolver, url)
    assert (error.code, error.message) == (
        "not-an-article-url",
        f"{url!r} is the special page 'Special:Search/a:b', not an article",
    )
    assert error.details == {"url": url}


@pytest.mark.parametrize(
    ("path", "what", "value"),
    [
        ("w/index.php?oldid=0", "oldid", "0"),
        ("w/index.php?curid=x1", "curid", "x1"),
        ("wiki/Special:PermanentLink/-3", "revision id", "-3"),
        ("wiki/Special:Redirect/revision/x", "revision id", "x"),
        ("wiki/Special:Redirect/page/0", "page id", "0"),
        ("w/index.php?oldid=%D9%A3", "oldid", "٣"),  # an Arabic-Indic digit
    ],
)
def test_malformed_numbers_message_and_details(
    resolver: CitationResolver, path: str, what: str, value: str
) -> None:
    url = f"https://en.wikipedia.org/{path}"
    error = _error(resolver, url)
    assert (error.code, http_status(error.code)) == ("malformed-url", 400)
    assert error.message == f"{url!r}: the {what} must be a positive integer, not {value!r}"
    assert error.details == {"url": url}


def test_one_is_a_valid_id(resolver: CitationResolver) -> None:
    error = _error(resolver, "https://en.wikipedia.org/w/index.php?oldid=1")
    assert (error.code, error.message) == (
        "revision-not-indexed",
        "revision 1 of enwiki is not in the index",
    )
    page = _error(resolver, "https://en.wikipedia.org/w/index.php?curid=1")
    assert (page.code, page.message) == ("unknown-title", "no page with id 1 in enwiki")
    assert page.details == {"wiki": "enwiki", "page_id": 1}
    redirect = _error(resolver, "https://en.wikipedia.org/wiki/Special:Redirect/revision/1")
    assert redirect.message == "revision 1 of enwiki is not in the index"


def test_illegal_title_message_and_details(resolver: CitationResolver) -> None:
    url = "https://en.wikipedia.org/wiki/A%3Cb%3E"
    error = _error(resolver, url)
    assert error.message == (
        f"{url!r}: the title 'A<b>' contains '<', which MediaWiki never allows in titles"
    )
    assert error.details == {"url": url}


def test_an_unknown_error_code_is_a_bad_request() -> None:
    error = CitationError("something-else", "what went wrong", extra=1)
    assert (error.code, error.message, http_status(error.code)) == (
        "something-else",
        "what went wrong",
        400,
    )
    assert str(error) == "something-else: what went wrong"
    assert error.as_dict() == {
        "code": "something-else",
        "message": "what went wrong",
        "details": {"extra": 1},
    }
    assert http_status(CitationError("revision-deleted", "gone").code) == 410


def test_the_resolver_language_sets_the_attribution_language(store: PassageStore) -> None:
    german = CitationResolver(store, language="de").by_revision("frwiki", FR_BAKER)
    assert german.language == "fr"  # the wiki's language
    assert german.attribution.language == "de"
    assert german.attribution.text.startswith("„Joséphine Baker“ von den Wikipédia-Autoren (")
    assert german.license.localized_name == (
        "Creative Commons Namensnennung – Weitergabe unter gleichen Bedingungen 4.0"
    )


# ------------------------------------------------- every refusal and every URL part, exactly
# The error body is what a client shows or logs: its message and details are part of the
# contract, so each refusal is pinned whole (mutation testing found messages, details and
# URL forms that no test above looked at).

EN = "https://en.wikipedia.org"
NOT_UTF8 = "'utf-8' codec can't decode byte 0xe9 in position 0: unexpected end of data"


@pytest.mark.parametrize(
    ("url", "code", "message", "details"),
    [
        ("", "malformed-url", "the URL is empty", {}),
        ("https://", "malformed-url", "'https://' has no host name", {"url": "https://"}),
        (
            "https://en wikipedia.org/wiki/A",
            "malformed-url",
            "'https://en wikipedia.org/wiki/A' has no host name",
            {"url": "https://en wikipedia.org/wiki/A"},
        ),
        (
            "http://[::1/wiki/X",
            "malformed-url",
            "cannot parse 'http://[::1/wiki/X': Invalid IPv6 URL",
            {"url": "http://[::1/wiki/X"},
        ),
        (
            "ftp://en.wikipedia.org/wiki/A",
            "not-a-wikipedia-url",
            "'ftp://en.wikipedia.org/wiki/A' uses the ftp: scheme; Wikipedia URLs are http(s)",
            {"url": "ftp://en.wikipedia.org/wiki/A"},
        ),
        (
            "https://www.wikipedia.org/",
            "not-an-article-url",
            "www.wikipedia.org is a multilingual portal, not a wiki; use a language edition's "
            "article URL such as https://en.wikipedia.org/wiki/Albert_Einstein",
            {"url": "https://www.wikipedia.org/"},
        ),
        (
            "https://example.com/wiki/A",
            "not-a-wikipedia-url",
            f"example.com is not a Wikipedia (Wikimedia) site; indexed wikis: {ALL_WIKIS}",
            {"url": "https://example.com/wiki/A", "host": "example.com"},
        ),
        (  # one label: no mobile host to strip
            "https://localhost/wiki/A",
            "not-a-wikipedia-url",
            f"localhost is not a Wikipedia (Wikimedia) site; indexed wikis: {ALL_WIKIS}",
            {"url": "https://localhost/wiki/A", "host": "localhost"},
        ),
        (
            f"{EN}/wiki/Albert_Einstein#%E9",
            "malformed-url",
            f"'{EN}/wiki/Albert_Einstein#%E9' has percent-escapes that are not UTF-8: {NOT_UTF8}",
            {"url": f"{EN}/wiki/Albert_Einstein#%E9"},
        ),
        (
            f"{EN}/w/index.php?title=%E9",
            "malformed-url",
            f"'{EN}/w/index.php?title=%E9' has percent-escapes that are not UTF-8: {NOT_UTF8}",
            {"url": f"{EN}/w/index.php?title=%E9"},
        ),
        (  # a blank oldid is refused, not read as "no oldid" (the current revision)
            f"{EN}/w/index.php?title=Albert_Einstein&oldid=",
            "malformed-url",
            f"'{EN}/w/index.php?title=Albert_Einstein&oldid=': the oldid must be a positive "
            "integer, not ''",
            {"url": f"{EN}/w/index.php?title=Albert_Einstein&oldid="},
        ),
        (
            f"{EN}/w/index.php?diff=1270870723&oldid=1097822042",
            "not-an-article-url",
            f"'{EN}/w/index.php?diff=1270870723&oldid=1097822042' is a diff between two "
            "revisions; cite one revision (…/w/index.php?title=…&oldid=…)",
            {"url": f"{EN}/w/index.php?diff=1270870723&oldid=1097822042"},
        ),
        (
            f"{EN}/w/api.php",
            "not-an-article-url",
            f"'{EN}/w/api.php' does not name an article (expected /wiki/Title, "
            "/w/index.php?title=Title[&oldid=N] or /w/index.php?oldid=N)",
            {"url": f"{EN}/w/api.php"},
        ),
        (
            f"{EN}/wiki/",
            "not-an-article-url",
            f"'{EN}/wiki/' names no article (an empty title)",
            {"url": f"{EN}/wiki/"},
        ),
        (
            f"{EN}/wiki/Special:Redirect/revision/12/3",
            "malformed-url",
            f"'{EN}/wiki/Special:Redirect/revision/12/3': the revision id must be a positive "
            "integer, not '12/3'",
            {"url": f"{EN}/wiki/Special:Redirect/revision/12/3"},
        ),
        (  # the title after /w/index.php/ is everything after the first ".php/"
            f"{EN}/w/index.php/Foo.php/bar",
            "unknown-title",
            "no article titled 'Foo.php/bar' in enwiki (neither a page nor a redirect in the "
            "index)",
            {"wiki": "enwiki", "title": "Foo.php/bar"},
        ),
        (  # the first letter is upper-cased as on Wikipedia before it is reported
            f"{EN}/wiki/no_such_article_here",
            "unknown-title",
            "no article titled 'No such article here' in enwiki (neither a page nor a redirect "
            "in the index)",
            {"wiki": "enwiki", "title": "No such article here"},
        ),
    ],
)
def test_every_refusal_is_exact(
    resolver: CitationResolver, url: str, code: str, message: str, details: dict[str, object]
) -> None:
    error = _error(resolver, url)
    assert error.as_dict() == {"code": code, "message": message, "details": details}


def test_a_url_that_is_not_a_string_is_an_empty_url(resolver: CitationResolver) -> None:
    with pytest.raises(CitationError) as caught:
        resolver.by_url(None)  # type: ignore[arg-type]  # JSON null from a client
    assert caught.value.as_dict() == {
        "code": "malformed-url",
        "message": "the URL is empty",
        "details": {},
    }


@pytest.mark.parametrize(
    "url",
    [
        f"{EN}/w/index.php/Albert_Einstein",
        f"{EN}/index.php/Albert_Einstein",
        "https://en.zero.wikipedia.org/wiki/Albert_Einstein",
        "https://en.wikipedia.org./wiki/Albert_Einstein",
        f"{EN}/wiki/Special:Redirect/page/736",
        # No scheme, and "://" further on: still a Wikipedia URL, not an unknown scheme.
        "en.wikipedia.org/wiki/Albert_Einstein?from=https://example.com/",
    ],
)
def test_more_url_forms_resolve_to_the_current_einstein(
    resolver: CitationResolver, url: str
) -> None:
    record = resolver.by_url(url)
    assert (record.wiki, record.page_id, record.revision_id) == ("enwiki", 736, EINSTEIN_CURRENT)
    assert (record.fragment, record.redirected_from) == (None, None)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        (f"{EN}/w/index.php?oldid=1270870723#Early_life", "Early_life"),
        (f"{EN}/wiki/Special:PermanentLink/1270870723#Early_life", "Early_life"),
        (f"{EN}/w/index.php?title=Albert_Einstein%23Early_life", "Early_life"),
        (f"{EN}/w/index.php?title=Albert_Einstein%23Early_life%23x", "Early_life#x"),
        (f"{EN}/w/index.php?title=Albert_Einstein%23Early_life#Personal_life", "Personal_life"),
        (f"{EN}/w/index.php?title=Albert_Einstein%23", None),
        (f"{EN}/w/index.php?curid=736", None),
        (f"{EN}/wiki/Albert_Einstein", None),
    ],
)
def test_the_fragment_comes_from_the_url_then_from_the_title(
    resolver: CitationResolver, url: str, fragment: str | None
) -> None:
    record = resolver.by_url(url)
    assert (record.title, record.revision_id) == ("Albert Einstein", EINSTEIN_CURRENT)
    assert record.fragment == fragment
    assert record.redirected_from is None


def test_by_revision_refuses_what_is_not_a_positive_integer(resolver: CitationResolver) -> None:
    for value in (True, 0, -1, "5", 1.0):
        with pytest.raises(CitationError) as caught:
            resolver.by_revision("enwiki", value)  # type: ignore[arg-type]
        assert caught.value.as_dict() == {
            "code": "invalid-revision-id",
            "message": f"revision ids are positive integers, not {value!r}",
            "details": {"revision_id": value},
        }
    with pytest.raises(CitationError) as caught:
        resolver.by_revision("enwiki", 1)  # 1 is a valid id, just not indexed
    assert caught.value.code == "revision-not-indexed"
    with pytest.raises(CitationError) as caught:
        resolver.by_revision("itwiki", 1)
    assert caught.value.details == {
        "wiki": "itwiki",
        "indexed_wikis": [
            "dewiki",
            "enwiki",
            "enwikiversity",
            "frwiki",
            "ptwiki",
            "ruwiki",
            "simplewiki",
        ],
    }


def test_an_old_revision_names_the_revision_that_superseded_it(
    resolver: CitationResolver,
) -> None:
    old = resolver.by_revision("enwiki", EINSTEIN_OLD)
    assert old.superseded_by is not None
    assert old.superseded_by.model_dump() == {
        "revision_id": EINSTEIN_CURRENT,
        "url": f"{EN}/w/index.php?title=Albert_Einstein&oldid={EINSTEIN_CURRENT}",
    }
    assert resolver.by_revision("enwiki", EINSTEIN_CURRENT).superseded_by is None


RENAMED_OLD = 5  # an old revision saved under the page's former title


@pytest.fixture(scope="module")
def altered(sample_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the sample store where frwiki's "Joséphine Baker" was deleted, the 2022
    Einstein revision hidden, and an old revision of "Albert Einstein" saved under a former
    title ("Albert Einstien"), as a page move leaves it."""
    path = tmp_path_factory.mktemp("altered") / "store.sqlite"
    shutil.copyfile(sample_store, path)
    store = PassageStore(path)
    enwiki = next(s for s in store.wikis() if s.wiki == "enwiki")
    text = "Albert Einstien was a physicist."
    raw = RawRevision(
        site=enwiki,
        page_id=736,
        title="Albert Einstien",
        namespace=0,
        revision_id=RENAMED_OLD,
        timestamp="2001-11-12T00:00:00Z",
        wikitext=text,
        location="test",
        license=CC_BY_SA_4,
    )
    sections = [Section((), "", text, 0)]
    page = PageRef("enwiki", 736, RENAMED_OLD, "Albert Einstien", raw.timestamp)
    with store.transaction():
        store.add_revision(
            raw, CC_BY_SA_4, "source", sections, list(chunk_sections(sections, page)), source="t"
        )
        assert store.delete_page("frwiki", 27493)
        assert store.set_revision_visibility("enwiki", EINSTEIN_OLD, "hidden") == 736
    store.close()
    yield path


def test_suppressed_revisions_are_refused_with_the_reason(altered: Path) -> None:
    store = PassageStore(altered, readonly=True)
    try:
        resolver = CitationResolver(store)
        with pytest.raises(CitationError) as deleted:
            resolver.by_revision("frwiki", FR_BAKER)
        assert http_status(deleted.value.code) == 410
        assert deleted.value.as_dict() == {
            "code": "revision-deleted",
            "message": "revision 222515879 of frwiki is no longer available: its page was deleted",
            "details": {"wiki": "frwiki", "revision_id": FR_BAKER, "reason": "deleted"},
        }
        with pytest.raises(CitationError) as hidden:
            resolver.by_url(f"{EN}/w/index.php?oldid={EINSTEIN_OLD}")
        assert http_status(hidden.value.code) == 410
        assert hidden.value.as_dict() == {
            "code": "revision-hidden",
            "message": "revision 1097822042 of enwiki is no longer available: its text was hidden",
            "details": {"wiki": "enwiki", "revision_id": EINSTEIN_OLD, "reason": "hidden"},
        }
        # The page's other revisions stay citable.
        assert resolver.by_revision("enwiki", EINSTEIN_CURRENT).is_current
    finally:
        store.close()


def test_a_revision_saved_under_a_former_title_links_the_page_by_its_title_now(
    altered: Path,
) -> None:
    store = PassageStore(altered, readonly=True)
    try:
        record = CitationResolver(store).by_revision("enwiki", RENAMED_OLD)
    finally:
        store.close()
    assert record.title == "Albert Einstien"  # the title the revision was saved under
    assert record.permalink == f"{EN}/w/index.php?title=Albert_Einstien&oldid={RENAMED_OLD}"
    assert record.history_url == f"{EN}/w/index.php?title=Albert_Einstien&action=history"
    assert record.article_url == f"{EN}/wiki/Albert_Einstein"  # the page as it is named now
    assert record.superseded_by is not None
    assert record.superseded_by.url == (
        f"{EN}/w/index.php?title=Albert_Einstein&oldid={EINSTEIN_CURRENT}"
    )
    assert (record.is_current, record.current_revision_id) == (False, EINSTEIN_CURRENT)
