"""Bitvavo: the transaction history export (Settings > Transaction history > Export). Versions:

- bitvavo: Timezone, Date, Time, Type, Currency, Amount, Quote Currency, Quote Price, Received /
  Paid Currency, Received / Paid Amount, Fee currency, Fee amount, Status, Transaction ID,
  Address (2024 and later);
- bitvavo-2023: Timezone, Date, Time, Type, Currency, Amount, Price (EUR), EUR received / paid,
  Fee currency, Fee amount, Status, Transaction ID, Address (the quote currency in the column
  names).

Each row's time is local in the zone its Timezone cell names ("Europe/Amsterdam"; `tz` is used
where the cell is empty); dates are ISO (YYYY-MM-DD). Mapping (Type): buy = |Received / Paid
Amount| of the quote currency -> Amount of Currency, sell the reverse; deposit, withdrawal in
Currency; staking, fixed_staking -> income/staking; rebate, affiliate, manually_assigned_bitvavo,
campaign_new_user_incentive -> income/reward. A Status other than Completed / Distributed
(canceled, pending) is skipped; anything else is rejected. Transaction ID is the exchange id.

Fees: every amount Bitvavo writes is the change of its currency's balance, fee included (a buy
of 0.0005 BTC at 49,880 with a 0.06 EUR fee pays -25.00 EUR = 24.94 + 0.06; a sell's received
amount is amount x price less the fee; a withdrawal's Amount includes the network fee). The
canonical amounts exclude the fee (see base), so the fee is taken out of the side in the fee's
currency: sent = |amount| - fee, received = |amount| + fee; a fee in a third currency (none seen)
is charged on top. A fee larger than the amount that includes it is rejected. Each trade's own
arithmetic is checked: Amount x Quote Price is the fee-excluded quote amount (within 1 %, the
price being rounded); a row where it is the stated Received / Paid Amount itself (none seen, but
the row says so) has its fee charged on top, noted on the row; a row that fits neither is
rejected with both figures.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ingest.extract.formats.base import (
    ZERO,
    FormatSpec,
    ParseContext,
    RowChecks,
    abs_amount,
    add_amounts,
    check_timezone,
    check_total,
    classify_sides,
    constant,
    draft_table,
    negative,
    parse_amount,
    parse_asset,
    parse_timestamp,
    positive,
    read_asset_amount,
    read_kind,
    skip_fiat_only,
    text,
    when,
)
from ingest.normalize.canonical import TIMESTAMP, TxType

NAME = "bitvavo"
KINDS: dict[str, tuple[str | None, ...]] = {
    "buy": ("buy", None),
    "sell": ("sell", None),
    "deposit": ("deposit", None),
    "withdrawal": ("withdrawal", None),
    "staking": ("income", "staking"),
    "fixed_staking": ("income", "staking"),
    "rebate": ("income", "reward"),
    "affiliate": ("income", "reward"),
    "manually_assigned_bitvavo": ("income", "reward"),
    "campaign_new_user_incentive": ("income", "reward"),
}
DONE = pa.array(["completed", "distributed"])


def _local_times(table: pa.Table, checks: RowChecks, ctx: ParseContext) -> pa.Array:
    """Date + Time, local in each row's Timezone (few distinct zones: one parse per zone)."""
    written = pc.binary_join_element_wise(text(table, "Date"), text(table, "Time"), " ")
    zones = text(table, "Timezone")
    out = pa.nulls(table.num_rows, TIMESTAMP)
    bad_zone = pc.fill_null(pc.equal(zones, ""), False)  # all false
    for zone in pc.unique(zones).to_pylist():
        here = pc.fill_null(pc.equal(zones, zone), False) if zone else zones.is_null()
        try:
            tz = check_timezone(zone) if zone else ctx.tz
        except ValueError:
            checks.reject(here, "unknown time zone '{}' in column Timezone", zones)
            bad_zone = pc.or_(bad_zone, here)
            continue
        part = parse_timestamp(when(here, written), "Date", RowChecks(table.num_rows), tz)
        out = pc.if_else(here, part, out)
    checks.reject(
        pc.and_(pc.and_(written.is_valid(), out.is_null()), pc.invert(bad_zone)),
        "bad date '{}' in columns Date, Time",
        written,
    )
    checks.reject(written.is_null(), "missing date in columns Date, Time")
    return out


def _distance(value: pa.Array, amount: pa.Array) -> pa.Array:
    return pc.abs(pc.subtract(value, pc.cast(amount, pa.float64())))


def to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = _local_times(table, checks, ctx)
    _, (kind, label) = read_kind(table, "Type", KINDS, 2, checks)
    status = text(table, "Status")
    checks.skip(
        pc.invert(pc.fill_null(pc.is_in(pc.utf8_lower(status), value_set=DONE), False)),
        "status '{}' is not a completed transaction",
        status,
    )
    currency, signed = read_asset_amount(table, ("Currency", "Amount"), checks, NAME)
    amount = abs_amount(signed)
    quote_text = pc.coalesce(text(table, "Received / Paid Currency"), text(table, "header_ccy"))
    quote = parse_asset(quote_text, "Received / Paid Currency", checks, NAME)
    paid = abs_amount(
        parse_amount(text(table, "Received / Paid Amount"), "Received / Paid Amount", checks)
    )
    fee_asset = parse_asset(text(table, "Fee currency"), "Fee currency", checks, NAME)
    fee = abs_amount(parse_amount(text(table, "Fee amount"), "Fee amount", checks))
    buy = pc.fill_null(pc.equal(kind, "buy"), False)
    sell = pc.fill_null(pc.equal(kind, "sell"), False)
    checks.reject(
        pc.and_(pc.or_(buy, sell), pc.or_(quote.is_null(), paid.is_null())),
        "missing the received / paid amount or currency of a trade",
    )
    out = pc.or_(sell, pc.fill_null(pc.equal(kind, "withdrawal"), False))
    in_ = pc.or_(
        buy, pc.fill_null(pc.is_in(kind, value_set=pa.array(["deposit", "income"])), False)
    )
    sent_asset = pc.if_else(buy, quote, when(out, currency))
    sent_amount = pc.if_else(buy, paid, when(out, amount, amount.type))
    received_asset = pc.if_else(sell, quote, when(in_, currency))
    received_amount = pc.if_else(sell, paid, when(in_, amount, amount.type))
    # The fee is inside the balance change of its own currency (module docstring).
    has_fee = pc.fill_null(positive(fee), False)
    fee_out = pc.and_(has_fee, pc.fill_null(pc.equal(fee_asset, sent_asset), False))
    fee_in = pc.and_(has_fee, pc.fill_null(pc.equal(fee_asset, received_asset), False))
    net_sent = add_amounts(sent_amount, pc.coalesce(fee, ZERO), subtract=True)
    checks.reject(
        pc.and_(fee_out, pc.fill_null(negative(net_sent), False)),
        "fee '{}' in column Fee amount exceeds the amount it is included in",
        text(table, "Fee amount"),
    )
    net_received = add_amounts(received_amount, pc.coalesce(fee, ZERO))
    # A trade's own arithmetic decides: Amount x Quote Price is the fee-excluded quote amount
    # (module docstring); a row where it is the stated amount itself has its fee on top.
    trade = pc.or_(buy, sell)
    price = parse_amount(text(table, "Quote Price"), "Quote Price", checks)
    value = pc.multiply(pc.cast(amount, pa.float64()), pc.cast(price, pa.float64()))
    stated = pc.if_else(buy, sent_amount, received_amount)
    excluded = pc.if_else(buy, net_sent, net_received)
    fee_in_quote = pc.and_(trade, pc.fill_null(pc.equal(fee_asset, quote), False))
    on_top = pc.and_(
        pc.and_(has_fee, fee_in_quote),
        pc.fill_null(pc.less(_distance(value, stated), _distance(value, excluded)), False),
    )
    checks.note(
        on_top,
        "fee '{}' charged on top: Amount x Quote Price is the Received / Paid Amount itself",
        text(table, "Fee amount"),
    )
    fee_out = pc.and_(fee_out, pc.invert(on_top))
    fee_in = pc.and_(fee_in, pc.invert(on_top))
    sent_amount = pc.if_else(fee_out, net_sent, sent_amount)
    received_amount = pc.if_else(fee_in, net_received, received_amount)
    check_total(
        checks,
        (when(trade, amount, amount.type), price),
        pc.if_else(buy, sent_amount, received_amount),
        ("Amount", "Quote Price", "Received / Paid Amount (fee excluded)"),
    )
    income = pc.equal(kind, "income")
    type_ = pc.if_else(income, TxType.INCOME.value, classify_sides(sent_asset, received_asset))
    skip_fiat_only(checks, type_, sent_asset, received_asset)
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
        fee_asset=when(has_fee, fee_asset),
        fee_amount=when(has_fee, fee, fee.type),
        external_id=text(table, "Transaction ID"),
    )
    return draft, checks


_BASE = ("Timezone", "Date", "Time", "Type", "Currency", "Amount")
_TAIL = ("Fee currency", "Fee amount", "Status", "Transaction ID")
VERSIONS = (
    FormatSpec(
        name=NAME,
        columns=_BASE
        + ("Quote Currency", "Quote Price", "Received / Paid Currency", "Received / Paid Amount")
        + _TAIL,
        optional_columns=("Address",),
        to_legs=to_legs,
        zoned=False,
        description="transaction history, 2024 and later (Received / Paid Currency)",
    ),
    FormatSpec(
        name="bitvavo-2023",
        source=NAME,
        columns=_BASE + ("Price ({ccy})", "{ccy} received / paid") + _TAIL,
        optional_columns=("Address",),
        to_legs=to_legs,
        zoned=False,
        rename={"Price ({ccy})": "Quote Price", "{ccy} received / paid": "Received / Paid Amount"},
        description="transaction history before 2024 (EUR received / paid)",
    ),
)
