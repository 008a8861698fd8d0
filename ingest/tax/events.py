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
  unit price. An unmatched withdrawal leaves the books as a non-taxable transfer out (REMOVE,
  flagged ``unmatched_withdrawal``, as Koinly does); an unmatched deposit is an acquisition at zero
  cost basis flagged ``unmatched_deposit`` (the basis is unknown, not guessed: disposals of those
  units are then flagged ``missing_cost_basis``).
- Fiat sides are money, not lots: they produce no events (foreign-currency gains are out of scope).
- A value the tax needs but the row lacks (price_status != ok, no value) is used as 0 and the event
  is flagged ``missing_price`` (plus one finding per transaction): rows are never dropped.

Events of one asset sort by (time, phase, tx_id, leg); phase 0 for a transaction that brings the
asset in, 1 otherwise, so at equal timestamps inflows come before outflows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from operator import attrgetter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest.normalize.canonical import (
    FIAT,
    INCOME_LABELS,
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
    "sent_asset",
    "sent_amount",
    "received_asset",
    "received_amount",
    "fee_asset",
    "fee_amount",
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
    cols: TxColumns, matches: list[TransferMatch]
) -> tuple[dict[str, list[Event]], list[Finding]]:
    """Per-asset event lists (each sorted by event_order) and the findings of this stage
    (missing prices, unsupported rows)."""
    with tax_context():
        return _EventBuilder(cols, matches).build()


class _EventBuilder:
    def __init__(self, cols: TxColumns, matches: list[TransferMatch]) -> None:
        self.cols = cols
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
            if f_amount is None and value is not None:  # the common rows, without a fee
                if tx_type == buy and s_amount is None and r_amount is not None:
                    per_asset[r_asset].append(
                        Event(
                            r_asset, acquire, time_us, 0, tx_id, 0, wallet, r_amount, value, "buy"
                        )
                    )
                    continue
                if tx_type == sell and r_amount is None and s_amount is not None:
                    per_asset[s_asset].append(
                        Event(
                            s_asset, dispose, time_us, 1, tx_id, 0, wallet, s_amount, value, "sell"
                        )
                    )
                    continue
            self.row(i)
        for events in per_asset.values():
            events.sort(key=_ORDER)  # rows are time-ordered already: this only applies phases
        return dict(per_asset), self.findings

    def row(self, i: int) -> None:
        cols = self.cols
        tx_id, wallet, time_us = cols.tx_id[i], cols.wallet[i], cols.time_us[i]
        tx_type = cols.type[i]
        s_asset, s_amount = cols.sent_asset[i], cols.sent_amount[i]
        r_asset, r_amount = cols.received_asset[i], cols.received_amount[i]
        f_asset, f_amount = cols.fee_asset[i], cols.fee_amount[i]
        value = cols.value[i]
        # read_columns keeps an amount only where its asset is set (a side's amount: crypto with
        # an amount > 0; the fee amount: a fee), so `sent`, `received` and `has_fee` imply the
        # asset; the asserts below only tell the type checker so
        sent, received = s_amount is not None, r_amount is not None
        has_fee = f_amount is not None
        crypto_fee = False
        fee_value: Decimal | None = ZERO
        if f_amount is not None:
            assert f_asset is not None
            crypto_fee = tx_type in TX_TYPES and f_asset.upper() not in FIAT
            fee_value = cols.fee_value[i]
            if fee_value is None and crypto_fee:
                fee_value = self.implied_fee_value(i, f_asset, f_amount)
        # a fiat fee only matters as the cost of an exchange; a crypto fee is also a disposal
        fee_missing = fee_value is None and (crypto_fee or (has_fee and tx_type in _EXCHANGES))
        fee_cost = ZERO if fee_value is None else fee_value
        inflows: list[Event] = []
        outflows: list[Event] = []
        missing_what: list[str] = []
        unsupported: str | None = None

        if tx_type in _EXCHANGES:
            if received:
                assert r_asset is not None and r_amount is not None
                cost = None if value is None else value + (ZERO if sent else fee_cost)
                flags = _MISSING if value is None or (fee_missing and not sent) else _EMPTY
                inflows.append(
                    Event(
                        r_asset,
                        _ACQUIRE,
                        time_us,
                        0,
                        tx_id,
                        0,
                        wallet,
                        r_amount,
                        cost,
                        "trade" if sent else "buy",
                        flags=flags,
                    )
                )
            if sent:
                assert s_asset is not None and s_amount is not None
                proceeds = None if value is None else value - fee_cost
                purpose = "spend" if tx_type == _SPEND else "trade" if received else "sell"
                flags = _MISSING if value is None or fee_missing else _EMPTY
                outflows.append(
                    Event(
                        s_asset,
                        _DISPOSE,
                        time_us,
                        1,
                        tx_id,
                        0,
                        wallet,
                        s_amount,
                        proceeds,
                        purpose,
                        flags=flags,
                        costs=ZERO if proceeds is None else fee_cost,
                    )
                )
            if value is None and (sent or received):
                missing_what.append("value")
        elif tx_type == _INCOME:
            if received:
                assert r_asset is not None and r_amount is not None
                label = (cols.label[i] or "").strip().lower()
                inflows.append(
                    Event(
                        r_asset,
                        _INCOME_KIND,
                        time_us,
                        0,
                        tx_id,
                        0,
                        wallet,
                        r_amount,
                        value,
                        "income",
                        label=label if label in INCOME_LABELS else "income",
                        flags=_MISSING if value is None else _EMPTY,
                    )
                )
                if value is None:
                    missing_what.append("value")
            if sent and received:
                assert s_amount is not None
                unsupported = f"income row also sends {plain_decimal(s_amount)} {s_asset}: ignored"
            elif sent:  # an income reversal (README): the units leave, the income is cancelled
                assert s_asset is not None and s_amount is not None
                label = (cols.label[i] or "").strip().lower()
                outflows.append(
                    Event(
                        s_asset,
                        _REMOVE,
                        time_us,
                        1,
                        tx_id,
                        0,
                        wallet,
                        s_amount,
                        value,
                        INCOME_REVERSAL,
                        label=label if label in INCOME_LABELS else "income",
                        flags=_MISSING if value is None else _EMPTY,
                    )
                )
                if value is None:
                    missing_what.append("value")
        elif tx_type == _DEPOSIT:
            if received:
                assert r_asset is not None and r_amount is not None
                match = self.by_deposit.get(tx_id)
                if match is not None:
                    inflows.append(
                        Event(
                            r_asset,
                            _RECEIVE,
                            time_us,
                            0,
                            tx_id,
                            0,
                            wallet,
                            r_amount,
                            None,
                            "deposit",
                            transfer_id=match.withdrawal_tx_id,
                            counter_wallet=match.from_wallet,
                            flags=_TRANSFER,
                        )
                    )
                else:
                    inflows.append(
                        Event(
                            r_asset,
                            _ACQUIRE,
                            time_us,
                            0,
                            tx_id,
                            0,
                            wallet,
                            r_amount,
                            None,
                            "deposit",
                            flags=_UNMATCHED_DEPOSIT,
                        )
                    )
            if sent:
                assert s_amount is not None
                unsupported = f"deposit row also sends {plain_decimal(s_amount)} {s_asset}: ignored"
        elif tx_type == _WITHDRAWAL:
            if sent:
                assert s_asset is not None and s_amount is not None
                match = self.by_withdrawal.get(tx_id)
                if match is not None:
                    lost = match.fee_quantity
                    if lost > 0:
                        unit_price = self.unit_price(i, s_asset, s_amount)
                        if unit_price is None:
                            missing_what.append("transfer fee value")
                        outflows.append(
                            Event(
                                s_asset,
                                _DISPOSE,
                                time_us,
                                1,
                                tx_id,
                                0,
                                wallet,
                                lost,
                                None
                                if unit_price is None
                                else (lost * unit_price).quantize(QUANTUM),
                                "transfer_fee",
                                flags=_TRANSFER_FEE_MISSING
                                if unit_price is None
                                else _TRANSFER_FEE,
                            )
                        )
                    outflows.append(
                        Event(
                            s_asset,
                            _SEND,
                            time_us,
                            1,
                            tx_id,
                            1,
                            wallet,
                            match.received_quantity,
                            None,
                            "withdrawal",
                            transfer_id=tx_id,
                            counter_wallet=match.to_wallet,
                            flags=_TRANSFER,
                        )
                    )
                else:
                    outflows.append(
                        Event(
                            s_asset,
                            _REMOVE,
                            time_us,
                            1,
                            tx_id,
                            0,
                            wallet,
                            s_amount,
                            None,
                            "withdrawal",
                            flags=_UNMATCHED_WITHDRAWAL,
                        )
                    )
            if received:
                assert r_amount is not None
                unsupported = (
                    f"withdrawal row also receives {plain_decimal(r_amount)} {r_asset}: ignored"
                )
        elif tx_type == _FEE:
            if sent:
                assert s_asset is not None and s_amount is not None
                outflows.append(
                    Event(
                        s_asset,
                        _DISPOSE,
                        time_us,
                        1,
                        tx_id,
                        0,
                        wallet,
                        s_amount,
                        value,
                        "fee",
                        flags=_MISSING if value is None else _EMPTY,
                    )
                )
                if value is None:
                    missing_what.append("value")
            if received:
                assert r_amount is not None
                unsupported = f"fee row receives {plain_decimal(r_amount)} {r_asset}: ignored"
        else:
            unsupported = f"unknown transaction type {tx_type!r}: not processed"

        if crypto_fee:
            assert f_asset is not None and f_amount is not None
            outflows.append(
                Event(
                    f_asset,
                    _DISPOSE,
                    time_us,
                    1,
                    tx_id,
                    0,
                    wallet,
                    f_amount,
                    None if fee_missing else fee_value,
                    "fee",
                    flags=_MISSING if fee_missing else _EMPTY,
                )
            )
        if fee_missing:
            missing_what.append("fee value")

        if unsupported is not None:
            self.findings.append(
                Finding(
                    Flag.UNSUPPORTED,
                    s_asset or r_asset or f_asset,
                    wallet,
                    datetime_from_micros(time_us),
                    tx_id,
                    unsupported,
                )
            )
        if missing_what:
            status = cols.cell("price_status", i) or "unknown"
            self.findings.append(
                Finding(
                    Flag.MISSING_PRICE,
                    (s_asset if sent else r_asset if received else f_asset),
                    wallet,
                    datetime_from_micros(time_us),
                    tx_id,
                    f"{tx_type}: no {' or '.join(dict.fromkeys(missing_what))} "
                    f"(price_status={status}): 0 used",
                )
            )
        inflow_assets = {event.asset for event in inflows}
        leg = 0
        for event in inflows:
            event.leg = leg
            leg += 1
            self.per_asset[event.asset].append(event)
        for event in outflows:
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
