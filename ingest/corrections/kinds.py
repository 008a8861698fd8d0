"""The kinds of correction a user records, as plain frozen dataclasses, their validation and their
JSON form (what the store persists; never a pickle).

A correction names transactions by their stable `tx_id` (ingest.normalize.identity: user, source
format, the exchange's id or the row's content, occurrence; not the file name or line), so it
still applies after the same export is uploaded again.

Validation comes in two steps, each returning `Problem`s that name the field (the API maps them
to a 4xx): `problems(change)` checks the correction alone (shapes, types, amounts);
`problems_in_history(change, facts, recorded)` checks it against the corrected history it is
recorded on (the transaction exists, a type edit fits its sides, a marked transfer is a withdrawal
and a deposit of one asset in two wallets, an undo names a correction of the user).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from decimal import Context, Decimal, InvalidOperation
from typing import Any, ClassVar

import pyarrow as pa

from ingest.normalize.canonical import FIAT, TX_TYPES, TxType, plain_decimal
from ingest.normalize.identity import tx_id as stable_tx_id

FORMAT_VERSION = 1  # of the JSON bodies; raise it (and migrate in `change_from_json`) on change
MANUAL_SOURCE = "manual"  # `source` of a transaction added by hand
MAX_AMOUNT = Decimal(10) ** 20  # canonical amounts are decimal128(38, 18): 20 integer digits
_WIDE = Context(prec=60)  # room for every decimal128(38, 18) value
MAX_TEXT = 500  # a label, a description, a wallet name


@dataclass(frozen=True, slots=True)
class EditTransaction:
    """Set a transaction's type, label and/or stated fiat value. None: unchanged; label "":
    cleared. A fiat value comes with its currency."""

    kind: ClassVar[str] = "edit"
    tx_id: str
    type: str | None = None
    label: str | None = None
    fiat_value: Decimal | None = None
    fiat_currency: str | None = None


@dataclass(frozen=True, slots=True)
class SetCostBasis:
    """The cost basis of a deposit that came from outside the user's wallets ("I bought these for
    $X elsewhere"): the engine uses it instead of zero when the deposit is not a matched transfer."""

    kind: ClassVar[str] = "cost_basis"
    tx_id: str
    cost_basis: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class SetIgnored:
    """Ignore (True) or un-ignore (False) a transaction: an ignored one leaves the history."""

    kind: ClassVar[str] = "ignore"
    tx_id: str
    ignored: bool = True


@dataclass(frozen=True, slots=True)
class MarkTransfer:
    """This withdrawal and this deposit are one transfer between own wallets (a forced match)."""

    kind: ClassVar[str] = "mark_transfer"
    withdrawal_tx_id: str
    deposit_tx_id: str


@dataclass(frozen=True, slots=True)
class UnmarkTransfer:
    """This withdrawal and this deposit are not one transfer (a forbidden match)."""

    kind: ClassVar[str] = "unmark_transfer"
    withdrawal_tx_id: str
    deposit_tx_id: str


@dataclass(frozen=True, slots=True)
class AddTransaction:
    """A transaction the exchange never exported. Its tx_id is `manual_tx_id(user, correction)`."""

    kind: ClassVar[str] = "add"
    wallet: str
    timestamp: datetime
    type: str
    label: str | None = None
    sent_asset: str | None = None
    sent_amount: Decimal | None = None
    received_asset: str | None = None
    received_amount: Decimal | None = None
    fee_asset: str | None = None
    fee_amount: Decimal | None = None
    fiat_value: Decimal | None = None
    fiat_currency: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class DeleteAddedTransaction:
    """Delete a transaction added by hand (uploaded ones are ignored, not deleted)."""

    kind: ClassVar[str] = "delete_added"
    tx_id: str


@dataclass(frozen=True, slots=True)
class DeleteUpload:
    """An upload (its job id) was a mistake: its transactions leave the history, except those
    another upload that is not deleted also holds (the same transaction, the same tx_id)."""

    kind: ClassVar[str] = "delete_upload"
    upload_id: str


@dataclass(frozen=True, slots=True)
class RenameWallet:
    """Rows of wallet `old` belong to wallet `new`; when `new` exists the two names merge into
    one account (per-wallet pooling then pools them together)."""

    kind: ClassVar[str] = "rename_wallet"
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Undo:
    """Cancel an earlier correction of the same user (an Undo of an Undo restores its target)."""

    kind: ClassVar[str] = "undo"
    correction_id: uuid.UUID


Change = (
    EditTransaction
    | SetCostBasis
    | SetIgnored
    | MarkTransfer
    | UnmarkTransfer
    | AddTransaction
    | DeleteAddedTransaction
    | DeleteUpload
    | RenameWallet
    | Undo
)
KINDS: dict[str, type] = {
    cls.kind: cls
    for cls in (
        EditTransaction,
        SetCostBasis,
        SetIgnored,
        MarkTransfer,
        UnmarkTransfer,
        AddTransaction,
        DeleteAddedTransaction,
        DeleteUpload,
        RenameWallet,
        Undo,
    )
}


@dataclass(frozen=True, slots=True)
class Correction:
    """A change as recorded: by whom, when, in which order. `correction_id` is a time-based uuid
    (Cassandra timeuuid): a user's corrections are ordered by it."""

    correction_id: uuid.UUID
    user_id: str
    recorded_by: str
    recorded_at: datetime
    change: Change


def record(user_id: str, change: Change, *, by: str, at: datetime | None = None) -> Correction:
    """A new Correction with a fresh time-based id."""
    return Correction(uuid.uuid1(), user_id, by, at or datetime.now(timezone.utc), change)


def manual_tx_id(user_id: str, correction_id: uuid.UUID) -> str:
    """The stable id of the transaction an AddTransaction correction adds."""
    return stable_tx_id(user_id, MANUAL_SOURCE, f"m:{correction_id}")


# --- Validation ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class CorrectionError(ValueError):
    """A correction refused, with every problem found (each naming its field)."""

    def __init__(self, found: Sequence[Problem]):
        self.problems = tuple(found)
        super().__init__("; ".join(str(p) for p in self.problems))


# Which sides a transaction of each type has: (sends, receives). A type edit must fit the row.
SIDES: dict[str, tuple[bool, bool]] = {
    TxType.BUY.value: (True, True),
    TxType.SELL.value: (True, True),
    TxType.TRADE.value: (True, True),
    TxType.DEPOSIT.value: (False, True),
    TxType.INCOME.value: (False, True),
    TxType.WITHDRAWAL.value: (True, False),
    TxType.SPEND.value: (True, False),
    TxType.FEE.value: (False, False),  # a standalone fee: only the fee side
}


def _text(
    out: list[Problem], name: str, value: str | None, *, required: bool, existing: bool = False
) -> None:
    """`existing`: a name already in the data (a wallet to rename), taken as it is written."""
    if value is None or value == "":
        if required:
            out.append(Problem(name, "is required"))
    elif not isinstance(value, str):
        out.append(Problem(name, "must be text"))
    elif len(value) > MAX_TEXT:
        out.append(Problem(name, f"must be at most {MAX_TEXT} characters"))
    elif value != value.strip() and not existing:
        out.append(Problem(name, "must not begin or end with blanks"))


def _amount(out: list[Problem], name: str, value: Decimal | None, *, positive: bool) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal) or not value.is_finite():
        out.append(Problem(name, "must be a finite decimal number"))
    elif value < 0 or (positive and value == 0):
        out.append(Problem(name, "must be greater than 0" if positive else "must not be negative"))
    # quantized in a context wide enough for 20 + 18 digits (the default 28 raised
    # InvalidOperation on 11+ integer digits: a 500 the API fuzz test found)
    elif value >= MAX_AMOUNT or value != value.quantize(Decimal("1e-18"), context=_WIDE):
        out.append(Problem(name, "must have at most 20 integer and 18 decimal digits"))


def _currency(out: list[Problem], name: str, value: str | None, *, required: bool) -> None:
    if value is None:
        if required:
            out.append(Problem(name, "is required"))
    elif value not in FIAT:
        out.append(Problem(name, f"must be a fiat currency code ({', '.join(sorted(FIAT))})"))


def _side(out: list[Problem], name: str, asset: str | None, amount: Decimal | None) -> None:
    _text(out, f"{name}_asset", asset, required=amount is not None)
    _amount(out, f"{name}_amount", amount, positive=True)
    if asset and amount is None:
        out.append(Problem(f"{name}_amount", f"is required with {name}_asset"))


def problems(change: Change) -> list[Problem]:
    """What is wrong with the correction on its own; [] when it is well formed."""
    out: list[Problem] = []
    if isinstance(change, EditTransaction):
        _text(out, "tx_id", change.tx_id, required=True)
        if change.type is not None and change.type not in TX_TYPES:
            out.append(Problem("type", f"must be one of {', '.join(sorted(TX_TYPES))}"))
        if change.label != "":
            _text(out, "label", change.label, required=False)
        _amount(out, "fiat_value", change.fiat_value, positive=False)
        _currency(
            out, "fiat_currency", change.fiat_currency, required=change.fiat_value is not None
        )
        if change.fiat_currency is not None and change.fiat_value is None:
            out.append(Problem("fiat_value", "is required with fiat_currency"))
        if all(
            v is None for v in (change.type, change.label, change.fiat_value, change.fiat_currency)
        ):
            out.append(Problem("type", "nothing to change: give type, label or fiat_value"))
    elif isinstance(change, SetCostBasis):
        _text(out, "tx_id", change.tx_id, required=True)
        if change.cost_basis is None:
            out.append(Problem("cost_basis", "is required"))
        _amount(out, "cost_basis", change.cost_basis, positive=False)
        _currency(out, "currency", change.currency, required=True)
    elif isinstance(change, SetIgnored):
        _text(out, "tx_id", change.tx_id, required=True)
        if not isinstance(change.ignored, bool):
            out.append(Problem("ignored", "must be true or false"))
    elif isinstance(change, (MarkTransfer, UnmarkTransfer)):
        _text(out, "withdrawal_tx_id", change.withdrawal_tx_id, required=True)
        _text(out, "deposit_tx_id", change.deposit_tx_id, required=True)
        if change.withdrawal_tx_id == change.deposit_tx_id:
            out.append(Problem("deposit_tx_id", "must be another transaction than the withdrawal"))
    elif isinstance(change, AddTransaction):
        _added_problems(out, change)
    elif isinstance(change, DeleteAddedTransaction):
        _text(out, "tx_id", change.tx_id, required=True)
    elif isinstance(change, DeleteUpload):
        try:
            uuid.UUID(change.upload_id)
        except (ValueError, TypeError, AttributeError):
            out.append(Problem("upload_id", "must be an upload's job id (a uuid)"))
    elif isinstance(change, RenameWallet):
        _text(out, "old", change.old, required=True, existing=True)
        _text(out, "new", change.new, required=True)
        if change.old == change.new:
            out.append(Problem("new", "must differ from old"))
    elif isinstance(change, Undo):
        if not isinstance(change.correction_id, uuid.UUID):
            out.append(Problem("correction_id", "must be a correction's id (a uuid)"))
    else:
        out.append(Problem("kind", f"unknown correction kind {type(change).__name__}"))
    return out


def _added_problems(out: list[Problem], change: AddTransaction) -> None:
    _text(out, "wallet", change.wallet, required=True)
    if not isinstance(change.timestamp, datetime) or change.timestamp.tzinfo is None:
        out.append(Problem("timestamp", "must be a date and time with its zone"))
    if change.type not in TX_TYPES:
        out.append(Problem("type", f"must be one of {', '.join(sorted(TX_TYPES))}"))
    _text(out, "label", change.label, required=False)
    _text(out, "description", change.description, required=False)
    _side(out, "sent", change.sent_asset, change.sent_amount)
    _side(out, "received", change.received_asset, change.received_amount)
    _side(out, "fee", change.fee_asset, change.fee_amount)
    _amount(out, "fiat_value", change.fiat_value, positive=False)
    _currency(out, "fiat_currency", change.fiat_currency, required=change.fiat_value is not None)
    if change.type in SIDES:
        sends, receives = SIDES[change.type]
        has_fee = change.fee_amount is not None
        for name, wanted, has in (
            ("sent", sends, change.sent_amount is not None),
            ("received", receives, change.received_amount is not None),
        ):
            if wanted and not has:
                out.append(Problem(f"{name}_amount", f"is required for a {change.type}"))
            elif has and not wanted:
                out.append(Problem(f"{name}_amount", f"must be empty for a {change.type}"))
        if change.type == TxType.FEE.value and not has_fee:
            out.append(Problem("fee_amount", "is required for a fee"))


@dataclass(frozen=True, slots=True)
class TxFacts:
    """What validation needs to know of one transaction of the (corrected) history."""

    type: str
    wallet: str
    sends: str | None  # sent asset
    sent: Decimal | None
    receives: str | None  # received asset
    received: Decimal | None
    source: str


def facts_of(history: pa.Table) -> dict[str, TxFacts]:
    """tx_id -> TxFacts of a canonical table."""
    cols = [
        history.column(c).to_pylist()
        for c in (
            "tx_id",
            "type",
            "wallet",
            "sent_asset",
            "sent_amount",
            "received_asset",
            "received_amount",
            "source",
        )
    ]
    return {row[0]: TxFacts(*row[1:]) for row in zip(*cols)}


def problems_in_history(
    change: Change,
    facts: Mapping[str, TxFacts],
    recorded: Sequence[Correction] = (),
    *,
    uploads: frozenset[str] = frozenset(),
) -> list[Problem]:
    """What is wrong with recording `change` on the corrected history `facts` (what the user sees
    now), given the user's `recorded` corrections and the ids of their `uploads`."""
    out = problems(change)
    if out:
        return out

    def known(name: str, tx: str) -> TxFacts | None:
        found = facts.get(tx)
        if found is None:
            out.append(Problem(name, f"no transaction {tx} in the history"))
        return found

    if isinstance(change, EditTransaction):
        row = known("tx_id", change.tx_id)
        if row is not None and change.fiat_value is not None:
            if change.fiat_currency in (row.sends, row.receives):
                out.append(
                    Problem(
                        "fiat_value",
                        f"the row's {change.fiat_currency} side is its value: edit that amount "
                        "instead (add the row corrected and ignore this one)",
                    )
                )
        if row is not None and change.type is not None:
            wanted = SIDES[change.type]
            has = (row.sends is not None, row.receives is not None)
            if wanted != has:
                out.append(
                    Problem(
                        "type",
                        f"a {change.type} needs {_sides_text(wanted)}; this row has "
                        f"{_sides_text(has)}",
                    )
                )
    elif isinstance(change, SetCostBasis):
        row = known("tx_id", change.tx_id)
        if row is not None and row.type != TxType.DEPOSIT.value:
            out.append(Problem("tx_id", f"is a {row.type}: a cost basis is set on a deposit"))
    elif isinstance(change, SetIgnored):
        if change.ignored:
            known("tx_id", change.tx_id)
    elif isinstance(change, (MarkTransfer, UnmarkTransfer)):
        w = known("withdrawal_tx_id", change.withdrawal_tx_id)
        d = known("deposit_tx_id", change.deposit_tx_id)
        if w is not None and w.type != TxType.WITHDRAWAL.value:
            out.append(Problem("withdrawal_tx_id", f"is a {w.type}, not a withdrawal"))
        if d is not None and d.type != TxType.DEPOSIT.value:
            out.append(Problem("deposit_tx_id", f"is a {d.type}, not a deposit"))
        if w is not None and d is not None and not out:
            if w.sends != d.receives:
                out.append(
                    Problem(
                        "deposit_tx_id", f"receives {d.receives}, the withdrawal sends {w.sends}"
                    )
                )
            elif w.wallet == d.wallet:
                out.append(Problem("deposit_tx_id", f"is in the withdrawal's wallet {w.wallet}"))
            elif (
                isinstance(change, MarkTransfer)
                and w.sent is not None
                and d.received is not None
                and d.received > w.sent
            ):
                out.append(
                    Problem(
                        "deposit_tx_id",
                        f"receives {plain_decimal(d.received)} {d.receives}, more than the "
                        f"withdrawal sends ({plain_decimal(w.sent)})",
                    )
                )
    elif isinstance(change, DeleteAddedTransaction):
        row = known("tx_id", change.tx_id)
        if row is not None and row.source != MANUAL_SOURCE:
            out.append(Problem("tx_id", "was uploaded, not added by hand: ignore it instead"))
    elif isinstance(change, DeleteUpload):
        if change.upload_id not in uploads:
            out.append(Problem("upload_id", f"no upload {change.upload_id} of this user"))
    elif isinstance(change, RenameWallet):
        if not any(f.wallet == change.old for f in facts.values()):
            out.append(Problem("old", f"no transaction in wallet {change.old!r}"))
    elif isinstance(change, Undo):
        if not any(c.correction_id == change.correction_id for c in recorded):
            out.append(Problem("correction_id", f"no correction {change.correction_id}"))
    return out


def _sides_text(sides: tuple[bool, bool]) -> str:
    parts = [name for name, has in zip(("a sent side", "a received side"), sides) if has]
    return " and ".join(parts) or "no sent or received side"


def require_valid(change: Change, *args: Any, **kwargs: Any) -> None:
    """Raise CorrectionError with every problem of `problems_in_history`."""
    found = problems_in_history(change, *args, **kwargs)
    if found:
        raise CorrectionError(found)


# --- JSON ------------------------------------------------------------------------------------


def change_to_json(change: Change) -> str:
    """The change's fields as a JSON object: decimals as exact text, times as ISO 8601 UTC."""
    body: dict[str, Any] = {}
    for f in fields(change):
        value = getattr(change, f.name)
        if isinstance(value, Decimal):
            value = plain_decimal(value)
        elif isinstance(value, datetime):
            value = value.astimezone(timezone.utc).isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        body[f.name] = value
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def recorded_change(correction: Correction) -> dict[str, Any]:
    """What the audit list shows of a correction's change: its fields (change_to_json) and, for
    an add, the tx_id of the row it added (not a field: derived from the correction), so the
    page can offer to delete that row."""
    body: dict[str, Any] = json.loads(change_to_json(correction.change))
    if isinstance(correction.change, AddTransaction):
        body["tx_id"] = manual_tx_id(correction.user_id, correction.correction_id)
    return body


_DECIMALS = {"fiat_value", "cost_basis", "sent_amount", "received_amount", "fee_amount"}


def change_from_json(kind: str, text: str, version: int = FORMAT_VERSION) -> Change:
    """The change a stored (kind, body) holds; ValueError naming what does not decode."""
    if version != FORMAT_VERSION:
        raise ValueError(f"correction body version {version} is not {FORMAT_VERSION}")
    cls = KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown correction kind {kind!r}")
    body = json.loads(text)
    names = {f.name for f in fields(cls)}
    if set(body) - names:
        raise ValueError(f"{kind}: unknown fields {sorted(set(body) - names)}")
    for name, value in body.items():
        if value is None:
            continue
        try:
            if name in _DECIMALS:
                body[name] = Decimal(value)
            elif name == "timestamp":
                body[name] = datetime.fromisoformat(value)
            elif name == "correction_id":
                body[name] = uuid.UUID(value)
        except (InvalidOperation, ValueError) as exc:
            raise ValueError(f"{kind}.{name}: {value!r} does not decode ({exc})") from exc
    change: Change = cls(**body)
    return change
