"""wikirag online side: retrieval, HTTP service and command line."""
