"""Bybit: the spot trade history and the deposit/withdrawal history. Versions:

- bybit-spot-trades: Orders > Unified Trading Account > Spot Orders > Trade/Order History,
  Spot Pairs, Order Type, Direction, Filled Value, Filled Price, Filled Quantity, Fees,
  Transaction ID, Order No., Timestamp (UTC) (time written '14:35 2024-11-16' or ISO);
- bybit-spot-trades-2024: the same after a 'UID: <uid>' line, with a leading Uid column and
  Timestamp (UTC+0);
- bybit-spot-trades-2022: the same without Order No., with Time(UTC);
- bybit-deposits-withdrawals: Date & Time(UTC), Coin, QTY, Type, Account Balance, Description.

Mapping:
- a trade row: BUY = Filled Value of the quote -> Filled Quantity of the base, SELL the
  reverse (Spot Pairs "BTCUSDT": the base, then a known quote). Bybit charges a spot fee in the
  asset received: Fees is in the base for BUY, in the quote for SELL. Transaction ID is the
  exchange id.
- deposits/withdrawals by Description: Deposit -> deposit, Withdrawal -> withdrawal (QTY may be
  signed; its sign is dropped); Transfer to/from Derivatives Account (or Unified Trading /
  Funding Account) is a move between the user's own Bybit accounts: skipped; anything else is
  rejected. Times are UTC.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ingest.extract.formats.base import (
    FormatSpec,
    ParseContext,
    RowChecks,
    abs_amount,
    constant,
    draft_table,
    lookup,
    parse_amount,
    parse_asset,
    parse_timestamp,
    skip_fiat_only,
    split_pair,
    text,
    trade_rows,
    when,
)
from ingest.normalize.canonical import TxType

NAME = "bybit"
INTERNAL = "move between the user's own Bybit accounts (no disposal)"


def bybit_time(values: pa.Array) -> pa.Array:
    """'14:35 2024-11-16' (the unified account export) -> '2024-11-16 14:35'; ISO text as is."""
    return pc.replace_substring_regex(
        values, r"^(\d{1,2}:\d{2}(?::\d{2})?)\s+(\d{4}-\d{2}-\d{2})$", r"\2 \1"
    )


def trades_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(
        bybit_time(text(table, "Timestamp (UTC)")), "Timestamp (UTC)", checks, ctx.tz
    )
    pair = text(table, "Spot Pairs")
    base, quote = split_pair(pair)
    checks.reject(pc.and_(pair.is_valid(), base.is_null()), "cannot split the pair '{}'", pair)
    side = pc.utf8_upper(text(table, "Direction"))
    fee_asset = pc.if_else(pc.equal(side, "BUY"), base, quote)
    draft = trade_rows(
        NAME,
        n,
        ctx,
        checks,
        ts,
        side,
        base,
        text(table, "Filled Quantity"),
        quote,
        text(table, "Filled Value"),
        fee_asset,
        text(table, "Fees"),
        ("Filled Quantity", "Filled Value", "Fees"),
        external_id=text(table, "Transaction ID"),
    )
    return draft, checks


# Description (lower case) -> kind
KINDS: dict[str, tuple[str | None, ...]] = {
    "deposit": ("deposit",),
    "withdrawal": ("withdrawal",),
    **{
        t: ("skip",)
        for t in (
            "transfer to derivatives account",
            "transfer from derivatives account",
            "transfer to unified trading account",
            "transfer from unified trading account",
            "transfer to funding account",
            "transfer from funding account",
        )
    },
}


def funding_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "Date & Time(UTC)"), "Date & Time(UTC)", checks, ctx.tz)
    description = text(table, "Description")
    (kind,) = lookup(description, KINDS, 1)
    checks.reject(
        pc.and_(description.is_valid(), kind.is_null()),
        "unknown description '{}' in column Description",
        description,
    )
    checks.reject(description.is_null(), "missing description in column Description")
    checks.skip(pc.equal(kind, "skip"), INTERNAL)
    raw_coin, raw_qty = text(table, "Coin"), text(table, "QTY")
    coin = parse_asset(raw_coin, "Coin", checks, NAME)
    checks.reject(raw_coin.is_null(), "missing asset in column Coin")
    qty = abs_amount(parse_amount(raw_qty, "QTY", checks))
    checks.reject(raw_qty.is_null(), "missing amount in column QTY")
    deposit, withdrawal = pc.equal(kind, "deposit"), pc.equal(kind, "withdrawal")
    type_ = pc.if_else(deposit, TxType.DEPOSIT.value, when(withdrawal, TxType.WITHDRAWAL.value))
    sent_asset, received_asset = when(withdrawal, coin), when(deposit, coin)
    skip_fiat_only(checks, type_, sent_asset, received_asset)
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or NAME),
        type=type_,
        sent_asset=sent_asset,
        sent_amount=when(withdrawal, qty, qty.type),
        received_asset=received_asset,
        received_amount=when(deposit, qty, qty.type),
    )
    return draft, checks


TRADE_COLUMNS = (
    "Spot Pairs",
    "Order Type",
    "Direction",
    "Filled Value",
    "Filled Price",
    "Filled Quantity",
    "Fees",
    "Transaction ID",
)
VERSIONS = (
    FormatSpec(
        name="bybit-spot-trades",
        source=NAME,
        columns=TRADE_COLUMNS + ("Order No.", "Timestamp (UTC)"),
        to_legs=trades_to_legs,
        zoned=True,
        description="spot trade history, unified trading account (Timestamp (UTC))",
    ),
    FormatSpec(
        name="bybit-spot-trades-2024",
        source=NAME,
        columns=("Uid",) + TRADE_COLUMNS + ("Timestamp (UTC+0)",),
        optional_columns=("Order No.",),
        rename={"Timestamp (UTC+0)": "Timestamp (UTC)"},
        to_legs=trades_to_legs,
        zoned=True,
        description="spot trade history, unified trading account, late 2024 (a 'UID:' line "
        "above the header, Uid, Timestamp (UTC+0))",
    ),
    FormatSpec(
        name="bybit-spot-trades-2022",
        source=NAME,
        columns=TRADE_COLUMNS + ("Time(UTC)",),
        rename={"Time(UTC)": "Timestamp (UTC)"},
        to_legs=trades_to_legs,
        zoned=True,
        description="spot trade history before the unified account (Time(UTC))",
    ),
    FormatSpec(
        name="bybit-deposits-withdrawals",
        source=NAME,
        columns=("Date & Time(UTC)", "Coin", "QTY", "Type", "Account Balance", "Description"),
        to_legs=funding_to_legs,
        zoned=True,
        description="deposit and withdrawal history",
    ),
)
