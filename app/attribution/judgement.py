"""Whether a quoted passage says *otherwise* than a claim: the contradiction checks of answer
attribution (:mod:`app.attribution.verifier`), rules over the words of the claim and of the
passage sentence that matches it best.

No NLI or cross-encoder model ships its weights on PyPI, so meaning is judged by what can be
checked deterministically, in the five languages the service writes attributions for (en, fr,
de, pt, ru):

- **polarity** — one of the two is negated and the other is not ("never worked as a lawyer" /
  "became a lawyer"): :func:`negations`;
- **number** — the claim's number (a year, an amount) is not the passage's, and the passage
  gives one of the same kind where the claim gives its own: :func:`numbers_in`;
- **entity** — a name of the claim is nowhere in the passage, and the matching sentence names
  someone or something else in its place ("born in Munich" / "born in Hamburg");
- **relation** — the passage has the contrary of a word of the claim (born / died, north /
  south, largest / smallest…: :data:`CONTRARIES`), or the same names in swapped roles ("A
  composed X for B" / "B composed X for A"; a passive voice on one side only is not a swap).

Each check returns a :class:`Disagreement` that says what disagrees, so that the answer
engine can show it. What these rules cannot judge — a paraphrase that inverts meaning without
a negation word, quantities in words, relations outside the lexicon — is listed in the README.

>>> find_disagreement("Einstein was never awarded a Nobel Prize.",
...                   "Einstein received the 1921 Nobel Prize in Physics.", "en")
Disagreement(kind='polarity', claim='never', passage='')
>>> find_disagreement("He won the Nobel Prize in 1925.", "He won the Nobel Prize in 1921.", "en")
Disagreement(kind='number', claim='1925', passage='1921')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "CONTRARIES",
    "NEGATIONS",
    "Disagreement",
    "find_disagreement",
    "negations",
    "numbers_in",
]

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_THOUSANDS = re.compile(r"\d{1,3}(?:[.,]\d{3})+")

NEGATIONS: dict[str, frozenset[str]] = {
    "en": frozenset(
        [
            "not",
            "no",
            "never",
            "neither",
            "nor",
            "none",
            "nobody",
            "nothing",
            "nowhere",
            "cannot",
            "without",
        ]
    ),
    "fr": frozenset(
        ["ne", "n", "pas", "jamais", "aucun", "aucune", "ni", "non", "sans", "rien", "nullement"]
    ),
    "de": frozenset(
        [
            "nicht",
            "nie",
            "niemals",
            "kein",
            "keine",
            "keinen",
            "keinem",
            "keiner",
            "keines",
            "ohne",
            "weder",
            "nichts",
        ]
    ),
    "pt": frozenset(["não", "nao", "nunca", "jamais", "nenhum", "nenhuma", "nem", "sem", "nada"]),
    "ru": frozenset(["не", "нет", "никогда", "ни", "без", "ничего", "никто"]),
}
"""Negation cues per language (lower case; English ``n't`` is counted too)."""

_PAIRS = {
    "en": (
        "born:died birth:death north:south east:west northern:southern eastern:western "
        "northeast:southwest northwest:southeast first:last largest:smallest "
        "biggest:smallest highest:lowest longest:shortest oldest:youngest older:younger "
        "earliest:latest before:after won:lost win:lose victory:defeat increase:decrease "
        "increased:decreased rose:fell male:female husband:wife father:mother son:daughter "
        "brother:sister king:queen upper:lower inner:outer maximum:minimum above:below "
        "import:export imports:exports predecessor:successor heavier:lighter "
        "heaviest:lightest more:less most:least lighter:heavier teacher:student "
        "teacher:pupil current:charge western:eastern east:west"
    ),
    "fr": (
        "né:mort née:morte naissance:mort nord:sud est:ouest premier:dernier "
        "première:dernière plus:moins grand:petit avant:après père:mère fils:fille "
        "frère:sœur roi:reine maire:ministre natif:maire"
    ),
    "de": (
        "geboren:gestorben nord:süd nördlich:südlich ost:west östlich:westlich erste:letzte "
        "größte:kleinste vor:nach vater:mutter sohn:tochter bruder:schwester könig:königin"
    ),
    "pt": (
        "nasceu:morreu nascimento:morte norte:sul leste:oeste este:oeste primeiro:último "
        "primeira:última maior:menor antes:depois pai:filho mãe:filha irmão:irmã rei:rainha "
        "cedeu:recebeu"
    ),
    "ru": (
        "родился:умер рождения:смерти север:юг восток:запад первый:последний "
        "крупнейший:наименьший до:после отец:мать сын:дочь брат:сестра"
    ),
}


def _contraries(pairs: str) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for pair in pairs.split():
        a, b = pair.split(":")
        out.setdefault(a, set()).add(b)
        out.setdefault(b, set()).add(a)
    return {word: frozenset(others) for word, others in out.items()}


CONTRARIES: dict[str, dict[str, frozenset[str]]] = {
    language: _contraries(pairs) for language, pairs in _PAIRS.items()
}
"""Words whose contrary in the passage contradicts the claim, per language."""

# Passive-voice agents: with one on one side only, names come in the other order.
_AGENT = {"en": "by", "fr": "par", "de": "von", "pt": "por pelo pela pelos pelas", "ru": ""}


@dataclass(frozen=True, slots=True)
class Disagreement:
    """What the passage says otherwise: ``kind`` (polarity, number, entity, relation), the
    claim's part and the passage's (empty where the passage has no counterpart)."""

    kind: str
    claim: str
    passage: str

    def describe(self) -> str:
        """One line for a reader.

        >>> Disagreement("number", "1925", "1921").describe()
        'the passage says 1921 where the claim says 1925'
        """
        if self.kind == "polarity":
            side = "the claim" if self.claim else "the passage"
            return f"the passage and the claim differ in polarity ({side} is negated)"
        if self.passage:
            return f"the passage says {self.passage} where the claim says {self.claim}"
        return f"the passage does not say {self.claim}"


def _base(language: str) -> str:
    base = (language or "en").lower().split("-")[0]
    return "en" if base == "simple" else base


def words(text: str) -> list[str]:
    """Lower-case words (``n't`` split off as ``not``)."""
    out: list[str] = []
    for match in _WORD.finditer(text):
        out.extend(_normal(match.group(0)))
    return out


def _normal(token: str) -> list[str]:
    """One matched word as compared: lower case, ``n't`` → ``not``, possessive ``'s``
    dropped, French elisions split (``l'hôtel`` → ``l``, ``hôtel``)."""
    word = token.lower().replace("’", "'")
    if word.endswith("n't"):
        return [word[:-3], "not"]
    if word.endswith("'s"):
        return [word[:-2]]
    if "'" in word:
        head, tail = word.split("'", 1)
        return [head, tail]
    return [word]


def negations(text: str, language: str) -> list[str]:
    """The negation cues of ``text``.

    >>> negations("Lincoln didn't work as a lawyer.", "en"), negations("Il n'est pas né.", "fr")
    (['not'], ['n', 'pas'])
    """
    cues = NEGATIONS.get(_base(language), NEGATIONS["en"])
    return [w for w in words(text) if w in cues]


def _negated(text: str, language: str) -> bool:
    cues = negations(text, language)
    if _base(language) == "fr":  # "ne … pas" is one negation
        return bool(cues)
    return len(cues) % 2 == 1


_NUMBER_WORDS: dict[str, int] = {}
for _language_words in (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty",
    "zéro un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze "
    "seize dix-sept dix-huit dix-neuf vingt",
    "zero um dois três quatro cinco seis sete oito nove dez onze doze treze catorze quinze "
    "dezasseis dezessete dezoito dezanove vinte",
    "null eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf",
):
    for _value, _word in enumerate(_language_words.split()):
        _NUMBER_WORDS.setdefault(_word, _value)
_TENS = {"thirty": 30, "forty": 40, "fifty": 50, "hundred": 100, "trente": 30, "quarante": 40,
         "cinquante": 50, "cent": 100, "trinta": 30, "quarenta": 40, "cinquenta": 50,
         "cem": 100, "dreißig": 30}  # fmt: skip
_NUMBER_WORDS.update(_TENS)
# "one", "un", "um" are also articles; zero and null rarely state a quantity.
for _article in ("one", "un", "um", "eins", "zero", "null"):
    del _NUMBER_WORDS[_article]


def numbers_in(text: str) -> list[str]:
    """The numbers of ``text`` in order, normalised (thousands separators removed, decimal
    comma → dot).

    >>> numbers_in("In 1921, 3,5 % of 12,000 people")
    ['1921', '3.5', '12000']
    """
    out = []
    for raw in _NUMBER.findall(text):
        out.append(re.sub(r"[.,]", "", raw) if _THOUSANDS.fullmatch(raw) else raw.replace(",", "."))
    for match in re.finditer(r"[^\W\d_]+(?:-[^\W\d_]+)?", text.lower()):
        word = match.group(0)
        if word in _NUMBER_WORDS:
            out.append(str(_NUMBER_WORDS[word]))
        elif "-" in word and word.split("-")[0] in _NUMBER_WORDS:  # twenty-five
            head, _, tail = word.partition("-")
            out.append(str(_NUMBER_WORDS[head] + _NUMBER_WORDS.get(tail, 0)))
    return out


def names(text: str) -> list[str]:
    """The words of :func:`entities` (names, mostly)."""
    return [word for entity in entities(text) for word in entity]


def find_disagreement(
    claim: str, sentence: str, language: str, context: str = ""
) -> Disagreement | None:
    """The first way ``sentence`` (the passage sentence that best matches ``claim``) says
    otherwise, or None. ``context``: the rest of the passage (its title, other sentences),
    where a name or number of the claim may also appear."""
    lang = _base(language)
    window = sentence
    sentence = best_sentence(claim, window)
    claim_negated = _negated(claim, lang)
    needed = POLARITY_OVERLAP if claim_negated else PASSAGE_POLARITY_OVERLAP
    if claim_negated != _negated(sentence, lang) and _overlap(claim, sentence) >= needed:
        cues = negations(claim, lang)
        return Disagreement("polarity", " ".join(cues), " ".join(negations(sentence, lang)))
    found = _number_disagreement(claim, sentence, context)
    if found is not None:
        return found
    found = _entity_disagreement(claim, sentence, context, lang)
    if found is not None:
        return found
    if _overlap(claim, sentence) < SWAP_OVERLAP:
        return None  # relations are compared on a near restatement only
    return _relation_disagreement(claim, sentence, lang)


# How much of the claim (its 4+ letter words) the passage's sentence must restate before a
# difference in polarity or relation counts: a negation in a sentence on another point of the
# same article is not a contradiction. Chosen on claims-dev.jsonl.
POLARITY_OVERLAP = 0.34
PASSAGE_POLARITY_OVERLAP = 0.5
SWAP_OVERLAP = 0.6


def _overlap(claim: str, sentence: str) -> float:
    """Share of the claim's longer words (4+ letters: content words, mostly) in the sentence."""
    content = {w for w in words(claim) if len(w) >= 4}
    if not content:
        return 1.0
    return len(content & set(words(sentence))) / len(content)


def _number_disagreement(claim: str, sentence: str, context: str) -> Disagreement | None:
    stated = set(numbers_in(sentence)) | set(numbers_in(context))
    theirs = numbers_in(sentence)
    for number in numbers_in(claim):
        if number in stated:
            continue
        others = [n for n in theirs if n not in numbers_in(claim)]
        if others:  # the counterpart: a number as long as the claim's (a year for a year)
            counterpart = min(others, key=lambda n: len(n) != len(number))
            return Disagreement("number", number, counterpart)
    return None


def _entity_disagreement(
    claim: str, sentence: str, context: str, language: str
) -> Disagreement | None:
    if language == "de":  # every German noun is capitalised
        return None
    known = set(words(sentence)) | set(words(context))
    claim_words = words(claim)
    their_words = words(sentence)
    their_entities = {e[0]: e for e in entities(sentence)}
    claim_entities = entities(claim)
    absent = [e for e in claim_entities if not any(w in known for w in e)]
    if len(absent) != 1 or len(claim_entities) < 2:
        return None  # the claim is about something else, or about several other things
    for entity in absent:
        # the same slot in the passage's sentence holds another name: "born in Munich" /
        # "born in Hamburg" (the word before the name, found before a name there)
        before = (
            claim_words[claim_words.index(entity[0]) - 1] if claim_words.index(entity[0]) else ""
        )
        for i, word in enumerate(their_words[:-1]):
            other = their_entities.get(their_words[i + 1])
            if word == before and other is not None and not set(other) & set(claim_words):
                return Disagreement("entity", " ".join(entity), " ".join(other))
    return None


def _relation_disagreement(claim: str, sentence: str, language: str) -> Disagreement | None:
    contraries = CONTRARIES.get(language, {})
    claim_words, their_list = words(claim), words(sentence)
    their_words = set(their_list)
    for word in claim_words:
        for contrary in contraries.get(word, ()):
            if word in their_words:
                # both sides have both words, in the other order: "lighter … heavier" /
                # "heavier … lighter"
                if (
                    contrary in claim_words
                    and contrary in their_words
                    and (claim_words.index(word) < claim_words.index(contrary))
                    != (their_list.index(word) < their_list.index(contrary))
                ):
                    return Disagreement("relation", f"{word} … {contrary}", f"{contrary} … {word}")
                continue
            if contrary in their_words and contrary not in claim_words:
                return Disagreement("relation", word, contrary)
    return _swapped_roles(claim, sentence, language)


# Capitalised only because they start a sentence: not names.
_STARTERS = frozenset(
    [
        "the",
        "a",
        "an",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "of",
        "to",
        "during",
        "after",
        "before",
        "among",
        "with",
        "as",
        "when",
        "while",
        "since",
        "it",
        "he",
        "she",
        "they",
        "his",
        "her",
        "its",
        "their",
        "this",
        "that",
        "these",
        "those",
        "there",
        "every",
        "each",
        "some",
        "many",
        "most",
        "le",
        "la",
        "les",
        "l",
        "un",
        "une",
        "des",
        "en",
        "au",
        "aux",
        "du",
        "de",
        "dans",
        "pour",
        "par",
        "il",
        "elle",
        "ils",
        "elles",
        "selon",
        "o",
        "a",
        "os",
        "as",
        "um",
        "uma",
        "em",
        "no",
        "na",
        "nos",
        "nas",
        "do",
        "da",
        "dos",
        "das",
        "para",
        "por",
        "pelo",
        "pela",
        "ele",
        "ela",
        "der",
        "die",
        "das",
        "ein",
        "eine",
        "im",
        "am",
        "er",
        "sie",
        "es",
    ]
)


def entities(text: str) -> list[tuple[str, ...]]:
    """Runs of capitalised words (one name each), lower-cased, without sentence starters.

    >>> entities("Walter Damrosch composed An American in Paris for George Gershwin.")
    [('walter', 'damrosch'), ('american',), ('paris',), ('george', 'gershwin')]
    """
    runs: list[list[str]] = []
    for sentence in _sentences(text):
        joined = False  # whether the next capitalised word continues the last run
        last_end = 0
        for i, match in enumerate(_WORD.finditer(sentence)):
            word = match.group(0)
            adjacent = joined and not sentence[last_end : match.start()].strip()
            last_end = match.end()
            starter = i == 0 and _normal(word)[-1] in _STARTERS
            if not word[:1].isupper() or starter or len(word) < 2:
                joined = False
                continue
            tokens = [t for t in _normal(word) if t not in _STARTERS]
            if not tokens:
                joined = False
                continue
            if runs and adjacent:
                runs[-1].extend(tokens)
            else:
                runs.append(tokens)
            joined = True
    return [tuple(run) for run in runs]


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=\S)")


def _sentences(text: str) -> list[str]:
    return [part for part in _SENTENCE_END.split(text) if part.strip()]


def best_sentence(claim: str, window: str) -> str:
    """The sentence of ``window`` that shares most words with ``claim``."""
    wanted = set(words(claim))
    parts = _sentences(window) or [window]
    return max(parts, key=lambda part: len(wanted & set(words(part))))


def _swapped_roles(claim: str, sentence: str, language: str) -> Disagreement | None:
    """The claim's first and last names (of those the sentence has) in the other order in
    the sentence, neither side in the passive voice (or both): "A composed X for B" against
    "B composed X for A"."""
    agents = set(_AGENT.get(language, "").split())
    if bool(agents & set(words(claim))) != bool(agents & set(words(sentence))):
        return None
    theirs = words(sentence)
    named_there = {w for entity in entities(sentence) for w in entity}
    placed: list[tuple[int, tuple[str, ...]]] = []
    for entity in entities(claim):
        if not set(entity) & named_there:
            continue  # a name only here (or a capitalised word that is not one there)
        positions = [theirs.index(w) for w in entity if w in theirs]
        if positions:
            placed.append((min(positions), entity))
    if len(placed) < 2:
        return None
    (first_at, first), (last_at, last) = placed[0], placed[-1]
    if first_at > last_at and not set(first) & set(last):
        a, b = " ".join(first), " ".join(last)
        return Disagreement("relation", f"{a} … {b}", f"{b} … {a}")
    return None
