"""Gemini: the transaction history export (Account > Statements > Transaction history, saved
as CSV): Date, Time (UTC), Type, Symbol, Specification, Liquidity Indicator, Trading Fee Rate
(bps), then per asset three columns "USD Amount USD", "Fee (USD) USD", "USD Balance USD", ...,
then Trade ID, Order ID, Order Date, Order Time, Client Order ID, API Session, Tx Hash, Deposit
Destination, Deposit Tx Output, Withdrawal Destination, Withdrawal Tx Output. Which assets have
columns depends on the account (read through the `{asset}` placeholder).

Mapping (Type): Buy / Sell of Symbol "BTCUSD" (the base, then a known quote): the quote's
amount -> the base's amount (Sell the reverse), the fee from the quote's Fee column. Credit:
deposit, or income when Specification names interest (Earn: income/interest) or staking
(income/staking); Debit: withdrawal; both in the asset Symbol with its Fee column. The last
row of the export holds totals and no Date: skipped. Cells may be written as money ("$1,000.00",
"(0.5 BTC)" for a negative): the sign is dropped, the unit and separators are ignored. Trade ID
is the exchange id, Tx Hash the hash.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ingest.extract.formats.base import (
    QUOTES,
    FormatSpec,
    ParseContext,
    RowChecks,
    abs_amount,
    classify_sides,
    constant,
    draft_table,
    parse_amount,
    parse_asset,
    parse_timestamp,
    positive,
    skip_fiat_only,
    split_pair,
    text,
    when,
)
from ingest.normalize.canonical import AMOUNT, TxType

NAME = "gemini"
GEMINI_QUOTES = ("GUSD", "RLUSD", "SGD") + QUOTES


def _cells(values: pa.Array) -> pa.Array:
    """'(0.5 BTC)' -> '0.5', '$1,000.00' -> '$1,000.00' (parse_amount(money=True) does the rest)."""
    values = pc.replace_substring_regex(values, r"^\((.*)\)$", r"\1")
    return pc.replace_substring_regex(values, r"\s*[A-Za-z][A-Za-z0-9]*$", "")


def _per_asset(table: pa.Table, asset: pa.Array, template: str, checks: RowChecks) -> pa.Array:
    """The value of the column `template` ("{} Amount") of each row's asset, absolute."""
    out = pa.nulls(table.num_rows, AMOUNT)
    for name in table.column_names:
        m = [a for a in pc.unique(asset).drop_null().to_pylist() if template.format(a) == name]
        if not m:
            continue
        here = pc.fill_null(pc.equal(asset, m[0]), False)
        value = abs_amount(
            parse_amount(when(here, _cells(text(table, name))), name, checks, money=True)
        )
        out = pc.if_else(here, value, out)
    return out


def to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    date = text(table, "Date")
    checks.skip(date.is_null(), "totals row (no Date)")
    when_ = pc.binary_join_element_wise(
        date, pc.coalesce(text(table, "Time (UTC)"), "00:00:00"), " "
    )
    ts = parse_timestamp(pc.if_else(date.is_null(), "1970-01-01", when_), "Date", checks, ctx.tz)
    kind = pc.utf8_lower(text(table, "Type"))
    trade = pc.is_in(kind, value_set=pa.array(["buy", "sell"]))
    credit, debit = pc.equal(kind, "credit"), pc.equal(kind, "debit")
    known = pc.fill_null(pc.or_(trade, pc.or_(credit, debit)), False)
    checks.reject(
        pc.and_(date.is_valid(), pc.invert(known)),
        "unknown type '{}' in column Type",
        text(table, "Type"),
    )
    symbol = pc.utf8_upper(text(table, "Symbol"))
    base, quote = split_pair(symbol, GEMINI_QUOTES)
    checks.reject(pc.and_(trade, base.is_null()), "cannot split the symbol '{}'", symbol)
    # Credit/Debit: Symbol is the asset; a trade: base and quote
    main = pc.if_else(trade, base, symbol)
    main_asset = parse_asset(main, "Symbol", checks, NAME)
    quote_asset = parse_asset(when(trade, quote), "Symbol", checks, NAME)
    main_amount = _per_asset(table, main, "{0} Amount {0}", checks)
    quote_amount = _per_asset(table, quote, "{0} Amount {0}", checks)
    fee_asset = pc.if_else(trade, quote, symbol)
    fee = _per_asset(table, fee_asset, "Fee ({0}) {0}", checks)
    checks.reject(pc.and_(known, main_amount.is_null()), "no amount in the column of '{}'", main)
    checks.reject(pc.and_(trade, quote_amount.is_null()), "no amount in the column of '{}'", quote)
    buy = pc.equal(kind, "buy")
    spec = pc.utf8_lower(text(table, "Specification"))
    interest = pc.and_(credit, pc.fill_null(pc.match_substring_regex(spec, "interest|earn"), False))
    staking = pc.and_(credit, pc.fill_null(pc.match_substring(spec, "staking"), False))
    income = pc.or_(interest, staking)
    sent_asset = pc.if_else(
        buy,
        quote_asset,
        pc.if_else(pc.or_(pc.equal(kind, "sell"), debit), main_asset, pa.scalar(None, pa.string())),
    )
    sent_amount = pc.if_else(
        buy, quote_amount, when(pc.or_(pc.equal(kind, "sell"), debit), main_amount, AMOUNT)
    )
    received_asset = pc.if_else(
        pc.equal(kind, "sell"), quote_asset, when(pc.or_(buy, credit), main_asset)
    )
    received_amount = pc.if_else(
        pc.equal(kind, "sell"), quote_amount, when(pc.or_(buy, credit), main_amount, AMOUNT)
    )
    type_ = pc.if_else(income, TxType.INCOME.value, classify_sides(sent_asset, received_asset))
    label = pc.if_else(staking, "staking", when(interest, "interest"))
    skip_fiat_only(checks, type_, sent_asset, received_asset)
    has_fee = pc.fill_null(positive(fee), False)
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or NAME),
        type=type_,
        label=label,
        sent_asset=sent_asset,
        sent_amount=sent_amount,
        received_asset=received_asset,
        received_amount=received_amount,
        fee_asset=when(has_fee, parse_asset(fee_asset, "Symbol", RowChecks(n), NAME)),
        fee_amount=when(has_fee, fee, AMOUNT),
        tx_hash=text(table, "Tx Hash"),
        external_id=text(table, "Trade ID"),
        description=text(table, "Specification"),
    )
    return draft, checks


VERSIONS = (
    FormatSpec(
        name=NAME,
        columns=("Date", "Time (UTC)", "Type", "Symbol", "Specification"),
        optional_columns=(
            "Liquidity Indicator",
            "Trading Fee Rate (bps)",
            "{asset} Amount {asset}",
            "Fee ({asset}) {asset}",
            "{asset} Balance {asset}",
            "Trade ID",
            "Order ID",
            "Order Date",
            "Order Time",
            "Client Order ID",
            "API Session",
            "Tx Hash",
            "Deposit Destination",
            "Deposit Tx Output",
            "Withdrawal Destination",
            "Withdrawal Tx Output",
        ),
        to_legs=to_legs,
        zoned=True,
        description="transaction history (per asset: {asset} Amount {asset}, Fee ({asset}) "
        "{asset}, {asset} Balance {asset})",
    ),
)
