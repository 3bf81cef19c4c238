"""``python -m app.cli``: the ``wikirag`` command."""

import sys

from app.cli.main import main

sys.exit(main())
