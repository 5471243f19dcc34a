"""The web page in headless Chromium: search, open a hit, ask and follow a citation, against the real server.

Needs Debian's `chromium` and the `playwright` Python package (no browser download: Playwright is pointed at
/usr/bin/chromium). Screenshots land in the test's tmp path.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("SEARCHLM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
CORPUS = {
    "garden/bees.md": "# Honey bees\n\nA colony of honey bees has one queen, thousands of female workers and a few "
    "hundred drones.\n\n## The waggle dance\n\nA forager that found flowers performs the waggle dance on the comb. "
    "The angle of the dance tells the other bees the direction of the flowers relative to the sun, and the length "
    "of the waggle run tells the distance.\n\n## Swarming\n\nIn spring a strong colony raises a new queen and the "
    "old queen leaves with half the workers to found a new nest.\n",
    "sea/tides.txt": "Tides are the rise and fall of sea level caused by the gravitational pull of the Moon and the "
    "Sun.\nSpring tides happen when the Sun, the Moon and the Earth are in line.\n",
    "kitchen/crème-brûlée.md": "# Crème brûlée\n\nBake the custard in a bain-marie at 150 °C until it just sets, "
    "then caramelise a thin layer of sugar on top with a torch.\n",
}


def _skip_reason() -> str | None:
    if not Path(CHROMIUM).is_file():
        return f"{CHROMIUM} is missing (apt-get install -y chromium chromium-driver)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; no `playwright install` needed)"
    return None


@pytest.fixture
def live_server(make_index):
    """The real app under uvicorn on a free loopback port, in a thread; yields its base URL."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    import uvicorn

    from searchlm.server import create_app

    settings, _, _ = make_index(CORPUS, name="garden")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(settings, ask_defaults={"max_tokens": 48})  # a short answer keeps the test quick on CPU
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 300  # start-up loads the encoder and the generator
    while not server.started:
        assert thread.is_alive() and time.time() < deadline, "server did not start"
        time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_search_open_ask_and_follow_a_citation(live_server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
            outside: list[str] = []
            page.on("request", lambda r: r.url.startswith((live_server, "data:")) or outside.append(r.url))
            page.goto(live_server + "/")
            expect(page.locator("#index")).to_have_value("garden")

            # Search: results with highlighted words and path:line.
            page.fill("#q", "how do bees tell the direction of flowers")
            page.keyboard.press("Enter")
            first = page.locator(".hit").first
            expect(first).to_be_visible()
            expect(first.locator(".loc")).to_contain_text("bees.md:")
            assert "waggle" in first.inner_text().lower()
            assert first.locator("mark").count() >= 2

            # Click: the document opens at the hit, that part highlighted and scrolled into view.
            first.click()
            marked = page.locator("#doc-body .part.marked")
            expect(marked).to_have_count(1)
            expect(marked).to_contain_text("waggle dance")
            expect(page.locator("#doc-path")).to_contain_text("bees.md")
            assert marked.is_visible() and "one queen" in page.locator("#doc-body").inner_text()
            page.screenshot(path=str(tmp_path / "search-and-document.png"))

            # Ask: tokens stream in, then the answer carries clickable citations.
            if importlib.util.find_spec("searchlm.search.answer") is None:
                pytest.skip("searchlm.search.answer is not in this checkout yet: the ask half of the page is untested")
            page.click("#viewer-close")
            expect(page.locator("#viewer")).to_be_hidden()
            page.fill("#q", "What does the waggle dance tell other bees?")
            page.click("#ask-button")
            answer = page.locator("#answer")
            expect(answer).to_be_visible()
            expect(page.locator("#answer-text")).not_to_be_empty(timeout=120_000)
            expect(answer).not_to_have_class("answer streaming", timeout=180_000)
            assert "failed" not in (answer.get_attribute("class") or ""), page.locator("#answer-status").inner_text()
            citations = page.locator("#citations .cite-loc")
            expect(citations.first).to_be_visible()
            assert "bees.md" in citations.all_inner_texts()[0] or "bees.md" in " ".join(citations.all_inner_texts())
            citations.first.click()
            expect(page.locator("#doc-body .part.marked")).to_have_count(1)
            page.screenshot(path=str(tmp_path / "answer-with-citation.png"))

            # The OpenAPI docs render from local files too.
            page.goto(live_server + "/docs")
            expect(page.locator(".swagger-ui .opblock-summary-path").first).to_be_visible(timeout=30_000)
            expect(page.locator(".opblock-summary-path", has_text="/api/search").first).to_be_visible()
            page.screenshot(path=str(tmp_path / "docs.png"))
            assert errors == [] and outside == []
        finally:
            browser.close()
