"""wikirag indexer: Wikipedia exports → cleaned, chunked, embedded, published hybrid index."""
