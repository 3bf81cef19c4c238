"""Templates: the renderers of the templates that are shown (:data:`TEMPLATE_POLICY`),
their arguments (:class:`Args`), and the registry and name lookup the renderer uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, Protocol

from indexer.clean.config import LANGUAGE_CODES, phrases, words
from indexer.clean.sentinels import APOS, CUT, HARD

# --------------------------------------------------------------------------- templates

_MONTH_TEXT: Final = (
    "January February March April May June July August September October November December"
)
_MONTHS_EN: Final = tuple(_MONTH_TEXT.split())
_MONTH_NUMBERS: Final = {name.lower(): i for i, name in enumerate(_MONTHS_EN, 1)} | {
    name.lower()[:3]: i for i, name in enumerate(_MONTHS_EN, 1)
}
_TRUE_FLAGS: Final = frozenset({"y", "yes", "on", "true", "1"})
_NUMBER_RE: Final = re.compile(r"-?\d+")
_YEAR_RE: Final = re.compile(r"-?\d{1,6}")
SUPERSCRIPTS: Final = str.maketrans("0123456789-−", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁻")
SUPERSCRIPTABLE_RE: Final = re.compile(r"[-−]?[0-9]{1,3}")


class CodeRenderer(Protocol):
    """What :class:`Args` needs from the renderer that walks the page
    (:class:`~indexer.clean.render.Renderer`)."""

    language: str

    def render(self, code: Any) -> str: ...


class Args:
    """A template's arguments, rendered on demand. Positional arguments are numbered like
    MediaWiki (``|x|2=y`` → 1: x, 2: y); named ones are looked up case-insensitively."""

    __slots__ = ("_items", "_named", "_pos", "_renderer", "name")

    def __init__(self, renderer: CodeRenderer, template: Any, name: str) -> None:
        self._renderer = renderer
        self.name = name
        self._pos: dict[int, Any] = {}
        self._named: dict[str, Any] = {}
        self._items: list[tuple[Any, Any]] = []
        index = 0
        for param in template.params:
            if not param.showkey:
                index += 1
                self._pos[index] = param.value
                continue
            key = str(param.name).strip()
            if key.isascii() and key.isdigit() and len(key) < 7:
                self._pos[int(key)] = param.value
            else:
                self._named[key.lower()] = param.value
                self._items.append((param.name, param.value))

    @property
    def language(self) -> str:
        return self._renderer.language

    def _render(self, code: Any) -> str:
        return self._renderer.render(code).strip()

    def pos(self, index: int) -> str:
        code = self._pos.get(index)
        return "" if code is None else self._render(code)

    def named(self, *names: str) -> str:
        for name in names:
            code = self._named.get(name)
            if code is not None:
                value = self._render(code)
                if value:
                    return value
        return ""

    def text(self, index: int, *names: str) -> str:
        """A named argument when given, else the positional one."""
        return self.named(*names) or self.pos(index)

    def positional(self) -> list[str]:
        return [self._render(self._pos[i]) for i in sorted(self._pos)]

    def flag(self, name: str) -> bool:
        return self.named(name).lower() in _TRUE_FLAGS

    def items(self) -> list[tuple[Any, Any]]:
        """The named arguments as (name, value) wikicode, in order."""
        return self._items


TemplateRenderer = Callable[[Args], str]


def _first(args: Args) -> str:
    return args.text(1, "text")


def _second(args: Args) -> str:
    return args.text(2, "text")


def _last(args: Args) -> str:
    values = [value for value in args.positional() if value]
    return values[-1] if values else ""


def _joined(sep: str) -> TemplateRenderer:
    def render(args: Args) -> str:
        return sep.join(value for value in args.positional() if value)

    return render


def _constant(text: str) -> TemplateRenderer:
    def render(args: Args) -> str:
        return text

    return render


def _with_prefix(prefix: str) -> TemplateRenderer:
    def render(args: Args) -> str:
        value = args.pos(1)
        return f"{prefix} {value}" if value else prefix

    return render


def _label_or_first(default: str) -> TemplateRenderer:
    def render(args: Args) -> str:
        return args.pos(1) or default

    return render


def _month_number(month: str) -> int | None:
    if month.isascii() and month.isdigit() and len(month) <= 2:
        number = int(month)
        return number if 1 <= number <= 12 else None
    return _MONTH_NUMBERS.get(month.strip().lower())


def _format_date(year: str, month: str, day: str, *, language: str, mdy: bool = False) -> str:
    """``1879, 3, 14`` → ``14 March 1879`` (en; ``March 14, 1879`` with ``mdy``) or
    ``1879-03-14`` (other languages). Anything unusual is returned as written."""
    if not _YEAR_RE.fullmatch(year):
        return " ".join(part for part in (day, month, year) if part)
    number = _month_number(month) if month else None
    if month and number is None:
        return " ".join(part for part in (day, month, year) if part)
    valid_day = day.isascii() and day.isdigit() and len(day) <= 2 and 1 <= int(day) <= 31
    if language not in ("en", "simple"):
        if number is None:
            return year
        iso = f"{year}-{number:02d}"
        return f"{iso}-{int(day):02d}" if valid_day else iso
    if number is None:
        return year
    name = _MONTHS_EN[number - 1]
    if not valid_day:
        return f"{name} {year}"
    return f"{name} {int(day)}, {year}" if mdy else f"{int(day)} {name} {year}"


def _date_from(args: Args, start: int) -> str:
    return _format_date(
        args.pos(start),
        args.pos(start + 1),
        args.pos(start + 2),
        language=args.language,
        mdy=args.flag("mf") and not args.flag("df"),
    )


def _date(args: Args) -> str:
    return _date_from(args, 1)


def _age(later: tuple[str, str, str], earlier: tuple[str, str, str]) -> int | None:
    if any(len(part) > 6 for part in (*later, *earlier)):
        return None
    try:
        y2, m2, d2 = (int(part or 1) for part in later)
        y1, m1, d1 = (int(part or 1) for part in earlier)
    except ValueError:
        return None
    age = y2 - y1 - ((m2, d2) < (m1, d1))
    return age if 0 <= age < 200 else None


def _death_date_and_age(args: Args) -> str:
    date = _date_from(args, 1)
    age = _age((args.pos(1), args.pos(2), args.pos(3)), (args.pos(4), args.pos(5), args.pos(6)))
    return f"{date} (aged {age})" if date and age is not None else date


def _plain_join(args: Args) -> str:
    """fr ``{{date|14|mars|1879}}`` and other "words as arguments" dates."""
    values = [args.pos(i) for i in (1, 2, 3)]
    return " ".join(value for value in values if value)


def _as_of(args: Args) -> str:
    date = _date_from(args, 1)
    return f"As of {date}" if date else ""


_RANGE_SEPARATORS: Final = {
    "-": "–",
    "–": "–",
    "to": " to ",
    "to(-)": " to ",
    "and": " and ",
    "and(-)": " and ",
    "or": " or ",
    "by": " by ",
    "x": " × ",
    "×": " × ",
    "+/-": " ± ",
    "±": " ± ",
}
_UNIT_LABELS: Final = {
    "C": "°C",
    "F": "°F",
    "K": "K",
    "km2": "km²",
    "sqkm": "km²",
    "m2": "m²",
    "cm2": "cm²",
    "ha": "ha",
    "sqmi": "sq mi",
    "mi2": "sq mi",
    "sqft": "sq ft",
    "ft2": "sq ft",
    "m3": "m³",
    "km3": "km³",
    "cm3": "cm³",
    "cuft": "cu ft",
    "ft3": "cu ft",
    "km/h": "km/h",
    "kph": "km/h",
}


def _convert(args: Args) -> str:
    """``{{convert|5|km|mi}}`` → ``5 km``; ``{{convert|5|to|10|km}}`` → ``5 to 10 km``."""
    values = args.positional()
    if not values or not values[0]:
        return ""
    out = values[0]
    i = 1
    while i + 1 < len(values) and values[i].lower() in _RANGE_SEPARATORS:
        out += _RANGE_SEPARATORS[values[i].lower()] + values[i + 1]
        i += 2
    unit = values[i] if i < len(values) else ""
    return f"{out} {_unit_label(unit)}".strip()


_UNIT_MULTIPLIERS: Final = {"e3": "thousand", "e6": "million", "e9": "billion", "e12": "trillion"}
_UNIT_MULTIPLIER_RE: Final = re.compile(r"(e3|e6|e9|e12)(\D.*)")


def _unit_label(unit: str) -> str:
    """``km2`` → ``km²``, ``e6acre`` → ``million acre``; other units as written."""
    scaled = _UNIT_MULTIPLIER_RE.fullmatch(unit)
    if scaled is not None:
        return f"{_UNIT_MULTIPLIERS[scaled.group(1)]} {_unit_label(scaled.group(2))}"
    return _UNIT_LABELS.get(unit, unit)


def _unite(args: Args) -> str:
    """fr ``{{unité|3|km}}`` → ``3 km``; an integer after a unit is its exponent (km²)."""
    out: list[str] = []
    after_unit = False
    for value in args.positional():
        if not value:
            continue
        if after_unit and _NUMBER_RE.fullmatch(value):
            out[-1] += value.translate(SUPERSCRIPTS)
            after_unit = False
            continue
        out.append(value)
        after_unit = len(out) > 1
    return " ".join(out)


def _val(args: Args) -> str:
    """``{{val|1.23|e=5|u=m}}`` → ``1.23×10⁵ m``."""
    out = args.pos(1)
    uncertainty = args.pos(2)
    if uncertainty:
        out += f" ± {uncertainty}"
    exponent = args.named("e")
    if exponent:
        out += "×10" + exponent.translate(SUPERSCRIPTS)
    unit = args.named("u", "ul", "up", "upl")
    return f"{out} {unit}" if unit else out


def _fraction(args: Args) -> str:
    values = [value for value in args.positional() if value]
    if len(values) == 1:
        return f"1/{values[0]}"
    if len(values) == 2:
        return f"{values[0]}/{values[1]}"
    if len(values) >= 3:
        return f"{values[0]} {values[1]}/{values[2]}"
    return ""


_IPAC_KEYWORDS: Final = words("lang local pron ipa also uk us ca au nz ie audio")


def _ipac(args: Args) -> str:
    """``{{IPAc-en|ˈ|aɪ|n|s|t|aɪ|n}}`` → ``/ˈaɪnstaɪn/``."""
    pieces = [p for p in args.positional() if p and p.lower() not in _IPAC_KEYWORDS]
    text = "".join(pieces).replace("_", " ").strip()
    return f"/{text}/" if text else ""


def _nihongo(args: Args) -> str:
    """``{{nihongo|Tokyo|東京|Tōkyō}}`` → ``Tokyo (東京, Tōkyō)``."""
    english, *others = [args.pos(1), args.pos(2), args.pos(3)]
    others = [value for value in others if value]
    if not english:
        english = others.pop(0) if others else ""
    return f"{english} ({', '.join(others)})" if others else english


def _quote(args: Args) -> str:
    """Block quotations are prose: their text (and author) as a paragraph of its own."""
    text = args.text(1, "text", "quote", "zitat", "citation")
    author = args.named("author", "sign", "autor", "auteur", "character") or args.pos(2)
    if not text:
        return ""
    body = f"{text} — {author}" if author and len(author) < 200 else text
    return f"\n\n{body}\n\n"


def _marriage(args: Args) -> str:
    name, start, end = args.pos(1), args.pos(2), args.pos(3)
    if not start:
        return name
    years = f"{start}–{end}" if end else start
    return f"{name} (m. {years})" if name else f"m. {years}"


def _list_items(args: Args) -> str:
    values = [value for value in args.positional() if value]
    return HARD.join(values)


def _sortname(args: Args) -> str:
    return " ".join(value for value in (args.pos(1), args.pos(2)) if value)


def _sort(args: Args) -> str:
    return args.pos(2) or args.pos(1)


def _interlanguage_link(args: Args) -> str:
    return args.named("lt", "texte", "fr") or args.pos(1)


def _ru_interlanguage_link(args: Args) -> str:
    return args.pos(2) or args.pos(1)


def _literal(args: Args) -> str:
    value = args.pos(1)
    return f"lit. {APOS}{value}{APOS}" if value else ""


def _circa(args: Args) -> str:
    value = args.pos(1)
    return f"c. {value}" if value else "c."


def _siecle(suffix: str) -> TemplateRenderer:
    def render(args: Args) -> str:
        roman = args.pos(1)
        return f"{roman}e{suffix}" if roman else ""

    return render


def _roman(upper: bool | None) -> TemplateRenderer:
    def render(args: Args) -> str:
        value = args.pos(1)
        if upper is None:
            return value
        return value.upper() if upper else value.lower()

    return render


def _fr_quote(args: Args) -> str:
    value = args.pos(1)
    return f"« {value} »" if value else ""


def _chem(args: Args) -> str:
    return "".join(args.positional())


def _hlist(args: Args) -> str:
    return " · ".join(value for value in args.positional() if value)


def _ordinal_name(args: Args) -> str:
    """fr ``{{XIXe siècle}}``, ``{{1er|mai}}``: the name is the text."""
    value = args.pos(1)
    return f"{args.name} {value}" if value else args.name


def _ipa(args: Args) -> str:
    """``{{IPA|ˈaɪn}}`` and the newer ``{{IPA|de|ˈaɪn|lang}}`` (language code first)."""
    first, second = args.pos(1), args.pos(2)
    if second and first.lower() in LANGUAGE_CODES:
        return second
    return args.named("text") or first


def _quoted(args: Args) -> str:
    """``{{qi|…}}``, ``{{tq|…}}``: an inline quotation, in quotation marks."""
    value = args.text(1, "text")
    return f'"{value}"' if value else ""


def _native_with_gloss(args: Args) -> str:
    """fr ``{{grec ancien|ἀναρχία|anarkhía}}`` → ``ἀναρχία (anarkhía)``."""
    first, second = args.pos(1), args.pos(2)
    return f"{first} ({second})" if first and second else first or second


def _incise(args: Args) -> str:
    value = args.pos(1)
    return f" — {value} — " if value else ""


def _hyphenated(args: Args) -> str:
    """``{{nuclide2|einsteinium|254}}`` → ``einsteinium-254``."""
    return "-".join(value for value in (args.pos(1), args.pos(2)) if value)


def _ship(prefix: str) -> TemplateRenderer:
    """``{{USS|Hornet|CV-12}}`` → ``USS Hornet (CV-12)``."""

    def render(args: Args) -> str:
        name, designation = args.pos(1), args.pos(2)
        if not name:
            return ""
        return f"{prefix} {name} ({designation})" if designation else f"{prefix} {name}"

    return render


def _times_ten(args: Args) -> str:
    """en ``{{e|24}}`` → ``×10²⁴``; fr ``{{e}}`` (an ordinal suffix) → ``e``."""
    value = args.pos(1)
    if _NUMBER_RE.fullmatch(value):
        return "×10" + value.translate(SUPERSCRIPTS)
    return args.name


def _boxed_text(args: Args) -> str:
    """fr ``{{encadré|contenu=…}}``: a box of prose, as a paragraph."""
    value = args.named("contenu", "content", "text") or args.pos(1)
    return f"\n\n{value}\n\n" if value else ""


# The templates that are rendered (every other template is dropped). Names are compared
# case-insensitively with "_" read as a space; "lang-xx", "IPA-xx", "IPAc-xx", fr ordinals and
# infoboxes are recognised by their form (see ``prefix_renderer`` and ``is_infobox``).
COMMON_TEMPLATES: Final[dict[str, TemplateRenderer]] = {
    # measurements and numbers
    "convert": _convert,
    "cvt": _convert,
    "unité": _unite,
    "unit": _unite,
    "val": _val,
    "formatnum": _first,
    "fmtn": _first,
    "nts": _first,
    "nombre": _joined(" "),
    "nb": _joined(" "),
    "currency": _joined(" "),
    "frac": _fraction,
    "sfrac": _fraction,
    "fraction": _fraction,
    "e": _times_ten,
    "chem": _chem,
    "chem2": _first,
    "linktext": _joined(""),
    "nuclide2": _hyphenated,
    "simplenuclide2": _hyphenated,
    "bartable": _first,
    # languages and pronunciation
    "lang": _second,
    "langx": _second,
    "langue": _second,
    "rtl-lang": _second,
    "native name": _second,
    "script": _second,
    "transl": _last,
    "transliteration": _last,
    "ipa": _ipa,
    "respell": _joined("-"),
    "audio": _second,
    "nihongo": _nihongo,
    "japonais": _native_with_gloss,
    "grec ancien": _native_with_gloss,
    "polytonisch": _first,
    "lit": _literal,
    "literally": _literal,
    "literal translation": _literal,
    # dates
    "birth date": _date,
    "death date": _date,
    "birth date and age": _date,
    "death date and age": _death_date_and_age,
    "start date": _date,
    "end date": _date,
    "start date and age": _date,
    "end date and age": _date,
    "start-date": _first,
    "end-date": _first,
    "film date": _date,
    "dts": _date,
    "birth year and age": _first,
    "death year and age": _first,
    "as of": _as_of,
    "date": _plain_join,
    "date-": _plain_join,
    "date de naissance": _plain_join,
    "date de décès": _plain_join,
    "circa": _circa,
    "c.": _circa,
    "ca.": _circa,
    "floruit": _with_prefix("fl."),
    "fl.": _with_prefix("fl."),
    "s": _siecle(" siècle"),
    "siècle": _siecle(" siècle"),
    "-s": _siecle(" siècle av. J.-C."),
    "s-": _siecle(""),
    "séc": _with_prefix("século"),
    "romain": _roman(None),
    "rom": _roman(None),
    "rom-maj": _roman(True),
    "rom-min": _roman(False),
    "1er": _ordinal_name,
    "er": _ordinal_name,
    "re": _ordinal_name,
    # wrappers: the wrapped text
    "nowrap": _first,
    "nobr": _first,
    "nobreak": _first,
    "nobold": _first,
    "noitalic": _first,
    "small": _first,
    "smaller": _first,
    "big": _first,
    "larger": _first,
    "midsize": _first,
    "resize": _last,
    "sc": _first,
    "smallcaps": _first,
    "small caps": _first,
    "sup": _first,
    "sub": _first,
    "strong": _first,
    "em": _first,
    "code": _first,
    "mono": _first,
    "kbd": _first,
    "samp": _first,
    "var": _first,
    "math": _first,
    "mvar": _first,
    "bigmath": _first,
    "center": _first,
    "centre": _first,
    "abbr": _first,
    "abbrlink": _first,
    "tooltip": _first,
    "vanchor": _first,
    "visible anchor": _first,
    "vr": _first,
    "not a typo": _first,
    "sic": _joined(""),
    "unicode": _first,
    "angbr": _first,
    "keypress": _first,
    "longitem": _last,
    "legend": _second,
    "citation needed span": _first,
    "cn span": _first,
    "clarify span": _first,
    "refnec": _first,
    "référence nécessaire": _first,
    "pas clair": _first,
    "incise": _incise,
    "vol.": _with_prefix("vol."),
    "p.": _with_prefix("p."),
    "numéro": _with_prefix("no"),
    # names and links
    "flag": _first,
    "flagcountry": _first,
    "flagu": _first,
    "ill": _interlanguage_link,
    "interlanguage link": _interlanguage_link,
    "lien": _interlanguage_link,
    "нп3": _ru_interlanguage_link,
    "не переведено 3": _ru_interlanguage_link,
    "sortname": _sortname,
    "sort": _sort,
    "marriage": _marriage,
    "uss": _ship("USS"),
    "hms": _ship("HMS"),
    # quotations
    "quote": _quote,
    "blockquote": _quote,
    "bquote": _quote,
    "cquote": _quote,
    "quotation": _quote,
    "quote box": _quote,
    "zitat": _quote,
    "citation bloc": _quote,
    "encadré": _boxed_text,
    "qi": _quoted,
    "tq": _quoted,
    "quote inline": _quoted,
    # lists
    "hlist": _hlist,
    "flatlist": _first,
    "plainlist": _first,
    "indented plainlist": _first,
    "colonnes": _first,
    "columns-list": _last,
    "unbulleted list": _list_items,
    "ubl": _list_items,
    "bulleted list": _list_items,
    "collapsible list": _list_items,
    "vunblist": _list_items,
    # characters and words
    "'": _constant(APOS),
    "'s": _constant(f"{APOS}s"),
    "snd": _constant(" – "),
    "snds": _constant(" – "),
    "spnd": _constant(" – "),
    "sndash": _constant(" – "),
    "spaced ndash": _constant(" – "),
    "spaced en dash": _constant(" – "),
    "ndash": _constant("–"),
    "endash": _constant("–"),
    "en dash": _constant("–"),
    "mdash": _constant("—"),
    "em dash": _constant("—"),
    "mdashb": _constant(" — "),
    "nbsp": _constant(" "),
    "nbs": _constant(" "),
    "thinsp": _constant(" "),
    "thin space": _constant(" "),
    "sp": _constant(" "),
    "space": _constant(" "),
    "spaces": _constant(" "),
    "·": _constant(" · "),
    "dot": _constant(" · "),
    "middot": _constant(" · "),
    "•": _constant(" • "),
    "bull": _constant(" • "),
    ",": _constant(","),
    "=": _constant("="),
    "n/a": _label_or_first("N/A"),
    "na": _label_or_first("N/A"),
    "yes": _label_or_first("Yes"),
    "no": _label_or_first("No"),
    "won": _label_or_first("Won"),
    "nom": _label_or_first("Nominated"),
    "tba": _label_or_first("TBA"),
    "tbd": _label_or_first("TBD"),
    "unknown": _label_or_first("Unknown"),
}
LANGUAGE_TEMPLATES: Final[dict[str, dict[str, TemplateRenderer]]] = {
    "fr": {"citation": _fr_quote},
}
# fr ordinal templates whose name is their text: {{1er}}, {{23e}}, {{XIXe siècle}}, {{Ier}}
# (case-sensitive roman numerals, so that {{de}} or {{le}} never match).
_FR_ORDINAL_RE: Final = re.compile(
    r"(?:[0-9]+(?:e|er|re|ère|ème|es|ers|res)|[IVXLCDM]{2,}e|[IVXLCDM]+(?:er|re|ers))"
    r"(?: (?:siècle|millénaire))?(?: av\. J\.-C\.)?"
)
_INFOBOX_NAMES: Final = phrases(
    "taxobox|speciesbox|automatic taxobox|subspeciesbox|infraspeciesbox|virusbox|hybridbox|таксон"
)
_INFOBOX_PREFIXES: Final = ("infobox", "info/", "карточка", "ficha de")
INFOBOX_SKIP_KEY_RE: Final = re.compile(
    r"\b(?:image\w*|imagem|img|bild|caption|légende|legenda|alt|signature\w*|map\w*|carte|karte"
    r"|coord\w*|coordinates|logo\w*|flag\w*|seal\w*|emblem\w*|pushpin\w*|locator\w*|upright"
    r"|size|width|height|embed|onlysourced|qid|wikidata|photo|insignia|lang|ref|refs"
    r"|footnotes?|footnote \w+|blason|drapeau|charte|latitude|longitude)\b"
    r"|^(?:lat|long)[dms]?$|^(?:latns|longew|child)$"
)
# An infobox value that is a media file name ("Flag of Calvi.svg").
MEDIA_FILE_RE: Final = re.compile(
    r".*\.(?:jpe?g|png|svg|gif|tiff?|webp|xcf|ogg|ogv|oga|webm|mp3|wav|flac|midi?|pdf|djvu)",
    re.IGNORECASE | re.DOTALL,
)
MAGIC_VARIABLES_TITLE: Final = words(
    "pagename pagenamee fullpagename fullpagenamee subpagename basepagename"
)
CASE_FUNCTIONS: Final[dict[str, Callable[[str], str]]] = {
    "formatnum": lambda value: value,
    "lc": str.lower,
    "uc": str.upper,
    "lcfirst": lambda value: value[:1].lower() + value[1:],
    "ucfirst": lambda value: value[:1].upper() + value[1:],
}
TEMPLATE_PREFIX_RE: Final = re.compile(
    r"^(?:safesubst:|subst:)?\s*(?:template|modèle|vorlage|predefinição|шаблон|plantilla)\s*:\s*",
    re.IGNORECASE,
)
NAME_SPACES_RE: Final = re.compile(r"[\s_]+")

# Documentation: the rendered templates (name → what it becomes).
TEMPLATE_POLICY: Final[Mapping[str, str]] = MappingProxyType(
    {
        "convert, cvt": "value + unit as written (ranges kept): '5 km', '5 to 10 km'",
        "unité, unit, val, nombre": "value + unit ('3 km', '1.23×10⁵ m')",
        "formatnum:, fmtn, nts, frac, sfrac, chem": "the number ('1234', '1/2', 'H2O')",
        "lang, langx, lang-xx, langue, native name, transl": "the foreign text",
        "IPA, IPA-xx, IPAc-xx, respell, nihongo": "the pronunciation / native text",
        "birth/death/start/end date (and age), dts, as of": "'14 March 1879' (en), ISO otherwise",
        "date, date-, date de naissance/décès (fr)": "the words as written ('14 mars 1879')",
        "circa, c., floruit, s, siècle, 1er, XIXe siècle (fr)": "'c. 1900', 'XIXe siècle'",
        "nowrap, nobr, small, abbr, math, mvar, sup, sub…": "the wrapped text",
        "quote, blockquote, cquote, zitat, citation bloc": "the quotation as a paragraph",
        "ill, lien, нп3, sortname, sort, flag, marriage": "the visible text",
        "hlist, ubl, plainlist, flatlist": "the items",
        "', snd, mdash, nbsp, ·, yes, no, n/a": "the character or word",
        "ndash": "'–' unspaced, as MediaWiki renders it ({{snd}} is the spaced ' – ')",
        "PAGENAME, lc:, uc:, ucfirst:": "the page title / the cased text",
        "Infobox …, Taxobox, Speciesbox, Info/… (pt), Карточка (ru)": "'key: value' lines",
        "everything else": "dropped (citations, navboxes, hatnotes, maintenance, icons)",
    }
)


def normalise_template_name(raw: str) -> str:
    name = TEMPLATE_PREFIX_RE.sub("", raw.replace(CUT, "").strip())
    return NAME_SPACES_RE.sub(" ", name).strip().lower()


def is_infobox(name: str) -> bool:
    return name in _INFOBOX_NAMES or name.startswith(_INFOBOX_PREFIXES)


def prefix_renderer(name: str, raw_name: str) -> TemplateRenderer | None:
    if name.startswith("lang-"):
        return _first
    if name.startswith("ipac-"):
        return _ipac
    if name.startswith("ipa-"):
        return _first
    if _FR_ORDINAL_RE.fullmatch(raw_name):
        return _ordinal_name
    return None
