"""Which license each revision gets, through the real ingest path and the real CLI.

MediaWiki XML exports state no license: the ``auto`` rule gives CC BY-SA 3.0 to revisions
saved before the 2023-06-07 Terms of Use update and 4.0 from then on; ``--license-rule
WIKI=RULE`` / ``WIKIRAG_LICENSE_RULES`` pin a wiki; a Wikimedia Enterprise object's own
``license[]`` always wins (over the date and over a pinned rule).

No XML sample revision is dated after 2023-06-07, so the XML cases use a REAL export revision
re-dated: the page "Answer" (page 642, revision 706708349, saved 2016-02-24T21:08:22Z) cut
out of ``data/samples/enwiki-sample-pages-articles.xml.bz2`` with the export's own header,
its ``<timestamp>`` rewritten, written as a small ``.xml.bz2`` in the test's tmp_path.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.cli.main import main
from indexer.generation import IndexLayout
from indexer.ingest import IngestOptions, ingest_sources
from indexer.licensing import LicensePolicy
from indexer.models import CC_BY_SA_3, CC_BY_SA_4, License
from indexer.store import PassageStore, RevisionRecord
from tests.conftest import ENWIKI_XML, ROOT, SAMPLES
from tests.test_api import service_settings, shared_embedder

TITLE = "Answer"
PAGE_ID = 642
REVISION = 706708349
SAVED = "2016-02-24T21:08:22Z"  # the revision's real <timestamp>
PERMALINK = f"https://en.wikipedia.org/w/index.php?title=Answer&oldid={REVISION}"
HISTORY = "https://en.wikipedia.org/w/index.php?title=Answer&action=history"
BEFORE = "rule:auto(before 2023-06-07)"
FROM = "rule:auto(from 2023-06-07)"

WME = SAMPLES / "wme"
ENWIKI_SNAPSHOT = WME / "enwiki_namespace_0.tar.gz"
RUWIKI_SNAPSHOT = WME / "ruwiki_namespace_0.tar.gz"
# As the Enterprise objects state them (note the name: not the rule's wording of 3.0).
STATED_3 = License(
    name="Creative Commons Attribution Share Alike 3.0 Unported",
    identifier="CC-BY-SA-3.0",
    url="https://creativecommons.org/licenses/by-sa/3.0/",
)
STATED_4 = License(
    name="Creative Commons Attribution-ShareAlike License 4.0",
    identifier="CC-BY-SA-4.0",
    url="https://creativecommons.org/licenses/by-sa/4.0/",
)


# -- the re-dated real revision -------------------------------------------------------------


@functools.cache
def _sample_export() -> str:
    return bz2.decompress(ENWIKI_XML.read_bytes()).decode("utf-8")


def _sample_page(title: str) -> str:
    """One ``<page>`` of the sample export, exactly as exported."""
    text = _sample_export()
    start = text.index(f"  <page>\n    <title>{title}</title>\n")
    return text[start : text.index("</page>", start) + len("</page>")] + "\n"


def real_pages_export(path: Path, pages: dict[str, str | None]) -> Path:
    """An ``.xml.bz2`` of the sample export's header (``<mediawiki>``, ``<siteinfo>``) and
    the pages titled as the keys of ``pages``, each page's only ``<timestamp>`` set to the
    value (None: left as exported)."""
    text = _sample_export()
    parts = [text[: text.index("</siteinfo>") + len("</siteinfo>")] + "\n"]
    for title, timestamp in pages.items():
        page = _sample_page(title)
        if timestamp is not None:
            assert page.count("<timestamp>") == 1, title
            page = re.sub(
                r"<timestamp>[^<]*</timestamp>", f"<timestamp>{timestamp}</timestamp>", page
            )
        parts.append(page)
    parts.append("</mediawiki>\n")
    path.write_bytes(bz2.compress("".join(parts).encode("utf-8")))
    return path


def redated_export(directory: Path, timestamp: str) -> Path:
    """The real revision 706708349 of "Answer", its ``<timestamp>`` set to ``timestamp``."""
    page = _sample_page(TITLE)
    assert f"<id>{PAGE_ID}</id>" in page and f"<id>{REVISION}</id>" in page
    assert f"<timestamp>{SAVED}</timestamp>" in page
    name = re.sub(r"[^0-9A-Za-z]+", "-", timestamp).strip("-") or "blank"
    return real_pages_export(directory / f"answer-{name}.xml.bz2", {TITLE: timestamp})


def _stored(store_path: Path, wiki: str, revision_id: int) -> RevisionRecord:
    store = PassageStore(store_path, readonly=True)
    try:
        revision = store.revision(wiki, revision_id)
        assert revision is not None, f"{wiki} revision {revision_id} is not stored"
        for passage in store.passages_of_revision(wiki, revision_id):
            assert passage.license == revision.license, passage.passage_id
        return revision
    finally:
        store.close()


# -- the auto rule, through the reader and the ingest path ----------------------------------


@pytest.mark.parametrize(
    ("timestamp", "stored_as", "expected", "origin"),
    [
        (SAVED, SAVED, CC_BY_SA_3, BEFORE),  # as exported
        ("2024-03-01T12:00:00Z", "2024-03-01T12:00:00Z", CC_BY_SA_4, FROM),
        # the exact boundary instant
        ("2023-06-06T23:59:59Z", "2023-06-06T23:59:59Z", CC_BY_SA_3, BEFORE),
        ("2023-06-07T00:00:00Z", "2023-06-07T00:00:00Z", CC_BY_SA_4, FROM),
        # other xs:dateTime forms an export may carry; as text they compare wrongly
        ("2023-06-07T00:00:00.500Z", "2023-06-07T00:00:00Z", CC_BY_SA_4, FROM),  # '.' < 'Z'
        ("2023-06-06T23:59:59.999Z", "2023-06-06T23:59:59Z", CC_BY_SA_3, BEFORE),
        ("2023-06-07T01:30:00+02:00", "2023-06-06T23:30:00Z", CC_BY_SA_3, BEFORE),
        ("2023-06-06T22:00:00-03:00", "2023-06-07T01:00:00Z", CC_BY_SA_4, FROM),
        ("2023-06-07T00:00:00", "2023-06-07T00:00:00Z", CC_BY_SA_4, FROM),  # no zone: UTC
        ("2023-06-07t00:00:00z", "2023-06-07T00:00:00Z", CC_BY_SA_4, FROM),  # RFC 3339 case
    ],
)
def test_auto_rule_licenses_a_real_revision_by_its_date(
    tmp_path: Path, timestamp: str, stored_as: str, expected: License, origin: str
) -> None:
    export = redated_export(tmp_path, timestamp)
    store = PassageStore(tmp_path / "store.sqlite")
    try:
        report = ingest_sources([export], store, IngestOptions(progress=False))
    finally:
        store.close()
    assert report.skipped_total == 0, report.skipped_items
    assert (report.pages, report.revisions_added) == (1, 1) and report.passages > 1
    revision = _stored(tmp_path / "store.sqlite", "enwiki", REVISION)
    assert (revision.page_id, revision.title) == (PAGE_ID, TITLE)
    assert revision.timestamp == stored_as
    assert revision.license == expected and revision.license_origin == origin
    if expected is CC_BY_SA_4:
        assert revision.license.identifier == "CC-BY-SA-4.0"
        assert revision.license.url == "https://creativecommons.org/licenses/by-sa/4.0/"
    else:
        assert revision.license.identifier == "CC-BY-SA-3.0"
        assert revision.license.url == "https://creativecommons.org/licenses/by-sa/3.0/"


def test_unreadable_timestamp_is_reported_not_licensed(tmp_path: Path) -> None:
    """A date the rule cannot compare is a malformed page, skipped with its location."""
    export = redated_export(tmp_path, "yesterday")
    store = PassageStore(tmp_path / "store.sqlite")
    try:
        report = ingest_sources([export], store, IngestOptions(progress=False))
        assert store.revision("enwiki", REVISION) is None
    finally:
        store.close()
    assert dict(report.skipped) == {"malformed-page": 1} and report.revisions_added == 0
    [item] = report.skipped_items
    assert item.location == f"{export.name}: page {PAGE_ID}"
    assert item.detail == (
        f"revision {REVISION}: <timestamp>: unreadable timestamp 'yesterday': expected "
        "ISO 8601, e.g. 2016-05-01T12:00:00Z"
    )


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2023-06-06T23:59:59Z", CC_BY_SA_3),
        ("2023-06-07T00:00:00Z", CC_BY_SA_4),
        ("2023-06-07T00:00:00.500Z", CC_BY_SA_4),
        ("2023-06-06T23:59:59.999999Z", CC_BY_SA_3),
        ("2023-06-07T01:30:00+02:00", CC_BY_SA_3),
        ("2023-06-06T22:00:00-03:00", CC_BY_SA_4),
        ("2023-06-07T00:00:00", CC_BY_SA_4),
        ("2023-06-06", CC_BY_SA_3),
    ],
)
def test_auto_rule_compares_instants_not_text(timestamp: str, expected: License) -> None:
    """The policy itself, for callers that pass timestamps the readers did not normalise."""
    policy = LicensePolicy.from_rules({"squadeval": "CC-BY-SA-4.0"})
    assert policy.license_for("enwiki", timestamp) == (
        expected,
        BEFORE if expected is CC_BY_SA_3 else FROM,
    )
    assert policy.license_for("squadeval", timestamp) == (CC_BY_SA_4, "rule:CC-BY-SA-4.0")
    with pytest.raises(ValueError, match="unreadable timestamp 'June 2023'"):
        policy.license_for("enwiki", "June 2023")


def _squirrel_without_statement(directory: Path, date_modified: str) -> Path:
    """The ruwiki snapshot's real "Squirrel" object with its ``license[]`` removed."""
    with tarfile.open(RUWIKI_SNAPSHOT) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith(".ndjson"))
        handle = archive.extractfile(member)
        assert handle is not None
        article = json.loads(handle.readline())
    assert article["version"]["identifier"] == 131059810 and article["license"]
    del article["license"]
    article["date_modified"] = date_modified
    path = directory / "ruwiki-squirrel-unlicensed.ndjson.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write(json.dumps(article, ensure_ascii=False) + "\n")
    return path


@pytest.mark.parametrize(
    ("date_modified", "rules", "stored_as", "expected", "origin"),
    [
        ("2023-06-15T12:06:20Z", {}, "2023-06-15T12:06:20Z", CC_BY_SA_4, FROM),
        ("2023-06-07T01:30:00+02:00", {}, "2023-06-06T23:30:00Z", CC_BY_SA_3, BEFORE),
        (
            "2023-06-15T12:06:20Z",
            {"ruwiki": "CC-BY-SA-3.0"},
            "2023-06-15T12:06:20Z",
            CC_BY_SA_3,
            "rule:CC-BY-SA-3.0",
        ),
    ],
    ids=["auto", "auto-offset", "pinned"],
)
def test_enterprise_object_without_a_statement_follows_the_rule(
    tmp_path: Path,
    date_modified: str,
    rules: dict[str, str],
    stored_as: str,
    expected: License,
    origin: str,
) -> None:
    source = _squirrel_without_statement(tmp_path, date_modified)
    store = PassageStore(tmp_path / "store.sqlite")
    options = IngestOptions(progress=False, licenses=LicensePolicy.from_rules(rules))
    try:
        report = ingest_sources([source], store, options)
    finally:
        store.close()
    assert report.skipped_total == 0 and report.revisions_added == 1
    revision = _stored(tmp_path / "store.sqlite", "ruwiki", 131059810)
    assert revision.timestamp == stored_as
    assert revision.license == expected and revision.license_origin == origin


# -- --license-rule and WIKIRAG_LICENSE_RULES, CLI → store → HTTP ---------------------------


def _attribution_text(license_short: str, license_url: str, day: str) -> str:
    return (
        f'"{TITLE}" by Wikipedia contributors ({HISTORY}), from Wikipedia, the free '
        f"encyclopedia, revision {REVISION} of {day} ({PERMALINK}), licensed under "
        f"{license_short} ({license_url}). Excerpt; wiki markup removed."
    )


def _check_served(index: Path, tmp: Path, expected: License, origin: str, day: str) -> None:
    """The published generation's store and the HTTP service both show ``expected``."""
    store_path = IndexLayout(index).current().file("store.sqlite")
    revision = _stored(store_path, "enwiki", REVISION)
    assert revision.license == expected and revision.license_origin == origin
    short = {"CC-BY-SA-3.0": "CC BY-SA 3.0", "CC-BY-SA-4.0": "CC BY-SA 4.0"}[expected.identifier]
    app = create_app(service_settings(index, tmp), embedder=shared_embedder())
    with TestClient(app) as client:
        passage = client.get(f"/v1/passages/enwiki:{REVISION}:0")
        assert passage.status_code == 200, passage.text
        cited = client.get(f"/v1/citations/enwiki/revisions/{REVISION}")
        assert cited.status_code == 200, cited.text
    attribution = passage.json()["attribution"]
    license_ = attribution["license"]
    assert (license_["identifier"], license_["url"], license_["name"]) == (
        expected.identifier,
        expected.url,
        expected.name,
    )
    assert license_["short_name"] == short
    assert attribution["text"] == _attribution_text(short, expected.url, day)
    assert f'<a href="{expected.url}" rel="license"' in attribution["html"]
    assert f"[{short}]({expected.url})" in attribution["markdown"]
    record = cited.json()
    assert record["license"]["identifier"] == expected.identifier
    assert record["license"]["url"] == expected.url
    assert record["attribution"]["text"] == _attribution_text(short, expected.url, day)


def test_license_rule_flag_pins_a_wiki_through_build_and_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2016 revision, auto would say 3.0: ``--license-rule enwiki=CC-BY-SA-4.0`` makes it 4.0
    in the store and in what the service serves."""
    monkeypatch.delenv("WIKIRAG_LICENSE_RULES", raising=False)
    export = redated_export(tmp_path, SAVED)
    index = tmp_path / "index"
    argv = ["build", str(export), "--index", str(index), "--no-progress"]
    assert main([*argv, "--license-rule", "enwiki=CC-BY-SA-4.0"]) == 0
    _check_served(index, tmp_path, CC_BY_SA_4, "rule:CC-BY-SA-4.0", "24 February 2016")


def test_license_rules_environment_pins_a_wiki_through_build_and_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2024 revision, auto would say 4.0: ``WIKIRAG_LICENSE_RULES`` pins enwiki to 3.0."""
    export = redated_export(tmp_path, "2024-03-01T12:00:00Z")
    index = tmp_path / "index"
    monkeypatch.setenv("WIKIRAG_LICENSE_RULES", json.dumps({"enwiki": "CC-BY-SA-3.0"}))
    assert main(["build", str(export), "--index", str(index), "--no-progress"]) == 0
    _check_served(index, tmp_path, CC_BY_SA_3, "rule:CC-BY-SA-3.0", "1 March 2024")


def _cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "WIKIRAG_LICENSE_RULES"}
    full_env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_flag_overrides_the_environment_rule(tmp_path: Path) -> None:
    """``--license-rule enwiki=auto`` beats ``WIKIRAG_LICENSE_RULES`` (flags override env)."""
    export = redated_export(tmp_path, "2024-03-01T12:00:00Z")
    store = tmp_path / "store.sqlite"
    env = {"WIKIRAG_LICENSE_RULES": json.dumps({"enwiki": "CC-BY-SA-3.0"})}
    args = ["ingest", str(export), "--store", str(store), "--no-progress", "--json"]
    done = _cli([*args, "--license-rule", "enwiki=auto"], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["revisions"]["added"] == 1
    revision = _stored(store, "enwiki", REVISION)
    assert revision.license == CC_BY_SA_4 and revision.license_origin == FROM


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        (
            ["--license-rule", "enwiki"],
            None,
            "argument --license-rule: expected WIKI=RULE (e.g. enwiki=auto), got 'enwiki'",
        ),
        (
            ["--license-rule", "=CC-BY-SA-4.0"],
            None,
            "argument --license-rule: expected WIKI=RULE (e.g. enwiki=auto), got '=CC-BY-SA-4.0'",
        ),
        (
            ["--license-rule", "enwiki=GPL-3.0"],
            None,
            "unknown license rule 'GPL-3.0' for enwiki; use one of auto, CC-BY-SA-3.0, "
            "CC-BY-SA-4.0",
        ),
        (
            ["--license-rule", "enwiki=cc-by-sa-4.0"],
            None,
            "unknown license rule 'cc-by-sa-4.0' for enwiki; use one of auto, CC-BY-SA-3.0, "
            "CC-BY-SA-4.0",
        ),
        (
            [],
            {"WIKIRAG_LICENSE_RULES": '{"enwiki": "MIT"}'},
            "unknown license rule 'MIT' for enwiki; use one of auto, CC-BY-SA-3.0, CC-BY-SA-4.0",
        ),
        (
            [],
            {"WIKIRAG_LICENSE_RULES": "enwiki=CC-BY-SA-4.0"},  # not JSON
            'invalid configuration: error parsing value for field "license_rules"',
        ),
    ],
    ids=["no-equals", "no-wiki", "unknown-id", "lowercase-id", "env-unknown", "env-not-json"],
)
def test_bad_license_rules_exit_2_with_a_message(
    tmp_path: Path, flags: list[str], env: dict[str, str] | None, message: str
) -> None:
    export = redated_export(tmp_path, SAVED)
    store = tmp_path / "store.sqlite"
    done = _cli(["ingest", str(export), "--store", str(store), "--no-progress", *flags], env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr
    assert "Traceback" not in done.stderr and not store.exists()


# -- Enterprise objects: their own statement always wins ------------------------------------

# (wiki, revision id, saved at, the license its object states); the auto rule would give
# each of the first two 4.0 by its date, and 3.0 to the last one.
ENTERPRISE = [
    ("enwiki", 1171934824, "2023-08-24T01:14:42Z", STATED_3),  # "Squirrel"
    ("ruwiki", 131059810, "2023-06-15T12:06:20Z", STATED_3),  # "Squirrel"
    ("enwiki", 1270870723, "2025-01-21T17:03:22Z", STATED_4),  # "Albert Einstein"
]


@pytest.mark.parametrize(
    "rules",
    [
        [],
        ["enwiki=CC-BY-SA-4.0", "ruwiki=CC-BY-SA-4.0"],
        ["enwiki=CC-BY-SA-3.0", "ruwiki=CC-BY-SA-3.0"],
    ],
    ids=["auto", "pinned-4.0", "pinned-3.0"],
)
def test_enterprise_license_statement_wins_over_date_and_rule(
    tmp_path: Path, rules: list[str]
) -> None:
    store = tmp_path / "store.sqlite"
    flags = [arg for rule in rules for arg in ("--license-rule", rule)]
    done = _cli(
        ["ingest", str(ENWIKI_SNAPSHOT), str(RUWIKI_SNAPSHOT), "--store", str(store),
         "--no-progress", "--json", *flags]
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["revisions"]["added"] == 6 and summary["skipped"] == {}
    for wiki, revision_id, saved, stated in ENTERPRISE:
        revision = _stored(store, wiki, revision_id)
        assert revision.timestamp == saved
        assert revision.license == stated and revision.license_origin == "source"
