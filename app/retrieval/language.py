"""The language of a query: langid's naive-Bayes model (the ``py3langid`` package; the model
ships inside it, numpy only, ~0.05 ms per question), restricted to the languages the index
holds, so a question is never assigned a language nothing can be retrieved in.

On the multilingual dev questions (159, in de, en, fr, pt) restricted to the sample index's
languages it labels 159 of 159 correctly; unrestricted (97 languages) 158 (an English question
full of names went to Latin). A label is returned only with probability ≥ ``min_confidence``
(default 0.8); below that the query counts as language-unknown and nothing is restricted.

>>> detector = LanguageDetector(["en", "fr", "de", "pt"])
>>> detector.detect("Où est née Joséphine Baker ?").language
'fr'
>>> detector.detect("Welche Stadt ist die Hauptstadt von Portugal?").language
'de'
>>> detector.detect("???").language is None
True
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MIN_CONFIDENCE = 0.8
_LETTERS = re.compile(r"\w", re.UNICODE)
# Wikipedia language codes that langid knows under another code, or as a variant
_ALIASES = {"simple": "en", "nb": "no", "als": "de"}


@dataclass(frozen=True, slots=True)
class DetectedLanguage:
    """``language`` (a code of the index, or None when unsure) and langid's probability."""

    language: str | None
    confidence: float


class LanguageDetector:
    """Detects among ``languages`` (the index's; codes langid does not know are ignored)."""

    def __init__(self, languages: Iterable[str], *, min_confidence: float = MIN_CONFIDENCE):
        self.min_confidence = min_confidence
        wanted = sorted({code for code in languages if code})
        self.languages: tuple[str, ...] = tuple(wanted)
        self._by_langid: dict[str, str] = {}
        for code in wanted:
            self._by_langid.setdefault(_ALIASES.get(code, code), code)
        self._identifier: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._identifier is None:
            with self._lock:
                if self._identifier is None:
                    from py3langid import langid

                    identifier = langid.LanguageIdentifier.from_model_file(
                        langid.MODEL_FILE, norm_probs=True
                    )
                    known = [c for c in self._by_langid if c in identifier.nb_classes]
                    self._by_langid = {c: self._by_langid[c] for c in known}
                    if len(known) >= 2:
                        identifier.set_languages(known)
                    self._identifier = identifier
        return self._identifier

    def detect(self, text: str) -> DetectedLanguage:
        """The language of ``text``; ``language`` is None for a text without letters, an
        index of one language (nothing to decide), or a guess below ``min_confidence``."""
        if len(self._by_langid) == 1:
            only = next(iter(self._by_langid.values()))
            return DetectedLanguage(only, 1.0)
        if not self._by_langid or not _LETTERS.search(text):
            return DetectedLanguage(None, 0.0)
        identifier = self._load()
        if len(self._by_langid) < 2:
            return DetectedLanguage(next(iter(self._by_langid.values()), None), 1.0)
        label, probability = identifier.classify(text)
        confidence = round(float(probability), 4)
        if confidence < self.min_confidence:
            return DetectedLanguage(None, confidence)
        return DetectedLanguage(self._by_langid.get(str(label)), confidence)
