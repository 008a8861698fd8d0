"""Chunked, parallel-ready parsing: bytes of one chunk -> legs; legs of one partition ->
canonical transactions. Pure functions; the caller decides where they run (Ray tasks, or
sequentially in `parse_local_file`).

    inspect_file -> plan_chunks -> parse_chunk (per chunk) -> partition_legs (per chunk)
      -> finalize_partition (per partition: rows of one partition key meet there) -> canonical

Reading a chunk: pyarrow.csv with every column as string, after a vectorized record split
(numpy over the newline, quote and comma positions) that gives each row's physical line, its
raw text and its column count, quoted newlines included. A chunk whose quoting is irregular
(a quote in the middle of an unquoted field, a bare CR, invalid UTF-8), or where pyarrow
disagrees with the split, is read by the exact path instead: Python's csv module, line by line,
for that chunk only. Bad rows become RejectedRows with line, reason and raw text; the good rows
of the chunk go on.
"""

from __future__ import annotations

import csv
import io
import os
import zlib
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from ingest.extract.chunking import (
    ByteRange,
    FileLayout,
    adaptive_chunk_bytes,
    header_fields,
    inspect_file,
    plan_chunks,
    read_range,
    read_sample,
    unwrap_requoted,
)
from ingest.extract.encoding import to_utf8
from ingest.extract.formats import get_format
from ingest.extract.formats.base import (
    DRAFT_CANONICAL,
    LEGS_SCHEMA,
    FormatError,
    ParseContext,
    RejectedRow,
    RowChecks,
    as_mask,
    check_timezone,
    classify_sides,
    slashed_dates_to_iso,
)
from ingest.extract.formats.mapped import ColumnMapping
from ingest.normalize.canonical import (
    AMOUNT,
    CANONICAL_SCHEMA,
    SIDE_COLUMNS,
    STATED_COLUMNS,
    TxType,
)
from ingest.normalize.identity import content_key, occurrence_index, tx_ids
from ingest.tax.numbers import split, tax_context

__all__ = [
    "ByteRange",
    "ChunkResult",
    "FileLayout",
    "FormatError",
    "ParseContext",
    "ParseResult",
    "RejectedRow",
    "finalize_partition",
    "parse_bytes",
    "parse_chunk",
    "parse_local_file",
    "parse_stream",
    "partition_legs",
]


@dataclass
class ChunkResult:
    legs: pa.Table  # LEGS_SCHEMA
    rejected: list[RejectedRow]  # by line; skipped=True ones are deliberate, not errors
    rows: int  # data rows seen in the chunk (blank lines not counted)


@dataclass
class ParseResult:
    table: pa.Table  # CANONICAL_SCHEMA, by source_line
    rejected: list[RejectedRow]  # by line
    format: str
    rows: int
    version: str = ""  # the header version read (see ingest.extract.formats)
    notes: list[str] = field(default_factory=list)  # how it was read (FileLayout.notes)

    @property
    def errors(self) -> list[RejectedRow]:
        return [r for r in self.rejected if not r.skipped]

    @property
    def skipped(self) -> list[RejectedRow]:
        return [r for r in self.rejected if r.skipped]


def empty_legs() -> pa.Table:
    return LEGS_SCHEMA.empty_table()


# --- reading the rows of a chunk -----------------------------------------------------------------
@dataclass(frozen=True)
class ChunkRows:
    table: pa.Table  # string columns named as the format names them
    lines: np.ndarray  # int64: physical line of each row
    raw: pa.Array  # (large) string: each row's text without its line end
    rejected: list[RejectedRow] = field(default_factory=list)  # structural problems
    rows: int = 0


def _columns(layout: FileLayout) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    return _columns_of(layout.spec_name, layout.header, layout.delimiter, layout.mapping)


@lru_cache(maxsize=64)
def _columns_of(
    spec_name: str, header: bytes, delimiter: str = ",", mapping: ColumnMapping | None = None
) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    """(a name for every header column, the ones the format reads, the fewest fields a row may
    have: rows may lack trailing optional columns, e.g. Binance's empty Remark). Unknown and
    repeated columns get placeholder names and are not read."""
    spec = mapping.spec() if mapping is not None else get_format(spec_name)
    names: list[str] = []
    for i, h in enumerate(header_fields(header, delimiter)):
        own = spec.column_for(h)
        names.append(own if own and own not in names else f"_column{i + 1}")
    required = {spec.rename.get(c, c) for c in spec.columns}
    min_fields = max((i + 1 for i, n in enumerate(names) if n in required), default=len(names))
    return tuple(names), tuple(n for n in names if not n.startswith("_column")), min_fields


def _skip_invalid(_row: object) -> str:
    return "skip"  # counted and reported from our own record split


@lru_cache(maxsize=8)
def _delimiter_tables(delimiter: str) -> tuple[np.ndarray, np.ndarray]:
    """Bytes that may stand before an opening quote / after a closing one."""
    before = np.zeros(256, dtype=bool)
    before[[ord(delimiter), ord("\n")]] = True
    after = np.zeros(256, dtype=bool)
    after[[ord(delimiter), ord("\r"), ord("\n")]] = True
    return before, after


def _regular_quotes(buf: np.ndarray, q: np.ndarray, delimiter: str = ",") -> bool:
    """Every quote opens a field, closes one, or is half of an escaped "" pair: then quote
    parity is exactly CSV's quoting, and pyarrow and our split agree."""
    if q.size % 2:
        return False
    even = (np.arange(q.size) & 1) == 0
    adjacent_prev = np.zeros(q.size, dtype=bool)
    adjacent_prev[1:] = q[1:] == q[:-1] + 1
    adjacent_next = np.zeros(q.size, dtype=bool)
    adjacent_next[:-1] = adjacent_prev[1:]
    n = buf.size
    delim_before, delim_after = _delimiter_tables(delimiter)
    before_ok = (q == 0) | delim_before[buf[np.maximum(q - 1, 0)]]
    after_ok = (q == n - 1) | delim_after[buf[np.minimum(q + 1, n - 1)]]
    bad_open = even & ~adjacent_prev & ~before_ok
    bad_close = ~even & ~adjacent_next & ~after_ok
    return not (bad_open.any() or bad_close.any())


def _record_text(raw: pa.Array, i: int) -> str:
    value = raw[i].as_py()
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value.rstrip("\r\n")


def _read_fast(data: bytes, layout: FileLayout, first_line: int) -> ChunkRows | None:
    """The vectorized path; None when the chunk needs the exact path."""
    names, included, min_fields = _columns(layout)
    ncols = len(names)
    if not data:
        return ChunkRows(
            table=pa.table({n: pa.array([], pa.string()) for n in included}),
            lines=np.zeros(0, dtype=np.int64),
            raw=pa.array([], pa.large_string()),
        )
    if data.count(b"\r") != data.count(b"\r\n"):
        return None  # a bare CR is a row end for pyarrow, not for our split
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    q = np.flatnonzero(buf == 34)
    commas = np.flatnonzero(buf == ord(layout.delimiter))
    if q.size:
        if not _regular_quotes(buf, q, layout.delimiter):
            return None
        term = nl[(np.searchsorted(q, nl) & 1) == 0]
        commas = commas[(np.searchsorted(q, commas) & 1) == 0]
    else:
        term = nl
    ends = term + 1
    if ends.size == 0 or ends[-1] != len(data):
        ends = np.append(ends, len(data))
    starts = np.concatenate(([0], ends[:-1])).astype(np.int64)
    content_end = ends - (buf[ends - 1] == 10)
    content_end = content_end - (
        (content_end > starts) & (buf[np.maximum(content_end - 1, 0)] == 13)
    )
    blank = content_end == starts
    fields = np.searchsorted(commas, content_end) - np.searchsorted(commas, starts) + 1
    if (~blank & (fields < ncols) & (fields >= min_fields)).any():
        return None  # rows without trailing optional fields: the exact path pads them
    good = ~blank & (fields == ncols)
    wrong = ~blank & (fields != ncols)
    record_lines = first_line + np.searchsorted(nl, starts)

    try:
        table = pcsv.read_csv(
            pa.BufferReader(data),
            read_options=pcsv.ReadOptions(column_names=list(names)),
            parse_options=pcsv.ParseOptions(
                delimiter=layout.delimiter,
                newlines_in_values=term.size != nl.size,
                invalid_row_handler=_skip_invalid,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types={n: pa.string() for n in included}, include_columns=list(included)
            ),
        )
    except pa.ArrowException:
        return None
    if table.num_rows != int(good.sum()):
        return None
    offsets = np.append(starts, ends[-1]).astype(np.int64)
    raw_all = pa.Array.from_buffers(
        pa.large_string(), len(starts), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    good_idx = np.flatnonzero(good)
    raw = raw_all if good_idx.size == len(starts) else raw_all.take(pa.array(good_idx))
    rejected = [
        RejectedRow(
            int(record_lines[i]),
            f"wrong number of columns: expected {ncols}, got {int(fields[i])}",
            _record_text(raw_all, int(i)),
        )
        for i in np.flatnonzero(wrong)
    ]
    return ChunkRows(
        table=table,
        lines=record_lines[good].astype(np.int64),
        raw=raw,
        rejected=rejected,
        rows=int(good.sum() + wrong.sum()),
    )


def _read_exact(data: bytes, layout: FileLayout, first_line: int) -> ChunkRows:
    """Python's csv module line by line: exact lines and reasons for any input."""
    names, included, min_fields = _columns(layout)
    ncols = len(names)
    wanted = [names.index(n) for n in included]
    parts = data.split(b"\n")
    texts = [p.decode("utf-8", errors="surrogateescape") + "\n" for p in parts[:-1]]
    if parts[-1]:
        texts.append(parts[-1].decode("utf-8", errors="surrogateescape"))
    reader = csv.reader(iter(texts), delimiter=layout.delimiter)
    columns: list[list[str]] = [[] for _ in included]
    lines: list[int] = []
    raws: list[str] = []
    rejected: list[RejectedRow] = []
    rows = 0
    while True:
        before = reader.line_num
        try:
            row = next(reader)
            problem = None
        except StopIteration:
            break
        except csv.Error as e:
            row, problem = [], f"malformed CSV: {e}"  # no row: the problem rejects it below
        after = max(reader.line_num, before + 1)
        if not row and problem is None:
            continue  # blank line
        rows += 1
        text = "".join(texts[before:after]).rstrip("\r\n")
        line = first_line + before
        if "\x00" in text:  # a row of binary junk in a text file: this row only
            problem = "the row contains NUL bytes (binary data, not text)"
        if problem is None and min_fields <= len(row) < ncols:
            row = row + [""] * (ncols - len(row))  # trailing optional fields left out
        if problem is None and len(row) != ncols:
            problem = f"wrong number of columns: expected {ncols}, got {len(row)}"
        if problem is None:
            try:
                "".join(row).encode("utf-8")
            except UnicodeEncodeError:
                problem = "invalid UTF-8 text"
        if problem is not None:
            rejected.append(RejectedRow(line, problem, _printable(text)))
            continue
        for out, i in zip(columns, wanted):
            out.append(row[i])
        lines.append(line)
        raws.append(text)
    table = (
        pa.table({n: pa.array(c, pa.string()) for n, c in zip(included, columns)})
        if included
        else pa.table({})
    )
    return ChunkRows(
        table=table,
        lines=np.array(lines, dtype=np.int64),
        raw=pa.array(raws, pa.large_string()),
        rejected=rejected,
        rows=rows,
    )


def _printable(text: str) -> str:
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def read_rows(
    data: bytes, layout: FileLayout, first_line: int, *, exact: bool = False
) -> ChunkRows:
    """The rows of one chunk (fast path unless the chunk needs, or `exact` asks for, the exact one).
    The chunk is transcoded to UTF-8 first (see ingest.extract.encoding)."""
    data = to_utf8(data, layout.encoding)
    if layout.requoted:
        data = unwrap_requoted(data, layout.delimiter)
    rows = None if exact or b"\x00" in data else _read_fast(data, layout, first_line)
    return rows if rows is not None else _read_exact(data, layout, first_line)


# --- chunk -> legs -------------------------------------------------------------------------------
# What makes two rows the same row (their content key): what the row states but the exchange's
# own id, in STATED_COLUMNS order (the order is part of every stored id).
CONTENT_COLUMNS = tuple(c for c in STATED_COLUMNS if c != "external_id")


def parse_chunk(data: bytes, layout: FileLayout, first_line: int, ctx: ParseContext) -> ChunkResult:
    """Bytes of one chunk (from plan_chunks; `first_line` = its ByteRange.first_line) -> legs."""
    return legs_of_rows(read_rows(data, layout, first_line), layout, ctx)


def legs_of_rows(rows: ChunkRows, layout: FileLayout, ctx: ParseContext) -> ChunkResult:
    """The format's mapping plus what every format shares: drop rejected and skipped rows,
    give each leg its partition (= identity) key, keep raw text where finalize may reject."""
    if ctx.tz:
        check_timezone(ctx.tz)
    spec = layout.spec
    if spec.zoned and ctx.tz:  # `tz` is for zone-less timestamps only
        ctx = replace(ctx, tz=None)
    table, raw, lines = rows.table, rows.raw, rows.lines
    constants = spec.header_values(header_fields(layout.header, layout.delimiter))
    if spec.preamble_values is not None:
        constants |= spec.preamble_values(layout.preamble)
    for name, value in constants.items():
        table = table.append_column(name, pa.array([value] * table.num_rows, pa.string()))
    if layout.date_order is not None:
        table = iso_dates(table, layout.date_order)
    if spec.expand is not None and table.num_rows:
        table, index = spec.expand(table)
        raw, lines = raw.take(pa.array(index)), lines[index]
    draft, checks = spec.to_legs(table, ctx)
    skip_same_asset(draft, checks)
    reasons = dict.fromkeys(
        (int(lines[i]), reason, skipped, i) for i, reason, skipped in checks.reasons()
    )
    seen: set[tuple[int, str]] = set()
    rejected = list(rows.rejected)
    for line, reason, skipped, i in reasons:
        if (line, reason) not in seen:  # an expanded row reports once
            seen.add((line, reason))
            rejected.append(RejectedRow(line, reason, _printable(_record_text(raw, i)), skipped))
    notes = checks.notes()
    if notes:
        draft = _add_notes(draft, notes)
    keep = ~checks.dropped_mask()
    if not keep.all():
        mask = pa.array(keep)
        draft, raw, lines = draft.filter(mask), raw.filter(mask), lines[keep]
    group = draft.column("group").combine_chunks()
    external = draft.column("external_id").combine_chunks()
    grouped = group.is_valid()
    # identity key: the group, else the exchange's id, else the row content
    key = pc.if_else(
        external.is_valid(),
        pc.binary_join_element_wise("x:", external, ""),
        pa.scalar(None, pa.string()),
    )
    if pc.any(pc.and_(pc.invert(grouped), key.is_null())).as_py():  # (skip the work otherwise)
        content = content_key([draft.column(c).combine_chunks() for c in CONTENT_COLUMNS])
        key = pc.coalesce(key, content)
    key = pc.if_else(grouped, pc.binary_join_element_wise("g:", group, ""), key)
    if pc.any(grouped).as_py():
        raw_text = pc.if_else(
            grouped,
            pc.utf8_rtrim(raw, characters="\r\n").cast(pa.string()),
            pa.scalar(None, pa.string()),
        )
    else:
        raw_text = pa.nulls(len(grouped), pa.string())
    legs = pa.Table.from_arrays(
        [key, grouped, pa.array(lines, pa.int64()), raw_text]
        + [draft.column(f.name) for f in LEGS_SCHEMA if f.name in draft.column_names],
        schema=LEGS_SCHEMA,
    )
    return ChunkResult(legs=legs, rejected=sorted(rejected, key=lambda r: r.line), rows=rows.rows)


def iso_dates(table: pa.Table, order: str) -> pa.Table:
    """Slashed dates ('1/22/2023 4:32', Excel's or the exchange's) as ISO text in every column, in
    the file's one order (FileLayout.date_order), before the format reads them."""
    for i, name in enumerate(table.column_names):
        values = table.column(i).combine_chunks()
        rewritten = slashed_dates_to_iso(values, order)
        if rewritten is not values:
            table = table.set_column(i, name, rewritten)
    return table


def skip_same_asset(draft: pa.Table, checks: RowChecks) -> None:
    """A one-row exchange of an asset for itself (after normalization: ETH -> ETH2 Convert, a
    token migration) is a rename, never a disposal: skipped, with both sides in the reason."""
    sent, received = draft.column("sent_asset"), draft.column("received_asset")
    same = as_mask(pc.and_(pc.equal(sent, received), draft.column("group").is_null()))
    same &= ~checks.dropped_mask()  # a row dropped for its own reason keeps that reason alone
    if not same.any():
        return
    checks.skip(
        same,
        "{} on both sides: a rename or migration of one asset, no disposal",
        sent.combine_chunks(),
    )


def _add_notes(draft: pa.Table, notes: dict[int, str]) -> pa.Table:
    idx = np.array(sorted(notes), dtype=np.int64)
    texts = pa.array([notes[int(i)] for i in idx], pa.string())
    mask = np.zeros(draft.num_rows, dtype=bool)
    mask[idx] = True
    description = draft.column("description").combine_chunks()
    noted = pc.binary_join_element_wise(
        pc.fill_null(description.take(pa.array(idx)), ""), texts, " ["
    )
    noted = pc.binary_join_element_wise(noted, "]", "")
    noted = pc.replace_substring_regex(noted, r"^ \[", "[")
    full = pa.nulls(draft.num_rows, pa.string())
    full = pc.replace_with_mask(full, pa.array(mask), noted)
    i = draft.schema.get_field_index("description")
    return draft.set_column(i, "description", pc.if_else(pa.array(mask), full, description))


def partition_legs(legs: pa.Table, n: int) -> list[pa.Table]:
    """n tables by a stable hash (crc32) of partition_key: rows that combine into one transaction
    or must be told apart by occurrence meet in one partition, whichever chunk they came from."""
    if n <= 1:
        return [legs]
    keys = legs.column("partition_key").to_pylist()
    part = (
        np.fromiter(
            (zlib.crc32(k.encode("utf-8", "surrogatepass")) for k in keys),
            dtype=np.uint32,
            count=len(keys),
        )
        % n
    )
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(n + 1))
    ordered = legs.take(pa.array(order))
    return [ordered.slice(int(bounds[i]), int(bounds[i + 1] - bounds[i])) for i in range(n)]


# --- partition -> canonical ---------------------------------------------------------------------
# one transaction before identity: the canonical columns a leg carries, plus its key and line
TX_COLUMNS = ("partition_key", "line", *DRAFT_CANONICAL)


def finalize_partition(
    legs: pa.Table, layout: FileLayout, ctx: ParseContext
) -> tuple[pa.Table, list[RejectedRow]]:
    """Combine the groups of one partition into transactions, assign tx_ids, return the canonical
    table (by source_line) and the rows rejected here (e.g. a trade missing a side)."""
    grouped = legs.column("grouped").combine_chunks()
    if grouped.true_count:
        singles = legs.filter(pc.invert(grouped)).select(list(TX_COLUMNS))
        combined, rejected = combine_groups(legs.filter(grouped))
        txs = pa.concat_tables([singles, combined.cast(singles.schema)])
    else:  # one-row formats: no copy
        txs, rejected = legs.select(list(TX_COLUMNS)), []
    keys = txs.column("partition_key").combine_chunks()
    lines = txs.column("line").combine_chunks()
    ids = _tx_ids(ctx.user_id, layout.format, keys, occurrence_index(keys, lines))
    n = txs.num_rows
    types = pc.coalesce(
        txs.column("type"),
        classify_sides(
            txs.column("sent_asset").combine_chunks(), txs.column("received_asset").combine_chunks()
        ),
    )
    columns = {
        "tx_id": ids,
        "user_id": pa.array([ctx.user_id] * n, pa.string()),
        "type": types,
        "source": pa.array([layout.format] * n, pa.string()),
        "source_file": pa.array([ctx.source_file] * n, pa.string()),
        "source_line": lines,
    }
    table = pa.Table.from_arrays(
        [columns[f.name] if f.name in columns else txs.column(f.name) for f in CANONICAL_SCHEMA],
        schema=CANONICAL_SCHEMA,
    )
    return sort_by_line(table), rejected


def sort_by_line(table: pa.Table) -> pa.Table:
    """By source_line (then tx_id, for rows one group split into); a no-op when already sorted."""
    lines = table.column("source_line").combine_chunks()
    if table.num_rows < 2 or pc.all(pc.less(lines[:-1], lines[1:])).as_py():
        return table  # strictly increasing: sorted, and no ties to break
    return table.sort_by([("source_line", "ascending"), ("tx_id", "ascending")])


def _tx_ids(
    user_id: str, source: str, keys: pa.Array, occurrences: np.ndarray, batch: int = 65_536
) -> pa.Array:
    """tx_ids in batches: bounded Python memory for big partitions."""
    parts = [
        pa.array(
            tx_ids(
                user_id,
                source,
                keys.slice(i, batch).to_pylist(),
                occurrences[i : i + batch].tolist(),
            ),
            pa.string(),
        )
        for i in range(0, len(keys), batch)
    ]
    return pa.concat_arrays(parts) if parts else pa.array([], pa.string())


def combine_groups(groups: pa.Table) -> tuple[pa.Table, list[RejectedRow]]:
    """Legs sharing a partition_key -> one transaction per group (TX_COLUMNS), vectorized for the
    usual group (at most one asset per side); the rest (fills of several pairs in one second,
    dust conversions of several coins, fees in two assets) go through `_combine_mixed`."""
    if groups.num_rows == 0:
        return _tx_table([]), []
    agg = groups.group_by("partition_key", use_threads=False).aggregate(
        [(c, "count_distinct") for c in ("sent_asset", "received_asset", "fee_asset")]
        + [
            (c, "min")
            for c in (
                "sent_asset",
                "received_asset",
                "fee_asset",
                "line",
                "timestamp",
                "wallet",
                "type",
                "label",
                "fiat_currency",
                "tx_hash",
                "external_id",
                "description",
            )
        ]
        + [(c, "sum") for c in ("sent_amount", "received_amount", "fee_amount", "fiat_value")]
    )
    n_sent, n_received, n_fee = (
        agg.column(f"{c}_count_distinct").to_numpy()
        for c in ("sent_asset", "received_asset", "fee_asset")
    )
    simple = (n_sent <= 1) & (n_received <= 1) & (n_fee <= 1)
    typed = agg.column("type_min").is_valid().to_numpy(zero_copy_only=False)
    complete = simple & (typed | ((n_sent == 1) & (n_received == 1)))
    # one asset on both sides (ETH2 Send + ETH Receive of a migration): a rename, no disposal
    same = complete & as_mask(
        pc.equal(agg.column("sent_asset_min"), agg.column("received_asset_min"))
    )
    skips = {
        key: (f"skipped: {asset} on both sides: a rename or migration of one asset, no disposal")
        for key, asset in zip(
            agg.column("partition_key").filter(pa.array(same)).to_pylist(),
            agg.column("sent_asset_min").filter(pa.array(same)).to_pylist(),
        )
    }
    complete &= ~same
    tx = pa.table(
        {c: agg.column(c if c == "partition_key" else f"{c}_{_AGG[c]}") for c in TX_COLUMNS}
    ).filter(pa.array(complete))
    problems: dict[str, str] = {}
    unpaired = simple & ~complete & ~same
    for key, s, r in zip(
        agg.column("partition_key").filter(pa.array(unpaired)).to_pylist(),
        n_sent[unpaired],
        n_received[unpaired],
    ):
        missing = (
            "sent and received sides"
            if not s and not r
            else "received side"
            if not r
            else "sent side"
        )
        problems[key] = f"incomplete trade: no {missing} among the rows of this transaction"
    mixed_keys = agg.column("partition_key").filter(pa.array(~simple))
    mixed_rows: list[dict] = []
    if len(mixed_keys):
        legs = groups.filter(pc.is_in(groups.column("partition_key"), value_set=mixed_keys))
        by_key: dict[str, list[dict]] = {}
        for leg in legs.sort_by("line").to_pylist():
            by_key.setdefault(leg["partition_key"], []).append(leg)
        for key, key_legs in by_key.items():
            made, problem = _combine_mixed(key, key_legs)
            mixed_rows += made
            if problem:
                problems[key] = problem
    rejected: list[RejectedRow] = []
    for found, skipped in ((problems, False), (skips, True)):
        if not found:
            continue
        bad = groups.filter(
            pc.is_in(groups.column("partition_key"), value_set=pa.array(list(found)))
        )
        rejected += [
            RejectedRow(leg["line"], found[leg["partition_key"]], leg["raw"] or "", skipped)
            for leg in bad.select(["partition_key", "line", "raw"]).to_pylist()
        ]
    out = (
        pa.concat_tables([tx.cast(_TX_SCHEMA), _tx_table(mixed_rows)])
        if mixed_rows
        else tx.cast(_TX_SCHEMA)
    )
    return out, sorted(rejected, key=lambda r: r.line)


_AGG = {c: "min" for c in TX_COLUMNS} | {
    c: "sum" for c in ("sent_amount", "received_amount", "fee_amount", "fiat_value")
}
_TX_SCHEMA = pa.schema([LEGS_SCHEMA.field(c) for c in TX_COLUMNS])


def _tx_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=_TX_SCHEMA) if rows else _TX_SCHEMA.empty_table()


def _combine_mixed(key: str, legs: list[dict]) -> tuple[list[dict], str | None]:
    """Groups with several assets on a side, paired by the pair's assets, never by line order.
    Legs are first split by `pair_hint` (Binance: the buy legs and the sell legs of one second
    are separate trades); within a part, legs of one asset and side are summed (fills). A part
    with one asset per side is one trade; a dust conversion (label "dust": several coins -> BNB)
    pairs each coin with its own BNB row when there is one per coin, else splits the BNB by the
    value each coin's row states (Crypto.com's Native Amount; that value stays the trade's), and
    evenly when a coin's value is missing (the last takes the rounding rest, BittyTax's rule);
    anything else cannot be paired without
    prices and is rejected. Fees are summed per asset and go to the trade that received that
    asset (Binance charges the fee in what was bought), else to a single trade, else become their
    own fee transaction."""
    fees: dict[str, Decimal] = {}
    for leg in legs:
        if leg["fee_asset"]:
            fees[leg["fee_asset"]] = fees.get(leg["fee_asset"], Decimal(0)) + leg["fee_amount"]
    first = legs[0]
    base = {c: first[c] for c in TX_COLUMNS if c not in ("partition_key", "line")}
    base |= dict.fromkeys(SIDE_COLUMNS)
    parts: dict[str | None, list[dict]] = {}
    for leg in legs:
        if leg["sent_asset"] or leg["received_asset"]:
            parts.setdefault(leg.get("pair_hint"), []).append(leg)
    pairs: list[_Pair] = []
    for part in parts.values():
        made, problem = _pair_part(part, dust=first["label"] == "dust")
        if problem:
            return [], problem
        pairs += made
    if not pairs:
        return [], "incomplete trade: no sent and received sides among the rows of this transaction"
    pairs.sort(key=lambda p: p[4])
    out = [
        base
        | {
            "partition_key": key + ("" if len(pairs) == 1 else f"|{i}"),
            "line": line,
            "sent_asset": sa,
            "sent_amount": sq,
            "received_asset": ra,
            "received_amount": rq,
        }
        | ({} if value is None else {"fiat_value": value[0], "fiat_currency": value[1]})
        for i, (sa, sq, ra, rq, line, value) in enumerate(pairs)
    ]
    for asset, amount in fees.items():
        takers = [tx for tx in out if tx["received_asset"] == asset and tx["fee_asset"] is None]
        if len(takers) != 1 and len(out) == 1 and out[0]["fee_asset"] is None:
            takers = out
        if len(takers) == 1:
            takers[0] |= {"fee_asset": asset, "fee_amount": amount}
        else:
            out.append(
                base
                | {
                    "partition_key": f"{key}|fee|{asset}",
                    "line": first["line"],
                    "type": TxType.FEE.value,
                    "sent_asset": asset,
                    "sent_amount": amount,
                }
            )
    return out, None


# (sent asset, sent amount, received asset, received amount, line, the sent leg's own stated
# value and currency when the pair takes it)
_Pair = tuple[str, Decimal, str, Decimal, int, tuple[Decimal, str | None] | None]


def _stated_value(leg: dict) -> tuple[Decimal, str | None] | None:
    value = leg.get("fiat_value")
    return None if value is None or value <= 0 else (value, leg.get("fiat_currency"))


def _pair_part(legs: list[dict], dust: bool) -> tuple[list[_Pair], str | None]:
    sent: dict[str, list[dict]] = {}
    received: dict[str, list[dict]] = {}
    for leg in legs:
        if leg["sent_asset"]:
            sent.setdefault(leg["sent_asset"], []).append(leg)
        if leg["received_asset"]:
            received.setdefault(leg["received_asset"], []).append(leg)
    if not sent or not received:
        missing = "received side" if sent else "sent side"
        return [], f"incomplete trade: no {missing} among the rows of this transaction"

    def total(rows: list[dict], side: str) -> Decimal:
        return sum((r[f"{side}_amount"] for r in rows), Decimal(0))

    line = min(leg["line"] for leg in legs)
    if len(sent) == 1 and len(received) == 1:
        (sa, s_rows), (ra, r_rows) = next(iter(sent.items())), next(iter(received.items()))
        return [(sa, total(s_rows, "sent"), ra, total(r_rows, "received"), line, None)], None
    if dust and len(received) == 1:
        (ra, r_rows), s_rows = next(iter(received.items())), [r for rs in sent.values() for r in rs]
        s_rows.sort(key=lambda r: r["line"])
        if len(r_rows) == len(s_rows):  # one BNB row per coin, written next to it
            r_rows = sorted(r_rows, key=lambda r: r["line"])
            return [
                (
                    s["sent_asset"],
                    s["sent_amount"],
                    ra,
                    r["received_amount"],
                    min(s["line"], r["line"]),
                    _stated_value(s),
                )
                for s, r in zip(s_rows, r_rows)
            ], None
        values = [_stated_value(s) for s in s_rows]
        stated = [v[0] for v in values if v is not None]
        by_value = len(stated) == len(s_rows)
        with tax_context():  # exact proportional shares, the remainder to the last
            shares = (
                split(total(r_rows, "received"), stated)
                if by_value
                else _split(total(r_rows, "received"), len(s_rows))
            )
        return [
            (s["sent_asset"], s["sent_amount"], ra, share, s["line"], value)
            for s, share, value in zip(s_rows, shares, values)
        ], None
    return [], (
        f"ambiguous trade: {', '.join(sorted(sent))} sent and "
        f"{', '.join(sorted(received))} received in one second cannot be paired without "
        "their pairs (export the spot trade history for these trades)"
    )


def _split(total: Decimal, parts: int) -> list[Decimal]:
    step = Decimal(1).scaleb(-AMOUNT.scale)
    share = (total / parts).quantize(step, rounding="ROUND_DOWN")
    return [share] * (parts - 1) + [total - share * (parts - 1)]


# --- sequential convenience ------------------------------------------------------------------
def parse_local_file(
    path: str | os.PathLike[str],
    *,
    user_id: str,
    fmt: str | None = None,
    wallet: str | None = None,
    tz: str | None = None,
    chunk_bytes: int | None = None,
    mapping: ColumnMapping | None = None,
) -> ParseResult:
    """Parse a local file with the very functions the distributed job uses, one after another
    (`mapping`: the user's columns, for fmt "mapped")."""
    ctx = ParseContext(user_id=user_id, source_file=str(path), wallet=wallet, tz=tz)
    with open(path, "rb") as f:
        return parse_stream(
            f, os.path.getsize(path), ctx, fmt=fmt, chunk_bytes=chunk_bytes, mapping=mapping
        )


def parse_bytes(
    data: bytes,
    *,
    user_id: str,
    source_file: str = "<bytes>",
    fmt: str | None = None,
    wallet: str | None = None,
    tz: str | None = None,
    chunk_bytes: int | None = None,
    mapping: ColumnMapping | None = None,
) -> ParseResult:
    """`parse_local_file` for content already in memory."""
    ctx = ParseContext(user_id=user_id, source_file=source_file, wallet=wallet, tz=tz)
    return parse_stream(
        io.BytesIO(data), len(data), ctx, fmt=fmt, chunk_bytes=chunk_bytes, mapping=mapping
    )


def parse_stream(
    f: BinaryIO,
    size: int,
    ctx: ParseContext,
    *,
    fmt: str | None = None,
    chunk_bytes: int | None = None,
    mapping: ColumnMapping | None = None,
) -> ParseResult:
    if ctx.tz:
        check_timezone(ctx.tz)
    layout = inspect_file(f, size, fmt, mapping)
    target = chunk_bytes or adaptive_chunk_bytes(layout, read_sample(f, layout), parallelism=1)
    chunks = [
        parse_chunk(read_range(f, r), layout, r.first_line, ctx)
        for r in plan_chunks(f, layout, target)
    ]
    legs = pa.concat_tables([c.legs for c in chunks]) if chunks else empty_legs()
    rejected = [r for c in chunks for r in c.rejected]
    tables = []
    for part in partition_legs(legs, 1):
        table, late = finalize_partition(part, layout, ctx)
        tables.append(table)
        rejected += late
    table = sort_by_line(pa.concat_tables(tables))
    return ParseResult(
        table=table,
        rejected=sorted(rejected, key=lambda r: r.line),
        format=layout.format,
        rows=sum(c.rows for c in chunks),
        version=layout.spec_name,
        notes=layout.notes,
    )
