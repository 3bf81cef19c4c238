"""Tests of the source readers (MediaWiki XML, Wikimedia Enterprise) on the bundled samples."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import re
import tarfile
import tracemalloc
from collections.abc import Iterable
from pathlib import Path
from xml.sax.saxutils import unescape

import pytest

from indexer.models import RawRevision, SkippedItem
from indexer.sources.open import open_source
from indexer.sources.wme import EnterpriseSnapshotReader, parse_enterprise_article
from indexer.sources.xml_dump import MediaWikiDumpReader, SourceError, site_for_wiki

SAMPLES = Path(__file__).parent.parent / "data/samples"
ENWIKI_XML = SAMPLES / "enwiki-sample-pages-articles.xml.bz2"
TABLE_XML = SAMPLES / "enwiki-table-markup.xml.bz2"
SQUAD_XML = SAMPLES / "squad/squad-dev-corpus.xml.bz2"
WME = SAMPLES / "wme"
REALTIME = WME / "enwiki-realtime-sample.ndjson.gz"
WME_FILES = [*sorted(WME.glob("*_namespace_0.tar.gz")), REALTIME]

Item = RawRevision | SkippedItem


def revisions(items: Iterable[Item]) -> list[RawRevision]:
    return [item for item in items if isinstance(item, RawRevision)]


def skipped(items: Iterable[Item]) -> list[SkippedItem]:
    return [item for item in items if isinstance(item, SkippedItem)]


# --------------------------------------------------------------------------- helpers


def raw_pages(xml: str) -> list[dict[str, str | None]]:
    """An independent reading of an export's pages with plain regular expressions."""
    pages: list[dict[str, str | None]] = []
    for match in re.finditer(r"<page>(.*?)</page>", xml, re.S):
        body = match.group(1)
        head, _, revision = body.partition("<revision>")

        def first(pattern: str, text: str) -> str | None:
            found = re.search(pattern, text, re.S)
            return found.group(1) if found else None

        text = first(r"<text[^>]*>(.*?)</text>", revision)
        redirect = first(r'<redirect title="([^"]*)"', head)
        pages.append(
            {
                "title": unescape(first(r"<title>(.*?)</title>", head) or "", {"&quot;": '"'}),
                "ns": first(r"<ns>(\d+)</ns>", head),
                "page_id": first(r"<id>(\d+)</id>", head),
                "revision_id": first(r"^\s*<id>(\d+)</id>", revision),
                "parent_id": first(r"<parentid>(\d+)</parentid>", revision),
                "timestamp": first(r"<timestamp>(.*?)</timestamp>", revision),
                "sha1": first(r"<sha1>(.*?)</sha1>", revision),
                "redirect": unescape(redirect, {"&quot;": '"'}) if redirect is not None else None,
                "text": unescape(text, {"&quot;": '"'}) if text is not None else "",
            }
        )
    return pages


@pytest.fixture(scope="module")
def enwiki_xml() -> str:
    return bz2.decompress(ENWIKI_XML.read_bytes()).decode("utf-8")


@pytest.fixture(scope="module")
def enwiki_items() -> list[Item]:
    return list(MediaWikiDumpReader(ENWIKI_XML))


def write_bz2(path: Path, text: str) -> Path:
    path.write_bytes(bz2.compress(text.encode("utf-8")))
    return path


def wme_objects(path: Path) -> list[dict[str, object]]:
    """The objects of a WME file, read independently of the reader."""
    if path.name.endswith(".tar.gz"):
        objects: list[dict[str, object]] = []
        with tarfile.open(path, "r:gz") as archive:
            for member in archive.getmembers():
                member_file = archive.extractfile(member)
                assert member_file is not None
                objects += [json.loads(line) for line in member_file.read().splitlines()]
        return objects
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]


# --------------------------------------------------------------------------- site_for_wiki


@pytest.mark.parametrize(
    ("wiki", "base_url", "language", "sitename"),
    [
        ("enwiki", "https://en.wikipedia.org", "en", "Wikipedia"),
        ("frwiki", "https://fr.wikipedia.org", "fr", "Wikipedia"),
        ("simplewiki", "https://simple.wikipedia.org", "simple", "Wikipedia"),
        ("enwikiversity", "https://en.wikiversity.org", "en", "Wikiversity"),
        ("dewiktionary", "https://de.wiktionary.org", "de", "Wiktionary"),
        ("frwikisource", "https://fr.wikisource.org", "fr", "Wikisource"),
        ("itwikivoyage", "https://it.wikivoyage.org", "it", "Wikivoyage"),
        ("enwikibooks", "https://en.wikibooks.org", "en", "Wikibooks"),
        ("ruwikiquote", "https://ru.wikiquote.org", "ru", "Wikiquote"),
        ("eswikinews", "https://es.wikinews.org", "es", "Wikinews"),
        ("zh_min_nanwiki", "https://zh-min-nan.wikipedia.org", "zh-min-nan", "Wikipedia"),
    ],
)
def test_site_for_wiki(wiki: str, base_url: str, language: str, sitename: str) -> None:
    site = site_for_wiki(wiki)
    assert (site.wiki, site.base_url, site.language, site.sitename) == (
        wiki,
        base_url,
        language,
        sitename,
    )


@pytest.mark.parametrize("wiki", ["commonswiki", "wikidatawiki", "metawiki", "squadeval", ""])
def test_site_for_wiki_refuses_non_language_wikis(wiki: str) -> None:
    with pytest.raises(ValueError, match="database name"):
        site_for_wiki(wiki)


# --------------------------------------------------------------------------- XML: sample


def test_enwiki_sample_counts(enwiki_items: list[Item]) -> None:
    assert skipped(enwiki_items) == []
    revs = revisions(enwiki_items)
    assert all(rev.namespace == 0 for rev in revs)
    assert sum(not rev.is_redirect for rev in revs) == 106
    assert sum(rev.is_redirect for rev in revs) == 99


def test_enwiki_sample_stats() -> None:
    reader = MediaWikiDumpReader(ENWIKI_XML)
    count = sum(1 for _ in reader)
    assert count == 205
    assert reader.stats.pages_seen == 206
    assert reader.stats.filtered_namespace == 1
    assert reader.stats.revisions == 205
    assert reader.stats.skipped == 0


def test_enwiki_sample_namespace_4_on_request() -> None:
    reader = MediaWikiDumpReader(ENWIKI_XML, namespaces=frozenset({0, 4}))
    revs = revisions(reader)
    assert len(revs) == 206
    (project_page,) = [rev for rev in revs if rev.namespace == 4]
    assert project_page.title == "Wikipedia:Adding Wikipedia articles to Nupedia"
    assert project_page.page_id == 724
    assert project_page.redirect_target == "Wikipedia:Nupedia and Wikipedia"
    assert reader.stats.filtered_namespace == 0


def test_enwiki_sample_matches_raw_xml(enwiki_items: list[Item], enwiki_xml: str) -> None:
    expected = [page for page in raw_pages(enwiki_xml) if page["ns"] == "0"]
    revs = revisions(enwiki_items)
    assert len(expected) == len(revs) == 205
    for page, rev in zip(expected, revs, strict=True):
        assert str(rev.page_id) == page["page_id"]
        assert str(rev.revision_id) == page["revision_id"]
        assert rev.title == page["title"]
        assert rev.timestamp == page["timestamp"]
        assert rev.sha1 == page["sha1"]
        assert (str(rev.parent_id) if rev.parent_id is not None else None) == page["parent_id"]
        assert rev.redirect_target == page["redirect"]
        assert rev.wikitext == page["text"]
        assert rev.location == f"{ENWIKI_XML.name}: page {rev.page_id}"


def test_enwiki_sample_einstein_and_site(enwiki_items: list[Item]) -> None:
    by_title = {rev.title: rev for rev in revisions(enwiki_items)}
    einstein = by_title["Albert Einstein"]
    assert einstein.page_id == 736
    assert einstein.revision_id == 716825343
    assert einstein.timestamp.startswith("2016-")
    assert einstein.wikitext.startswith("{{")
    assert einstein.license is None
    assert by_title["Anarchism"].editor == "85.193.216.88"  # anonymous: the IP
    assert by_title["AccessibleComputing"].editor == "Paine Ellsworth"
    assert by_title["AccessibleComputing"].redirect_target == "Computer accessibility"
    site = einstein.site
    assert site.wiki == "enwiki"
    assert site.base_url == "https://en.wikipedia.org"
    assert site.language == "en"
    assert site.sitename == "Wikipedia"


def test_wiki_argument_overrides_siteinfo() -> None:
    rev = next(iter(MediaWikiDumpReader(ENWIKI_XML, wiki="simplewiki")))
    assert isinstance(rev, RawRevision)
    assert rev.site.wiki == "simplewiki"
    assert rev.site.base_url == "https://simple.wikipedia.org"
    assert rev.site.language == "simple"


def test_squad_corpus_keeps_its_siteinfo() -> None:
    revs = revisions(MediaWikiDumpReader(SQUAD_XML))
    assert len(revs) == 16
    assert revs[0].title == "Normans"
    assert revs[0].site.wiki == "squadeval"
    assert revs[0].site.base_url == "https://en.wikipedia.org"
    assert revs[0].site.language == "en"


def test_export_without_siteinfo_needs_wiki() -> None:
    with pytest.raises(SourceError, match="--wiki"):
        list(MediaWikiDumpReader(TABLE_XML))
    with pytest.raises(SourceError, match="<siteinfo>"):
        list(open_source(TABLE_XML))


def test_export_without_siteinfo_with_wiki() -> None:
    reader = MediaWikiDumpReader(TABLE_XML, wiki="enwiki")
    revs = revisions(reader)
    assert len(revs) == 5
    assert revs[0].title == "Constructive vote of no confidence"
    assert revs[0].page_id == 217916
    assert revs[0].revision_id == 807605030
    assert {rev.site.base_url for rev in revs} == {"https://en.wikipedia.org"}
    assert {rev.site.language for rev in revs} == {"en"}  # from xml:lang
    assert reader.stats.pages_seen == 5


def test_schema_0_11_and_several_revisions_per_page(tmp_path: Path) -> None:
    xml = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11"
 xml:lang="fr">
  <siteinfo><sitename>Wikipédia</sitename><dbname>frwiki</dbname>
    <base>https://fr.wikipedia.org/wiki/Wikip%C3%A9dia:Accueil_principal</base></siteinfo>
  <page><title>Calvi</title><ns>0</ns><id>105455</id>
    <revision><id>100</id><timestamp>2020-01-01T00:00:00Z</timestamp>
      <contributor><username>A</username><id>1</id></contributor>
      <text bytes="5" sha1="x" xml:space="preserve">un &amp; deux</text><sha1>abc</sha1>
    </revision>
    <revision><id>101</id><parentid>100</parentid><timestamp>2021-01-01T00:00:00Z</timestamp>
      <contributor deleted="deleted" />
      <text bytes="0" xml:space="preserve" />
    </revision>
    <revision><id>102</id><parentid>101</parentid><timestamp>2022-01-01T00:00:00Z</timestamp>
      <text deleted="deleted" />
    </revision>
  </page>
</mediawiki>"""
    path = tmp_path / "frwiki.xml"
    path.write_text(xml, encoding="utf-8")
    items = list(open_source(path))
    first, second, third = items
    assert isinstance(first, RawRevision) and isinstance(second, RawRevision)
    assert (first.revision_id, first.wikitext, first.editor, first.sha1) == (
        100,
        "un & deux",
        "A",
        "abc",
    )
    assert (second.revision_id, second.parent_id, second.wikitext, second.editor) == (
        101,
        100,
        "",
        None,
    )
    assert isinstance(third, SkippedItem) and third.reason == "text-deleted"
    assert first.site.wiki == "frwiki"
    assert first.site.base_url == "https://fr.wikipedia.org"
    assert first.site.language == "fr"
    assert first.site.sitename == "Wikipédia"


def test_multistream_bz2(tmp_path: Path, enwiki_xml: str) -> None:
    first_page = enwiki_xml.index("  <page>")
    end = enwiki_xml.rindex("</page>") + len("</page>\n")
    header, body, footer = enwiki_xml[:first_page], enwiki_xml[first_page:end], enwiki_xml[end:]
    pages = re.findall(r"  <page>.*?</page>\n", body, re.S)
    assert "".join(pages) == body
    streams = [bz2.compress(header.encode())]
    streams += [bz2.compress("".join(pages[i : i + 20]).encode()) for i in range(0, len(pages), 20)]
    streams.append(bz2.compress(footer.encode()))
    path = tmp_path / "enwiki-multistream.xml.bz2"
    path.write_bytes(b"".join(streams))
    assert len(streams) == 13
    original = revisions(MediaWikiDumpReader(ENWIKI_XML))
    multistream = revisions(MediaWikiDumpReader(path))
    assert [r.revision_id for r in multistream] == [r.revision_id for r in original]
    assert [r.wikitext for r in multistream] == [r.wikitext for r in original]


def test_memory_does_not_grow_with_dump_size(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    text = "Lorem ipsum dolor sit amet. " * 2400  # ~67 kB per revision
    with path.open("w", encoding="utf-8") as out:
        out.write('<mediawiki xml:lang="en"><siteinfo><dbname>enwiki</dbname></siteinfo>\n')
        for page_id in range(1, 301):
            out.write(
                f"<page><title>P{page_id}</title><ns>0</ns><id>{page_id}</id><revision>"
                f"<id>{page_id}</id><timestamp>2020-01-01T00:00:00Z</timestamp>"
                f'<text xml:space="preserve">{text}</text></revision></page>\n'
            )
        out.write("</mediawiki>\n")
    total = 0
    tracemalloc.start()
    try:
        for item in MediaWikiDumpReader(path):
            assert isinstance(item, RawRevision)
            total += len(item.wikitext)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 20_000_000
    assert peak < 4_000_000, f"peak {peak} bytes for {total} characters read"


# --------------------------------------------------------------------------- XML: bad input


def test_truncated_bz2(tmp_path: Path, enwiki_xml: str) -> None:
    data = ENWIKI_XML.read_bytes()
    path = tmp_path / "half.xml.bz2"
    path.write_bytes(data[: len(data) // 2])
    items = list(MediaWikiDumpReader(path))
    bad = skipped(items)
    assert len(bad) == 1
    assert items[-1] is bad[0]
    assert bad[0].reason == "truncated-bz2"
    assert bad[0].source == str(path)
    match = re.fullmatch(r"half\.xml\.bz2: after page (\d+), line (\d+)", bad[0].location)
    assert match is not None, bad[0].location
    revs = revisions(items)
    assert len(revs) > 50
    full = revisions(MediaWikiDumpReader(ENWIKI_XML))
    assert [r.revision_id for r in revs] == [r.revision_id for r in full[: len(revs)]]
    assert int(match.group(1)) == revs[-1].page_id
    # the reported line is past the end of the last page read, and inside the document
    last_page_end = enwiki_xml.index("</page>", enwiki_xml.index(f"<id>{revs[-1].page_id}</id>"))
    assert enwiki_xml.count("\n", 0, last_page_end) < int(match.group(2))
    assert int(match.group(2)) <= enwiki_xml.count("\n") + 1


def test_truncated_gzip_xml(tmp_path: Path, enwiki_xml: str) -> None:
    data = gzip.compress(enwiki_xml.encode("utf-8"), compresslevel=1)
    path = tmp_path / "half.xml.gz"
    path.write_bytes(data[: len(data) // 2])
    items = list(open_source(path))
    (bad,) = skipped(items)
    assert items[-1] is bad
    assert bad.reason == "truncated-gzip"
    revs = revisions(items)
    assert len(revs) > 50
    assert bad.location.startswith(f"half.xml.gz: after page {revs[-1].page_id}, line ")


def test_corrupt_bz2(tmp_path: Path) -> None:
    path = tmp_path / "garbage.xml.bz2"
    path.write_bytes(b"BZh9" + bytes(range(256)) * 4)
    items = list(MediaWikiDumpReader(path))
    assert [(type(i).__name__, getattr(i, "reason", None), i.location) for i in items] == [
        ("SkippedItem", "corrupt-bz2", "garbage.xml.bz2: before the first page, line 1")
    ]


def test_malformed_page_id_is_skipped(tmp_path: Path, enwiki_xml: str) -> None:
    broken = enwiki_xml.replace(
        "<title>Anarchism</title>\n    <ns>0</ns>\n    <id>12</id>",
        "<title>Anarchism</title>\n    <ns>0</ns>\n    <id>abc</id>",
    )
    assert broken != enwiki_xml
    path = tmp_path / "bad-id.xml"
    path.write_text(broken, encoding="utf-8")
    reader = MediaWikiDumpReader(path)
    items = list(reader)
    bad = skipped(items)
    assert len(bad) == 1
    assert bad[0].reason == "malformed-page"
    assert bad[0].location == 'bad-id.xml: page "Anarchism"'
    assert "abc" in bad[0].detail
    revs = revisions(items)
    assert len(revs) == 204
    assert "Anarchism" not in {r.title for r in revs}
    assert items.index(bad[0]) == 1  # after AccessibleComputing, before the rest
    assert reader.stats.pages_seen == 206


def test_revision_without_timestamp_or_id_is_skipped(tmp_path: Path, enwiki_xml: str) -> None:
    broken = enwiki_xml.replace("<id>716825343</id>", "", 1)  # Einstein's revision id
    anarchism = broken.index("<revision>", broken.index("<id>12</id>"))
    broken = broken[:anarchism] + re.sub(
        r"<timestamp>[^<]*</timestamp>", "", broken[anarchism:], count=1
    )
    path = write_bz2(tmp_path / "bad-rev.xml", broken)  # bz2 content, recognised by magic
    items = list(MediaWikiDumpReader(path))
    bad = skipped(items)
    assert [(b.reason, b.location) for b in bad] == [
        ("malformed-page", "bad-rev.xml: page 12"),
        ("malformed-page", "bad-rev.xml: page 736"),
    ]
    assert "timestamp" in bad[0].detail
    assert "revision id" in bad[1].detail
    assert len(revisions(items)) == 203


def test_xml_cut_mid_page(tmp_path: Path, enwiki_xml: str) -> None:
    cut = enwiki_xml.index("<title>Albert Einstein</title>") + 200
    path = tmp_path / "cut.xml"
    path.write_text(enwiki_xml[:cut], encoding="utf-8")
    items = list(MediaWikiDumpReader(path))
    bad = skipped(items)
    assert len(bad) == 1 and items[-1] is bad[0]
    assert bad[0].reason == "malformed-xml"
    revs = revisions(items)
    expected = [p for p in raw_pages(enwiki_xml[:cut]) if p["ns"] == "0"]
    assert [str(r.revision_id) for r in revs] == [p["revision_id"] for p in expected]
    assert "Albert Einstein" not in {r.title for r in revs}
    line = enwiki_xml.count("\n", 0, cut) + 1
    assert bad[0].location == f"cut.xml: after page {revs[-1].page_id}, line {line}"


def test_malformed_xml_in_the_middle(tmp_path: Path) -> None:
    xml = (
        '<mediawiki xml:lang="en">\n<siteinfo><dbname>enwiki</dbname></siteinfo>\n'
        "<page><title>A</title><ns>0</ns><id>1</id><revision><id>10</id>"
        "<timestamp>2020-01-01T00:00:00Z</timestamp><text>a</text></revision></page>\n"
        "<page><title>B</title><ns>0</ns><id>2</id><revision><id>20</id>\n"
        "<timestamp>2020-01-01T00:00:00Z</oops></revision></page>\n"
        "<page><title>C</title><ns>0</ns><id>3</id><revision><id>30</id>"
        "<timestamp>2020-01-01T00:00:00Z</timestamp><text>c</text></revision></page>\n"
        "</mediawiki>\n"
    )
    path = tmp_path / "mismatch.xml"
    path.write_text(xml, encoding="utf-8")
    items = list(MediaWikiDumpReader(path))
    assert [r.page_id for r in revisions(items)] == [1]
    (bad,) = skipped(items)
    assert bad.reason == "malformed-xml"
    assert bad.location == "mismatch.xml: after page 1, line 5"


def test_billion_laughs_is_refused(tmp_path: Path) -> None:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    xml = (
        f'<?xml version="1.0"?>\n<!DOCTYPE mediawiki [{entities}]>\n'
        '<mediawiki xml:lang="en"><siteinfo><dbname>enwiki</dbname></siteinfo>'
        "<page><title>A</title><ns>0</ns><id>1</id><revision><id>1</id>"
        "<timestamp>2020-01-01T00:00:00Z</timestamp><text>&lol9;</text></revision></page>"
        "</mediawiki>"
    )
    path = tmp_path / "lol.xml"
    path.write_text(xml, encoding="utf-8")
    items = list(MediaWikiDumpReader(path))
    assert len(items) == 1
    assert isinstance(items[0], SkippedItem)
    assert items[0].reason == "unsafe-xml"
    assert items[0].location == "lol.xml: before the first page, line 2"


def test_external_entity_is_refused(tmp_path: Path) -> None:
    xml = (
        '<!DOCTYPE mediawiki [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        '<mediawiki xml:lang="en"><siteinfo><dbname>enwiki</dbname></siteinfo>'
        "<page><title>A</title><ns>0</ns><id>1</id><revision><id>1</id>"
        "<timestamp>2020-01-01T00:00:00Z</timestamp><text>&x;</text></revision></page>"
        "</mediawiki>"
    )
    path = tmp_path / "xxe.xml"
    path.write_text(xml, encoding="utf-8")
    items = list(MediaWikiDumpReader(path))
    assert [(type(i), getattr(i, "reason", None)) for i in items] == [(SkippedItem, "unsafe-xml")]


def test_not_a_mediawiki_export(tmp_path: Path) -> None:
    path = tmp_path / "other.xml"
    path.write_text("<rss><channel/></rss>", encoding="utf-8")
    with pytest.raises(SourceError, match="not a MediaWiki XML export"):
        list(MediaWikiDumpReader(path))


# --------------------------------------------------------------------------- WME: samples


@pytest.mark.parametrize("path", WME_FILES, ids=lambda p: p.name)
def test_wme_samples_match_source_json(path: Path) -> None:
    expected = wme_objects(path)
    reader = EnterpriseSnapshotReader(path)
    items = list(reader)
    assert skipped(items) == []
    revs = revisions(items)
    assert len(revs) == len(expected) > 0
    wiki = path.name.split("_")[0].split("-")[0]
    for obj, rev in zip(expected, revs, strict=True):
        version = obj["version"]
        assert isinstance(version, dict)
        assert rev.revision_id == version["identifier"]
        assert rev.page_id == obj["identifier"]
        assert rev.title == obj["name"]
        assert rev.timestamp == obj["date_modified"]
        license_list = obj["license"]
        assert isinstance(license_list, list)
        assert rev.license is not None
        assert rev.license.identifier == license_list[0]["identifier"]
        assert rev.license.name == license_list[0]["name"]
        assert rev.license.url == license_list[0]["url"]
        assert rev.site.wiki == wiki
        in_language = obj["in_language"]
        assert isinstance(in_language, dict)
        assert rev.site.language == in_language["identifier"]
        assert rev.site.base_url == re.sub(r"^(https://[^/]+)/.*$", r"\1", str(obj["url"]))
        body = obj["article_body"]
        assert isinstance(body, dict)
        assert rev.wikitext == body["wikitext"]
    assert reader.stats.revisions == len(expected)


@pytest.mark.parametrize(
    ("name", "wiki", "language", "base_url"),
    [
        ("enwiki_namespace_0.tar.gz", "enwiki", "en", "https://en.wikipedia.org"),
        ("frwiki_namespace_0.tar.gz", "frwiki", "fr", "https://fr.wikipedia.org"),
        ("dewiki_namespace_0.tar.gz", "dewiki", "de", "https://de.wikipedia.org"),
        ("ptwiki_namespace_0.tar.gz", "ptwiki", "pt", "https://pt.wikipedia.org"),
        ("ruwiki_namespace_0.tar.gz", "ruwiki", "ru", "https://ru.wikipedia.org"),
        ("simplewiki_namespace_0.tar.gz", "simplewiki", "simple", "https://simple.wikipedia.org"),
        ("enwikiversity_namespace_0.tar.gz", "enwikiversity", "en", "https://en.wikiversity.org"),
        ("enwiki-realtime-sample.ndjson.gz", "enwiki", "en", "https://en.wikipedia.org"),
    ],
)
def test_wme_sites(name: str, wiki: str, language: str, base_url: str) -> None:
    sites = {rev.site for rev in revisions(open_source(WME / name))}
    assert {(s.wiki, s.language, s.base_url) for s in sites} == {(wiki, language, base_url)}


def test_wme_enwiki_details() -> None:
    revs = revisions(EnterpriseSnapshotReader(WME / "enwiki_namespace_0.tar.gz"))
    einstein = revs[0]
    assert (einstein.title, einstein.page_id, einstein.revision_id) == (
        "Albert Einstein",
        736,
        1270870723,
    )
    assert einstein.parent_id == 1270869652
    assert einstein.editor == "Remsense"
    assert einstein.wikidata_id == "Q937"
    assert "Einstein" in einstein.aliases
    assert einstein.license is not None and einstein.license.identifier == "CC-BY-SA-4.0"
    assert einstein.location == ("enwiki_namespace_0.tar.gz:enwiki_namespace_0_0.ndjson: line 1")
    squirrel = revs[4]
    assert squirrel.title == "Squirrel"
    assert squirrel.license is not None and squirrel.license.identifier == "CC-BY-SA-3.0"


def test_wme_realtime_sample() -> None:
    (rev,) = revisions(open_source(REALTIME))
    assert (rev.page_id, rev.revision_id) == (736, 1097822042)
    assert rev.timestamp == "2022-07-12T19:43:49Z"
    assert rev.site.base_url == "https://en.wikipedia.org"  # no is_part_of.url: from url
    # taken from the source as is (the file states 3.0)
    assert rev.license is not None and rev.license.identifier == "CC-BY-SA-3.0"
    assert rev.location == "enwiki-realtime-sample.ndjson.gz: line 1"


# --------------------------------------------------------------------------- WME: objects


def minimal_article(**overrides: object) -> dict[str, object]:
    obj: dict[str, object] = {
        "name": "Calvi",
        "identifier": 105455,
        "version": {"identifier": 222523557},
        "is_part_of": {"identifier": "frwiki"},
        "article_body": {"wikitext": "'''Calvi''' est une commune."},
        "date_modified": "2025-01-29T22:45:34Z",
    }
    obj.update(overrides)
    return obj


def parse(obj: dict[str, object], namespaces: frozenset[int] = frozenset({0})) -> object:
    return parse_enterprise_article(obj, source="t", location="t: line 1", namespaces=namespaces)


def test_parse_minimal_article_derives_site_and_assumes_no_license() -> None:
    rev = parse(minimal_article())
    assert isinstance(rev, RawRevision)
    assert rev.license is None
    assert rev.site.base_url == "https://fr.wikipedia.org"
    assert rev.site.language == "fr"
    assert (rev.editor, rev.parent_id, rev.wikidata_id, rev.aliases) == (None, None, None, ())


@pytest.mark.parametrize(
    "field", ["name", "identifier", "version", "is_part_of", "article_body", "date_modified"]
)
def test_parse_missing_field(field: str) -> None:
    obj = minimal_article()
    del obj[field]
    item = parse(obj)
    assert isinstance(item, SkippedItem)
    assert item.reason == "missing-field"
    assert field in item.detail
    assert item.location == "t: line 1"


def test_parse_wrong_types() -> None:
    item = parse(minimal_article(identifier="abc"))
    assert isinstance(item, SkippedItem) and item.reason == "invalid-field"
    assert "identifier" in item.detail
    item = parse(minimal_article(name=["x"]))
    assert isinstance(item, SkippedItem) and item.reason == "invalid-field"


def test_parse_other_namespace_is_filtered() -> None:
    talk = minimal_article(namespace={"identifier": 1})
    assert parse(talk) is None
    assert isinstance(parse(talk, frozenset({0, 1})), RawRevision)
    assert parse({"namespace": {"identifier": 2}}) is None  # filtered before validation


def test_parse_unknown_wiki_without_urls() -> None:
    item = parse(minimal_article(is_part_of={"identifier": "squadeval"}))
    assert isinstance(item, SkippedItem) and item.reason == "missing-field"
    rev = parse(
        minimal_article(
            is_part_of={"identifier": "squadeval", "url": "https://example.org/"},
            in_language={"identifier": "en"},
        )
    )
    assert isinstance(rev, RawRevision) and rev.site.base_url == "https://example.org"


# --------------------------------------------------------------------------- WME: bad input


def test_ndjson_bad_lines(tmp_path: Path) -> None:
    good = json.dumps(minimal_article())
    missing = minimal_article()
    del missing["version"]
    talk = minimal_article(namespace={"identifier": 1})
    lines = [
        good,
        "{not json",
        "[1, 2, 3]",
        json.dumps(missing),
        "",
        json.dumps(minimal_article(name="x" * 2000)),
        json.dumps(talk),
        good,
    ]
    path = tmp_path / "batch.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reader = EnterpriseSnapshotReader(path, max_line_bytes=1000)
    items = list(reader)
    assert [(type(i).__name__, i.location) for i in items] == [
        ("RawRevision", "batch.ndjson: line 1"),
        ("SkippedItem", "batch.ndjson: line 2"),
        ("SkippedItem", "batch.ndjson: line 3"),
        ("SkippedItem", "batch.ndjson: line 4"),
        ("SkippedItem", "batch.ndjson: line 6"),
        ("RawRevision", "batch.ndjson: line 8"),
    ]
    assert [s.reason for s in skipped(items)] == [
        "invalid-json",
        "not-an-object",
        "missing-field",
        "line-too-long",
    ]
    assert "version.identifier" in skipped(items)[2].detail
    assert reader.stats.filtered_namespace == 1
    assert reader.stats.skipped == 4
    assert reader.stats.revisions == 2


def test_wme_duplicates_are_all_yielded(tmp_path: Path) -> None:
    older = minimal_article()
    newer = minimal_article(version={"identifier": 222523558})
    path = tmp_path / "dups.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write(json.dumps(newer) + "\n" + json.dumps(older) + "\n")
    assert [r.revision_id for r in revisions(open_source(path))] == [222523558, 222523557]


def add_member(archive: tarfile.TarFile, info: tarfile.TarInfo, data: bytes = b"") -> None:
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data) if data else None)


def test_unsafe_tar_members_are_not_read(tmp_path: Path) -> None:
    line = (json.dumps(minimal_article()) + "\n").encode()
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        add_member(archive, tarfile.TarInfo("../escape.ndjson"), line)
        add_member(archive, tarfile.TarInfo("/abs.ndjson"), line)
        link = tarfile.TarInfo("link.ndjson")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        add_member(archive, link)
        folder = tarfile.TarInfo("snapshot")
        folder.type = tarfile.DIRTYPE
        add_member(archive, folder)
        add_member(archive, tarfile.TarInfo("snapshot/README.txt"), b"not ndjson\n")
        add_member(archive, tarfile.TarInfo("snapshot/frwiki_0.ndjson"), line)
    items = list(EnterpriseSnapshotReader(path))
    assert [(i.reason, i.location) for i in skipped(items)] == [
        ("unsafe-tar-member", "evil.tar.gz:../escape.ndjson"),
        ("unsafe-tar-member", "evil.tar.gz:/abs.ndjson"),
        ("unsafe-tar-member", "evil.tar.gz:link.ndjson"),
    ]
    (rev,) = revisions(items)
    assert rev.location == "evil.tar.gz:snapshot/frwiki_0.ndjson: line 1"
    assert not (tmp_path.parent / "escape.ndjson").exists()


def test_truncated_tar_gz(tmp_path: Path) -> None:
    data = (WME / "enwiki_namespace_0.tar.gz").read_bytes()
    path = tmp_path / "enwiki_namespace_0.tar.gz"
    path.write_bytes(data[: len(data) // 2])
    items = list(EnterpriseSnapshotReader(path))
    bad = skipped(items)
    assert len(bad) == 1 and items[-1] is bad[0]
    assert bad[0].reason == "corrupt-gzip"
    revs = revisions(items)
    assert [r.revision_id for r in revs] == [1270870723][: len(revs)]
    line = len(revs) + 1
    assert bad[0].location == f"enwiki_namespace_0.tar.gz:enwiki_namespace_0_0.ndjson: line {line}"


def test_truncated_ndjson_gz(tmp_path: Path) -> None:
    data = REALTIME.read_bytes()
    path = tmp_path / "realtime.ndjson.gz"
    path.write_bytes(data[: len(data) // 2])
    items = list(EnterpriseSnapshotReader(path))
    assert [(type(i).__name__, getattr(i, "reason", None), i.location) for i in items] == [
        ("SkippedItem", "corrupt-gzip", "realtime.ndjson.gz: line 1")
    ]


def test_not_gzip_at_all(tmp_path: Path) -> None:
    path = tmp_path / "fake.tar.gz"
    path.write_bytes(b"this is not an archive" * 100)
    items = list(EnterpriseSnapshotReader(path))
    assert [(type(i).__name__, getattr(i, "reason", None)) for i in items] == [
        ("SkippedItem", "corrupt-gzip")
    ]


# --------------------------------------------------------------------------- open_source


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (ENWIKI_XML, MediaWikiDumpReader),
        (SQUAD_XML, MediaWikiDumpReader),
        (WME / "enwiki_namespace_0.tar.gz", EnterpriseSnapshotReader),
        (REALTIME, EnterpriseSnapshotReader),
    ],
)
def test_open_source_dispatch(path: Path, kind: type) -> None:
    assert isinstance(open_source(path), kind)


def test_open_source_passes_wiki_and_namespaces() -> None:
    assert len(revisions(open_source(TABLE_XML, wiki="enwiki"))) == 5
    assert len(revisions(open_source(ENWIKI_XML, namespaces=frozenset({4})))) == 1


def test_open_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        open_source(tmp_path / "missing.xml.bz2")
    with pytest.raises(SourceError, match="no such file"):
        MediaWikiDumpReader(tmp_path / "missing.xml")
    with pytest.raises(SourceError, match="no such file"):
        EnterpriseSnapshotReader(tmp_path / "missing.ndjson")
    unknown = tmp_path / "dump.7z"
    unknown.write_bytes(b"7z")
    with pytest.raises(SourceError, match=r"\.xml\.bz2.*\.tar\.gz.*\.ndjson"):
        open_source(unknown)
    with pytest.raises(SourceError, match="not a file"):
        open_source(tmp_path)
