"""Valued transactions (Arrow) -> plain per-asset event lists, the only input of the tax methods.

Conventions (each is what the leading tools do; the tests pin them):

- A fee is separate from the traded amounts: a row moves ``+received - sent - fee`` in its
  wallet. Its fiat value ``fee_value`` is a transaction cost, and a fee paid in crypto is also a
  disposal of that crypto in its own right (proceeds = fee_value, basis from lots; HMRC
  CRYPTO22280, Koinly, rp2). A crypto fee the valuation left unpriced is valued at the row's own
  unit price of that asset when the row trades it (offline files state no fee value).
- buy (fiat -> crypto): acquisition, cost = value + fee_value.
- sell (crypto -> fiat): disposal, proceeds = value - fee_value.
- trade (crypto -> crypto): disposal of the sent asset at fair value ``value`` less the fee (the fee
  is a selling cost), and acquisition of the received asset at the same fair value ``value``.
  The valued table carries one value per row, so both legs use it.
- spend: disposal, proceeds = value - fee_value. income (staking, mining, ...): ordinary income at
  ``value``, which is also the units' cost basis. fee (standalone): disposal of the fee asset.
- an income row that only sends is an income reversal (a reward taken back): its units leave
  the pool with no disposal line (REMOVE, purpose ``income_reversal``) and the engine records
  income of -value under the row's label.
- deposit / withdrawal are transfer legs, reconciled first (ingest.tax.reconcile):
  a matched pair moves lots between the user's wallets (SEND at the withdrawal, RECEIVE at the
  deposit); the amount lost on the way is a ``transfer_fee`` disposal valued at the withdrawal's
  unit price. A withdrawal's fee leaves the sending wallet before the transferred units, whether
  the file counts it inside Sent (the units lost on the way) or in the fee column. An unmatched withdrawal leaves the books as a non-taxable transfer out (REMOVE,
  flagged ``unmatched_withdrawal``, as Koinly does); an unmatched deposit is an acquisition at zero
  cost basis flagged ``unmatched_deposit`` (the basis is unknown, not guessed: disposals of those
  units are then flagged ``missing_cost_basis``), unless the user stated its cost basis (a
  correction): then an acquisition at that basis.
- Fiat sides are money, not lots: they produce no events (foreign-currency gains are out of scope).
- A value the tax needs but the row lacks (price_status != ok, no value) is used as 0 and the event
  is flagged ``missing_price`` (plus one finding per transaction): rows are never dropped.

Each transaction type has one rule (``_RULES``: type -> function) that turns a row into events;
what every type shares follows it (a crypto fee's own disposal, the findings, legs and phases:
``_EventBuilder.row``).

Events of one asset sort by (time, phase, tx_id, leg); phase 0 for a transaction that brings the
asset in, 1 otherwise, so at equal timestamps inflows come before outflows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from operator import attrgetter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest.normalize.canonical import (
    FIAT,
    INCOME_LABELS,
    SIDE_COLUMNS,
    TX_TYPES,
    TxType,
    plain_decimal,
)
from ingest.tax.numbers import QUANTUM, ZERO, tax_context
from ingest.tax.reconcile import DEPOSIT, WITHDRAWAL, TransferLeg, TransferMatch
from ingest.tax.records import Finding, Flag
from ingest.tax.years import datetime_from_micros


class EventKind(str, Enum):
    ACQUIRE = "acquire"  # units in at a cost (buy, trade's received side, unmatched deposit)
    INCOME = "income"  # units in as ordinary income; the value is the income and the basis
    DISPOSE = "dispose"  # units out for proceeds (sell, trade's sent side, spend, fees)
    SEND = "send"  # matched transfer leaving a wallet: its lots travel
    RECEIVE = "receive"  # matched transfer arriving: the travelling lots join this wallet
    REMOVE = "remove"  # unmatched withdrawal / income reversal: units leave, not a disposal


INCOME_REVERSAL = "income_reversal"  # the purpose of a REMOVE that cancels income

INFLOW_KINDS = frozenset({EventKind.ACQUIRE, EventKind.INCOME, EventKind.RECEIVE})


@dataclass(slots=True)
class Event:
    asset: str
    kind: EventKind
    time_us: int  # UTC microseconds
    phase: int  # 0: this tx brings the asset in; 1: it only takes it out
    tx_id: str
    leg: int  # position within the transaction (stable line ids)
    wallet: str
    quantity: Decimal  # > 0
    amount: Decimal | None  # ACQUIRE/INCOME: cost (= income); DISPOSE: proceeds; None: unknown
    purpose: str  # buy trade sell spend fee transfer_fee income income_reversal deposit withdrawal
    label: str | None = None  # income kind
    transfer_id: str | None = None  # SEND/RECEIVE: the withdrawal's tx_id
    counter_wallet: str | None = None  # SEND: destination, RECEIVE: origin
    flags: frozenset[str] = frozenset()
    costs: Decimal = ZERO  # DISPOSE: incidental costs of disposal already taken off `amount`


def event_order(event: Event) -> tuple[int, int, str, int]:
    return (event.time_us, event.phase, event.tx_id, event.leg)


REQUIRED_COLUMNS = (
    "tx_id",
    "wallet",
    "timestamp",
    "type",
    "label",
    *SIDE_COLUMNS,
    "tx_hash",
    "value",
    "fee_value",
    "price",
    "price_asset",
    "price_status",
)
_FIAT_SET = pa.array(sorted(FIAT))
# plain constants: Enum attribute access is a descriptor call, too slow for the row loop
_BUY, _SELL, _TRADE, _SPEND = (
    TxType.BUY.value,
    TxType.SELL.value,
    TxType.TRADE.value,
    TxType.SPEND.value,
)
_DEPOSIT, _WITHDRAWAL = TxType.DEPOSIT.value, TxType.WITHDRAWAL.value
_INCOME, _FEE = TxType.INCOME.value, TxType.FEE.value
_EMPTY: frozenset[str] = frozenset()
_MISSING = frozenset({Flag.MISSING_PRICE})
_EXCHANGES = frozenset({_BUY, _SELL, _TRADE, _SPEND})


@dataclass(slots=True)
class TxColumns:
    """The columns the engine reads, rows sorted by (timestamp, tx_id), as Python lists.

    Only what the tax uses is converted (Decimal conversion is the costly part): a side's amount
    is None unless the side is crypto with a positive amount (fiat sides are money, not lots),
    the fee amount and fee value are None unless there is a fee. Rarely needed columns (price,
    price_asset, price_status) stay Arrow and are read per row on demand."""

    tx_id: list[str]
    wallet: list[str]
    time_us: list[int]
    type: list[str]
    label: list[str | None]
    sent_asset: list[str | None]
    sent_amount: list[Decimal | None]
    received_asset: list[str | None]
    received_amount: list[Decimal | None]
    fee_asset: list[str | None]
    fee_amount: list[Decimal | None]
    fee_value: list[Decimal | None]
    value: list[Decimal | None]
    tx_hash: list[str | None]
    table: pa.Table  # the sorted table, for the on-demand columns

    def __len__(self) -> int:
        return len(self.tx_id)

    def cell(self, name: str, row: int) -> Any:
        """The Python value of one cell: its type is the column's (Arrow's as_py is untyped)."""
        return self.table.column(name)[row].as_py()


def _crypto_side(asset: pa.ChunkedArray, amount: pa.ChunkedArray) -> pa.Array:
    crypto = pc.and_(
        pc.invert(pc.is_in(pc.utf8_upper(asset), value_set=_FIAT_SET)),
        pc.greater(amount, pa.scalar(0, amount.type)),
    )
    return pc.fill_null(pc.and_(pc.is_valid(asset), crypto), False)


def read_columns(tx: pa.Table) -> TxColumns:
    missing = [name for name in REQUIRED_COLUMNS if name not in tx.column_names]
    if missing:
        raise ValueError(f"valued transactions table lacks columns: {', '.join(missing)}")
    if tx.num_rows:
        order = pc.sort_indices(tx, sort_keys=[("timestamp", "ascending"), ("tx_id", "ascending")])
        tx = tx.take(order)
    column = tx.column

    def where(mask: pa.Array, name: str) -> list:
        values = column(name)
        return pc.if_else(mask, values, pa.scalar(None, values.type)).to_pylist()

    has_fee = pc.fill_null(
        pc.and_(
            pc.is_valid(column("fee_asset")),
            pc.greater(column("fee_amount"), pa.scalar(0, column("fee_amount").type)),
        ),
        False,
    )
    return TxColumns(
        tx_id=column("tx_id").to_pylist(),
        wallet=column("wallet").to_pylist(),
        time_us=column("timestamp").cast(pa.int64()).to_pylist(),
        type=column("type").to_pylist(),
        label=column("label").to_pylist(),
        sent_asset=column("sent_asset").to_pylist(),
        sent_amount=where(_crypto_side(column("sent_asset"), column("sent_amount")), "sent_amount"),
        received_asset=column("received_asset").to_pylist(),
        received_amount=where(
            _crypto_side(column("received_asset"), column("received_amount")), "received_amount"
        ),
        fee_asset=column("fee_asset").to_pylist(),
        fee_amount=where(has_fee, "fee_amount"),
        fee_value=where(has_fee, "fee_value"),
        value=column("value").to_pylist(),
        tx_hash=column("tx_hash").to_pylist(),
        table=tx,
    )


def transfer_legs(cols: TxColumns) -> list[TransferLeg]:
    """Deposit and withdrawal rows of crypto, the input of reconciliation."""
    legs: list[TransferLeg] = []
    withdrawal, deposit = _WITHDRAWAL, _DEPOSIT
    # read_columns keeps a side's amount only where its asset is set (_crypto_side)
    for i, (tx_type, s_amount, r_amount) in enumerate(
        zip(cols.type, cols.sent_amount, cols.received_amount)
    ):
        if tx_type == withdrawal and s_amount is not None:
            s_asset = cols.sent_asset[i]
            assert s_asset is not None
            legs.append(
                TransferLeg(
                    cols.tx_id[i],
                    WITHDRAWAL,
                    cols.wallet[i],
                    s_asset,
                    cols.time_us[i],
                    s_amount,
                    cols.tx_hash[i],
                )
            )
        elif tx_type == deposit and r_amount is not None:
            r_asset = cols.received_asset[i]
            assert r_asset is not None
            legs.append(
                TransferLeg(
                    cols.tx_id[i],
                    DEPOSIT,
                    cols.wallet[i],
                    r_asset,
                    cols.time_us[i],
                    r_amount,
                    cols.tx_hash[i],
                )
            )
    return legs


def build_events(
    cols: TxColumns,
    matches: list[TransferMatch],
    cost_basis: Mapping[str, Decimal] | None = None,
) -> tuple[dict[str, list[Event]], list[Finding]]:
    """Per-asset event lists (each sorted by event_order) and the findings of this stage
    (missing prices, unsupported rows). ``cost_basis``: deposit tx_id -> the basis the user
    stated (in the reporting currency), used when the deposit is not a matched transfer."""
    with tax_context():
        return _EventBuilder(cols, matches, cost_basis or {}).build()


class _EventBuilder:
    def __init__(
        self,
        cols: TxColumns,
        matches: list[TransferMatch],
        cost_basis: Mapping[str, Decimal],
    ) -> None:
        self.cols = cols
        self.cost_basis = cost_basis
        self.by_withdrawal = {m.withdrawal_tx_id: m for m in matches}
        self.by_deposit = {m.deposit_tx_id: m for m in matches}
        self.per_asset: dict[str, list[Event]] = defaultdict(list)
        self.findings: list[Finding] = []

    def build(self) -> tuple[dict[str, list[Event]], list[Finding]]:
        cols = self.cols
        per_asset = self.per_asset
        acquire, dispose = _ACQUIRE, _DISPOSE
        buy, sell = _BUY, _SELL
        rows = zip(
            cols.tx_id,
            cols.wallet,
            cols.time_us,
            cols.type,
            cols.sent_asset,
            cols.sent_amount,
            cols.received_asset,
            cols.received_amount,
            cols.fee_amount,
            cols.value,
        )
        for i, (
            tx_id,
            wallet,
            time_us,
            tx_type,
            s_asset,
            s_amount,
            r_asset,
            r_amount,
            f_amount,
            value,
        ) in enumerate(rows):
            # The common rows, a buy or a sell without a fee, skip the rules (what _exchange
            # makes of them, at a fraction of the cost).
            if f_amount is None and value is not None:
                if tx_type == buy and s_amount is None and r_amount is not None:
                    per_asset[r_asset].append(
                        Event(
                            asset=r_asset,
                            kind=acquire,
                            time_us=time_us,
                            phase=0,
                            tx_id=tx_id,
                            leg=0,
                            wallet=wallet,
                            quantity=r_amount,
                            amount=value,
                            purpose="buy",
                        )
                    )
                    continue
                if tx_type == sell and r_amount is None and s_amount is not None:
                    per_asset[s_asset].append(
                        Event(
                            asset=s_asset,
                            kind=dispose,
                            time_us=time_us,
                            phase=1,
                            tx_id=tx_id,
                            leg=0,
                            wallet=wallet,
                            quantity=s_amount,
                            amount=value,
                            purpose="sell",
                        )
                    )
                    continue
            self.row(i)
        for events in per_asset.values():
            events.sort(key=_ORDER)  # rows are time-ordered already: this only applies phases
        return dict(per_asset), self.findings

    def row(self, i: int) -> None:
        """Row ``i``'s events: its type's rule (_RULES), then what every type shares: a crypto
        fee is a disposal of its own, the findings, the legs and phases."""
        cols = self.cols
        tx_type = cols.type[i]
        f_asset, f_amount = cols.fee_asset[i], cols.fee_amount[i]
        # read_columns keeps the fee amount only where there is a fee, so it implies the asset
        crypto_fee = False
        fee_value: Decimal | None = ZERO
        if f_amount is not None:
            assert f_asset is not None
            crypto_fee = tx_type in TX_TYPES and f_asset.upper() not in FIAT
            fee_value = cols.fee_value[i]
            if fee_value is None and crypto_fee:
                fee_value = self.implied_fee_value(i, f_asset, f_amount)
        # a fiat fee only matters as the cost of an exchange; a crypto fee is also a disposal
        fee_missing = fee_value is None and (
            crypto_fee or (f_amount is not None and tx_type in _EXCHANGES)
        )
        row = _Row(
            i=i,
            tx_id=cols.tx_id[i],
            wallet=cols.wallet[i],
            time_us=cols.time_us[i],
            tx_type=tx_type,
            s_asset=cols.sent_asset[i],
            s_amount=cols.sent_amount[i],
            r_asset=cols.received_asset[i],
            r_amount=cols.received_amount[i],
            value=cols.value[i],
            fee_cost=ZERO if fee_value is None else fee_value,
            fee_missing=fee_missing,
            sent=cols.sent_amount[i] is not None,
            received=cols.received_amount[i] is not None,
        )
        _RULES.get(tx_type, _unknown_type)(self, row)
        if crypto_fee:
            assert f_asset is not None and f_amount is not None
            row.outflow(
                f_asset,
                _DISPOSE,
                f_amount,
                None if fee_missing else fee_value,
                "fee",
                flags=_MISSING if fee_missing else _EMPTY,
            )
            if tx_type == _WITHDRAWAL:
                # A transfer's fee leaves before the transferred units, as when the file counts
                # it inside Sent (the rule's transfer_fee): one order for both spellings.
                row.outflows.insert(0, row.outflows.pop())
        if fee_missing:
            row.missing.append("fee value")
        if row.unsupported is not None or row.missing:
            self.report(row, f_asset)
        self.place(row)

    def report(self, row: _Row, f_asset: str | None) -> None:
        moment = datetime_from_micros(row.time_us)
        if row.unsupported is not None:
            self.findings.append(
                Finding(
                    kind=Flag.UNSUPPORTED,
                    asset=row.s_asset or row.r_asset or f_asset,
                    wallet=row.wallet,
                    timestamp=moment,
                    tx_id=row.tx_id,
                    detail=row.unsupported,
                )
            )
        if row.missing:
            status = self.cols.cell("price_status", row.i) or "unknown"
            self.findings.append(
                Finding(
                    kind=Flag.MISSING_PRICE,
                    asset=row.s_asset if row.sent else row.r_asset if row.received else f_asset,
                    wallet=row.wallet,
                    timestamp=moment,
                    tx_id=row.tx_id,
                    detail=f"{row.tx_type}: no {' or '.join(dict.fromkeys(row.missing))} "
                    f"(price_status={status}): 0 used",
                )
            )

    def place(self, row: _Row) -> None:
        """Legs numbered inflows first; an outflow of an asset the row also brings in takes the
        inflows' phase."""
        inflow_assets = {event.asset for event in row.inflows}
        leg = 0
        for event in row.inflows:
            event.leg = leg
            leg += 1
            self.per_asset[event.asset].append(event)
        for event in row.outflows:
            event.leg = leg
            leg += 1
            if event.asset in inflow_assets:
                event.phase = 0
            self.per_asset[event.asset].append(event)

    def implied_fee_value(self, i: int, fee_asset: str, fee_amount: Decimal) -> Decimal | None:
        """A crypto fee the valuation left unpriced, valued at the row's own unit price of that
        asset (a sell of BTC paying its fee in BTC prices the fee): offline files state no fee
        value."""
        unit_price = self.unit_price(i, fee_asset, None)
        return None if unit_price is None else (fee_amount * unit_price).quantize(QUANTUM)

    def unit_price(self, i: int, asset: str, amount: Decimal | None) -> Decimal | None:
        """The row's unit price of ``asset``: its ``price`` when that prices this asset, else
        value / amount of the side in this asset."""
        cols = self.cols
        price: Decimal | None = cols.cell("price", i)  # decimal128 (canonical AMOUNT)
        if price is not None and cols.cell("price_asset", i) == asset:
            return price
        value = cols.value[i]
        if value is None:
            return None
        if amount is None:
            if cols.sent_asset[i] == asset:
                amount = cols.sent_amount[i]
            elif cols.received_asset[i] == asset:
                amount = cols.received_amount[i]
        if amount:
            return value / amount
        return None


_ORDER = attrgetter("time_us", "phase", "tx_id", "leg")  # = event_order, at C speed
_ACQUIRE, _DISPOSE, _INCOME_KIND = EventKind.ACQUIRE, EventKind.DISPOSE, EventKind.INCOME
_RECEIVE, _SEND, _REMOVE = EventKind.RECEIVE, EventKind.SEND, EventKind.REMOVE
_TRANSFER = frozenset({Flag.TRANSFER})
_TRANSFER_FEE = frozenset({Flag.TRANSFER_FEE})
_TRANSFER_FEE_MISSING = frozenset({Flag.TRANSFER_FEE, Flag.MISSING_PRICE})
_UNMATCHED_DEPOSIT = frozenset({Flag.UNMATCHED_DEPOSIT})
_UNMATCHED_WITHDRAWAL = frozenset({Flag.UNMATCHED_WITHDRAWAL})


@dataclass(slots=True)
class _Row:
    """One row as the rules read it, and what they make of it. read_columns keeps an amount
    only where its asset is set (a side's amount: crypto with an amount > 0), so ``sent`` and
    ``received`` imply the asset; the rules' asserts only tell the type checker so."""

    i: int
    tx_id: str
    wallet: str
    time_us: int
    tx_type: str
    s_asset: str | None
    s_amount: Decimal | None
    r_asset: str | None
    r_amount: Decimal | None
    value: Decimal | None
    fee_cost: Decimal  # the fee's value as a cost of the row (0 when unknown)
    fee_missing: bool  # the row needs the fee's value and has none
    sent: bool  # a crypto side sent (s_amount is set)
    received: bool  # a crypto side received (r_amount is set)
    inflows: list[Event] = field(default_factory=list)
    outflows: list[Event] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # values the tax needed and lacked
    unsupported: str | None = None  # what of the row is ignored, and why

    def inflow(
        self,
        asset: str,
        kind: EventKind,
        quantity: Decimal,
        amount: Decimal | None,
        purpose: str,
        *,
        flags: frozenset[str] = _EMPTY,
        label: str | None = None,
        transfer_id: str | None = None,
        counter_wallet: str | None = None,
    ) -> None:
        self.inflows.append(
            Event(
                asset=asset,
                kind=kind,
                time_us=self.time_us,
                phase=0,
                tx_id=self.tx_id,
                leg=0,  # numbered once the row's events are known (_EventBuilder.place)
                wallet=self.wallet,
                quantity=quantity,
                amount=amount,
                purpose=purpose,
                label=label,
                transfer_id=transfer_id,
                counter_wallet=counter_wallet,
                flags=flags,
            )
        )

    def outflow(
        self,
        asset: str,
        kind: EventKind,
        quantity: Decimal,
        amount: Decimal | None,
        purpose: str,
        *,
        flags: frozenset[str] = _EMPTY,
        label: str | None = None,
        transfer_id: str | None = None,
        counter_wallet: str | None = None,
        costs: Decimal = ZERO,
    ) -> None:
        self.outflows.append(
            Event(
                asset=asset,
                kind=kind,
                time_us=self.time_us,
                phase=1,  # 0 when the row also brings the asset in (_EventBuilder.place)
                tx_id=self.tx_id,
                leg=0,
                wallet=self.wallet,
                quantity=quantity,
                amount=amount,
                purpose=purpose,
                label=label,
                transfer_id=transfer_id,
                counter_wallet=counter_wallet,
                flags=flags,
                costs=costs,
            )
        )


# --- one rule per transaction type ---------------------------------------------------------------
def _exchange(builder: _EventBuilder, row: _Row) -> None:
    """buy, sell, trade, spend: the received side an acquisition, the sent side a disposal."""
    value, fee_cost = row.value, row.fee_cost
    if row.received:
        assert row.r_asset is not None and row.r_amount is not None
        row.inflow(
            row.r_asset,
            _ACQUIRE,
            row.r_amount,
            None if value is None else value + (ZERO if row.sent else fee_cost),
            "trade" if row.sent else "buy",
            flags=_MISSING if value is None or (row.fee_missing and not row.sent) else _EMPTY,
        )
    if row.sent:
        assert row.s_asset is not None and row.s_amount is not None
        proceeds = None if value is None else value - fee_cost
        row.outflow(
            row.s_asset,
            _DISPOSE,
            row.s_amount,
            proceeds,
            "spend" if row.tx_type == _SPEND else "trade" if row.received else "sell",
            flags=_MISSING if value is None or row.fee_missing else _EMPTY,
            costs=ZERO if proceeds is None else fee_cost,
        )
    if value is None and (row.sent or row.received):
        row.missing.append("value")


def _income(builder: _EventBuilder, row: _Row) -> None:
    """Income at its value; an income row that only sends is an income reversal (a reward taken
    back): its units leave with no disposal line and the engine records negative income."""
    label = (builder.cols.label[row.i] or "").strip().lower()
    label = label if label in INCOME_LABELS else "income"
    flags = _MISSING if row.value is None else _EMPTY
    if row.received:
        assert row.r_asset is not None and row.r_amount is not None
        row.inflow(
            row.r_asset, _INCOME_KIND, row.r_amount, row.value, "income", label=label, flags=flags
        )
        if row.value is None:
            row.missing.append("value")
        if row.sent:
            assert row.s_amount is not None
            row.unsupported = (
                f"income row also sends {plain_decimal(row.s_amount)} {row.s_asset}: ignored"
            )
    elif row.sent:
        assert row.s_asset is not None and row.s_amount is not None
        row.outflow(
            row.s_asset, _REMOVE, row.s_amount, row.value, INCOME_REVERSAL, label=label, flags=flags
        )
        if row.value is None:
            row.missing.append("value")


def _deposit(builder: _EventBuilder, row: _Row) -> None:
    """A matched deposit receives the travelling lots; an unmatched one is an acquisition at
    unknown (zero) cost."""
    if row.received:
        assert row.r_asset is not None and row.r_amount is not None
        match = builder.by_deposit.get(row.tx_id)
        if match is not None:
            row.inflow(
                row.r_asset,
                _RECEIVE,
                row.r_amount,
                None,
                "deposit",
                transfer_id=match.withdrawal_tx_id,
                counter_wallet=match.from_wallet,
                flags=_TRANSFER,
            )
        elif row.tx_id in builder.cost_basis:  # the user stated what these units cost
            row.inflow(
                row.r_asset, _ACQUIRE, row.r_amount, builder.cost_basis[row.tx_id], "deposit"
            )
        else:
            row.inflow(
                row.r_asset, _ACQUIRE, row.r_amount, None, "deposit", flags=_UNMATCHED_DEPOSIT
            )
    if row.sent:
        assert row.s_amount is not None
        row.unsupported = (
            f"deposit row also sends {plain_decimal(row.s_amount)} {row.s_asset}: ignored"
        )


def _withdrawal(builder: _EventBuilder, row: _Row) -> None:
    """A matched withdrawal sends its lots (what was lost on the way a transfer_fee disposal at
    the row's unit price); an unmatched one leaves the books."""
    if row.sent:
        assert row.s_asset is not None and row.s_amount is not None
        match = builder.by_withdrawal.get(row.tx_id)
        if match is None:
            row.outflow(
                row.s_asset,
                _REMOVE,
                row.s_amount,
                None,
                "withdrawal",
                flags=_UNMATCHED_WITHDRAWAL,
            )
        else:
            lost = match.fee_quantity
            if lost > 0:
                unit_price = builder.unit_price(row.i, row.s_asset, row.s_amount)
                if unit_price is None:
                    row.missing.append("transfer fee value")
                row.outflow(
                    row.s_asset,
                    _DISPOSE,
                    lost,
                    None if unit_price is None else (lost * unit_price).quantize(QUANTUM),
                    "transfer_fee",
                    flags=_TRANSFER_FEE_MISSING if unit_price is None else _TRANSFER_FEE,
                )
            row.outflow(
                row.s_asset,
                _SEND,
                match.received_quantity,
                None,
                "withdrawal",
                transfer_id=row.tx_id,
                counter_wallet=match.to_wallet,
                flags=_TRANSFER,
            )
    if row.received:
        assert row.r_amount is not None
        row.unsupported = (
            f"withdrawal row also receives {plain_decimal(row.r_amount)} {row.r_asset}: ignored"
        )


def _fee(builder: _EventBuilder, row: _Row) -> None:
    """A standalone fee: a disposal of the fee asset at the row's value."""
    if row.sent:
        assert row.s_asset is not None and row.s_amount is not None
        row.outflow(
            row.s_asset,
            _DISPOSE,
            row.s_amount,
            row.value,
            "fee",
            flags=_MISSING if row.value is None else _EMPTY,
        )
        if row.value is None:
            row.missing.append("value")
    if row.received:
        assert row.r_amount is not None
        row.unsupported = f"fee row receives {plain_decimal(row.r_amount)} {row.r_asset}: ignored"


def _unknown_type(builder: _EventBuilder, row: _Row) -> None:
    row.unsupported = f"unknown transaction type {row.tx_type!r}: not processed"


Rule = Callable[[_EventBuilder, _Row], None]
_RULES: dict[str, Rule] = {
    _BUY: _exchange,
    _SELL: _exchange,
    _TRADE: _exchange,
    _SPEND: _exchange,
    _INCOME: _income,
    _DEPOSIT: _deposit,
    _WITHDRAWAL: _withdrawal,
    _FEE: _fee,
}
