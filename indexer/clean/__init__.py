"""The wikitext cleaner, one module per concern (being moved here from
:mod:`indexer.wikitext`, which still holds the rest and the public API)."""
