"""The corrections API's request models and refusals, with no services: each posted kind's body
becomes its kinds.py dataclass exactly; a bad field is a 422 naming it (pydantic's type checks and
the kinds' own checks alike, in the one error shape plus `fields`); a transaction the history does
not hold is told apart (404) from one that does not fit (422); the audit list's one-line
summaries; paging of the audit list."""

from __future__ import annotations

import uuid
from dataclasses import fields as dataclass_fields
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError

from ingest.corrections.current import CurrentHistory, conflicts, missing_targets
from ingest.corrections.describe import summary, transaction_text
from ingest.corrections.kinds import (
    KINDS,
    AddTransaction,
    DeleteAddedTransaction,
    DeleteUpload,
    EditTransaction,
    MarkTransfer,
    RenameWallet,
    SetCostBasis,
    SetIgnored,
    TxFacts,
    Undo,
    UnmarkTransfer,
    change_to_json,
    record,
)
from ingest.corrections.store import AuditEntry
from serve.corrections_api import checked, corrections_page
from serve.errors import ApiError, install_error_handlers
from serve.models import CORRECTION_MODELS, CorrectionRequest, change_of

D = Decimal
AT = datetime(2024, 3, 1, 14, 5, tzinfo=timezone.utc)
W, DEP, BUY = "w" * 32, "d" * 32, "b" * 32

# One body of each kind a client posts, and the dataclass it stands for.
BODIES: list[tuple[dict[str, Any], object]] = [
    (
        {"kind": "edit", "tx_id": BUY, "type": "income", "label": "staking"},
        EditTransaction(BUY, type="income", label="staking"),
    ),
    (
        {"kind": "cost_basis", "tx_id": DEP, "cost_basis": "1234.50", "currency": "USD"},
        SetCostBasis(DEP, D("1234.50"), "USD"),
    ),
    ({"kind": "ignore", "tx_id": BUY, "ignored": True}, SetIgnored(BUY, True)),
    (
        {"kind": "mark_transfer", "withdrawal_tx_id": W, "deposit_tx_id": DEP},
        MarkTransfer(W, DEP),
    ),
    (
        {"kind": "unmark_transfer", "withdrawal_tx_id": W, "deposit_tx_id": DEP},
        UnmarkTransfer(W, DEP),
    ),
    (
        {
            "kind": "add",
            "wallet": "cold",
            "timestamp": "2024-03-01T14:05:00Z",
            "type": "buy",
            "sent_asset": "USD",
            "sent_amount": "100",
            "received_asset": "BTC",
            "received_amount": "0.000000000000000001",
        },
        AddTransaction(
            "cold",
            AT,
            "buy",
            sent_asset="USD",
            sent_amount=D("100"),
            received_asset="BTC",
            received_amount=D("0.000000000000000001"),
        ),
    ),
    ({"kind": "delete_added", "tx_id": BUY}, DeleteAddedTransaction(BUY)),
    (
        {"kind": "rename_wallet", "old": "Kraken ", "new": "kraken"},
        RenameWallet("Kraken ", "kraken"),
    ),
]
REQUEST = TypeAdapter(CorrectionRequest)


def test_every_posted_kind_has_a_model_with_its_dataclass_fields():
    assert set(CORRECTION_MODELS) == set(KINDS) - {"delete_upload", "undo"}
    for kind, model in CORRECTION_MODELS.items():
        fields = set(model.model_fields) - {"kind"}
        assert fields == {f.name for f in dataclass_fields(KINDS[kind])}, kind


@pytest.mark.parametrize(("body", "change"), BODIES, ids=[b["kind"] for b, _ in BODIES])
def test_a_body_becomes_its_kinds_dataclass_exactly(body, change):
    made = change_of(REQUEST.validate_python(body))
    assert made == change
    assert change_to_json(made) == change_to_json(change)  # decimals kept exact


def app_taking_corrections() -> TestClient:
    """A FastAPI app with the API's error handlers and one route taking the request body."""
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/c")
    def take(body: CorrectionRequest) -> dict:
        return {"kind": change_of(body).kind}

    return TestClient(app)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"kind": "cost_basis", "tx_id": DEP, "cost_basis": "lots", "currency": "USD"},
            "cost_basis",
        ),
        ({"kind": "cost_basis", "tx_id": DEP, "cost_basis": "1", "currency": None}, "currency"),
        ({"kind": "cost_basis", "cost_basis": "1", "currency": "USD"}, "tx_id"),
        (
            {"kind": "mark_transfer", "withdrawal_tx_id": None, "deposit_tx_id": DEP},
            "withdrawal_tx_id",
        ),
        ({"kind": "add", "wallet": "w", "timestamp": "then", "type": "buy"}, "timestamp"),
        ({"kind": "edit", "tx_id": BUY, "colour": "red"}, "colour"),
        ({"kind": "refund", "tx_id": BUY}, "kind"),
        ({"tx_id": BUY}, "kind"),
    ],
)
def test_a_body_pydantic_refuses_is_a_422_naming_the_field(body, field):
    resp = app_taking_corrections().post("/c", json=body)
    assert resp.status_code == 422
    answer = resp.json()
    assert answer["error"]["code"] == "invalid_request"
    assert set(answer["error"]) == {"code", "message"}  # the one shape, fields beside it
    assert [f["field"] for f in answer["fields"]] == [field]
    assert answer["fields"][0]["message"]
    assert field in answer["error"]["message"]


def test_a_missing_or_null_required_field_reads_is_required():
    resp = app_taking_corrections().post(
        "/c", json={"kind": "cost_basis", "tx_id": DEP, "cost_basis": "1", "currency": None}
    )
    assert resp.json()["fields"] == [{"field": "currency", "message": "is required"}]


FACTS = {
    W: TxFacts("withdrawal", "kraken", "BTC", D("1"), None, None, "kraken"),
    DEP: TxFacts("deposit", "ledger", None, None, "BTC", D("0.999"), "kraken"),
    BUY: TxFacts("buy", "kraken", "USD", D("100"), "BTC", D("0.002"), "kraken"),
}
NOW = CurrentHistory(FACTS, frozenset({"i" * 32}))


def refusal(change, now=NOW, recorded=(), uploads=frozenset()) -> tuple[int, list[dict]]:
    with pytest.raises(ApiError) as caught:
        checked(change, now, list(recorded), uploads)
    return caught.value.status, caught.value.fields or []


def test_an_unknown_transaction_is_a_404_naming_the_field():
    other = "o" * 32  # another user's tx_id is not in this user's history either
    assert refusal(MarkTransfer(W, other)) == (
        404,
        [{"field": "deposit_tx_id", "message": f"no transaction {other} in your history"}],
    )
    assert refusal(SetCostBasis(other, D(1), "USD"))[0] == 404


def test_a_transaction_that_does_not_fit_is_a_422_naming_the_field():
    status, fields = refusal(SetCostBasis(BUY, D(1), "USD"))
    assert status == 422 and [f["field"] for f in fields] == ["tx_id"]
    status, fields = refusal(MarkTransfer(DEP, W))
    assert status == 422 and {f["field"] for f in fields} == {"withdrawal_tx_id", "deposit_tx_id"}
    status, fields = refusal(DeleteAddedTransaction(BUY))  # uploaded: ignore it instead
    assert status == 422 and "ignore it instead" in fields[0]["message"]


def test_un_ignoring_names_an_ignored_transaction():
    checked(SetIgnored("i" * 32, False), NOW, [])  # ignored: not in the history, still known
    assert refusal(SetIgnored(BUY, False)) == (
        422,
        [{"field": "tx_id", "message": "is not ignored"}],
    )
    assert refusal(SetIgnored("z" * 32, False))[0] == 404
    assert refusal(SetIgnored("i" * 32, True)) == (
        422,
        [{"field": "tx_id", "message": "is ignored already"}],
    )
    assert missing_targets(SetIgnored("i" * 32, True), NOW) == []
    assert conflicts(SetIgnored(BUY, True), NOW) == []


def test_deleting_an_upload_checks_it_is_one_of_the_users():
    upload = str(uuid.uuid4())
    checked(DeleteUpload(upload), NOW, [], frozenset({upload}))
    assert refusal(DeleteUpload(upload))[0] == 422


def test_summaries_name_transactions_by_what_they_are():
    assert transaction_text(DEP, FACTS) == "the deposit of 0.999 BTC in ledger"
    assert transaction_text(BUY, FACTS) == "the buy of 100 USD for 0.002 BTC in kraken"
    assert transaction_text("f" * 32, FACTS) == f"transaction {'f' * 12}…"
    assert summary(MarkTransfer(W, DEP), FACTS) == (
        "Mark the withdrawal of 1 BTC in kraken and the deposit of 0.999 BTC in ledger as one "
        "transfer between your wallets"
    )
    assert summary(SetCostBasis(DEP, D("1234.50"), "USD"), FACTS) == (
        "Cost basis of the deposit of 0.999 BTC in ledger set to 1234.50 USD"
    )
    assert summary(EditTransaction(BUY, label=""), FACTS) == (
        "Edit the buy of 100 USD for 0.002 BTC in kraken: label cleared"
    )
    for _, change in BODIES:
        assert "\n" not in summary(change, FACTS)  # type: ignore[arg-type]
    ignored = record("u", SetIgnored(BUY), by="u")
    undo = record("u", Undo(ignored.correction_id), by="u")
    recorded = {c.correction_id: c for c in (ignored, undo)}
    assert summary(undo.change, FACTS, recorded) == (
        "Undo: ignore the buy of 100 USD for 0.002 BTC in kraken"
    )
    assert summary(Undo(undo.correction_id), FACTS, recorded) == (
        "Undo: undo: ignore the buy of 100 USD for 0.002 BTC in kraken"
    )


def test_the_audit_list_pages_newest_first_after_the_last_shown():
    entries = [AuditEntry(record("u", SetIgnored(f"{i:032d}"), by="u"), True) for i in range(5)]
    first, last = corrections_page(entries, 2, None)
    assert first == entries[:2] and last == entries[1].correction.correction_id
    second, last = corrections_page(entries, 2, last)
    third, end = corrections_page(entries, 2, last)
    assert second == entries[2:4] and third == entries[4:] and end is None
    with pytest.raises(ApiError) as caught:
        corrections_page(entries, 2, uuid.uuid1())
    assert caught.value.status == 400


def test_a_non_finite_or_negative_amount_is_refused_naming_it():
    with pytest.raises(ValidationError):
        REQUEST.validate_python(
            {"kind": "cost_basis", "tx_id": DEP, "cost_basis": "NaN", "currency": "USD"}
        )
    assert refusal(SetCostBasis(DEP, D("-1"), "USD")) == (
        422,
        [{"field": "cost_basis", "message": "must not be negative"}],
    )
