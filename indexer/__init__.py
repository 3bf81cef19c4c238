"""wikirag indexer: Wikipedia exports → cleaned, chunked, embedded, published hybrid index."""

__version__ = "0.1.0"
