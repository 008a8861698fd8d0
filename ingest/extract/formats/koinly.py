"""Koinly universal CSV, also ledgerflow's interchange format (the generator writes it, `ledgerflow
tax` reads it).

Header: Date, Sent Amount, Sent Currency, Received Amount, Received Currency, Fee Amount, Fee
Currency, Net Worth Amount, Net Worth Currency, Label, Description, TxHash [, Wallet].

Mapping (one row = one transaction; labels compared case-insensitively):
- both sides: fiat -> crypto = buy, crypto -> fiat = sell, otherwise trade (label kept);
- only received: income when the label is a reward label (staking, mining, airdrop, fork ->
  airdrop, interest / lending interest / loan interest -> interest, lending, reward / rewards /
  cashback / bounty -> reward, income / other income / salary -> income), else deposit;
- only sent: fee for cost / fee / fees / margin fee, spend for spend / payment / purchase / gift /
  donation / lost / stolen (the label says which), else withdrawal;
- only a fee (no sides): a standalone fee, its amount moved to the sent side;
- one-sided fiat rows are skipped (see base); amounts must be positive.
`label` is the income kind for income, else the file's label in lower case. Net Worth ->
fiat_value / fiat_currency. Date: '2024-01-05 14:03:00 UTC' or ISO 8601; without a zone it is
UTC unless `tz` says otherwise. Wallet: the row's Wallet cell, else the `wallet` parameter, else
"koinly". Koinly has no per-transaction id: identity comes from the row content.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ingest.extract.formats.base import (
    FormatSpec, ParseContext, RowChecks, classify_sides, constant, draft_table, lookup, negative,
    parse_amount, parse_asset, parse_timestamp, require_pair, skip_fiat_only, text,
)
from ingest.normalize.canonical import TxType

NAME = "koinly"
COLUMNS = ("Date", "Sent Amount", "Sent Currency", "Received Amount", "Received Currency",
           "Fee Amount", "Fee Currency", "Net Worth Amount", "Net Worth Currency", "Label",
           "Description", "TxHash")
OPTIONAL_COLUMNS = ("Wallet",)

INCOME_KINDS: dict[str, tuple[str | None, ...]] = {
    "staking": ("staking",), "staking reward": ("staking",), "mining": ("mining",),
    "airdrop": ("airdrop",), "fork": ("airdrop",),
    "interest": ("interest",), "lending interest": ("interest",), "loan interest": ("interest",),
    "lending": ("lending",),
    "reward": ("reward",), "rewards": ("reward",), "cashback": ("reward",), "bounty": ("reward",),
    "income": ("income",), "other income": ("income",), "salary": ("income",),
}
OUTGOING_KINDS: dict[str, tuple[str | None, ...]] = {
    **{label: (TxType.FEE.value,) for label in ("cost", "fee", "fees", "margin fee")},
    **{label: (TxType.SPEND.value,) for label in ("spend", "payment", "purchase", "gift",
                                                   "donation", "lost", "stolen")},
}


def to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "Date"), "Date", checks, ctx.tz)
    sides = {}
    for side in ("Sent", "Received", "Fee"):
        amount_col, asset_col = f"{side} Amount", f"{side} Currency"
        raw_amount, raw_asset = text(table, amount_col), text(table, asset_col)
        amount = parse_amount(raw_amount, amount_col, checks)
        asset = parse_asset(raw_asset, asset_col, checks, NAME)
        require_pair(raw_amount, raw_asset, checks, amount_col, asset_col)
        checks.reject(negative(amount), f"negative amount '{{}}' in column {amount_col}", raw_amount)
        sides[side] = (asset, amount)
    (sent_asset, sent_amount), (received_asset, received_amount), (fee_asset, fee_amount) = (
        sides["Sent"], sides["Received"], sides["Fee"])
    raw_worth, raw_worth_currency = text(table, "Net Worth Amount"), text(table, "Net Worth Currency")
    worth = parse_amount(raw_worth, "Net Worth Amount", checks)
    worth_currency = parse_asset(raw_worth_currency, "Net Worth Currency", checks, NAME)
    require_pair(raw_worth, raw_worth_currency, checks, "Net Worth Amount", "Net Worth Currency")

    no_sides = pc.and_(sent_asset.is_null(), received_asset.is_null())
    checks.reject(pc.and_(no_sides, fee_asset.is_null()), "no sent, received or fee amount")
    fee_only = pc.and_(no_sides, fee_asset.is_valid())
    sent_asset = pc.if_else(fee_only, fee_asset, sent_asset)
    sent_amount = pc.if_else(fee_only, fee_amount, sent_amount)
    fee_asset = pc.if_else(fee_only, pa.scalar(None, fee_asset.type), fee_asset)
    fee_amount = pc.if_else(fee_only, pa.scalar(None, fee_amount.type), fee_amount)

    label = pc.utf8_lower(text(table, "Label"))
    (income_kind,) = lookup(label, INCOME_KINDS, 1)
    (outgoing_type,) = lookup(label, OUTGOING_KINDS, 1)
    by_sides = classify_sides(sent_asset, received_asset)
    income = pc.and_(pc.equal(by_sides, TxType.DEPOSIT.value), income_kind.is_valid())
    outgoing = pc.and_(pc.equal(by_sides, TxType.WITHDRAWAL.value), outgoing_type.is_valid())
    type_ = pc.if_else(pc.fill_null(income, False), TxType.INCOME.value,
                       pc.if_else(pc.fill_null(outgoing, False), outgoing_type, by_sides))
    type_ = pc.if_else(fee_only, TxType.FEE.value, type_)
    skip_fiat_only(checks, type_, sent_asset, received_asset)

    wallet = pc.coalesce(text(table, "Wallet"), constant(n, ctx.wallet or NAME))
    draft = draft_table(
        n, timestamp=ts, wallet=wallet, type=type_,
        label=pc.if_else(pc.fill_null(income, False), income_kind, label),
        sent_asset=sent_asset, sent_amount=sent_amount,
        received_asset=received_asset, received_amount=received_amount,
        fee_asset=fee_asset, fee_amount=fee_amount,
        fiat_value=worth, fiat_currency=worth_currency,
        tx_hash=text(table, "TxHash"), description=text(table, "Description"))
    return draft, checks


VERSIONS = (FormatSpec(name=NAME, columns=COLUMNS, optional_columns=OPTIONAL_COLUMNS, to_legs=to_legs),)
