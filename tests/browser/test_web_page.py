"""The web page in a real browser (Playwright + Debian's chromium) against the real stack (Serve,
Ray pipeline, Cassandra, price simulator): sign in, upload with live progress, rejected rows,
transactions, gains and Form 8949, balances, settings with the recompute job; the wrong-token
and not-a-CSV messages; the OpenAPI pages with no internet. Screenshots: tests/output/screenshots/.
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from devtools.generate import generate
from ingest.load.users import create_token
from tests.browser.looks import DESKTOP, PHONE, assert_accessible, assert_fits_the_width

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.cassandra,
    pytest.mark.ray,
    pytest.mark.pricesim,
]

JOB_TIMEOUT_MS = 240_000
FORMAT_FIXTURES = Path(__file__).parents[1] / "fixtures" / "formats"
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


def look_at(page: Page, shot, name: str, ready) -> None:
    """The screen as a user sees it on a laptop (1366x768) and a phone (390x844): `ready` shown,
    nothing wider than the window, no serious or critical axe-core violation; a screenshot of
    each (`<name>-desktop`, `<name>-phone`). Ends at the desktop size."""
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        expect(ready).to_be_visible()
        assert_fits_the_width(page)
        assert_accessible(page)
        shot(page, f"{name}-{label}")


def dollars(text: str) -> Decimal:
    """A shown amount ("-$1,234.50", "–" for none) in dollars."""
    text = text.strip()
    return Decimal(0) if text == "–" else Decimal(text.replace("$", "").replace(",", ""))


def balance_rows(page: Page):
    return page.locator(".balances-table tbody tr").all()


def data_rows(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines()) - 1


def go(page: Page, screen: str) -> None:
    """Open a screen from the nav (other links may name a screen too: "Balances below zero")."""
    page.get_by_role("navigation", name="Screens").get_by_role(
        "link", name=screen, exact=True
    ).click()


def upload(page: Page, path: Path, *, fmt: str = "", wallet: str = "") -> None:
    go(page, "Upload")
    page.locator("#files").set_input_files(str(path))
    page.get_by_label("Format").select_option(fmt)
    page.get_by_label("Wallet").fill(wallet)
    page.get_by_role("button", name="Upload file").click()


def test_upload_to_recompute_end_to_end(
    serve_app, session, fresh_user, browser_page, shot, off_loopback, tmp_path
):
    page, base = browser_page, serve_app.base_url
    page.set_viewport_size(DESKTOP)
    token = create_token(session, fresh_user("web"))
    export = export_with_broken_rows(tmp_path / "koinly-web.csv")
    sign_in(page, base, token)
    assert page.evaluate("sessionStorage.getItem('ledgerflow.token')") == token

    # Upload: bytes, then each stage to 100%, then what the file gave: every row read is used,
    # skipped or rejected, and the rows used made the transactions, all new.
    upload(page, export, fmt="koinly", wallet="web-wallet")
    expect(page.locator(".upload-item .job")).to_have_count(1)
    job = page.locator(
        f'.job[data-job-id="{page.locator(".upload-item .job").get_attribute("data-job-id")}"]'
    )
    expect(job).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    for stage in ("parse", "store", "prices", "tax"):
        expect(job.locator(f'.stage[data-stage="{stage}"] .pct')).to_have_text("100%")
    summary = job.locator(".import-summary")
    counts = {
        what: int(summary.locator(f".{what} .n").first.inner_text().replace(",", ""))
        for what in ("rows-read", "rows-used", "skipped", "rejected")
    }
    assert counts["rows-read"] == data_rows(export)
    assert counts["rows-read"] == counts["rows-used"] + counts["skipped"] + counts["rejected"]
    assert counts["rejected"] >= len(BROKEN_LINES)
    expect(summary.locator(".rows-read")).to_contain_text(
        f"{data_rows(export)} rows read as koinly"
    )
    # the wallets the rows carry: Koinly's own Wallet column wins over the upload's wallet
    api_job = httpx.get(
        f"{base}/v1/jobs/{job.get_attribute('data-job-id')}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    wallets = api_job["import_summary"]["wallets"]
    assert wallets, api_job
    expect(summary.locator(".rows-read")).to_contain_text(
        f"{'wallets' if len(wallets) > 1 else 'wallet'} {', '.join(wallets)}"
    )
    made = int(summary.locator(".transactions").inner_text().split()[0].replace(",", ""))
    expect(summary).to_have_attribute("data-new", str(made))
    expect(summary.locator(".headline")).to_have_text(f"{made:,} new transactions")
    expect(summary.locator(".rejected .reasons")).to_contain_text("'…'")
    expect(job.locator(".took")).to_have_text(re.compile(r"\d"))
    look_at(page, shot, "1-upload", summary)

    # The same file again with the same options: accepted, and it says nothing was added.
    upload(page, export, fmt="koinly", wallet="web-wallet")
    expect(page.locator(".upload-item .job")).to_have_count(2)
    again = page.locator(".upload-item .job").first
    expect(again).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    expect(again.locator(".import-summary")).to_have_attribute("data-new", "0")
    expect(again.locator(".import-summary .headline")).to_have_text(
        f"Nothing new: all {made:,} transactions of this file were already stored (uploaded "
        "before); nothing was added."
    )
    look_at(page, shot, "1b-upload-again", again.locator(".import-summary"))

    # Rejected rows with their line numbers and reasons.
    job.get_by_role("link", name="see the rejected and skipped rows").click()
    for line in BROKEN_LINES:
        row = page.locator(f'.rejected-table tr[data-line="{line}"]')
        expect(row).to_contain_text("not a date")
        assert not row.locator("td").nth(1).inner_text().startswith("skipped")
    expect(page.locator(".import-summary .rows-read .n")).to_have_text(f"{data_rows(export)}")
    look_at(page, shot, "2-rejected-rows", page.locator(".rejected-table"))

    # Transactions filtered by asset; money rounded to cents, exact value on hover.
    go(page, "Transactions")
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
    look_at(page, shot, "3-transactions-btc", rows.first)

    # Gains: the per-year and per-asset charts, then Form 8949 as the API serves it.
    go(page, "Gains")
    expect(page.get_by_role("img", name="Per tax year")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("per asset"))).to_be_visible()
    expect(page.locator(".gains-table").first.locator("tbody tr").first).to_be_visible()
    year = page.get_by_label("Tax year", exact=True).input_value()
    reports = page.get_by_role("group", name=f"Reports for {year}")
    for report in ("form8949.csv", "schedule-d.csv", "turbotax.txf", "income.csv"):
        expect(reports.locator(f'[data-report="{report}"]')).to_be_visible()
    expect(reports.locator('[data-report="sa108.csv"]')).to_have_count(0)  # not a UK user
    look_at(page, shot, "4-gains", page.locator(".gains-table").last)
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
    # The lines resting on a zero cost basis are counted beside the downloads, as the API says.
    summary = httpx.get(
        f"{base}/v1/reports/summary",
        params={"year": year},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    note = page.locator(".basis-note")
    if summary["zero_cost_basis_lines"]:
        expect(note).to_contain_text(
            f"{summary['zero_cost_basis_lines']:,} of {summary['disposal_lines']:,} disposal "
            f"lines of {year} use a zero cost basis"
        )
    else:
        expect(note).to_contain_text(f"All {summary['disposal_lines']:,} disposal lines")

    # Balances with the holdings chart.
    go(page, "Balances")
    expect(page.get_by_role("img", name=re.compile("Holdings"))).to_be_visible()
    expect(page.locator(".balances-table tbody tr").first).to_be_visible()
    # Market value at the latest cached price, unrealized gain, and totals that add up as shown.
    table_rows = [r.locator("td").all_inner_texts() for r in balance_rows(page)]
    assert any(cells[5].startswith("$") for cells in table_rows), table_rows
    totals = page.locator(".balances-table tfoot td").all_inner_texts()
    for column, total in ((3, totals[0]), (5, totals[2]), (6, totals[3])):
        assert dollars(total) == sum(dollars(c[column]) for c in table_rows), (column, total)
    look_at(page, shot, "5-balances", page.locator(".balances-table"))

    # Settings: uk offers only universal pooling, and the page says pooling changes; saving
    # runs the recompute to its end and shows the yearly totals before and after.
    go(page, "Settings")
    expect(page.get_by_label(re.compile("^Per wallet"))).to_be_checked()
    page.get_by_label(re.compile("^UK")).check()
    expect(page.get_by_label(re.compile("^Per wallet"))).to_have_count(0)
    expect(page.get_by_label(re.compile("^Universal"))).to_be_checked()
    expect(page.locator(".pooling-note")).to_contain_text(
        "pooling changes from per-wallet to universal"
    )
    expect(page.locator(".changes")).to_have_text(
        "Saving changes method fifo → uk; pooling per-wallet → universal, and recomputes all "
        "your data."
    )
    page.get_by_label("Reporting currency").select_option("USD")
    look_at(page, shot, "6a-settings", page.locator(".pooling-note"))
    page.get_by_role("button", name="Save and recompute").click()
    recompute = page.locator(".recompute .job")
    expect(recompute).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    expect(page.locator(".top .who")).to_have_text("uk · universal")
    expect(recompute.locator(".history")).to_have_text(f"{made:,} transactions")
    before_after = page.locator(".before-after")
    expect(before_after.locator("tbody tr").first).to_be_visible()
    for row in before_after.locator("tbody tr").all():
        assert re.search(r"\$", row.inner_text()), row.inner_text()
    look_at(page, shot, "6-settings-recompute", before_after)
    settings = httpx.get(f"{base}/v1/settings", headers={"Authorization": f"Bearer {token}"})
    assert settings.json() == {"method": "uk", "pooling": "universal", "currency": "USD"}

    # Jobs: both uploads with what they gave, and the recompute.
    go(page, "Jobs")
    table = page.locator(".jobs-table")
    expect(table.locator("tbody tr")).to_have_count(3)
    uploads = table.locator("tbody tr", has_text="koinly-web.csv")
    expect(uploads).to_have_count(2)
    cells = [[c.strip() for c in r.locator("td").all_inner_texts()] for r in uploads.all()]
    assert [c[6] for c in cells] == ["0", f"{made:,}"]  # New: the later upload added nothing
    assert {c[5] for c in cells} == {f"{made:,}"}
    look_at(page, shot, "7-jobs", table)
    assert off_loopback == []


def test_a_file_with_every_row_rejected_shows_nothing_imported(
    serve_app, session, fresh_user, browser_page, shot, tmp_path
):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    sign_in(page, serve_app.base_url, create_token(session, fresh_user("web-none")))
    path = tmp_path / "all-bad.csv"
    generate(30, "koinly", seed=3, out=path, years=1.0)
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    path.write_text(
        "\n".join([header] + ["not a date" + r[r.index(",") :] for r in rows]) + "\n",
        encoding="utf-8",
    )
    upload(page, path, fmt="koinly")
    job = page.locator(".upload-item .job").first
    expect(job).to_have_attribute("data-status", "failed", timeout=JOB_TIMEOUT_MS)
    expect(job.locator(".error")).to_contain_text(
        f"nothing imported: of the file's {len(rows)} rows, {len(rows)} were rejected"
    )
    expect(job.locator(".import-summary .headline")).to_have_text("Nothing imported.")
    expect(job.locator(".import-summary .rejected > .n")).to_have_text(str(len(rows)))
    look_at(page, shot, "9-nothing-imported", job)
    go(page, "Jobs")
    row = page.locator(".jobs-table tbody tr").first
    expect(row).to_have_attribute("data-status", "failed")
    expect(row.locator(".job-error")).to_contain_text("nothing imported")


def test_a_job_says_how_its_slashed_dates_were_read(
    serve_app, session, fresh_user, browser_page, shot
):
    """04/06/2022 reads two ways: the file's 15/06/2022 decides day first, and the job says so."""
    page = browser_page
    page.set_viewport_size(DESKTOP)
    sign_in(page, serve_app.base_url, create_token(session, fresh_user("web-dates")))
    upload(page, FORMAT_FIXTURES / "koinly_day_first.csv", fmt="koinly")
    job = page.locator(".upload-item .job").first
    expect(job).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    notes = job.locator(".job-notes")
    expect(notes).to_contain_text("slashed dates read day first (D/M/Y), as '15/06/2022")
    look_at(page, shot, "11-date-notes", notes)


# A spreadsheet no format knows; every row has a fiat side, so valuing it needs no prices.
SHEET = """\
When;Kind;Out;Out Coin;In;In Coin;Fee;Fee Coin
05/01/2024 14:03;buy;1000;USD;0.025;BTC;2.5;USD
10/02/2024 12:00;sell;0.01;BTC;450;USD;;
30/02/2024 09:00;;0.1;BTC;5;USD;;
"""


def test_a_csv_no_format_knows_is_mapped_on_the_page_and_uploaded(
    serve_app, session, fresh_user, browser_page, shot, tmp_path
):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    sign_in(page, serve_app.base_url, create_token(session, fresh_user("web-map")))
    sheet = tmp_path / "my-sheet.csv"
    sheet.write_text(SHEET, encoding="utf-8")
    page.get_by_label("Format").select_option("mapped")
    page.locator("#files").set_input_files(str(sheet))
    card = page.locator(".mapping")
    expect(card.locator(".preview-table thead th")).to_have_text(
        ["When", "Kind", "Out", "Out Coin", "In", "In Coin", "Fee", "Fee Coin"]
    )
    expect(card.locator(".preview-table tbody tr")).to_have_count(3)
    expect(page.get_by_role("button", name="Upload file")).to_be_disabled()
    for label, column in (
        ("Date and time (required)", "When"),
        ("Type or label", "Kind"),
        ("Sent amount", "Out"),
        ("Sent asset", "Out Coin"),
        ("Received amount", "In"),
        ("Received asset", "In Coin"),
        ("Fee amount", "Fee"),
        ("Fee asset", "Fee Coin"),
    ):
        card.get_by_label(label, exact=False).select_option(column)
    card.get_by_label("Date format").fill("%d/%m/%Y %H:%M")
    card.get_by_role("button", name="Save mapping").click()
    expect(card.locator(".saved")).to_contain_text("Saved")
    look_at(page, shot, "10-mapping", card)
    page.get_by_label("Wallet", exact=True).fill("sheet")
    page.get_by_role("button", name="Upload file").click()

    # The progress is kept while the user looks at another screen.
    go(page, "Jobs")
    expect(page.locator(".jobs-table tbody tr")).to_have_count(1)
    go(page, "Upload")
    job = page.locator(".upload-item .job")
    expect(job).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    summary = job.locator(".import-summary")
    expect(summary.locator(".rows-read")).to_contain_text("3 rows read as mapped, wallet sheet")
    expect(summary.locator(".transactions")).to_have_text("2 transactions")
    expect(summary.locator(".rejected .reasons")).to_contain_text("bad date '…' in column When")


def test_wrong_token_shows_a_clear_screen(serve_app, browser_page, shot):
    page = browser_page
    page.goto(serve_app.base_url + "/")
    page.get_by_label("API token").fill("lf_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Token not accepted")).to_be_visible()
    assert_fits_the_width(page)
    assert_accessible(page)
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
