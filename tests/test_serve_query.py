"""The query application over real HTTP through Serve, on rows written straight into the
precomputed tables for two users: what each sees, filters, pagination, isolation, shapes."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import pytest

from ingest.config import get_settings
from ingest.load import jobs, queries
from ingest.load.cassandra import execute_many, get_session
from ingest.load.views import (
    FINDINGS_PER_CHUNK,
    replace_reconciliation,
    write_disposals,
    write_transactions_view,
    write_view_metrics,
)
from ingest.tax.records import TxMetrics
from ingest.tax.report import (
    FORM_8949_COLUMNS,
    INCOME_REPORT_COLUMNS,
    SA108_COLUMNS,
    SCHEDULE_D_COLUMNS,
)
from ingest.vocabulary import JobStatus
from tests.test_tax_reports import parse_txf

pytestmark = [pytest.mark.cassandra, pytest.mark.ray]
REPORT_PATHS = (
    "/v1/reports/form8949.csv",
    "/v1/reports/schedule-d.csv",
    "/v1/reports/turbotax.txf",
    "/v1/reports/income.csv",
    "/v1/reports/sa108.csv",
    "/v1/reports/summary",
)

D = Decimal
UTC = timezone.utc


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Tx:
    tx_id: str
    at: str
    wallet: str
    type: str
    sent: tuple[str, str] | None = None
    received: tuple[str, str] | None = None
    fee: tuple[str, str] | None = None


# Alice: 3 months, a timestamp tie (a3/a4), a fee-only asset (BNB in a5). Bob: 2 rows.
ALICE_TXS = (
    Tx(
        "a1",
        "2023-12-30T09:00:00",
        "binance",
        "buy",
        ("USD", "1000"),
        ("BTC", "0.025000000000000001"),
        ("USD", "1.5"),
    ),
    Tx("a2", "2023-12-31T10:00:00", "binance", "deposit", received=("ETH", "2")),
    Tx("a3", "2024-01-05T08:00:00", "kraken", "buy", ("USD", "2300.10"), ("ETH", "1")),
    Tx("a4", "2024-01-05T08:00:00", "kraken", "withdrawal", sent=("BTC", "0.01")),
    Tx(
        "a5",
        "2024-01-20T12:30:00",
        "binance",
        "trade",
        ("BTC", "0.005"),
        ("ETH", "0.1"),
        ("BNB", "0.0001"),
    ),
    Tx("a6", "2024-03-01T00:00:00", "kraken", "sell", ("ETH", "0.5"), ("USD", "1700")),
    Tx("a7", "2024-03-15T18:45:00", "binance", "income", received=("ETH", "0.001")),
)
ALICE_ORDER = ["a7", "a6", "a5", "a3", "a4", "a2", "a1"]  # newest first; ties by tx_id
BOB_TXS = (
    Tx("b1", "2024-01-10T10:00:00", "kraken", "buy", ("USD", "500"), ("BTC", "0.01")),
    Tx("b2", "2024-03-02T11:00:00", "binance", "sell", ("BTC", "0.01"), ("USD", "650")),
)


def view_row(user: str, tx: Tx) -> tuple:
    at = ts(tx.at)
    none = (None, None)
    sent, received, fee = tx.sent or none, tx.received or none, tx.fee or none
    asset = received[0] or sent[0]
    return (
        user,
        at.year * 100 + at.month,
        at,
        tx.tx_id,
        tx.wallet,
        tx.type,
        None,
        sent[0],
        D(sent[1]) if sent[1] else None,
        received[0],
        D(received[1]) if received[1] else None,
        fee[0],
        D(fee[1]) if fee[1] else None,
        D("40000.123456789"),
        "hour",
        D("1000.00"),
        D("990.5"),
        D("9.5"),
        "short",
        {asset: D("1.000000000000000001")},
        {"transfer"} if tx.type == "withdrawal" else set(),
        f"0x{tx.tx_id}",
    )


def write_user(session, user: str, txs: tuple[Tx, ...]) -> None:
    write_transactions_view(session, [view_row(user, tx) for tx in txs])
    months = {
        (user, ts(tx.at).year * 100 + ts(tx.at).month, side[0])
        for tx in txs
        for side in (tx.sent, tx.received, tx.fee)
        if side
    }
    execute_many(
        session, "INSERT INTO user_months (user_id, month, asset) VALUES (?, ?, ?)", sorted(months)
    )


@dataclass(frozen=True)
class World:
    alice: str
    bob: str
    alice_job: uuid.UUID
    bob_job: uuid.UUID


@pytest.fixture(scope="module")
def world(test_keyspace: str) -> World:
    session = get_session(get_settings(), test_keyspace)
    tag = uuid.uuid4().hex[:8]
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    write_user(session, alice, ALICE_TXS)
    write_user(session, bob, BOB_TXS)
    balances = (
        "INSERT INTO balances (user_id, wallet, asset, quantity, cost_basis, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    )
    at = ts("2024-03-16T00:00:00")
    execute_many(
        session,
        balances,
        [
            (alice, "binance", "BTC", D("0.020000000000000001"), D("800.10"), at),
            (alice, "binance", "ETH", D("2.101"), D("0E-18"), at),
            (alice, "kraken", "ETH", D("0.5"), D("1150.05"), at),
            (bob, "kraken", "BTC", D("7"), D("1"), at),
        ],
    )
    summary = (
        "INSERT INTO yearly_summary (user_id, year, asset, proceeds, cost_basis, "
        "short_term_gain, long_term_gain, gain, income) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    execute_many(
        session,
        summary,
        [
            (alice, "2023", "*", D("0"), D("0"), D("0"), D("0"), D("0"), D("0")),
            (
                alice,
                "2024",
                "*",
                D("1900"),
                D("1350.05"),
                D("549.95"),
                D("0"),
                D("549.95"),
                D("3.21"),
            ),
            (alice, "2024", "BTC", D("200"), D("200.00"), D("0"), D("0"), D("0"), D("0")),
            (
                alice,
                "2024",
                "ETH",
                D("1700"),
                D("1150.05"),
                D("549.95"),
                D("0"),
                D("549.95"),
                D("3.21"),
            ),
            (bob, "2024", "*", D("650"), D("500"), D("150"), D("0"), D("150"), D("0")),
        ],
    )
    write_disposals(
        session,
        alice,
        [
            (
                "2024",
                ts("2024-03-01T00:00:00"),
                "a6:ETH:0:0",
                "ETH",
                "kraken",
                D("0.5"),
                ts("2024-01-05T00:00:00"),
                D("1700"),
                D("1150.05"),
                D("549.95"),
                "short",
                "a6",
                "lot",
                1704441600000000,
                "a3",
                D(0),
            ),
            (
                "2024",
                ts("2024-01-20T12:30:00"),
                "a5:BTC:0:0",
                "BTC",
                "binance",
                D("0.005"),
                None,
                D("200"),
                D("200.005"),
                D("-0.005"),
                "short",
                "a5",
                "no_basis",
                None,
                "",
                D(0),
            ),
        ],
    )
    write_disposals(
        session,
        bob,
        [
            (
                "2024",
                ts("2024-03-02T11:00:00"),
                "b2:BTC:0:0",
                "BTC",
                "binance",
                D("0.01"),
                ts("2024-01-10T00:00:00"),
                D("650"),
                D("500"),
                D("150"),
                "short",
                "b2",
                "lot",
                1704880800000000,
                "b1",
                D(0),
            )
        ],
    )
    replace_reconciliation(
        session,
        alice,
        [
            (
                "unmatched_withdrawal",
                "BTC",
                ts("2024-01-05T08:00:00"),
                "a4",
                "no deposit within 24h",
            ),
            ("negative_balance", None, None, None, "summary"),
        ],
    )
    replace_reconciliation(
        session, bob, [("unmatched_deposit", "BTC", ts("2024-01-10T10:00:00"), "b1", "bob's")]
    )
    alice_job = jobs.create_job(session, user_id=alice, file_name="a.csv")
    bob_job = jobs.create_job(session, user_id=bob, file_name="b.csv")
    jobs.write_rejected(
        session, alice_job, [(line, "bad date", f"row {line}") for line in (2, 5, 9, 12, 40)]
    )
    jobs.set_progress(session, alice_job, "parse", 0, 100, 400)
    # Off the active list: the supervisor must not try to run these made-up jobs.
    for job_id in (alice_job, bob_job):
        jobs.finish(session, jobs.get_job(session, job_id), JobStatus.FAILED, "test data")
    return World(alice, bob, alice_job, bob_job)


@pytest.fixture()
def alice(world: World, api_client_for: Callable[[str], httpx.Client]) -> httpx.Client:
    return api_client_for(world.alice)


@pytest.fixture()
def bob(world: World, api_client_for: Callable[[str], httpx.Client]) -> httpx.Client:
    return api_client_for(world.bob)


def ok(resp: httpx.Response) -> dict:
    assert resp.status_code == 200, resp.text
    return resp.json()


def walk(client: httpx.Client, path: str, params: dict, key: str = "tx_id") -> list:
    """Follow next_page_token to the end (bounded); returns the items' `key`s in order."""
    seen, token = [], None
    for _ in range(100):
        page = ok(client.get(path, params={**params, **({"page_token": token} if token else {})}))
        assert set(page) >= {"items", "next_page_token"}
        seen.extend(item[key] for item in page["items"])
        token = page["next_page_token"]
        if token is None:
            return seen
    raise AssertionError("pagination did not end")


# --- transactions -----------------------------------------------------------------------------
def test_limit_2_walks_every_row_once_newest_first_across_months(alice):
    assert walk(alice, "/v1/transactions", {"limit": 2}) == ALICE_ORDER
    assert [t["tx_id"] for t in ok(alice.get("/v1/transactions"))["items"]] == ALICE_ORDER


def test_transaction_shape_is_exact(alice):
    first = ok(alice.get("/v1/transactions", params={"limit": 7}))["items"][-1]
    assert first["tx_id"] == "a1" and first["timestamp"] == "2023-12-30T09:00:00Z"
    assert first["received_amount"] == "0.025000000000000001" and first["sent_amount"] == "1000"
    assert first["price"] == "40000.123456789" and first["cost_basis"] == "990.5"
    assert first["balance_after"] == {"BTC": "1.000000000000000001"} and first["flags"] == []
    assert first["wallet"] == "binance" and first["type"] == "buy" and first["tx_hash"] == "0xa1"


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"asset": "ETH"}, ["a7", "a6", "a5", "a3", "a2"]),
        ({"asset": "eth"}, ["a7", "a6", "a5", "a3", "a2"]),  # normalized like the files' symbols
        ({"asset": "BNB"}, ["a5"]),  # a fee asset counts
        ({"wallet": "kraken"}, ["a6", "a3", "a4"]),
        ({"type": "buy"}, ["a3", "a1"]),
        ({"from": "2024-01-01", "to": "2024-01-31"}, ["a5", "a3", "a4"]),
        ({"from": "2024-01-05T08:00:00Z", "to": "2024-03-01T00:00:00Z"}, ["a6", "a5", "a3", "a4"]),
        ({"from": "2024-01-05T09:00:00+01:00", "to": "2024-01-05T08:00:00"}, ["a3", "a4"]),
        ({"to": "2023-12-31"}, ["a2", "a1"]),
        ({"asset": "ETH", "wallet": "binance", "from": "2023-12-31"}, ["a7", "a5", "a2"]),
        ({"asset": "DOGE"}, []),
    ],
)
def test_filters_paged_and_unpaged(alice, params, expected):
    unpaged = ok(alice.get("/v1/transactions", params=params))["items"]
    assert [t["tx_id"] for t in unpaged] == expected
    assert walk(alice, "/v1/transactions", {**params, "limit": 1}) == expected
    assert walk(alice, "/v1/transactions", {**params, "limit": 2}) == expected


@pytest.mark.parametrize(
    "params,status",
    [
        ({"type": "swap"}, 400),
        ({"from": "yesterday"}, 400),
        ({"from": "2024-02-01", "to": "2024-01-01"}, 400),
        ({"limit": 0}, 422),
        ({"limit": 1001}, 422),
        ({"page_token": "garbage!"}, 400),
    ],
)
def test_bad_transaction_parameters(alice, params, status):
    resp = alice.get("/v1/transactions", params=params)
    assert resp.status_code == status and set(resp.json()["error"]) == {"code", "message"}


def test_a_forged_paging_state_is_400_not_500(world, alice):
    from serve.page_tokens import encode_tx_cursor, list_scope

    scope = list_scope("/v1/transactions", world.alice)
    forged = encode_tx_cursor(queries.TxCursor(202403, b"\x00\x01garbage-state", 0), scope)
    resp = alice.get("/v1/transactions", params={"page_token": forged})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "invalid_page_token"


@pytest.mark.parametrize(
    "fields", [{"m": 202403, "k": 10**30}, {"m": 202403, "k": 2_000_000}, {"m": 10**40, "k": 0}]
)
def test_a_crafted_page_token_is_400_never_500_nor_past_the_page_cap(alice, fields):
    import base64
    import json

    crafted = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")
    resp = alice.get("/v1/transactions", params={"page_token": crafted, "limit": 1000})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "invalid_page_token"


def test_filtered_walk_with_a_tiny_scan_budget_still_sees_each_match_once(world, session):
    flt = queries.TxFilter(asset="ETH")
    seen, cursor, calls = [], None, 0
    while True:
        rows, cursor = queries.transactions_page(
            session, world.alice, flt, 2, cursor, scan_budget=1
        )
        seen.extend(r["tx_id"] for r in rows)
        calls += 1
        assert calls < 50
        if cursor is None:
            break
    assert seen == ["a7", "a6", "a5", "a3", "a2"]


# --- isolation ----------------------------------------------------------------------------------
def test_users_see_only_their_own_data(world, alice, bob):
    assert walk(bob, "/v1/transactions", {"limit": 1}) == ["b2", "b1"]
    assert not set(walk(alice, "/v1/transactions", {})) & {"b1", "b2"}
    assert [b["quantity"] for b in ok(bob.get("/v1/balances"))["items"]] == ["7"]
    assert ok(bob.get("/v1/gains", params={"year": "2024"}))["items"] == []
    assert ok(bob.get("/v1/gains", params={"year": "2024"}))["totals"]["proceeds"] == "650"
    bob_csv = bob.get("/v1/reports/form8949.csv", params={"year": "2024"}).text
    header, *lines = bob_csv.splitlines()
    at = header.split(",").index("description")
    assert [line.split(",")[at] for line in lines] == ["0.01 BTC"]
    assert [f["tx_id"] for f in ok(bob.get("/v1/reconciliation"))["items"]] == ["b1"]


def test_another_users_job_is_404(world, alice, bob):
    for path in (f"/v1/jobs/{world.alice_job}", f"/v1/jobs/{world.alice_job}/errors"):
        resp = bob.get(path)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    assert alice.get(f"/v1/jobs/{world.bob_job}").status_code == 404
    assert alice.get("/v1/jobs/not-a-uuid").status_code == 404
    assert alice.get(f"/v1/jobs/{uuid.uuid1()}").status_code == 404
    assert [j["job_id"] for j in ok(bob.get("/v1/jobs"))["items"]] == [str(world.bob_job)]


# --- jobs ---------------------------------------------------------------------------------------
def test_job_view_and_its_rejected_rows(world, alice):
    job = ok(alice.get(f"/v1/jobs/{world.alice_job}"))
    assert job["job_id"] == str(world.alice_job) and job["status"] == "failed"
    assert job["stages"] == {
        "parse": {"done": 100, "total": 400},
        "store": {"done": 0, "total": 0},
        "prices": {"done": 0, "total": 0},
        "tax": {"done": 0, "total": 0},
    }
    assert {"accepted", "rejected", "created_at", "updated_at", "error"} <= set(job)
    assert job["created_at"].endswith("Z") and job["error"] == "test data"
    assert job["errors_url"] == f"/v1/jobs/{world.alice_job}/errors"
    assert walk(alice, job["errors_url"], {"limit": 2}, key="line") == [2, 5, 9, 12, 40]
    first = ok(alice.get(job["errors_url"], params={"limit": 1}))["items"][0]
    assert first == {"line": 2, "reason": "bad date", "raw": "row 2"}


# --- balances, gains, reports, reconciliation -------------------------------------------------
def test_balances(alice):
    items = ok(alice.get("/v1/balances"))["items"]
    assert [(b["wallet"], b["asset"], b["quantity"], b["cost_basis"]) for b in items] == [
        ("binance", "BTC", "0.020000000000000001", "800.1"),
        ("binance", "ETH", "2.101", "0"),
        ("kraken", "ETH", "0.5", "1150.05"),
    ]
    assert items[0]["updated_at"] == "2024-03-16T00:00:00Z"
    assert walk(alice, "/v1/balances", {"limit": 1}, key="asset") == ["BTC", "ETH", "ETH"]
    assert walk(alice, "/v1/balances", {"wallet": "kraken"}, key="asset") == ["ETH"]


def test_gains(alice):
    year = ok(alice.get("/v1/gains", params={"year": "2024"}))
    assert year["year"] == "2024" and year["totals"] == {
        "year": "2024",
        "asset": "*",
        "proceeds": "1900",
        "cost_basis": "1350.05",
        "short_term_gain": "549.95",
        "long_term_gain": "0",
        "gain": "549.95",
        "income": "3.21",
    }
    assert [(g["asset"], g["proceeds"]) for g in year["items"]] == [("BTC", "200"), ("ETH", "1700")]
    assert walk(alice, "/v1/gains", {"year": "2024", "limit": 1}, key="asset") == ["BTC", "ETH"]
    overview = ok(alice.get("/v1/gains"))
    assert overview["year"] is None and overview["next_page_token"] is None
    assert [(g["year"], g["asset"]) for g in overview["items"]] == [("2023", "*"), ("2024", "*")]
    empty = ok(alice.get("/v1/gains", params={"year": "2019"}))
    assert empty["totals"] is None and empty["items"] == []
    assert alice.get("/v1/gains", params={"year": "20x4"}).status_code == 400


def test_form8949_csv(alice):
    resp = alice.get("/v1/reports/form8949.csv", params={"year": "2024"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert 'filename="form8949-2024.csv"' in resp.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows == [
        FORM_8949_COLUMNS,
        ["I", "C", "0.005 BTC", "VARIOUS", "01/20/2024", "200.00", "200.01", "", "", "-0.01"],
        ["I", "C", "0.5 ETH", "01/05/2024", "03/01/2024", "1700.00", "1150.05", "", "", "549.95"],
    ]
    assert alice.get("/v1/reports/form8949.csv").status_code == 422


def test_schedule_d_csv_totals_the_printed_form8949_lines(alice):
    resp = alice.get("/v1/reports/schedule-d.csv", params={"year": "2024"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert 'filename="schedule-d-2024.csv"' in resp.headers["content-disposition"]
    # Printed lines: 1700.00 - 1150.05 = 549.95 and 200.00 - 200.01 = -0.01.
    totals = ["2", "1900.00", "1350.06", "0.00", "549.94"]
    assert list(csv.reader(io.StringIO(resp.text))) == [
        SCHEDULE_D_COLUMNS,
        ["8949", "2", "I", "C", *totals],
        ["Schedule D", "3", "I", "C", *totals],
    ]


def test_turbotax_txf_reads_back_by_the_v042_grammar(alice):
    resp = alice.get("/v1/reports/turbotax.txf", params={"year": "2024"})
    assert (
        resp.status_code == 200
        and 'filename="turbotax-2024.txf"' in resp.headers["content-disposition"]
    )
    header, sales = parse_txf(resp.text)
    assert header["version"] == "042"
    assert [
        (s["refnum"], s["security"], s["acquired"], s["sold"], s["cost"], s["sales"]) for s in sales
    ] == [
        ("712", "0.005 BTC", "", "01/20/2024", "200.01", "200.00"),
        ("712", "0.5 ETH", "01/05/2024", "03/01/2024", "1150.05", "1700.00"),
    ]


def test_income_csv_by_month_and_kind(alice):
    resp = alice.get("/v1/reports/income.csv", params={"year": "2024"})
    assert (
        resp.status_code == 200
        and 'filename="income-2024.csv"' in resp.headers["content-disposition"]
    )
    assert list(csv.reader(io.StringIO(resp.text))) == [
        INCOME_REPORT_COLUMNS,
        ["2024-03", "income", "1", "1000.00", "0"],
        ["total", "income", "1", "1000.00", "0"],
        ["total", "all", "1", "1000.00", "0"],
    ]
    empty = alice.get("/v1/reports/income.csv", params={"year": "2022"})
    assert list(csv.reader(io.StringIO(empty.text))) == [INCOME_REPORT_COLUMNS]


def test_sa108_csv_is_for_uk_years(alice):
    assert alice.get("/v1/reports/sa108.csv", params={"year": "2024"}).status_code == 400
    resp = alice.get("/v1/reports/sa108.csv", params={"year": "2024/25"})
    assert (
        resp.status_code == 200
        and 'filename="sa108-2024-25.csv"' in resp.headers["content-disposition"]
    )
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0] == SA108_COLUMNS
    assert [(box, value) for box, _, value in rows[1:]] == [
        ("13.1", "0"),
        ("13.2", "0.00"),
        ("13.3", "0.00"),
        ("13.4", "0.00"),
        ("13.5", "0.00"),
    ]


def test_reports_summary_counts_lines_and_totals_boxes(alice):
    summary = ok(alice.get("/v1/reports/summary", params={"year": "2024"}))
    assert summary == {
        "year": "2024",
        "disposal_lines": 2,
        "zero_cost_basis_lines": 0,
        "form8949": [
            {
                "part": "I",
                "box": "C",
                "schedule_d_line": "3",
                "lines": 2,
                "proceeds": "1900.00",
                "cost_basis": "1350.06",
                "adjustment": "0.00",
                "gain_or_loss": "549.94",
            }
        ],
        "downloads": {
            "form8949": "/v1/reports/form8949.csv?year=2024",
            "schedule_d": "/v1/reports/schedule-d.csv?year=2024",
            "turbotax": "/v1/reports/turbotax.txf?year=2024",
            "income": "/v1/reports/income.csv?year=2024",
        },
    }


def test_reports_need_a_token(world, serve_app):
    for path in REPORT_PATHS:
        resp = httpx.get(f"{serve_app.base_url}{path}", params={"year": "2024"}, timeout=30)
        assert resp.status_code == 401, path


def test_reconciliation(alice):
    items = ok(alice.get("/v1/reconciliation"))["items"]
    assert items == [
        {
            "kind": "negative_balance",
            "asset": None,
            "timestamp": None,
            "tx_id": None,
            "detail": "summary",
        },
        {
            "kind": "unmatched_withdrawal",
            "asset": "BTC",
            "timestamp": "2024-01-05T08:00:00Z",
            "tx_id": "a4",
            "detail": "no deposit within 24h",
        },
    ]
    assert walk(alice, "/v1/reconciliation", {"kind": "unmatched_withdrawal"}) == ["a4"]
    assert walk(alice, "/v1/reconciliation", {"limit": 1}, key="kind") == [
        "negative_balance",
        "unmatched_withdrawal",
    ]


def test_findings_across_many_chunks_page_exactly(api_client_for, fresh_user, session):
    user = fresh_user("findings")
    count = FINDINGS_PER_CHUNK * 2 + 17
    findings = [
        (
            "unmatched_deposit",
            asset,
            ts("2024-01-01T00:00:00").replace(minute=i % 60, hour=i // 60 % 24),
            f"t{i:04d}",
            f"finding {i}",
        )
        for i in range(count)
        for asset in ("BTC", "ETH")
    ]
    findings.append(("negative_balance", "BTC", None, None, "undated"))
    replace_reconciliation(session, user, findings)
    client = api_client_for(user)
    everything = walk(client, "/v1/reconciliation", {"limit": 1000}, key="detail")
    assert len(everything) == 2 * count + 1 and everything[0] == "undated"
    assert walk(client, "/v1/reconciliation", {"limit": 10}, key="detail") == everything
    deposits = walk(
        client, "/v1/reconciliation", {"kind": "unmatched_deposit", "limit": 200}, key="tx_id"
    )
    assert deposits == sorted(f"t{i:04d}" for i in range(count)) * 2  # BTC's, then ETH's
    page = ok(client.get("/v1/reconciliation", params={"kind": "unmatched_deposit", "limit": 3}))
    other_kind = client.get(
        "/v1/reconciliation",
        params={"kind": "negative_balance", "page_token": page["next_page_token"]},
    )
    assert other_kind.status_code == 400


def test_shards_fill_one_view_row_by_map_elements(api_client_for, fresh_user, session):
    """Two shards (BTC's, BNB's) and the row's own writer never read the row; the API shows
    what the single-process engine gives (sums, term, balances, flags)."""
    user = fresh_user("shards")
    tx = Tx(
        "s1", "2024-05-01T10:00:00", "binance", "trade", ("BTC", "1"), ("ETH", "20"), ("BNB", "0.1")
    )
    write_user(session, user, (tx,))
    at, month = ts(tx.at), 202405
    write_view_metrics(
        session,
        [
            (
                user,
                month,
                at,
                "s1",
                {
                    "BTC": TxMetrics(
                        D("60000"), D("30000"), D("30000"), "long", None, {"BTC": D("0")}, set()
                    ),
                    "ETH": TxMetrics(None, None, None, None, D("60030"), {"ETH": D("20")}, set()),
                },
            )
        ],
    )
    write_view_metrics(
        session,
        [
            (
                user,
                month,
                at,
                "s1",
                {
                    "BNB": TxMetrics(
                        D("30"),
                        D("40.5"),
                        D("-10.5"),
                        "short",
                        None,
                        {"BNB": D("-0.1")},
                        {"negative_balance", "missing_cost_basis"},
                    )
                },
            )
        ],
    )
    item = ok(api_client_for(user).get("/v1/transactions"))["items"][0]
    assert item["cost_basis"] == "30040.5" and item["gain"] == "29989.5"
    assert item["term"] == "mixed"
    assert item["balance_after"] == {"BTC": "0", "ETH": "20", "BNB": "-0.1"}
    assert item["flags"] == ["missing_cost_basis", "negative_balance"]


# --- settings -----------------------------------------------------------------------------------
def test_settings_put_validates_and_starts_a_recompute(api_client_for, fresh_user, session):
    user = fresh_user("settings")
    client = api_client_for(user)
    assert ok(client.get("/v1/settings")) == {
        "method": "fifo",
        "pooling": "per-wallet",
        "currency": "USD",
    }
    for bad in (
        {"method": "average", "pooling": "universal"},
        {"method": "hifo"},
        {"method": "lifo", "pooling": "global"},
    ):
        resp = client.put("/v1/settings", json=bad)
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_request"
    resp = client.put("/v1/settings", json={"method": "hifo", "pooling": "universal"})
    assert resp.status_code == 202, resp.text
    job_id = uuid.UUID(resp.json()["job_id"])
    assert resp.json()["status"] == "queued"
    job = jobs.get_job(session, job_id)
    assert job.user_id == user and job.kind == "recompute"
    assert ok(client.get("/v1/settings"))["method"] == "hifo"
    assert ok(client.get(f"/v1/jobs/{job_id}"))["kind"] == "recompute"
    # the reporting currency: changed when given (ISO 4217, any case), kept when omitted
    bad = client.put(
        "/v1/settings", json={"method": "hifo", "pooling": "universal", "currency": "euro"}
    )
    assert bad.status_code == 422, bad.text
    resp = client.put(
        "/v1/settings", json={"method": "hifo", "pooling": "universal", "currency": "eur"}
    )
    assert resp.status_code == 202, resp.text
    assert ok(client.get("/v1/settings"))["currency"] == "EUR"
    assert (
        client.put("/v1/settings", json={"method": "fifo", "pooling": "universal"}).status_code
        == 202
    )
    assert ok(client.get("/v1/settings")) == {
        "method": "fifo",
        "pooling": "universal",
        "currency": "EUR",
    }


def test_settings_the_engine_refuses_are_422_and_leave_the_stored_settings(
    api_client_for, fresh_user, session
):
    user = fresh_user("settings-uk")
    client = api_client_for(user)
    before = ok(client.get("/v1/settings"))
    resp = client.put("/v1/settings", json={"method": "uk", "pooling": "per-wallet"})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid_settings" and "universal" in error["message"]
    assert ok(client.get("/v1/settings")) == before
    assert ok(client.get("/v1/jobs"))["items"] == []  # no recompute started


def test_choices_list_only_valid_combinations(api_client_for, fresh_user):
    choices = ok(api_client_for(fresh_user("choices")).get("/v1/choices"))
    assert choices["poolings"] == {
        "fifo": ["per-wallet", "universal"],
        "lifo": ["per-wallet", "universal"],
        "hifo": ["per-wallet", "universal"],
        "acb": ["per-wallet", "universal"],
        "uk": ["universal"],
    }
    assert "trade" in choices["tx_types"] and choices["tx_types"] == sorted(choices["tx_types"])
    assert {"koinly", "coinbase", "binance", "kraken"} <= set(choices["formats"])


# --- what a browser loads -------------------------------------------------------------------------
def test_web_page_and_its_assets_are_served_from_the_package(serve_app):
    page = httpx.get(f"{serve_app.base_url}/", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = [a for a in page.text.split('"') if a.startswith("/assets/")]
    assert {a.rsplit(".", 1)[-1] for a in assets} == {"js", "css"}
    for asset in assets:
        resp = httpx.get(f"{serve_app.base_url}{asset}", timeout=30)
        assert resp.status_code == 200 and len(resp.content) > 1000


@pytest.mark.parametrize("docs", ["/docs", "/v1/uploads/docs"])
def test_openapi_pages_use_local_swagger_assets(serve_app, docs):
    html = httpx.get(f"{serve_app.base_url}{docs}", timeout=30).text
    prefix = docs.removesuffix("/docs")
    assert f'"{prefix}/static/swagger/swagger-ui-bundle.js"' in html
    assert "cdn" not in html.lower()
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        resp = httpx.get(f"{serve_app.base_url}{prefix}/static/swagger/{name}", timeout=30)
        assert resp.status_code == 200 and len(resp.content) > 10_000


# --- errors classified at the boundary (issue 25) -----------------------------------------------
def test_a_page_token_of_one_list_is_400_on_any_other(world, alice, bob):
    balances_token = ok(alice.get("/v1/balances", params={"limit": 1}))["next_page_token"]
    errors_token = ok(alice.get(f"/v1/jobs/{world.alice_job}/errors", params={"limit": 1}))[
        "next_page_token"
    ]
    assert balances_token and errors_token
    for client, path, params, token in [
        (alice, "/v1/jobs", {}, balances_token),  # was 200 with an empty page: "the list ended"
        (alice, "/v1/gains", {"year": "2024"}, balances_token),
        (alice, "/v1/transactions", {}, balances_token),
        (alice, "/v1/reconciliation", {}, balances_token),
        (alice, "/v1/balances", {"wallet": "kraken"}, balances_token),
        (alice, "/v1/balances", {}, errors_token),
        (bob, "/v1/balances", {}, balances_token),  # another user's
    ]:
        resp = client.get(path, params={**params, "page_token": token})
        assert resp.status_code == 400, (path, resp.text)
        assert resp.json()["error"]["code"] == "invalid_page_token"


@pytest.mark.parametrize("state", [b"\x00\x01garbage-state", b"garbage-paging-state"])
def test_a_page_token_signed_with_the_key_but_forged_is_400_at_once(world, alice, state):
    """Whoever holds the key (this test reads the deployment's stored one) and forges a paging
    state: Cassandra refuses it, no retry, a 400 (was: ~180 s of retries holding a query worker,
    then 500, with the key anyone could derive)."""
    from serve.page_tokens import encode_paging_state, encode_tx_cursor, list_scope

    user = world.alice
    for path, params, token in [
        ("/v1/jobs", {}, encode_paging_state(state, list_scope("/v1/jobs", user))),
        ("/v1/balances", {}, encode_paging_state(state, list_scope("/v1/balances", user))),
        (
            "/v1/gains",
            {"year": "2024"},
            encode_paging_state(state, list_scope("/v1/gains", user, "2024")),
        ),
        (
            "/v1/transactions",
            {},
            encode_tx_cursor(
                queries.TxCursor(202401, state, 0), list_scope("/v1/transactions", user)
            ),
        ),
    ]:
        resp = alice.get(path, params={**params, "page_token": token}, timeout=30)
        assert resp.status_code == 400, (path, resp.text)
        assert resp.json()["error"]["code"] == "invalid_page_token"


@pytest.mark.parametrize(
    "params",
    [
        {"to": "9999-12-31"},
        {"from": "9999-12-31"},
        {"from": "0001-01-01", "to": "0001-01-01"},
        {"from": "0001-01-01T00:00:00+01:00"},
        {"to": "9999-12-31T23:59:59-05:00"},
        {"from": "0001-01-01T00:00:00-14:00", "to": "9999-12-31T23:59:59+14:00"},
    ],
)
def test_dates_at_the_calendars_ends_answer_200(alice, params):
    ok(alice.get("/v1/transactions", params=params))


def test_a_year_with_a_trailing_newline_is_400(alice):
    for path in ("/v1/gains", "/v1/reports/form8949.csv"):
        resp = alice.get(path, params={"year": "2024\n"})
        assert resp.status_code == 400, (path, resp.text)
