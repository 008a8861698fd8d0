"""OKX: the trading history (bills of the trading account) and the funding history. Versions:

- okx-trades: id, Order id, Time, Trade Type, Instrument, Type, Amount, Unit, PL, Fee, Position
  Change, Position Balance, Balance Change, Balance, Unit (the second Unit, of Balance, is not
  read);
- okx-funding: id, Time, Type, Amount, Before Balance, After Balance, Fee, Symbol.

Mapping:
- trades: a spot trade is two rows sharing id, Type Buy (the asset received: Amount of Unit) and
  Type Sell (the asset sent); they are combined into one transaction (the rows may sit in
  different chunks). Fee (written negative) is charged in the row's Unit. Trade Type Transfer is
  a move between the user's own OKX accounts: skipped; other trade types (futures, margin,
  swaps) are rejected as not supported.
- funding by Type: Deposit -> deposit, Withdrawal -> withdrawal (Fee in Symbol), Staking Yield
  -> income/staking, Fee rebate -> income/reward; Stake, Redeem staking, Savings subscription,
  Savings redemption, From/To unified trading account are internal moves: skipped; anything else
  is rejected.
Times are read as UTC (pass `tz` for an export made in another zone). The id is the exchange id.
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
    positive,
    skip_fiat_only,
    text,
    when,
)
from ingest.normalize.canonical import TxType

NAME = "okx"
INTERNAL = "move between the user's own OKX accounts (no disposal)"


def _amounts(
    table: pa.Table, checks: RowChecks, asset_column: str
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(asset, |Amount|, |Fee|) of each row."""
    raw_asset, raw_amount = text(table, asset_column), text(table, "Amount")
    asset = parse_asset(raw_asset, asset_column, checks, NAME)
    checks.reject(raw_asset.is_null(), f"missing asset in column {asset_column}")
    amount = abs_amount(parse_amount(raw_amount, "Amount", checks))
    checks.reject(raw_amount.is_null(), "missing amount in column Amount")
    fee = abs_amount(parse_amount(text(table, "Fee"), "Fee", checks))
    return asset, amount, fee


def trades_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "Time"), "Time", checks, ctx.tz)
    trade_type = pc.utf8_lower(text(table, "Trade Type"))
    spot, transfer = pc.equal(trade_type, "spot"), pc.equal(trade_type, "transfer")
    checks.skip(transfer, INTERNAL)
    checks.reject(
        pc.invert(pc.fill_null(pc.or_(spot, transfer), False)),
        "trade type '{}' is not supported (spot only)",
        text(table, "Trade Type"),
    )
    side = pc.utf8_lower(text(table, "Type"))
    buy, sell = pc.equal(side, "buy"), pc.equal(side, "sell")
    checks.reject(
        pc.and_(spot, pc.invert(pc.fill_null(pc.or_(buy, sell), False))),
        "type '{}' is neither Buy nor Sell",
        text(table, "Type"),
    )
    trade_id = text(table, "id")
    checks.reject(trade_id.is_null(), "missing id in column id")
    asset, amount, fee = _amounts(table, checks, "Unit")
    has_fee = pc.fill_null(positive(fee), False)
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or NAME),
        sent_asset=when(sell, asset),
        sent_amount=when(sell, amount, amount.type),
        received_asset=when(buy, asset),
        received_amount=when(buy, amount, amount.type),
        fee_asset=when(has_fee, asset),
        fee_amount=when(has_fee, fee, fee.type),
        external_id=trade_id,
        group=pc.binary_join_element_wise("okx", trade_id, "|"),
    )
    return draft, checks


# funding Type (lower case) -> (kind, label)
KINDS: dict[str, tuple[str | None, ...]] = {
    "deposit": ("deposit", None),
    "withdrawal": ("withdrawal", None),
    "staking yield": ("income", "staking"),
    "fee rebate": ("income", "reward"),
    **{
        t: ("skip", None)
        for t in (
            "stake",
            "redeem staking",
            "savings subscription",
            "savings redemption",
            "from unified trading account",
            "to unified trading account",
        )
    },
}


def funding_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "Time"), "Time", checks, ctx.tz)
    type_text = text(table, "Type")
    kind, label = lookup(type_text, KINDS, 2)
    checks.reject(
        pc.and_(type_text.is_valid(), kind.is_null()), "unknown type '{}' in column Type", type_text
    )
    checks.reject(type_text.is_null(), "missing type in column Type")
    checks.skip(pc.equal(kind, "skip"), INTERNAL)
    asset, amount, fee = _amounts(table, checks, "Symbol")
    out = pc.equal(kind, "withdrawal")
    in_ = pc.or_(pc.equal(kind, "deposit"), pc.equal(kind, "income"))
    type_ = pc.if_else(
        pc.equal(kind, "income"),
        TxType.INCOME.value,
        pc.if_else(out, TxType.WITHDRAWAL.value, when(in_, TxType.DEPOSIT.value)),
    )
    has_fee = pc.fill_null(positive(fee), False)
    sent_asset, received_asset = when(out, asset), when(in_, asset)
    skip_fiat_only(checks, type_, sent_asset, received_asset)
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or NAME),
        type=type_,
        label=label,
        sent_asset=sent_asset,
        sent_amount=when(out, amount, amount.type),
        received_asset=received_asset,
        received_amount=when(in_, amount, amount.type),
        fee_asset=when(has_fee, asset),
        fee_amount=when(has_fee, fee, fee.type),
        external_id=text(table, "id"),
    )
    return draft, checks


VERSIONS = (
    FormatSpec(
        name="okx-trades",
        source=NAME,
        columns=(
            "id",
            "Order id",
            "Time",
            "Trade Type",
            "Instrument",
            "Type",
            "Amount",
            "Unit",
            "Fee",
        ),
        optional_columns=("PL", "Position Change", "Position Balance", "Balance Change", "Balance"),
        to_legs=trades_to_legs,
        zoned=False,
        description="trading history (two rows per spot trade)",
    ),
    FormatSpec(
        name="okx-funding",
        source=NAME,
        columns=(
            "id",
            "Time",
            "Type",
            "Amount",
            "Before Balance",
            "After Balance",
            "Fee",
            "Symbol",
        ),
        to_legs=funding_to_legs,
        zoned=False,
        description="funding account history",
    ),
)
