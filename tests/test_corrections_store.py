"""Corrections in the real Cassandra node (migration 012): recorded in order with who and when,
read back exactly, undone by a recorded Undo, listed newest first for the audit; which uploads
hold a row (their published history chunks), as deleting an upload needs it."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from ingest.corrections import store
from ingest.corrections.kinds import (
    AddTransaction,
    CorrectionError,
    DeleteUpload,
    EditTransaction,
    RenameWallet,
    SetCostBasis,
    SetIgnored,
    record,
)
from ingest.corrections.overlay import active
from ingest.load import history_chunks
from ingest.load.cassandra import execute
from ingest.normalize.canonical import CANONICAL_SCHEMA

pytestmark = pytest.mark.cassandra
AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)  # Cassandra keeps milliseconds


def test_corrections_round_trip_in_recorded_order_and_an_undo_is_recorded_too(session):
    user = f"corr-{uuid.uuid4().hex[:8]}"
    changes = [
        EditTransaction("t1", type="income", label="staking"),
        SetCostBasis("t2", Decimal("12345.678901234567890123"), "USD"),
        AddTransaction(
            "cold",
            AT,
            "income",
            label="airdrop",
            received_asset="ARB",
            received_amount=Decimal("0.000000000000000001"),
        ),  # fmt: skip
        DeleteUpload(str(uuid.uuid4())),
        RenameWallet("Kraken ", "kraken"),
        SetIgnored("t3"),
    ]
    written = [record(user, change, by="alice", at=AT) for change in changes]
    for correction in written:
        store.put(session, correction)
    assert store.list_corrections(session, f"{user}-other") == []
    assert store.list_corrections(session, user) == written

    undo = store.undo(session, user, written[1].correction_id, by="bob")
    read = store.list_corrections(session, user)
    assert read[:-1] == written and read[-1].correction_id == undo.correction_id
    assert (read[-1].recorded_by, read[-1].change.correction_id) == (
        "bob",
        written[1].correction_id,
    )
    assert active(read) == [c for c in written if c is not written[1]]

    entries = store.audit(session, user)
    assert [e.correction.correction_id for e in entries] == [
        c.correction_id for c in reversed(read)
    ]
    assert [e.in_effect for e in entries] == [True, True, True, True, True, False, True]


def test_a_malformed_correction_or_an_undo_of_nothing_is_refused_and_not_stored(session):
    user = f"corr-{uuid.uuid4().hex[:8]}"
    with pytest.raises(CorrectionError, match="fiat_currency"):
        store.put(session, record(user, EditTransaction("t1", fiat_value=Decimal(1)), by="a"))
    with pytest.raises(CorrectionError, match="correction_id"):
        store.undo(session, user, uuid.uuid1(), by="a")
    assert store.list_corrections(session, user) == []


def test_a_stored_body_that_does_not_decode_is_reported_naming_the_correction(session):
    user = f"corr-{uuid.uuid4().hex[:8]}"
    bad = uuid.uuid1()
    execute(
        session,
        store.INSERT,
        (user, bad, "cost_basis", 1, '{"tx_id":"t","cost_basis":"ten","currency":"USD"}', "a", AT),
    )
    with pytest.raises(ValueError, match=str(bad)):
        store.list_corrections(session, user)


def test_a_row_two_uploads_stored_lists_both(session):
    """Which uploads hold a row comes from their published history chunks; a retried store
    task (the same chunks again) changes nothing, and an unpublished chunk holds nothing."""
    user = f"corr-{uuid.uuid4().hex[:8]}"
    first, second, unpublished = uuid.uuid1(), uuid.uuid1(), uuid.uuid1()
    store_upload(session, user, first, ["t1", "t2"])
    store_upload(session, user, second, ["t2", "t3"])
    store_upload(session, user, second, ["t2", "t3"])  # a retried task: the same chunks
    history_chunks.write_chunks(session, user, unpublished, 0, history_of(user, ["t1", "t4"]))
    assert store.uploads_of(session, user, [first, second]) == {
        "t1": frozenset({str(first)}),
        "t2": frozenset({str(first), str(second)}),
        "t3": frozenset({str(second)}),
    }
    assert store.uploads_of(session, user, [first]) == {
        "t1": frozenset({str(first)}),
        "t2": frozenset({str(first)}),
    }
    delete_first = record(user, DeleteUpload(str(first)), by="a")
    assert store.deleted_upload_holders(session, user, [delete_first]) == {
        "t1": frozenset({str(first)}),
        "t2": frozenset({str(first), str(second)}),
    }
    assert store.deleted_upload_holders(session, user, []) == {}


def history_of(user: str, tx_ids: list[str]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "tx_id": tx,
                "user_id": user,
                "wallet": "w",
                "timestamp": AT,
                "type": "deposit",
                "received_asset": "BTC",
                "received_amount": Decimal("1"),
                "source": "koinly",
                "source_file": "a.csv",
                "source_line": n + 2,
            }
            for n, tx in enumerate(tx_ids)
        ],
        schema=CANONICAL_SCHEMA,
    )


def store_upload(session, user: str, upload_id: uuid.UUID, tx_ids: list[str]) -> None:
    """What the store stage does with an upload's rows: its chunks, written then published."""
    keys = history_chunks.write_chunks(session, user, upload_id, 0, history_of(user, tx_ids))
    history_chunks.publish(session, user, keys)
