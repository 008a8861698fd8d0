"""Valuation, pure and vectorized: which prices a canonical table needs, and joining them.

The lead composes the stage as:
    needs = price_needs(tx)
    report = fetch_prices(needs)
    assets, start, end = needs_range(needs)
    prices = load_prices(session, assets, start, end)
    valued = value_transactions(tx, prices, unavailable_assets=report.unavailable_assets)

Rules per row (reporting currency `currency`):
  1. a side in the reporting currency gives the value (source fiat; price = value / crypto amount);
  2. else the file's fiat_value when its fiat_currency is the reporting one (source file);
  3. else amount x the price of a crypto side: the hourly point at or before the time, at most
     HOUR_TOLERANCE older (source hour); else the daily point within DAY_TOLERANCE (source day);
     the first side (below) that has such a point values the row;
  4. else no value (source none), price_status unavailable when a side's fetch was unavailable
     this job, otherwise no_price: only a row neither of whose sides has a price is a finding.
Crypto sides in order: a stablecoin side first (its price is the best known, and it is what the
exchange filled at); then the sent side for disposals (sell, trade, withdrawal, spend, fee) and
the received side otherwise (buy, deposit, income); then the other side. Selling a token the price
service does not know for 821 USDT is so valued at 821 USDT, not left without proceeds. A row
with neither side is valued by its fee (a standalone fee). Fees: 0 without a fee; the amount when
in the reporting currency; in crypto, amount x the row's own unit price of the fee asset when the
row states its value (rules 1-2) and trades that asset (value / that side's amount: the rate the
trade was made at, which is what the offline CLI has too), else amount x its price (rule 3); null
(status no_price) in another fiat (no FX rates here). A row whose value is known but whose fee
price is missing gets that fee's status.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.normalize.canonical import (
    AMOUNT,
    FIAT,
    TIMESTAMP,
    VALUED_FIELDS,
    PriceSource,
    PriceStatus,
)

HOUR_TOLERANCE_US = 2 * 3600 * 1_000_000
DAY_TOLERANCE_US = 86400 * 1_000_000
SENT_VALUED_TYPES = ("sell", "trade", "withdrawal", "spend", "fee")
# Tokens pegged to a fiat currency: a trade's side in one of these values the trade first.
STABLECOINS = frozenset(
    {"USDT", "USDC", "DAI", "BUSD", "TUSD", "USDP", "PYUSD", "FDUSD", "GUSD", "USDD", "EURC"}
)
_STABLE = pa.array(sorted(STABLECOINS))

NEEDS_SCHEMA = pa.schema([pa.field("asset", pa.string()), pa.field("ts", TIMESTAMP)])
_FIAT = pa.array(sorted(FIAT))
_WIDE_AMOUNT = pa.decimal256(38, 18)
_WIDE_PRICE = pa.decimal256(37, 18)  # 38 + 37 + 1 digits fit decimal256's 76
_MAX_DIVISOR = pa.scalar(10**19, pa.decimal256(38, 0)).cast(_WIDE_AMOUNT)

# Source codes used while computing (object strings only at the end).
_SRC_NONE, _SRC_HOUR, _SRC_DAY = 0, 1, 2


# --- small vector helpers ----------------------------------------------------------------------
def _flag(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A boolean array with nulls as False."""
    return pc.fill_null(array, False)


def _upper(array: pa.ChunkedArray | pa.Array) -> pa.Array:
    return pc.utf8_upper(array)


def _is_fiat(asset: pa.Array) -> pa.Array:
    return _flag(pc.is_in(_upper(asset), value_set=_FIAT))


def _is_crypto(asset: pa.Array) -> pa.Array:
    return pc.and_(pc.is_valid(asset), pc.invert(_is_fiat(asset)))


def _micros(ts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return pc.cast(pc.cast(ts, TIMESTAMP), pa.int64()).to_numpy(zero_copy_only=False)


def _column(tx: pa.Table, name: str) -> pa.Array:
    return tx.column(name).combine_chunks()


def multiply(amount: pa.Array, price: pa.Array) -> pa.Array:
    """amount x price, exact, rounded half-even to 18 decimals."""
    product = pc.multiply(pc.cast(amount, _WIDE_AMOUNT), pc.cast(price, _WIDE_PRICE))
    return pc.cast(pc.round(product, 18, round_mode="half_to_even"), AMOUNT)


def divide(value: pa.Array, amount: pa.Array) -> pa.Array:
    """value / amount rounded to 18 decimals; null where amount is 0, null or >= 1e19."""
    wide = pc.cast(amount, _WIDE_AMOUNT)
    usable = _flag(
        pc.and_(pc.greater(wide, pa.scalar(0, _WIDE_AMOUNT)), pc.less(wide, _MAX_DIVISOR))
    )
    safe_amount = pc.if_else(usable, wide, pa.scalar(1, _WIDE_AMOUNT))
    quotient = pc.divide(pc.cast(value, _WIDE_AMOUNT), pc.cast(safe_amount, _WIDE_PRICE))
    quotient = pc.cast(pc.round(quotient, 18, round_mode="half_to_even"), AMOUNT)
    return pc.if_else(usable, quotient, pa.nulls(len(value), AMOUNT))


# --- which assets set each row's value ----------------------------------------------------------
class ValueSides(NamedTuple):
    """Per row: the crypto side whose price values it first, the other crypto side (null when
    the row has one crypto side or none), and the side the row's type is about (sent for
    disposals, received otherwise), whose unit price is the row's ``price``. A standalone fee's
    first and type side is its fee."""

    asset: pa.Array
    amount: pa.Array
    other_asset: pa.Array
    other_amount: pa.Array
    type_asset: pa.Array
    type_amount: pa.Array


def value_sides(tx: pa.Table) -> ValueSides:
    """The row's crypto sides in valuation order: stablecoin, then the type's side, then the
    other (see the module docstring)."""
    n = tx.num_rows
    sent, received = _column(tx, "sent_asset"), _column(tx, "received_asset")
    sent_amount, received_amount = _column(tx, "sent_amount"), _column(tx, "received_amount")
    sent_crypto, received_crypto = _is_crypto(sent), _is_crypto(received)
    fee_asset, fee_amount = _column(tx, "fee_asset"), _column(tx, "fee_amount")
    # A standalone fee (no side at all) is valued by its fee.
    fee_only = pc.and_(pc.and_(pc.is_null(sent), pc.is_null(received)), _is_crypto(fee_asset))

    def side(take_sent: pa.Array, take_received: pa.Array) -> tuple[pa.Array, pa.Array]:
        null_str, null_amount = pa.nulls(n, pa.string()), pa.nulls(n, AMOUNT)
        asset = pc.if_else(take_sent, sent, pc.if_else(take_received, received, null_str))
        amount = pc.if_else(
            take_sent, sent_amount, pc.if_else(take_received, received_amount, null_amount)
        )
        return asset, amount

    prefer_sent = _flag(pc.is_in(_column(tx, "type"), value_set=pa.array(SENT_VALUED_TYPES)))
    sent_stable = _flag(pc.is_in(_upper(sent), value_set=_STABLE))
    received_stable = _flag(pc.is_in(_upper(received), value_set=_STABLE))
    # The sent side comes first when only it is a stablecoin, else by the type's preference.
    sent_first = pc.if_else(pc.xor(sent_stable, received_stable), sent_stable, prefer_sent)
    take_sent = pc.and_(sent_crypto, pc.or_(sent_first, pc.invert(received_crypto)))
    take_received = pc.and_(pc.invert(take_sent), received_crypto)
    asset, amount = side(take_sent, take_received)
    other_asset, other_amount = side(
        pc.and_(take_received, sent_crypto), pc.and_(take_sent, received_crypto)
    )
    type_sent = pc.and_(sent_crypto, pc.or_(prefer_sent, pc.invert(received_crypto)))
    type_asset, type_amount = side(type_sent, pc.and_(pc.invert(type_sent), received_crypto))
    return ValueSides(
        pc.if_else(fee_only, fee_asset, asset),
        pc.if_else(fee_only, fee_amount, amount),
        other_asset,
        other_amount,
        pc.if_else(fee_only, fee_asset, type_asset),
        pc.if_else(fee_only, fee_amount, type_amount),
    )


def _fiat_and_file(tx: pa.Table, currency: str) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """(fiat_value, has_fiat, file_value, has_file) per row."""
    cur = currency.upper()
    sent_cur = _flag(pc.equal(_upper(_column(tx, "sent_asset")), cur))
    received_cur = _flag(pc.equal(_upper(_column(tx, "received_asset")), cur))
    fiat_value = pc.if_else(
        sent_cur,
        _column(tx, "sent_amount"),
        pc.if_else(received_cur, _column(tx, "received_amount"), pa.nulls(tx.num_rows, AMOUNT)),
    )
    has_fiat = pc.and_(pc.or_(sent_cur, received_cur), pc.is_valid(fiat_value))
    file_value = _column(tx, "fiat_value")
    has_file = _flag(
        pc.and_(pc.is_valid(file_value), pc.equal(_upper(_column(tx, "fiat_currency")), cur))
    )
    has_file = pc.and_(has_file, pc.invert(has_fiat))
    return fiat_value, has_fiat, file_value, has_file


def _own_fee_price(tx: pa.Table, currency: str) -> pa.Array:
    """The row's own unit price of its fee asset: value / the amount of the side trading it, when
    the row states its value (a reporting-currency side or the file); null otherwise."""
    n = tx.num_rows
    fiat_value, has_fiat, file_value, has_file = _fiat_and_file(tx, currency)
    value = pc.if_else(has_fiat, fiat_value, pc.if_else(has_file, file_value, pa.nulls(n, AMOUNT)))
    fee_asset = _upper(_column(tx, "fee_asset"))
    on_sent = _flag(pc.equal(fee_asset, _upper(_column(tx, "sent_asset"))))
    on_received = _flag(pc.equal(fee_asset, _upper(_column(tx, "received_asset"))))
    amount = pc.if_else(
        on_sent,
        _column(tx, "sent_amount"),
        pc.if_else(on_received, _column(tx, "received_amount"), pa.nulls(n, AMOUNT)),
    )
    return divide(value, amount) if n else pa.nulls(0, AMOUNT)


def _fee_needs_price(tx: pa.Table, currency: str) -> pa.Array:
    fee_amount = _column(tx, "fee_amount")
    nonzero = _flag(pc.not_equal(fee_amount, pa.scalar(0, AMOUNT)))
    unpriced = pc.is_null(_own_fee_price(tx, currency))
    return pc.and_(pc.and_(_is_crypto(_column(tx, "fee_asset")), nonzero), unpriced)


def price_needs(tx: pa.Table, *, currency: str = "USD") -> pa.Table:
    """(asset, ts) keys `tx` needs priced: each crypto side of a row when neither a side in the
    reporting currency nor the file gives the value (both sides of a crypto-to-crypto trade: the
    other side values it when the first has no price), plus crypto fee assets. Fiat is never
    priced. Duplicates are kept (the planner deduplicates)."""
    if tx.num_rows == 0:
        return NEEDS_SCHEMA.empty_table()
    sides = value_sides(tx)
    _, has_fiat, _, has_file = _fiat_and_file(tx, currency)
    priced = pc.invert(pc.or_(has_fiat, has_file))
    needs_value = pc.and_(pc.is_valid(sides.asset), priced)
    needs_other = pc.and_(pc.is_valid(sides.other_asset), priced)
    ts = pc.cast(_column(tx, "timestamp"), TIMESTAMP)
    fee_mask = _fee_needs_price(tx, currency)
    assets = pa.concat_arrays(
        [
            pc.filter(sides.asset, needs_value),
            pc.filter(sides.other_asset, needs_other),
            pc.filter(_column(tx, "fee_asset"), fee_mask),
        ]
    )
    stamps = pa.concat_arrays(
        [pc.filter(ts, needs_value), pc.filter(ts, needs_other), pc.filter(ts, fee_mask)]
    )
    return pa.Table.from_arrays([pc.utf8_upper(assets), stamps], schema=NEEDS_SCHEMA)


def needs_range(needs: pa.Table) -> tuple[list[str], datetime, datetime]:
    """(assets, start, end) to pass to load_prices for `needs`: start is a day early, since the
    point that prices a time may lie up to DAY_TOLERANCE before it."""
    if needs.num_rows == 0:
        now = datetime.now(timezone.utc)
        return [], now, now
    assets = sorted(pc.unique(needs.column("asset")).drop_null().to_pylist())
    bounds = pc.min_max(needs.column("ts"))
    start, end = bounds["min"].as_py(), bounds["max"].as_py()
    return assets, start - timedelta(days=1), end


# --- the join ----------------------------------------------------------------------------------
class PriceIndex:
    """Per asset and granularity: sorted point times (us) and their row in the prices table."""

    def __init__(self, prices: pa.Table | None) -> None:
        self.prices = prices
        self.series: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        if prices is None or prices.num_rows == 0:
            return
        asset = pc.utf8_upper(_column(prices, "asset"))
        granularity = _column(prices, "granularity")
        stamps = _micros(prices.column("ts"))
        rows = np.arange(prices.num_rows, dtype=np.int64)
        encoded = pc.dictionary_encode(pc.binary_join_element_wise(asset, granularity, "|"))
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        order = np.lexsort((stamps, codes))
        codes, stamps, rows = codes[order], stamps[order], rows[order]
        bounds = np.flatnonzero(np.diff(codes)) + 1
        for part_codes, part_ts, part_rows in zip(
            np.split(codes, bounds), np.split(stamps, bounds), np.split(rows, bounds)
        ):
            if len(part_codes):
                key = encoded.dictionary[int(part_codes[0])].as_py()
                name, _, grain = key.rpartition("|")
                self.series[(name, grain)] = (part_ts, part_rows)

    def lookup(self, asset: pa.Array, stamps: np.ndarray) -> tuple[pa.Array, np.ndarray]:
        """(price per row, source code per row): the hourly point at or before within
        HOUR_TOLERANCE, else the daily one within DAY_TOLERANCE; null/_SRC_NONE otherwise."""
        n = len(stamps)
        row_of = np.full(n, -1, dtype=np.int64)
        source = np.full(n, _SRC_NONE, dtype=np.int8)
        if self.prices is None or not self.series or n == 0:
            return pa.nulls(n, AMOUNT), source
        encoded = pc.dictionary_encode(pc.utf8_upper(asset))
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        for code, name in enumerate(encoded.dictionary.to_pylist()):
            members = np.flatnonzero(codes == code)
            for grain, tolerance, code_value in (
                ("hour", HOUR_TOLERANCE_US, _SRC_HOUR),
                ("day", DAY_TOLERANCE_US, _SRC_DAY),
            ):
                series = self.series.get((name, grain))
                if series is None or len(members) == 0:
                    continue
                point_ts, point_rows = series
                t = stamps[members]
                pos = np.searchsorted(point_ts, t, side="right") - 1
                found = pos >= 0
                found[found] &= (t[found] - point_ts[pos[found]]) <= tolerance
                hit = members[found]
                row_of[hit] = point_rows[pos[found]]
                source[hit] = code_value
                members = members[~found]  # the rest may still find a daily point
        price = self.prices.column("price").combine_chunks()
        indices = pa.array(row_of, mask=row_of < 0)
        return price.take(indices), source


def _status(has_value: pa.Array, asset: pa.Array, unavailable: pa.Array) -> pa.Array:
    """ok where has_value; else unavailable/no_price by whether `asset` was unavailable."""
    was_unavailable = _flag(pc.is_in(pc.utf8_upper(asset), value_set=unavailable))
    missing = pc.if_else(was_unavailable, PriceStatus.UNAVAILABLE.value, PriceStatus.NO_PRICE.value)
    return pc.if_else(has_value, PriceStatus.OK.value, missing)


def value_transactions(
    tx: pa.Table,
    prices: pa.Table | None,
    *,
    currency: str = "USD",
    unavailable_assets: Iterable[str] = frozenset(),
) -> pa.Table:
    """tx + VALUED_FIELDS (see the module docstring for the rules). With prices=None only values
    from a reporting-currency side or the file are used."""
    base = tx.drop_columns([f.name for f in VALUED_FIELDS if f.name in tx.column_names])
    n = base.num_rows
    unavailable = pa.array(sorted({a.upper() for a in unavailable_assets}), pa.string())
    index = PriceIndex(prices)
    stamps = _micros(_column(base, "timestamp")) if n else np.zeros(0, np.int64)
    cur = currency.upper()

    sides = value_sides(base)
    fiat_value, has_fiat, file_value, has_file = _fiat_and_file(base, currency)
    first_price, first_source = index.lookup(sides.asset, stamps)
    has_first = pc.and_(pc.is_valid(first_price), pc.is_valid(sides.amount))
    other_price, other_source = index.lookup(sides.other_asset, stamps)
    # The other side values the row only where the first side has no price.
    use_other = pc.and_(
        pc.invert(has_first), pc.and_(pc.is_valid(other_price), pc.is_valid(sides.other_amount))
    )
    asset = pc.if_else(use_other, sides.other_asset, sides.asset)
    amount = pc.if_else(use_other, sides.other_amount, sides.amount)
    looked_up = pc.if_else(use_other, other_price, first_price)
    lookup_source = np.where(use_other.to_numpy(zero_copy_only=False), other_source, first_source)
    has_lookup = pc.or_(has_first, use_other)
    priced_value = multiply(amount, looked_up) if n else pa.nulls(0, AMOUNT)

    value = pc.if_else(
        has_fiat,
        fiat_value,
        pc.if_else(has_file, file_value, pc.if_else(has_lookup, priced_value, pa.nulls(n, AMOUNT))),
    )
    has_value = _flag(pc.is_valid(value))
    source_codes = np.where(has_lookup.to_numpy(zero_copy_only=False), lookup_source, _SRC_NONE)
    lookup_names = np.array(
        [PriceSource.NONE.value, PriceSource.HOUR.value, PriceSource.DAY.value], dtype=object
    )[source_codes]
    source = pc.if_else(
        has_fiat,
        PriceSource.FIAT.value,
        pc.if_else(has_file, PriceSource.FILE.value, pa.array(lookup_names, pa.string())),
    )
    # The row's price is the unit price of its type's side: looked up when that side valued it,
    # else implied by the value (a fiat side, the file, or the other side's price).
    own_price = pc.and_(has_lookup, _flag(pc.equal(asset, sides.type_asset)))
    own_price = pc.and_(own_price, pc.invert(pc.or_(has_fiat, has_file)))
    implied = divide(value, sides.type_amount) if n else pa.nulls(0, AMOUNT)
    price = pc.if_else(own_price, looked_up, implied)
    # A row of only the reporting currency (a USD deposit): its own unit price is 1.
    own_currency = pc.and_(has_fiat, pc.is_null(sides.type_asset))
    price_asset = pc.if_else(own_currency, cur, sides.type_asset)
    price = pc.if_else(own_currency, pa.scalar(1, AMOUNT), price)
    # Neither side priced: unavailable when either side's fetch was (a retry may price it).
    value_status = pc.if_else(
        _flag(pc.is_in(pc.utf8_upper(sides.other_asset), value_set=unavailable)),
        _status(has_value, sides.other_asset, unavailable),
        _status(has_value, sides.asset, unavailable),
    )

    # Fees.
    fee_asset, fee_amount = _column(base, "fee_asset"), _column(base, "fee_amount")
    no_fee = pc.or_(
        pc.or_(pc.is_null(fee_asset), pc.is_null(fee_amount)),
        _flag(pc.equal(fee_amount, pa.scalar(0, AMOUNT))),
    )
    fee_in_currency = _flag(pc.equal(_upper(fee_asset), cur))
    fee_price, _ = index.lookup(fee_asset, stamps)
    own_fee_price = _own_fee_price(base, currency)
    fee_price = pc.if_else(pc.is_valid(own_fee_price), own_fee_price, fee_price)
    fee_priced = multiply(fee_amount, fee_price) if n else pa.nulls(0, AMOUNT)
    fee_value = pc.if_else(
        no_fee,
        pa.scalar(0, AMOUNT),
        pc.if_else(
            fee_in_currency,
            fee_amount,
            pc.if_else(_is_crypto(fee_asset), fee_priced, pa.nulls(n, AMOUNT)),
        ),
    )
    fee_status = _status(_flag(pc.is_valid(fee_value)), fee_asset, unavailable)
    status = pc.if_else(pc.equal(value_status, PriceStatus.OK.value), fee_status, value_status)

    columns = {
        "value": value,
        "fee_value": fee_value,
        "price": price,
        "price_asset": price_asset,
        "price_source": source,
        "price_status": status,
    }
    for field in VALUED_FIELDS:
        base = base.append_column(field, pc.cast(columns[field.name], field.type))
    return base
