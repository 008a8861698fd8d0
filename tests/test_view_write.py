"""transactions_view written once with no tombstones, rewrites that clear what they empty, and
the asset / wallet access paths (migration 014), on the real Cassandra node.

Tombstones are counted by the node itself: query tracing of a paged read ("Read N live rows and
M tombstone cells", benchmarks/tombstones.py, the instrument of `make bench`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from typing import Any

import pytest
from cassandra.cluster import Session

from benchmarks.tombstones import traced_view_read
from ingest.config import Settings
from ingest.load import queries
from ingest.load.cassandra import execute, execute_many, get_session
from ingest.load.migrations import apply_migrations
from ingest.load.views import backfill_view_assets, view_clears, write_view_rows
from ingest.tax.records import TxMetrics

pytestmark = [pytest.mark.cassandra, pytest.mark.usefixtures("test_keyspace")]


def own_row(user: str, at: datetime, tx_id: str, **values: Any) -> dict[str, Any]:
    """A view row's own columns (views.VIEW_BASE_COLUMNS), empty unless given."""
    row: dict[str, Any] = {
        "user_id": user,
        "month": at.year * 100 + at.month,
        "timestamp": at,
        "tx_id": tx_id,
        "wallet": "Main",
        "type": "buy",
        "label": None,
        "sent_asset": None,
        "sent_amount": None,
        "received_asset": "BTC",
        "received_amount": D("0.5"),
        "fee_asset": None,
        "fee_amount": None,
        "price": None,
        "price_source": None,
        "value": None,
        "tx_hash": None,
    }
    row.update(values)
    return row


def metrics() -> TxMetrics:
    return TxMetrics(None, None, None, None, D("10"), {"BTC": D("0.5")}, set())


def stored(session, user: str, month: int) -> dict[str, dict[str, Any]]:
    return {
        r["tx_id"]: r
        for r in execute(
            session,
            "SELECT * FROM transactions_view WHERE user_id = ? AND month = ?",
            (user, month),
        )
    }


def test_a_first_upload_writes_view_rows_with_no_tombstone(session):
    user = f"fresh-{uuid.uuid4().hex[:8]}"
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rows = [
        own_row(user, start + timedelta(hours=i), f"t{i}", label="x" if i % 3 else None)
        for i in range(120)
    ]
    # a first upload: no month held view rows before the job
    write_view_rows(session, [(r, {"BTC": metrics()}) for r in rows], prior_months=frozenset())
    count = traced_view_read(session, user, [202401])
    assert count.live_rows == 120
    assert count.tombstone_cells == 0
    assert {r["tx_id"]: r["assets"] for r in stored(session, user, 202401).values()} == {
        f"t{i}": {"BTC"} for i in range(120)
    }


def test_a_rewrite_that_empties_a_column_clears_it_and_nothing_else(session):
    user = f"rewrite-{uuid.uuid4().hex[:8]}"
    at = datetime(2024, 2, 3, 4, 5, 6, 789000, tzinfo=timezone.utc)
    first = own_row(
        user, at, "x1", label="airdrop", tx_hash="0xabc", fee_asset="BNB", fee_amount=D("0.1")
    )
    other = own_row(user, at + timedelta(minutes=1), "x2", label="kept")
    write_view_rows(session, [(first, {}), (other, {})], prior_months=frozenset())
    assert traced_view_read(session, user, [202402]).tombstone_cells == 0

    # the re-export keeps the exchange's id but drops the label, the hash and the fee
    again = own_row(user, at, "x1")
    write_view_rows(session, [(again, {}), (other, {})], prior_months=None)
    rows = stored(session, user, 202402)
    assert rows["x1"]["label"] is None and rows["x1"]["tx_hash"] is None
    assert rows["x1"]["fee_asset"] is None and rows["x1"]["fee_amount"] is None
    assert rows["x1"]["assets"] == {"BTC"}
    assert rows["x1"]["received_amount"] == D("0.5")
    assert rows["x2"]["label"] == "kept"
    # tombstones only for what went away: 4 cells and the BNB element, on x1 alone
    count = traced_view_read(session, user, [202402])
    assert count.live_rows == 2
    assert 0 < count.tombstone_cells <= 5

    # the same rows written again: nothing more to clear, no new tombstone
    write_view_rows(session, [(again, {}), (other, {})], prior_months=None)
    assert traced_view_read(session, user, [202402]).tombstone_cells == count.tombstone_cells


def test_view_clears_names_only_values_a_rewrite_empties():
    at = datetime(2024, 5, 1, tzinfo=timezone.utc)
    before = {"label": "a", "tx_hash": None, "assets": {"BTC", "BNB"}}
    key = (int(at.timestamp() * 1000), "t")
    (clear,) = view_clears({key: before}, [own_row("u", at, "t")])
    assert clear.columns == ("label",) and clear.assets == {"BNB"}
    assert view_clears({key: before}, [own_row("u", at, "new")]) == []
    kept = own_row("u", at, "t", label="b", fee_asset="BNB")
    assert view_clears({key: before}, [kept]) == []


@pytest.fixture()
def sparse_user(session) -> str:
    """30 months of one wallet's BTC buys, and one DOGE row of 'Ledger Nano' in the oldest."""
    user = f"sparse-{uuid.uuid4().hex[:8]}"
    rows = []
    for m in range(30):
        month_start = datetime(2022 + m // 12, m % 12 + 1, 1, tzinfo=timezone.utc)
        rows += [own_row(user, month_start + timedelta(days=d), f"m{m}d{d}") for d in range(20)]
    rows.append(
        own_row(
            user,
            datetime(2022, 1, 15, 12, tzinfo=timezone.utc),
            "rare",
            wallet="Ledger Nano",
            received_asset="DOGE",
            fee_asset="ETH",
            fee_amount=D("0.001"),
        )
    )
    write_view_rows(session, [(r, {}) for r in rows], prior_months=frozenset())
    months = {(r["user_id"], r["month"], a) for r in rows for a in ("BTC", "DOGE", "ETH")}
    execute_many(
        session, "INSERT INTO user_months (user_id, month, asset) VALUES (?, ?, ?)", months
    )
    return user


@pytest.mark.parametrize(
    "flt",
    [
        queries.TxFilter(asset="DOGE"),
        queries.TxFilter(asset="ETH"),  # a fee asset
        queries.TxFilter(wallet="Ledger Nano"),
        queries.TxFilter(wallet="ledger NANO"),  # case-insensitive
        queries.TxFilter(asset="DOGE", wallet="LEDGER nano"),
    ],
)
def test_a_filtered_first_page_holds_the_match_behind_29_months_without_one(
    session, sparse_user, flt
):
    # a scan budget of one row: before the access paths this page came back empty
    rows, cursor = queries.transactions_page(session, sparse_user, flt, 10, scan_budget=1)
    assert [r["tx_id"] for r in rows] == ["rare"]
    assert cursor is None


def test_a_wallet_filter_pages_its_matches_newest_first(session, sparse_user):
    flt = queries.TxFilter(wallet="MAIN")
    seen, cursor = [], None
    while True:
        rows, cursor = queries.transactions_page(session, sparse_user, flt, 7, cursor)
        assert rows, "no empty page"
        seen += rows
        if cursor is None:
            break
    assert len(seen) == 600 == len({r["tx_id"] for r in seen})
    assert [r["timestamp"] for r in seen] == sorted((r["timestamp"] for r in seen), reverse=True)


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 100])
def test_sparse_matches_read_months_ahead_page_each_match_once_newest_first(session, limit):
    """A wallet's rows in every fifth of 36 months, two or three a month: the walk asks for the
    next months' index lookups together (queries.TX_MONTHS_AT_ONCE), yet every page is full but
    the last (the first page holds the newest match), each match comes once, newest first, whatever page ends inside a month read ahead."""
    user = f"ahead-{uuid.uuid4().hex[:8]}"
    rows, expected = [], []
    for m in range(36):
        month_start = datetime(2022 + m // 12, m % 12 + 1, 1, tzinfo=timezone.utc)
        rows += [own_row(user, month_start + timedelta(days=d), f"m{m}d{d}") for d in range(4)]
        if m % 5 == 2:
            cold = [f"c{m}d{d}" for d in range(2 + m % 2)]
            rows += [
                own_row(user, month_start + timedelta(days=10 + d), tx, wallet="Cold")
                for d, tx in enumerate(cold)
            ]
            expected = list(reversed(cold)) + expected
    write_view_rows(session, [(r, {}) for r in rows], prior_months=frozenset())
    execute_many(
        session,
        "INSERT INTO user_months (user_id, month, asset) VALUES (?, ?, ?)",
        {(r["user_id"], r["month"], "BTC") for r in rows},
    )
    flt = queries.TxFilter(wallet="cold")
    seen, cursor = [], None
    while True:
        page, cursor = queries.transactions_page(session, user, flt, limit, cursor)
        assert len(page) == limit or cursor is None, (len(page), cursor)  # full, or the last
        seen += [r["tx_id"] for r in page]
        if cursor is None:
            break
    assert seen == expected


@pytest.fixture()
def own_keyspace_session(settings: Settings) -> Iterator[Session]:
    """A keyspace of its own: the backfill visits every user of a keyspace (in the suite's
    keyspace, every view row the suite wrote so far)."""
    keyspace = f"lf_backfill_{uuid.uuid4().hex[:8]}"
    apply_migrations(settings, keyspace)
    yield get_session(settings, keyspace)
    get_session(settings, keyspace).execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)


def test_migration_014_backfills_the_assets_of_rows_stored_before_it(own_keyspace_session):
    session = own_keyspace_session
    user = f"legacy-{uuid.uuid4().hex[:8]}"
    at = datetime(2023, 7, 1, tzinfo=timezone.utc)
    execute(  # a row as written before version 16: no assets cell
        session,
        "INSERT INTO transactions_view (user_id, month, timestamp, tx_id, wallet, type, "
        "sent_asset, received_asset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (user, 202307, at, "old", "Main", "trade", "ETH", "SOL"),
    )
    execute(
        session,
        "INSERT INTO user_months (user_id, month, asset) VALUES (?, ?, ?)",
        (user, 202307, "SOL"),
    )
    assert queries.transactions_page(session, user, queries.TxFilter(asset="SOL"), 5)[0] == []
    assert backfill_view_assets(session) == 1
    rows, _ = queries.transactions_page(session, user, queries.TxFilter(asset="SOL"), 5)
    assert [r["tx_id"] for r in rows] == ["old"]
    assert stored(session, user, 202307)["old"]["assets"] == {"ETH", "SOL"}
    assert backfill_view_assets(session) == 0  # done: a second run rewrites nothing
