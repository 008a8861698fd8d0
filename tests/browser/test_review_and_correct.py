"""Review and correct (issue 21) in a real browser against the real stack: the Review screen's
groups and counts and a fix made from it, the actions on the Transactions screen (add by hand,
edit, ignore, mark as transfer, unmark a matched one, delete one added by hand), a wallet
renamed from the Balances screen, the Files screen's delete and undo, the audit list, a gain
explained down to its lots, negative balances marked; every screen looked
at on a laptop and a phone (fits the width, axe-core finds nothing serious) and reachable by
keyboard. Screenshots: tests/output/screenshots/review-*.png.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from ingest.load.users import create_token
from tests.browser.looks import DESKTOP, PHONE
from tests.browser.test_web_page import (  # noqa: F401 (pytestmark: the same marks)
    JOB_TIMEOUT_MS,
    go,
    look_at,
    pytestmark,
    sign_in,
)

JOB_TIMEOUT_S = JOB_TIMEOUT_MS / 1000
HEADER = (
    "Date,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,Fee Currency,"
    "Net Worth Amount,Net Worth Currency,Label,Description,TxHash\n"
)
# Every row has its fiat value, so nothing waits for a price. Coinbase: a buy, a sell (the gain
# to explain: FIFO takes 0.25 of the 0.5 BTC bought for 10,000 USD) and a withdrawal to kraken.
# Kraken: that BTC arriving two days later (beyond the 24 h transfer window: both sides stay
# unmatched until marked as one transfer), an ETH gift from outside (zero cost basis) and a sale
# of more ETH than it holds (a balance below zero).
COINBASE = HEADER + (
    "2024-01-05 10:00:00 UTC,10000,USD,0.5,BTC,,,10000,USD,,buy,\n"
    "2024-02-01 09:00:00 UTC,0.25,BTC,10000,USD,,,10000,USD,,sell,\n"
    "2024-03-01 09:00:00 UTC,0.2,BTC,,,,,9000,USD,,to kraken,\n"
)
KRAKEN = HEADER + (
    "2024-03-03 10:00:00 UTC,,,0.2,BTC,,,9200,USD,,from coinbase,\n"
    "2024-05-01 10:00:00 UTC,,,1,ETH,,,3000,USD,,gift,\n"
    "2024-06-01 10:00:00 UTC,1.5,ETH,4500,USD,,,4500,USD,,sell eth,\n"
)
# The same, but the BTC arrives six hours after it left coinbase: the engine matches the two as
# one transfer between the user's own wallets.
KRAKEN_SAME_DAY = KRAKEN.replace("2024-03-03 10:00:00 UTC", "2024-03-01 15:00:00 UTC")


class Api:
    """The user's own API calls (what the page shows is checked against them)."""

    def __init__(self, base_url: str, token: str):
        self.client = httpx.Client(
            base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        )

    def get(self, path: str, **params) -> dict:
        resp = self.client.get(path, params=params)
        assert resp.status_code == 200, (path, resp.status_code, resp.text)
        return resp.json()

    def upload(self, text: str, name: str, wallet: str) -> str:
        resp = self.client.post(
            "/v1/uploads",
            params={"format": "koinly", "wallet": wallet, "name": name},
            content=text.encode(),
            headers={"Content-Type": "text/csv"},
        )
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]
        self.wait(job_id)
        return job_id

    def wait(self, job_id: str) -> dict:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while time.monotonic() < deadline:
            job = self.get(f"/v1/jobs/{job_id}")
            if job["status"] in ("succeeded", "failed"):
                assert job["status"] == "succeeded", job
                return job
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} not finished after {JOB_TIMEOUT_S}s")

    def transactions(self, **params) -> list[dict]:
        return self.get("/v1/transactions", limit=200, **params)["items"]

    def tx(self, match: Callable[[dict], bool]) -> dict:
        found = [t for t in self.transactions() if match(t)]
        assert len(found) == 1, found
        return found[0]


@contextmanager
def signed_in_over(
    serve_app, session, fresh_user, page: Page, kraken: str
) -> Iterator[tuple[Page, Api, dict[str, str]]]:
    """A signed-in page over a new user with COINBASE and `kraken` uploaded and processed."""
    token = create_token(session, fresh_user("web-review"))
    api = Api(serve_app.base_url, token)
    uploads = {
        "coinbase": api.upload(COINBASE, "coinbase.csv", "coinbase"),
        "kraken": api.upload(kraken, "kraken.csv", "kraken"),
    }
    page.set_viewport_size(DESKTOP)
    sign_in(page, serve_app.base_url, token)
    yield page, api, uploads
    api.client.close()


@pytest.fixture()
def two_wallets(serve_app, session, fresh_user, browser_page):
    """The COINBASE and KRAKEN uploads: the BTC transfer between them unmatched."""
    with signed_in_over(serve_app, session, fresh_user, browser_page, KRAKEN) as found:
        yield found


@pytest.fixture()
def matched_transfer(serve_app, session, fresh_user, browser_page):
    """The COINBASE and KRAKEN_SAME_DAY uploads: the engine matched the BTC transfer."""
    with signed_in_over(serve_app, session, fresh_user, browser_page, KRAKEN_SAME_DAY) as found:
        yield found


def finished_job(where: Locator) -> None:
    """The correction's recompute job shown in `where` ran to its end."""
    expect(where.locator(".job")).to_have_attribute(
        "data-status", "succeeded", timeout=JOB_TIMEOUT_MS
    )


def tx_row(page: Page, tx_id: str) -> Locator:
    return page.locator(f'.tx-table tbody tr[data-tx="{tx_id}"]')


def open_actions(page: Page, tx_id: str) -> Locator:
    """Open a transactions row's actions with the keyboard; the panel under it."""
    button = tx_row(page, tx_id).locator(".fix-button")
    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    return page.locator(f'[id="fix-row-{tx_id}"]')


def show_recomputed(page: Page) -> None:
    page.get_by_role("button", name="Show the recomputed transactions").click()
    expect(page.locator('section[aria-labelledby="tx-title"]')).to_have_attribute(
        "aria-busy", "false"
    )


def correct(
    page: Page, tx_id: str, action: str, fill: Callable[[Locator], None] | None = None
) -> None:
    """On a transactions row: open `action`, fill its form, submit it; its recompute job ends
    and the table shows the recomputed rows."""
    panel = open_actions(page, tx_id)
    panel.get_by_role("button", name=re.compile(f"^{re.escape(action)}")).click()
    if fill:
        fill(panel)
    panel.locator("form").get_by_role("button", name=action).click()
    finished_job(panel)
    show_recomputed(page)


def test_transactions_gains_and_balances_show_the_problems_and_are_keyboard_reachable(
    two_wallets, shot, off_loopback
):
    """Runs on what main already serves: the transactions table (with its actions) passes axe
    on both sizes (scrollable-region-focusable included), a row's actions open and are reached
    by keyboard, the nav wraps on a phone, a gain leads to its disposal's Explain link, and the
    balance below zero is marked."""
    page, api, _ = two_wallets
    go(page, "Transactions")
    rows = page.locator(".tx-table tbody tr")
    expect(rows).to_have_count(6)
    look_at(page, shot, "review-1-transactions", rows.first)

    # Keyboard: the table's scroll region takes focus; a row's actions open with Enter and the
    # first of them is the next stop after the row's own controls.
    region = page.get_by_role("region", name="Transactions table")
    region.focus()
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == (
        "Transactions table"
    )
    deposit = api.tx(lambda t: t["wallet"] == "kraken" and t["received_asset"] == "BTC")
    panel = open_actions(page, deposit["tx_id"])
    expect(panel.get_by_role("button")).to_have_text(
        ["Edit", "Ignore", "Enter cost basis", "Mark as transfer"]
    )
    for _ in range(8):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.action") == "edit":
            break
    assert page.evaluate("document.activeElement.dataset.action") == "edit"
    expect(
        tx_row(page, deposit["tx_id"]).locator('[data-flag="unmatched_deposit"]')
    ).to_be_visible()
    look_at(page, shot, "review-2-transaction-actions", panel)

    # The nav wraps onto lines of its own on a phone: every screen's link is in view.
    page.set_viewport_size(PHONE)
    nav = page.get_by_role("navigation", name="Screens")
    links = nav.get_by_role("link").all()
    assert len(links) == 9
    for link in links:
        box = link.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert len({round(link.bounding_box()["y"]) for link in links}) > 1
    page.set_viewport_size(DESKTOP)

    # Gains: the BTC disposals of 2024, each leading to its lots.
    go(page, "Gains")
    page.get_by_label("Tax year", exact=True).select_option("2024")
    page.get_by_role("button", name="Show BTC disposals").click()
    sell = api.tx(lambda t: t["sent_asset"] == "BTC" and t["type"] in ("sell", "trade"))
    disposal = page.locator(f'.disposals-table tr[data-tx="{sell["tx_id"]}"]')
    expect(disposal).to_contain_text("0.25")
    expect(disposal.get_by_role("link", name=re.compile("^Explain"))).to_have_attribute(
        "href", f"#/gains/{sell['tx_id']}"
    )
    look_at(page, shot, "review-3-gains-disposals", disposal)

    # Balances: kraken's ETH is below zero, marked on its row and counted above the table.
    go(page, "Balances")
    eth = page.locator('.balances-table tr[data-asset="ETH"][data-wallet="kraken"]')
    expect(eth).to_have_attribute("data-negative", "true")
    expect(eth.locator(".tag")).to_have_text("below zero")
    expect(page.locator(".negative-note")).to_contain_text("1 balance is below zero")
    look_at(page, shot, "review-4-balances-negative", eth)
    assert off_loopback == []


# --- the rest needs the #21 APIs (corrections, uploads list, review, lots) ----------------------


def test_review_lists_findings_with_counts_and_a_fix_recomputes_and_undoes(
    two_wallets, shot, off_loopback
):
    page, api, _ = two_wallets
    review = api.get("/v1/review")
    assert review["total"] > 0, review
    go(page, "Review")
    expect(page.locator(".review-total")).to_contain_text(f"{review['total']:,} finding")
    for group in review["groups"]:
        expect(page.locator(f'.review-groups a[data-kind="{group["kind"]}"] .count')).to_have_text(
            f"{group['count']:,}"
        )
    look_at(page, shot, "review-5-review", page.locator(".review-groups"))

    # The kraken BTC deposit is a finding offering a cost basis (and, perhaps, its suggested
    # counterpart: the coinbase withdrawal two days earlier).
    deposit = api.tx(lambda t: t["wallet"] == "kraken" and t["received_asset"] == "BTC")
    kind = next(
        g["kind"]
        for g in review["groups"]
        if any(
            i["tx_id"] == deposit["tx_id"]
            and any(
                (a if isinstance(a, str) else a.get("kind")) == "cost_basis" for a in i["actions"]
            )
            for i in api.get(f"/v1/review/{g['kind']}", limit=200)["items"]
        )
    )
    page.locator(f'.review-groups a[data-kind="{kind}"]').click()
    finding = page.locator(f'.finding[data-tx="{deposit["tx_id"]}"]')
    expect(finding).to_contain_text("0.2 BTC")
    finding.get_by_role("button", name="Enter cost basis").click()
    form = finding.locator("form.correction-form")

    # Refused: the field the API names shows its message under it.
    form.get_by_role("button", name="Enter cost basis").click()
    expect(form.locator(".field-error")).to_be_visible()
    expect(form.get_by_label(re.compile("cost you"))).to_have_attribute("aria-invalid", "true")
    look_at(page, shot, "review-6-refused", form)

    form.get_by_label(re.compile("cost you")).fill("9,100.50")
    form.get_by_role("button", name="Enter cost basis").click()
    done = finding.locator(".correction-done")
    finished_job(done)
    newest = api.get("/v1/corrections")["items"][0]
    assert (newest["kind"], newest["change"]["tx_id"], newest["undone"]) == (
        "cost_basis",
        deposit["tx_id"],
        False,
    )
    assert newest["change"]["cost_basis"] in ("9100.50", "9100.5")
    after = api.get("/v1/review")
    expect(page.locator(".review-total")).to_contain_text(f"{after['total']:,} finding")
    look_at(page, shot, "review-7-fixed", done)

    # Undo from where the fix was made: its job runs, and the audit list says undone.
    done.get_by_role("button", name="Undo").click()
    expect(done).to_contain_text("Undone")
    finished_job(done)
    assert api.get("/v1/corrections")["items"][1]["undone"] is True
    assert off_loopback == []


def test_transaction_actions_add_edit_ignore_transfer_and_delete_change_the_figures(
    two_wallets, shot, off_loopback
):
    page, api, _ = two_wallets
    go(page, "Transactions")
    expect(page.locator(".tx-table tbody tr")).to_have_count(6)

    # Add by hand: a buy of 1 ETH for 2,500 USD in a wallet "cold".
    page.get_by_role("button", name="Add a transaction by hand").click()
    form = page.locator("form.add-form")
    form.get_by_label("Wallet").fill("cold")
    form.get_by_label("Date").fill("2024-04-10")
    form.get_by_label("Time (UTC)").fill("12:00")
    form.get_by_label("Type").select_option("buy")
    form.get_by_label("Sent amount").fill("2500")
    form.get_by_label("Sent asset").fill("usd")
    form.get_by_label("Received amount").fill("1")
    form.get_by_label("Received asset").fill("eth")
    look_at(page, shot, "review-8-add", form)
    form.get_by_role("button", name="Add transaction").click()
    finished_job(page.locator('.correction-done[data-kind="add"]'))
    show_recomputed(page)
    added = api.tx(lambda t: t["wallet"] == "cold")
    assert (added["type"], added["received_asset"], added["received_amount"]) == (
        "buy",
        "ETH",
        "1",
    )
    expect(page.locator(".tx-table tbody tr")).to_have_count(7)

    # Edit the BTC sell's label.
    sell = api.tx(lambda t: t["sent_asset"] == "BTC" and t["type"] in ("sell", "trade"))
    correct(page, sell["tx_id"], "Edit", lambda form: form.get_by_label("Label").fill("rebalance"))
    expect(tx_row(page, sell["tx_id"])).to_contain_text("(rebalance)")

    # Mark the coinbase withdrawal and the kraken deposit as one transfer, picking the
    # withdrawal from the candidates the form lists.
    deposit = api.tx(lambda t: t["wallet"] == "kraken" and t["received_asset"] == "BTC")
    withdrawal = api.tx(lambda t: t["wallet"] == "coinbase" and t["type"] == "withdrawal")

    def pick_the_withdrawal(form: Locator) -> None:
        form.locator(".candidates").get_by_role("button", name=re.compile("coinbase")).click()
        expect(form.get_by_label(re.compile("one transfer with"))).to_have_value(
            withdrawal["tx_id"]
        )
        look_at(page, shot, "review-9-mark-transfer", form)

    correct(page, deposit["tx_id"], "Mark as transfer", pick_the_withdrawal)
    assert "transfer" in api.tx(lambda t: t["tx_id"] == deposit["tx_id"])["flags"]

    # Ignore the ETH sale: the kraken ETH balance is no longer below zero.
    eth_sale = api.tx(lambda t: t["sent_asset"] == "ETH")
    correct(page, eth_sale["tx_id"], "Ignore")
    expect(tx_row(page, eth_sale["tx_id"])).to_have_count(0)
    assert all(
        not b.get("negative") for b in api.get("/v1/balances")["items"] if b["asset"] == "ETH"
    )

    # Delete the one added by hand: offered on its row only.
    expect(
        open_actions(page, sell["tx_id"]).get_by_role("button", name=re.compile("^Delete"))
    ).to_have_count(0)
    correct(page, added["tx_id"], "Delete (added by hand)")
    expect(tx_row(page, added["tx_id"])).to_have_count(0)
    assert [c["kind"] for c in api.get("/v1/corrections")["items"]] == [
        "delete_added",
        "ignore",
        "mark_transfer",
        "edit",
        "add",
    ]
    assert off_loopback == []


def test_an_upload_deleted_and_restored_from_the_files_screen_and_the_audit_list(
    two_wallets, shot, off_loopback
):
    page, api, uploads = two_wallets
    before = sorted(t["tx_id"] for t in api.transactions())
    go(page, "Files")
    kraken = page.locator(f'.uploads-table tr[data-job-id="{uploads["kraken"]}"]')
    expect(kraken).to_contain_text("kraken.csv")
    expect(page.locator(".uploads-table tbody tr")).to_have_count(2)
    look_at(page, shot, "review-10-files", kraken)

    kraken.get_by_role("button", name=re.compile("^Delete")).click()
    expect(kraken.get_by_role("group", name="Confirm deleting kraken.csv")).to_be_visible()
    look_at(page, shot, "review-11-files-confirm", kraken)
    kraken.get_by_role("button", name="Delete upload").click()
    finished_job(page.locator(".changes-card"))
    expect(kraken).to_have_attribute("data-deleted", "true")
    assert {t["wallet"] for t in api.transactions()} == {"coinbase"}
    look_at(page, shot, "review-12-files-deleted", kraken)

    # Undo on the same row brings the same transactions back.
    kraken.get_by_role("button", name=re.compile("^Undo delete")).click()
    finished_job(page.locator(".changes-card .change").first)
    expect(kraken).to_have_attribute("data-deleted", "false")
    assert sorted(t["tx_id"] for t in api.transactions()) == before

    # The audit list: newest first, the delete undone; undoing the undo deletes it again.
    go(page, "Corrections")
    rows = page.locator(".corrections-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_have_attribute("data-kind", "delete_upload")
    expect(rows.nth(1)).to_have_attribute("data-state", "undone")
    look_at(page, shot, "review-13-corrections", rows.first)
    rows.first.get_by_role("button", name=re.compile("^Undo")).click()
    finished_job(page.locator(".changes-card"))
    assert {t["wallet"] for t in api.transactions()} == {"coinbase"}
    assert off_loopback == []


def test_a_gain_is_explained_down_to_the_lots_it_consumed(two_wallets, shot, off_loopback):
    page, api, _ = two_wallets
    buy = api.tx(lambda t: t["received_asset"] == "BTC" and t["wallet"] == "coinbase")
    sell = api.tx(lambda t: t["sent_asset"] == "BTC" and t["type"] in ("sell", "trade"))
    go(page, "Gains")
    page.get_by_label("Tax year", exact=True).select_option("2024")
    page.get_by_role("button", name="Show BTC disposals").click()
    page.locator(f'.disposals-table tr[data-tx="{sell["tx_id"]}"]').get_by_role(
        "link", name=re.compile("^Explain")
    ).click()
    explain = page.locator(f'.explain[data-tx="{sell["tx_id"]}"]')
    expect(explain.get_by_role("heading", level=1)).to_have_text("Gain on 0.25 BTC")
    lot = explain.locator(".lots-table tbody tr")
    expect(lot).to_have_count(1)
    expect(lot).to_have_attribute("data-rule", "fifo")
    expect(lot).to_contain_text(buy["tx_id"])
    expect(lot).to_contain_text("2024-01-05 10:00")
    expect(explain.locator(".lots-cost")).to_have_text("$5,000.00")
    expect(explain.locator(".facts .gain")).to_have_text("$5,000.00")
    expect(explain.locator(".adds-up")).to_contain_text("The lots add up to the disposal")
    look_at(page, shot, "review-14-explain", explain.locator(".lots-table"))
    assert off_loopback == []


def review_counts(api: Api) -> dict[str, int]:
    return {g["kind"]: g["count"] for g in api.get("/v1/review")["groups"]}


def tab_to(page: Page, element_id: str, presses: int = 6) -> None:
    """Tab from the focused element until `element_id` has the focus."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} not reached in {presses} tabs")


def test_a_wallet_renamed_from_the_balances_screen_shows_everywhere_and_undo_restores_it(
    two_wallets, shot, off_loopback
):
    page, api, _ = two_wallets
    before = sorted(
        (b["wallet"], b["asset"], b["quantity"]) for b in api.get("/v1/balances")["items"]
    )
    go(page, "Balances")
    wallets = page.locator(".wallet-list li")
    expect(wallets).to_have_count(2)
    expect(wallets).to_have_text([re.compile("^coinbase"), re.compile("^kraken")])
    look_at(page, shot, "review-15-wallets", page.locator(".wallets-card"))

    # By keyboard: Rename kraken opens its form, the new name is the next stop.
    rename = page.get_by_role("button", name="Rename kraken")
    rename.focus()
    page.keyboard.press("Enter")
    expect(rename).to_have_attribute("aria-expanded", "true")
    tab_to(page, "rename-wallet-new")
    form = page.get_by_role("form", name="Rename wallet kraken")

    # A name in use says it merges before anything is sent.
    page.keyboard.type("coinbase")
    expect(form.get_by_role("button", name="Merge wallets")).to_be_visible()
    expect(form.locator(".hint")).to_contain_text("coinbase already exists")

    # Refused (the same name): the API's message for `new` shows under the input.
    form.get_by_label("New name for kraken").fill("kraken")
    form.get_by_role("button", name="Rename wallet").click()
    expect(form.locator(".field-error")).to_contain_text("must differ")
    expect(form.get_by_label("New name for kraken")).to_have_attribute("aria-invalid", "true")
    look_at(page, shot, "review-16-rename-refused", form)

    form.get_by_label("New name for kraken").fill("Kraken Pro")
    form.get_by_role("button", name="Rename wallet").click()
    done = page.locator('.correction-done[data-kind="rename_wallet"]')
    finished_job(done)
    # The figures carry the new name: the balances table (read again), the wallets, the API.
    expect(page.locator('.balances-table tr[data-wallet="kraken"]')).to_have_count(0)
    renamed = page.locator('.balances-table tr[data-wallet="Kraken Pro"]')
    expect(renamed).to_have_count(
        len([b for b in before if b[0] == "kraken" and Decimal(b[2] or 0) != 0])
    )
    # (listed as a person sorts them: case aside)
    expect(wallets).to_have_text([re.compile("^coinbase"), re.compile("^Kraken Pro")])
    assert {t["wallet"] for t in api.transactions()} == {"coinbase", "Kraken Pro"}
    assert sorted(
        (b["wallet"], b["asset"], b["quantity"]) for b in api.get("/v1/balances")["items"]
    ) == sorted((("Kraken Pro" if w == "kraken" else w), a, q) for w, a, q in before)
    look_at(page, shot, "review-17-renamed", done)

    # Undo where it was made: kraken is back, with the same balances.
    done.get_by_role("button", name="Undo").click()
    expect(done).to_contain_text("Undone")
    finished_job(done)
    expect(page.locator('.balances-table tr[data-wallet="Kraken Pro"]')).to_have_count(0)
    expect(wallets).to_have_text([re.compile("^coinbase"), re.compile("^kraken")])
    assert (
        sorted((b["wallet"], b["asset"], b["quantity"]) for b in api.get("/v1/balances")["items"])
        == before
    )

    # The audit list names the rename, undone, under the undo.
    go(page, "Corrections")
    rows = page.locator(".corrections-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_have_attribute("data-kind", "rename_wallet")
    expect(rows.nth(1)).to_have_attribute("data-state", "undone")
    expect(rows.nth(1)).to_contain_text("Kraken Pro")
    expect(rows.first).to_contain_text("Kraken Pro")
    look_at(page, shot, "review-18-rename-audit", rows.nth(1))
    assert off_loopback == []


def test_a_transfer_the_engine_matched_is_unmarked_from_its_row_and_undo_matches_it_again(
    matched_transfer, shot, off_loopback
):
    page, api, _ = matched_transfer
    deposit = api.tx(lambda t: t["wallet"] == "kraken" and t["received_asset"] == "BTC")
    withdrawal = api.tx(lambda t: t["wallet"] == "coinbase" and t["type"] == "withdrawal")
    assert "transfer" in deposit["flags"] and "transfer" in withdrawal["flags"]
    counts = review_counts(api)
    go(page, "Transactions")
    panel = open_actions(page, deposit["tx_id"])
    expect(panel.get_by_role("button")).to_have_text(
        ["Edit", "Ignore", "Enter cost basis", "Unmark transfer"]
    )

    # The form finds the matched withdrawal (the only matched one in reach) and names it.
    panel.get_by_role("button", name="Unmark transfer").click()
    form = panel.locator("form.correction-form")
    counterpart = form.get_by_label(re.compile("not one transfer with"))
    expect(counterpart).to_have_value(withdrawal["tx_id"])
    expect(form.locator(".candidates").get_by_role("button")).to_have_count(1)
    look_at(page, shot, "review-19-unmark-transfer", form)
    form.get_by_role("button", name="Unmark transfer").click()
    finished_job(panel)
    show_recomputed(page)

    # Both legs are now findings of their own: on the rows, in the API, on the Review screen.
    expect(
        tx_row(page, deposit["tx_id"]).locator('[data-flag="unmatched_deposit"]')
    ).to_be_visible()
    expect(
        tx_row(page, withdrawal["tx_id"]).locator('[data-flag="unmatched_withdrawal"]')
    ).to_be_visible()
    after = review_counts(api)
    assert after.get("unmatched_deposit", 0) == counts.get("unmatched_deposit", 0) + 1
    assert after.get("unmatched_withdrawal", 0) == counts.get("unmatched_withdrawal", 0) + 1
    unmatched = api.get("/v1/review/unmatched_deposit", limit=200)["items"]
    assert deposit["tx_id"] in [i["tx_id"] for i in unmatched]
    go(page, "Review")
    for kind in ("unmatched_deposit", "unmatched_withdrawal"):
        expect(page.locator(f'.review-groups a[data-kind="{kind}"] .count')).to_have_text(
            f"{after[kind]:,}"
        )
    look_at(page, shot, "review-20-unmarked-review", page.locator(".review-groups"))

    # Undo from the audit list: the engine matches the pair again, the findings are as before.
    go(page, "Corrections")
    rows = page.locator(".corrections-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-kind", "unmark_transfer")
    rows.first.get_by_role("button", name=re.compile("^Undo")).click()
    finished_job(page.locator(".changes-card"))
    assert "transfer" in api.tx(lambda t: t["tx_id"] == deposit["tx_id"])["flags"]
    assert "transfer" in api.tx(lambda t: t["tx_id"] == withdrawal["tx_id"])["flags"]
    assert review_counts(api) == counts
    assert off_loopback == []
