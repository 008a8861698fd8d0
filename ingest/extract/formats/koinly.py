"""Koinly CSVs. The universal CSV is also ledgerflow's interchange format (the generator writes
it, `ledgerflow tax` reads it). Versions:

- koinly: the universal CSV, Date, Sent Amount, Sent Currency, Received Amount, Received
  Currency, Fee Amount, Fee Currency, Net Worth Amount, Net Worth Currency, Label, Description,
  TxHash [, Wallet];
- koinly-template: Koinly's current universal template: Tag instead of Label, Net Worth and
  TxHash optional (also saved as TSV);
- koinly-simple: the simple template, Koinly Date, Amount, Currency, Label, TxHash (a signed
  Amount: negative = sent);
- koinly-trades: the trades template, Koinly Date, Pair, Side, Amount, Total, Fee Amount, Fee
  Currency, Order ID, Trade ID (Pair "BTC-USD", "BTC/USD" or "BTC_USD"; buy: Total of the quote
  -> Amount of the base);
- koinly-export: Koinly's own transaction export (Date, Type, Label, Sending Wallet, Sent
  Amount, ..., Net Value (GBP), ..., TxHash, Description): a transfer row is a withdrawal from
  the sending and a deposit to the receiving wallet (two transactions; reconciliation pairs them).
The simple, trades and export versions are rewritten to the universal columns first.

Mapping (one row = one transaction; labels compared case-insensitively):
- both sides: fiat -> crypto = buy, crypto -> fiat = sell, otherwise trade (label kept);
- only received: income when the label is a reward label (staking, mining, airdrop, fork ->
  airdrop, interest / lending interest / loan interest -> interest, lending, reward / rewards /
  cashback / bounty -> reward, income / other income / salary -> income), else deposit;
- only sent: fee for cost / fee / fees / margin fee, spend for spend / payment / purchase / gift /
  donation / lost / stolen (the label says which), else withdrawal;
- only a fee (no sides): a standalone fee, its amount moved to the sent side;
- one-sided fiat rows are skipped (see base); a sent amount may be written negative (its sign is
  dropped), received and fee amounts must be positive; "0" with a blank currency is no side.
- currencies written as Koinly ids are kept as their own asset: "ID:1234" -> KOINLY-1234, and
  "SYM:0x..." (symbol plus contract) -> SYM (see normalize.assets).
`label` is the income kind for income, else the file's label in lower case. Net Worth ->
fiat_value / fiat_currency. Date: '2024-01-05 14:03:00 UTC' or ISO 8601; without a zone it is
UTC unless `tz` says otherwise. Wallet: the row's Wallet cell, else the `wallet` parameter, else
"koinly". Koinly has no per-transaction id: identity comes from the row content.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.extract.formats.base import (
    FormatSpec,
    ParseContext,
    RowChecks,
    as_mask,
    classify_sides,
    constant,
    draft_table,
    lookup,
    negative,
    parse_amount,
    parse_asset,
    parse_timestamp,
    require_pair,
    skip_fiat_only,
    text,
    when,
)
from ingest.normalize.canonical import TxType

NAME = "koinly"
COLUMNS = (
    "Date",
    "Sent Amount",
    "Sent Currency",
    "Received Amount",
    "Received Currency",
    "Fee Amount",
    "Fee Currency",
    "Net Worth Amount",
    "Net Worth Currency",
    "Label",
    "Description",
    "TxHash",
)
OPTIONAL_COLUMNS = ("Wallet",)

INCOME_KINDS: dict[str, tuple[str | None, ...]] = {
    "staking": ("staking",),
    "staking reward": ("staking",),
    "mining": ("mining",),
    "airdrop": ("airdrop",),
    "fork": ("airdrop",),
    "interest": ("interest",),
    "lending interest": ("interest",),
    "loan interest": ("interest",),
    "lending": ("lending",),
    "reward": ("reward",),
    "rewards": ("reward",),
    "cashback": ("reward",),
    "bounty": ("reward",),
    "income": ("income",),
    "other income": ("income",),
    "salary": ("income",),
}
OUTGOING_KINDS: dict[str, tuple[str | None, ...]] = {
    **{label: (TxType.FEE.value,) for label in ("cost", "fee", "fees", "margin fee")},
    **{
        label: (TxType.SPEND.value,)
        for label in ("spend", "payment", "purchase", "gift", "donation", "lost", "stolen")
    },
}


def to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = parse_timestamp(text(table, "Date"), "Date", checks, ctx.tz)
    sides = {}
    for side in ("Sent", "Received", "Fee"):
        amount_col, asset_col = f"{side} Amount", f"{side} Currency"
        raw_amount, raw_asset = text(table, amount_col), text(table, asset_col)
        # "0" with no currency is how some exports write "no such side"
        raw_amount = pc.if_else(
            pc.and_(raw_asset.is_null(), pc.match_substring_regex(raw_amount, r"^[+-]?0*(\.0*)?$")),
            pa.scalar(None, pa.string()),
            raw_amount,
        )
        if side == "Sent":
            raw_amount = pc.replace_substring_regex(raw_amount, r"^-", "")
        amount = parse_amount(raw_amount, amount_col, checks)
        asset = parse_asset(raw_asset, asset_col, checks, NAME)
        require_pair(raw_amount, raw_asset, checks, amount_col, asset_col)
        checks.reject(
            negative(amount), f"negative amount '{{}}' in column {amount_col}", raw_amount
        )
        sides[side] = (asset, amount)
    (sent_asset, sent_amount), (received_asset, received_amount), (fee_asset, fee_amount) = (
        sides["Sent"],
        sides["Received"],
        sides["Fee"],
    )
    raw_worth, raw_worth_currency = (
        text(table, "Net Worth Amount"),
        text(table, "Net Worth Currency"),
    )
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
    type_ = pc.if_else(
        pc.fill_null(income, False),
        TxType.INCOME.value,
        pc.if_else(pc.fill_null(outgoing, False), outgoing_type, by_sides),
    )
    type_ = pc.if_else(fee_only, TxType.FEE.value, type_)
    skip_fiat_only(checks, type_, sent_asset, received_asset)

    wallet = pc.coalesce(text(table, "Wallet"), constant(n, ctx.wallet or NAME))
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=wallet,
        type=type_,
        label=pc.if_else(pc.fill_null(income, False), income_kind, label),
        sent_asset=sent_asset,
        sent_amount=sent_amount,
        received_asset=received_asset,
        received_amount=received_amount,
        fee_asset=fee_asset,
        fee_amount=fee_amount,
        fiat_value=worth,
        fiat_currency=worth_currency,
        tx_hash=text(table, "TxHash"),
        description=text(table, "Description"),
    )
    return draft, checks


UNIVERSAL = COLUMNS[:5]
TEMPLATE_OPTIONAL = (
    "Fee Amount",
    "Fee Currency",
    "Net Worth Amount",
    "Net Worth Currency",
    "Tag",
    "Label",
    "Description",
    "TxHash",
    "Wallet",
)


def _universal(table: pa.Table, columns: dict[str, pa.Array]) -> pa.Table:
    n = table.num_rows
    return pa.table(
        {c: columns.get(c, pa.nulls(n, pa.string())) for c in COLUMNS + OPTIONAL_COLUMNS}
    )


def _simple_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    amount = text(table, "Amount")
    out = pc.fill_null(pc.starts_with(amount, "-"), False)
    currency = text(table, "Currency")
    return to_legs(
        _universal(
            table,
            {
                "Date": text(table, "Koinly Date"),
                "Sent Amount": when(out, amount),
                "Sent Currency": when(out, currency),
                "Received Amount": when(
                    pc.invert(out), pc.replace_substring_regex(amount, r"^\+", "")
                ),
                "Received Currency": when(pc.invert(out), currency),
                "Label": text(table, "Label"),
                "TxHash": text(table, "TxHash"),
                "Description": text(table, "Description"),
            },
        ),
        ctx,
    )


_PAIR = r"^(?P<base>[A-Za-z0-9]+)[-/_ ](?P<quote>[A-Za-z0-9]+)$"


def _trades_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    pair = pc.extract_regex(text(table, "Pair"), _PAIR)
    base, quote = pc.struct_field(pair, "base"), pc.struct_field(pair, "quote")
    side = pc.utf8_lower(text(table, "Side"))
    buy, sell = pc.equal(side, "buy"), pc.equal(side, "sell")
    amount, total = text(table, "Amount"), text(table, "Total")
    draft, checks = to_legs(
        _universal(
            table,
            {
                "Date": text(table, "Koinly Date"),
                "Sent Amount": pc.if_else(buy, total, when(sell, amount)),
                "Sent Currency": pc.if_else(buy, quote, when(sell, base)),
                "Received Amount": pc.if_else(buy, amount, when(sell, total)),
                "Received Currency": pc.if_else(buy, base, when(sell, quote)),
                "Fee Amount": text(table, "Fee Amount"),
                "Fee Currency": text(table, "Fee Currency"),
                "Description": text(table, "Trade ID"),
            },
        ),
        ctx,
    )
    checks.reject(
        pc.and_(text(table, "Pair").is_valid(), pair.is_null()),
        "cannot read the pair '{}' (expected BASE-QUOTE)",
        text(table, "Pair"),
    )
    checks.reject(
        pc.invert(pc.fill_null(pc.or_(buy, sell), False)),
        "side '{}' is neither buy nor sell",
        text(table, "Side"),
    )
    return draft, checks


# Koinly export Type -> (sends, receives)
_EXPORT_TYPES = {
    "buy": (True, True),
    "sell": (True, True),
    "exchange": (True, True),
    "crypto_deposit": (False, True),
    "fiat_deposit": (False, True),
    "crypto_withdrawal": (True, False),
    "fiat_withdrawal": (True, False),
    "transfer": (True, True),
}


def _export_expand(table: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """A transfer row stands for a withdrawal and a deposit: it is taken twice (`_leg`)."""
    kind = pc.utf8_lower(text(table, "Type"))
    transfer = as_mask(pc.equal(kind, "transfer"))
    index = np.sort(np.concatenate([np.arange(table.num_rows), np.flatnonzero(transfer)]))
    leg = np.where(transfer[index] & (np.r_[False, index[1:] == index[:-1]]), "in", "")
    expanded = table.take(pa.array(index))
    return expanded.append_column("_leg", pa.array(leg, pa.string())), index


def _export_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    kind = pc.utf8_lower(text(table, "Type"))
    transfer = pc.equal(kind, "transfer")
    leg_in = (
        pc.equal(table.column("_leg"), "in")
        if "_leg" in table.column_names
        else pa.array([False] * table.num_rows, pa.bool_())
    )
    sends = pc.is_in(kind, value_set=pa.array([k for k, v in _EXPORT_TYPES.items() if v[0]]))
    receives = pc.is_in(kind, value_set=pa.array([k for k, v in _EXPORT_TYPES.items() if v[1]]))
    sends = pc.and_(sends, pc.invert(pc.and_(transfer, leg_in)))
    receives = pc.and_(receives, pc.invert(pc.and_(transfer, pc.invert(leg_in))))
    ccy = text(table, "header_ccy")
    worth = text(table, "Net Value")
    label = pc.replace_substring(pc.utf8_lower(text(table, "Label")), "_", " ")
    wallet = pc.if_else(
        pc.and_(transfer, leg_in),
        text(table, "Receiving Wallet"),
        pc.coalesce(text(table, "Sending Wallet"), text(table, "Receiving Wallet")),
    )
    draft, checks = to_legs(
        _universal(
            table,
            {
                "Date": text(table, "Date"),
                "Sent Amount": when(sends, text(table, "Sent Amount")),
                "Sent Currency": when(sends, text(table, "Sent Currency")),
                "Received Amount": when(receives, text(table, "Received Amount")),
                "Received Currency": when(receives, text(table, "Received Currency")),
                # a transfer's Sent Amount includes its fee: the difference to Received is the transfer
                # fee reconciliation finds, so the fee is not charged again
                "Fee Amount": when(pc.invert(transfer), text(table, "Fee Amount")),
                "Fee Currency": when(pc.invert(transfer), text(table, "Fee Currency")),
                "Net Worth Amount": when(pc.invert(transfer), worth),
                "Net Worth Currency": when(pc.and_(pc.invert(transfer), worth.is_valid()), ccy),
                "Label": label,
                "Description": text(table, "Description"),
                "TxHash": text(table, "TxHash"),
                "Wallet": wallet,
            },
        ),
        ctx,
    )
    checks.reject(
        pc.invert(pc.fill_null(pc.is_in(kind, value_set=pa.array(list(_EXPORT_TYPES))), False)),
        "unknown type '{}' in column Type",
        text(table, "Type"),
    )
    return draft, checks


EXPORT_COLUMNS = (
    "Date",
    "Type",
    "Label",
    "Sending Wallet",
    "Sent Amount",
    "Sent Currency",
    "Sent Cost Basis",
    "Receiving Wallet",
    "Received Amount",
    "Received Currency",
    "Received Cost Basis",
    "Fee Amount",
    "Fee Currency",
    "Gain ({ccy})",
    "Net Value ({ccy})",
    "Fee Value ({ccy})",
    "TxSrc",
    "TxDest",
    "TxHash",
    "Description",
)
VERSIONS = (
    FormatSpec(
        name=NAME,
        columns=COLUMNS,
        optional_columns=OPTIONAL_COLUMNS,
        to_legs=to_legs,
        zoned=True,
        description="universal CSV (with Label, Net Worth, TxHash)",
    ),
    FormatSpec(
        name="koinly-template",
        source=NAME,
        columns=UNIVERSAL,
        optional_columns=TEMPLATE_OPTIONAL,
        rename={"Tag": "Label"},
        to_legs=to_legs,
        zoned=True,
        description="current universal template (Tag; Net Worth, TxHash optional)",
    ),
    FormatSpec(
        name="koinly-simple",
        source=NAME,
        columns=("Koinly Date", "Amount", "Currency"),
        optional_columns=("Label", "TxHash", "Description"),
        to_legs=_simple_to_legs,
        zoned=True,
        description="simple template (signed Amount)",
    ),
    FormatSpec(
        name="koinly-trades",
        source=NAME,
        columns=("Koinly Date", "Pair", "Side", "Amount", "Total"),
        optional_columns=("Fee Amount", "Fee Currency", "Order ID", "Trade ID"),
        to_legs=_trades_to_legs,
        zoned=True,
        description="trades template",
    ),
    FormatSpec(
        name="koinly-export",
        source=NAME,
        columns=EXPORT_COLUMNS,
        to_legs=_export_to_legs,
        zoned=True,  # "2024-05-01 09:00:00 UTC"
        expand=_export_expand,
        rename={
            "Net Value ({ccy})": "Net Value",
            "Gain ({ccy})": "Gain",
            "Fee Value ({ccy})": "Fee Value",
        },
        description="Koinly's own transaction export",
    ),
)
