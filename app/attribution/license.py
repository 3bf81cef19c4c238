"""License-correct attribution for every passage, built only from stored data.

Wikipedia text is licensed CC BY-SA (3.0 or 4.0, as recorded per revision). Reusing it
requires, per Wikipedia's reuse guidance and Wikimedia's attribution framework: the
**title**, credit to the **authors** (a link to the page history), the **source** (the
wiki, linked through the revision permalink), the **license** (its name and a link to it)
and an **indication of changes** (the passage is an excerpt with the wiki markup removed).
:func:`build_attribution` returns all of them as fields and as ready-to-use plain text,
HTML and Markdown strings, in TASL order, in the language of the passage's wiki.

Usage::

    >>> record = store.passage("enwiki:1270870723:12")                  # doctest: +SKIP
    >>> attribution = build_attribution(record)                          # doctest: +SKIP
    >>> attribution.license.identifier, attribution.authors_url          # doctest: +SKIP
    ('CC-BY-SA-4.0', 'https://en.wikipedia.org/w/index.php?title=Albert_Einstein&action=history')
    >>> print(attribution.text)                                          # doctest: +SKIP
    "Albert Einstein" by Wikipedia contributors (https://en.wikipedia.org/w/index.php?title=Albert_Einstein&action=history), from Wikipedia, the free encyclopedia, revision 1270870723 of 21 January 2025 (https://en.wikipedia.org/w/index.php?title=Albert_Einstein&oldid=1270870723#Early_life), licensed under CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/). Excerpt; wiki markup removed.

A whole revision (no passage) is attributed through :class:`AttributionSubject`::

    >>> revision = store.revision("frwiki", 222515879)                  # doctest: +SKIP
    >>> subject = AttributionSubject.from_revision(revision, site)       # doctest: +SKIP
    >>> build_attribution(subject).source                                # doctest: +SKIP
    "Wikipédia, l'encyclopédie libre"

To add a language, add one :class:`LanguageStrings` entry to :data:`TRANSLATIONS`.
"""  # noqa: E501

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from indexer.models import License, SiteInfo
from indexer.store import RevisionRecord
from indexer.urls import history_url, revision_url

__all__ = [
    "FALLBACK_LANGUAGE",
    "LICENSE_SHORT_NAMES",
    "TRANSLATIONS",
    "Attributable",
    "Attribution",
    "AttributionSubject",
    "LanguageStrings",
    "LicenseInfo",
    "build_attribution",
    "format_date",
    "license_info",
    "strings_for",
]

FALLBACK_LANGUAGE = "en"

# Short names of the licenses Wikimedia content is under; the same in every language.
LICENSE_SHORT_NAMES: dict[str, str] = {
    "CC-BY-SA-4.0": "CC BY-SA 4.0",
    "CC-BY-SA-3.0": "CC BY-SA 3.0",
}


@dataclass(frozen=True, slots=True)
class LanguageStrings:
    """The wording of an attribution in one language.

    ``sentence`` orders the parts (placeholders ``{title}``, ``{contributors}``,
    ``{source}``, ``{revision}``, ``{license}``, ``{modified}``); ``contributors`` names the
    authors (``{project}``: the wiki's project name, e.g. "Wikipédia"); ``revision`` names
    the revision (``{revision_id}``, ``{date}``); ``date`` formats a day (``{day}``,
    ``{month}``, ``{year}``; ``first_day`` is how the 1st is written). ``source`` is the
    full name of this language's Wikipedia; ``projects`` the local names of Wikimedia
    projects; ``licenses`` the local long names of licenses by SPDX identifier.
    """

    sentence: str
    contributors: str
    revision: str
    modified: str
    source: str
    quotes: tuple[str, str]
    months: tuple[str, str, str, str, str, str, str, str, str, str, str, str]
    date: str = "{day} {month} {year}"
    first_day: str = "1"
    projects: dict[str, str] = field(default_factory=dict)
    licenses: dict[str, str] = field(default_factory=dict)


_ENGLISH = LanguageStrings(
    sentence=(
        "{title} by {contributors}, from {source}, {revision}, licensed under {license}. "
        "{modified}."
    ),
    contributors="{project} contributors",
    revision="revision {revision_id} of {date}",
    modified="excerpt; wiki markup removed",
    source="Wikipedia, the free encyclopedia",
    quotes=('"', '"'),
    months=(
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    licenses={
        "CC-BY-SA-4.0": "Creative Commons Attribution-ShareAlike 4.0 International",
        "CC-BY-SA-3.0": "Creative Commons Attribution-ShareAlike 3.0 Unported",
    },
)

# Every language the attribution strings exist in, by wiki language code. Unknown languages
# fall back to English (FALLBACK_LANGUAGE).
TRANSLATIONS: dict[str, LanguageStrings] = {
    "en": _ENGLISH,
    "simple": replace(_ENGLISH, source="Simple English Wikipedia, the free encyclopedia"),
    "fr": LanguageStrings(
        sentence=(
            "{title} par {contributors}, tiré de {source}, {revision}, sous licence {license}. "
            "{modified}."
        ),
        contributors="les contributeurs de {project}",
        revision="révision {revision_id} du {date}",
        modified="extrait ; balisage wiki supprimé",
        source="Wikipédia, l'encyclopédie libre",
        quotes=("«\u00a0", "\u00a0»"),
        months=(
            "janvier",
            "février",
            "mars",
            "avril",
            "mai",
            "juin",
            "juillet",
            "août",
            "septembre",
            "octobre",
            "novembre",
            "décembre",
        ),
        first_day="1er",
        projects={
            "Wikipedia": "Wikipédia",
            "Wikiversity": "Wikiversité",
            "Wiktionary": "Wiktionnaire",
            "Wikibooks": "Wikilivres",
        },
        licenses={
            "CC-BY-SA-4.0": "Creative Commons Attribution – Partage dans les Mêmes Conditions 4.0",
            "CC-BY-SA-3.0": "Creative Commons Attribution – Partage dans les Mêmes Conditions 3.0",
        },
    ),
    "de": LanguageStrings(
        sentence=(
            "{title} von {contributors}, Quelle: {source}, {revision}, lizenziert unter "
            "{license}. {modified}."
        ),
        contributors="den {project}-Autoren",
        revision="Version {revision_id} vom {date}",
        modified="Auszug; Wiki-Markup entfernt",
        source="Wikipedia, die freie Enzyklopädie",
        quotes=("„", "“"),
        months=(
            "Januar",
            "Februar",
            "März",
            "April",
            "Mai",
            "Juni",
            "Juli",
            "August",
            "September",
            "Oktober",
            "November",
            "Dezember",
        ),
        date="{day}. {month} {year}",
        projects={"Wiktionary": "Wiktionary", "Wikibooks": "Wikibooks"},
        licenses={
            "CC-BY-SA-4.0": (
                "Creative Commons Namensnennung – Weitergabe unter gleichen Bedingungen 4.0"
            ),
            "CC-BY-SA-3.0": (
                "Creative Commons Namensnennung – Weitergabe unter gleichen Bedingungen 3.0"
            ),
        },
    ),
    "pt": LanguageStrings(
        sentence=(
            "{title} por {contributors}, em {source}, {revision}, disponível sob a licença "
            "{license}. {modified}."
        ),
        contributors="colaboradores da {project}",
        revision="revisão {revision_id} de {date}",
        modified="excerto; marcação wiki removida",
        source="Wikipédia, a enciclopédia livre",
        quotes=("“", "”"),
        months=(
            "janeiro",
            "fevereiro",
            "março",
            "abril",
            "maio",
            "junho",
            "julho",
            "agosto",
            "setembro",
            "outubro",
            "novembro",
            "dezembro",
        ),
        date="{day} de {month} de {year}",
        projects={
            "Wikipedia": "Wikipédia",
            "Wikiversity": "Wikiversidade",
            "Wiktionary": "Wikcionário",
            "Wikibooks": "Wikilivros",
        },
        licenses={
            "CC-BY-SA-4.0": "Creative Commons Atribuição-CompartilhaIgual 4.0",
            "CC-BY-SA-3.0": "Creative Commons Atribuição-CompartilhaIgual 3.0",
        },
    ),
    "ru": LanguageStrings(
        sentence=(
            "{title}, авторы: {contributors}, источник: {source}, {revision}, лицензия: "
            "{license}. {modified}."
        ),
        contributors="участники проекта {project}",
        revision="версия {revision_id} от {date}",
        modified="фрагмент; вики-разметка удалена",
        source="Википедия — свободная энциклопедия",
        quotes=("«", "»"),
        months=(
            "января",
            "февраля",
            "марта",
            "апреля",
            "мая",
            "июня",
            "июля",
            "августа",
            "сентября",
            "октября",
            "ноября",
            "декабря",
        ),
        date="{day} {month} {year} г.",
        projects={
            "Wikipedia": "Википедия",
            "Wikiversity": "Викиверситет",
            "Wiktionary": "Викисловарь",
            "Wikibooks": "Викиучебник",
        },
        licenses={
            "CC-BY-SA-4.0": "Creative Commons «Атрибуция — С сохранением условий» 4.0",
            "CC-BY-SA-3.0": "Creative Commons «Атрибуция — С сохранением условий» 3.0",
        },
    ),
}


class LicenseInfo(BaseModel):
    """The license of one revision, as recorded in the store.

    ``name``/``identifier``/``url`` are exactly as stored (``identifier`` is the SPDX id,
    e.g. ``CC-BY-SA-4.0``); ``short_name`` ("CC BY-SA 4.0") and ``localized_name`` (the
    long name in the attribution's language) come from the translation tables, or are the
    stored name when the identifier is not in them.
    """

    name: str
    identifier: str
    url: str
    short_name: str
    localized_name: str


class Attribution(BaseModel):
    """Everything needed to reuse one passage (or revision) under its license.

    ``text``, ``html`` and ``markdown`` are ready-to-use credit lines in TASL order
    (Title, Authors via the history link, Source, License) ending with the note of
    changes; ``text`` spells out every URL, ``html`` and ``markdown`` carry them as links.
    """

    title: str
    source: str = Field(description="The wiki, e.g. 'Wikipedia, the free encyclopedia'")
    url: str = Field(description="Permanent link to the revision, with the section anchor")
    authors_url: str = Field(description="The page history: the list of the authors")
    license: LicenseInfo
    revision_id: int
    last_modified: str = Field(description="The revision's timestamp (ISO 8601, UTC)")
    modified: str = Field(description="How the text differs from the original")
    language: str = Field(description="Language of the strings (a TRANSLATIONS key)")
    text: str
    html: str
    markdown: str


class Attributable(Protocol):
    """What attribution needs: :class:`indexer.store.PassageRecord` has all of it, and
    :class:`AttributionSubject` builds it for a revision without a passage."""

    @property
    def title(self) -> str: ...
    @property
    def revision_id(self) -> int: ...
    @property
    def revision_timestamp(self) -> str: ...
    @property
    def base_url(self) -> str: ...
    @property
    def language(self) -> str: ...
    @property
    def sitename(self) -> str: ...
    @property
    def anchor(self) -> str: ...
    @property
    def license(self) -> License: ...


@dataclass(frozen=True, slots=True)
class AttributionSubject:
    """A revision (optionally one of its sections) to attribute, with its wiki's site info.

    >>> AttributionSubject.from_revision(revision, site, anchor="Jeunesse")  # doctest: +SKIP
    """

    title: str
    revision_id: int
    revision_timestamp: str
    base_url: str
    language: str
    sitename: str
    license: License
    anchor: str = ""

    @classmethod
    def from_revision(
        cls, revision: RevisionRecord, site: SiteInfo, anchor: str = ""
    ) -> AttributionSubject:
        """The subject for a stored revision of the wiki described by ``site``."""
        if revision.wiki != site.wiki:
            raise ValueError(f"revision of {revision.wiki} given with site info of {site.wiki}")
        return cls(
            title=revision.title,
            revision_id=revision.revision_id,
            revision_timestamp=revision.timestamp,
            base_url=site.base_url,
            language=site.language,
            sitename=site.sitename,
            license=revision.license,
            anchor=anchor,
        )


def strings_for(language: str | None) -> tuple[str, LanguageStrings]:
    """``(code, strings)`` for a language code: exact (``simple``), else its primary subtag
    (``pt-BR`` → ``pt``), else English.

    >>> strings_for("pt-BR")[0], strings_for("xx")[0]
    ('pt', 'en')
    """
    code = (language or "").strip().lower().replace("_", "-")
    for candidate in (code, code.split("-", 1)[0]):
        if candidate in TRANSLATIONS:
            return candidate, TRANSLATIONS[candidate]
    return FALLBACK_LANGUAGE, TRANSLATIONS[FALLBACK_LANGUAGE]


def format_date(timestamp: str, language: str | None = None) -> str:
    """The day of an ISO 8601 timestamp, written as ``language`` writes dates; the
    timestamp itself when it cannot be read.

    >>> format_date("2025-01-21T17:03:22Z", "de"), format_date("2025-03-01T00:00:00Z", "fr")
    ('21. Januar 2025', '1er mars 2025')
    """
    _, strings = strings_for(language)
    try:
        moment = datetime.fromisoformat(timestamp.strip())
    except ValueError:
        return timestamp
    day = strings.first_day if moment.day == 1 else str(moment.day)
    return strings.date.format(day=day, month=strings.months[moment.month - 1], year=moment.year)


def license_info(license: License, language: str | None = None) -> LicenseInfo:
    """The stored license with its short and localized names.

    >>> from indexer.models import CC_BY_SA_3
    >>> license_info(CC_BY_SA_3, "de").localized_name
    'Creative Commons Namensnennung – Weitergabe unter gleichen Bedingungen 3.0'
    """
    _, strings = strings_for(language)
    known = license.identifier in LICENSE_SHORT_NAMES
    localized = strings.licenses.get(license.identifier) or _ENGLISH.licenses.get(
        license.identifier
    )
    return LicenseInfo(
        name=license.name,
        identifier=license.identifier,
        url=license.url,
        short_name=LICENSE_SHORT_NAMES[license.identifier] if known else license.name,
        localized_name=localized if known and localized else license.name,
    )


def _is_wikipedia(base_url: str, sitename: str) -> bool:
    host = (urlsplit(base_url).hostname or "").lower()
    if host:
        return host == "wikipedia.org" or host.endswith(".wikipedia.org")
    return sitename.strip().lower() in {"wikipedia", "wikipédia", "википедия"}


def _project_and_source(record: Attributable) -> tuple[str, str]:
    """The wiki's project name (for "… contributors") and its full name as a source, both
    in the wiki's own language (they are names of the source, whatever the strings' language).
    """
    _, own = strings_for(record.language)
    if _is_wikipedia(record.base_url, record.sitename):
        return own.projects.get("Wikipedia", "Wikipedia"), own.source
    sitename = record.sitename.strip() or "Wikimedia"
    name = own.projects.get(sitename, sitename)
    return name, name


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#!|~&])")


def _md(text: str) -> str:
    """Escape Markdown punctuation in a piece of text."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _md_url(url: str) -> str:
    """A URL safe inside a Markdown link destination (no bare parentheses or blanks)."""
    return (
        url.replace("(", "%28")
        .replace(")", "%29")
        .replace(" ", "%20")
        .replace("<", "%3C")
        .replace(">", "%3E")
    )


def _html_text(text: str) -> str:
    """Escape wording for an HTML text node (quotes and apostrophes may stay as they are)."""
    return html.escape(text, quote=False)


def _html_link(url: str, label: str, rel: str = "", tooltip: str = "") -> str:
    if not url:
        return html.escape(label)
    extra = f' rel="{rel}"' if rel else ""
    if tooltip:
        extra += f' title="{html.escape(tooltip)}"'
    return f'<a href="{html.escape(url)}"{extra}>{html.escape(label)}</a>'


def _md_link(url: str, label: str) -> str:
    return f"[{_md(label)}]({_md_url(url)})" if url else _md(label)


def _text_link(url: str, label: str) -> str:
    return f"{label} ({url})" if url else label


def build_attribution(record: Attributable, *, language: str | None = None) -> Attribution:
    """The attribution of a stored passage (or revision), from its stored data only.

    ``language`` chooses the language of the strings (default: the wiki's own language;
    unknown languages fall back to English). The source name and the project name stay
    those of the wiki. The license is the one recorded for the revision.

    >>> a = build_attribution(store.passage("frwiki:222515879:3"))      # doctest: +SKIP
    >>> a.language, a.modified, a.license.short_name                     # doctest: +SKIP
    ('fr', 'extrait ; balisage wiki supprimé', 'CC BY-SA 4.0')
    """
    code, strings = strings_for(language if language is not None else record.language)
    project, source = _project_and_source(record)
    permalink = revision_url(record.base_url, record.title, record.revision_id, record.anchor)
    authors = history_url(record.base_url, record.title)
    lic = license_info(record.license, code)
    contributors = strings.contributors.format(project=project)
    revision = strings.revision.format(
        revision_id=record.revision_id, date=format_date(record.revision_timestamp, code)
    )
    opening, closing = strings.quotes
    modified = strings.modified

    text = strings.sentence.format(
        title=f"{opening}{record.title}{closing}",
        contributors=_text_link(authors, contributors),
        source=source,
        revision=_text_link(permalink, revision),
        license=_text_link(lic.url, lic.short_name),
        modified=_capitalized(modified),
    )
    html_text = strings.sentence.format(
        title=_html_text(opening) + _html_link(permalink, record.title) + _html_text(closing),
        contributors=_html_link(authors, contributors),
        source=_html_text(source),
        revision=_html_link(permalink, revision),
        license=_html_link(lic.url, lic.short_name, rel="license", tooltip=lic.localized_name),
        modified=_html_text(_capitalized(modified)),
    )
    markdown = strings.sentence.format(
        title=f"{_md(opening)}{_md_link(permalink, record.title)}{_md(closing)}",
        contributors=_md_link(authors, contributors),
        source=_md(source),
        revision=_md_link(permalink, revision),
        license=_md_link(lic.url, lic.short_name),
        modified=_md(_capitalized(modified)),
    )
    return Attribution(
        title=record.title,
        source=source,
        url=permalink,
        authors_url=authors,
        license=lic,
        revision_id=record.revision_id,
        last_modified=record.revision_timestamp,
        modified=modified,
        language=code,
        text=text,
        html=html_text,
        markdown=markdown,
    )
