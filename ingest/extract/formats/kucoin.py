"""KuCoin: the account statement bundle ("Export data"), one CSV per section. Versions:

- kucoin-trades: Spot Orders_Filled Orders: UID, Account Type, Order ID, Symbol, Side, Order
  Type, Avg. Filled Price, Filled Amount, Filled Volume, Filled Volume (USDT), Filled
  Time(UTC+08:00), Fee, Maker/Taker, Fee Currency (Tax optional);
- kucoin-orders-2024: Spot Orders_Filled Orders of 2024, one row per order: UID, Account Type,
  Order ID, Order Time(UTC), Symbol, Side, Order Type, Order Price, Order Amount, Avg. Filled
  Price, Filled Amount, Filled Volume, Filled Volume (USDT), Filled Time(UTC), Fee, Fee Currency,
  Tax, Status (no Maker/Taker);
- kucoin-fills: the API-style trade history, one row per fill (the fields of KuCoin's fills
  API): tradeCreatedAt, symbol, side, price, size, funds, fee, feeCurrency (tradeId, orderId,
  counterOrderId, liquidity, forceTaker, feeRate, stop, type, orderType, tradeType optional);
- kucoin-deposits: Deposit_Withdrawal History_Deposit History: UID, Account Type,
  Time(UTC+08:00), Coin, Amount, Fee, Transfer Network, Status, Remarks (Hash, Deposit Address
  optional);
- kucoin-withdrawals: the same with Withdrawal Address/Account;
- kucoin-earn: Earn Orders_Profit History: UID, Account Type, Order ID, Time(UTC+08:00), Staked
  Coin, Product Type, Product Name, Earnings Coin, Earnings Type, Remarks, Amount.

Time zones: the zone of the times is in the column name ("Time(UTC+08:00)", "Time(UTC)"); `tz`
is used only when the name has none; kucoin-fills tradeCreatedAt carries no zone (`tz`), date
order year-month-day everywhere.

Mapping: BUY = Filled Volume of the quote -> Filled Amount of the base (Symbol "BTC-USDT"), SELL
the reverse, Fee in Fee Currency, Order ID the exchange id; Avg. Filled Price x Filled Amount
must be Filled Volume (within 1%, the average is rounded), else the row is rejected. An order of
kucoin-orders-2024 that filled nothing (Status cancelled) is skipped; one partly filled counts
with what filled; a Tax other than 0 is rejected (the export does not say its currency).
kucoin-fills: BUY = funds of the quote -> size of the base, SELL the reverse, fee in
feeCurrency, price x size = funds checked; tradeId (else orderId) the exchange id;
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
    check_total,
    constant,
    draft_table,
    parse_amount,
    parse_timestamp,
    positive,
    read_asset_amount,
    skip_fiat_only,
    split_pair,
    text,
    time_in_header_zone,
    trade_rows,
    when,
)
from ingest.normalize.canonical import TxType

NAME = "kucoin"


def _order_trades(
    table: pa.Table, ctx: ParseContext, checks: RowChecks, ts: pa.Array, columns: dict[str, str]
) -> pa.Table:
    """Trade rows of a filled-orders or fills history; `columns` names its symbol, side, price,
    base amount, quote amount, fee, fee currency and id columns."""
    c = columns
    symbol = text(table, c["symbol"])
    base, quote = split_pair(symbol)
    checks.reject(
        pc.and_(symbol.is_valid(), base.is_null()), "cannot split the symbol '{}'", symbol
    )
    quiet = RowChecks(table.num_rows)  # trade_rows reports bad amounts; here only the product
    price, base_amount, quote_amount = (
        parse_amount(text(table, c[k]), c[k], quiet) for k in ("price", "base", "quote")
    )
    check_total(checks, (price, base_amount), quote_amount, (c["price"], c["base"], c["quote"]))
    return trade_rows(
        NAME,
        table.num_rows,
        ctx,
        checks,
        ts,
        text(table, c["side"]),
        base,
        text(table, c["base"]),
        quote,
        text(table, c["quote"]),
        text(table, c["fee_currency"]),
        text(table, c["fee"]),
        (c["base"], c["quote"], c["fee"]),
        external_id=pc.coalesce(*(text(table, k) for k in c["id"].split("|"))),
    )


_FILLED_ORDERS = {
    "symbol": "Symbol",
    "side": "Side",
    "price": "Avg. Filled Price",
    "base": "Filled Amount",
    "quote": "Filled Volume",
    "fee": "Fee",
    "fee_currency": "Fee Currency",
    "id": "Order ID",
}


def trades_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    checks = RowChecks(table.num_rows)
    ts = time_in_header_zone(table, "Filled Time", checks, ctx)
    return _order_trades(table, ctx, checks, ts, _FILLED_ORDERS), checks


def orders_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    checks = RowChecks(table.num_rows)
    filled = parse_amount(text(table, "Filled Amount"), "Filled Amount", RowChecks(len(table)))
    checks.skip(
        pc.equal(filled, pa.scalar(0, filled.type)),
        "order '{}' filled nothing",
        text(table, "Status"),
    )
    tax = parse_amount(text(table, "Tax"), "Tax", checks)
    checks.reject(
        pc.not_equal(tax, pa.scalar(0, tax.type)),
        "Tax '{}' is not supported: the export does not say its currency",
        text(table, "Tax"),
    )
    # an order that filled nothing may have no Filled Time: its Order Time stands in (skipped)
    unfilled = pc.fill_null(pc.equal(filled, pa.scalar(0, filled.type)), False)
    stand_in = pc.if_else(unfilled, text(table, "Order Time"), text(table, "Filled Time"))
    i = table.column_names.index("Filled Time")
    ts = time_in_header_zone(
        table.set_column(i, "Filled Time", stand_in), "Filled Time", checks, ctx
    )
    return _order_trades(table, ctx, checks, ts, _FILLED_ORDERS), checks


def fills_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    checks = RowChecks(table.num_rows)
    ts = parse_timestamp(text(table, "tradeCreatedAt"), "tradeCreatedAt", checks, ctx.tz)
    columns = {
        "symbol": "symbol",
        "side": "side",
        "price": "price",
        "base": "size",
        "quote": "funds",
        "fee": "fee",
        "fee_currency": "feeCurrency",
        "id": "tradeId|orderId",
    }
    return _order_trades(table, ctx, checks, ts, columns), checks


def _funding(table: pa.Table, ctx: ParseContext, incoming: bool) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = time_in_header_zone(table, "Time", checks, ctx)
    status = text(table, "Status")
    checks.skip(
        pc.invert(pc.fill_null(pc.equal(pc.utf8_upper(status), "SUCCESS"), False)),
        "status '{}' is not a completed transfer",
        status,
    )
    coin, signed = read_asset_amount(table, ("Coin", "Amount"), checks, NAME)
    amount = abs_amount(signed)
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
    ts = time_in_header_zone(table, "Time", checks, ctx)
    coin, amount = read_asset_amount(table, ("Earnings Coin", "Amount"), checks, NAME)
    raw_amount = text(table, "Amount")
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


_RENAME = {
    "Filled Time({utc})": "Filled Time",
    "Order Time({utc})": "Order Time",
    "Time({utc})": "Time",
}
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
        name="kucoin-orders-2024",
        zoned=True,
        source=NAME,
        columns=(
            "UID",
            "Account Type",
            "Order ID",
            "Order Time({utc})",
            "Symbol",
            "Side",
            "Order Type",
            "Order Price",
            "Order Amount",
            "Avg. Filled Price",
            "Filled Amount",
            "Filled Volume",
            "Filled Volume (USDT)",
            "Filled Time({utc})",
            "Fee",
            "Fee Currency",
            "Status",
        ),
        optional_columns=("Tax",),
        rename=_RENAME,
        to_legs=orders_to_legs,
        description="Spot Orders_Filled Orders 2024 (one row per order, with Status; the zone "
        "in the time column names, year-month-day)",
    ),
    FormatSpec(
        name="kucoin-fills",
        zoned=False,
        source=NAME,
        columns=(
            "tradeCreatedAt",
            "symbol",
            "side",
            "price",
            "size",
            "funds",
            "fee",
            "feeCurrency",
        ),
        optional_columns=(
            "tradeId",
            "orderId",
            "counterOrderId",
            "liquidity",
            "forceTaker",
            "feeRate",
            "stop",
            "type",
            "orderType",
            "tradeType",
            "createdAt",
        ),
        to_legs=fills_to_legs,
        description="trade history in the fields of the fills API (tradeCreatedAt zone-less, "
        "year-month-day)",
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
