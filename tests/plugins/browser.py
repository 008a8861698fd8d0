"""A real browser for the web page's tests: Playwright driving Debian's chromium
(/usr/bin/chromium, `make browser-deps`); Playwright's own browser download is not used.

`browser_page` is a fresh page (own context: empty sessionStorage) that refuses any request off
loopback, so a page needing the internet fails its test; `shot(page, name)` saves a screenshot
into tests/output/screenshots/.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = os.environ.get("LEDGERFLOW_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "output" / "screenshots"
LOOPBACK = ("127.0.0.1", "localhost")


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make browser-deps` installs Debian's chromium")
    from playwright.sync_api import expect, sync_playwright

    # Deadlines, not timings: a shared machine under load can take long to render or answer.
    expect.set_options(timeout=30_000)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture()
def off_loopback() -> list[str]:
    """URLs the page tried to load from anywhere but loopback (each one was aborted)."""
    return []


@pytest.fixture()
def browser_page(chromium, off_loopback: list[str]) -> Iterator[object]:
    context = chromium.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)

    def guard(route) -> None:
        url = route.request.url
        host = urlparse(url).hostname
        if url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            off_loopback.append(url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture()
def shot() -> Callable[[object, str], Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
