"""Usage metering and quotas (app.accounts.metering) against the real service: the tiny index of
``test_api.py``, real SQLite key and usage databases, the app's own lifespan (the flusher and
its last flush), and one real ``wikirag serve`` process stopped by SIGTERM.

Expected totals are computed from the responses the clients received, never from the meter.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.accounts.keys import KeyStore, secret_digest
from app.accounts.metering import (
    Quota,
    Served,
    UsageMeter,
    stored_queries,
    usage_report,
    usage_rows,
)
from app.api.main import create_app
from app.cli.main import main as cli_main
from indexer.generation import IndexLayout
from indexer.store import PassageStore
from tests.live_server import start_server
from tests.test_api import (
    CURRENT_REVISION,
    copy_index,
    error_of,
    service_settings,
    shared_embedder,
    shared_index,
)

pytestmark = pytest.mark.slow

QUERIES = ["Einstein Nobel prize", "squirrel", "Moscow river", "university course", "physics"]
SEARCH = "/v1/search"
PASSAGE = "/v1/passages/{passage_id}"
CITE = "/v1/citations/{wiki}/revisions/{revision_id}"
ATTRIBUTE = "/v1/attribute"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_index(tmp_path_factory)


def make_client(index_dir: Path, tmp: Path, **overrides: Any) -> TestClient:
    values: dict[str, Any] = {"open_access": False, "usage_flush_seconds": 0.05}
    values.update(overrides)
    settings = service_settings(index_dir, tmp, **values)
    return TestClient(create_app(settings, embedder=shared_embedder()))


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def db_totals(
    path: Path,
) -> tuple[Counter[tuple[str, str]], dict[tuple[str, str, str, int], list[int]]]:
    """(requests per (key, route), [passages, chars, citations, attributions] per (key, route,
    wiki, page id)) as stored."""
    with sqlite3.connect(path) as conn:
        requests: Counter[tuple[str, str]] = Counter()
        for key_id, route, n in conn.execute("SELECT key_id, route, requests FROM usage_requests"):
            requests[(key_id, route)] += n
        content: dict[tuple[str, str, str, int], list[int]] = {}
        for key_id, route, wiki, page_id, *counts in conn.execute(
            "SELECT key_id, route, wiki, page_id, passages, chars, citations, attributions "
            "FROM usage_content"
        ):
            row = content.setdefault((key_id, route, wiki, page_id), [0, 0, 0, 0])
            for i, n in enumerate(counts):
                row[i] += n
    return requests, content


# -- exact totals ---------------------------------------------------------------------------


class Expected:
    """What the clients were served, from their responses (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.content: dict[tuple[str, str, str, int], list[int]] = {}

    def add(self, key: str, route: str, wiki: str, page_id: int, counts: list[int]) -> None:
        with self.lock:
            row = self.content.setdefault((key, route, wiki, page_id), [0, 0, 0, 0])
            for i, n in enumerate(counts):
                row[i] += n

    def request(self, key: str, route: str) -> None:
        with self.lock:
            self.requests[(key, route)] += 1


def _client_work(client: TestClient, key_id: str, raw: str, n: int, expected: Expected) -> None:
    headers = bearer(raw)
    for i in range(n):
        query = QUERIES[(i + len(key_id)) % len(QUERIES)]
        response = client.post(
            SEARCH, json={"query": query, "k": 1 + i % 4, "mode": "lexical"}, headers=headers
        )
        assert response.status_code == 200, response.text
        expected.request(key_id, SEARCH)
        results = response.json()["results"]
        for r in results:
            expected.add(key_id, SEARCH, r["wiki"], r["page_id"], [1, len(r["text"]), 0, 0])
        if results and i % 3 == 0:
            passage = client.get(f"/v1/passages/{results[0]['passage_id']}", headers=headers)
            assert passage.status_code == 200
            expected.request(key_id, PASSAGE)
            p = passage.json()
            expected.add(key_id, PASSAGE, p["wiki"], p["page_id"], [1, len(p["text"]), 0, 0])
        if i % 4 == 1:
            cited = client.get(
                f"/v1/citations/simplewiki/revisions/{CURRENT_REVISION}", headers=headers
            )
            assert cited.status_code == 200
            expected.request(key_id, CITE)
            c = cited.json()
            chars = sum(len(p["text"]) for p in c["passages"])
            expected.add(key_id, CITE, c["wiki"], c["page_id"], [len(c["passages"]), chars, 1, 0])
        if i % 5 == 2:  # an error still counts as a request, but serves nothing
            missing = client.get("/v1/passages/simplewiki:1:0", headers=headers)
            assert missing.status_code == 404
            assert missing.headers["X-Quota-Remaining"] == "requests=unlimited, passages=unlimited"
            expected.request(key_id, PASSAGE)


def test_exact_totals_under_concurrent_clients_after_graceful_shutdown(
    index_dir: Path, tmp_path: Path
) -> None:
    keys = KeyStore(tmp_path / "keys.sqlite")
    clients = [keys.create(f"client-{i}") for i in range(6)]
    counts = [12, 15, 18, 10, 14, 11]
    expected = Expected()
    attributed: dict[str, int] = {}
    with make_client(index_dir, tmp_path) as client:
        threads = [
            threading.Thread(target=_client_work, args=(client, rec.key_id, raw, n, expected))
            for (rec, raw), n in zip(clients, counts, strict=True)
        ]
        for thread in threads:
            thread.start()
        # one attribution meanwhile (its totals checked per key below)
        rec, raw = clients[0]
        answer = "Albert Einstein received the Nobel Prize in Physics."
        response = client.post(ATTRIBUTE, json={"answer": answer}, headers=bearer(raw))
        assert response.status_code == 200, response.text
        body = response.json()
        citations = [c for s in body["sentences"] for c in s["citations"]]
        attributed = {
            "passages": len(body["references"]),
            "chars": sum(len(c["quote"]) for c in citations),
            "attributions": len(citations),
        }
        for thread in threads:
            thread.join()
    # the lifespan has ended: the last flush is done
    requests, content = db_totals(tmp_path / "usage.sqlite")
    expected.requests[(rec.key_id, ATTRIBUTE)] += 1
    assert requests == expected.requests
    assert sum(expected.requests.values()) > 100
    got_attribute = [0, 0, 0, 0]
    for key, row in list(content.items()):
        if key[1] == ATTRIBUTE:
            assert key[0] == rec.key_id
            got_attribute = [a + b for a, b in zip(got_attribute, row, strict=True)]
            del content[key]
    assert content == expected.content
    assert got_attribute == [attributed["passages"], attributed["chars"], 0,
                             attributed["attributions"]]  # fmt: skip
    assert attributed["attributions"] > 0


# -- the meter on its own ---------------------------------------------------------------------


def test_meter_threads_flushes_and_month_rollover(tmp_path: Path) -> None:
    now = [calendar.timegm((2026, 11, 30, 23, 59, 0, 0, 0, 0))]
    meter = UsageMeter(tmp_path / "usage.sqlite", flush_seconds=0.01, clock=lambda: now[0])
    meter.start()

    def work() -> None:
        for i in range(500):
            assert meter.admit("k1", SEARCH).exceeded is None
            meter.record("k1", SEARCH, [Served("enwiki", i % 7, passages=2, chars=10)])

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert meter.month_usage("k1").requests == 4000
    assert meter.month_usage("k1").passages == 8000
    assert meter.month_usage("k1").resets == dt.date(2026, 12, 1)
    now[0] += 120  # December: the monthly quota counts start again
    assert meter.month_usage("k1").requests == 0
    assert meter.admit("k1", SEARCH, Quota(requests=1)).exceeded is None
    assert meter.admit("k1", SEARCH, Quota(requests=1)).exceeded == "requests"
    meter.stop()
    days = usage_rows(tmp_path / "usage.sqlite", "day", dt.date(2026, 11, 1), dt.date(2026, 12, 31),
                      key_id="k1")  # fmt: skip
    assert [(r.day, r.requests, r.passages, r.chars) for r in days] == [
        ("2026-11-30", 4000, 8000, 40000),
        ("2026-12-01", 1, 0, 0),
    ]
    # a restarted meter reads the month's persisted totals
    again = UsageMeter(tmp_path / "usage.sqlite", clock=lambda: now[0])
    assert again.month_usage("k1").requests == 1
    assert again.admit("k1", SEARCH, Quota(requests=1)).exceeded == "requests"
    again.stop()


def test_the_flusher_writes_within_its_interval_without_a_shutdown(tmp_path: Path) -> None:
    """What a crash would keep: counts older than one flush interval are on disk."""
    meter = UsageMeter(tmp_path / "usage.sqlite", flush_seconds=0.1)
    meter.start()
    try:
        meter.admit("k", SEARCH)
        meter.record("k", SEARCH, [Served("enwiki", 1, passages=3, chars=30)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            requests, content = db_totals(tmp_path / "usage.sqlite")
            if requests:
                break
            time.sleep(0.05)
        assert requests == Counter({("k", SEARCH): 1})
        assert content == {("k", SEARCH, "enwiki", 1): [3, 30, 0, 0]}
    finally:
        meter.stop()


def test_metering_off_records_nothing_and_sends_no_quota_headers(
    index_dir: Path, tmp_path: Path
) -> None:
    with make_client(index_dir, tmp_path, metering=False, open_access=True) as client:
        response = client.post(SEARCH, json={"query": "squirrel", "mode": "lexical"})
        assert response.status_code == 200 and "X-Quota-Remaining" not in response.headers
        error_of(client.get("/v1/usage"), 503, "metering-off")
    assert not (tmp_path / "usage.sqlite").exists()


# -- quotas ---------------------------------------------------------------------------------


def _next_month_start() -> str:
    today = dt.datetime.now(dt.UTC).date()
    first = dt.date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return f"{first.isoformat()}T00:00:00Z"


def test_quotas_answer_429_with_headers_and_survive_a_restart(
    index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = KeyStore(tmp_path / "keys.sqlite")
    few, few_raw = keys.create("few requests", quota_requests=3)
    small, small_raw = keys.create("few passages", quota_passages=5)
    search = {"query": "squirrel", "k": 3, "mode": "lexical"}
    reset = _next_month_start()
    with make_client(index_dir, tmp_path, usage_flush_seconds=3600) as client:
        for left in (2, 1, 0):
            ok = client.post(SEARCH, json=search, headers=bearer(few_raw))
            assert ok.status_code == 200
            assert ok.headers["X-Quota-Remaining"] == f"requests={left}, passages=unlimited"
            assert ok.headers["X-Quota-Reset"] == reset
        refused = client.post(SEARCH, json=search, headers=bearer(few_raw))
        error = error_of(refused, 429, "quota-exceeded")
        assert error["details"] == {"quota": "requests", "limit": 3, "used": 3, "resets": reset}
        assert "3 requests" in error["message"] and reset in error["message"]
        assert int(refused.headers["Retry-After"]) > 0
        assert refused.headers["X-Quota-Remaining"] == "requests=0, passages=unlimited"
        # passages: the request that reaches the quota is served whole; the next is refused
        served = []
        for _ in range(2):
            ok = client.post(SEARCH, json=search, headers=bearer(small_raw))
            assert ok.status_code == 200
            served.append(len(ok.json()["results"]))
        assert sum(served) >= 5
        assert ok.headers["X-Quota-Remaining"] == "requests=unlimited, passages=0"
        refused = client.post(SEARCH, json=search, headers=bearer(small_raw))
        error = error_of(refused, 429, "quota-exceeded")
        assert error["details"]["quota"] == "passages" and error["details"]["limit"] == 5
        assert error["details"]["used"] == sum(served)
        metrics = client.get("/metrics").text
        assert f'wikirag_key_requests_total{{key_id="{few.key_id}"}} 3.0' in metrics
        assert f'wikirag_key_passages_served_total{{key_id="{small.key_id}"}} {sum(served)}.0' in (
            metrics
        )
        assert f'wikirag_quota_exceeded_total{{key_id="{few.key_id}",quota="requests"}}' in metrics
        assert "page_id" not in metrics
    # a new process reads the month's totals from the usage database
    with make_client(index_dir, tmp_path) as client:
        error_of(client.post(SEARCH, json=search, headers=bearer(few_raw)), 429, "quota-exceeded")
        error_of(client.post(SEARCH, json=search, headers=bearer(small_raw)), 429)
        # raising the quota with `wikirag keys quota` applies at once
        argv = ["keys", "--keys-db", str(tmp_path / "keys.sqlite"), "quota", few.key_id]
        assert cli_main([*argv, "--requests", "4"]) == 0
        assert "4 requests/month" in capsys.readouterr().out
        ok = client.post(SEARCH, json=search, headers=bearer(few_raw))
        assert ok.status_code == 200 and ok.headers["X-Quota-Remaining"].startswith("requests=0")
        assert cli_main([*argv, "--requests", "none"]) == 0
        assert client.post(SEARCH, json=search, headers=bearer(few_raw)).status_code == 200
    assert keys.get(few.key_id).quota_requests is None  # type: ignore[union-attr]


def test_keys_cli_sets_quotas_and_a_pre_quota_keys_db_still_works(
    index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.sqlite"
    with sqlite3.connect(path) as conn:  # the schema before quotas existed
        conn.execute(
            "CREATE TABLE api_keys (key_id TEXT PRIMARY KEY, name TEXT NOT NULL, salt BLOB NOT "
            "NULL, digest TEXT NOT NULL, admin INTEGER NOT NULL DEFAULT 0, rate_limit INTEGER, "
            "created_at TEXT NOT NULL, revoked_at TEXT)"
        )
        salt = b"0123456789abcdef"
        conn.execute(
            "INSERT INTO api_keys VALUES ('00112233aabb', 'old client', ?, ?, 0, NULL, "
            "'2025-01-01T00:00:00Z', NULL)",
            (salt, secret_digest(salt, "old-secret")),
        )
    old_raw = "wrk_00112233aabb_old-secret"
    with make_client(index_dir, tmp_path) as client:
        ok = client.post(SEARCH, json={"query": "squirrel", "mode": "lexical"},
                         headers=bearer(old_raw))  # fmt: skip
        assert ok.status_code == 200, ok.text
        assert ok.headers["X-Quota-Remaining"] == "requests=unlimited, passages=unlimited"
    record = KeyStore(path).get("00112233aabb")
    assert record is not None and record.quota_requests is None and not record.store_queries
    base = ["keys", "--keys-db", str(path)]
    assert cli_main([*base, "quota", "00112233aabb", "--passages", "100"]) == 0
    assert cli_main([*base, "create", "--name", "new", "--quota-requests", "10", "--json"]) == 0
    out = capsys.readouterr().out
    created = json.loads(out[out.index("{") :])
    assert created["quota_requests"] == 10 and created["quota_passages"] is None
    assert cli_main([*base, "list", "--json"]) == 0
    listed = {k["key_id"]: k for k in json.loads(capsys.readouterr().out)}
    assert listed["00112233aabb"]["quota_passages"] == 100
    assert listed["00112233aabb"]["quota_requests"] is None
    assert cli_main([*base, "quota", "ffffffffffff", "--requests", "1"]) == 1
    with pytest.raises(SystemExit):
        cli_main([*base, "quota", "00112233aabb", "--requests", "-1"])


# -- GET /v1/usage --------------------------------------------------------------------------


def test_usage_endpoint_own_admin_403_groupings_and_dates(index_dir: Path, tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys.sqlite")
    alice, alice_raw = keys.create("alice")
    bob, bob_raw = keys.create("bob")
    admin, admin_raw = keys.create("ops", admin=True)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    # a flush interval longer than the test: /v1/usage must still show everything
    with make_client(index_dir, tmp_path, usage_flush_seconds=3600) as client:
        served = client.post(SEARCH, json={"query": "Einstein", "k": 4, "mode": "lexical"},
                             headers=bearer(alice_raw)).json()["results"]  # fmt: skip
        passage = client.get(f"/v1/passages/{served[0]['passage_id']}", headers=bearer(bob_raw))
        assert passage.status_code == 200

        own = client.get("/v1/usage", headers=bearer(alice_raw))
        assert own.status_code == 200, own.text
        body = own.json()
        assert body["key_id"] == alice.key_id and body["group_by"] == "day"
        assert body["from"] == today[:8] + "01" and body["to"] == today
        totals = body["totals"]
        assert totals["requests"] == 2  # the search and this request
        assert totals["requests_by_route"] == {SEARCH: 1, "/v1/usage": 1}
        assert totals["passages"] == len(served)
        assert totals["chars"] == sum(len(r["text"]) for r in served)
        assert body["rows"] == [
            {"day": today, "wiki": None, "page_id": None, "title": None, "requests": 2,
             "passages": len(served), "chars": totals["chars"], "citations": 0,
             "attributions": 0}
        ]  # fmt: skip

        by_wiki = client.get("/v1/usage?group_by=wiki", headers=bearer(alice_raw)).json()
        wikis = Counter(r["wiki"] for r in served)
        assert {r["wiki"]: r["passages"] for r in by_wiki["rows"]} == dict(wikis)
        assert all(r["requests"] is None for r in by_wiki["rows"])

        by_article = client.get("/v1/usage?group_by=article", headers=bearer(alice_raw)).json()
        articles = Counter((r["wiki"], r["page_id"]) for r in served)
        assert {(r["wiki"], r["page_id"]): r["passages"] for r in by_article["rows"]} == dict(
            articles
        )
        titles = {(r["wiki"], r["page_id"]): r["title"] for r in served}
        assert all(r["title"] == titles[(r["wiki"], r["page_id"])] for r in by_article["rows"])
        counts = [r["passages"] for r in by_article["rows"]]
        assert counts == sorted(counts, reverse=True)

        error_of(client.get(f"/v1/usage?key_id={bob.key_id}", headers=bearer(alice_raw)), 403,
                 "admin-required")  # fmt: skip
        as_admin = client.get(f"/v1/usage?key_id={bob.key_id}", headers=bearer(admin_raw)).json()
        assert as_admin["key_id"] == bob.key_id
        assert as_admin["totals"]["requests_by_route"] == {PASSAGE: 1}
        assert as_admin["totals"]["chars"] == len(passage.json()["text"])
        own_admin = client.get("/v1/usage", headers=bearer(admin_raw)).json()
        assert own_admin["key_id"] == admin.key_id and own_admin["totals"]["passages"] == 0

        past = client.get("/v1/usage?from=2020-01-01&to=2020-01-31", headers=bearer(alice_raw))
        assert past.json()["rows"] == [] and past.json()["totals"]["requests"] == 0
        for query, code in [
            ("from=2026-13-01", "invalid-date"),
            ("to=yesterday", "invalid-date"),
            ("from=2026-02-01&to=2026-01-01", "invalid-date-range"),
            ("group_by=month", "invalid-request"),
        ]:
            error = error_of(client.get(f"/v1/usage?{query}", headers=bearer(alice_raw)), 422)
            assert error["code"] == code, error
        assert (
            "YYYY-MM-DD"
            in error_of(client.get("/v1/usage?from=11/01/2026", headers=bearer(alice_raw)), 422)[
                "message"
            ]
        )
        error_of(client.get("/v1/usage"), 401)


# -- query text -----------------------------------------------------------------------------


def test_query_text_is_stored_only_with_consent_and_pruned_after_retention(
    index_dir: Path, tmp_path: Path
) -> None:
    usage_db = tmp_path / "usage.sqlite"
    meter = UsageMeter(usage_db)  # an expired query from an earlier run
    meter.stop()
    with sqlite3.connect(usage_db) as conn:
        conn.execute(
            "INSERT INTO usage_queries (key_id, ts, route, query) VALUES "
            "('old', '2020-01-01T00:00:00Z', '/v1/search', 'long ago')"
        )
    keys = KeyStore(tmp_path / "keys.sqlite")
    _, plain_raw = keys.create("no consent")
    agreed, agreed_raw = keys.create("consents", store_queries=True)
    search = {"query": "where do squirrels live", "mode": "lexical"}
    with make_client(index_dir, tmp_path, usage_query_retention_days=7) as client:
        assert client.post(SEARCH, json=search, headers=bearer(plain_raw)).status_code == 200
        assert client.post(SEARCH, json=search, headers=bearer(agreed_raw)).status_code == 200
    queries = stored_queries(usage_db)
    assert [(k, r, q) for k, _, r, q in queries] == [(agreed.key_id, SEARCH, search["query"])]
    # the service-wide opt-in stores every key's queries
    with make_client(index_dir, tmp_path, usage_store_queries=True) as client:
        assert client.post(SEARCH, json=search, headers=bearer(plain_raw)).status_code == 200
    assert len(stored_queries(usage_db)) == 2
    # a client's consent, withdrawn with `wikirag keys queries`
    argv = ["keys", "--keys-db", str(tmp_path / "keys.sqlite"), "queries", agreed.key_id, "off"]
    assert cli_main(argv) == 0
    with make_client(index_dir, tmp_path) as client:
        assert client.post(SEARCH, json=search, headers=bearer(agreed_raw)).status_code == 200
    assert len(stored_queries(usage_db)) == 2
    with sqlite3.connect(usage_db) as conn:
        assert "long ago" not in str(conn.execute("SELECT query FROM usage_queries").fetchall())


# -- the operator's report --------------------------------------------------------------------


def test_usage_report_cli_csv_and_json(
    index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = PassageStore(IndexLayout(index_dir).current().file("store.sqlite"), readonly=True)
    (wiki, page_id), *_ = store.find_pages("Albert Einstein", "simplewiki")
    title = store.page(wiki, page_id).title  # type: ignore[union-attr]
    store.close()
    keys = KeyStore(tmp_path / "keys.sqlite")
    a, _ = keys.create("answer engine")
    usage_db = tmp_path / "usage.sqlite"
    meter = UsageMeter(usage_db)
    for _ in range(3):
        meter.admit(a.key_id, SEARCH)
    meter.record(a.key_id, SEARCH, [Served(wiki, page_id, 4, 400), Served(wiki, 999999, 1, 10)])
    meter.record(a.key_id, CITE, [Served("ruwiki", 7, 2, 50, citations=1)])
    meter.admit("other", SEARCH)
    meter.stop()
    day = dt.datetime.now(dt.UTC).date().isoformat()
    base = ["usage", "report", "--usage-db", str(usage_db), "--index", str(index_dir),
            "--keys-db", str(tmp_path / "keys.sqlite"), "--from", day, "--to", day]  # fmt: skip
    assert cli_main([*base, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [k["key_id"] for k in doc["keys"]] == sorted([a.key_id, "other"])
    mine = next(k for k in doc["keys"] if k["key_id"] == a.key_id)
    assert mine["name"] == "answer engine" and mine["requests"] == 3
    assert (mine["passages"], mine["chars"], mine["citations"]) == (7, 460, 1)
    assert {w["wiki"]: w["passages"] for w in mine["wikis"]} == {wiki: 5, "ruwiki": 2}
    assert [(t["page_id"], t["title"]) for t in mine["top_articles"]] == [
        (page_id, title), (7, None), (999999, None)
    ]  # fmt: skip
    assert cli_main([*base, "--format", "csv", "--key", a.key_id, "--top", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == ("section,key_id,name,wiki,page_id,title,requests,passages,chars,"
                        "citations,attributions")  # fmt: skip
    assert lines[1] == f"key,{a.key_id},answer engine,,,,3,7,460,1,0"
    assert f"article,{a.key_id},answer engine,{wiki},{page_id},{title},,4,400,0,0" in lines
    assert len(lines) == 1 + 1 + 2 + 1
    assert cli_main([*base, "--from", "2026-02-01", "--to", "2026-01-01"]) == 1
    assert cli_main(["usage", "report", "--usage-db", str(tmp_path / "none.sqlite")]) == 1
    # the library function the CLI uses, without titles
    assert usage_report(usage_db, dt.date(2020, 1, 1), dt.date(2020, 1, 2)) == []


# -- a real server stopped by a signal ----------------------------------------------------------


@pytest.fixture
def served_index(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield copy_index(shared_index(tmp_path_factory), tmp_path / "index")


@pytest.mark.parametrize(("stop", "status"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_live_server_flushes_usage_on_graceful_shutdown(
    served_index: Path, tmp_path: Path, stop: signal.Signals, status: int
) -> None:
    usage_db = tmp_path / "usage.sqlite"
    log = tmp_path / "serve.log"
    env = {"WIKIRAG_USAGE_DB": str(usage_db), "WIKIRAG_USAGE_FLUSH_SECONDS": "3600"}
    proc, url = start_server(served_index, log, env)
    try:
        passages = chars = 0
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(7):
                response = client.post(SEARCH, json={"query": QUERIES[i % 5], "k": 1 + i % 3,
                                                     "mode": "lexical"})  # fmt: skip
                assert response.status_code == 200
                assert response.headers["X-Quota-Remaining"].startswith("requests=unlimited")
                results = response.json()["results"]
                passages += len(results)
                chars += sum(len(r["text"]) for r in results)
        with sqlite3.connect(usage_db) as conn:  # nothing flushed yet (interval: 1 h)
            assert conn.execute("SELECT COUNT(*) FROM usage_requests").fetchone() == (0,)
        proc.send_signal(stop)
        assert proc.wait(timeout=60) == status, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    requests, content = db_totals(usage_db)
    assert requests == Counter({("anonymous", SEARCH): 7})
    assert [sum(row[0] for row in content.values()), sum(row[1] for row in content.values())] == [
        passages,
        chars,
    ]
