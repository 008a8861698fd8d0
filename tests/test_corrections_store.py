"""Corrections in the real Cassandra node (migration 012): recorded in order with who and when,
read back exactly, undone by a recorded Undo, listed newest first for the audit; which uploads
hold a row, as deleting an upload needs it."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal

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
from ingest.load.cassandra import execute

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
    user = f"corr-{uuid.uuid4().hex[:8]}"
    first, second = uuid.uuid4(), uuid.uuid4()
    assert store.record_upload_rows(session, user, first, ["t1", "t2"]) == 2
    store.record_upload_rows(session, user, second, ["t2", "t3"])
    store.record_upload_rows(session, user, second, ["t2"])  # a retried task: same rows
    assert store.uploads_of(session, user, [first, second]) == {
        "t1": frozenset({str(first)}),
        "t2": frozenset({str(first), str(second)}),
        "t3": frozenset({str(second)}),
    }
