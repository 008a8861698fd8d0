"""Coinbase transaction history (the account statement CSV).

Real exports start with a preamble (a blank line, "Transactions", "User,<name>,<id>") before the
header ID, Timestamp, Transaction Type, Asset, Quantity Transacted, Price Currency, Price at
Transaction, Subtotal, Total (inclusive of fees and/or spread), Fees and/or Spread, Notes;
detection skips it. Money fields may carry '$', thousands separators and a minus sign;
quantities are taken as absolute values (newer exports sign them).

Mapping (Transaction Type, case-insensitive):
- Buy / Advanced Trade Buy: Price Currency (Subtotal) -> Asset (Quantity); buy when the price
  currency is fiat, trade when it is crypto. Sell / Advanced Trade Sell: the reverse. Subtotal is
  the fee-exclusive trade amount; without it Total -/+ Fees is used.
- Convert: Asset (Quantity) -> the asset and amount of Notes "Converted 0.5 ETH to 1,000 USDC":
  a trade.
- Send / Withdrawal / Exchange|Pro Withdrawal -> withdrawal; Receive / Deposit / Exchange|Pro
  Deposit -> deposit. Fiat deposits/withdrawals (bank transfers, Asset = USD) are skipped.
- Staking Income, Inflation Reward -> income/staking; Rewards Income, Reward Income, Learning
  Reward, Coinbase Earn, Incentives Rewards Payout -> income/reward; Interest -> income/interest.
- anything else is rejected ("unknown transaction type").
Fees and/or Spread (when > 0) is the fee, in Price Currency. Subtotal is the stated value
(fiat_value) when Price Currency is fiat. The Coinbase ID is the exchange id (external_id) and the
identity of the transaction. Timestamps are UTC ('2024-01-05 14:03:00 UTC' or ISO 8601).
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ingest.extract.formats.base import (
    FormatSpec, ParseContext, RowChecks, ZERO, abs_amount, add_amounts, classify_sides, constant, draft_table,
    lookup, parse_amount, parse_asset, parse_timestamp, positive, skip_fiat_only, text, when,
)
from ingest.normalize.assets import is_fiat
from ingest.normalize.canonical import AMOUNT, TxType

NAME = "coinbase"
COLUMNS = ("ID", "Timestamp", "Transaction Type", "Asset", "Quantity Transacted", "Price Currency",
           "Price at Transaction", "Subtotal", "Total (inclusive of fees and/or spread)",
           "Fees and/or Spread", "Notes")

# transaction type (lower case) -> (kind, income label)
KINDS: dict[str, tuple[str | None, ...]] = {
    "buy": ("buy", None), "advanced trade buy": ("buy", None),
    "sell": ("sell", None), "advanced trade sell": ("sell", None),
    "convert": ("convert", None),
    **{t: ("out", None) for t in ("send", "withdrawal", "exchange withdrawal", "pro withdrawal")},
    **{t: ("in", None) for t in ("receive", "deposit", "exchange deposit", "pro deposit")},
    "staking income": ("income", "staking"), "inflation reward": ("income", "staking"),
    **{t: ("income", "reward") for t in ("rewards income", "reward income", "learning reward",
                                           "coinbase earn", "incentives rewards payout")},
    "interest": ("income", "interest"),
}

_CONVERTED = (r"^Converted\s+(?P<from_amount>[\d.,]+)\s+(?P<from_asset>\S+)\s+to\s+"
              r"(?P<to_amount>[\d.,]+)\s+(?P<to_asset>\S+)")


def to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "Timestamp"), "Timestamp", checks, ctx.tz)
    tx_type = text(table, "Transaction Type")
    kind, income_label = lookup(tx_type, KINDS, 2)
    checks.reject(tx_type.is_null(), "missing transaction type in column Transaction Type")
    checks.reject(pc.and_(tx_type.is_valid(), kind.is_null()),
                  "unknown transaction type '{}' in column Transaction Type", tx_type)
    raw_asset, raw_quantity = text(table, "Asset"), text(table, "Quantity Transacted")
    asset = parse_asset(raw_asset, "Asset", checks, NAME)
    checks.reject(raw_asset.is_null(), "missing asset in column Asset")
    quantity = abs_amount(parse_amount(raw_quantity, "Quantity Transacted", checks, money=True))
    checks.reject(raw_quantity.is_null(), "missing amount in column Quantity Transacted")
    price_currency = parse_asset(text(table, "Price Currency"), "Price Currency", checks, NAME)
    raw_subtotal, total_col = text(table, "Subtotal"), "Total (inclusive of fees and/or spread)"
    raw_total = text(table, total_col)
    subtotal = abs_amount(parse_amount(raw_subtotal, "Subtotal", checks, money=True))
    total = abs_amount(parse_amount(raw_total, total_col, checks, money=True))
    fees = abs_amount(parse_amount(text(table, "Fees and/or Spread"), "Fees and/or Spread", checks,
                                   money=True))

    is_buy, is_sell = pc.equal(kind, "buy"), pc.equal(kind, "sell")
    is_convert, is_out = pc.equal(kind, "convert"), pc.equal(kind, "out")
    is_in, is_income = pc.equal(kind, "in"), pc.equal(kind, "income")
    trade = pc.or_(is_buy, is_sell)
    no_fee = pc.coalesce(fees, ZERO)
    # The fee-exclusive counter amount of a buy/sell: Subtotal, else Total -/+ Fees.
    counter = pc.coalesce(subtotal, pc.if_else(pc.fill_null(is_buy, False),
                                               add_amounts(total, no_fee, subtract=True),
                                               add_amounts(total, no_fee)))
    raw_currency = text(table, "Price Currency")
    checks.reject(pc.and_(trade, raw_currency.is_null()), "missing currency in column Price Currency")
    checks.reject(pc.and_(trade, pc.and_(raw_subtotal.is_null(), raw_total.is_null())),
                  "missing amount in column Subtotal")

    notes = text(table, "Notes")
    parts = pc.extract_regex(notes, _CONVERTED)
    converted = parts.is_valid()
    to_asset = parse_asset(when(converted, pc.struct_field(parts, "to_asset")), "Notes", checks, NAME)
    to_amount = parse_amount(when(converted, pc.struct_field(parts, "to_amount")), "Notes", checks,
                             money=True)
    checks.reject(pc.and_(is_convert, pc.invert(converted)),
                  "cannot read the received side of a Convert from Notes '{}'", notes)

    sends_asset = pc.or_(pc.or_(is_sell, is_convert), is_out)
    receives_asset = pc.or_(pc.or_(is_buy, is_in), is_income)
    sent_asset = pc.if_else(sends_asset, asset, when(is_buy, price_currency))
    sent_amount = pc.if_else(sends_asset, quantity, when(is_buy, counter))
    received_asset = pc.if_else(receives_asset, asset,
                                pc.if_else(is_sell, price_currency, when(is_convert, to_asset)))
    received_amount = pc.if_else(receives_asset, quantity,
                                 pc.if_else(is_sell, counter, when(is_convert, to_amount)))

    has_fee = pc.fill_null(positive(fees), False)
    checks.reject(pc.and_(pc.and_(has_fee, pc.invert(trade)), raw_currency.is_null()),
                  "missing currency in column Price Currency")
    type_ = pc.if_else(trade, classify_sides(sent_asset, received_asset),
                       pc.if_else(is_convert, TxType.TRADE.value,
                                  pc.if_else(is_out, TxType.WITHDRAWAL.value,
                                             pc.if_else(is_in, TxType.DEPOSIT.value,
                                                        when(is_income, TxType.INCOME.value)))))
    skip_fiat_only(checks, type_, sent_asset, received_asset)
    stated = pc.and_(pc.fill_null(is_fiat(price_currency), False), subtotal.is_valid())
    draft = draft_table(
        n, timestamp=ts, wallet=constant(n, ctx.wallet or NAME), type=type_, label=income_label,
        sent_asset=sent_asset, sent_amount=sent_amount,
        received_asset=received_asset, received_amount=received_amount,
        fee_asset=when(has_fee, price_currency), fee_amount=when(has_fee, fees, AMOUNT),
        fiat_value=when(stated, subtotal, AMOUNT), fiat_currency=when(stated, price_currency),
        external_id=text(table, "ID"), description=notes)
    return draft, checks


VERSIONS = (FormatSpec(name=NAME, columns=COLUMNS, to_legs=to_legs),)
