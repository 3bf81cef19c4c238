"""Links into a wiki, character by character: titles are encoded as MediaWiki's wfUrlencode
does (spaces become underscores; ``;@$!*(),/~:`` stay as they are; everything else outside
the unreserved set is percent-encoded as UTF-8), section anchors keep what a fragment may
hold, and a trailing slash on the wiki's base URL never doubles.

Titles and anchors are real ones from the bundled samples and Wikipedia (the French
"Joséphine Baker", "Abstract (law)", the simple-English redirect "E=mc2", the Russian
"Squirrel" article's sections) plus the characters that most often break links.
"""

from __future__ import annotations

import doctest

import pytest

from app.attribution.license import AttributionSubject
from indexer import urls
from indexer.models import CC_BY_SA_4
from indexer.urls import article_url, history_url, revision_permalink, revision_url, title_for_url

EN = "https://en.wikipedia.org"
FR = "https://fr.wikipedia.org"
RU = "https://ru.wikipedia.org"


@pytest.mark.parametrize(
    ("title", "encoded"),
    [
        ("Albert Einstein", "Albert_Einstein"),
        ("Joséphine Baker", "Jos%C3%A9phine_Baker"),
        ("Abstract (law)", "Abstract_(law)"),
        ("E=mc2", "E%3Dmc2"),
        ("AC/DC", "AC/DC"),
        ("C++", "C%2B%2B"),
        ("AT&T", "AT%26T"),
        ("Who's Who", "Who%27s_Who"),
        ("What? (film)", "What%3F_(film)"),
        ("100% Pure", "100%25_Pure"),
        ('"Weird Al" Yankovic', "%22Weird_Al%22_Yankovic"),
        ("Help:Contents", "Help:Contents"),
        ("Yes!; No, *maybe* @home ~ $5", "Yes!;_No,_*maybe*_@home_~_$5"),
        ("Белка", "%D0%91%D0%B5%D0%BB%D0%BA%D0%B0"),
        ("Already_underscored  twice", "Already_underscored__twice"),
        ("", ""),
    ],
)
def test_titles_are_encoded_as_mediawiki_does(title: str, encoded: str) -> None:
    assert title_for_url(title) == encoded
    assert article_url(EN, title) == f"{EN}/wiki/{encoded}"
    assert history_url(EN, title) == f"{EN}/w/index.php?title={encoded}&action=history"
    assert revision_url(EN, title, 42) == f"{EN}/w/index.php?title={encoded}&oldid=42"


@pytest.mark.parametrize(
    ("anchor", "fragment"),
    [
        ("Early_life", "Early_life"),
        ("Childhood,_youth_and_education", "Childhood,_youth_and_education"),
        ("Vie_privée", "Vie_priv%C3%A9e"),
        ("Ранние_годы", "%D0%A0%D0%B0%D0%BD%D0%BD%D0%B8%D0%B5_%D0%B3%D0%BE%D0%B4%D1%8B"),
        ("Q&A_(1990–2000)", "Q&A_(1990%E2%80%932000)"),
        ("Notes:_see/also?_yes!_a=b;c+d*e@f$g~h'i", "Notes:_see/also?_yes!_a=b;c+d*e@f$g~h'i"),
        ("50%_off", "50%25_off"),
        ("#hash", "%23hash"),
        ('Say "hi" <now>', "Say%20%22hi%22%20%3Cnow%3E"),
        ("a[b]{c}|d^e`f\\g", "a%5Bb%5D%7Bc%7D%7Cd%5Ee%60f%5Cg"),
    ],
)
def test_anchors_keep_what_a_fragment_may_hold(anchor: str, fragment: str) -> None:
    assert revision_url(FR, "Joséphine Baker", 222515879, anchor) == (
        f"{FR}/w/index.php?title=Jos%C3%A9phine_Baker&oldid=222515879#{fragment}"
    )


def test_no_anchor_means_no_fragment() -> None:
    assert revision_url(EN, "Albert Einstein", 1270870723) == (
        f"{EN}/w/index.php?title=Albert_Einstein&oldid=1270870723"
    )
    assert revision_url(EN, "Albert Einstein", 1270870723, "") == (
        f"{EN}/w/index.php?title=Albert_Einstein&oldid=1270870723"
    )


@pytest.mark.parametrize("base", [RU, f"{RU}/", f"{RU}//"])
def test_a_trailing_slash_on_the_base_url_never_doubles(base: str) -> None:
    title = "Белка"
    encoded = "%D0%91%D0%B5%D0%BB%D0%BA%D0%B0"
    assert article_url(base, title) == f"{RU}/wiki/{encoded}"
    assert history_url(base, title) == f"{RU}/w/index.php?title={encoded}&action=history"
    assert revision_url(base, title, 131059810, "История") == (
        f"{RU}/w/index.php?title={encoded}&oldid=131059810#%D0%98%D1%81%D1%82%D0%BE%D1%80%D0%B8%D1%8F"
    )


def test_a_base_url_keeps_its_own_path_and_leading_characters() -> None:
    # Only trailing slashes are stripped: not the scheme's, not other trailing characters.
    base = "//wiki.example.org/mirror/X"
    assert article_url(base, "A b") == "//wiki.example.org/mirror/X/wiki/A_b"
    assert history_url(base + "/", "A b") == (
        "//wiki.example.org/mirror/X/w/index.php?title=A_b&action=history"
    )
    assert revision_url(base + "/", "A b", 7, "c") == (
        "//wiki.example.org/mirror/X/w/index.php?title=A_b&oldid=7#c"
    )


def test_revision_permalink_of_a_record() -> None:
    subject = AttributionSubject(
        title="Joséphine Baker",
        revision_id=222515879,
        revision_timestamp="2025-01-29T17:27:22Z",
        base_url=FR + "/",
        language="fr",
        sitename="Wikipédia",
        license=CC_BY_SA_4,
        anchor="Jeunesse",
    )
    assert revision_permalink(subject) == (
        f"{FR}/w/index.php?title=Jos%C3%A9phine_Baker&oldid=222515879#Jeunesse"
    )
    lead = AttributionSubject(**{**_fields(subject), "anchor": ""})
    assert (
        revision_permalink(lead) == f"{FR}/w/index.php?title=Jos%C3%A9phine_Baker&oldid=222515879"
    )


def _fields(subject: AttributionSubject) -> dict[str, object]:
    return {name: getattr(subject, name) for name in subject.__slots__}


def test_docstring_examples() -> None:
    assert doctest.testmod(urls) == (0, 2)
