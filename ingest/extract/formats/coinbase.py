"""Coinbase transaction history (the account statement CSV), every header version:

- coinbase (2024-): ID, Timestamp, Transaction Type, Asset, Quantity Transacted, Price Currency,
  Price at Transaction, Subtotal, Total (inclusive of fees and/or spread), Fees and/or Spread,
  Notes;
- coinbase-2023: the same without ID, with Spot Price Currency / Spot Price at Transaction (or
  already Price Currency / Price at Transaction);
- coinbase-2021: Spot Price Currency, ..., Total (inclusive of fees), Fees;
- coinbase-2020: the currency in the column names: EUR Spot Price at Transaction, EUR Subtotal,
  EUR Total (inclusive of fees and/or spread), EUR Fees and/or Spread;
- coinbase-2017: USD Spot Price at Transaction, USD Subtotal, USD Total (inclusive of fees),
  USD Fees, with US dates (MM/DD/YYYY);
- coinbase-2019: the tax transactions report of 2017-2020 (also "UsTaxTransactionsReport"):
  USD Spot Price at Transaction, USD Amount Transacted (Inclusive of Coinbase Fees), Address,
  Notes, US dates (MM/DD/YYYY, often without a time). No Subtotal and no fee column: the amount
  transacted is what was paid (a buy's cost) or received (a sell's proceeds), fees included, so
  the tax result is the same as with the fee split out; no separate fee is shown.

Timestamps of these versions are UTC (Coinbase documents its reports in UTC; the newer ones
write the zone); dates are ISO, except the MM/DD/YYYY of coinbase-2017 and coinbase-2019 (read
month first, the versions' date_order, unless a value in the file shows day first).

Coinbase Pro (Exchange, 2018-2022) wrote two other reports, read by their own functions below:
- coinbase-pro-fills: portfolio, trade id, product, side, created at, size, size unit, price,
  fee, total, price/fee/total unit (one trade per row: size of the size unit against |total +
  fee| of the price unit, whose fee is charged on top; the total already includes it: BUY total
  = -(size x price) - fee, SELL total = size x price - fee). created at is ISO 8601 UTC ("Z").
- coinbase-pro-account: portfolio, type, time, amount, balance, amount/balance unit, transfer
  id, trade id, order id (one signed balance change per row: the match and fee rows of one
  trade id are one trade, the two rows of a conversion (USD <-> USDC) at one instant one
  exchange, deposit / withdrawal in the unit; fiat ones skipped). time is ISO 8601 UTC.

Real exports start with a preamble (a blank line, "Transactions", "User,<name>,<id>") before the
header; detection skips it. Money fields may carry currency signs, thousands separators and a
minus sign; quantities are taken as absolute values (newer exports sign them).

Mapping (Transaction Type, case-insensitive):
- Buy / Advanced Trade Buy / Advance Trade Buy (sic): Price Currency (Subtotal) -> Asset
  (Quantity); buy when the price currency is fiat, trade when it is crypto. Sell / Advanced Trade
  Sell / Advance Trade Sell: the reverse. Subtotal is the fee-exclusive amount; without it
  Total -/+ Fees. Fees and/or Spread (when > 0) is the fee, in Price Currency.
- Convert (and Wrap Asset): Asset (Quantity) -> the asset and amount of Notes "Converted 0.5 ETH
  to 1,000 USDC": a trade. No fiat moves, so no fiat fee: the spread (Fees, or Total - Subtotal
  when Fees is blank) is charged in the sent asset, its share Quantity x spread / Total; the
  rest is what was exchanged, at the value Subtotal. ETH -> ETH2 is a 1:1 staking receipt, the
  same holding (ETH2 reads as ETH, ingest/tax/README.md "1:1 receipts"): skipped.
- Send / Withdrawal / Exchange|Pro Withdrawal -> withdrawal; Receive / Deposit / Exchange|Pro
  Deposit -> deposit. Fiat deposits/withdrawals (bank transfers) and fiat-for-fiat rows are
  skipped. An ETH2 Send and an ETH Receive at one instant (the ETH2 deprecation) are one
  migration of one asset: skipped together.
- skipped as internal moves: Retail Staking Transfer, Retail Unstaking Transfer, Retail Eth2
  Deprecation, Vault Withdrawal, Cash to Savings.
- Staking Income, Inflation Reward -> income/staking; Rewards Income, Reward Income, Learning
  Reward, Coinbase Earn, Incentives Rewards Payout -> income/reward; Interest, Interest payout
  -> income/interest.
- anything else is rejected ("unknown transaction type").
Subtotal is the stated value (fiat_value) when Price Currency is fiat. The Coinbase ID is the
exchange id (external_id) and the identity of the transaction. Timestamps are UTC
('2024-01-05 14:03:00 UTC' or ISO 8601).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.extract.formats.base import (
    ZERO,
    FormatSpec,
    ParseContext,
    RowChecks,
    abs_amount,
    add_amounts,
    as_mask,
    classify_sides,
    constant,
    draft_table,
    parse_amount,
    parse_asset,
    parse_timestamp,
    positive,
    read_asset_amount,
    read_kind,
    skip_fiat_only,
    text,
    trade_rows,
    when,
)
from ingest.normalize.assets import is_fiat
from ingest.normalize.canonical import AMOUNT, TxType

NAME = "coinbase"
# What to_legs reads (the newest header's names); older versions are renamed to these.
PRICE_CCY, PRICE, TOTAL, FEES = (
    "Price Currency",
    "Price at Transaction",
    "Total (inclusive of fees and/or spread)",
    "Fees and/or Spread",
)
BASE = ("Timestamp", "Transaction Type", "Asset", "Quantity Transacted")
COLUMNS = ("ID",) + BASE + (PRICE_CCY, PRICE, "Subtotal", TOTAL, FEES, "Notes")

INTERNAL = "{} is a move within the user's own Coinbase account (no disposal)"
# transaction type (lower case) -> (kind, income label)
KINDS: dict[str, tuple[str | None, ...]] = {
    **{t: ("buy", None) for t in ("buy", "advanced trade buy", "advance trade buy")},
    **{t: ("sell", None) for t in ("sell", "advanced trade sell", "advance trade sell")},
    "convert": ("convert", None),
    "wrap asset": ("convert", None),
    **{t: ("out", None) for t in ("send", "withdrawal", "exchange withdrawal", "pro withdrawal")},
    **{t: ("in", None) for t in ("receive", "deposit", "exchange deposit", "pro deposit")},
    **{
        t: ("internal", None)
        for t in (
            "retail staking transfer",
            "retail unstaking transfer",
            "retail eth2 deprecation",
            "vault withdrawal",
            "cash to savings",
        )
    },
    "staking income": ("income", "staking"),
    "inflation reward": ("income", "staking"),
    **{
        t: ("income", "reward")
        for t in (
            "rewards income",
            "reward income",
            "learning reward",
            "coinbase earn",
            "incentives rewards payout",
        )
    },
    "interest": ("income", "interest"),
    "interest payout": ("income", "interest"),
}

_CONVERTED = (
    r"^(?:Converted|Wrapped)\s+(?P<from_amount>[\d.,]+)\s+(?P<from_asset>\S+)\s+to\s+"
    r"(?P<to_amount>[\d.,]+)\s+(?P<to_asset>\S+)"
)


def to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "Timestamp"), "Timestamp", checks, ctx.tz)
    tx_type, (kind, income_label) = read_kind(
        table, "Transaction Type", KINDS, 2, checks, "transaction type"
    )
    checks.skip(pc.equal(kind, "internal"), INTERNAL, tx_type)
    asset, signed = read_asset_amount(
        table, ("Asset", "Quantity Transacted"), checks, NAME, money=True
    )
    quantity = abs_amount(signed)
    # The currency: its own column, or (2017/2020 headers) the one in the column names.
    raw_currency = pc.coalesce(text(table, PRICE_CCY), text(table, "header_ccy"))
    price_currency = parse_asset(raw_currency, PRICE_CCY, checks, NAME)
    raw_subtotal, raw_total = text(table, "Subtotal"), text(table, TOTAL)
    subtotal = abs_amount(parse_amount(raw_subtotal, "Subtotal", checks, money=True))
    total = abs_amount(parse_amount(raw_total, TOTAL, checks, money=True))
    fees = abs_amount(parse_amount(text(table, FEES), FEES, checks, money=True))

    is_buy, is_sell = pc.equal(kind, "buy"), pc.equal(kind, "sell")
    is_convert, is_out = pc.equal(kind, "convert"), pc.equal(kind, "out")
    is_in, is_income = pc.equal(kind, "in"), pc.equal(kind, "income")
    trade = pc.or_(is_buy, is_sell)
    no_fee = pc.coalesce(fees, ZERO)
    # The fee-exclusive counter amount of a buy/sell: Subtotal, else Total -/+ Fees.
    counter = pc.coalesce(
        subtotal,
        pc.if_else(
            pc.fill_null(is_buy, False),
            add_amounts(total, no_fee, subtract=True),
            add_amounts(total, no_fee),
        ),
    )
    checks.reject(pc.and_(trade, raw_currency.is_null()), f"missing currency in column {PRICE_CCY}")
    checks.reject(
        pc.and_(trade, pc.and_(raw_subtotal.is_null(), raw_total.is_null())),
        "missing amount in column Subtotal",
    )

    notes = text(table, "Notes")
    parts = pc.extract_regex(notes, _CONVERTED)
    converted = pc.and_(parts.is_valid(), is_convert)
    to_asset = parse_asset(
        when(converted, pc.struct_field(parts, "to_asset")), "Notes", checks, NAME
    )
    to_amount = parse_amount(
        when(converted, pc.struct_field(parts, "to_amount")), "Notes", checks, money=True
    )
    checks.reject(
        pc.and_(is_convert, pc.invert(pc.fill_null(converted, False))),
        "cannot read the received side of a Convert from Notes '{}'",
        notes,
    )
    convert_fee = _convert_fee(quantity, subtotal, total, fees, pc.fill_null(converted, False))

    sends_asset = pc.or_(pc.or_(is_sell, is_convert), is_out)
    receives_asset = pc.or_(pc.or_(is_buy, is_in), is_income)
    sent_asset = pc.if_else(sends_asset, asset, when(is_buy, price_currency))
    sent_quantity = pc.if_else(
        pc.fill_null(converted, False),
        add_amounts(quantity, pc.coalesce(convert_fee, ZERO), subtract=True),
        quantity,
    )
    sent_amount = pc.if_else(sends_asset, sent_quantity, when(is_buy, counter))
    received_asset = pc.if_else(
        receives_asset, asset, pc.if_else(is_sell, price_currency, when(is_convert, to_asset))
    )
    received_amount = pc.if_else(
        receives_asset, quantity, pc.if_else(is_sell, counter, when(is_convert, to_amount))
    )

    trade_fee = pc.and_(trade, pc.fill_null(positive(fees), False))
    has_convert_fee = pc.fill_null(positive(convert_fee), False)
    fee_asset = pc.if_else(trade_fee, price_currency, when(has_convert_fee, asset))
    fee_amount = pc.if_else(trade_fee, fees, when(has_convert_fee, convert_fee, AMOUNT))
    type_ = pc.if_else(
        trade,
        classify_sides(sent_asset, received_asset),
        pc.if_else(
            is_convert,
            TxType.TRADE.value,
            pc.if_else(
                is_out,
                TxType.WITHDRAWAL.value,
                pc.if_else(is_in, TxType.DEPOSIT.value, when(is_income, TxType.INCOME.value)),
            ),
        ),
    )
    skip_fiat_only(checks, type_, sent_asset, received_asset)
    stated = pc.and_(pc.fill_null(is_fiat(price_currency), False), subtotal.is_valid())
    # The ETH2 deprecation: an ETH2 Send and an ETH Receive at one instant meet as one group
    # (a same-asset pair is skipped when groups are combined; a lone leg keeps its type).
    eth2_leg = pc.or_(
        pc.and_(is_out, pc.equal(pc.utf8_upper(text(table, "Asset")), "ETH2")),
        pc.and_(is_in, pc.equal(asset, "ETH")),
    )
    group = when(
        eth2_leg,
        pc.binary_join_element_wise(
            "eth2-migration", pc.cast(pc.cast(ts, pa.int64()), pa.string()), "|"
        ),
    )
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or NAME),
        type=type_,
        label=income_label,
        sent_asset=sent_asset,
        sent_amount=sent_amount,
        received_asset=received_asset,
        received_amount=received_amount,
        fee_asset=fee_asset,
        fee_amount=fee_amount,
        fiat_value=when(stated, subtotal, AMOUNT),
        fiat_currency=when(stated, price_currency),
        external_id=text(table, "ID"),
        description=notes,
        group=group,
    )
    return draft, checks


def _convert_fee(
    quantity: pa.Array, subtotal: pa.Array, total: pa.Array, fees: pa.Array, converted: pa.Array
) -> pa.Array:
    """The spread of a Convert in units of the sent asset: Quantity x spread / Total, spread =
    Fees, else Total - Subtotal (rare rows: exact Decimal per row)."""
    idx = np.flatnonzero(as_mask(converted))
    out: list[Decimal | None] = [None] * len(quantity)
    step = Decimal(1).scaleb(-AMOUNT.scale)
    for i, q, sub, tot, fee in zip(
        idx.tolist(),
        *(a.take(pa.array(idx)).to_pylist() for a in (quantity, subtotal, total, fees)),
    ):
        spread = fee if fee else (tot - sub if tot is not None and sub is not None else None)
        if q is not None and spread and tot and spread > 0 and spread < tot:
            out[i] = (q * spread / tot).quantize(step, rounding=ROUND_HALF_EVEN)
    return pa.array(out, AMOUNT)


def _version(
    name: str,
    columns: tuple[str, ...],
    description: str,
    *,
    rename: dict[str, str] | None = None,
    zoned: bool = True,
) -> FormatSpec:
    return FormatSpec(
        name=name,
        source=NAME,
        columns=columns,
        description=description,
        rename=rename or {},
        optional_columns=("ID",) if "ID" not in columns else (),
        to_legs=to_legs,
        zoned=zoned,  # '2024-01-05 14:03:00 UTC'; 2017's US dates carry no zone
    )


PRO_WALLET = "coinbase-pro"  # Coinbase Pro was an account of its own: transfers to it are moves


def pro_fills_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    """Coinbase Pro fills: one trade per row (module docstring)."""
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "created at"), "created at", checks, ctx.tz)
    unit = text(table, "price/fee/total unit")
    total = parse_amount(text(table, "total"), "total", checks, money=True)
    fee = abs_amount(parse_amount(text(table, "fee"), "fee", RowChecks(n), money=True))
    # the quote amount exchanged, fee excluded: BUY total = -(size x price) - fee, SELL
    # total = size x price - fee, so |total + fee| either way
    quote_amount = pc.cast(abs_amount(add_amounts(total, pc.coalesce(fee, ZERO))), pa.string())
    draft = trade_rows(
        NAME,
        n,
        replace(ctx, wallet=ctx.wallet or PRO_WALLET),
        checks,
        ts,
        text(table, "side"),
        text(table, "size unit"),
        text(table, "size"),
        unit,
        pc.if_else(text(table, "total").is_null(), text(table, "total"), quote_amount),
        unit,
        text(table, "fee"),
        ("size", "total", "fee"),
        external_id=pc.binary_join_element_wise(
            text(table, "product"), text(table, "trade id"), ":"
        ),
    )
    return draft, checks


PRO_ACCOUNT_KINDS: dict[str, tuple[str | None, ...]] = {
    "match": ("side", "trade"),
    "fee": ("fee", "trade"),
    "conversion": ("side", "conversion"),
    "deposit": ("deposit", None),
    "withdrawal": ("withdrawal", None),
}


def pro_account_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    """Coinbase Pro account statement: one signed balance change per row (module docstring)."""
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "time"), "time", checks, ctx.tz)
    type_text, (kind, family) = read_kind(table, "type", PRO_ACCOUNT_KINDS, 2, checks)
    unit, signed = read_asset_amount(
        table, ("amount/balance unit", "amount"), checks, NAME, money=True
    )
    amount = abs_amount(signed)
    out = pc.fill_null(pc.less(signed, ZERO), False)
    is_side = pc.fill_null(pc.equal(kind, "side"), False)
    is_fee = pc.fill_null(pc.equal(kind, "fee"), False)
    is_deposit = pc.fill_null(pc.equal(kind, "deposit"), False)
    is_withdrawal = pc.fill_null(pc.equal(kind, "withdrawal"), False)
    checks.skip(pc.and_(pc.or_(is_side, is_fee), pc.equal(amount, ZERO)), "zero amount")
    sent = pc.or_(pc.and_(is_side, out), is_withdrawal)
    received = pc.or_(pc.and_(is_side, pc.invert(out)), is_deposit)
    type_ = pc.if_else(
        is_deposit, TxType.DEPOSIT.value, when(is_withdrawal, TxType.WITHDRAWAL.value)
    )
    sent_asset, received_asset = when(sent, unit), when(received, unit)
    skip_fiat_only(checks, type_, sent_asset, received_asset)
    # a trade's match and fee rows share its trade id; a conversion's two rows their instant
    trade_id = text(table, "trade id")
    group = pc.if_else(
        pc.and_(pc.fill_null(pc.equal(family, "trade"), False), trade_id.is_valid()),
        pc.binary_join_element_wise("coinbase-pro-trade", trade_id, "|"),
        when(
            pc.fill_null(pc.equal(family, "conversion"), False),
            pc.binary_join_element_wise(
                "coinbase-pro-conversion", pc.cast(pc.cast(ts, pa.int64()), pa.string()), "|"
            ),
        ),
    )
    checks.reject(
        pc.and_(pc.or_(is_side, is_fee), group.is_null()),
        "missing trade id of a {} row",
        type_text,
    )
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or PRO_WALLET),
        type=type_,
        sent_asset=sent_asset,
        sent_amount=when(sent, amount, AMOUNT),
        received_asset=received_asset,
        received_amount=when(received, amount, AMOUNT),
        fee_asset=when(is_fee, unit),
        fee_amount=when(is_fee, amount, AMOUNT),
        external_id=pc.coalesce(text(table, "transfer id"), trade_id),
        group=group,
    )
    return draft, checks


_CCY_NAMES = {"{ccy} Spot Price at Transaction": PRICE, "{ccy} Subtotal": "Subtotal"}
VERSIONS = (
    _version(NAME, COLUMNS, "transaction history, 2024 and later (with ID)"),
    _version(
        "coinbase-2023",
        BASE
        + ("Spot Price Currency", "Spot Price at Transaction", "Subtotal", TOTAL, FEES, "Notes"),
        "transaction history 2022-2023 (Spot Price Currency, no ID)",
        rename={"Spot Price Currency": PRICE_CCY, "Spot Price at Transaction": PRICE},
    ),
    _version(
        "coinbase-2023b",
        BASE + (PRICE_CCY, PRICE, "Subtotal", TOTAL, FEES, "Notes"),
        "transaction history 2023-2024 (Price Currency, no ID)",
    ),
    _version(
        "coinbase-2021",
        BASE
        + (
            "Spot Price Currency",
            "Spot Price at Transaction",
            "Subtotal",
            "Total (inclusive of fees)",
            "Fees",
            "Notes",
        ),
        "transaction history 2021 (Total (inclusive of fees), Fees)",
        rename={
            "Spot Price Currency": PRICE_CCY,
            "Spot Price at Transaction": PRICE,
            "Total (inclusive of fees)": TOTAL,
            "Fees": FEES,
        },
    ),
    _version(
        "coinbase-2020",
        BASE
        + (
            "{ccy} Spot Price at Transaction",
            "{ccy} Subtotal",
            "{ccy} Total (inclusive of fees and/or spread)",
            "{ccy} Fees and/or Spread",
            "Notes",
        ),
        "transaction history 2020 (currency in the column names: EUR Subtotal, ...)",
        rename={
            **_CCY_NAMES,
            "{ccy} Total (inclusive of fees and/or spread)": TOTAL,
            "{ccy} Fees and/or Spread": FEES,
        },
    ),
    _version(
        "coinbase-2017",
        BASE
        + (
            "{ccy} Spot Price at Transaction",
            "{ccy} Subtotal",
            "{ccy} Total (inclusive of fees)",
            "{ccy} Fees",
            "Notes",
        ),
        "transaction history 2017-2019 (USD Subtotal, ..., dates MM/DD/YYYY)",
        rename={**_CCY_NAMES, "{ccy} Total (inclusive of fees)": TOTAL, "{ccy} Fees": FEES},
        zoned=False,
    ),
    _version(
        "coinbase-2019",
        BASE
        + (
            "{ccy} Spot Price at Transaction",
            "{ccy} Amount Transacted (Inclusive of Coinbase Fees)",
            "Address",
            "Notes",
        ),
        "tax transactions report 2017-2020 (UsTaxTransactionsReport: {ccy} Amount Transacted "
        "(Inclusive of Coinbase Fees), Address; dates MM/DD/YYYY)",
        rename={
            "{ccy} Spot Price at Transaction": PRICE,
            "{ccy} Amount Transacted (Inclusive of Coinbase Fees)": TOTAL,
        },
        zoned=False,
    ),
    FormatSpec(
        name="coinbase-pro-fills",
        zoned=True,
        source=NAME,
        columns=(
            "portfolio",
            "trade id",
            "product",
            "side",
            "created at",
            "size",
            "size unit",
            "price",
            "fee",
            "total",
            "price/fee/total unit",
        ),
        to_legs=pro_fills_to_legs,
        description="Coinbase Pro fills report (one trade per row, created at in UTC)",
    ),
    FormatSpec(
        name="coinbase-pro-account",
        zoned=True,
        source=NAME,
        columns=(
            "portfolio",
            "type",
            "time",
            "amount",
            "balance",
            "amount/balance unit",
            "transfer id",
            "trade id",
            "order id",
        ),
        to_legs=pro_account_to_legs,
        description="Coinbase Pro account statement (signed balance changes, time in UTC)",
    ),
)
