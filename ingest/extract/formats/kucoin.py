"""KuCoin: the account statement bundle ("Export data"), one CSV per section. Versions:

- kucoin-trades: Spot Orders_Filled Orders: UID, Account Type, Order ID, Symbol, Side, Order
  Type, Avg. Filled Price, Filled Amount, Filled Volume, Filled Volume (USDT), Filled
  Time(UTC+08:00), Fee, Maker/Taker, Fee Currency (Tax optional);
- kucoin-deposits: Deposit_Withdrawal History_Deposit History: UID, Account Type,
  Time(UTC+08:00), Coin, Amount, Fee, Transfer Network, Status, Remarks (Hash, Deposit Address
  optional);
- kucoin-withdrawals: the same with Withdrawal Address/Account;
- kucoin-earn: Earn Orders_Profit History: UID, Account Type, Order ID, Time(UTC+08:00), Staked
  Coin, Product Type, Product Name, Earnings Coin, Earnings Type, Remarks, Amount.

The zone of the times is in the column name ("Time(UTC+08:00)", "Time(UTC)"); `tz` is used
only when the name has none. Mapping: BUY = Filled Volume of the quote -> Filled Amount of the
base (Symbol "BTC-USDT"), SELL the reverse, Fee in Fee Currency, Order ID the exchange id;
deposits and withdrawals with their Fee in Coin, Hash as tx_hash; a Status other than SUCCESS
(processing, failed, canceled) is skipped; earn profits are income/staking in Earnings Coin.
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
    parse_amount,
    parse_asset,
    parse_timestamp,
    positive,
    skip_fiat_only,
    split_pair,
    text,
    trade_rows,
    when,
)
from ingest.normalize.canonical import TxType

NAME = "kucoin"


def _time(table: pa.Table, column: str, checks: RowChecks, ctx: ParseContext) -> pa.Array:
    """The time column, in the zone its name states ("UTC+08:00" -> "+08:00")."""
    values = text(table, column)
    zone = text(table, "header_utc")
    if zone.null_count == len(zone) or len(zone) == 0:
        return parse_timestamp(values, column, checks, ctx.tz)
    offset = pc.replace_substring_regex(zone, r"^UTC", "")
    offset = pc.if_else(pc.equal(offset, ""), "Z", offset)
    return parse_timestamp(pc.binary_join_element_wise(values, offset, ""), column, checks, None)


def trades_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = _time(table, "Filled Time", checks, ctx)
    symbol = text(table, "Symbol")
    base, quote = split_pair(symbol)
    checks.reject(
        pc.and_(symbol.is_valid(), base.is_null()), "cannot split the symbol '{}'", symbol
    )
    draft = trade_rows(
        NAME,
        n,
        ctx,
        checks,
        ts,
        text(table, "Side"),
        base,
        text(table, "Filled Amount"),
        quote,
        text(table, "Filled Volume"),
        text(table, "Fee Currency"),
        text(table, "Fee"),
        ("Filled Amount", "Filled Volume", "Fee"),
        external_id=text(table, "Order ID"),
    )
    return draft, checks


def _funding(table: pa.Table, ctx: ParseContext, incoming: bool) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = _time(table, "Time", checks, ctx)
    status = text(table, "Status")
    checks.skip(
        pc.invert(pc.fill_null(pc.equal(pc.utf8_upper(status), "SUCCESS"), False)),
        "status '{}' is not a completed transfer",
        status,
    )
    raw_coin, raw_amount = text(table, "Coin"), text(table, "Amount")
    coin = parse_asset(raw_coin, "Coin", checks, NAME)
    checks.reject(raw_coin.is_null(), "missing asset in column Coin")
    amount = abs_amount(parse_amount(raw_amount, "Amount", checks))
    checks.reject(raw_amount.is_null(), "missing amount in column Amount")
    fee = abs_amount(parse_amount(text(table, "Fee"), "Fee", checks))
    has_fee = pc.fill_null(positive(fee), False)
    type_ = constant(n, (TxType.DEPOSIT if incoming else TxType.WITHDRAWAL).value)
    nothing = pa.nulls(n, pa.string())
    sent_asset, received_asset = (nothing, coin) if incoming else (coin, nothing)
    skip_fiat_only(checks, type_, sent_asset, received_asset)
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or NAME),
        type=type_,
        sent_asset=sent_asset,
        sent_amount=None if incoming else amount,
        received_asset=received_asset,
        received_amount=amount if incoming else None,
        fee_asset=when(has_fee, coin),
        fee_amount=when(has_fee, fee, fee.type),
        tx_hash=text(table, "Hash"),
        description=text(table, "Remarks"),
    )
    return draft, checks


def deposits_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    return _funding(table, ctx, incoming=True)


def withdrawals_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    return _funding(table, ctx, incoming=False)


def earn_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = _time(table, "Time", checks, ctx)
    raw_coin, raw_amount = text(table, "Earnings Coin"), text(table, "Amount")
    coin = parse_asset(raw_coin, "Earnings Coin", checks, NAME)
    checks.reject(raw_coin.is_null(), "missing asset in column Earnings Coin")
    amount = parse_amount(raw_amount, "Amount", checks)
    checks.reject(raw_amount.is_null(), "missing amount in column Amount")
    checks.reject(
        pc.invert(pc.fill_null(positive(amount), True)),
        "a positive Amount is expected for a profit, got '{}'",
        raw_amount,
    )
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or NAME),
        type=constant(n, TxType.INCOME.value),
        label=constant(n, "staking"),
        received_asset=coin,
        received_amount=amount,
        external_id=text(table, "Order ID"),
        description=text(table, "Product Name"),
    )
    return draft, checks


_RENAME = {"Filled Time({utc})": "Filled Time", "Time({utc})": "Time"}
_FUNDING = (
    "UID",
    "Account Type",
    "Time({utc})",
    "Coin",
    "Amount",
    "Fee",
    "Transfer Network",
    "Status",
    "Remarks",
)
VERSIONS = (
    FormatSpec(
        name="kucoin-trades",
        source=NAME,
        columns=(
            "UID",
            "Account Type",
            "Order ID",
            "Symbol",
            "Side",
            "Order Type",
            "Avg. Filled Price",
            "Filled Amount",
            "Filled Volume",
            "Filled Volume (USDT)",
            "Filled Time({utc})",
            "Fee",
            "Maker/Taker",
            "Fee Currency",
        ),
        optional_columns=("Tax",),
        rename=_RENAME,
        to_legs=trades_to_legs,
        zoned=True,
        description="Spot Orders_Filled Orders (the zone in the Filled Time column name)",
    ),
    FormatSpec(
        name="kucoin-deposits",
        source=NAME,
        columns=_FUNDING,
        optional_columns=("Hash", "Deposit Address"),
        rename=_RENAME,
        to_legs=deposits_to_legs,
        zoned=True,
        description="Deposit_Withdrawal History_Deposit History",
    ),
    FormatSpec(
        name="kucoin-withdrawals",
        source=NAME,
        columns=_FUNDING + ("Withdrawal Address/Account",),
        optional_columns=("Hash",),
        rename=_RENAME,
        to_legs=withdrawals_to_legs,
        zoned=True,
        description="Deposit_Withdrawal History_Withdrawal Record",
    ),
    FormatSpec(
        name="kucoin-earn",
        source=NAME,
        columns=(
            "UID",
            "Account Type",
            "Order ID",
            "Time({utc})",
            "Staked Coin",
            "Product Type",
            "Product Name",
            "Earnings Coin",
            "Earnings Type",
            "Remarks",
            "Amount",
        ),
        optional_columns=("Amount（USDT）", "Fee"),
        rename=_RENAME,
        to_legs=earn_to_legs,
        zoned=True,
        description="Earn Orders_Profit History (staking and savings income)",
    ),
)
