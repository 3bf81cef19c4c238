"""The web page at ``/``: served offline by the app (no external resources), and driven in a
real headless Chromium (Debian's ``/usr/bin/chromium`` through playwright) against a real
``wikirag serve --open-access`` process: search, copy an attribution, look up a citation,
attribute an answer, API-key handling. Saves ``test-artifacts/web-search.png``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import ROOT
from tests.live_server import LiveServer, live_server
from tests.test_api import CURRENT_REVISION, app, embedder, index_dir

__all__ = ["app", "embedder", "index_dir", "live_server"]  # shared fixtures

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.slow
def test_the_page_and_its_assets_are_served_without_external_resources(
    client: TestClient,
) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert 'id="search-form"' in html and 'id="cite-form"' in html and 'id="api-key"' in html
    assets = re.findall(r'(?:src|href)="(/web/[^"]+)"', html)
    assert sorted(assets) == ["/web/app.js", "/web/style.css"]
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200 and response.text
        assert not re.search(r"(?:src|href|url\()\s*=?\s*[\"']?https?://", response.text)
    assert not re.search(r'(?:src|href)="https?://', html)  # nothing from a CDN
    assert "/" not in client.get("/openapi.json").json()["paths"]
    missing = client.get("/web/nothing.js")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not-found"


def _playwright() -> Any:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium chromium-driver)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed")
    return sync_playwright


@pytest.mark.browser
@pytest.mark.slow
def test_search_copy_cite_and_attribute_in_a_real_browser(live_server: LiveServer) -> None:
    sync_playwright = _playwright()
    base = live_server.url
    expected = httpx.post(
        f"{base}/v1/search",
        json={"query": "Einstein Nobel Prize", "k": 5, "mode": "hybrid", "languages": ["simple"]},
        timeout=60,
    ).json()["results"]
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 900})
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("requestfailed", lambda request: errors.append(request.url))
            page.set_default_timeout(60_000)
            page.goto(f"{base}/")
            page.wait_for_function(
                "document.getElementById('index-info').textContent.includes('Generation')"
            )
            languages = page.eval_on_selector_all("#language option", "os => os.map(o => o.value)")
            assert {"", "simple", "ru", "en"} <= set(languages)

            # search
            page.fill("#query", "Einstein Nobel Prize")
            page.select_option("#mode", "hybrid")
            page.select_option("#language", "simple")
            page.click("#search-button")
            page.wait_for_selector("#results .result")
            page.wait_for_function(
                "document.getElementById('search-status').textContent.includes('passages')"
            )
            results = page.locator("#results .result")
            assert results.count() == len(expected) == 5
            first = results.nth(0)
            assert first.get_attribute("data-passage-id") == expected[0]["passage_id"]
            assert first.locator("h3").inner_text() == "Albert Einstein"
            assert first.locator("h3 a").get_attribute("href") == expected[0]["url"]
            meta = first.locator(".meta").inner_text()
            assert f"revision {CURRENT_REVISION}" in meta and "CC BY-SA 3.0" in meta
            assert first.locator(".passage-text").inner_text() == expected[0]["text"].strip()
            attribution = expected[0]["attribution"]
            assert first.locator(".attribution").inner_text() == attribution["text"]

            # copy the attribution (clipboard granted; else the fallback textarea holds it)
            def copied() -> str:
                clip = str(page.evaluate("navigator.clipboard.readText()"))
                return clip or page.input_value("#copy-fallback-text")

            first.locator("button.copy-text").click()
            first_note = "document.querySelector('#results .result .copied').textContent"
            page.wait_for_function(f"{first_note}.includes('Copied')")
            assert copied() == attribution["text"]
            first.locator("button.copy-markdown").click()
            page.wait_for_function(f"{first_note}.includes('Markdown')")
            assert copied() == attribution["markdown"]
            page.screenshot(path=str(ARTIFACTS / "web-search.png"), full_page=True)

            # citation lookup, then one that fails with the service's message
            page.fill("#cite-url", "https://simple.wikipedia.org/wiki/Albert_Einstein")
            page.click("#cite-button")
            card = page.wait_for_selector("#citation-card")
            assert card is not None
            text = card.inner_text()
            assert f"revision {CURRENT_REVISION}" in text and "current revision" in text
            assert "CC BY-SA 3.0" in text and "Albert Einstein" in text
            card_copy = page.locator("#citation-card button.copy-html")
            card_copy.click()
            page.wait_for_function(
                "document.querySelector('#citation-card .copied').textContent.includes('HTML')"
            )
            assert f"oldid={CURRENT_REVISION}" in copied() and "<a " in copied()
            page.fill("#cite-url", "https://de.wikipedia.org/wiki/Nichts")
            page.click("#cite-button")
            page.wait_for_selector("#cite-status.error")
            assert "de.wikipedia.org is not indexed" in page.inner_text("#cite-status")

            # attribute an answer
            sentence = expected[0]["text"].split(". ")[0] + "."
            page.fill("#answer", sentence)
            page.click("#attribute-button")
            page.wait_for_selector("#attribution-result .references li")
            assert page.locator("#attribution-result .sentences .badge.supported").count() == 1
            page.locator("#attribution-result button.copy-markdown").first.click()
            answer_note = "document.querySelector('#attribution-result .copied').textContent"
            page.wait_for_function(f"{answer_note}.includes('Copied')")
            assert "[^1]" in copied() and f"oldid={CURRENT_REVISION}" in copied()
            page.screenshot(path=str(ARTIFACTS / "web-cite-attribute.png"), full_page=True)

            # a stored API key is sent (this open-access server refuses an unknown one)
            page.click("#key-box summary")
            page.fill("#api-key", "wr_not_a_real_key")
            page.click("#key-form button[type=submit]")
            page.wait_for_function(
                "document.getElementById('index-info').textContent.includes('API key')"
            )
            assert page.evaluate("localStorage.getItem('wikirag.apiKey')") == "wr_not_a_real_key"
            page.click("#key-clear")
            page.wait_for_function(
                "document.getElementById('index-info').textContent.includes('Generation')"
            )
            assert page.evaluate("localStorage.getItem('wikirag.apiKey')") is None
            assert not errors, errors
        finally:
            browser.close()
    assert (ARTIFACTS / "web-search.png").stat().st_size > 10_000
