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
from functools import lru_cache

__all__ = [
    "CONTRARIES",
    "NEGATIONS",
    "Disagreement",
    "clauses",
    "find_disagreement",
    "negations",
    "numbers_in",
    "word_order",
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
    return list(_words(text))


@lru_cache(maxsize=4096)
def _words(text: str) -> tuple[str, ...]:
    # the rules read the same claim, quote and passage many times per sentence
    out: list[str] = []
    for match in _WORD.finditer(text):
        out.extend(_normal(match.group(0)))
    return tuple(out)


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


# Verbs that negate what follows ("ceased to be compulsory" = "is no longer compulsory"):
# a cue when the word after them is the one given.
NEGATING_VERBS: dict[str, dict[str, str]] = {
    "en": {"ceased": "to", "stopped": "being"},
    "fr": {"cessé": "de", "cessa": "de", "cesse": "de"},
    "de": {},
    "pt": {"deixou": "de", "deixaram": "de", "deixa": "de", "cessou": "de"},
    "ru": {"перестал": "", "перестала": "", "перестало": "", "перестали": ""},
}
# Words that make "no" an amount ("almost no support" ~ "very little support").
_APPROXIMATELY = frozenset(["almost", "nearly", "virtually", "practically", "hardly"])


def negations(text: str, language: str) -> list[str]:
    """The negation cues of ``text``.

    >>> negations("Lincoln didn't work as a lawyer.", "en"), negations("Il n'est pas né.", "fr")
    (['not'], ['n', 'pas'])
    >>> negations("O serviço deixou de ser obrigatório.", "pt")
    ['deixou']
    >>> negations("almost no support", "en")
    []
    """
    lang = _base(language)
    cues = NEGATIONS.get(lang, NEGATIONS["en"])
    verbs = NEGATING_VERBS.get(lang, {})
    found = []
    tokens = words(text)
    for i, word in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if word in cues:
            if not (word == "no" and i and tokens[i - 1] in _APPROXIMATELY):
                found.append(word)
        elif word in verbs and (not verbs[word] or following == verbs[word]):
            found.append(word)
    return found


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


def _digits_in(text: str) -> list[str]:
    """The numbers written in digits (:func:`numbers_in` without number words)."""
    return [
        re.sub(r"[.,]", "", raw) if _THOUSANDS.fullmatch(raw) else raw.replace(",", ".")
        for raw in _NUMBER.findall(text)
    ]


def names(text: str) -> list[str]:
    """The words of :func:`entities` (names, mostly)."""
    return [word for entity in entities(text) for word in entity]


def find_disagreement(
    claim: str, sentence: str, language: str, context: str = "", *, numbers_only: bool = False
) -> Disagreement | None:
    """The first way ``sentence`` (the passage sentence that best matches ``claim``) says
    otherwise, or None. ``context``: the rest of the passage (its title, other sentences),
    where a name or number of the claim may also appear. ``numbers_only``: the claim is in
    another language than the passage, so that only its numbers can be compared."""
    lang = _base(language)
    window = sentence
    sentence = best_sentence(claim, window)
    if numbers_only:
        return _number_disagreement(claim, sentence, context, digits_only=True)
    found = _polarity_disagreement(claim, window, lang, context)
    if found is not None:
        return found
    found = _number_disagreement(claim, sentence, context)
    if found is not None:
        return found
    found = _entity_disagreement(claim, sentence, context, lang)
    if found is not None:
        return found
    if _overlap(claim, sentence) >= SWAP_OVERLAP:  # relations: on a near restatement only
        found = _relation_disagreement(claim, sentence, lang)
        if found is not None:
            return found
    found = _slot_disagreement(claim, window, lang)
    if found is not None:
        return found
    return _agent_disagreement(claim, window, lang)


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


def _polarity_disagreement(
    claim: str, window: str, language: str, context: str = ""
) -> Disagreement | None:
    """A clause of the claim and the clause of the window that restates it best differ in
    polarity: "the euro is not the official currency" / "It is not a member of the EU, but
    the euro is the official currency" (the negation belongs to the other clause). Not for a
    clause none of whose names the passage has: that is another matter ("The official
    language is Catalan" / "there is no official language at the federal level")."""
    theirs = [part for sentence in _sentences(window) for part in clauses(sentence, language)]
    if not theirs:
        return None
    known = set(words(window)) | set(words(context))
    for part in clauses(claim, language):
        if sum(len(w) >= 4 for w in set(words(part))) < 2:
            continue  # "Em Portugal": too little to restate anything
        named = {word for entity in entities(part) for word in entity}
        if named and not named & known:
            continue
        negated = _negated(part, language)
        needed = POLARITY_OVERLAP if negated else PASSAGE_POLARITY_OVERLAP
        best = max(theirs, key=lambda clause: _overlap(part, clause))
        if negated != _negated(best, language) and _overlap(part, best) >= needed:
            cues = negations(part, language)
            return Disagreement("polarity", " ".join(cues), " ".join(negations(best, language)))
    return None


# Where a sentence divides into clauses: punctuation, and the conjunctions that join two
# statements (a contrast, a concession, or "and" before a negation: "… in salts and never as
# the free element").
_CLAUSE_WORDS = {
    "en": "but although though whereas while however yet because since so which who whom "
    "whose where when unless until",
    "fr": "mais bien quoique alors tandis cependant pourtant parce puisque qui dont où quand "
    "lorsque",
    "de": "aber obwohl obgleich während jedoch sondern weil dass wenn als",
    "pt": "mas embora enquanto porém contudo todavia porque onde quando qual quais",
    "ru": "но хотя однако а потому что который которая которые когда где если",
}
_AND = {"en": "and", "fr": "et", "de": "und", "pt": "e", "ru": "и"}
_CLAUSE_PUNCTUATION = re.compile(r"\s*[,;:()\[\]—–]\s*|\s+-\s+")


def clauses(sentence: str, language: str) -> list[str]:
    """The clauses of one sentence: split at punctuation, at contrastive and concessive
    conjunctions, and at "and" before a negation.

    >>> clauses("It is not a member of the EU, but the euro is its currency.", "en")
    ['It is not a member of the EU', 'the euro is its currency.']
    >>> clauses("They are found only in salts and never as the free element.", "en")
    ['They are found only in salts', 'never as the free element.']
    """
    lang = _base(language)
    breaks = frozenset(_CLAUSE_WORDS.get(lang, _CLAUSE_WORDS["en"]).split())
    conjunction = _AND.get(lang, "and")
    cues = NEGATIONS.get(lang, NEGATIONS["en"])
    out: list[str] = []
    for piece in _CLAUSE_PUNCTUATION.split(sentence):
        tokens = piece.split()
        current: list[str] = []
        for i, token in enumerate(tokens):
            bare = token.lower().strip(".!?\"'«»“”")
            following = tokens[i + 1].lower().strip(".!?\"'«»“”") if i + 1 < len(tokens) else ""
            if bare in breaks or (bare == conjunction and following in cues):
                if current:
                    out.append(" ".join(current))
                current = []
                continue
            current.append(token)
        if current:
            out.append(" ".join(current))
    return [part for part in out if _WORD.search(part)]


def word_order(claim: str, quote: str) -> float:
    """How much of the claim's word order the quote keeps: of the pairs of the claim's longer
    words (4+ letters) that the quote has, the share in the claim's order there (each word
    aligned with its first occurrence after the previous word's; 1.0 with fewer than two).
    A claim that reuses a passage's words in another order relates them otherwise ("Espanha
    cedeu Olivença a Portugal" / "Olivença foi cedido à Espanha"); a paraphrase mostly keeps
    the order of what it restates.

    >>> word_order("Walter Damrosch commissioned the piece from George Gershwin.",
    ...            "George Gershwin wrote the piece commissioned by Walter Damrosch.")
    0.1333
    >>> word_order("Einstein received the Nobel Prize.", "Einstein received the Nobel Prize.")
    1.0
    """
    theirs = words(quote)
    where: dict[str, list[int]] = {}
    for i, word in enumerate(theirs):
        where.setdefault(word, []).append(i)
    positions: list[int] = []
    seen: set[str] = set()
    last = -1
    for word in words(claim):
        if len(word) < 4 or word in seen or word not in where:
            continue
        seen.add(word)
        later = [i for i in where[word] if i > last]
        at = later[0] if later else where[word][0]
        positions.append(at)
        last = max(last, at)
    pairs = [(a, b) for i, a in enumerate(positions) for b in positions[i + 1 :]]
    if not pairs:
        return 1.0
    return round(sum(a < b for a, b in pairs) / len(pairs), 4)


def _number_disagreement(
    claim: str, sentence: str, context: str, *, digits_only: bool = False
) -> Disagreement | None:
    read = _digits_in if digits_only else numbers_in  # number words are per language
    stated = set(read(sentence)) | set(read(context))
    theirs = read(sentence)
    for number in read(claim):
        if number in stated:
            continue
        others = [n for n in theirs if n not in read(claim)]
        if _is_year(number):  # a year's counterpart is a year ("1937" / "100 µg": no)
            others = [n for n in others if _is_year(n)]
        if others:  # the counterpart: a number as long as the claim's
            counterpart = min(others, key=lambda n: len(n) != len(number))
            return Disagreement("number", number, counterpart)
    return None


def _is_year(number: str) -> bool:
    """A number that reads as a year (1000–2199)."""
    return len(number) == 4 and number.isdigit() and 1000 <= int(number) < 2200


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


# Words too common to mark a slot ("X was …", "of the X"): a slot is a name's neighbours
# when they say what it is or does ("born in X", "X developed").
_SLOT_STOPWORDS = frozenset(
    [
        "that",
        "with",
        "from",
        "have",
        "been",
        "also",
        "which",
        "their",
        "there",
        "were",
        "this",
        "these",
        "those",
        "then",
        "than",
        "into",
        "only",
        "more",
        "most",
        "other",
        "such",
        "some",
        "when",
        "where",
        "while",
        "after",
        "before",
        "during",
        "about",
        "under",
        "over",
        "dans",
        "pour",
        "avec",
        "sont",
        "était",
        "étaient",
        "sous",
        "entre",
        "plus",
        "leur",
        "leurs",
        "cette",
        "elle",
        "elles",
        "como",
        "para",
        "pelo",
        "pela",
        "pelos",
        "pelas",
        "mais",
        "foram",
        "eram",
        "sobre",
        "entre",
        "após",
        "também",
        "esta",
        "este",
        "seus",
        "suas",
        "über",
        "nach",
        "sind",
        "wird",
        "wurde",
        "eine",
        "einer",
        "einem",
        "einen",
        "sich",
        "auch",
        "oder",
    ]
)
_ARTICLES = frozenset(
    [
        "the",
        "a",
        "an",
        "le",
        "la",
        "les",
        "l",
        "un",
        "une",
        "des",
        "o",
        "os",
        "as",
        "um",
        "uma",
        "der",
        "die",
        "das",
        "den",
        "dem",
        "des",
        "ein",
        "eine",
    ]
)


def _content(words_: list[str]) -> list[str]:
    return [w for w in words_ if w not in _ARTICLES]


def _slot_disagreement(claim: str, window: str, language: str) -> Disagreement | None:
    """A name of the claim stands where a sentence of the passage has another name, in the
    same words: "born in Illinois" / "Born in Hodgenville" (the two words before it), "Kant
    developed" / "Schopenhauer developed" (the word after it), and the passage never puts the
    claim's name there. Not when the other name follows the claim's in the claim ("the French
    physicist Ampère": an epithet) or the claim's name follows closely in the passage ("à
    República Popular da China": a longer name)."""
    if language == "de":  # every German noun is capitalised
        return None
    claim_words = _content(words(claim))
    sentences = [_content(words(sentence)) for sentence in _sentences(window)]
    their_entities = entities(window)
    starts = {e[0]: e for e in their_entities}
    ends = {e[-1]: e for e in their_entities}
    for entity in entities(claim):
        if entity[0] not in claim_words or entity[-1] not in claim_words:
            continue
        first = claim_words.index(entity[0])
        last = claim_words.index(entity[-1], first)
        before = tuple(claim_words[max(0, first - 2) : first])
        after = claim_words[last + 1] if last + 1 < len(claim_words) else ""
        found: tuple[str, ...] | None = None
        if len(before) == 2 and any(_slot_word(w) for w in before):
            found = _filled(sentences, before, starts, entity, left=True)
            near = claim_words[last + 1 : last + 1 + _NEAR]
        if found is None and _slot_word(after):
            found = _filled(sentences, (after,), ends, entity, left=False)
            near = claim_words[max(0, first - _NEAR) : first]
        if found is not None and not set(found) & set(near):
            return Disagreement("entity", " ".join(entity), " ".join(found))
    return None


_NEAR = 3  # words: how close a name's epithet or the rest of a longer name stands


_STEM = 5  # letters: "killed" / "killing", "escrito" / "escreveu" share a verb's stem


def _agent_disagreement(claim: str, window: str, language: str) -> Disagreement | None:
    """The claim's agent ("written by Fernando Pessoa", "killed by Hector") is not who the
    passage says did it: a clause of the passage with the claim's verb (by its first letters)
    names another agent, after the same agent word ("killed … by Paris") or just before the
    verb ("Camões escreveu"), and never the claim's.

    >>> _agent_disagreement("Achilles was killed by Hector.",
    ...                     "Others say he was killed near the end of the war by Paris.", "en")
    Disagreement(kind='entity', claim='hector', passage='paris')
    """
    agents = set(_AGENT.get(language, "").split())
    if not agents or language == "de":
        return None
    claim_words = words(claim)
    for i, word in enumerate(claim_words[1:-1], start=1):
        verb = claim_words[i - 1]
        if word not in agents or len(verb) < _STEM:
            continue
        agent = next((e for e in entities(claim) if e[0] == claim_words[i + 1]), None)
        if agent is None:
            continue
        for sentence in _sentences(window):
            for part in clauses(sentence, language):
                found = _other_agent(part, verb[:_STEM], agents, agent)
                if found is not None:
                    return Disagreement("entity", " ".join(agent), " ".join(found))
    return None


def _other_agent(
    clause: str, stem: str, agents: set[str], agent: tuple[str, ...]
) -> tuple[str, ...] | None:
    """Another name that does, in ``clause``, what the verb of ``stem`` says."""
    tokens = words(clause)
    if set(agent) & set(tokens):
        return None  # the claim's agent is there
    starts = {e[0]: e for e in entities(clause)}
    ends = {e[-1]: e for e in entities(clause)}
    for at, token in enumerate(tokens):
        if not token.startswith(stem):
            continue
        for j in range(at + 1, len(tokens) - 1):  # "killed … by Paris"
            if tokens[j] in agents and tokens[j + 1] in starts:
                return starts[tokens[j + 1]]
        if at > 0 and tokens[at - 1] in ends:  # "Camões escreveu"
            return ends[tokens[at - 1]]
    return None


def _slot_word(word: str) -> bool:
    return len(word) >= 4 and word not in _SLOT_STOPWORDS


def _filled(
    sentences: list[list[str]],
    slot: tuple[str, ...],
    names: dict[str, tuple[str, ...]],
    entity: tuple[str, ...],
    *,
    left: bool,
) -> tuple[str, ...] | None:
    """Another name that fills ``slot`` in one of ``sentences`` (after it when ``left``,
    else before it), when ``entity`` never does (nor stands within a few words of it)."""
    n = len(slot)
    other: tuple[str, ...] | None = None
    for words_ in sentences:
        for i in range(len(words_) - n + 1):
            if tuple(words_[i : i + n]) != slot:
                continue
            at = i + n if left else i - 1
            if not 0 <= at < len(words_):
                continue
            # after a left slot, the claim's name may end a longer name ("à República
            # Popular da China"); before a right slot, a name ends there
            around = words_[at : at + _NEAR + 1] if left else words_[at : at + 1]
            if set(around) & set(entity):
                return None  # the passage also puts the claim's name there
            name = names.get(words_[at])
            # a capitalised first word may be no name at all ("Desde 2004, o serviço")
            if name is not None and at > 0 and not set(name) & set(entity):
                other = other or name
    return other


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
        # prepositions and conjunctions that often open a sentence
        "desde",
        "depuis",
        "seit",
        "após",
        "até",
        "quando",
        "como",
        "durante",
        "segundo",
        "après",
        "avant",
        "lors",
        "pendant",
        "nach",
        "vor",
        "bei",
        "mit",
        "als",
        "wenn",
        "although",
        "though",
        "because",
        "unlike",
        "following",
    ]
)


def entities(text: str) -> list[tuple[str, ...]]:
    """Runs of capitalised words (one name each), lower-cased, without sentence starters.

    >>> entities("Walter Damrosch composed An American in Paris for George Gershwin.")
    [('walter', 'damrosch'), ('american',), ('paris',), ('george', 'gershwin')]
    """
    return list(_entities(text))


@lru_cache(maxsize=4096)
def _entities(text: str) -> tuple[tuple[str, ...], ...]:
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
    return tuple(tuple(run) for run in runs)


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
        # the words that relate them stand between them on both sides ("composed X for");
        # a name and its epithet in the other order ("the French physicist Ampère" /
        # "Ampère, French physicist") relate nothing
        ours = words(claim)
        start = max(ours.index(w) for w in first if w in ours)
        end = min(ours.index(w) for w in last if w in ours)
        between = {w for w in ours[start + 1 : end] if len(w) >= 4} - named_there
        if between & set(theirs[last_at + 1 : first_at]):
            a, b = " ".join(first), " ".join(last)
            return Disagreement("relation", f"{a} … {b}", f"{b} … {a}")
    return None
