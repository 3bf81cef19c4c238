"""The cleaner's configuration (:class:`CleanerConfig`) and its word lists: excluded
section headings, file and category namespaces, interlanguage-link prefixes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class CleanerConfig:
    """Knobs of the cleaner.

    ``language`` is the wiki's content language (``en``, ``simple``, ``fr``, ``de``…): it picks
    the date format of ``{{birth date}}``-style templates (English month names for ``en`` and
    ``simple``, ISO ``1879-03-14`` otherwise) and the meaning of the few template names that
    differ between wikis (fr ``{{citation}}`` is a quotation, en ``{{citation}}`` a reference).
    ``include_tables``/``include_infobox`` keep the linearised tables / infobox lines,
    ``include_math`` keeps ``<math>`` formulas that linearise to plain text.
    ``extra_excluded_headings`` adds headings (case-insensitive) whose sections are dropped.
    """

    language: str = "en"
    include_tables: bool = True
    include_infobox: bool = True
    include_math: bool = True
    extra_excluded_headings: frozenset[str] = field(default_factory=frozenset)


def words(text: str) -> frozenset[str]:
    """A set from whitespace-separated words."""
    return frozenset(text.split())


def pairs(text: str) -> dict[str, str]:
    """A mapping from whitespace-separated ``key value`` pairs."""
    items = text.split()
    return dict(zip(items[0::2], items[1::2], strict=True))


def phrases(text: str) -> frozenset[str]:
    """A set from ``|``-separated phrases (which may hold spaces)."""
    return frozenset(" ".join(phrase.split()) for phrase in text.split("|") if phrase.strip())


# Sections that carry no article prose, by wiki language. Matching uses all lists at once: a
# frwiki page read with the default config still loses its "Notes et références".
EXCLUDED_SECTION_HEADINGS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "en": phrases(
            "references|reference|external links|external link|see also|further reading|notes"
            "|note|bibliography|sources|citations|footnotes|works cited|cited works|cited sources"
            "|general references|general bibliography|explanatory notes|source notes"
            "|additional reading"
        ),
        "simple": phrases(
            "references|other websites|related pages|other pages|notes|sources|further reading"
            "|bibliography"
        ),
        "fr": phrases(
            "notes et références|références|référence|liens externes|lien externe|voir aussi"
            "|bibliographie|articles connexes|article connexe|notes|sources|webographie"
        ),
        "de": phrases(
            "einzelnachweise|weblinks|literatur|siehe auch|anmerkungen|quellen|belege|fußnoten"
            "|referenzen"
        ),
        "pt": phrases(
            "referências|ligações externas|ver também|bibliografia|notas|fontes"
            "|leitura adicional|leitura complementar"
        ),
        "ru": phrases("примечания|литература|ссылки|см. также|источники|сноски"),
    }
)
ALL_EXCLUDED: Final = frozenset().union(*EXCLUDED_SECTION_HEADINGS.values())
# "Notes and references", "Notes et références", "Sources, Literatur"…
HEADING_CONJUNCTION_RE: Final = re.compile(r"\s*(?:,|&|/|\band\b|\bet\b|\bund\b|\be\b|\bи\b)\s*")

# Namespace names (lower case) whose links are dropped with their captions.
FILE_NAMESPACES: Final = words(
    """
    file image media datei bild medium fichier média arquivo imagem ficheiro mídia файл
    изображение медиа archivo imagen immagine bestand afbeelding plik grafika
    """
)
CATEGORY_NAMESPACES: Final = words(
    "category kategorie catégorie categoria категория categoría categorie kategoria kategori"
)
# Wikipedia language editions (interlanguage-link prefixes), including legacy aliases.
LANGUAGE_CODES: Final = words(
    """
    aa ab ace ady af ak als alt am ami an ang anp ar arc ary arz as ast atj av avk awa ay az
    azb ba ban bar bat-smg bbc bcl bdr be be-tarask be-x-old bew bg bh bi bjn blk bm bn bo bpy
    br bs btm bug bxr ca cbk-zam cdo ce ceb ch cho chr chy ckb co cr crh cs csb cu cv cy da dag
    de dga din diq dsb dtp dty dv dz ee el eml en eo es et eu ext fa fat ff fi fiu-vro fj fo fon
    fr frp frr fur fy ga gag gan gcr gd gl glk gn gom gor got gpe gu guc gur guw gv ha hak haw
    he hi hif ho hr hsb ht hu hy hyw hz ia iba id ie ig igl ii ik ilo inh io is it iu ja jam
    jbo jv ka kaa kab kbd kbp kcg kg kge ki kj kk kl km kn knc ko koi kr krc ks ksh ku kus kv
    kw ky la lad lb lbe lez lfn lg li lij lld lmo ln lo lrc lt ltg lv mad mai map-bms mdf mg mh
    mhr mi min mk ml mn mni mnw mo mos mr mrj ms mt mus mwl my myv mzn na nah nap nb nds nds-nl
    ne new ng nia nl nn no nov nqo nr nrm nso nup nv ny oc olo om or os pa pag pam pap pcd pcm
    pdc pfl pi pih pl pms pnb pnt ps pt pwn qu rm rmy rn ro roa-rup roa-tara rsk ru rue rw sa
    sah sat sc scn sco sd se sg sh shi shn si simple sk skr sl sm smn sn so sq sr srn ss st stq
    su sv sw syl szl szy ta tay tcy tdd te tet tg th ti tk tl tly tn to tpi tr trv ts tt tum tw
    ty tyv udm ug uk ur uz ve vec vep vi vls vo wa war wo wuu xal xh xmf yi yo yue za zea zgh zh
    zh-classical zh-min-nan zh-yue zu
    """
)
