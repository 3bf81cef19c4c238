"""The private characters that passes of the cleaner leave for later ones.

The renderer and the template renderers mark hard line breaks (``HARD``), literal
apostrophes (``APOS``) and dropped tags (``CUT``) with control characters; the
finishing pass (:mod:`indexer.clean.finish`) turns them into text. ``CONTROL_RE`` is
what is removed from the input first, so that no page can bring its own.
"""

from __future__ import annotations

import re
from typing import Final

HARD: Final = "\x1e"  # a line break that survives paragraph joining (<br>, table rows…)
APOS: Final = "\x1a"  # a literal apostrophe that is not bold/italic markup ({{'}}, &#39;)
CUT: Final = "\x1d"  # where a tag was dropped: splits quote runs like MediaWiki's strip markers
CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
