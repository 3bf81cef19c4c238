"""Attribution of real stored passages: every field, every language, license versions from
the stored revision, and HTML / Markdown escaping."""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest

from app.attribution.license import (
    LICENSE_SHORT_NAMES,
    TRANSLATIONS,
    Attribution,
    AttributionSubject,
    build_attribution,
    format_date,
    license_info,
    strings_for,
)
from indexer.models import License
from indexer.store import PassageRecord, PassageStore

ENWIKI = "https://en.wikipedia.org"
EINSTEIN_HISTORY = f"{ENWIKI}/w/index.php?title=Albert_Einstein&action=history"
BY_SA_3 = "https://creativecommons.org/licenses/by-sa/3.0/"
BY_SA_4 = "https://creativecommons.org/licenses/by-sa/4.0/"


@pytest.fixture(scope="module")
def store(sample_store: Path) -> Iterator[PassageStore]:
    """The session store ingested from every bundled real sample, opened read-only."""
    opened = PassageStore(sample_store, readonly=True)
    yield opened
    opened.close()


def _in_section(store: PassageStore, wiki: str, revision_id: int) -> PassageRecord:
    """The first passage of a revision that lies in a titled section (has an anchor)."""
    passages = store.passages_of_revision(wiki, revision_id)
    assert passages, f"{wiki} revision {revision_id} has no passages"
    return next(p for p in passages if p.anchor)


def _lead(store: PassageStore, wiki: str, revision_id: int) -> PassageRecord:
    passages = store.passages_of_revision(wiki, revision_id)
    return next(p for p in passages if not p.anchor)


def _anchor(anchor: str) -> str:
    return quote(anchor, safe="!$&'()*+,;=:@/?-._~")


class _Links(HTMLParser):
    """Collects ``(href, rel, title, text)`` of every link and the visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str, str]] = []
        self.text: list[str] = []
        self._open: dict[str, str] | None = None
        self._label: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag == "a", f"unexpected tag <{tag}>"
        assert self._open is None, "nested links"
        self._open = {k: v or "" for k, v in attrs}
        self._label = []

    def handle_endtag(self, tag: str) -> None:
        assert tag == "a" and self._open is not None
        attrs = self._open
        label = "".join(self._label)
        self.links.append((attrs["href"], attrs.get("rel", ""), attrs.get("title", ""), label))
        self._open = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._open is not None:
            self._label.append(data)


def _parse_html(fragment: str) -> _Links:
    parser = _Links()
    parser.feed(fragment)
    parser.close()
    return parser


# Markdown links: [label](destination), where the label may hold backslash escapes.
_MD_LINK = re.compile(r"\[((?:\\.|[^\\\]])*)\]\(([^()\s]*)\)")


def _md_links(markdown: str) -> list[tuple[str, str]]:
    return [(re.sub(r"\\(.)", r"\1", label), url) for label, url in _MD_LINK.findall(markdown)]


# --------------------------------------------------------------------------- English


def test_cc_by_sa_4_revision_every_field(store: PassageStore) -> None:
    record = _in_section(store, "enwiki", 1270870723)
    a = build_attribution(record)
    permalink = (
        f"{ENWIKI}/w/index.php?title=Albert_Einstein&oldid=1270870723#{_anchor(record.anchor)}"
    )
    assert a.title == "Albert Einstein"
    assert a.source == "Wikipedia, the free encyclopedia"
    assert a.url == permalink
    assert a.authors_url == EINSTEIN_HISTORY
    assert a.license.identifier == "CC-BY-SA-4.0"
    assert a.license.name == "Creative Commons Attribution-ShareAlike License 4.0"
    assert a.license.url == BY_SA_4
    assert a.license.short_name == "CC BY-SA 4.0"
    assert a.license.localized_name == "Creative Commons Attribution-ShareAlike 4.0 International"
    assert a.revision_id == 1270870723
    assert a.last_modified == "2025-01-21T17:03:22Z"
    assert a.modified == "excerpt; wiki markup removed"
    assert a.language == "en"
    assert a.text == (
        f'"Albert Einstein" by Wikipedia contributors ({EINSTEIN_HISTORY}), from Wikipedia, '
        f"the free encyclopedia, revision 1270870723 of 21 January 2025 ({permalink}), "
        f"licensed under CC BY-SA 4.0 ({BY_SA_4}). Excerpt; wiki markup removed."
    )
    html_permalink = permalink.replace("&", "&amp;")
    html_history = EINSTEIN_HISTORY.replace("&", "&amp;")
    assert a.html == (
        f'"<a href="{html_permalink}">Albert Einstein</a>" by '
        f'<a href="{html_history}">Wikipedia contributors</a>, from Wikipedia, the free '
        f'encyclopedia, <a href="{html_permalink}">revision 1270870723 of 21 January 2025</a>, '
        f'licensed under <a href="{BY_SA_4}" rel="license" title="Creative Commons '
        'Attribution-ShareAlike 4.0 International">CC BY-SA 4.0</a>. Excerpt; wiki markup '
        "removed."
    )
    md_permalink = permalink.replace("(", "%28").replace(")", "%29")
    assert a.markdown == (
        f'"[Albert Einstein]({md_permalink})" by [Wikipedia contributors]({EINSTEIN_HISTORY}), '
        f"from Wikipedia, the free encyclopedia, [revision 1270870723 of 21 January 2025]"
        f"({md_permalink}), licensed under [CC BY-SA 4.0]({BY_SA_4}). Excerpt; wiki markup "
        "removed."
    )


def test_lead_passage_links_to_the_revision_without_anchor(store: PassageStore) -> None:
    a = build_attribution(_lead(store, "enwiki", 1270870723))
    assert a.url == f"{ENWIKI}/w/index.php?title=Albert_Einstein&oldid=1270870723"
    assert "#" not in a.url


def test_cc_by_sa_3_revision_stated_by_the_source(store: PassageStore) -> None:
    """The realtime sample's older revision says CC BY-SA 3.0 in its license field."""
    record = _in_section(store, "enwiki", 1097822042)
    revision = store.revision("enwiki", 1097822042)
    assert revision is not None and revision.license_origin == "source"
    a = build_attribution(record)
    assert a.license.identifier == "CC-BY-SA-3.0"
    assert a.license.name == "Creative Commons Attribution Share Alike 3.0 Unported"
    assert a.license.url == BY_SA_3
    assert a.license.short_name == "CC BY-SA 3.0"
    assert "licensed under CC BY-SA 3.0 (https://creativecommons.org/licenses/by-sa/3.0/)." in (
        a.text
    )
    assert "4.0" not in a.text and "4.0" not in a.html and "4.0" not in a.markdown
    assert "revision 1097822042 of 12 July 2022" in a.text
    assert a.last_modified == "2022-07-12T19:43:49Z"
    assert a.url.startswith(f"{ENWIKI}/w/index.php?title=Albert_Einstein&oldid=1097822042#")


def test_xml_revision_license_comes_from_the_date_rule(store: PassageStore) -> None:
    revisions = store.revisions_of("enwiki", 736)
    xml = next(r for r in revisions if r.source.endswith(".xml.bz2"))
    assert xml.timestamp.startswith("2016-") and xml.license_origin.startswith("rule:auto")
    a = build_attribution(_in_section(store, "enwiki", xml.revision_id))
    assert a.license.identifier == "CC-BY-SA-3.0"
    assert a.license.name == xml.license.name
    assert f"revision {xml.revision_id} of 24 April 2016" in a.text
    assert f"CC BY-SA 3.0 ({BY_SA_3})" in a.text


# --------------------------------------------------------------------------- languages


def test_french_article(store: PassageStore) -> None:
    record = _in_section(store, "frwiki", 222515879)
    assert record.page_id == 27493 and record.title == "Joséphine Baker"
    a = build_attribution(record)
    base = "https://fr.wikipedia.org/w/index.php?title=Jos%C3%A9phine_Baker"
    permalink = f"{base}&oldid=222515879#{_anchor(record.anchor)}"
    history = f"{base}&action=history"
    assert a.url == permalink and a.authors_url == history
    assert a.source == "Wikipédia, l'encyclopédie libre"
    assert a.modified == "extrait ; balisage wiki supprimé"
    assert a.language == "fr"
    assert a.license.identifier == "CC-BY-SA-4.0"
    assert a.license.localized_name == (
        "Creative Commons Attribution – Partage dans les Mêmes Conditions 4.0"
    )
    assert a.last_modified == "2025-01-29T17:27:22Z"
    assert a.text == (
        f"«\u00a0Joséphine Baker\u00a0» par les contributeurs de Wikipédia ({history}), tiré "
        f"de Wikipédia, l'encyclopédie libre, révision 222515879 du 29 janvier 2025 "
        f"({permalink}), sous licence CC BY-SA 4.0 ({BY_SA_4}). "
        "Extrait ; balisage wiki supprimé."
    )
    assert "%C3%A9" in a.url and "é" not in a.url.split("#")[0]
    assert "Mêmes Conditions 4.0" in a.html  # the long name, as the license link's title


@pytest.mark.parametrize(
    ("wiki", "revision_id", "expected"),
    [
        (
            "dewiki",
            224705825,
            {
                "language": "de",
                "source": "Wikipedia, die freie Enzyklopädie",
                "modified": "Auszug; Wiki-Markup entfernt",
                "license": "CC-BY-SA-3.0",
                "localized": "Creative Commons Namensnennung – Weitergabe unter gleichen "
                "Bedingungen 3.0",
                "phrases": [
                    "„Albert Einstein“ von den Wikipedia-Autoren (",
                    "Version 224705825 vom 22. Juli 2022 (",
                    "lizenziert unter CC BY-SA 3.0 (",
                    "Auszug; Wiki-Markup entfernt.",
                ],
            },
        ),
        (
            "ptwiki",
            69455388,
            {
                "language": "pt",
                "source": "Wikipédia, a enciclopédia livre",
                "modified": "excerto; marcação wiki removida",
                "license": "CC-BY-SA-4.0",
                "localized": "Creative Commons Atribuição-CompartilhaIgual 4.0",
                "phrases": [
                    "“Portugal” por colaboradores da Wikipédia (",
                    "revisão 69455388 de 28 de janeiro de 2025 (",
                    "licença CC BY-SA 4.0 (",
                    "Excerto; marcação wiki removida.",
                ],
            },
        ),
        (
            "ruwiki",
            131059810,
            {
                "language": "ru",
                "source": "Википедия — свободная энциклопедия",
                "modified": "фрагмент; вики-разметка удалена",
                "license": "CC-BY-SA-3.0",
                "localized": "Creative Commons «Атрибуция — С сохранением условий» 3.0",
                "phrases": [
                    "«Squirrel», авторы: участники проекта Википедия (",
                    "версия 131059810 от 15 июня 2023 г. (",
                    "лицензия: CC BY-SA 3.0 (",
                    "Фрагмент; вики-разметка удалена.",
                ],
            },
        ),
        (
            "simplewiki",
            8368147,
            {
                "language": "simple",
                "source": "Simple English Wikipedia, the free encyclopedia",
                "modified": "excerpt; wiki markup removed",
                "license": "CC-BY-SA-3.0",
                "localized": "Creative Commons Attribution-ShareAlike 3.0 Unported",
                "phrases": [
                    '"Albert Einstein" by Wikipedia contributors (https://simple.wikipedia.org/',
                    "from Simple English Wikipedia, the free encyclopedia, revision 8368147 of "
                    "30 July 2022 (",
                    "licensed under CC BY-SA 3.0 (",
                    "Excerpt; wiki markup removed.",
                ],
            },
        ),
        (
            "enwikiversity",
            2254003,
            {
                "language": "en",
                "source": "Wikiversity",
                "modified": "excerpt; wiki markup removed",
                "license": "CC-BY-SA-3.0",
                "localized": "Creative Commons Attribution-ShareAlike 3.0 Unported",
                "phrases": [
                    '"Albert Einstein" by Wikiversity contributors (https://en.wikiversity.org/',
                    "from Wikiversity, revision 2254003 of 31 January 2021 (",
                ],
            },
        ),
    ],
)
def test_language_editions(
    store: PassageStore, wiki: str, revision_id: int, expected: dict[str, object]
) -> None:
    record = _in_section(store, wiki, revision_id)
    a = build_attribution(record)
    host = record.base_url
    assert a.language == expected["language"]
    assert a.source == expected["source"]
    assert a.modified == expected["modified"]
    assert a.license.identifier == expected["license"]
    assert a.license.localized_name == expected["localized"]
    assert a.license.url == record.license.url
    assert a.url.startswith(f"{host}/w/index.php?title=")
    assert a.url.endswith(f"&oldid={revision_id}#{_anchor(record.anchor)}")
    assert a.authors_url == f"{host}/w/index.php?title={quote(record.title.replace(' ', '_'))}" + (
        "&action=history"
    )
    phrases = expected["phrases"]
    assert isinstance(phrases, list)
    for phrase in phrases:
        assert phrase in a.text, (phrase, a.text)
    # TASL order in every format: title, authors (history), source, revision, license.
    for rendered in (a.text, a.html, a.markdown):
        position = 0
        for part in (
            record.title,
            "action=history",
            a.source,
            f"oldid={revision_id}",
            a.license.short_name,
        ):
            found = rendered.find(part, position)
            assert found >= position, (part, rendered)
            position = found + len(part)


def test_language_override_keeps_the_wikis_own_name(store: PassageStore) -> None:
    record = _in_section(store, "frwiki", 222515879)
    german = build_attribution(record, language="de")
    assert german.language == "de"
    assert german.modified == "Auszug; Wiki-Markup entfernt"
    assert german.source == "Wikipédia, l'encyclopédie libre"  # the source's own name
    assert german.text.startswith("„Joséphine Baker“ von den Wikipédia-Autoren (")
    assert build_attribution(record, language="pt-BR").language == "pt"
    fallback = build_attribution(record, language="xx")
    assert fallback.language == "en"
    assert fallback.modified == "excerpt; wiki markup removed"
    assert fallback.text.startswith('"Joséphine Baker" by Wikipédia contributors (')


def test_unknown_wiki_language_falls_back_to_english(store: PassageStore) -> None:
    record = dataclasses.replace(
        _in_section(store, "frwiki", 222515879), language="it", base_url="https://it.wikipedia.org"
    )
    a = build_attribution(record)
    assert a.language == "en"
    assert a.source == "Wikipedia, the free encyclopedia"
    assert a.text.startswith('"Joséphine Baker" by Wikipedia contributors (https://it.wikipedia')
    assert "revision 222515879 of 29 January 2025" in a.text


# --------------------------------------------------------------------------- every passage


def test_every_stored_passage_has_a_complete_attribution(store: PassageStore) -> None:
    sites = {site.wiki: site for site in store.wikis()}
    checked = 0
    for (wiki, page_id), _ in store.current_revisions():
        base = sites[wiki].base_url
        for revision in store.revisions_of(wiki, page_id):
            for record in store.passages_of_revision(wiki, revision.revision_id):
                a = build_attribution(record)
                checked += 1
                assert a.revision_id == record.revision_id == revision.revision_id
                assert f"&oldid={record.revision_id}" in a.url
                fragment = f"#{_anchor(record.anchor)}" if record.anchor else ""
                assert a.url.endswith(f"&oldid={record.revision_id}{fragment}")
                assert a.url.startswith(f"{base}/w/index.php?title=")
                assert a.authors_url.startswith(f"{base}/w/index.php?title=")
                assert a.authors_url.endswith("&action=history")
                assert (a.license.name, a.license.identifier, a.license.url) == (
                    revision.license.name,
                    revision.license.identifier,
                    revision.license.url,
                )
                assert a.last_modified == revision.timestamp
                assert a.title == record.title and record.title in a.text
                for url in (a.url, a.authors_url, a.license.url):
                    assert url in a.text
                    assert html.escape(url) in a.html
    assert checked == store.counts()["passages"]


# --------------------------------------------------------------------------- escaping


def test_html_escapes_titles_and_urls(store: PassageStore) -> None:
    record = dataclasses.replace(
        _in_section(store, "enwiki", 1270870723), title='AT&T <script>alert("x")</script>'
    )
    a = build_attribution(record)
    assert "<script>" not in a.html
    assert "AT&amp;T &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in a.html
    assert "&oldid=" not in a.html and "&amp;oldid=1270870723" in a.html
    parsed = _parse_html(a.html)
    hrefs = [href for href, *_ in parsed.links]
    assert hrefs == [a.url, a.authors_url, a.url, a.license.url]
    labels = [label for *_, label in parsed.links]
    assert labels[0] == record.title  # the title round-trips through the escaping
    assert labels[1] == "Wikipedia contributors"
    assert labels[3] == "CC BY-SA 4.0"
    assert parsed.links[3][1] == "license"
    visible = "".join(parsed.text)
    assert visible.startswith(f'"{record.title}" by Wikipedia contributors, from Wikipedia')
    # The permalink quotes the odd characters of the title.
    assert "title=AT%26T_%3Cscript%3Ealert%28" not in a.url  # parentheses stay as MediaWiki
    assert a.url.startswith(f"{ENWIKI}/w/index.php?title=AT%26T_%3Cscript%3Ealert(%22x%22)")
    assert "AT&T <script>" in a.text  # plain text is not escaped


def test_html_of_real_french_title_is_well_formed(store: PassageStore) -> None:
    a = build_attribution(_in_section(store, "frwiki", 222515879))
    parsed = _parse_html(a.html)
    assert [href for href, *_ in parsed.links] == [a.url, a.authors_url, a.url, a.license.url]
    assert parsed.links[0][3] == "Joséphine Baker"
    assert "l'encyclopédie libre" in a.html


def test_markdown_escapes_brackets_and_parentheses(store: PassageStore) -> None:
    page = store.find_pages("Abstract (law)", wiki="enwiki")
    assert page, "the XML sample has 'Abstract (law)'"
    revision = store.revisions_of("enwiki", page[0][1])[0]
    record = store.passages_of_revision("enwiki", revision.revision_id)[0]
    a = build_attribution(record)
    assert "[Abstract \\(law\\)](" in a.markdown
    assert "title=Abstract_%28law%29&oldid=" in a.markdown
    assert "title=Abstract_(law)&oldid=" in a.url  # the URL itself keeps MediaWiki's form
    links = _md_links(a.markdown)
    assert [label for label, _ in links] == [
        "Abstract (law)",
        "Wikipedia contributors",
        f"revision {revision.revision_id} of {format_date(revision.timestamp, 'en')}",
        "CC BY-SA 3.0",
    ]

    odd = dataclasses.replace(record, title="[Foo] *bar* _baz_ `q` <x> (y) \\ | ~ # !")
    md = build_attribution(odd).markdown
    assert md.startswith(
        '"[\\[Foo\\] \\*bar\\* \\_baz\\_ \\`q\\` \\<x\\> \\(y\\) \\\\ \\| \\~ \\# \\!]('
    )
    links = _md_links(md)
    assert links[0][0] == odd.title
    assert len(links) == 4
    assert all("(" not in url and ")" not in url for _, url in links)


# --------------------------------------------------------------------------- licenses


def test_unknown_license_identifier_uses_the_stored_name(store: PassageStore) -> None:
    stored = License(name="GNU Free Documentation License 1.2", identifier="GFDL-1.2", url="")
    record = dataclasses.replace(_in_section(store, "frwiki", 222515879), license=stored)
    a = build_attribution(record)
    assert a.license.identifier == "GFDL-1.2"
    assert a.license.short_name == a.license.localized_name == stored.name
    assert "sous licence GNU Free Documentation License 1.2. Extrait" in a.text
    assert "GNU Free Documentation License 1.2. Extrait" in a.html  # no link without a URL
    assert "sous licence GNU Free Documentation License 1.2. Extrait" in a.markdown
    with_url = dataclasses.replace(
        record, license=License(name="Foo License", identifier="Foo-1", url="https://foo/l")
    )
    assert "sous licence Foo License (https://foo/l)." in build_attribution(with_url).text


def test_license_info_localizes_known_licenses() -> None:
    lic = License(name="stored name", identifier="CC-BY-SA-4.0", url=BY_SA_4)
    assert license_info(lic, "ru").localized_name.startswith("Creative Commons «Атрибуция")
    assert license_info(lic, "xx").localized_name.endswith("4.0 International")
    assert license_info(lic, "fr").name == "stored name"  # the stored name is kept as is


# --------------------------------------------------------------------------- tables


def test_translation_tables_are_complete() -> None:
    for code in ("en", "simple", "fr", "de", "pt", "ru"):
        assert code in TRANSLATIONS
    for code, strings in TRANSLATIONS.items():
        for field in ("{title}", "{contributors}", "{source}", "{revision}", "{license}"):
            assert field in strings.sentence, (code, field)
        assert "{project}" in strings.contributors
        assert "{revision_id}" in strings.revision and "{date}" in strings.revision
        assert len(strings.months) == 12 and all(strings.months)
        # Exactly the licenses with a short name: a long name is found exactly when the
        # identifier is known (benchmarks/mutation.py relies on it).
        assert set(strings.licenses) == set(LICENSE_SHORT_NAMES) == {"CC-BY-SA-3.0", "CC-BY-SA-4.0"}


def test_dates_per_language() -> None:
    ts = "2025-01-21T17:03:22Z"
    assert format_date(ts, "en") == "21 January 2025"
    assert format_date(ts, "simple") == "21 January 2025"
    assert format_date(ts, "fr") == "21 janvier 2025"
    assert format_date("2025-03-01T00:00:00Z", "fr") == "1er mars 2025"
    assert format_date(ts, "de") == "21. Januar 2025"
    assert format_date(ts, "pt") == "21 de janeiro de 2025"
    assert format_date(ts, "ru") == "21 января 2025 г."
    assert format_date(ts, "xx") == "21 January 2025"
    assert format_date("not a date", "fr") == "not a date"
    assert strings_for("PT_br")[0] == "pt" and strings_for(None)[0] == "en"


# --------------------------------------------------------------------------- revisions


def test_revision_subject_matches_passage_attribution(store: PassageStore) -> None:
    record = _lead(store, "frwiki", 222515879)
    revision = store.revision("frwiki", 222515879)
    site = next(s for s in store.wikis() if s.wiki == "frwiki")
    assert revision is not None
    from_revision = build_attribution(AttributionSubject.from_revision(revision, site))
    assert from_revision == build_attribution(record)
    with_anchor = AttributionSubject.from_revision(revision, site, anchor="Jeunesse")
    assert build_attribution(with_anchor).url.endswith("&oldid=222515879#Jeunesse")
    enwiki = next(s for s in store.wikis() if s.wiki == "enwiki")
    with pytest.raises(ValueError, match="frwiki"):
        AttributionSubject.from_revision(revision, enwiki)


def test_attribution_is_a_json_response_model(store: PassageStore) -> None:
    a = build_attribution(_in_section(store, "ruwiki", 131059810))
    again = Attribution.model_validate_json(a.model_dump_json())
    assert again == a
    schema = Attribution.model_json_schema()
    assert {"title", "source", "url", "authors_url", "license", "text", "html", "markdown"} <= set(
        schema["properties"]
    )


# ------------------------------------------------------------- which project the source is
# A Wikipedia is known by its host when it has one, else by its site name; any other
# project is named by its site name, translated when the language has a local name for it.


@pytest.mark.parametrize(
    ("wiki", "base_url", "sitename", "source", "opening"),
    [
        (
            "enwiki",
            "https://en.wikipedia.org",
            "Enciclopedia",  # the host decides, whatever the site calls itself
            "Wikipedia, the free encyclopedia",
            '"Albert Einstein" by Wikipedia contributors (',
        ),
        (
            "enwiki",
            "https://wikipedia.org",
            "x",
            "Wikipedia, the free encyclopedia",
            '"Albert Einstein" by Wikipedia contributors (',
        ),
        (  # a look-alike host is not Wikipedia, even if it says so
            "enwiki",
            "https://wikipedia.org.evil.com",
            "Wikipedia",
            "Wikipedia",
            '"Albert Einstein" by Wikipedia contributors (',
        ),
        (
            "enwiki",
            "",
            " Wikipédia ",
            "Wikipedia, the free encyclopedia",
            '"Albert Einstein" by Wikipedia contributors (',
        ),
        (
            "enwiki",
            "",
            "WIKIPEDIA",
            "Wikipedia, the free encyclopedia",
            '"Albert Einstein" by Wikipedia contributors (',
        ),
        (
            "enwiki",
            "",
            "ВИКИПЕДИЯ",
            "Wikipedia, the free encyclopedia",
            '"Albert Einstein" by Wikipedia contributors (',
        ),
        (
            "enwiki",
            "",
            "Wikiversity",
            "Wikiversity",
            '"Albert Einstein" by Wikiversity contributors (',
        ),
        (
            "enwiki",
            "https://example.org",
            "  ",
            "Wikimedia",
            '"Albert Einstein" by Wikimedia contributors (',
        ),
        (
            "frwiki",
            "https://fr.wiktionary.org",
            "Wiktionary",
            "Wiktionnaire",
            "«\u00a0Joséphine Baker\u00a0» par les contributeurs de Wiktionnaire (",
        ),
        (
            "frwiki",
            "",
            "Wikipédia",
            "Wikipédia, l'encyclopédie libre",
            "«\u00a0Joséphine Baker\u00a0» par les contributeurs de Wikipédia (",
        ),
    ],
)
def test_the_source_is_named_from_the_host_then_the_site_name(
    store: PassageStore, wiki: str, base_url: str, sitename: str, source: str, opening: str
) -> None:
    revision = {"enwiki": 1270870723, "frwiki": 222515879}[wiki]
    record = dataclasses.replace(
        _in_section(store, wiki, revision), base_url=base_url, sitename=sitename
    )
    a = build_attribution(record)
    assert a.source == source
    assert a.text.startswith(opening + f"{base_url}/w/index.php?title="), a.text


def test_markdown_link_destinations_escape_blanks_and_angle_brackets(
    store: PassageStore,
) -> None:
    odd = License(name="Odd License", identifier="Odd-1", url="https://example.org/l icense<1>")
    record = dataclasses.replace(_in_section(store, "frwiki", 222515879), license=odd)
    a = build_attribution(record)
    assert "sous licence [Odd License](https://example.org/l%20icense%3C1%3E). Extrait" in (
        a.markdown
    )
    assert _md_links(a.markdown)[-1] == ("Odd License", "https://example.org/l%20icense%3C1%3E")


def test_a_language_tag_with_script_and_region_uses_its_primary_language() -> None:
    assert strings_for("de-Latn-AT")[0] == "de"
    assert strings_for("pt_BR")[0] == "pt"
    assert strings_for("  RU ")[0] == "ru"
    assert strings_for("")[0] == strings_for(None)[0] == "en"
