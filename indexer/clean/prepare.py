"""Step 1 of the cleaner, *preparation*: line ends, control characters and comments,
and the delimiters MediaWiki would not pair neutralised (unmatched or crossing
``{{ }}``, ``[[ ]]``, HTML/extension tags, line-start ``{| |}``, ``[http…`` links not
closed on their line), all in linear time.
"""

from __future__ import annotations

import re
from typing import Final

from indexer.clean.config import words
from indexer.clean.sentinels import CONTROL_RE, CUT

# --------------------------------------------------------------------------- preparation

_TABLE_TOKEN_RE: Final = re.compile(r"(?m)^[ \t:]*(\{\||\|\}(?!\}))")
# Delimiters of _NestingBalancer. Group 1: a closing tag's name (MediaWiki allows no attributes
# there), group 2: an opening tag's name.
_NEST_TOKEN_RE: Final = re.compile(
    r"\{\{|\}\}|\[\[|\]\]|\||<(?:/([A-Za-z][A-Za-z0-9]*)\s*|([A-Za-z][A-Za-z0-9]*)(?:\s[^<>]*)?)>"
)
VOID_TAGS: Final = frozenset({"br", "hr", "wbr", "img", "meta", "link"})
LITERAL_EXTENSION_TAGS: Final = words(
    """
    nowiki pre math chem ce syntaxhighlight source score timeline graph templatedata hiero
    mapframe maplink gallery imagemap inputbox categorytree charinsert templatestyles
    """
)
_EXTENSION_TAGS: Final = words("ref references poem section indicator includeonly noinclude")
_CUT_WHOLE_TAGS: Final = words("ref references")
_TAG_STRENGTH: Final = 0
_EXTENSION_STRENGTH: Final = 4
_STRENGTH: Final = {"{{": 3, "[[": 1}
_MAX_CLOSE_WALK: Final = 64
_EXT_LINK_OPEN_RE: Final = re.compile(
    r"\[(?=(?:https?|ftp|ftps|irc|ircs|news|mailto|gopher|nntp|telnet|sftp|ssh|svn|git|mms|"
    r"urn|tel|sip|sips|xmpp|geo|magnet|worldwind):|//)",
    re.IGNORECASE,
)
_LINE_TAIL_WS_RE: Final = re.compile(r"[ \t]*\n")
_DEEP_LIST_RE: Final = re.compile(r"(?m)^([*#:;]{8})[*#:;]+")  # deeper lists mean nothing more


def prepare(text: str) -> str:
    """Normalise line ends, drop control characters and comments, and neutralise unmatched
    delimiters, all in linear time."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = CONTROL_RE.sub("", text)
    text = _DEEP_LIST_RE.sub(r"\1", text)
    text = _strip_comments(text)
    text = _NestingBalancer(text).run()
    text = _balance_tables(text)
    return _drop_unclosed_external_links(text)


def _strip_comments(text: str) -> str:
    """Remove ``<!-- … -->``; a comment alone on its line takes the line with it, an unclosed
    one hides the rest of the page (as in MediaWiki)."""
    if "<!--" not in text:
        return text
    out: list[str] = []
    pos = 0
    while True:
        start = text.find("<!--", pos)
        if start < 0:
            out.append(text[pos:])
            break
        end = text.find("-->", start + 4)
        if end < 0:
            out.append(text[pos:start])
            break
        end += 3
        line_start = text.rfind("\n", pos, start)
        tail = _LINE_TAIL_WS_RE.match(text, end)
        if line_start >= 0 and tail is not None and not text[line_start + 1 : start].strip():
            out.append(text[pos:line_start])
            pos = tail.end() - 1
        else:
            out.append(text[pos:start])
            pos = end
    return "".join(out)


def _cut_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """Replace the spans by ``CUT``: deleting them could join ``{`` and ``{`` into a new
    delimiter; ``CUT`` is dropped with the other sentinels when the text is finished."""
    if not spans:
        return text
    spans.sort()
    parts: list[str] = []
    pos = 0
    for start, end in spans:
        if start >= pos:
            parts.append(text[pos:start])
            parts.append(CUT)
            pos = end
    parts.append(text[pos:])
    return "".join(parts)


def _balance_tables(text: str) -> str:
    """Delete line-start ``{|``/``|}`` without a partner, and split every other ``{|`` (text
    for MediaWiki, a table start mwparserfromhell keeps retrying)."""
    if "{|" not in text and "|}" not in text:
        return text
    stack: list[int] = []
    drop: list[tuple[int, int]] = []
    table_starts: set[int] = set()
    for match in _TABLE_TOKEN_RE.finditer(text):
        if match.group(1) == "{|":
            stack.append(match.start(1))
            table_starts.add(match.start(1))
        elif stack:
            stack.pop()
        else:
            drop.append((match.start(1), match.end(1)))
    drop.extend((start, start + 2) for start in stack)
    drop.extend(
        (match.start() + 1, match.start() + 1)  # "{" CUT "|"
        for match in re.finditer(r"\{\|", text)
        if match.start() not in table_starts
    )
    return _cut_spans(text, drop)


def _strength(kind: str) -> int:
    """Which structure wins when two cross: see :class:`_NestingBalancer`."""
    if kind in _STRENGTH:
        return _STRENGTH[kind]
    return _EXTENSION_STRENGTH if kind in _EXTENSION_TAGS else _TAG_STRENGTH


class _NestingBalancer:
    """One linear pass that makes ``{{ }}``, ``[[ ]]`` and HTML/extension tags properly nested,
    by deleting the delimiters that MediaWiki would not pair either: closers without an opener,
    openers never closed, and the weaker of two crossing structures. Strength follows
    MediaWiki's order of parsing: extension tags (opaque to the preprocessor) > templates >
    links > HTML tags; an HTML tag opened inside a template argument ends at the next ``|``.
    Literal extension tags (``<nowiki>``, ``<math>``…) are skipped whole.

    Without this, mwparserfromhell backtracks on every unmatched or crossing delimiter and
    becomes quadratic (20,000 unclosed ``{{`` take minutes).
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._stack: list[tuple[str, int, int, int]] = []  # kind, start, end, strength
        self._open: dict[str, int] = {}  # kind → how many are on the stack
        self._drop: list[tuple[int, int]] = []
        self._no_closer_after: dict[str, int] = {}  # literal tag → search already failed from

    def run(self) -> str:
        text = self._text
        pos = 0
        while True:
            match = _NEST_TOKEN_RE.search(text, pos)
            if match is None:
                break
            pos = self._token(match)
        self._drop.extend((start, end) for _, start, end, _ in self._stack)
        return _cut_spans(text, self._drop)

    def _token(self, match: re.Match[str]) -> int:
        token = match.group()
        if token in ("{{", "[["):
            self._push(token, match.start(), match.end(), _STRENGTH[token])
        elif token in ("}}", "]]"):
            self._close("{{" if token == "}}" else "[[", match.start(), match.end())
        elif token == "|":
            self._pipe()
        elif match.group(1) is not None:
            self._close(match.group(1).lower(), match.start(), match.end())
        else:
            return self._opening_tag(match)
        return match.end()

    def _opening_tag(self, match: re.Match[str]) -> int:
        name = match.group(2).lower()
        if match.group().endswith("/>"):
            if name in _CUT_WHOLE_TAGS:  # <ref name="x"/>, <references/>
                self._drop.append((match.start(), match.end()))
            return match.end()
        if name in VOID_TAGS:
            return match.end()
        if name in LITERAL_EXTENSION_TAGS:
            closer = self._literal_end(name, match.end())
            if closer >= 0:
                return closer
            self._drop.append((match.start(), match.end()))
            return match.end()
        self._push(name, match.start(), match.end(), _strength(name))
        return match.end()

    def _literal_end(self, name: str, start: int) -> int:
        """End of the closing tag of a literal extension tag opened before ``start``, or -1."""
        if self._no_closer_after.get(name, len(self._text) + 1) <= start:
            return -1
        closer = re.compile(rf"</{name}\s*>", re.IGNORECASE).search(self._text, start)
        if closer is None:
            self._no_closer_after[name] = start
            return -1
        return closer.end()

    def _push(self, kind: str, start: int, end: int, strength: int) -> None:
        self._stack.append((kind, start, end, strength))
        self._open[kind] = self._open.get(kind, 0) + 1

    def _pop(self) -> tuple[str, int, int, int]:
        entry = self._stack.pop()
        self._open[entry[0]] -= 1
        return entry

    def _close(self, kind: str, start: int, end: int) -> None:
        """Pair a closer with the innermost opener of its kind when only weaker structures
        are open above it (those are unclosed: dropped); otherwise drop the closer."""
        depth = self._depth_of(kind, _strength(kind))
        if depth < 0:
            self._drop.append((start, end))
            return
        for _ in range(depth):
            _, inner_start, inner_end, _ = self._pop()
            self._drop.append((inner_start, inner_end))
        _, opened_at, _, _ = self._pop()
        if kind in _CUT_WHOLE_TAGS:  # footnotes: no need to parse what is dropped anyway
            self._drop.append((opened_at, end))

    def _depth_of(self, kind: str, strength: int) -> int:
        """How many entries lie above the innermost ``kind`` (-1: none reachable)."""
        if not self._open.get(kind):
            return -1
        for depth, (other, _, _, other_strength) in enumerate(reversed(self._stack)):
            if other == kind:
                return depth
            if other_strength > strength or depth >= _MAX_CLOSE_WALK:
                return -1
        return -1

    def _pipe(self) -> None:
        """``{{a|<span>b|c</span>}}``: the ``|`` ends the argument, and the tag with it."""
        if not self._stack or self._stack[-1][3] != _TAG_STRENGTH:
            return
        depth = 0
        for kind, _, _, strength in reversed(self._stack):
            if kind == "{{":
                break
            if strength != _TAG_STRENGTH or depth >= _MAX_CLOSE_WALK:
                return
            depth += 1
        else:
            return
        for _ in range(depth):
            _, start, end, _ = self._pop()
            self._drop.append((start, end))


def _drop_unclosed_external_links(text: str) -> str:
    """Delete the ``[`` of ``[http…`` links that do not close on their line (MediaWiki shows
    them as text); openers inside another link's label are deleted too."""
    if "[" not in text:
        return text
    drop: list[tuple[int, int]] = []
    line_end = -1
    covered_until = -1  # end of the last link label on the current line
    unclosed_from = -1  # from here to the line end there is no "]"
    for match in _EXT_LINK_OPEN_RE.finditer(text):
        start = match.start()
        if start > line_end:
            line_end = text.find("\n", start)
            if line_end < 0:
                line_end = len(text)
            covered_until = -1
            unclosed_from = line_end
        if start < covered_until or start >= unclosed_from:
            drop.append((start, start + 1))
            continue
        close = text.find("]", start, line_end)
        if close < 0:
            unclosed_from = start
            drop.append((start, start + 1))
        else:
            covered_until = close
    return _cut_spans(text, drop)
