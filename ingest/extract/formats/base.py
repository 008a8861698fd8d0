"""What every format module shares: the contract (`FormatSpec`), the intermediate `legs` table,
row checks that turn bad rows into `RejectedRow`s, and vectorized column parsers (amounts,
timestamps, assets) so a format maps a chunk of string columns to legs without per-row Python.

A format's `to_legs(table, ctx)` receives one chunk as a table of *string* columns named after
its header (optional columns only when the file has them) and returns a draft (`DRAFT_SCHEMA`, one
row per input row) plus its `RowChecks`; the caller drops rejected and skipped rows.

Conventions shared by all formats (the tax engine relies on them):
- amounts are positive exact decimals; `sent_amount`/`received_amount` exclude fees, the fee is
  charged on top in `fee_asset`: wallet change = -sent, +received, -fee. A fee in the sent asset
  stays in the fee columns, never netted into the amounts.
- a standalone fee (`fee`) or spend (`spend`) carries what leaves the wallet in `sent_*`.
- rows moving only fiat in or out (bank deposits/withdrawals, fiat income) are skipped, reported
  as `RejectedRow(skipped=True)`: they move no crypto and have no tax effect here.
- one-row transactions set `type`; rows of a multi-row transaction share a `group` key and leave
  `type` null: the type comes from the combined sides (see `classify_sides`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.normalize.assets import SYMBOL_PATTERN, is_fiat, normalize_assets
from ingest.normalize.canonical import (
    AMOUNT,
    CANONICAL_SCHEMA,
    STATED_COLUMNS,
    TIMESTAMP,
    TxType,
)


class FormatError(ValueError):
    """File-level failure: not a CSV text file, empty, or no known header."""


@dataclass
class ParseContext:
    user_id: str
    source_file: str
    wallet: str | None = None  # overrides the format name as wallet (Koinly's Wallet column wins)
    tz: str | None = None  # IANA zone of timestamps that carry no zone; None: the format's


@dataclass(frozen=True)
class RejectedRow:
    line: int  # 1-based physical line where the row starts
    reason: str
    raw: str  # the row's text as in the file
    skipped: bool = False  # deliberately ignored (internal transfer, fiat move...), not an error


# One draft row per input row; the caller adds partition_key, grouped, line and raw (LEGS_SCHEMA).
DRAFT_CANONICAL = STATED_COLUMNS
# Types come from the canonical schema; every draft column may be null (`type` is decided later
# from the sides of the group).
DRAFT_SCHEMA = pa.schema(
    [pa.field(name, CANONICAL_SCHEMA.field(name).type) for name in DRAFT_CANONICAL]
    + [
        pa.field("group", pa.string()),  # rows sharing it form one transaction
        pa.field("pair_hint", pa.string()),
    ]
)  # in a group, legs of one trade share it (Binance
# buy legs vs sell legs of one second)

# The intermediate table between parse_chunk and finalize_partition.
LEGS_SCHEMA = pa.schema(
    [
        pa.field("partition_key", pa.string(), nullable=False),  # also the identity key
        pa.field("grouped", pa.bool_(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
        pa.field("raw", pa.string()),  # kept for grouped rows only (finalize may reject them)
    ]
    + [f for f in DRAFT_SCHEMA if f.name != "group"]
)

# Quote currencies exchanges put at the end of a pair code (BTCUSDT), longest first.
QUOTES = (
    "FDUSD",
    "USDT",
    "USDC",
    "BUSD",
    "TUSD",
    "USDP",
    "DAI",
    "EUR",
    "GBP",
    "USD",
    "TRY",
    "AUD",
    "BRL",
    "CAD",
    "JPY",
    "CHF",
    "BTC",
    "XBT",
    "ETH",
    "BNB",
    "DOT",
    "SOL",
    "XRP",
)
_AMOUNT_WITH_UNIT = r"^(?P<amount>[+-]?[\d.,]+(?:[eE][+-]?\d+)?)\s*(?P<asset>[A-Za-z][A-Za-z0-9]*)$"


def split_pair(values: pa.Array, quotes: Sequence[str] = QUOTES) -> tuple[pa.Array, pa.Array]:
    """(base, quote) of pair codes: "BTC/USD", "BTC-USD", "BTC_USD" or "BTCUSDT" (the shortest
    base followed by a known quote); null where it cannot be split."""
    upper = pc.utf8_upper(values)
    sep = pc.extract_regex(upper, r"^(?P<base>[A-Z0-9.]+)[/_-](?P<quote>[A-Z0-9.]+)$")
    joined = pc.extract_regex(upper, f"^(?P<base>[A-Z0-9]+?)(?P<quote>{'|'.join(quotes)})$")
    base = pc.coalesce(pc.struct_field(sep, "base"), pc.struct_field(joined, "base"))
    quote = pc.coalesce(pc.struct_field(sep, "quote"), pc.struct_field(joined, "quote"))
    ok = pc.or_(sep.is_valid(), joined.is_valid())
    return when(ok, base), when(ok, quote)


def amount_with_unit(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """("0.01", "BTC") of "0.01BTC" / "1,234.5 USDT" (Binance trade history cells); a decimal
    comma without a point ("0,01BTC", the old ;-separated export) is read as the point."""
    parts = pc.extract_regex(values, _AMOUNT_WITH_UNIT)
    amount = pc.struct_field(parts, "amount")
    decimal_comma = pc.and_(
        pc.match_substring(amount, ","), pc.invert(pc.match_substring(amount, "."))
    )
    decimal_comma = pc.and_(decimal_comma, pc.invert(pc.match_substring_regex(amount, r",\d{3}$")))
    amount = pc.if_else(
        decimal_comma, pc.replace_substring(amount, ",", "."), pc.replace_substring(amount, ",", "")
    )
    return when(parts.is_valid(), amount), when(parts.is_valid(), pc.struct_field(parts, "asset"))


ZERO = pa.scalar(0, AMOUNT)
MONTH_FIRST, DAY_FIRST = "mdy", "dmy"  # orders of slashed dates (FormatSpec.date_order)
SKIPPED_PREFIX = "skipped: "  # every deliberately skipped row's reason starts so, once


@dataclass(frozen=True)
class FormatSpec:
    """One header version of one source (BittyTax style: a source registers every version).

    `columns` are the header's names as the export writes them (required, in its order),
    `optional_columns` may be absent. A name may hold the placeholder `{ccy}` (Coinbase 2020:
    "EUR Subtotal"): the header's value is handed to `to_legs` as the constant column
    `header_ccy`; `{utc}` a zone in the name ("Filled Time(UTC+08:00)": `header_utc` =
    "UTC+08:00"); `{asset}` one column per asset ("{asset} Amount {asset}" reads "BTC Amount
    BTC" as the column "BTC Amount"; such columns are optional). `rename` maps a header name to the name `to_legs` reads, so versions of a source
    share one mapping. Header matching ignores case, blanks, a BOM and the column order."""

    name: str  # unique version id, e.g. "coinbase-2023"
    columns: tuple[str, ...]
    to_legs: Callable[[pa.Table, ParseContext], tuple[pa.Table, RowChecks]]
    optional_columns: tuple[str, ...] = ()
    source: str = ""  # the exchange/tool; "" = name
    description: str = ""  # which export this is, for /v1/formats and errors
    rename: Mapping[str, str] = field(default_factory=dict)
    # Rows one input row stands for (a Koinly export transfer is a withdrawal and a deposit):
    # table -> (expanded table, index of the input row of each output row).
    expand: Callable[[pa.Table], tuple[pa.Table, np.ndarray]] | None = None
    # Constant columns read from the lines before the header (OKX: 'Time Zone:UTC+8').
    preamble_values: Callable[[str], dict[str, str]] | None = None
    # Whether the timestamps carry their zone: True when UTC by the column's name ("UTC_Time",
    # "Timestamp (UTC)") or the exchange's documentation (Kraken), or an offset in the values or
    # the column name: a `tz` option is not applied. False: zone-less text, read in `tz` (UTC
    # without one); a zone written in a value still wins. None = undeclared (every registered
    # version declares it: tests/test_formats_zones.py); read as zone-less.
    zoned: bool | None = None
    # The order of slashed dates (M/D/YYYY vs D/M/YYYY) when a file does not tell (no day above
    # 12 anywhere): the exchange's documented one, else "mdy", Excel's default (en-US) order for
    # a file re-saved by Excel. None: slashed dates are not rewritten (a user's strptime format).
    date_order: str | None = MONTH_FIRST

    @property
    def source_name(self) -> str:
        return self.source or self.name

    def column_for(self, header_field: str) -> str | None:
        """The name `to_legs` reads for a header field (case, blanks and BOM ignored)."""
        found = _lookup_names(self.columns + self.optional_columns).get(header_key(header_field))
        if found is not None:
            return self.rename.get(found, found)
        for rx, name in _patterns(self.columns + self.optional_columns):
            m = rx.match(header_key(header_field))
            if m:
                # "{asset} Amount {asset}" (Gemini): one column per asset, "BTC Amount"
                out = self.rename.get(name, name)
                return out.replace("{asset}", m.group("asset").upper()) if "{asset}" in out else out
        return None

    def header_values(self, header: Sequence[str]) -> dict[str, str]:
        """Placeholder values of the header ({"header_ccy": "EUR"} for "EUR Subtotal")."""
        out: dict[str, str] = {}
        for h in header:
            for rx, _ in _patterns(self.columns + self.optional_columns):
                m = rx.match(header_key(h))
                for key in ("ccy", "utc"):
                    if m and key in rx.groupindex and m.group(key) is not None:
                        out.setdefault(f"header_{key}", m.group(key).upper())
        return out

    def missing(self, header: Sequence[str]) -> list[str]:
        present = {self.column_for(h) for h in header}
        return [c for c in self.columns if self.rename.get(c, c) not in present]

    def present(self, header: Sequence[str]) -> int:
        """How many of the version's columns the header has (the more, the better the match)."""
        present = {self.column_for(h) for h in header} - {None}
        return len(present)

    def matches(self, header: Sequence[str]) -> bool:
        return not self.missing(header)


def header_key(name: str) -> str:
    """What header names are compared by: no BOM, quotes, case or blanks."""
    return re.sub(r"\s+", "", name.replace("\ufeff", "").strip().strip('"').lower())


_PLACEHOLDERS = {
    "ccy": r"[a-z]{3,4}",
    "utc": r"utc(?:[+-]\d{2}:?\d{2})?",
    "asset": r"[a-z0-9]{2,12}?",
}
_PLACEHOLDER = re.compile(r"\{(ccy|utc|asset)\}")


@lru_cache(maxsize=256)
def _lookup_names(names: tuple[str, ...]) -> dict[str, str]:
    return {header_key(n): n for n in names if not _PLACEHOLDER.search(n)}


@lru_cache(maxsize=256)
def _patterns(names: tuple[str, ...]) -> list[tuple[re.Pattern[str], str]]:
    out = []
    for n in names:
        parts = _PLACEHOLDER.split(header_key(n))
        if len(parts) == 1:
            continue
        rx, seen = "^", set()
        for i, part in enumerate(parts):
            if i % 2 == 0:
                rx += re.escape(part)
            elif part in seen:  # the same placeholder again: the same text ("BTC ... BTC")
                rx += f"(?P={part})"
            else:
                seen.add(part)
                rx += f"(?P<{part}>{_PLACEHOLDERS[part]})"
        out.append((re.compile(rx + r"\Z"), n))
    return out


# --- row checks ------------------------------------------------------------------------------
@dataclass
class RowChecks:
    """Collects per-row problems as boolean masks; reasons are formatted only for flagged rows.
    Several problems of one row are joined with '; ' so the user fixes them in one go."""

    n: int
    _rejects: list[tuple[np.ndarray, str, pa.Array | None]] = field(default_factory=list)
    _skips: list[tuple[np.ndarray, str, pa.Array | None]] = field(default_factory=list)
    _notes: list[tuple[np.ndarray, str, pa.Array | None]] = field(default_factory=list)

    def reject(
        self, mask: pa.Array | np.ndarray, reason: str, values: pa.Array | None = None
    ) -> None:
        """Reject rows where mask; `reason` may hold one '{}' filled with the row's value."""
        m = as_mask(mask)
        if m.any():
            self._rejects.append((m, reason, values))

    def skip(
        self, mask: pa.Array | np.ndarray, reason: str, values: pa.Array | None = None
    ) -> None:
        """Deliberately ignore rows where mask (reported with skipped=True). The reason reads
        'skipped: <reason>' wherever it is shown; this is the one place that prefixes it."""
        m = as_mask(mask) & ~self.rejected_mask()
        if m.any():
            self._skips.append((m, f"{SKIPPED_PREFIX}{reason}", values))

    def note(self, mask: pa.Array | np.ndarray, text_: str, values: pa.Array | None = None) -> None:
        """Keep the row but say what was changed (appended to its description)."""
        m = as_mask(mask)
        if m.any():
            self._notes.append((m, text_, values))

    def rename_columns(self, names: Mapping[str, str]) -> None:
        """Say "column <theirs>" where a reason says "column <ours>" (a mapped file's reasons
        name the user's columns, not the universal ones they were read as)."""

        def renamed(reason: str) -> str:
            for ours, theirs in sorted(names.items(), key=lambda kv: -len(kv[0])):
                reason = re.sub(rf"\bcolumn {re.escape(ours)}\b", f"column {theirs}", reason)
            return reason

        for entries in (self._rejects, self._skips, self._notes):
            entries[:] = [(m, renamed(r), v) for m, r, v in entries]

    def notes(self) -> dict[int, str]:
        """row index -> note text."""
        return self._collect(self._notes)

    def rejected_mask(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for m, _, _ in self._rejects:
            out |= m
        return out

    def dropped_mask(self) -> np.ndarray:
        out = self.rejected_mask()
        for m, _, _ in self._skips:
            out |= m
        return out

    def reasons(self) -> list[tuple[int, str, bool]]:
        """(row index, reason, skipped) per dropped row, by index."""
        rejected = self._collect(self._rejects)
        skipped = {i: r for i, r in self._collect(self._skips).items() if i not in rejected}
        out = [(i, r, False) for i, r in rejected.items()] + [
            (i, r, True) for i, r in skipped.items()
        ]
        return sorted(out)

    @staticmethod
    def _collect(entries: list[tuple[np.ndarray, str, pa.Array | None]]) -> dict[int, str]:
        out: dict[int, list[str]] = {}
        for m, reason, values in entries:
            idx = np.flatnonzero(m)
            shown = (
                values.take(pa.array(idx)).to_pylist() if values is not None else [None] * len(idx)
            )
            for i, v in zip(idx.tolist(), shown):
                out.setdefault(i, []).append(
                    reason.format(_shorten(v)) if "{}" in reason else reason
                )
        return {i: "; ".join(dict.fromkeys(rs)) for i, rs in out.items()}


def _shorten(value: object, limit: int = 100) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def as_mask(mask: pa.Array | pa.ChunkedArray | np.ndarray) -> np.ndarray:
    if isinstance(mask, np.ndarray):
        return mask.astype(bool, copy=False)
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


# --- vectorized column parsers -----------------------------------------------------------------
def text(table: pa.Table, column: str) -> pa.Array:
    """A string column trimmed, '' -> null; an absent (optional) column is all null."""
    if column not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    col = pc.utf8_trim_whitespace(table.column(column).combine_chunks())
    return pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)


_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_PLAIN_IN_RANGE = r"^[+-]?\d{1,20}(\.\d{1,18})?$"
_PLAIN_TOO_PRECISE = r"^[+-]?\d{1,20}\.\d{19,}$"


def _round_to_scale(text_value: str) -> str:
    from decimal import ROUND_HALF_EVEN, Decimal

    q = Decimal(text_value).quantize(Decimal(1).scaleb(-AMOUNT.scale), rounding=ROUND_HALF_EVEN)
    return format(q, "f")


def parse_amount(
    values: pa.Array, column: str, checks: RowChecks, *, money: bool = False
) -> pa.Array:
    """Exact decimal128(38,18) of a text column (null where empty). Never goes through float.
    `money` also accepts currency signs and thousands separators ("-$1,234.50")."""
    s = values
    if money:
        s = pc.replace_substring_regex(s, r"[$€£¥\s,]", "")
        s = pc.if_else(pc.equal(s, ""), pa.scalar(None, pa.string()), s)
    try:  # the usual case, one C pass: Arrow's exact decimal parse accepts every valid cell
        return pc.cast(s, AMOUNT)
    except pa.ArrowException:
        pass  # some cell is bad or out of range: find which, below
    numeric = pc.match_substring_regex(s, _NUMBER)
    checks.reject(pc.invert(numeric), f"non-numeric amount '{{}}' in column {column}", values)
    # Canonical text: leading zero, no trailing fractional zeros (so 1.50000... fits 18 digits).
    s = pc.replace_substring_regex(s, r"^([+-]?)\.", r"\10.")
    has_exp = pc.match_substring(s, "e", ignore_case=True)
    plain = pc.replace_substring_regex(s, r"(\.\d*?)0+$", r"\1")
    plain = pc.replace_substring_regex(plain, r"\.$", "")
    is_plain = pc.and_(numeric, pc.invert(has_exp))
    in_range = pc.match_substring_regex(plain, _PLAIN_IN_RANGE)
    # More than 18 decimals (some tokens have 24): rounded to the storage scale, and said so.
    too_precise = pc.and_(
        pc.and_(is_plain, pc.invert(in_range)), pc.match_substring_regex(plain, _PLAIN_TOO_PRECISE)
    )
    precise_mask = as_mask(too_precise)
    if precise_mask.any():
        rounded = [_round_to_scale(v) for v in plain.filter(pa.array(precise_mask)).to_pylist()]
        plain = pc.replace_with_mask(plain, pa.array(precise_mask), pa.array(rounded, pa.string()))
        in_range = pc.or_(in_range, too_precise)
        checks.note(
            too_precise,
            f"amount '{{}}' in column {column} rounded to {AMOUNT.scale} decimals",
            values,
        )
    checks.reject(
        pc.and_(is_plain, pc.invert(in_range)),
        f"amount '{{}}' in column {column} is out of range (at most 20 integer digits)",
        values,
    )
    out = pc.cast(
        pc.if_else(pc.and_(is_plain, in_range), plain, pa.scalar(None, pa.string())), AMOUNT
    )
    exp_mask = as_mask(pc.and_(numeric, has_exp))
    if exp_mask.any():  # rare ("1E-8" from spreadsheets): exact per-value path
        fixed = [_exp_to_decimal_text(v) for v in s.filter(pa.array(exp_mask)).to_pylist()]
        out = pc.replace_with_mask(
            out, pa.array(exp_mask), pc.cast(pa.array(fixed, pa.string()), AMOUNT)
        )
        bad = exp_mask.copy()
        bad[np.flatnonzero(exp_mask)[[f is not None for f in fixed]]] = False
        checks.reject(bad, f"amount '{{}}' in column {column} is out of range", values)
    return out


def _exp_to_decimal_text(text_value: str) -> str | None:
    from decimal import Decimal, InvalidOperation

    try:
        d = Decimal(text_value)
        q = d.quantize(Decimal(1).scaleb(-18))
    except (InvalidOperation, ValueError):
        return None
    return str(q) if q == d and abs(q) < Decimal(10) ** 20 else None


def negative(amounts: pa.Array) -> pa.Array:
    return pc.less(amounts, ZERO)


def positive(amounts: pa.Array) -> pa.Array:
    return pc.greater(amounts, ZERO)


def abs_amount(amounts: pa.Array) -> pa.Array:
    return pc.abs(amounts)


_WIDE = pa.decimal256(40, AMOUNT.scale)
_LIMIT = pa.scalar(10**20, pa.decimal256(41, AMOUNT.scale))


def add_amounts(a: pa.Array, b: pa.Array, *, subtract: bool = False) -> pa.Array:
    """a + b (or a - b) as AMOUNT; null where the result leaves AMOUNT's 20 integer digits.
    (decimal128(38,18) + decimal128(38,18) needs precision 39, so compute in decimal256.)"""
    wide = (pc.subtract if subtract else pc.add)(pc.cast(a, _WIDE), pc.cast(b, _WIDE))
    fits = pc.less(pc.abs(wide), _LIMIT)
    return pc.cast(pc.if_else(fits, wide, pa.scalar(None, wide.type)), AMOUNT)


def when(
    mask: pa.Array, values: pa.Array | pa.Scalar | str | None, typ: pa.DataType = pa.string()
) -> pa.Array:
    """values where mask, else null (mask nulls count as false)."""
    mask = pc.fill_null(mask, False)
    arrow_values = (
        values
        if isinstance(values, (pa.Array, pa.ChunkedArray, pa.Scalar))
        else pa.scalar(values, typ)
    )
    return pc.if_else(mask, arrow_values, pa.scalar(None, arrow_values.type))


_TIMESTAMP = (
    r"^(?P<date>\d{4}-\d{2}-\d{2}|\d{2}-\d{2}-\d{2})"
    r"(?:[T ](?P<time>\d{1,2}:\d{2}(?::\d{2})?)(?P<frac>\.\d{1,9})?)?"
    r"\s*(?P<zone>Z|UTC|GMT|[+-]\d{2}:?\d{2})?$"
)


@lru_cache(maxsize=32)
def check_timezone(tz: str) -> str:
    """`tz` if the parser can use it: checked with Arrow's zone database (what `parse_timestamp`
    reads local times with), which lacks names Python's zoneinfo knows ('Factory', 'right/UTC',
    'posixrules'). The upload checks zones with this too: one check, where the zone is used."""
    try:
        pc.assume_timezone(pa.array([0], pa.timestamp("us")), timezone=tz)
    except (pa.ArrowInvalid, ValueError) as e:
        raise ValueError(
            f"unknown time zone {tz!r} (expected an IANA name like 'Europe/Berlin')"
        ) from e
    return tz


# What every exchange here writes: one regex and two slices instead of the general parse.
_PLAIN_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?: UTC|Z)?$"


def parse_timestamp(values: pa.Array, column: str, checks: RowChecks, tz: str | None) -> pa.Array:
    """UTC timestamps from text like '2024-01-05 14:03:00 UTC', '2024-01-05T14:03:00.123+02:00',
    '24-01-05 14:03:00' (Binance's two-digit year) or a bare date (slashed dates, '1/5/2024
    14:03', are rewritten to this form per file before a format reads them: parse.iso_dates).
    Text without a zone is local time in `tz` (None: UTC). Validates the calendar: 2024-02-30
    is rejected, not rolled over."""
    checks.reject(values.is_null(), f"missing date in column {column}")
    if pc.all(pc.match_substring_regex(values, _PLAIN_TIMESTAMP)).as_py() is not False:
        iso = pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(values, 0, 10), pc.utf8_slice_codeunits(values, 11, 19), "T"
        )
        micros = pa.nulls(len(values), pa.int64())
        offset_minutes = pa.nulls(len(values), pa.int64())
        zoned = pc.greater(pc.utf8_length(values), 19)  # ' UTC' or 'Z'
    else:
        iso, micros, offset_minutes, zoned = _timestamp_parts(values)
    naive = pc.strptime(iso, format="%Y-%m-%dT%H:%M:%S", unit="us", error_is_null=True)
    # strptime rolls 02-30 over into March and 60 s into the next minute: compare the fields
    # that can roll (cheaper than formatting back).
    same = pc.and_(
        pc.and_(
            pc.equal(pc.day(naive), _int(pc.utf8_slice_codeunits(iso, 8, 10))),
            pc.equal(pc.minute(naive), _int(pc.utf8_slice_codeunits(iso, 14, 16))),
        ),
        pc.equal(pc.second(naive), _int(pc.utf8_slice_codeunits(iso, 17, 19))),
    )
    ok = pc.fill_null(same, False)
    checks.reject(
        pc.and_(values.is_valid(), pc.invert(ok)), f"bad date '{{}}' in column {column}", values
    )
    naive = pc.if_else(ok, naive, pa.scalar(None, naive.type))
    naive = pc.add(naive, pc.cast(pc.fill_null(micros, 0), pa.duration("us")))
    offset = pc.cast(pc.multiply(pc.fill_null(offset_minutes, 0), 60_000_000), pa.duration("us"))
    explicit = pc.cast(pc.subtract(naive, offset), TIMESTAMP)
    if tz is None or tz == "UTC":
        return explicit  # no zone means UTC: offset is 0 there
    local = pc.cast(
        pc.assume_timezone(
            naive, timezone=check_timezone(tz), ambiguous="earliest", nonexistent="latest"
        ),
        TIMESTAMP,
    )
    return pc.if_else(pc.fill_null(zoned, False), explicit, local)


def time_in_header_zone(
    table: pa.Table, column: str, checks: RowChecks, ctx: ParseContext
) -> pa.Array:
    """The time column, in the zone its name states (`{utc}`: "Filled Time(UTC+08:00)" reads
    its values at +08:00, "Date(UTC)" at UTC); a name without a zone: `ctx.tz`."""
    values = text(table, column)
    zone = text(table, "header_utc")
    if zone.null_count == len(zone) or len(zone) == 0:
        return parse_timestamp(values, column, checks, ctx.tz)
    offset = pc.replace_substring_regex(zone, r"^UTC", "")
    offset = pc.if_else(pc.equal(offset, ""), "Z", offset)
    return parse_timestamp(pc.binary_join_element_wise(values, offset, ""), column, checks, None)


# A slashed date as exchanges and Excel write it: M/D/YYYY or D/M/YY, maybe a time (seconds,
# fractions, AM/PM optional) and a zone.
SLASHED_DATE = (
    r"^\s*(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<year>\d{4}|\d{2})"
    r"(?:[ T]+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<frac>\.\d{1,9})?)?"
    r"(?:\s*(?P<ampm>[AaPp][Mm]))?)?(?P<zone>\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2}))?\s*$"
)


def slashed_dates_to_iso(values: pa.Array, order: str) -> pa.Array:
    """ISO text of slashed dates ("mdy": '1/22/2023 4:32' -> '2023-01-22 04:32:00'; "dmy" reads
    '22/1/2023'); two-digit years are 20YY, a 12-hour clock becomes 24-hour. Other text is
    returned unchanged, and so is a value whose month would exceed 12 in `order` (the format's
    parse then rejects it as written). One order per file: see chunking.date_order_of."""
    parts = pc.extract_regex(values, SLASHED_DATE)
    if parts.null_count == len(parts):
        return values

    def part(name: str) -> pa.Array:
        return pc.struct_field(parts, name)

    month, day = (part("a"), part("b")) if order == MONTH_FIRST else (part("b"), part("a"))
    month_number = _int(month)
    ok = pc.fill_null(
        pc.and_(pc.greater_equal(month_number, 1), pc.less_equal(month_number, 12)), False
    )
    year = part("year")
    year = pc.if_else(
        pc.equal(pc.utf8_length(year), 2), pc.binary_join_element_wise("20", year, ""), year
    )
    hour = pc.fill_null(_int(part("hour")), 0)
    ampm = pc.utf8_upper(part("ampm"))
    hour = pc.if_else(
        pc.equal(ampm, ""),
        hour,
        pc.add(pc.remainder(hour, 12), pc.if_else(pc.equal(ampm, "PM"), 12, 0)),
    )

    def two(digits: pa.Array) -> pa.Array:
        return pc.utf8_lpad(pc.if_else(pc.equal(digits, ""), "0", digits), width=2, padding="0")

    date = pc.binary_join_element_wise(year, two(month), two(day), "-")
    clock = pc.binary_join_element_wise(
        two(pc.cast(hour, pa.string())), two(part("minute")), two(part("second")), ":"
    )
    timed = pc.if_else(
        pc.equal(part("hour"), ""), date, pc.binary_join_element_wise(date, clock, " ")
    )  # a date alone stays a date (Gemini writes the time in a column of its own)
    return pc.if_else(
        ok, pc.binary_join_element_wise(timed, part("frac"), part("zone"), ""), values
    )


def timestamp_text(values: pa.Array, fmt: str) -> pa.Array:
    """ISO text ('2024-01-05 14:03:00') of timestamps written in the strptime format `fmt`
    ("%b %d, %Y, %I:%M %p", "%d/%m/%Y %H:%M"); null where a value does not fit it, or names a day
    that does not exist (strptime would roll 02-30 over: the value is formatted back and
    compared, leading zeros and case ignored)."""
    parsed = pc.strptime(values, format=fmt, unit="s", error_is_null=True)
    back = pc.strftime(parsed, format=fmt)

    def canonical(v: pa.Array) -> pa.Array:
        return pc.utf8_lower(pc.replace_substring_regex(v, r"(^|\D)0+(\d)", r"\1\2"))

    same = pc.fill_null(pc.equal(canonical(back), canonical(values)), False)
    return when(same, pc.strftime(parsed, format="%Y-%m-%d %H:%M:%S"))


def _timestamp_parts(values: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """(iso 'YYYY-MM-DDTHH:MM:SS', microseconds, zone offset in minutes, has a zone) of any
    accepted form; iso is null where the text is no timestamp."""
    parts = pc.extract_regex(values, _TIMESTAMP)
    date = pc.struct_field(parts, "date")
    date = pc.if_else(
        pc.equal(pc.utf8_length(date), 8), pc.binary_join_element_wise("20", date, ""), date
    )
    clock = pc.struct_field(parts, "time")
    clock = pc.if_else(pc.equal(clock, ""), "00:00:00", clock)
    clock = pc.if_else(
        pc.equal(pc.utf8_length(clock), 4), pc.binary_join_element_wise("0", clock, ""), clock
    )  # 9:05 -> 09:05
    clock = pc.if_else(
        pc.equal(pc.utf8_length(clock), 5), pc.binary_join_element_wise(clock, ":00", ""), clock
    )
    iso = pc.if_else(
        parts.is_valid(),
        pc.binary_join_element_wise(date, clock, "T"),
        pa.scalar(None, pa.string()),
    )
    frac = pc.utf8_slice_codeunits(pc.struct_field(parts, "frac"), 1, 7)
    micros = _int(pc.utf8_slice_codeunits(pc.utf8_rpad(frac, width=6, padding="0"), 0, 6))
    zone = pc.struct_field(parts, "zone")
    sign = pc.if_else(pc.starts_with(zone, "-"), -1, 1)
    digits = pc.replace_substring(zone, ":", "")
    minutes = pc.if_else(
        pc.match_substring_regex(digits, r"^[+-]\d{4}$"),
        pc.add(
            pc.multiply(_int(pc.utf8_slice_codeunits(digits, 1, 3)), 60),
            _int(pc.utf8_slice_codeunits(digits, 3, 5)),
        ),
        0,
    )
    return iso, micros, pc.multiply(sign, minutes), pc.not_equal(zone, "")


def _int(digits: pa.Array) -> pa.Array:
    """int64 of digit strings, null elsewhere (a plain cast fails the whole array on one '')."""
    ok = pc.match_substring_regex(digits, r"^\d{1,18}$")
    return pc.cast(pc.if_else(ok, digits, pa.scalar(None, pa.string())), pa.int64())


def parse_asset(values: pa.Array, column: str, checks: RowChecks, source: str) -> pa.Array:
    """Normalized symbols (see ingest.normalize.assets); text that is no symbol is rejected."""
    out = normalize_assets(values, source)
    bad = pc.and_(
        values.is_valid(),
        pc.invert(pc.fill_null(pc.match_substring_regex(out, SYMBOL_PATTERN), False)),
    )
    checks.reject(bad, f"bad asset '{{}}' in column {column}", values)
    return pc.if_else(bad, pa.scalar(None, pa.string()), out)


def require_pair(
    amount: pa.Array, asset: pa.Array, checks: RowChecks, amount_column: str, asset_column: str
) -> None:
    """An amount needs its asset and an asset its amount (pass the text columns, so a bad value
    is reported as bad, not also as missing)."""
    checks.reject(
        pc.and_(amount.is_valid(), asset.is_null()), f"missing asset in column {asset_column}"
    )
    checks.reject(
        pc.and_(asset.is_valid(), amount.is_null()), f"missing amount in column {amount_column}"
    )


def lookup(keys: pa.Array, table: dict[str, tuple[str | None, ...]], width: int) -> list[pa.Array]:
    """Vectorized dict lookup (case-insensitive keys): one array per tuple position, null for
    unknown keys. Used for operation/type names -> (kind, label, ...)."""
    names = sorted(table)
    idx = pc.index_in(pc.utf8_lower(keys), value_set=pa.array(names, pa.string()))
    return [pa.array([table[n][i] for n in names], pa.string()).take(idx) for i in range(width)]


def read_kind(
    table: pa.Table,
    column: str,
    kinds: dict[str, tuple[str | None, ...]],
    width: int,
    checks: RowChecks,
    noun: str = "type",
) -> tuple[pa.Array, list[pa.Array]]:
    """(the text of the column naming each row's kind, its `kinds` entry: one array per tuple
    position, as `lookup`). A row without one, or with one no rule maps, is rejected naming
    it ("unknown type 'x' in column Type"): never a guess."""
    values = text(table, column)
    found = lookup(values, kinds, width)
    checks.reject(values.is_null(), f"missing {noun} in column {column}")
    checks.reject(
        pc.and_(values.is_valid(), found[0].is_null()),
        f"unknown {noun} '{{}}' in column {column}",
        values,
    )
    return values, found


def read_asset_amount(
    table: pa.Table,
    columns: tuple[str, str],
    checks: RowChecks,
    source: str,
    *,
    money: bool = False,
) -> tuple[pa.Array, pa.Array]:
    """(normalized asset, signed exact amount) of a row's two required `columns` (asset,
    amount); a missing or unreadable value is rejected naming its column."""
    asset_column, amount_column = columns
    raw_asset, raw_amount = text(table, asset_column), text(table, amount_column)
    asset = parse_asset(raw_asset, asset_column, checks, source)
    checks.reject(raw_asset.is_null(), f"missing asset in column {asset_column}")
    amount = parse_amount(raw_amount, amount_column, checks, money=money)
    checks.reject(raw_amount.is_null(), f"missing amount in column {amount_column}")
    return asset, amount


def classify_sides(sent_asset: pa.Array, received_asset: pa.Array) -> pa.Array:
    """Type from which sides a transaction has: fiat -> crypto = buy, crypto -> fiat = sell, any
    other exchange = trade, only received = deposit, only sent = withdrawal, none = null."""
    has_s, has_r = sent_asset.is_valid(), received_asset.is_valid()
    s_fiat = pc.fill_null(is_fiat(sent_asset), False)
    r_fiat = pc.fill_null(is_fiat(received_asset), False)
    both = pc.and_(has_s, has_r)
    conds = pa.StructArray.from_arrays(
        [
            pc.and_(both, pc.and_(s_fiat, pc.invert(r_fiat))),
            pc.and_(both, pc.and_(r_fiat, pc.invert(s_fiat))),
            both,
            has_r,
            has_s,
        ],
        names=["buy", "sell", "trade", "deposit", "withdrawal"],
    )
    return pc.case_when(
        conds,
        TxType.BUY.value,
        TxType.SELL.value,
        TxType.TRADE.value,
        TxType.DEPOSIT.value,
        TxType.WITHDRAWAL.value,
    )


def trade_rows(
    source: str,
    n: int,
    ctx: ParseContext,
    checks: RowChecks,
    ts: pa.Array,
    side: pa.Array,
    base: pa.Array,
    base_amount: pa.Array,
    quote: pa.Array,
    quote_amount: pa.Array,
    fee_asset: pa.Array,
    fee_amount: pa.Array,
    columns: tuple[str, str, str],
    external_id: pa.Array | None = None,
) -> pa.Table:
    """One trade per row of a trade history: BUY = quote -> base, SELL = base -> quote (sides
    compared case-insensitively); the fee in `fee_asset`. Text columns in, a draft out."""
    side = pc.utf8_upper(side)
    buy, sell = pc.equal(side, "BUY"), pc.equal(side, "SELL")
    checks.reject(
        pc.invert(pc.fill_null(pc.or_(buy, sell), False)), "side '{}' is neither BUY nor SELL", side
    )
    base_col, quote_col, fee_col = columns
    b = parse_asset(base, base_col, checks, source)
    q = parse_asset(quote, quote_col, checks, source)
    f = parse_asset(fee_asset, fee_col, checks, source)
    b_amount = abs_amount(parse_amount(base_amount, base_col, checks))
    q_amount = abs_amount(parse_amount(quote_amount, quote_col, checks))
    f_amount = abs_amount(parse_amount(fee_amount, fee_col, checks))
    for col, asset, amount in ((base_col, b, b_amount), (quote_col, q, q_amount)):
        checks.reject(
            pc.or_(asset.is_null(), amount.is_null()), f"missing amount or asset in column {col}"
        )
    has_fee = pc.fill_null(positive(f_amount), False)
    sent_asset, received_asset = pc.if_else(buy, q, b), pc.if_else(buy, b, q)
    type_ = classify_sides(sent_asset, received_asset)
    skip_fiat_only(checks, type_, sent_asset, received_asset)
    return draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, ctx.wallet or source),
        type=type_,
        sent_asset=sent_asset,
        sent_amount=pc.if_else(buy, q_amount, b_amount),
        received_asset=received_asset,
        received_amount=pc.if_else(buy, b_amount, q_amount),
        fee_asset=when(has_fee, f),
        fee_amount=when(has_fee, f_amount, f_amount.type),
        external_id=external_id,
    )


def check_total(
    checks: RowChecks,
    parts: tuple[pa.Array, pa.Array],
    total: pa.Array,
    columns: tuple[str, str, str],
    tolerance: float = 0.01,
) -> None:
    """Reject rows whose own arithmetic does not add up: price x quantity (the two decimal
    `parts`) must be the stated decimal `total` within `tolerance` (relative; exchanges round the
    average price), or the columns do not mean what the mapping reads them as. Rows with a null
    part are not checked."""
    a, b = (pc.cast(x, pa.float64()) for x in parts)
    t = pc.cast(total, pa.float64())
    off = as_mask(
        pc.greater(
            pc.abs(pc.subtract(pc.multiply(a, b), t)),
            pc.add(pc.multiply(pc.abs(t), tolerance), 1e-12),
        )
    )
    if not off.any():
        return
    flagged = pa.array(off)
    shown = [  # exact decimal product for the few rejected rows (no float noise in the reason)
        f"{(x * y).normalize():f} vs {z.normalize():f}"
        for x, y, z in zip(
            parts[0].filter(flagged).to_pylist(),
            parts[1].filter(flagged).to_pylist(),
            total.filter(flagged).to_pylist(),
        )
    ]
    reason = (
        f"{columns[0]} x {columns[1]} does not match {columns[2]} ({{}}): not a trade row as read"
    )
    values = pc.replace_with_mask(pa.nulls(len(off), pa.string()), flagged, pa.array(shown))
    checks.reject(off, reason, values)


def leg_draft(
    wallet: str,
    ts: pa.Array,
    sides: tuple[pa.Array, pa.Array],
    moved: tuple[pa.Array, pa.Array],
    fee: tuple[pa.Array, pa.Array, pa.Array],
    external_id: pa.Array | None,
    group: pa.Array,
) -> pa.Table:
    """One leg per row of a history that writes a trade as a row per asset (combined later by
    `group`): `sides` (buy = the row's asset received, sell = sent), `moved` (asset, amount),
    `fee` (charged mask, asset, amount)."""
    (buy, sell), (asset, amount), (charged, fee_asset, fee_amount) = sides, moved, fee
    n = len(ts)
    return draft_table(
        n,
        timestamp=ts,
        wallet=constant(n, wallet),
        sent_asset=when(sell, asset),
        sent_amount=when(sell, amount, amount.type),
        received_asset=when(buy, asset),
        received_amount=when(buy, amount, amount.type),
        fee_asset=when(charged, fee_asset),
        fee_amount=when(charged, fee_amount, fee_amount.type),
        external_id=external_id,
        group=group,
    )


def skip_fiat_only(
    checks: RowChecks, type_: pa.Array, sent_asset: pa.Array, received_asset: pa.Array
) -> None:
    """One-sided rows in fiat (bank deposit/withdrawal) carry no crypto: skipped. Fiat income
    (Kraken EUR interest, a cash reward) is kept: it is income, and dropping it loses it. Both
    sides in fiat (EUR -> USD) is no crypto movement either: skipped."""
    one_sided = pc.xor(sent_asset.is_valid(), received_asset.is_valid())
    asset = pc.coalesce(sent_asset, received_asset)
    income = pc.fill_null(pc.equal(type_, TxType.INCOME.value), False)
    fiat_only = pc.and_(
        pc.and_(one_sided, pc.fill_null(is_fiat(asset), False)),
        pc.and_(type_.is_valid(), pc.invert(income)),
    )
    checks.skip(fiat_only, "fiat {} is not a crypto movement (no tax effect)", type_)
    both_fiat = pc.and_(
        pc.fill_null(is_fiat(sent_asset), False), pc.fill_null(is_fiat(received_asset), False)
    )
    checks.skip(both_fiat, "fiat-for-fiat exchange is not a crypto movement (no tax effect)")


def draft_table(n: int, **columns: pa.Array | None) -> pa.Table:
    """A DRAFT_SCHEMA table of n rows; absent columns are null."""
    unknown = set(columns) - set(DRAFT_SCHEMA.names)
    if unknown:
        raise TypeError(f"not draft columns: {sorted(unknown)}")
    arrays = []
    for f in DRAFT_SCHEMA:
        col = columns.get(f.name)
        arrays.append(pa.nulls(n, f.type) if col is None else pc.cast(col, f.type))
    return pa.Table.from_arrays(arrays, schema=DRAFT_SCHEMA)


def constant(n: int, value: str | None) -> pa.Array:
    return pa.array([value] * n, pa.string()) if value is not None else pa.nulls(n, pa.string())
