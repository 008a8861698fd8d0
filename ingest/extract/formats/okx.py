"""OKX (OKEx before 2022): the trading history (bills of the trading account) and the funding
history. Versions:

- okx-trades: id, Order id, Time, Trade Type, Instrument, Type, Amount, Unit, PL, Fee, Position
  Change, Position Balance, Balance Change, Balance, Unit (the second Unit, of Balance, is not
  read);
- okx-trades-2025: id, Order id, Time, Trade Type, Symbol, Action, Amount, Trading Unit, Filled
  Price, PnL, Fee, Fee Unit, Position Change, Position Balance, Balance Change, Balance, Balance
  Unit (often after a preamble line 'UID:...,Account Type:...,Time Zone:UTC+8');
- okx-trades-2023: the same with Filled Price Unit and Position Unit;
- okx-funding: id, Time, Type, Amount, Before Balance, After Balance, Fee, Symbol;
- okx-funding-2025: the same without Fee;
- okex-2020: the OKEx spot bills of 2019-2020: time, type, size, balance, fee, currency.

Mapping:
- okx-trades: a spot trade is two rows sharing id, Type Buy (the asset received: Amount of Unit)
  and Type Sell (the asset sent); they are combined into one transaction (the rows may sit in
  different chunks). Fee is in the row's Unit: negative = charged, positive = a maker rebate,
  added to the row's amount (was charged as a fee); Balance Change, where written, must be
  +/- Amount + Fee.
- okx-trades-2023/2025: each fill is two rows with ids of their own sharing Order id and Time,
  Action Buy (the asset received) and Action Sell (the asset sent); the rows of one order and
  second are combined into one transaction (fills of one order in one second are summed). Amount
  is in Balance Unit (Trading Unit is the pair's quote in the 2025 export, not the Amount's unit),
  which must be an asset of Symbol. Fee is in Fee Unit, signed as in okx-trades (a rebate in
  another asset is rejected). The row's own arithmetic is checked: Balance Change = +/- Amount +
  Fee (when Fee Unit is the Balance Unit), else the row is rejected.
- every trading history: Trade Type Transfer is a move between the user's own OKX accounts:
  skipped; other trade types (futures, margin, swaps) are rejected as not supported.
- funding by Type: Deposit -> deposit, Withdrawal -> withdrawal (Fee in Symbol), Staking Yield
  -> income/staking, Fee rebate -> income/reward; Stake, Redeem staking, Savings subscription,
  Savings redemption, From/To unified trading account are internal moves: skipped; anything else
  is rejected. After Balance - Before Balance is what the row moved: a withdrawal whose Amount
  already equals it includes its Fee (sent = |Amount| - Fee); one where it equals |Amount| + Fee
  is charged the Fee on top; a row matching neither is rejected.
- okex-2020: a trade is a buy row (the asset received: size of currency, fee in it) and a sell
  row (the asset sent) of one time; rows of one time are combined (different pairs in one second
  cannot be paired and are rejected); other types are rejected.

Time zones: okx-* Time carries no zone in its cells; OKX writes the zone the export was made in
on the preamble line ('Time Zone:UTC+8'), which is then applied (and `tz` is not); a file without
that line is zone-less (`tz`). Date order year-month-day; okex-2020 time is zone-less or
ends in CST (China Standard Time, +08:00), year-month-day. The id is the exchange id.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from ingest.extract.formats.base import (
    ZERO,
    FormatSpec,
    ParseContext,
    RowChecks,
    abs_amount,
    add_amounts,
    constant,
    draft_table,
    leg_draft,
    negative,
    parse_amount,
    parse_asset,
    parse_timestamp,
    positive,
    read_asset_amount,
    read_kind,
    skip_fiat_only,
    split_pair,
    text,
    when,
)
from ingest.normalize.canonical import TxType

NAME = "okx"
INTERNAL = "move between the user's own OKX accounts (no disposal)"


_PREAMBLE_ZONE = re.compile(
    r"Time\s*Zone\s*:\s*(?:UTC|GMT)\s*(?:(?P<sign>[+-])(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?)?",
    re.IGNORECASE,
)


def preamble_zone(preamble: str) -> dict[str, str]:
    """{"preamble_offset": "+08:00"} of an export whose preamble says 'Time Zone:UTC+8' (the
    zone the exporting account chose: its Time values are local to it); {} without one."""
    m = _PREAMBLE_ZONE.search(preamble.replace("\ufeff", ""))
    if m is None:
        return {}
    if m.group("sign") is None:
        return {"preamble_offset": "+00:00"}
    hours, minutes = int(m.group("hours")), int(m.group("minutes") or 0)
    return {"preamble_offset": f"{m.group('sign')}{hours:02d}:{minutes:02d}"}


def _time(table: pa.Table, checks: RowChecks, ctx: ParseContext) -> pa.Array:
    """Time, in the zone the preamble states (then `tz` does not apply), else zone-less."""
    values = text(table, "Time")
    offset = text(table, "preamble_offset")
    if offset.null_count == len(offset):
        return parse_timestamp(values, "Time", checks, ctx.tz)
    zoned = pc.binary_join_element_wise(values, offset, "")
    return parse_timestamp(zoned, "Time", checks, None)


def _amounts(
    table: pa.Table, checks: RowChecks, asset_column: str
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(asset, |Amount|, |Fee|) of each row."""
    asset, signed = read_asset_amount(table, (asset_column, "Amount"), checks, NAME)
    amount = abs_amount(signed)
    fee = abs_amount(parse_amount(text(table, "Fee"), "Fee", checks))
    return asset, amount, fee


def _spot_sides(table: pa.Table, checks: RowChecks, side_column: str) -> tuple[pa.Array, pa.Array]:
    """(buy, sell) masks of the spot rows of a trading history; transfers skipped, other trade
    types rejected."""
    trade_type = pc.utf8_lower(text(table, "Trade Type"))
    spot, transfer = pc.equal(trade_type, "spot"), pc.equal(trade_type, "transfer")
    checks.skip(transfer, INTERNAL)
    checks.reject(
        pc.invert(pc.fill_null(pc.or_(spot, transfer), False)),
        "trade type '{}' is not supported (spot only)",
        text(table, "Trade Type"),
    )
    side = pc.utf8_lower(text(table, side_column))
    buy, sell = pc.equal(side, "buy"), pc.equal(side, "sell")
    checks.reject(
        pc.and_(spot, pc.invert(pc.fill_null(pc.or_(buy, sell), False))),
        f"{side_column.lower()} '{{}}' is neither Buy nor Sell",
        text(table, side_column),
    )
    return pc.and_(spot, buy), pc.and_(spot, sell)


def _fill(
    table: pa.Table,
    checks: RowChecks,
    sides: tuple[pa.Array, pa.Array],
    asset: pa.Array,
    amount: pa.Array,
    fee_unit: pa.Array,
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(what the row moved, fee charged mask, |Fee|) of a trading-history row. Fee is negative
    when charged; a positive Fee is a maker rebate, added to what the row moves (received +
    rebate, sent - rebate). The row's own arithmetic is checked where it states Balance Change:
    Balance Change = +/- Amount + Fee (when the fee is in the row's asset)."""
    buy, sell = sides
    fee = pc.fill_null(parse_amount(text(table, "Fee"), "Fee", checks), ZERO)
    charged = pc.fill_null(negative(fee), False)
    rebate = pc.fill_null(positive(fee), False)
    same_unit = pc.fill_null(pc.equal(fee_unit, asset), False)
    checks.reject(
        pc.and_(rebate, pc.invert(same_unit)),
        "a fee rebate (positive Fee '{}') in another asset than the row's is not supported",
        text(table, "Fee"),
    )
    signed = pc.if_else(sell, pc.negate(amount), amount)
    moved = add_amounts(signed, pc.if_else(rebate, fee, ZERO))
    checks.note(rebate, "maker rebate '{}' added to the amount", text(table, "Fee"))
    change = parse_amount(text(table, "Balance Change"), "Balance Change", checks)
    expected = add_amounts(signed, pc.if_else(same_unit, fee, ZERO))
    checks.reject(
        pc.and_(pc.and_(pc.or_(buy, sell), change.is_valid()), pc.not_equal(change, expected)),
        "Balance Change does not equal Amount + Fee ({}): not a spot fill as read",
        pc.binary_join_element_wise(
            text(table, "Balance Change"), text(table, "Amount"), text(table, "Fee"), " vs "
        ),
    )
    return abs_amount(moved), charged, abs_amount(fee)


def trades_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = _time(table, checks, ctx)
    buy, sell = _spot_sides(table, checks, "Type")
    trade_id = text(table, "id")
    checks.reject(trade_id.is_null(), "missing id in column id")
    asset, amount, _ = _amounts(table, checks, "Unit")
    moved, charged, fee = _fill(table, checks, (buy, sell), asset, amount, asset)
    draft = leg_draft(
        ctx.wallet or NAME,
        ts,
        (buy, sell),
        (asset, moved),
        (charged, asset, fee),
        trade_id,
        pc.binary_join_element_wise("okx", trade_id, "|"),
    )
    return draft, checks


def trades_2025_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = _time(table, checks, ctx)
    buy, sell = _spot_sides(table, checks, "Action")
    spot = pc.or_(buy, sell)
    order_id = text(table, "Order id")
    checks.reject(pc.and_(spot, order_id.is_null()), "missing order id in column Order id")
    asset, amount, _ = _amounts(table, checks, "Balance Unit")
    symbol = text(table, "Symbol")
    base, quote = split_pair(symbol)
    in_pair = pc.or_(pc.equal(asset, base), pc.equal(asset, quote))
    checks.reject(
        pc.and_(spot, pc.invert(pc.fill_null(in_pair, False))),
        "Balance Unit is not an asset of the pair '{}'",
        symbol,
    )
    raw_fee_unit = text(table, "Fee Unit")
    fee_unit = parse_asset(raw_fee_unit, "Fee Unit", checks, NAME)
    moved, charged, fee = _fill(table, checks, (buy, sell), asset, amount, fee_unit)
    checks.reject(pc.and_(charged, raw_fee_unit.is_null()), "missing fee asset in column Fee Unit")
    draft = leg_draft(
        ctx.wallet or NAME,
        ts,
        (buy, sell),
        (asset, moved),
        (charged, fee_unit, fee),
        order_id,
        pc.binary_join_element_wise("okx", order_id, text(table, "Time"), "|"),
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


def _balance_delta(table: pa.Table, checks: RowChecks) -> pa.Array:
    """|After Balance - Before Balance|: what the row moved (null where a balance is missing)."""
    before = parse_amount(text(table, "Before Balance"), "Before Balance", checks)
    after = parse_amount(text(table, "After Balance"), "After Balance", checks)
    return abs_amount(add_amounts(after, before, subtract=True))


def funding_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    ts = _time(table, checks, ctx)
    _, (kind, label) = read_kind(table, "Type", KINDS, 2, checks)
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
    moved = _balance_delta(table, checks)
    known = pc.fill_null(pc.and_(moved.is_valid(), pc.or_(out, in_)), False)
    fee_inside = pc.and_(pc.and_(known, out), pc.equal(moved, amount))
    fee_on_top = pc.equal(
        moved, add_amounts(amount, pc.if_else(out, pc.fill_null(fee, ZERO), ZERO))
    )
    checks.reject(
        pc.and_(known, pc.invert(pc.fill_null(pc.or_(fee_inside, fee_on_top), False))),
        "After Balance - Before Balance does not match Amount and Fee ({}): not a movement as read",
        pc.binary_join_element_wise(
            text(table, "Before Balance"), text(table, "After Balance"), text(table, "Amount"), " "
        ),
    )
    # A withdrawal whose Amount is all that left the account already holds its Fee.
    sent = pc.if_else(
        pc.fill_null(pc.and_(fee_inside, has_fee), False),
        add_amounts(amount, fee, subtract=True),
        amount,
    )
    sent_asset, received_asset = when(out, asset), when(in_, asset)
    skip_fiat_only(checks, type_, sent_asset, received_asset)
    draft = draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or NAME),
        type=type_,
        label=label,
        sent_asset=sent_asset,
        sent_amount=when(out, sent, sent.type),
        received_asset=received_asset,
        received_amount=when(in_, amount, amount.type),
        fee_asset=when(has_fee, asset),
        fee_amount=when(has_fee, fee, fee.type),
        external_id=text(table, "id"),
    )
    return draft, checks


def okex_to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
    n = table.num_rows
    checks = RowChecks(n)
    when_text = pc.replace_substring_regex(text(table, "time"), r"\s*CST$", "+08:00")
    ts = parse_timestamp(when_text, "time", checks, ctx.tz)
    side = pc.utf8_lower(text(table, "type"))
    buy, sell = pc.equal(side, "buy"), pc.equal(side, "sell")
    checks.reject(
        pc.invert(pc.fill_null(pc.or_(buy, sell), False)),
        "type '{}' is not supported (buy and sell rows only)",
        text(table, "type"),
    )
    asset, size = read_asset_amount(table, ("currency", "size"), checks, NAME)
    checks.reject(
        pc.or_(pc.and_(buy, negative(size)), pc.and_(sell, positive(size))),
        "the sign of size '{}' contradicts the row's type",
        text(table, "size"),
    )
    fee = pc.fill_null(parse_amount(text(table, "fee"), "fee", checks), ZERO)
    checks.reject(
        positive(fee), "a positive fee '{}' (a rebate) is not supported", text(table, "fee")
    )
    charged = pc.fill_null(negative(fee), False)
    amount, fee = abs_amount(size), abs_amount(fee)
    draft = leg_draft(
        ctx.wallet or NAME,
        ts,
        (buy, sell),
        (asset, amount),
        (charged, asset, fee),
        None,
        # no id: the buy and sell rows of one trade share their time
        pc.binary_join_element_wise("okex", text(table, "time"), "|"),
    )
    return draft, checks


TRADES_2025 = (
    "id",
    "Order id",
    "Time",
    "Trade Type",
    "Symbol",
    "Action",
    "Amount",
    "Trading Unit",
    "Filled Price",
    "PnL",
    "Fee",
    "Fee Unit",
    "Position Change",
    "Position Balance",
    "Balance Change",
    "Balance",
    "Balance Unit",
)
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
        preamble_values=preamble_zone,
        zoned=False,
        description="trading history (two rows per spot trade)",
    ),
    FormatSpec(
        name="okx-trades-2025",
        zoned=False,
        source=NAME,
        columns=TRADES_2025,
        to_legs=trades_2025_to_legs,
        preamble_values=preamble_zone,
        description="trading history 2024 and later (Symbol, Action, Balance Unit; two rows per "
        "fill; Time zone-less, year-month-day)",
    ),
    FormatSpec(
        name="okx-trades-2023",
        zoned=False,
        source=NAME,
        columns=TRADES_2025 + ("Filled Price Unit", "Position Unit"),
        to_legs=trades_2025_to_legs,
        preamble_values=preamble_zone,
        description="trading history 2023 (with Filled Price Unit, Position Unit; Time "
        "zone-less, year-month-day)",
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
        preamble_values=preamble_zone,
        zoned=False,
        description="funding account history",
    ),
    FormatSpec(
        name="okx-funding-2025",
        zoned=False,
        source=NAME,
        columns=("id", "Time", "Type", "Amount", "Before Balance", "After Balance", "Symbol"),
        to_legs=funding_to_legs,
        preamble_values=preamble_zone,
        description="funding account history 2025 (no Fee; Time zone-less, year-month-day)",
    ),
    FormatSpec(
        name="okex-2020",
        zoned=False,
        source=NAME,
        columns=("time", "type", "size", "balance", "fee", "currency"),
        to_legs=okex_to_legs,
        description="OKEx spot bills 2019-2020 (a buy and a sell row per trade; time zone-less "
        "or CST, year-month-day)",
    ),
)
