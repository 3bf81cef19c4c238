"""Page titles the way MediaWiki stores them (what the store's title lookups compare)."""

from __future__ import annotations

import re

# Whitespace MediaWiki folds into one underscore in titles (Title::secureAndSplit).
_TITLE_SPACES = re.compile(r"[\s_\u00a0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
# Direction marks MediaWiki strips from titles.
_TITLE_MARKS = re.compile(r"[\u200e\u200f\u202a-\u202e]")


def normalize_title(title: str, *, first_letter_case: bool = True) -> str:
    """A title the way MediaWiki stores it: underscores and runs of blanks become one space,
    direction marks and a leading ``:`` go, and (on ``first-letter`` wikis, every Wikimedia
    wiki but Wiktionary) the first letter is upper-cased.

    >>> normalize_title("  albert__Einstein ")
    'Albert Einstein'
    >>> normalize_title("iPhone", first_letter_case=False)
    'iPhone'
    """
    text = _TITLE_SPACES.sub(" ", _TITLE_MARKS.sub("", title)).strip(" ")
    text = text.removeprefix(":").lstrip(" ")
    if first_letter_case and text:
        upper = text[0].upper()
        # Python upper-cases some letters to two (ß → SS); MediaWiki keeps those as they are.
        if len(upper) == 1:
            text = upper + text[1:]
    return text
