"""Bybit: the spot trade history and the deposit/withdrawal history. Versions:

- bybit-spot-trades: Orders > Unified Trading Account > Spot Orders > Trade/Order History,
  Spot Pairs, Order Type, Direction, Filled Value, Filled Price, Filled Quantity, Fees,
  Transaction ID, Order No., Timestamp (UTC) (time written '14:35 2024-11-16' or ISO);
- bybit-spot-trades-2024: the same after a 'UID: <uid>' line, with a leading Uid column and
  Timestamp (UTC+0);
- bybit-spot-trades-2022: the same without Order No., with Time(UTC);
- bybit-spot-trades-pre-uta: Orders > Spot (Pre-UTA) > Order History: Filled Time (Local
  Time), Spot Pairs, Order Type, Direction, Filled Value, Filled Price, Filled Quantity, Fees,
  Transaction ID, Order No., Timestamp (UTC), with the unit in the cells ('16.35 RENDER',
  Spot Pairs 'NEIRO/USDT');
- bybit-deposits-withdrawals: Date & Time(UTC), Coin, QTY, Type, Account Balance, Description;
- bybit-transaction-log: the unified trading account's Transaction Log (Account Change
  Details, after a 'UID: ...' preamble line): Uid, Currency, Contract, Type, Direction, Quantity,
  Position, Filled Price, Funding, Fee Paid, Cash Flow, Change, Wallet Balance, Action, Time(UTC).

Mapping:
- a trade row: BUY = Filled Value of the quote -> Filled Quantity of the base, SELL the
  reverse (Spot Pairs "BTCUSDT": the base, then a known quote). Bybit charges a spot fee in the
  asset received: Fees is in the base for BUY, in the quote for SELL. Transaction ID is the
  exchange id. Filled Price x Filled Quantity must be Filled Value (within 1%), else the row is
  rejected. Pre-UTA: the units in the cells must be the pair's (quantity in the base, value and
  price in the quote); the fee is in the unit its cell names; Timestamp (UTC) is read, the local
  time column is not.
- deposits/withdrawals by Description: Deposit -> deposit, Withdrawal -> withdrawal (QTY may be
  signed; its sign is dropped), Airdrop Bonus -> income/airdrop, Buy Crypto with Card -> buy
  (labelled card; the fiat paid is not in the file, so the coins are valued at the market
  price); Transfer to/from Derivatives Account (or Unified Trading / Funding Account) is a move
  between the user's own Bybit accounts: skipped; anything else is rejected.
- transaction log by Type: TRADE rows of spot (Quantity, signed, equals Cash Flow: the row's
  Currency in or out; derivatives trades, whose Quantity is contracts, are rejected) come two
  per fill, one per currency, sharing Contract, Direction, Filled Price and Time(UTC): they are
  combined into one trade. The fee is what the row's own arithmetic says: Cash Flow + Funding -
  Change, which must equal -Fee Paid (charged negative), else the row is rejected.
  TRANSFER_IN / TRANSFER_OUT are moves between the user's own Bybit accounts: skipped; any other
  type (SETTLEMENT, DELIVERY, LIQUIDATION, INTEREST, BONUS, ...) is rejected naming it.

Time zones: every Bybit layout is UTC by its column name (Timestamp (UTC), Time(UTC), Date &
Time(UTC)); dates year-month-day (the unified spot export writes '14:35 2024-11-16').
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ingest.extract.formats.base import (
    ZERO,
    FormatSpec,
    ParseContext,
    RowChecks,
    abs_amount,
    add_amounts,
    amount_with_unit,
    check_total,
    constant,
    draft_table,
    leg_draft,
    negative,
    parse_amount,
    parse_asset,
    parse_timestamp,
    positive,
    read_asset_amount,
    read_kind,
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


def _spot_trades(
    table: pa.Table,
    ctx: ParseContext,
    checks: RowChecks,
    base: pa.Array,
    quote: pa.Array,
    amounts: tuple[pa.Array, pa.Array, pa.Array, pa.Array],
    fee_asset: pa.Array,
) -> pa.Table:
    """Trade rows of a spot history; `amounts` are the text of Filled Quantity, Filled Value,
    Filled Price and Fees (units already cut off)."""
    quantity, value, price, fees = amounts
    ts = parse_timestamp(
        bybit_time(text(table, "Timestamp (UTC)")), "Timestamp (UTC)", checks, ctx.tz
    )
    quiet = RowChecks(table.num_rows)  # trade_rows reports bad amounts; here only the product
    check_total(
        checks,
        (
            parse_amount(price, "Filled Price", quiet),
            parse_amount(quantity, "Filled Quantity", quiet),
        ),
        parse_amount(value, "Filled Value", quiet),
        ("Filled Price", "Filled Quantity", "Filled Value"),
    )
    return trade_rows(
        NAME,
        table.num_rows,
        ctx,
        checks,
        ts,
        text(table, "Direction"),
        base,
        quantity,
        quote,
        value,
        fee_asset,
        fees,
        ("Filled Quantity", "Filled Value", "Fees"),
        external_id=text(table, "Transaction ID"),
    )


def _pair(table: pa.Table, checks: RowChecks) -> tuple[pa.Array, pa.Array]:
    pair = text(table, "Spot Pairs")
    base, quote = split_pair(pair)
    checks.reject(pc.and_(pair.is_valid(), base.is_null()), "cannot split the pair '{}'", pair)
    return base, quote


def trades_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    checks = RowChecks(table.num_rows)
    base, quote = _pair(table, checks)
    # Bybit charges a spot fee in the asset received
    fee_asset = pc.if_else(pc.equal(pc.utf8_upper(text(table, "Direction")), "BUY"), base, quote)
    amounts = tuple(
        text(table, c) for c in ("Filled Quantity", "Filled Value", "Filled Price", "Fees")
    )
    draft = _spot_trades(table, ctx, checks, base, quote, amounts, fee_asset)
    return draft, checks


def pre_uta_trades_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    checks = RowChecks(table.num_rows)
    base, quote = _pair(table, checks)
    cells = {}
    for column, expected in (
        ("Filled Quantity", base),
        ("Filled Value", quote),
        ("Filled Price", quote),
        ("Fees", None),
    ):
        raw = text(table, column)
        amount, unit = amount_with_unit(raw)
        checks.reject(
            pc.and_(raw.is_valid(), unit.is_null()),
            f"cannot read amount and asset from '{{}}' in column {column}",
            raw,
        )
        if expected is not None:
            checks.reject(
                pc.fill_null(pc.not_equal(pc.utf8_upper(unit), expected), False),
                f"the unit of '{{}}' in column {column} is not the pair's",
                raw,
            )
        cells[column] = (amount, unit)
    amounts = tuple(
        cells[c][0] for c in ("Filled Quantity", "Filled Value", "Filled Price", "Fees")
    )
    draft = _spot_trades(table, ctx, checks, base, quote, amounts, cells["Fees"][1])
    return draft, checks


# Description (lower case) -> (type, label); "skip" for internal moves
KINDS: dict[str, tuple[str | None, ...]] = {
    "deposit": (TxType.DEPOSIT.value, None),
    "withdrawal": (TxType.WITHDRAWAL.value, None),
    "airdrop bonus": (TxType.INCOME.value, "airdrop"),
    # a card purchase: a buy although its fiat leg is not in the file (valued at market)
    "buy crypto with card": (TxType.BUY.value, "card"),
    **{
        t: ("skip", None)
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
    _, (kind, label) = read_kind(table, "Description", KINDS, 2, checks, "description")
    checks.skip(pc.equal(kind, "skip"), INTERNAL)
    coin, signed = read_asset_amount(table, ("Coin", "QTY"), checks, NAME)
    qty = abs_amount(signed)
    withdrawal = pc.equal(kind, TxType.WITHDRAWAL.value)
    deposit = pc.is_in(
        kind,
        value_set=pa.array([TxType.DEPOSIT.value, TxType.INCOME.value, TxType.BUY.value]),
    )
    type_ = when(pc.or_(deposit, withdrawal), kind)
    sent_asset, received_asset = when(withdrawal, coin), when(deposit, coin)
    skip_fiat_only(checks, type_, sent_asset, received_asset)
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or NAME),
        type=type_,
        label=label,
        sent_asset=sent_asset,
        sent_amount=when(withdrawal, qty, qty.type),
        received_asset=received_asset,
        received_amount=when(deposit, qty, qty.type),
    )
    return draft, checks


def transaction_log_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "Time(UTC)"), "Time(UTC)", checks, ctx.tz)
    raw_type = text(table, "Type")
    kind = pc.utf8_upper(raw_type)
    trade = pc.fill_null(pc.equal(kind, "TRADE"), False)
    transfer = pc.fill_null(
        pc.is_in(kind, value_set=pa.array(["TRANSFER_IN", "TRANSFER_OUT"])), False
    )
    checks.skip(transfer, INTERNAL)
    checks.reject(raw_type.is_null(), "missing type in column Type")
    checks.reject(
        pc.and_(raw_type.is_valid(), pc.invert(pc.or_(trade, transfer))),
        "type '{}' is not supported (spot trades and transfers only)",
        raw_type,
    )
    quiet = RowChecks(n)  # "--" stands for an empty cell in rows that are rejected anyway
    quantity = parse_amount(text(table, "Quantity"), "Quantity", quiet)
    checks.reject(
        pc.and_(trade, quantity.is_null()),
        "bad amount '{}' in column Quantity",
        text(table, "Quantity"),
    )
    cash_flow = parse_amount(text(table, "Cash Flow"), "Cash Flow", quiet)
    funding = pc.fill_null(parse_amount(text(table, "Funding"), "Funding", quiet), ZERO)
    change = parse_amount(text(table, "Change"), "Change", quiet)
    fee_paid = pc.fill_null(parse_amount(text(table, "Fee Paid"), "Fee Paid", quiet), ZERO)
    # Spot: Quantity is the Currency's own change (signed) and equals Cash Flow; derivatives
    # trades have Quantity in contracts and a Cash Flow of realized profit.
    spot = pc.fill_null(pc.and_(trade, pc.equal(quantity, cash_flow)), False)
    checks.reject(
        pc.and_(trade, pc.invert(spot)),
        "a derivatives trade of '{}' (Quantity is not the Cash Flow) is not supported",
        text(table, "Contract"),
    )
    # The row's own arithmetic: what was charged = Cash Flow + Funding - Change = -Fee Paid.
    charged = add_amounts(add_amounts(cash_flow, funding), change, subtract=True)
    checks.reject(
        pc.and_(spot, pc.invert(pc.fill_null(pc.equal(charged, pc.negate(fee_paid)), False))),
        "Change is not Cash Flow + Funding + Fee Paid ({}): not a spot fill as read",
        pc.binary_join_element_wise(
            text(table, "Change"), text(table, "Cash Flow"), text(table, "Fee Paid"), " vs "
        ),
    )
    checks.reject(
        pc.and_(spot, pc.fill_null(negative(charged), False)),
        "a fee rebate (positive Fee Paid '{}') is not supported",
        text(table, "Fee Paid"),
    )
    raw_currency = text(table, "Currency")
    currency = parse_asset(raw_currency, "Currency", checks, NAME)
    checks.reject(pc.and_(spot, raw_currency.is_null()), "missing asset in column Currency")
    incoming, outgoing = positive(quantity), negative(quantity)
    amount, fee = abs_amount(quantity), abs_amount(charged)
    has_fee = pc.fill_null(pc.and_(spot, positive(charged)), False)
    group = pc.binary_join_element_wise(
        "bybit-uta",
        text(table, "Contract"),
        text(table, "Direction"),
        text(table, "Filled Price"),
        text(table, "Time(UTC)"),
        "|",
        null_handling="replace",
        null_replacement="",
    )
    draft = leg_draft(
        ctx.wallet or NAME,
        ts,
        (incoming, outgoing),
        (currency, amount),
        (has_fee, currency, fee),
        None,
        group,
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
        name="bybit-spot-trades-pre-uta",
        zoned=True,
        source=NAME,
        columns=("Filled Time (Local Time)",) + TRADE_COLUMNS + ("Order No.", "Timestamp (UTC)"),
        to_legs=pre_uta_trades_to_legs,
        description="spot trade history of the pre-unified account (units in the cells, "
        "Timestamp (UTC))",
    ),
    FormatSpec(
        name="bybit-transaction-log",
        zoned=True,
        source=NAME,
        columns=(
            "Uid",
            "Currency",
            "Contract",
            "Type",
            "Direction",
            "Quantity",
            "Position",
            "Filled Price",
            "Funding",
            "Fee Paid",
            "Cash Flow",
            "Change",
            "Wallet Balance",
            "Action",
            "Time(UTC)",
        ),
        to_legs=transaction_log_to_legs,
        description="unified trading account transaction log (two rows per spot fill; Time(UTC))",
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
