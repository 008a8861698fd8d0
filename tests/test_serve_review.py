"""Review and explain over the real stack: two files uploaded through Serve, the real pipeline
(Ray, Cassandra) computes them, and GET /v1/review, /v1/review/{kind},
/v1/gains/{tx_id}/lots and /v1/balances answer what the engine found, to each user alone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest

from tests.test_serve_pipeline import wait_finished

pytestmark = [pytest.mark.cassandra, pytest.mark.ray]

HEADER = (
    "Date,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,Fee Currency,"
    "Net Worth Amount,Net Worth Currency,Label,Description,TxHash\n"
)
# Wallet "ledger": two BTC buys, a sale of 1.5 BTC (FIFO: all of the first, half the second),
# ETH sold that was never bought (zero cost basis, balance below zero), 0.2 BTC withdrawn.
LEDGER = HEADER + (
    "2024-01-05 10:00:00 UTC,100,USD,1,BTC,,,100,USD,,first buy,\n"
    "2024-02-05 10:00:00 UTC,300,USD,1,BTC,,,300,USD,,second buy,\n"
    "2024-03-05 10:00:00 UTC,1.5,BTC,600,USD,,,600,USD,,sale,\n"
    "2024-04-01 10:00:00 UTC,1,ETH,50,USD,,,50,USD,,eth never bought,\n"
    "2024-05-01 10:00:00 UTC,0.2,BTC,,,,,80,USD,,withdrawn,\n"
)
# Wallet "kraken": 0.15 BTC arrive an hour later: 25% lost, over the 5% fee limit, so no
# transfer, but a near miss each finding names.
KRAKEN = HEADER + "2024-05-01 11:00:00 UTC,,,0.15,BTC,,,60,USD,,arrived,\n"

D = Decimal


@dataclass(frozen=True)
class Uploaded:
    client: httpx.Client
    tx: dict[str, str]  # description -> tx_id


def upload(client: httpx.Client, body: str, wallet: str) -> None:
    resp = client.post(
        f"/v1/uploads?format=koinly&wallet={wallet}&name={wallet}.csv",
        content=body.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert resp.status_code == 202, resp.text
    job = wait_finished(client, resp.json()["job_id"])
    assert job["status"] == "succeeded", job


@pytest.fixture(scope="module")
def alice(serve_app, test_keyspace) -> Uploaded:
    import uuid

    from ingest.config import get_settings
    from ingest.load.cassandra import get_session
    from ingest.load.users import create_token

    session = get_session(get_settings(), test_keyspace)

    user = f"review-{uuid.uuid4().hex[:8]}"
    client = httpx.Client(
        base_url=serve_app.base_url,
        timeout=30.0,
        headers={"Authorization": f"Bearer {create_token(session, user)}"},
    )
    upload(client, LEDGER, "ledger")
    upload(client, KRAKEN, "kraken")
    items = client.get("/v1/transactions", params={"limit": 50}).json()["items"]
    by_time = {item["timestamp"]: item["tx_id"] for item in items}
    return Uploaded(
        client,
        {
            "first buy": by_time["2024-01-05T10:00:00Z"],
            "second buy": by_time["2024-02-05T10:00:00Z"],
            "sale": by_time["2024-03-05T10:00:00Z"],
            "eth sale": by_time["2024-04-01T10:00:00Z"],
            "withdrawal": by_time["2024-05-01T10:00:00Z"],
            "deposit": by_time["2024-05-01T11:00:00Z"],
        },
    )


@pytest.fixture()
def bob(api_client_for: Callable[[str], httpx.Client], fresh_user) -> httpx.Client:
    return api_client_for(fresh_user("bob"))


def ok(resp: httpx.Response) -> dict:
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_review_groups_the_findings_with_counts_titles_and_fixes(alice):
    review = ok(alice.client.get("/v1/review"))
    counts = {g["kind"]: g["count"] for g in review["groups"]}
    assert counts == {
        "missing_cost_basis": 1,
        "unmatched_deposit": 1,
        "unmatched_withdrawal": 1,
        "negative_balance": 1,
    }
    assert review["total"] == 4
    first = review["groups"][0]
    assert first == {
        "kind": "missing_cost_basis",
        "title": "Disposals with no known acquisition: zero cost basis used",
        "count": 1,
        "actions": ["edit", "ignore"],
    }


def test_a_kinds_items_carry_the_transaction_and_the_near_miss_counterpart(alice):
    page = ok(alice.client.get("/v1/review/unmatched_withdrawal"))
    assert page["next_page_token"] is None
    (item,) = page["items"]
    assert {k: item[k] for k in ("tx_id", "timestamp", "type", "wallet", "asset", "amount")} == {
        "tx_id": alice.tx["withdrawal"],
        "timestamp": "2024-05-01T10:00:00Z",
        "type": "withdrawal",
        "wallet": "ledger",
        "asset": "BTC",
        "amount": "0.2",
    }
    assert "near miss" in item["message"]
    assert item["actions"][0] == {
        "kind": "mark_transfer",
        "counterpart_tx_id": alice.tx["deposit"],
    }
    assert {a["kind"] for a in item["actions"]} == {"mark_transfer", "edit", "ignore"}
    (deposit,) = ok(alice.client.get("/v1/review/unmatched_deposit"))["items"]
    assert deposit["tx_id"] == alice.tx["deposit"] and deposit["wallet"] == "kraken"
    assert deposit["actions"][0]["counterpart_tx_id"] == alice.tx["withdrawal"]
    assert [a["kind"] for a in deposit["actions"]] == [
        "mark_transfer",
        "cost_basis",
        "edit",
        "ignore",
    ]


def test_review_pages_with_tokens_of_their_own_list_and_user(alice, bob):
    first = ok(alice.client.get("/v1/review/missing_cost_basis", params={"limit": 1}))
    assert [i["tx_id"] for i in first["items"]] == [alice.tx["eth sale"]]
    negative = ok(alice.client.get("/v1/review/negative_balance", params={"limit": 1}))
    assert [i["tx_id"] for i in negative["items"]] == [alice.tx["eth sale"]]
    assert ok(alice.client.get("/v1/review/missing_price"))["items"] == []
    resp = alice.client.get("/v1/review/no_such_kind")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    # a token names its list and user: another list's is refused
    other = ok(alice.client.get("/v1/transactions", params={"limit": 1}))["next_page_token"]
    resp = alice.client.get("/v1/review/missing_cost_basis", params={"page_token": other})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_page_token"
    # bob sees none of it
    assert ok(bob.get("/v1/review")) == {"groups": [], "total": 0}
    assert ok(bob.get("/v1/review/unmatched_withdrawal"))["items"] == []


def test_a_sales_lots_are_the_fifo_lots_it_consumed_adding_up(alice):
    explained = ok(alice.client.get(f"/v1/gains/{alice.tx['sale']}/lots"))
    assert explained["disposal"] == {
        "tx_id": alice.tx["sale"],
        "timestamp": "2024-03-05T10:00:00Z",
        "asset": "BTC",
        "wallet": "ledger",
        "quantity": "1.5",
        "proceeds": "600",
        "cost_basis": "250",
        "gain": "350",
        "term": "short",
        "method": "fifo",
    }
    lots = explained["lots"]
    assert [
        (lot["from_tx_id"], lot["acquired_at"], lot["quantity"], lot["cost"], lot["rule"])
        for lot in lots
    ] == [
        (alice.tx["first buy"], "2024-01-05T10:00:00Z", "1", "100", "fifo"),
        (alice.tx["second buy"], "2024-02-05T10:00:00Z", "0.5", "150", "fifo"),
    ]
    assert {(lot["wallet"], lot["currency"]) for lot in lots} == {("ledger", "USD")}
    assert sum(D(lot["quantity"]) for lot in lots) == D(explained["disposal"]["quantity"])
    assert sum(D(lot["cost"]) for lot in lots) == D(explained["disposal"]["cost_basis"])


def test_units_never_acquired_are_a_no_basis_lot(alice):
    explained = ok(alice.client.get(f"/v1/gains/{alice.tx['eth sale']}/lots"))
    assert explained["disposal"]["cost_basis"] == "0"
    assert [
        (lot["rule"], lot["quantity"], lot["cost"], lot["from_tx_id"]) for lot in explained["lots"]
    ] == [("no_basis", "1", "0", None)]


def test_lots_are_404_for_an_unknown_tx_a_non_disposal_and_another_users_tx(alice, bob):
    for client, tx_id in (
        (alice.client, "no-such-tx"),
        (alice.client, alice.tx["first buy"]),  # acquired, disposed of nothing
        (bob, alice.tx["sale"]),
    ):
        resp = client.get(f"/v1/gains/{tx_id}/lots")
        assert resp.status_code == 404, resp.text
        assert resp.json()["error"] == {"code": "not_found", "message": "no such disposal"}
    resp = alice.client.get(f"/v1/gains/{alice.tx['sale']}/lots", params={"asset": "ETH"})
    assert resp.status_code == 404


def test_balances_mark_the_negative_ones(alice):
    items = ok(alice.client.get("/v1/balances"))["items"]
    marked = {(b["wallet"], b["asset"]): (b["quantity"], b["negative"]) for b in items}
    assert marked[("ledger", "ETH")] == ("-1", True)
    assert marked[("ledger", "BTC")] == ("0.3", False)
    assert marked[("kraken", "BTC")] == ("0.15", False)


def test_a_disposal_whose_lines_fill_more_than_one_chunk_is_read_whole(session, fresh_user):
    """Lines are packed LINES_PER_CHUNK to a row: a disposal of many lots spans chunks, and its
    index entry names the first; lines of the disposals around it are not its own."""
    from datetime import datetime, timezone

    from ingest.load import queries
    from ingest.load.views import LINES_PER_CHUNK, write_disposals

    user = fresh_user("chunks")
    sold = datetime(2024, 6, 1, tzinfo=timezone.utc)

    def line(tx_id: str, n: int, at: datetime) -> tuple:
        return (
            "2024",
            at,
            f"{tx_id}:BTC:0:{n:04d}",
            "BTC",
            "w",
            D(1),
            None,
            D(2),
            D(1),
            D(1),
            "short",
            tx_id,
            "lot",
            1_700_000_000_000_000 + n,
            f"buy{n}",
            D(0),
        )

    before = [line("early", n, sold.replace(day=1, hour=0)) for n in range(LINES_PER_CHUNK - 10)]
    big = [line("big", n, sold.replace(hour=1)) for n in range(LINES_PER_CHUNK + 20)]
    after = [line("late", n, sold.replace(hour=2)) for n in range(5)]
    write_disposals(session, user, before + big + after)

    found = queries.disposal_lines_of(session, user, "big")
    year, lines = found["BTC"]
    assert year == "2024" and len(lines) == len(big)
    assert [r["from_tx_id"] for r in lines] == [f"buy{n}" for n in range(len(big))]
    assert len(queries.disposal_lines_of(session, user, "late")["BTC"][1]) == 5
    assert queries.disposal_lines_of(session, user, "nothing") == {}
