"""Hostile requests and the service's security promises (issue 8).

In process (FastAPI's TestClient, lifespan included, over the tiny index of ``test_api.py``):
schemathesis with API keys required (no key, a wrong key, a non-admin key: 401/403, never a
5xx, every response in its schema), deeply nested JSON, Unicode edge cases in queries, path
traversal in ids, every admin route refused without the admin key, CORS closed by default and
open only to the configured origins, raw keys never logged.

Against a real ``wikirag serve`` process (keys required): bodies over the limit refused
before they are read (a ``Content-Length`` that announces too much, a chunked body without
one), a revoked key refused at once without a restart, and the raw key absent from the log.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.accounts.keys import KeyStore
from app.api.main import create_app
from app.cli.main import main as cli_main
from benchmarks.fuzz_api import record_fuzz_counts
from indexer.embedding import Embedder
from tests.conftest import ROOT
from tests.live_server import _wait_ready, free_port
from tests.test_api import (
    copy_index,
    embedder,
    error_of,
    fuzz_settings,
    index_dir,
    key_secret,
    leaked_pieces,
    service_settings,
)

__all__ = ["embedder", "index_dir"]  # session fixtures shared with test_api

pytestmark = pytest.mark.slow

# A well-formed key that no database holds.
UNKNOWN_KEY = "wrk_0123456789ab_" + "A" * 43
PUBLIC_PATHS = {"/healthz", "/readyz", "/metrics"}


@dataclass(frozen=True)
class Keyed:
    """A service that requires keys, with a non-admin and an admin key."""

    client: TestClient
    user: str
    admin: str
    keys: KeyStore
    index_dir: Path


@pytest.fixture(scope="module")
def keyed(
    index_dir: Path, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Keyed]:
    settings = service_settings(index_dir, tmp_path_factory.mktemp("keyed"), open_access=False)
    keys = KeyStore(settings.keys_db_path())
    _, user = keys.create("user")
    _, admin = keys.create("admin", admin=True)
    with TestClient(create_app(settings, embedder=embedder)) as client:
        yield Keyed(client, user, admin, keys, index_dir)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    """``(method, path, operation)`` of every route in the OpenAPI document."""
    spec = client.get("/openapi.json").json()
    return [
        (method.upper(), path, operation)
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]


def concrete(path: str) -> str:
    """A path template with its parameters filled in (``{wiki}`` → ``simplewiki``…)."""
    values = {
        "{passage_id}": "simplewiki:8368147:0",
        "{wiki}": "simplewiki",
        "{revision_id}": "8368147",
        "{job_id}": "0123456789abcdef",
    }
    for name, value in values.items():
        path = path.replace(name, value)
    return path


# -- schemathesis with keys required ------------------------------------------------------


def refused_before_auth(response: Any) -> bool:
    """A body over the limit is refused before anything else, the key included (413: the
    body is never read)."""
    return bool(response.status_code == 413)


def test_schemathesis_with_keys_required_gives_401_403_and_never_a_server_error(
    index_dir: Path, embedder: Embedder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every operation fuzzed (positive and negative cases) with no key, an unknown key, a
    malformed key and a non-admin key: each protected operation answers 401 (no/bad key)
    or 403 (admin route, non-admin key) before looking at the request; the rest never 5xx
    and conform to the schema."""
    import hypothesis
    import hypothesis.errors
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.python import asgi
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    settings = service_settings(index_dir, tmp_path, open_access=False)
    _, user = KeyStore(settings.keys_db_path()).create("fuzzer")
    app = create_app(settings, embedder=embedder)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        response_headers_conformance,
    ]
    identities: dict[str, dict[str, str]] = {
        "no key": {},
        "unknown key": bearer(UNKNOWN_KEY),
        "malformed key": bearer("not-a-key"),
        "non-admin key": bearer(user),
    }
    cases: dict[str, int] = {}
    statuses: dict[int, int] = {}

    def fuzz(operation: Any, mode: GenerationMode, identity: str) -> None:
        protected = bool(operation.definition.raw.get("security"))
        admin_route = operation.path.startswith("/v1/admin/")

        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        @fuzz_settings(10)
        def run(case: Any) -> None:
            case.headers = {  # the identity under test, not one schemathesis made up
                k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"
            }
            response = case.call(headers=identities[identity])
            cases[identity] = cases.get(identity, 0) + 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, (operation.label, identity, response.text)
            if protected and identity != "non-admin key" and not refused_before_auth(response):
                assert response.status_code == 401, (operation.label, identity, response.text)
                (challenge,) = response.headers["www-authenticate"]  # schemathesis: a list
                assert challenge.startswith("Bearer")
            elif admin_route and not refused_before_auth(response):
                sent = response.request.headers.get("Authorization")
                # negative cases may break the Authorization header itself: then 401
                expected = 403 if sent == identities[identity]["Authorization"] else 401
                assert response.status_code == expected, (operation.label, sent, response.text)
            case.validate_response(response, checks=checks)

        try:
            run()
        except hypothesis.errors.Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation.label

    labels = []
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            labels.append(operation.label)
            for identity in identities:
                if operation.label == "POST /v1/admin/rebuild" and identity == "non-admin key":
                    # the 403 comes first, so no build can start
                    assert operation.path.startswith("/v1/admin/")
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    fuzz(operation, mode, identity)
    finally:
        asgi.shutdown_lifespans()
    total = sum(cases.values())
    summary = {"cases": total, "operations": len(labels), "by_identity": cases}
    summary["statuses"] = {str(k): v for k, v in sorted(statuses.items())}
    record_fuzz_counts("keys_required", summary)
    with capsys.disabled():  # the figures belong in the test output
        print(f"\nschemathesis (keys required): {total} cases over {len(labels)} operations; "
              f"by identity {cases}; statuses {dict(sorted(statuses.items()))}")  # fmt: skip
    assert len(labels) >= 13 and total >= 500
    assert not any(status >= 500 for status in statuses)
    assert statuses.get(401, 0) > 0 and statuses.get(403, 0) > 0


# -- admin routes and path parameters -----------------------------------------------------


def test_every_admin_route_needs_the_admin_key(keyed: Keyed) -> None:
    admin_routes = [
        (method, path) for method, path, _ in operations(keyed.client) if "/admin/" in path
    ]
    assert len(admin_routes) >= 4
    for method, path in admin_routes:
        url = concrete(path)
        error_of(keyed.client.request(method, url), 401, "missing-api-key")
        error_of(keyed.client.request(method, url, headers=bearer(UNKNOWN_KEY)), 401)
        error_of(keyed.client.request(method, url, headers=bearer(keyed.user)), 403)
        # a body that would start a build changes nothing: the 403 comes first
        error_of(
            keyed.client.request(
                method, url, headers=bearer(keyed.user), json={"sources": ["/etc/passwd"]}
            ),
            403,
            "admin-required",
        )
    reached = keyed.client.get("/v1/admin/jobs", headers=bearer(keyed.admin))
    assert reached.status_code == 200


def test_bodies_are_not_looked_at_before_the_key_is_checked(keyed: Keyed) -> None:
    """FastAPI parses a JSON body before it checks the key; the service still answers 401
    to a caller without a valid key, whatever the body, and 422 to one with a key."""
    bodies = [b'{"query": ', b"\xff\xfe not text", b"[" * 10_000, b"{}", b""]
    for path in ("/v1/search", "/v1/attribute", "/v1/admin/rebuild"):
        for body in bodies:
            for headers in ({}, bearer(UNKNOWN_KEY), {"Authorization": "Basic eDp5"}):
                headers = {**headers, "content-type": "application/json"}
                response = keyed.client.post(path, content=body, headers=headers)
                error_of(response, 401)
                assert response.headers["www-authenticate"].startswith("Bearer")
            with_key = {**bearer(keyed.user), "content-type": "application/json"}
            response = keyed.client.post(path, content=body, headers=with_key)
            expected = 403 if "/admin/" in path else 422
            error_of(response, expected)


def test_every_protected_route_refuses_requests_without_a_valid_key(keyed: Keyed) -> None:
    for method, path, operation in operations(keyed.client):
        url = concrete(path)
        if not operation.get("security"):
            assert path in PUBLIC_PATHS, f"{method} {path} is not protected"
            continue
        for headers in ({}, bearer(UNKNOWN_KEY), bearer("x" * 5000), {"Authorization": "Basic"}):
            response = keyed.client.request(method, url, headers=headers)
            assert response.status_code == 401, (method, path, headers, response.text)


TRAVERSALS = [
    "/v1/passages/..%2F..%2F..%2Fetc%2Fpasswd",
    "/v1/passages/simplewiki:8368147:..%2F..%2Fkeys.sqlite",
    "/v1/passages/..:1:0",
    "/v1/passages/%2Fetc%2Fpasswd:1:0",
    "/v1/citations/..%2F..%2Fetc%2Fpasswd/revisions/1",
    "/v1/citations/..%2Fkeys/revisions/8368147",
    "/v1/citations?url=file:///etc/passwd",
    "/v1/citations?url=https://simple.wikipedia.org/wiki/..%2F..%2F..%2Fetc%2Fpasswd",
    "/v1/citations?url=https://simple.wikipedia.org/w/index.php?oldid=../../etc/passwd",
    "/v1/admin/jobs/..%2F..%2Fetc%2Fpasswd",
    "/v1/passages/simplewiki:8368147:0%00.npy",
]


PATHS = (str, bytes, os.PathLike)


def test_path_traversal_in_ids_and_urls_never_reaches_the_filesystem(keyed: Keyed) -> None:
    """Ids, wiki names and URLs with ``../`` get a 4xx and the service opens no file for
    them; every file opened while serving (``open`` and ``sqlite3.connect``, watched through
    an audit hook) lies in the index directory, the keys database's, or the code."""
    opened: list[str] = []
    watching = [True]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        path = args[0] if args else None
        if watching[0] and event in ("open", "sqlite3.connect") and isinstance(path, PATHS):
            opened.append(os.fsdecode(path))

    sys.addaudithook(hook)  # cannot be removed: switched off below
    try:
        for url in TRAVERSALS:
            response = keyed.client.get(url, headers=bearer(keyed.admin))
            assert 400 <= response.status_code < 500, (url, response.status_code, response.text)
            assert "root:" not in response.text
        for url in NORMAL:  # what a normal request opens, for the check below
            assert keyed.client.get(url, headers=bearer(keyed.user)).status_code == 200, url
        search = {"query": "Einstein Nobel", "k": 3}
        assert keyed.client.post("/v1/search", json=search, headers=bearer(keyed.user)).is_success
    finally:
        watching[0] = False
    assert any(p.endswith(".sqlite") for p in opened)  # the hook sees the store being read
    suspicious = [p for p in opened if "passwd" in p or ".." in p]
    assert suspicious == []
    # every file opened while serving is in the index directory, the keys database's, or
    # the installed code (lazy imports)
    allowed = [keyed.index_dir.resolve(), keyed.keys.path.parent.resolve(), ROOT.resolve(),
               Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]  # fmt: skip
    outside = [p for p in opened if not any(Path(p).resolve().is_relative_to(a) for a in allowed)]
    assert outside == []


NORMAL = [
    "/v1/passages/simplewiki:8368147:0",
    "/v1/citations/simplewiki/revisions/8368147",
    "/v1/citations?url=https://simple.wikipedia.org/wiki/Albert_Einstein",
    "/v1/index",
]


# -- bodies -------------------------------------------------------------------------------


def test_deeply_nested_json_is_a_client_error_not_a_crash(
    index_dir: Path, embedder: Embedder, tmp_path: Path
) -> None:
    settings = service_settings(index_dir, tmp_path, max_body_bytes=1_000_000)
    with TestClient(create_app(settings, embedder=embedder)) as client:
        headers = {"content-type": "application/json"}
        depth = 100_000
        bodies = {
            "arrays": b"[" * depth + b"]" * depth,
            "objects": b'{"a":' * depth + b"1" + b"}" * depth,
            "query": b'{"query": ' + b"[" * depth + b"]" * depth + b"}",
            "unclosed": b"[" * depth,
        }
        for name, body in bodies.items():
            for path in ("/v1/search", "/v1/attribute", "/v1/admin/rebuild"):
                response = client.post(path, content=body, headers=headers)
                assert 400 <= response.status_code < 500, (name, path, response.text[:200])
                error_of(response, response.status_code)
        # still serving
        assert client.post("/v1/search", json={"query": "Einstein", "k": 1}).status_code == 200


# -- unicode ------------------------------------------------------------------------------

UNICODE_QUERIES = {
    "rtl arabic": "متى حصل أينشتاين على جائزة نوبل؟",
    "rtl hebrew with marks": "\u202eאיינשטיין\u202c פרס נובל",
    "combining marks": "E\u0301i\u0308nstei\u0301n" + "\u0301" * 200,
    "emoji": "🧑‍🔬 Einstein ⚛️ 🏆",
    "zwj sequences": "👨‍👩‍👧‍👦" * 100,
    "nul": "Einstein\x00Nobel",
    "controls": "\x01\x02\x1b[31mEinstein\x7f",
    "bidi overrides": "\u202a\u202b\u202d\u202e\u2066\u2067\u2068\u2069 Nobel",
    "zero width": "Ein\u200bstein\u200c\u200d\ufeff",
    "non-characters": "\ufffe\uffff\U0010ffff Nobel",
    "cjk": "爱因斯坦 诺贝尔奖",
    "lucene syntax": 'Einstein AND (Nobel OR "prize) title:x^99 ~2 * ? \\',
    "one char at the limit": "é" * 1000,
    "astral at the limit": "𝔈" * 1000,
}


@pytest.mark.parametrize("query", UNICODE_QUERIES.values(), ids=list(UNICODE_QUERIES))
@pytest.mark.parametrize("mode", ["hybrid", "lexical", "dense"])
def test_unicode_edge_cases_in_queries_are_answered(keyed: Keyed, query: str, mode: str) -> None:
    response = keyed.client.post(
        "/v1/search", json={"query": query, "k": 3, "mode": mode}, headers=bearer(keyed.user)
    )
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["results"], list)


@pytest.mark.parametrize(
    "query", ["a" * 10_000, "é" * 1001, "🧑‍🔬" * 400, "\u0301" * 10_000], ids=repr
)
def test_queries_over_the_limit_get_422(keyed: Keyed, query: str) -> None:
    response = keyed.client.post("/v1/search", json={"query": query}, headers=bearer(keyed.user))
    error_of(response, 422)


def test_10_kb_of_one_character_is_answered_when_the_limit_allows_it(
    index_dir: Path, embedder: Embedder, tmp_path: Path
) -> None:
    settings = service_settings(index_dir, tmp_path, max_query_chars=10_000)
    with TestClient(create_app(settings, embedder=embedder)) as client:
        for query in [
            "a" * 10_000,
            "é" * 10_000,
            "\u0301" * 10_000,
            "👨‍👩‍👧‍👦" * 1_400,
            "ا" * 10_000,
        ]:
            for mode in ("hybrid", "lexical", "dense"):
                body = {"query": query, "k": 2, "mode": mode}
                response = client.post("/v1/search", json=body)
                assert response.status_code == 200, (query[:3], mode, response.text[:300])
        error_of(client.post("/v1/search", json={"query": "a" * 10_001}), 422)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"query": "\\ud800"}',
        b'{"query": "Einstein \\udfff Nobel"}',
        b'{"query": "\\ud83e"}',
        b'{"query": "ok", "wikis": ["\\ud800"]}',
        b'{"query": "\\u0000"}',
        b'{"query": "caf\xe9"}',  # Latin-1, not UTF-8
        b'{"query": "\xff\xfe"}',
        b'\xef\xbb\xbf{"query": "bom"}',
    ],
    ids=repr,
)
def test_lone_surrogates_and_invalid_utf8_in_json_are_client_errors(
    keyed: Keyed, raw: bytes
) -> None:
    for path in ("/v1/search", "/v1/attribute"):
        response = keyed.client.post(
            path,
            content=raw,
            headers={**bearer(keyed.user), "content-type": "application/json"},
        )
        assert response.status_code in (200, 400, 422), (raw, path, response.text)
        if b"\\ud8" in raw or b"\\udf" in raw:
            error_of(response, 422)


def test_unicode_in_passage_ids_wikis_and_urls(keyed: Keyed) -> None:
    for url in [
        "/v1/passages/simplewiki:8368147:%F0%9F%A7%91",
        "/v1/passages/%D7%90%D7%99%D7%99%D7%9F:1:0",
        "/v1/passages/simplewiki:%00:0",
        "/v1/passages/" + "x" * 10_000,
        "/v1/citations/%F0%9F%A7%91/revisions/1",
        "/v1/citations?url=https://simple.wikipedia.org/wiki/%F0%9F%A7%91%E2%80%8D",
        "/v1/citations?url=%ED%A0%80",  # an encoded lone surrogate
        "/v1/citations?url=" + "%FF" * 100,
    ]:
        response = keyed.client.get(url, headers=bearer(keyed.user))
        assert 400 <= response.status_code < 500, (url, response.text)
        error_of(response, response.status_code)


# -- CORS ---------------------------------------------------------------------------------


def preflight(client: TestClient, origin: str) -> httpx.Response:
    return client.options(
        "/v1/search",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_cors_is_closed_by_default(keyed: Keyed) -> None:
    origin = "https://evil.example"
    assert "access-control-allow-origin" not in preflight(keyed.client, origin).headers
    response = keyed.client.post(
        "/v1/search",
        json={"query": "Einstein", "k": 1},
        headers={**bearer(keyed.user), "Origin": origin},
    )
    assert response.status_code == 200
    assert not any(name.startswith("access-control-") for name in response.headers)


def test_cors_opens_only_to_the_configured_origins(
    index_dir: Path, embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.settings import Settings

    monkeypatch.setenv("WIKIRAG_CORS_ORIGINS", "https://app.example.org, http://localhost:3000")
    assert Settings().cors_origins == ["https://app.example.org", "http://localhost:3000"]
    monkeypatch.setenv("WIKIRAG_CORS_ORIGINS", "https://app.example.org/path")
    with pytest.raises(ValueError, match="not an origin"):
        Settings()
    monkeypatch.delenv("WIKIRAG_CORS_ORIGINS")
    assert Settings().cors_origins == []

    allowed = "https://app.example.org"
    settings = service_settings(index_dir, tmp_path, cors_origins=[allowed])
    with TestClient(create_app(settings, embedder=embedder)) as client:
        ok = preflight(client, allowed)
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == allowed
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        refused = preflight(client, "https://evil.example")
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        search = client.post("/v1/search", json={"query": "x"}, headers={"Origin": allowed})
        assert search.headers["access-control-allow-origin"] == allowed
        other = client.post(
            "/v1/search", json={"query": "x"}, headers={"Origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers


# -- keys are never logged ----------------------------------------------------------------


def test_raw_keys_never_appear_in_logs(
    index_dir: Path, embedder: Embedder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = service_settings(
        index_dir, tmp_path, open_access=False, admin_key="bootstrap-admin-key-secret-0123"
    )
    keys = KeyStore(settings.keys_db_path())
    record, raw = keys.create("logged")
    secret = key_secret(raw)  # the whole secret, not the fragment after its last "_"
    wrong = raw[:-4] + "ABCD"
    with TestClient(create_app(settings, embedder=embedder)) as client:
        assert client.post("/v1/search", json={"query": "x"}, headers=bearer(raw)).is_success
        client.get("/v1/index", headers=bearer(wrong))
        client.get("/v1/admin/jobs", headers=bearer(raw))
        client.get("/v1/admin/jobs", headers=bearer("bootstrap-admin-key-secret-0123"))
        keys.revoke(record.key_id)
        client.get("/v1/index", headers=bearer(raw))
    text = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert record.key_id in text  # the key id names the key in the access log
    # whole secrets, and no 12-character piece of them (the text after a secret's last "_"
    # can be one character long, found anywhere by chance)
    for leaked in (raw, secret, key_secret(wrong), "bootstrap-admin-key-secret-0123"):
        assert leaked not in text
    assert leaked_pieces(secret, text) == [] and leaked_pieces(key_secret(wrong), text) == []
    assert leaked_pieces("bootstrap-admin-key-secret-0123", text) == []


# -- a real server with keys required -----------------------------------------------------


@dataclass(frozen=True)
class KeyedServer:
    url: str
    port: int
    log: Path
    keys_db: Path
    keys: KeyStore


@pytest.fixture(scope="module")
def keyed_server(
    index_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KeyedServer]:
    root = tmp_path_factory.mktemp("keyed-live")
    own = copy_index(index_dir, root / "index")
    keys_db = root / "keys.sqlite"
    keys = KeyStore(keys_db)
    port = free_port()
    log = root / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("WIKIRAG_CORS_ORIGINS", None)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--index", str(own), "--host",
             "127.0.0.1", "--port", str(port), "--reload-poll-seconds", "0",
             "--keys-db", str(keys_db)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log, 180)
        yield KeyedServer(url, port, log, keys_db, keys)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def raw_http(port: int, request: bytes) -> bytes:
    """Send ``request`` on a fresh connection; the answer, up to the server closing (or 5 s
    of silence)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def test_live_server_refuses_oversized_bodies_before_reading_them(
    keyed_server: KeyedServer,
) -> None:
    _, key = keyed_server.keys.create("bodies")
    # announces 100 MB, sends 10 bytes: refused on the header alone, without waiting
    head = (
        b"POST /v1/search HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\nContent-Length: 100000000\r\n\r\n"
    )
    started = time.monotonic()
    answer = raw_http(keyed_server.port, head + b'{"query":')
    assert time.monotonic() - started < 4  # answered and closed, not waiting for the body
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"body-too-large" in answer
    # no key at all: the size is still checked first (nothing is parsed)
    answer = raw_http(keyed_server.port, head.replace(b"Authorization", b"X-Nothing"))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]

    def chunks() -> Iterator[bytes]:  # chunked, no Content-Length: counted while reading
        yield b'{"query": "'
        for _ in range(1024):
            yield b"a" * 1024

    with httpx.Client(base_url=keyed_server.url, timeout=30) as client:
        response = client.post(
            "/v1/search",
            content=chunks(),
            headers={**bearer(key), "content-type": "application/json"},
        )
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "body-too-large"
        big = client.post("/v1/search", content=b"x" * 70_000, headers=bearer(key))
        assert big.status_code == 413
        assert client.post("/v1/search", json={"query": "x"}, headers=bearer(key)).is_success


def test_live_server_revoked_key_stops_working_at_once_and_is_never_logged(
    keyed_server: KeyedServer,
) -> None:
    record, key = keyed_server.keys.create("soon-revoked")
    with httpx.Client(base_url=keyed_server.url, timeout=30) as client:
        for _ in range(3):
            assert client.get("/v1/index", headers=bearer(key)).status_code == 200
        # revoked through the real CLI, on the database the running server uses
        assert cli_main(["keys", "--keys-db", str(keyed_server.keys_db), "revoke",
                         record.key_id]) == 0  # fmt: skip
        gone = client.get("/v1/index", headers=bearer(key))
        assert gone.status_code == 401, gone.text
        assert gone.json()["error"]["code"] == "revoked-api-key"
        error = client.post("/v1/search", json={"query": "x"}, headers=bearer(key))
        assert error.status_code == 401
        client.get("/healthz")
    log = keyed_server.log.read_text(encoding="utf-8", errors="replace")
    assert record.key_id in log  # requests are logged by key id
    assert (
        key not in log and key_secret(key) not in log and leaked_pieces(key_secret(key), log) == []
    )


def test_live_server_sends_no_cors_headers_by_default(keyed_server: KeyedServer) -> None:
    with httpx.Client(base_url=keyed_server.url, timeout=30) as client:
        response = client.options(
            "/v1/search",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in response.headers
        assert response.status_code < 500
