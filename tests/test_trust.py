"""Credibility signals per revision (issue 19, part 1): read from the real Enterprise objects
and XML export of the samples, checked as hostile input, stored per revision (an older store
migrated, its revisions without signals), and returned under one ``trust`` object with every
passage (search, GET passage, MCP, CLI) and citation record, over HTTP against a real index."""

from __future__ import annotations

import json
import sqlite3
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient

from app.attribution.trust import revision_age_days
from indexer.distributed.shards import decode_item, encode_item
from indexer.ingest import IngestOptions, ingest_sources
from indexer.models import RawRevision
from indexer.sources.open import open_source
from indexer.store import MIGRATIONS, PassageStore
from indexer.trust import (
    Editor,
    Protection,
    RevertRisk,
    TrustSignals,
    from_enterprise,
    from_xml,
)
from tests.conftest import ENWIKI_XML, WME_SNAPSHOTS

QUIET = IngestOptions(progress=False)
ENWIKI = next(p for p in WME_SNAPSHOTS if p.name.startswith("enwiki"))
ABSENT = {
    "revert_risk": None, "damaging": None, "goodfaith": None, "editor": None, "tags": [],
    "is_minor_edit": None, "comment": None, "protection": [], "maintenance_tags": {},
    "watchers_count": None,
}  # fmt: skip


def _objects(path: Path) -> Iterator[dict[str, Any]]:
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            handle = archive.extractfile(member)
            if handle is not None:
                for line in handle:
                    yield json.loads(line)


def _revision(path: Path, title: str) -> RawRevision:
    return next(r for r in open_source(path) if isinstance(r, RawRevision) and r.title == title)


def test_the_einstein_undo_carries_its_revert_risk_editor_tags_and_protection() -> None:
    raw = _revision(ENWIKI, "Albert Einstein")
    assert raw.revision_id == 1270870723
    assert raw.trust == TrustSignals(
        revert_risk=RevertRisk(0.656692385673523, True, "revertrisk"),
        editor=Editor(
            name="Remsense", is_anonymous=None, is_bot=None, edit_count=63471,
            groups=("extendedconfirmed", "extendedmover", "patroller", "templateeditor", "*",
                    "user", "autoconfirmed"),
            date_started="2014-01-11T22:17:21Z",
        ),
        tags=("mw-undo", "mobile edit", "mobile app edit", "ios app edit", "app-undo"),
        protection=(Protection("edit", "autoconfirmed", "infinity"),
                    Protection("move", "sysop", "infinity")),
        watchers_count=3893,
    )  # fmt: skip


def test_older_objects_carry_ores_scores_and_the_minor_flag() -> None:
    squirrel = _revision(ENWIKI, "Squirrel").trust
    assert squirrel.revert_risk is None  # an older object: no revertrisk score
    assert (squirrel.damaging, squirrel.goodfaith) == (0.006749822835927898, 0.9919174479627914)
    assert squirrel.editor is not None and squirrel.editor.is_bot is True
    assert (squirrel.editor.name, squirrel.editor.edit_count) == ("OAbot", 342731)
    assert squirrel.is_minor_edit is True and squirrel.watchers_count == 343


def test_absent_signals_stay_absent() -> None:
    ruwiki = next(p for p in WME_SNAPSHOTS if p.name.startswith("ruwiki"))
    assert _revision(ruwiki, "Squirrel").trust == TrustSignals()
    assert TrustSignals().as_dict() == ABSENT
    simple = next(p for p in WME_SNAPSHOTS if p.name.startswith("simplewiki"))
    anonymous = _revision(simple, "Albert Einstein").trust
    assert anonymous.editor == Editor(name="173.225.242.253", is_anonymous=True)
    assert anonymous.revert_risk is None and anonymous.tags == ("mobile edit", "mobile web edit")


def test_xml_exports_give_the_contributor_comment_and_minor_flag() -> None:
    revisions = {r.title: r for r in open_source(ENWIKI_XML) if isinstance(r, RawRevision)}
    anarchism = revisions["Anarchism"].trust
    assert anarchism.editor == Editor(name="85.193.216.88", is_anonymous=True)
    assert anarchism.comment == "a better word;  use [[plain English]] -> [[WP:MOS]]"
    assert anarchism.is_minor_edit is False
    autism = revisions["Autism"].trust
    assert autism.editor == Editor(name="Doc James", is_anonymous=False)
    assert autism.revert_risk is None  # XML carries no model score
    assert revisions["AfghanistanGeography"].trust.is_minor_edit is True  # <minor/>
    assert revisions["AfghanistanGeography"].trust.editor == Editor("Graham87", False)
    # an <ip> that is no IP address names no one
    assert from_xml(None, "<script>alert(1)</script>", None, minor=False).editor is None
    assert from_xml(None, "2001:db8::1", None, minor=False).editor == Editor("2001:db8::1", True)


@pytest.mark.parametrize(
    ("version", "field", "expected"),
    [
        ({"scores": {"revertrisk": {"probability": {"true": 1.7}}}}, "revert_risk", None),
        ({"scores": {"revertrisk": {"probability": {"true": "0.9"}}}}, "revert_risk", None),
        ({"scores": {"revertrisk": {"probability": {"true": True}}}}, "revert_risk", None),
        ({"scores": {"revertrisk": {"probability": {"true": float("nan")}}}}, "revert_risk",
         None),
        ({"scores": {"revertrisk": {"probability": {"true": 0.2}, "prediction": "yes"}}},
         "revert_risk", RevertRisk(0.2, None, "revertrisk")),
        ({"editor": {"edit_count": -5, "name": "X"}}, "editor", Editor(name="X")),
        ({"editor": {"edit_count": True}}, "editor", None),
        ({"editor": {"groups": "sysop", "name": "Y"}}, "editor", Editor(name="Y")),
        ({"editor": {"date_started": "yesterday", "name": "Z"}}, "editor", Editor(name="Z")),
        ({"tags": ["mw-undo", 7, None, "", "mw-undo", "x" * 500]}, "tags",
         ("mw-undo", "x" * 200)),
        ({"tags": "mw-undo"}, "tags", ()),
        ({"is_minor_edit": "true"}, "is_minor_edit", None),
    ],
)  # fmt: skip
def test_hostile_values_are_dropped_not_believed(
    version: dict[str, Any], field: str, expected: object
) -> None:
    assert getattr(from_enterprise({"version": version}), field) == expected


def test_hostile_page_level_values_are_dropped() -> None:
    signals = from_enterprise(
        {
            "protection": [
                {"type": "edit", "level": "sysop", "expiry": "<script>"},
                {"type": "move"},
                "edit=sysop",
            ],
            "maintenance_tags": {"citation_needed_count": 3, "pov_count": -1, "x": "2"},
            "watchers_count": 1.5,
        }
    )
    assert signals.protection == (Protection("edit", "sysop", None),)
    assert signals.maintenance_tags == (("citation_needed_count", 3),)
    assert signals.watchers_count is None
    assert TrustSignals.from_json("{not json") == TrustSignals()
    assert TrustSignals.from_json("[1, 2]") == TrustSignals()
    assert TrustSignals.from_json(None) == TrustSignals()


def test_signals_are_stored_per_revision_and_read_back(tmp_path: Path) -> None:
    store = PassageStore(tmp_path / "s.sqlite")
    ingest_sources([ENWIKI], store, QUIET)
    raw = _revision(ENWIKI, "Albert Einstein")
    (revision,) = store.revisions_of("enwiki", raw.page_id)
    assert revision.trust == raw.trust
    passages = store.passages_of_revision("enwiki", 1270870723)
    assert passages and all(p.trust == raw.trust for p in passages)
    (stored,) = (
        sqlite3.connect(tmp_path / "s.sqlite")
        .execute("SELECT trust FROM revisions WHERE revision_id = 1270870723")
        .fetchone()
    )
    assert json.loads(stored)["revert_risk"] == {
        "probability": 0.656692385673523, "prediction": True, "model": "revertrisk",
    }  # fmt: skip
    store.close()


def test_an_older_store_is_migrated_and_its_revisions_have_no_signals(tmp_path: Path) -> None:
    """A store written before the signals were kept (schema 2) opens, gains the column, and
    its revisions read as having no signal — not as trusted or untrusted ones."""
    path = tmp_path / "old.sqlite"
    store = PassageStore(path)
    ingest_sources([ENWIKI], store, QUIET)
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE revisions DROP COLUMN trust")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    assert len(MIGRATIONS) == 3
    store = PassageStore(path)
    revisions = store.revisions_of("enwiki", _revision(ENWIKI, "Albert Einstein").page_id)
    assert [r.trust for r in revisions] == [TrustSignals()]
    (version,) = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()
    assert version == 3
    store.close()


def test_a_distributed_build_keeps_the_signals_across_its_workers() -> None:
    raw = _revision(ENWIKI, "Albert Einstein")
    decoded, _ = decode_item(encode_item(raw, None))
    assert isinstance(decoded, RawRevision) and decoded.trust == raw.trust


def test_the_age_of_a_revision_is_in_days() -> None:
    now = datetime(2025, 1, 31, 17, 3, 22, tzinfo=UTC)
    assert revision_age_days("2025-01-21T17:03:22Z", now) == 10.0
    assert revision_age_days("2025-02-21T17:03:22Z", now) == 0.0  # saved "in the future"


# -- over HTTP --------------------------------------------------------------------------------

ANONYMOUS = {
    **ABSENT,
    "editor": {"name": "173.225.242.253", "is_anonymous": True, "is_bot": None,
               "edit_count": None, "groups": [], "date_started": None},
    "tags": ["mobile edit", "mobile web edit"],
    "is_current": True,
}  # fmt: skip


def _without_age(trust: dict[str, Any]) -> dict[str, Any]:
    age = trust.pop("revision_age_days")
    saved = datetime(2022, 7, 30, 5, 49, 15, tzinfo=UTC)  # simplewiki's Einstein revision
    expected = (datetime.now(UTC) - saved).total_seconds() / 86400
    assert abs(age - expected) < 0.02
    return trust


@pytest.mark.slow
def test_every_passage_and_citation_carries_its_revisions_trust(e5_client: TestClient) -> None:
    search = e5_client.post(
        "/v1/search", json={"query": "Einstein was born in Ulm", "k": 3, "wikis": ["simplewiki"]}
    )
    assert search.status_code == 200, search.text
    top = search.json()["results"][0]
    assert top["revision_id"] == 8368147
    assert _without_age(dict(top["trust"])) == ANONYMOUS
    passage = e5_client.get(f"/v1/passages/{top['passage_id']}")
    assert _without_age(passage.json()["trust"]) == ANONYMOUS
    citation = e5_client.get("/v1/citations/simplewiki/revisions/8368147")
    assert citation.status_code == 200, citation.text
    assert _without_age(citation.json()["trust"]) == ANONYMOUS
    attributed = e5_client.post(
        "/v1/attribute",
        json={"answer": "Einstein was born in Ulm, Württemberg, Germany, on 14 March 1879."},
    )
    cited = attributed.json()["sentences"][0]["citations"][0]
    assert cited["passage_id"].startswith("simplewiki:8368147:")
    assert _without_age(cited["trust"]) == ANONYMOUS
    # ruwiki's object carries no signal at all: every field absent, none invented
    russian = e5_client.post(
        "/v1/search", json={"query": "Squirrel язык программирования", "k": 1,
                            "wikis": ["ruwiki"]},
    )  # fmt: skip
    trust = russian.json()["results"][0]["trust"]
    trust.pop("revision_age_days")
    assert trust == {**ABSENT, "is_current": True}


# -- max_revert_risk ----------------------------------------------------------------------------


def test_max_revert_risk_leaves_out_only_passages_scored_above_it(tmp_path: Path) -> None:
    """On the real enwiki snapshot (a real store, the ranking's own materialise): at 0.7,
    Angela Merkel's revision (0.959) and United States' (0.794) are left out; Albert Einstein's
    (0.657), Josephine Baker's (0.425) and Squirrel's (no revertrisk score) stay."""
    from app.retrieval.fusion import FusedHit
    from app.retrieval.ranking import materialise

    store = PassageStore(tmp_path / "s.sqlite")
    ingest_sources([ENWIKI], store, QUIET)
    rows = [int(r[0]) for r in store.connection().execute("SELECT id FROM passages ORDER BY id")]
    fused = [FusedHit(row, 1.0 / (1 + i)) for i, row in enumerate(rows)]

    def titles(max_risk: float | None) -> set[str]:
        hits = materialise(fused, store.passages_by_rows, len(rows), None, None, max_risk)
        return {h.passage.title for h in hits}

    everything = {"Albert Einstein", "Angela Merkel", "Josephine Baker", "Squirrel",
                  "United States"}  # fmt: skip
    assert titles(None) == everything == titles(1.0)
    assert titles(0.7) == {"Albert Einstein", "Josephine Baker", "Squirrel"}
    assert titles(0.0) == {"Squirrel"}  # unscored: kept
    store.close()


def test_the_client_and_the_cli_carry_max_revert_risk(capsys: pytest.CaptureFixture[str]) -> None:
    from app.api.queries import search_request
    from app.api.schemas import SearchBody
    from app.cli.main import main
    from app.client import _search_body

    body = SearchBody.model_validate({"query": "q", "max_revert_risk": 0.3})
    assert search_request(body, "q").max_revert_risk == 0.3  # the HTTP body reaches the ranking
    assert search_request(SearchBody(query="q"), "q").max_revert_risk is None
    assert _search_body("q", 5, "hybrid", None, None, None, None, 0.5)["max_revert_risk"] == 0.5
    assert "max_revert_risk" not in _search_body("q", 5, "hybrid", None, None, None, None)
    with pytest.raises(SystemExit) as exit_:
        main(["search", "q", "--max-revert-risk", "1.5"])
    assert exit_.value.code == 2
    assert "--max-revert-risk: expected a number from 0 to 1, got '1.5'" in capsys.readouterr().err


@pytest.mark.slow
def test_max_revert_risk_over_http_and_mcp(e5_client: TestClient) -> None:
    from app.mcp.server import ToolError, WikiragTools
    from app.serving import ServingIndex

    body = {"query": "Einstein was born in Ulm", "k": 5}
    plain = e5_client.post("/v1/search", json=body).json()["results"]
    # none of this index's revisions has a revert-risk score: nothing is left out
    strict = e5_client.post("/v1/search", json={**body, "max_revert_risk": 0.0}).json()
    assert [r["passage_id"] for r in strict["results"]] == [r["passage_id"] for r in plain]
    for bad in (1.5, -0.1, "high"):
        response = e5_client.post("/v1/search", json={**body, "max_revert_risk": bad})
        assert response.status_code == 422, response.text
        assert "max_revert_risk" in response.text
    tools = WikiragTools(cast(ServingIndex, None))  # refused before the index is read
    with pytest.raises(ToolError, match=r"max_revert_risk must be between 0 and 1, not 2\.0"):
        tools.search("Einstein", max_revert_risk=2.0)
