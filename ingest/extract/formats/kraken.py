"""Kraken: ledgers.csv (below) and trades.csv (`trades_to_legs`). Ledgers export: txid, refid, time, type, subtype, aclass, asset, amount, fee, balance
(newer exports add columns, e.g. wallet; they are ignored). One row = one signed balance change of
one asset; `amount` excludes the row's `fee`, which is charged on top in the row's asset.

Mapping (type, subtype):
- trade, spend, receive: legs of one transaction sharing the refid (the two rows may sit in
  different chunks): amount < 0 is the sent side, > 0 the received side, a fee on either row is
  the fee (a second fee asset becomes a separate fee transaction). Type from the sides.
- deposit / withdrawal: by the sign of amount (a negative deposit is a reversal: withdrawal
  labelled reversal, and the other way round); the fee is in the row's asset.
- staking, earn/reward -> income/staking; dividend -> income/income; invite bonus -> income/reward.
- transfer with an empty subtype: airdrop or fork credited (income/airdrop) or, negative, a
  delisting (spend labelled delisting).
- skipped, not taxable (the staked and liquid codes normalize to one asset, ETH2.S -> ETH, so
  moving between them changes no holding): transfer spottostaking / stakingfromspot /
  stakingtospot / spotfromstaking / spotfromfutures, earn allocation / deallocation /
  autoallocation / migration.
- rows with an empty txid are skipped: Kraken writes such a row for a deposit/withdrawal that is
  not yet confirmed and a second row with a txid once it is, so the empty one is a duplicate.
- margin, rollover, settled, liquidation: rejected (margin trading is not supported); anything
  else is rejected as unknown.
Asset codes are normalized (XXBT -> BTC, ZUSD -> USD, XBT.M -> BTC, ETH2.S -> ETH, DOT28.S ->
DOT). The refid is the exchange id and the identity of the transaction. time is UTC
('2024-01-05 14:03:00', fractional seconds allowed).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ingest.extract.formats.base import (
    FormatSpec,
    ParseContext,
    RowChecks,
    abs_amount,
    classify_sides,
    constant,
    draft_table,
    lookup,
    negative,
    parse_amount,
    parse_asset,
    parse_timestamp,
    positive,
    read_asset_amount,
    skip_fiat_only,
    split_pair,
    text,
    when,
)
from ingest.normalize.canonical import TxType

NAME = "kraken"
COLUMNS = (
    "txid",
    "refid",
    "time",
    "type",
    "subtype",
    "aclass",
    "asset",
    "amount",
    "fee",
    "balance",
)

INTERNAL = "move between the user's own Kraken balances (not taxable)"
# "type/subtype" (lower case; "type/*" matches any subtype) -> (kind, label or skip reason)
KINDS: dict[str, tuple[str | None, ...]] = {
    **{f"{t}/*": ("leg", None) for t in ("trade", "spend", "receive")},
    "deposit/*": ("funding", None),
    "withdrawal/*": ("funding", None),
    "staking/*": ("income", "staking"),
    "earn/reward": ("income", "staking"),
    "dividend/*": ("income", "income"),
    "invite bonus/*": ("income", "reward"),
    "transfer/": ("airdrop", None),
    **{
        f"transfer/{s}": ("skip", INTERNAL)
        for s in (
            "spottostaking",
            "stakingfromspot",
            "stakingtospot",
            "spotfromstaking",
            "spotfromfutures",
        )
    },
    **{
        f"earn/{s}": ("skip", INTERNAL)
        for s in ("allocation", "deallocation", "autoallocation", "migration")
    },
    **{f"{t}/*": ("unsupported", None) for t in ("margin", "rollover", "settled", "liquidation")},
}


def to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "time"), "time", checks, ctx.tz)
    type_text, subtype = text(table, "type"), text(table, "subtype")
    lowered = pc.utf8_lower(type_text)
    exact = pc.binary_join_element_wise(
        lowered, pc.utf8_lower(subtype), "/", null_handling="replace", null_replacement=""
    )
    kind_exact, detail_exact = lookup(exact, KINDS, 2)
    kind_any, detail_any = lookup(pc.binary_join_element_wise(lowered, "*", "/"), KINDS, 2)
    kind, detail = pc.coalesce(kind_exact, kind_any), pc.coalesce(detail_exact, detail_any)
    checks.reject(type_text.is_null(), "missing type in column type")
    checks.reject(
        pc.and_(type_text.is_valid(), pc.equal(kind, "unsupported")),
        "margin trading is not supported (type '{}')",
        type_text,
    )
    checks.reject(
        pc.and_(type_text.is_valid(), kind.is_null()), "unknown type '{}' in column type", exact
    )
    refid = text(table, "refid")
    checks.reject(refid.is_null(), "missing refid in column refid")
    asset, amount = read_asset_amount(table, ("asset", "amount"), checks, NAME)
    raw_amount, raw_fee = text(table, "amount"), text(table, "fee")
    fee = parse_amount(raw_fee, "fee", checks)
    checks.reject(negative(fee), "negative fee '{}' in column fee", raw_fee)
    checks.skip(pc.equal(kind, "skip"), "{}", detail)
    checks.skip(
        text(table, "txid").is_null(), "row without txid (unconfirmed duplicate of a ledger entry)"
    )

    is_leg, is_funding = pc.equal(kind, "leg"), pc.equal(kind, "funding")
    is_income, is_airdrop = pc.equal(kind, "income"), pc.equal(kind, "airdrop")
    zero = pc.equal(amount, pa.scalar(0, amount.type))
    has_fee = pc.fill_null(positive(fee), False)
    checks.reject(
        pc.and_(pc.or_(pc.or_(is_funding, is_income), is_airdrop), zero),
        "zero amount '{}' in column amount",
        raw_amount,
    )
    checks.reject(
        pc.and_(is_income, negative(amount)), "negative amount '{}' for income", raw_amount
    )
    checks.skip(pc.and_(pc.and_(is_leg, zero), pc.invert(has_fee)), "zero amount and fee")

    out, in_ = negative(amount), positive(amount)
    sent_asset, received_asset = when(out, asset), when(in_, asset)
    funding_type = pc.if_else(in_, TxType.DEPOSIT.value, TxType.WITHDRAWAL.value)
    reversal = pc.and_(is_funding, pc.not_equal(pc.utf8_lower(type_text), funding_type))
    type_ = pc.case_when(
        pa.StructArray.from_arrays(
            [
                pc.fill_null(m, False)
                for m in (is_funding, is_income, pc.and_(is_airdrop, in_), pc.and_(is_airdrop, out))
            ],
            names=["funding", "income", "airdrop", "delisting"],
        ),
        funding_type,
        TxType.INCOME.value,
        TxType.INCOME.value,
        TxType.SPEND.value,
    )
    label = pc.case_when(
        pa.StructArray.from_arrays(
            [
                pc.fill_null(m, False)
                for m in (reversal, is_income, pc.and_(is_airdrop, in_), pc.and_(is_airdrop, out))
            ],
            names=["reversal", "income", "airdrop", "delisting"],
        ),
        "reversal",
        detail,
        "airdrop",
        "delisting",
    )
    skip_fiat_only(checks, type_, sent_asset, received_asset)
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or NAME),
        type=type_,
        label=label,
        sent_asset=sent_asset,
        sent_amount=when(out, abs_amount(amount), amount.type),
        received_asset=received_asset,
        received_amount=when(in_, amount, amount.type),
        fee_asset=when(has_fee, asset),
        fee_amount=when(has_fee, fee, fee.type),
        external_id=refid,
        group=when(is_leg, refid),
    )
    return draft, checks


KRAKEN_QUOTES = (
    "USDT",
    "USDC",
    "ZUSD",
    "ZEUR",
    "ZGBP",
    "ZCAD",
    "ZJPY",
    "ZCHF",
    "ZAUD",
    "XXBT",
    "XETH",
    "USD",
    "EUR",
    "GBP",
    "CAD",
    "JPY",
    "CHF",
    "AUD",
    "XBT",
    "ETH",
    "DAI",
    "DOT",
)


def trades_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    """trades.csv: txid, ordertxid, pair, time, type (buy/sell), ordertype, price, cost, fee,
    vol, margin, misc, ledgers. buy: cost of the quote -> vol of the base, sell: the reverse; the
    fee is in the quote. Pairs: "XXBTZUSD" (legacy codes, 4 + 4), "DOTUSD", "BTC/USD"."""
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "time"), "time", checks, ctx.tz)
    pair = text(table, "pair")
    legacy = pc.extract_regex(pair, r"^(?P<base>[XZ][A-Z0-9]{3})(?P<quote>[XZ][A-Z]{3})$")
    base, quote = split_pair(pair, KRAKEN_QUOTES)
    base = pc.coalesce(pc.struct_field(legacy, "base"), base)
    quote = pc.coalesce(pc.struct_field(legacy, "quote"), quote)
    checks.reject(pc.and_(pair.is_valid(), base.is_null()), "cannot split the pair '{}'", pair)
    b, q = parse_asset(base, "pair", checks, NAME), parse_asset(quote, "pair", checks, NAME)
    side = pc.utf8_lower(text(table, "type"))
    buy, sell = pc.equal(side, "buy"), pc.equal(side, "sell")
    checks.reject(
        pc.invert(pc.fill_null(pc.or_(buy, sell), False)),
        "type '{}' is neither buy nor sell",
        text(table, "type"),
    )
    checks.reject(
        pc.fill_null(positive(parse_amount(text(table, "margin"), "margin", RowChecks(n))), False),
        "margin trading is not supported (margin '{}')",
        text(table, "margin"),
    )
    cost = abs_amount(parse_amount(text(table, "cost"), "cost", checks))
    vol = abs_amount(parse_amount(text(table, "vol"), "vol", checks))
    fee = abs_amount(parse_amount(text(table, "fee"), "fee", checks))
    checks.reject(pc.or_(cost.is_null(), vol.is_null()), "missing cost or vol")
    has_fee = pc.fill_null(positive(fee), False)
    sent_asset, received_asset = pc.if_else(buy, q, b), pc.if_else(buy, b, q)
    type_ = classify_sides(sent_asset, received_asset)
    skip_fiat_only(checks, type_, sent_asset, received_asset)
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or NAME),
        type=type_,
        sent_asset=sent_asset,
        sent_amount=pc.if_else(buy, cost, vol),
        received_asset=received_asset,
        received_amount=pc.if_else(buy, vol, cost),
        fee_asset=when(has_fee, q),
        fee_amount=when(has_fee, fee, fee.type),
        external_id=text(table, "txid"),
    )
    return draft, checks


VERSIONS = (
    FormatSpec(name=NAME, columns=COLUMNS, to_legs=to_legs, zoned=True, description="ledgers.csv"),
    FormatSpec(
        name="kraken-trades",
        source=NAME,
        columns=(
            "txid",
            "ordertxid",
            "pair",
            "time",
            "type",
            "ordertype",
            "price",
            "cost",
            "fee",
            "vol",
            "margin",
            "misc",
        ),
        optional_columns=("ledgers",),
        to_legs=trades_to_legs,
        zoned=True,
        description="trades.csv",
    ),
)
