"""Bitstamp: the transactions export (Transactions > Export). Versions:

- bitstamp: ID, Account, Type, Subtype, Datetime, Amount, Amount currency, Value, Value
  currency, Rate, Rate currency, Fee, Fee currency, Order ID (the RFC 4180 export, 2023-;
  Datetime ISO 8601);
- bitstamp-2019: Type, Datetime, Account, Amount, Value, Rate, Fee, Sub Type, the unit in the
  cells ("0.5 BTC", "100.00 USD") and Datetime written "Jan. 05, 2024, 02:03 PM".

Mapping (Type): Market with Subtype Buy = Value (in Value currency) -> Amount (in Amount
currency), Sell the reverse, the fee in Fee currency; Deposit / Ripple deposit -> deposit;
Withdrawal / Ripple payment -> withdrawal; Staking reward -> income/staking; Sub Account
transfer is a move between the user's own accounts: skipped; anything else is rejected. Fiat
deposits and withdrawals are skipped (see base). ID is the exchange id; times are UTC.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ingest.extract.formats.base import (
    FormatSpec,
    ParseContext,
    RowChecks,
    abs_amount,
    amount_with_unit,
    classify_sides,
    constant,
    draft_table,
    parse_amount,
    parse_asset,
    parse_timestamp,
    positive,
    read_kind,
    skip_fiat_only,
    text,
    timestamp_text,
    when,
)
from ingest.normalize.canonical import TxType

NAME = "bitstamp"
KINDS: dict[str, tuple[str | None, ...]] = {
    "market": ("market",),
    "deposit": ("deposit",),
    "ripple deposit": ("deposit",),
    "withdrawal": ("withdrawal",),
    "ripple payment": ("withdrawal",),
    "staking reward": ("income",),
    "sub account transfer": ("skip",),
}


def to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "Datetime"), "Datetime", checks, ctx.tz)
    type_text, (kind,) = read_kind(table, "Type", KINDS, 1, checks)
    checks.skip(pc.equal(kind, "skip"), "move between the user's own Bitstamp accounts")
    sides = {}
    for col in ("Amount", "Value", "Fee"):
        raw_amount, raw_asset = text(table, col), text(table, f"{col} currency")
        sides[col] = (
            parse_asset(raw_asset, f"{col} currency", checks, NAME),
            abs_amount(parse_amount(raw_amount, col, checks)),
        )
    (asset, amount), (value_asset, value), (fee_asset, fee) = (
        sides["Amount"],
        sides["Value"],
        sides["Fee"],
    )
    checks.reject(
        pc.or_(asset.is_null(), amount.is_null()), "missing amount or currency in column Amount"
    )
    market = pc.equal(kind, "market")
    subtype = pc.utf8_lower(text(table, "Subtype"))
    buy = pc.fill_null(pc.and_(market, pc.equal(subtype, "buy")), False)
    sell = pc.fill_null(pc.and_(market, pc.equal(subtype, "sell")), False)
    checks.reject(
        pc.and_(market, pc.invert(pc.fill_null(pc.or_(buy, sell), False))),
        "subtype '{}' of a Market row is neither Buy nor Sell",
        text(table, "Subtype"),
    )
    checks.reject(
        pc.and_(market, pc.or_(value_asset.is_null(), value.is_null())),
        "missing amount or currency in column Value",
    )
    out = pc.fill_null(pc.or_(sell, pc.equal(kind, "withdrawal")), False)
    in_ = pc.fill_null(
        pc.or_(buy, pc.is_in(kind, value_set=pa.array(["deposit", "income"]))), False
    )
    sent_asset = pc.if_else(buy, value_asset, when(out, asset))
    sent_amount = pc.if_else(buy, value, when(out, amount, amount.type))
    received_asset = pc.if_else(sell, value_asset, when(in_, asset))
    received_amount = pc.if_else(sell, value, when(in_, amount, amount.type))
    income = pc.equal(kind, "income")
    type_ = pc.if_else(income, TxType.INCOME.value, classify_sides(sent_asset, received_asset))
    skip_fiat_only(checks, type_, sent_asset, received_asset)
    has_fee = pc.fill_null(positive(fee), False)
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or NAME),
        type=type_,
        label=when(income, "staking"),
        sent_asset=sent_asset,
        sent_amount=sent_amount,
        received_asset=received_asset,
        received_amount=received_amount,
        fee_asset=when(has_fee, fee_asset),
        fee_amount=when(has_fee, fee, fee.type),
        external_id=text(table, "ID"),
    )
    return draft, checks


def old_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    """The 2019 export: split "0.5 BTC" into amount and currency, read the US-style Datetime."""
    columns = {"Type": text(table, "Type"), "Subtype": text(table, "Sub Type")}
    for col in ("Amount", "Value", "Fee"):
        columns[col], columns[f"{col} currency"] = amount_with_unit(text(table, col))
    written = text(table, "Datetime")
    iso = timestamp_text(pc.replace_substring(written, ".", ""), "%b %d, %Y, %I:%M %p")
    columns["Datetime"] = pc.coalesce(iso, written)  # ISO text passes; bad text is reported
    draft, checks = to_legs(pa.table(columns), ctx)
    for col in ("Amount", "Value", "Fee"):
        checks.reject(
            pc.and_(text(table, col).is_valid(), columns[col].is_null()),
            f"cannot read amount and currency from '{{}}' in column {col}",
            text(table, col),
        )
    return draft, checks


VERSIONS = (
    FormatSpec(
        name=NAME,
        columns=(
            "ID",
            "Account",
            "Type",
            "Subtype",
            "Datetime",
            "Amount",
            "Amount currency",
            "Value",
            "Value currency",
            "Rate",
            "Rate currency",
            "Fee",
            "Fee currency",
            "Order ID",
        ),
        to_legs=to_legs,
        zoned=True,
        description="transactions export (RFC 4180, 2023 and later)",
    ),
    FormatSpec(
        name="bitstamp-2019",
        source=NAME,
        columns=("Type", "Datetime", "Account", "Amount", "Value", "Rate", "Fee", "Sub Type"),
        to_legs=old_to_legs,
        zoned=True,
        description="transactions export before 2023 (units in the cells, 'Jan. 05, "
        "2024, 02:03 PM')",
    ),
)
