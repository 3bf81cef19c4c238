"""Ingestion of the real samples into a real SQLite store: counts, provenance, licenses,
exact passage slices, idempotence, bad input and interruption."""

from __future__ import annotations

import bz2
import gzip
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from indexer.clean import find_markup_residue
from indexer.ingest import IngestOptions, ingest_sources
from indexer.store import PassageStore
from tests.conftest import ENWIKI_XML, REALTIME, ROOT, TABLE_XML, WME_SNAPSHOTS

QUIET = IngestOptions(progress=False)


def _dump_revisions(path: Path) -> dict[int, tuple[int, int, bool]]:
    """page id → (namespace, revision id, is redirect), read with plain regexes."""
    with bz2.open(path, "rt", encoding="utf-8") as handle:
        text = handle.read()
    out: dict[int, tuple[int, int, bool]] = {}
    for page in re.findall(r"<page>(.*?)</page>", text, flags=re.S):
        ns = int(re.search(r"<ns>(\d+)</ns>", page).group(1))  # type: ignore[union-attr]
        page_id = int(re.search(r"<id>(\d+)</id>", page).group(1))  # type: ignore[union-attr]
        rev = re.search(r"<revision>\s*<id>(\d+)</id>", page)
        out[page_id] = (ns, int(rev.group(1)), "<redirect" in page)  # type: ignore[union-attr]
    return out


def _wme_objects(path: Path) -> list[dict[str, object]]:
    if path.name.endswith(".tar.gz"):
        with tarfile.open(path) as tar:
            return [
                json.loads(line)
                for member in tar.getmembers()
                for line in tar.extractfile(member) or []  # type: ignore[union-attr]
            ]
    with gzip.open(path) as handle:
        return [json.loads(line) for line in handle]


def _conn(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def test_enwiki_xml_sample_gives_106_articles_and_99_redirects(tmp_path: Path) -> None:
    store = PassageStore(tmp_path / "s.sqlite")
    report = ingest_sources([ENWIKI_XML], store, QUIET)
    expected = _dump_revisions(ENWIKI_XML)
    articles = {p: r for p, (ns, r, redir) in expected.items() if ns == 0 and not redir}
    assert len(articles) == 106
    assert report.pages == 106 and report.revisions_added == 106
    assert report.redirects == 99  # the namespace-4 redirect is skipped by default
    assert store.counts()["aliases"] == 99
    conn = _conn(store.path)
    stored = dict(conn.execute("SELECT page_id, revision_id FROM revisions"))
    assert stored == articles
    ts, lic = conn.execute(
        "SELECT timestamp, license_identifier FROM revisions WHERE page_id = 736"
    ).fetchone()
    assert ts.startswith("2016-") and lic == "CC-BY-SA-3.0"
    assert store.find_pages("Albert Einstein") == [("enwiki", 736)]
    # Redirects resolve as aliases of their target, never as passages.
    assert store.find_pages("AccessibleComputing") == store.find_pages("Computer accessibility")
    assert report.passages == store.counts()["passages"] > 5000
    store.close()


def test_namespace_4_redirect_is_kept_when_asked(tmp_path: Path) -> None:
    store = PassageStore(tmp_path / "s.sqlite")
    options = IngestOptions(progress=False, namespaces=frozenset({0, 4}))
    assert ingest_sources([ENWIKI_XML], store, options).redirects == 100


@pytest.mark.parametrize("snapshot", [*WME_SNAPSHOTS, REALTIME], ids=lambda p: p.name)
def test_every_wme_sample_keeps_revision_ids_and_licenses_from_the_source(
    sample_store: Path, snapshot: Path
) -> None:
    conn = _conn(sample_store)
    for obj in _wme_objects(snapshot):
        wiki = obj["is_part_of"]["identifier"]  # type: ignore[index]
        revision = obj["version"]["identifier"]  # type: ignore[index]
        row = conn.execute(
            "SELECT page_id, license_identifier, license_name, license_url, license_origin, "
            "editor FROM revisions WHERE wiki = ? AND revision_id = ?",
            (wiki, revision),
        ).fetchone()
        assert row is not None, (wiki, revision)
        license = obj["license"][0]  # type: ignore[index]
        assert row[0] == obj["identifier"]
        assert row[1:4] == (license["identifier"], license["name"], license["url"])
        assert row[4] == "source"
        assert row[5] == (obj["version"].get("editor") or {}).get("name")  # type: ignore[attr-defined]
        language = conn.execute("SELECT language FROM wikis WHERE wiki = ?", (wiki,)).fetchone()
        assert language[0] == obj["in_language"]["identifier"]  # type: ignore[index]


def test_three_revisions_of_albert_einstein_are_all_kept(sample_store: Path) -> None:
    store = PassageStore(sample_store, readonly=True)
    revisions = store.revisions_of("enwiki", 736)
    assert [r.revision_id for r in revisions][-2:] == [1097822042, 1270870723]
    assert revisions[0].timestamp.startswith("2016-")
    assert {r.license.identifier for r in revisions[-2:]} == {"CC-BY-SA-3.0", "CC-BY-SA-4.0"}
    (row,) = _conn(sample_store).execute(
        "SELECT current_revision_id FROM pages WHERE wiki = 'enwiki' AND page_id = 736"
    )
    assert row[0] == 1270870723  # the highest revision is current
    assert "Einstein" in store.aliases_of("enwiki", "Albert Einstein")


def test_no_passage_has_markup_residue_and_each_is_its_exact_slice(sample_store: Path) -> None:
    conn = _conn(sample_store)
    rows = conn.execute(
        "SELECT p.passage_id, p.text, p.start_offset, p.end_offset, s.text, s.path "
        "FROM passages p JOIN sections s ON s.wiki = p.wiki AND s.revision_id = p.revision_id "
        "AND s.ordinal = p.section_ordinal"
    ).fetchall()
    assert len(rows) > 7_000
    languages = {r[0] for r in conn.execute("SELECT language FROM wikis")}
    assert {"en", "fr", "de", "pt", "ru", "simple"} <= languages
    for passage_id, text, start, end, section_text, path in rows:
        assert section_text[start:end] == text, passage_id
        assert find_markup_residue(text) == [], (passage_id, text)
        assert 0 < len(text.split()) <= 100, passage_id
        assert isinstance(json.loads(path), list)


def test_ingesting_the_same_input_twice_changes_nothing(tmp_path: Path) -> None:
    store = PassageStore(tmp_path / "s.sqlite")
    frwiki = next(p for p in WME_SNAPSHOTS if p.name.startswith("frwiki"))
    first = ingest_sources([frwiki, REALTIME], store, QUIET)
    snapshot = store.counts()
    dump = "\n".join(_conn(store.path).iterdump())
    second = ingest_sources([frwiki, REALTIME], store, QUIET)
    assert first.revisions_added == 5 and second.revisions_added == 0
    assert second.revisions_unchanged == 5 and second.passages == 0
    assert store.counts() == snapshot
    assert "\n".join(_conn(store.path).iterdump()) == dump


def test_a_snapshot_holding_a_page_twice_keeps_the_highest_revision(tmp_path: Path) -> None:
    objects = _wme_objects(next(p for p in WME_SNAPSHOTS if p.name.startswith("enwiki")))
    einstein = next(o for o in objects if o["identifier"] == 736)
    older = json.loads(json.dumps(einstein))
    older["version"]["identifier"] = 1270000000
    path = tmp_path / "dup.ndjson"
    path.write_text(json.dumps(einstein) + "\n" + json.dumps(older) + "\n", encoding="utf-8")
    store = PassageStore(tmp_path / "s.sqlite")
    report = ingest_sources([path], store, QUIET)
    assert [r.revision_id for r in store.revisions_of("enwiki", 736)] == [1270870723]
    assert report.revisions_superseded == 1
    # and in the other order, the lower one is replaced
    path.write_text(json.dumps(older) + "\n" + json.dumps(einstein) + "\n", encoding="utf-8")
    store2 = PassageStore(tmp_path / "s2.sqlite")
    ingest_sources([path], store2, QUIET)
    assert [r.revision_id for r in store2.revisions_of("enwiki", 736)] == [1270870723]
    assert store2.integrity_check() == "ok"


def test_table_markup_export_needs_the_wiki_flag(tmp_path: Path) -> None:
    from indexer.sources.open import SourceError

    store = PassageStore(tmp_path / "s.sqlite")
    with pytest.raises(SourceError, match="--wiki"):
        ingest_sources([TABLE_XML], store, QUIET)
    report = ingest_sources([TABLE_XML], store, IngestOptions(progress=False, wiki="enwiki"))
    assert report.pages == 5 and report.skipped_total == 0


def test_bad_lines_are_counted_with_locations_and_the_rest_is_ingested(tmp_path: Path) -> None:
    good = [json.dumps(o) for o in _wme_objects(REALTIME)]
    missing = json.loads(good[0])
    del missing["version"]
    path = tmp_path / "mixed.ndjson"
    path.write_text(
        "\n".join(["{not json", good[0], json.dumps(missing), "[1, 2]"]) + "\n", encoding="utf-8"
    )
    store = PassageStore(tmp_path / "s.sqlite")
    report = ingest_sources([path], store, QUIET)
    assert report.revisions_added == 1
    assert dict(report.skipped) == {"invalid-json": 1, "missing-field": 1, "not-an-object": 1}
    locations = sorted(item.location for item in report.skipped_items)
    assert locations == ["mixed.ndjson: line 1", "mixed.ndjson: line 3", "mixed.ndjson: line 4"]


def test_a_truncated_bz2_keeps_what_was_read_and_reports_the_rest(tmp_path: Path) -> None:
    data = ENWIKI_XML.read_bytes()
    path = tmp_path / "truncated.xml.bz2"
    path.write_bytes(data[: len(data) // 2])
    store = PassageStore(tmp_path / "s.sqlite")
    report = ingest_sources([path], store, QUIET)
    assert report.skipped["truncated-bz2"] == 1
    assert 0 < report.revisions_added < 106
    assert "truncated.xml.bz2" in report.skipped_items[0].location
    assert store.integrity_check() == "ok"


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def test_cli_ingest_exit_status_and_summary_name_what_was_skipped(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ndjson"
    with gzip.open(REALTIME, "rt", encoding="utf-8") as handle:
        bad.write_text(handle.read() + "{broken\n", encoding="utf-8")
    result = _cli("ingest", "--no-progress", "--store", str(tmp_path / "s.sqlite"), str(bad))
    assert result.returncode == 3, result.stderr
    assert "skipped:    1 (invalid-json: 1)" in result.stdout
    assert "bad.ndjson: line 2" in result.stdout
    result = _cli("ingest", "--json", "--no-progress", "--store", str(tmp_path / "s.sqlite"),
                  str(REALTIME))  # fmt: skip
    assert result.returncode == 0
    assert json.loads(result.stdout)["revisions"]["unchanged"] == 1
    result = _cli("inspect", "--store", str(tmp_path / "s.sqlite"), "736")
    assert result.returncode == 0 and "revision 1097822042" in result.stdout
    result = _cli("inspect", "--store", str(tmp_path / "s.sqlite"), "No such page")
    assert result.returncode == 1 and "no page" in result.stderr
    result = _cli("ingest", "--store", str(tmp_path / "s.sqlite"), str(tmp_path / "nope.xml"))
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_every_command_has_help() -> None:
    result = _cli("--help")
    assert result.returncode == 0
    commands = re.findall(r"^    (\w[\w-]*)\s", result.stdout, flags=re.M)
    assert {"ingest", "inspect"} <= set(commands)
    for command in commands:
        sub = _cli(command, "--help")
        assert sub.returncode == 0 and "usage: wikirag" in sub.stdout, command


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_an_interrupted_ingest_leaves_no_half_written_page(tmp_path: Path, sig: int) -> None:
    store_path = tmp_path / "s.sqlite"
    export, total = _enlarged_export(tmp_path / "enlarged.xml.bz2", copies=4)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "ingest", "--no-progress", "--store", str(store_path),
         str(export)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "WIKIRAG_COMMIT_EVERY": "5"},
        # Ctrl-C as a terminal delivers it, even when the tests run in a background job
        # (whose shell ignores SIGINT, which the ingest would then inherit and keep)
        preexec_fn=_default_sigint,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait for the first committed batch
        time.sleep(0.2)
        try:
            with _conn(store_path) as conn:
                if conn.execute("SELECT COUNT(*) FROM revisions").fetchone()[0] > 0:
                    break
        except sqlite3.OperationalError:
            continue
    assert proc.poll() is None, "the ingest ended before it could be interrupted"
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "rolled back" in stderr
    store = PassageStore(store_path)  # reopening recovers the WAL
    assert store.integrity_check() == "ok"
    conn = _conn(store_path)
    orphans = conn.execute(
        "SELECT COUNT(*) FROM revisions r WHERE NOT EXISTS (SELECT 1 FROM passages p "
        "WHERE p.wiki = r.wiki AND p.revision_id = r.revision_id)"
    ).fetchone()[0]
    assert orphans == 0
    assert 0 < store.counts()["revisions"] < total
    # the next run completes the job
    ingest_sources([export], store, QUIET)
    assert store.counts()["revisions"] == total


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _enlarged_export(target: Path, copies: int) -> tuple[Path, int]:
    """The sample export with its pages repeated ``copies`` times under new ids and titles:
    long enough that the signal surely lands mid-way, not after the last commit. Returns the
    file and its number of main-namespace revisions."""
    xml = bz2.decompress(ENWIKI_XML.read_bytes()).decode("utf-8")
    head, rest = xml.split("<page>", 1)
    body, tail = ("<page>" + rest).rsplit("</page>", 1)
    body += "</page>"
    pages = [body]
    for k in range(1, copies):
        copy = re.sub(
            r"<(id|parentid)>(\d+)</\1>",
            lambda m, k=k: f"<{m[1]}>{int(m[2]) + k * 10**9}</{m[1]}>",
            body,
        )
        pages.append(re.sub(r"<title>([^<]*)</title>", rf"<title>\1 (copy {k})</title>", copy))
    target.write_bytes(bz2.compress((head + "\n".join(pages) + tail).encode("utf-8")))
    return target, 106 * copies


def test_a_store_with_an_older_schema_is_migrated_before_serving(tmp_path: Path) -> None:
    from app.retrieval.retriever import open_store_for_reading
    from indexer.store import MIGRATIONS, SCHEMA_VERSION, StoreOutdated

    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    if SCHEMA_VERSION > 1:
        with pytest.raises(StoreOutdated, match="schema 1"):
            PassageStore(path, readonly=True)
    store = open_store_for_reading(path)
    assert store.counts()["passages"] == 0
    (version,) = _conn(path).execute("PRAGMA user_version").fetchone()
    assert version == SCHEMA_VERSION


def test_retention_prunes_only_superseded_revisions_older_than_the_cutoff(
    tmp_path: Path,
) -> None:
    enwiki = next(p for p in WME_SNAPSHOTS if p.name.startswith("enwiki"))
    store = PassageStore(tmp_path / "s.sqlite")
    ingest_sources([REALTIME, enwiki], store, QUIET)
    assert [r.revision_id for r in store.revisions_of("enwiki", 736)] == [1097822042, 1270870723]
    with store.transaction():
        assert store.prune_superseded_revisions("2000-01-01T00:00:00Z") == []
    with store.transaction():
        pruned = store.prune_superseded_revisions("2030-01-01T00:00:00Z")
    assert pruned == [("enwiki", 1097822042)]  # current revisions are never pruned
    assert [r.revision_id for r in store.revisions_of("enwiki", 736)] == [1270870723]
    assert store.passages_of_revision("enwiki", 1097822042) == []
    assert store.passages_of_revision("enwiki", 1270870723)
    assert store.integrity_check() == "ok"


def test_retention_is_off_unless_asked(tmp_path: Path) -> None:
    result = _cli("prune-revisions", "--index", str(tmp_path / "index"))
    assert result.returncode == 1 and "retention is off" in result.stderr
