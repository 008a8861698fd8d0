"""The web page in a real browser (Playwright + Debian's chromium) against the real stack (Serve,
Ray pipeline, Cassandra, price simulator): sign in, upload with live progress, rejected rows,
transactions, gains and Form 8949, balances, settings with the recompute job; the wrong-token
and not-a-CSV messages; the OpenAPI pages with no internet. Screenshots: tests/output/screenshots/.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from devtools.generate import generate
from ingest.load.users import create_token

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.cassandra,
    pytest.mark.ray,
    pytest.mark.pricesim,
]

JOB_TIMEOUT_MS = 240_000
# 1-based file lines of the rows this test breaks (header is line 1).
BROKEN_LINES = (4, 9)


def export_with_broken_rows(path: Path) -> Path:
    """A generated Koinly export with copies of real rows whose date is broken inserted at
    BROKEN_LINES (the valid rows all stay)."""
    generate(400, "koinly", seed=15, out=path, years=2.0)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    for line in BROKEN_LINES:
        broken = list(rows[line - 1])
        broken[0] = "not a date"
        rows.insert(line - 1, broken)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def sign_in(page: Page, base_url: str, token: str) -> None:
    page.goto(base_url + "/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Screens")).to_be_visible()


def test_upload_to_recompute_end_to_end(
    serve_app, session, fresh_user, browser_page, shot, off_loopback, tmp_path
):
    page, base = browser_page, serve_app.base_url
    token = create_token(session, fresh_user("web"))
    export = export_with_broken_rows(tmp_path / "koinly-web.csv")
    sign_in(page, base, token)
    assert page.evaluate("sessionStorage.getItem('ledgerflow.token')") == token

    # Upload: bytes, then each stage to 100% and the counts.
    page.locator("#files").set_input_files(str(export))
    page.get_by_label("Format").select_option("koinly")
    page.get_by_label("Wallet").fill("web-wallet")
    page.get_by_role("button", name="Upload file").click()
    job = page.locator(".upload-item .job")
    expect(job).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    for stage in ("parse", "store", "prices", "tax"):
        expect(job.locator(f'.stage[data-stage="{stage}"] .pct')).to_have_text("100%")
    rejected = int(job.locator(".rejected").inner_text().split()[0].replace(",", ""))
    assert rejected >= len(BROKEN_LINES)
    expect(job.locator(".accepted")).to_contain_text("accepted")
    expect(job.locator(".took")).to_have_text(re.compile(r"\d"))
    shot(page, "1-upload")

    # Rejected rows with their line numbers and reasons.
    job.get_by_role("link", name="see the rejected rows").click()
    for line in BROKEN_LINES:
        row = page.locator(f'.rejected-table tr[data-line="{line}"]')
        expect(row).to_contain_text("not a date")
        assert not row.locator("td").nth(1).inner_text().startswith("skipped")
    shot(page, "2-rejected-rows")

    # Transactions filtered by asset; money rounded to cents, exact value on hover.
    page.get_by_role("link", name="Transactions").click()
    expect(page.locator(".tx-table tbody tr").first).to_be_visible()
    page.get_by_label("Asset").fill("btc")
    page.get_by_role("button", name="Apply").click()
    section = page.locator('section[aria-labelledby="tx-title"]')
    expect(section).to_have_attribute("data-filters", re.compile('"asset":"btc"'))
    expect(section).to_have_attribute("aria-busy", "false")
    rows = page.locator(".tx-table tbody tr")
    expect(rows.first).to_be_visible()
    for text in rows.all_inner_texts():
        assert "BTC" in text, text
    money = page.locator(".tx-table .money").first
    exact = money.get_attribute("title").split()[0]
    shown = money.inner_text()
    assert re.fullmatch(r"-?\$[\d,]+\.\d{2}", shown), shown
    assert abs(float(shown.replace("$", "").replace(",", "")) - float(exact)) <= 0.005
    shot(page, "3-transactions-btc")

    # Gains: the per-year and per-asset charts, then Form 8949 as the API serves it.
    page.get_by_role("link", name="Gains").click()
    expect(page.get_by_role("img", name="Per tax year")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("per asset"))).to_be_visible()
    expect(page.locator(".gains-table").first.locator("tbody tr").first).to_be_visible()
    year = page.get_by_label("Tax year", exact=True).input_value()
    shot(page, "4-gains")
    with page.expect_download() as info:
        page.get_by_role("button", name=re.compile("Download Form 8949")).click()
    download = info.value
    assert download.suggested_filename == f"form8949-{year}.csv"
    api = httpx.get(
        f"{base}/v1/reports/form8949.csv",
        params={"year": year},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert Path(download.path()).read_bytes() == api.content and api.content

    # Balances with the holdings chart.
    page.get_by_role("link", name="Balances").click()
    expect(page.get_by_role("img", name=re.compile("Holdings"))).to_be_visible()
    expect(page.locator(".balances-table tbody tr").first).to_be_visible()
    shot(page, "5-balances")

    # Settings: uk offers only universal pooling; saving runs the recompute to its end.
    page.get_by_role("link", name="Settings").click()
    page.get_by_label(re.compile("^UK")).check()
    expect(page.get_by_label(re.compile("^Per wallet"))).to_have_count(0)
    expect(page.get_by_label(re.compile("^Universal"))).to_be_checked()
    page.get_by_role("button", name="Save and recompute").click()
    recompute = page.locator(".recompute .job")
    expect(recompute).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    expect(page.locator(".top .who")).to_have_text("uk · universal")
    shot(page, "6-settings-recompute")
    settings = httpx.get(f"{base}/v1/settings", headers={"Authorization": f"Bearer {token}"})
    assert settings.json()["method"] == "uk" and settings.json()["pooling"] == "universal"

    page.get_by_role("link", name="Jobs").click()
    expect(page.locator(".jobs-table tbody tr")).to_have_count(2)
    shot(page, "7-jobs")
    assert off_loopback == []


def test_wrong_token_shows_a_clear_screen(serve_app, browser_page, shot):
    page = browser_page
    page.goto(serve_app.base_url + "/")
    page.get_by_label("API token").fill("lf_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Token not accepted")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("invalid token")
    assert page.evaluate("sessionStorage.getItem('ledgerflow.token')") is None
    shot(page, "0-wrong-token")


def test_non_csv_file_shows_why(serve_app, session, fresh_user, browser_page, shot):
    page = browser_page
    sign_in(page, serve_app.base_url, create_token(session, fresh_user("web-png")))
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
    page.locator("#files").set_input_files(
        {"name": "photo.png", "mimeType": "image/png", "buffer": png}
    )
    page.get_by_role("button", name="Upload file").click()
    expect(page.locator(".upload-error")).to_contain_text(
        "photo.png: the file contains binary data (NUL bytes): not a CSV text file"
    )
    shot(page, "8-not-csv")


@pytest.mark.parametrize("path", ["/docs", "/v1/uploads/docs"])
def test_openapi_pages_render_without_internet(serve_app, browser_page, off_loopback, path):
    page = browser_page
    page.goto(serve_app.base_url + path)
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    assert off_loopback == []
