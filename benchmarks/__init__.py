"""Benchmarks of wikirag (not tests): see ``benchmarks/README.md``."""
