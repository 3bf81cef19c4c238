"""Readers for Wikipedia exports: each yields RawRevision records (or SkippedItem reports)."""
