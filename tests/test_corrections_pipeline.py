"""Corrections on the real services (Ray, Cassandra, price simulator), without HTTP: a deleted
upload's rows leave every table, and uploading the file again gives the same tables as before;
what GET /v1/transactions lists (queries.transactions_page) after each kind and its undo."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from devtools.generate import generate
from ingest.config import get_settings
from ingest.corrections import store
from ingest.corrections.kinds import (
    AddTransaction,
    DeleteAddedTransaction,
    DeleteUpload,
    EditTransaction,
    SetIgnored,
    manual_tx_id,
)
from ingest.load import queries
from ingest.load.cassandra import execute
from ingest.load.transactions import user_months
from ingest.pipeline.recompute import record_and_recompute, undo_and_recompute
from ingest.vocabulary import JobKind
from tests.test_pipeline import upload, wait

pytestmark = [pytest.mark.cassandra, pytest.mark.ray, pytest.mark.pricesim]


def tables(session, user: str) -> dict[str, Any]:
    """Every derived row of the user: what the query API reads (not when it was written)."""

    def rows(cql: str, *params: Any) -> list[tuple]:
        found = execute(session, cql, (user, *params), fetch_size=5000)
        return sorted(
            tuple(sorted((k, repr(v)) for k, v in r.items() if k != "updated_at")) for r in found
        )

    years = sorted(
        {
            r["year"]
            for r in execute(session, "SELECT year FROM yearly_summary WHERE user_id = ?", (user,))
        }  # fmt: skip
    )
    view = []
    for month in sorted(user_months(session, user)):
        view += rows("SELECT * FROM transactions_view WHERE user_id = ? AND month = ?", month)
    return {
        "summary": rows("SELECT * FROM yearly_summary WHERE user_id = ?"),
        "balances": rows("SELECT * FROM balances WHERE user_id = ?"),
        "disposals": [
            rows("SELECT * FROM disposal_chunks WHERE user_id = ? AND year = ?", year)
            for year in years
        ],
        "findings": rows("SELECT * FROM finding_chunks WHERE user_id = ?"),
        "view": view,
    }


def test_a_deleted_upload_uploaded_again_gives_the_same_tables(ray_local, session, tmp_path):
    user = f"corr-{uuid.uuid4().hex[:8]}"
    path, peer = tmp_path / "binance.csv", tmp_path / "peer.csv"
    generate(3000, "binance", seed=7, out=path, peer_out=peer, years=2.0)
    first = wait(session, upload(session, user, path))
    alone = tables(session, user)
    peer_job = wait(session, upload(session, user, peer, fmt="koinly"))
    assert (first.status, peer_job.status) == ("succeeded", "succeeded")
    both = tables(session, user)
    assert both != alone

    correction, job_id = record_and_recompute(
        session, get_settings(), user, DeleteUpload(str(peer_job.job_id)), by="tester"
    )
    job = wait(session, job_id)
    assert (job.kind, job.status) == (JobKind.CORRECTION, "succeeded")
    assert job.summary["corrections"] == [str(correction.correction_id)]
    assert job.summary["tax"]["recomputed_assets"]  # the peer file's assets, named
    assert job.completed_stages == {"tax"}
    assert tables(session, user)["view"] == alone["view"]
    assert tables(session, user) == alone

    again = wait(session, upload(session, user, peer, fmt="koinly"))
    assert again.status == "succeeded"
    assert tables(session, user) == both
    # the correction stays recorded (and undoable): the rows are back through the new upload
    assert [c.correction_id for c in store.list_corrections(session, user)] == [
        correction.correction_id
    ]


# The page's two files (tests/browser/test_review_and_correct.py): every row has its fiat value.
KOINLY_HEADER = (
    "Date,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,Fee Currency,"
    "Net Worth Amount,Net Worth Currency,Label,Description,TxHash\n"
)
COINBASE = KOINLY_HEADER + (
    "2024-01-05 10:00:00 UTC,10000,USD,0.5,BTC,,,10000,USD,,buy,\n"
    "2024-02-01 09:00:00 UTC,0.25,BTC,10000,USD,,,10000,USD,,sell,\n"
    "2024-03-01 09:00:00 UTC,0.2,BTC,,,,,9000,USD,,to kraken,\n"
)
KRAKEN = KOINLY_HEADER + (
    "2024-03-03 10:00:00 UTC,,,0.2,BTC,,,9200,USD,,from coinbase,\n"
    "2024-05-01 10:00:00 UTC,,,1,ETH,,,3000,USD,,gift,\n"
    "2024-06-01 10:00:00 UTC,1.5,ETH,4500,USD,,,4500,USD,,sell eth,\n"
)


def listed(session, user: str, **filters: Any) -> dict[str, dict[str, Any]]:
    """tx_id -> the row GET /v1/transactions lists (queries.transactions_page), without when it
    was written."""
    rows, _ = queries.transactions_page(session, user, queries.TxFilter(**filters), 1000)
    return {r["tx_id"]: {k: v for k, v in r.items() if k != "updated_at"} for r in rows}


def gift_of(rows: dict[str, dict[str, Any]]) -> str:
    """The tx_id of kraken's ETH gift."""
    (tx,) = [t for t, r in rows.items() if (r["wallet"], r["received_asset"]) == ("kraken", "ETH")]
    return tx


def two_uploads(session, user: str, tmp_path) -> tuple[uuid.UUID, uuid.UUID]:
    ids = []
    for name, text in (("coinbase", COINBASE), ("kraken", KRAKEN)):
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        job = wait(session, upload(session, user, path, fmt="koinly", wallet=name))
        assert job.status == "succeeded"
        ids.append(job.job_id)
    return ids[0], ids[1]


def apply(session, user: str, change: Any) -> uuid.UUID:
    """Record a correction and wait for its job (succeeded); the correction's id."""
    correction, job_id = record_and_recompute(session, get_settings(), user, change, by="t")
    assert wait(session, job_id).status == "succeeded"
    return correction.correction_id


def undo(session, user: str, correction_id: uuid.UUID) -> None:
    _, job_id = undo_and_recompute(session, get_settings(), user, correction_id, by="t")
    assert wait(session, job_id).status == "succeeded"


def test_undoing_a_deleted_upload_or_an_ignore_lists_the_same_rows_as_before(
    ray_local, session, tmp_path
):
    user = f"corr-{uuid.uuid4().hex[:8]}"
    coinbase, kraken = two_uploads(session, user, tmp_path)
    before = listed(session, user)
    assert len(before) == 6

    deleted = apply(session, user, DeleteUpload(str(kraken)))
    assert {r["wallet"] for r in listed(session, user).values()} == {"coinbase"}
    undo(session, user, deleted)
    assert listed(session, user) == before

    gift = gift_of(before)
    ignored = apply(session, user, SetIgnored(gift))
    assert gift not in listed(session, user)
    undo(session, user, ignored)
    assert listed(session, user) == before


def test_an_added_row_is_listed_with_its_fields_an_edit_changes_its_row_and_deleting_it_unlists_it(
    ray_local, session, tmp_path
):
    user = f"corr-{uuid.uuid4().hex[:8]}"
    two_uploads(session, user, tmp_path)
    # a month and an asset-in-month no upload has: 2024-04 (the page adds this one)
    added_id = apply(
        session,
        user,
        AddTransaction(
            wallet="cold",
            timestamp=datetime(2024, 4, 10, 12, tzinfo=timezone.utc),
            type="buy",
            sent_asset="USD",
            sent_amount=Decimal("2500"),
            received_asset="ETH",
            received_amount=Decimal("1"),
            fiat_value=Decimal("2500"),
            fiat_currency="USD",
        ),
    )
    tx_id = manual_tx_id(user, added_id)
    row = listed(session, user)[tx_id]
    assert (row["wallet"], row["type"], row["received_asset"], row["received_amount"]) == (
        "cold",
        "buy",
        "ETH",
        Decimal("1"),
    )
    assert (row["value"], row["balance_after"]) == (Decimal("2500"), {"ETH": Decimal("1")})
    assert tx_id in listed(session, user, asset="ETH")

    gift = gift_of(listed(session, user))
    apply(session, user, EditTransaction(gift, label="gift", fiat_value=Decimal("3100"),
                                         fiat_currency="USD"))  # fmt: skip
    edited = listed(session, user)[gift]
    assert (edited["label"], edited["value"]) == ("gift", Decimal("3100"))

    apply(session, user, DeleteAddedTransaction(tx_id))
    assert tx_id not in listed(session, user)
