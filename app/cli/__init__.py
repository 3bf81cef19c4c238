"""The ``wikirag`` command line: one parser (``main``) and a module per command group that
needs more than a few lines (``attribute``, ``usage``, ``shard``, ``mcp``)."""
