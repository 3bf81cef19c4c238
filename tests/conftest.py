"""Shared fixtures: the bundled real samples, and one store ingested from all of them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
SHARED_DATA = ROOT.parent / "shared" / "data"

ENWIKI_XML = SAMPLES / "enwiki-sample-pages-articles.xml.bz2"
TABLE_XML = SAMPLES / "enwiki-table-markup.xml.bz2"
SQUAD_XML = SAMPLES / "squad" / "squad-dev-corpus.xml.bz2"
SQUAD_QUESTIONS = SAMPLES / "squad" / "squad-dev-questions.jsonl"
REALTIME = SAMPLES / "wme" / "enwiki-realtime-sample.ndjson.gz"
WME_SNAPSHOTS = sorted((SAMPLES / "wme").glob("*_namespace_0.tar.gz"))


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A store ingested from every bundled sample (XML, table markup, all WME snapshots)."""
    from indexer.ingest import IngestOptions, ingest_sources
    from indexer.store import PassageStore

    path = tmp_path_factory.mktemp("store") / "store.sqlite"
    store = PassageStore(path)
    options = IngestOptions(progress=False)
    report = ingest_sources([ENWIKI_XML, *WME_SNAPSHOTS, REALTIME], store, options)
    assert report.skipped_total == 0, report.skipped_items
    table = IngestOptions(progress=False, wiki="enwiki")
    ingest_sources([TABLE_XML], store, table)
    store.close()
    yield path
