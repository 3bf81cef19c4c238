"""The base of every error wikirag reports to its user as a message rather than a traceback.

A domain error carries a stable ``code`` (a short kebab-case name) and no presentation: the
command line prints its message, the HTTP layer (:mod:`app.api.errors`) maps its code to a
status. Anything else that escapes — a bare ``ValueError``, a ``KeyError`` — is a bug and
keeps its traceback.

>>> error = InvalidInput("k must be ≥ 1, got 0")
>>> error.code, isinstance(error, ValueError), str(error)
('invalid-input', True, 'k must be ≥ 1, got 0')
"""

from __future__ import annotations


class WikiragError(Exception):
    """An error with a stable ``code`` that a user (not a developer) can act on."""

    code: str = "wikirag-error"


class InvalidInput(WikiragError, ValueError):
    """A value given by the user (a flag, a file line, a key's limits) that cannot be used.
    A ``ValueError`` too, so validators (pydantic, argparse types) report it as such."""

    code = "invalid-input"
