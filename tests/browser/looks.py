"""What a user sees, checked on a Playwright page: the page fits the window's width (no sideways
scrolling of the whole page), and axe-core finds no serious or critical accessibility violation.

axe.min.js is axe-core 4.14.1 (MPL-2.0, npm `axe-core`, pinned in web/package.json as a dev
dependency), copied here so the tests need no Node: update both together.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout

AXE = Path(__file__).with_name("axe.min.js")
SERIOUS = ("serious", "critical")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}


FITS = "document.documentElement.scrollWidth <= window.innerWidth"
# A chart's canvas keeps its old width until its ResizeObserver fires after a window change:
# the page gets this long to settle before its width is judged.
SETTLE_MS = 5_000


def assert_fits_the_width(page) -> None:
    """The page scrolls only up and down: wide tables scroll inside their own region."""
    try:
        page.wait_for_function(FITS, timeout=SETTLE_MS)
    except PlaywrightTimeout:
        pass  # judged (and explained) below
    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, (
        f"{page.url}: the page is {scroll_width} px wide in a {inner_width} px window: "
        + ", ".join(widest(page))
    )


def widest(page) -> list[str]:
    """The elements reaching past the window's right edge (for the failure message)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('body *')]
          .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
          .slice(0, 8)
          .map((e) => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')}`
            + ` (${Math.round(e.getBoundingClientRect().right)} px)`)"""
    )


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical violations of the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    found = page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ['violations'] })).violations
          .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }))"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(v['nodes'])}"
        for v in found
        if v["impact"] in SERIOUS
    ]


def assert_accessible(page) -> None:
    violations = serious_violations(page)
    assert violations == [], f"{page.url}: " + "; ".join(violations)
