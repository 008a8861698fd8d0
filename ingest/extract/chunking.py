"""File layout and byte-range planning: find the header (skipping any preamble), detect the
format, and cut the data into ranges that end on row ends, so each range parses on its own.

Row ends are newlines outside quotes: a newline is inside a quoted field when an odd number of
quote characters precede it (RFC 4180: an escaped quote is doubled and keeps the parity). The
planner counts quotes and newlines with bytes.count / bytes.find on blocks of a few MiB: one pass
at C speed, memory bounded by the block size. A stray quote in the middle of an unquoted field
(not valid CSV) flips the parity; the planner then only makes fewer, larger ranges until the
next stray quote, it never crashes.
"""
from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO

from ingest.extract.binary import not_text_reason
from ingest.extract.formats import closest_format, detect_format, expected_headers, get_format
from ingest.extract.formats.base import FormatError

HEAD_BYTES = 64 * 1024          # what inspect_file reads: preamble + header live there
BLOCK_BYTES = 4 * 1024 * 1024   # planner read size
ROWS_PER_CHUNK = 75_000         # adaptive target, between the brief's 50k and 100k
MIN_CHUNK_BYTES = 256 * 1024
MAX_CHUNK_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ByteRange:
    index: int
    start: int        # [start, end) bytes of the file
    end: int
    first_line: int   # 1-based physical line of byte `start`


@dataclass(frozen=True)
class FileLayout:
    format: str
    header: bytes          # the header line, without BOM and line end
    data_start: int        # byte offset of the first data line
    first_data_line: int   # its 1-based physical line
    size: int


@lru_cache(maxsize=64)
def header_fields(header: bytes) -> tuple[str, ...]:
    """The header's column names as written (CSV-quoted names unquoted)."""
    text = header.decode("utf-8", errors="replace")
    try:
        row = next(csv.reader([text]), [])
    except csv.Error:
        return ()
    return tuple(row)


def inspect_file(f: BinaryIO, size: int, fmt: str | None = None) -> FileLayout:
    """Read the first HEAD_BYTES, skip preamble lines, detect (or check) the format."""
    wanted = get_format(fmt) if fmt else None
    f.seek(0)
    head = f.read(min(size, HEAD_BYTES))
    if not head.strip():
        raise FormatError("empty file: no header and no rows")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FormatError("the file is UTF-16 encoded: export or save it as UTF-8 CSV")
    pos = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    line_no, first_fields = 1, None
    while pos < len(head):
        nl = head.find(b"\n", pos)
        if nl < 0 and len(head) < size:
            break   # a line longer than the head: no header there
        end = len(head) if nl < 0 else nl
        line = head[pos:end].rstrip(b"\r")
        fields = header_fields(line)
        if first_fields is None and any(x.strip() for x in fields):
            first_fields = fields
        spec = wanted if wanted and wanted.matches(fields) else None if wanted else detect_format(fields)
        if spec is not None:
            return FileLayout(format=spec.name, header=line, data_start=end + 1 if nl >= 0 else end,
                              first_data_line=line_no + 1, size=size)
        pos, line_no = end + 1, line_no + 1
    if not_text_reason(head):  # judged only now: a NUL in some data row must not sink the file
        raise FormatError(not_text_reason(head))
    raise FormatError(_no_header_message(wanted.name if wanted else None, first_fields or (), line_no))


def _no_header_message(fmt: str | None, first_fields: tuple[str, ...], lines: int) -> str:
    if fmt:
        spec = get_format(fmt)
        msg = (f"no {fmt} header found in the first {lines} lines; expected the columns "
               f"{','.join(spec.columns)}")
        missing = spec.missing(first_fields)
        if first_fields and len(missing) < len(spec.columns):
            msg += f" (the first line lacks: {', '.join(missing)})"
        return msg
    msg = (f"unrecognized file: no known header in the first {lines} lines. Expected the header of "
           f"one of these formats - {expected_headers()}")
    close = closest_format(first_fields) if first_fields else None
    if close:
        msg += f". The first line looks like {close[0].name} but lacks: {', '.join(close[1])}"
    return msg


def plan_chunks(f: BinaryIO, layout: FileLayout, target_bytes: int) -> list[ByteRange]:
    """Ranges of about target_bytes covering [data_start, size), each ending after a newline
    outside quotes (or at the end of the file). One streaming pass, BLOCK_BYTES in memory."""
    target = max(1, int(target_bytes))
    ranges: list[ByteRange] = []
    chunk_start, chunk_line = layout.data_start, layout.first_data_line
    want = chunk_start + target          # the next boundary is the first row end at or after it
    parity, line = 0, layout.first_data_line   # quote parity and line number at `pos`
    f.seek(layout.data_start)
    block_pos = layout.data_start
    while block_pos < layout.size:
        block = f.read(min(BLOCK_BYTES, layout.size - block_pos))
        if not block:
            break
        i = 0                              # everything before i is accounted for
        while want - block_pos < len(block):
            nl = block.find(b"\n", max(i, want - block_pos))
            if nl < 0:
                break
            parity ^= block.count(b'"', i, nl) & 1
            line += block.count(b"\n", i, nl) + 1
            i = nl + 1
            if parity == 0:                # a row end: cut after it
                end = block_pos + i
                ranges.append(ByteRange(len(ranges), chunk_start, end, chunk_line))
                chunk_start, chunk_line, want = end, line, end + target
            else:                          # newline inside a quoted field: try the next one
                want = block_pos + i
        parity ^= block.count(b'"', i) & 1
        line += block.count(b"\n", i)
        block_pos += len(block)
    if chunk_start < layout.size:
        ranges.append(ByteRange(len(ranges), chunk_start, layout.size, chunk_line))
    return ranges


def adaptive_chunk_bytes(layout: FileLayout, sample: bytes, parallelism: int) -> int:
    """Chunk size from the row width of `sample` (bytes from the start of the data): about
    ROWS_PER_CHUNK rows, but at least `parallelism` chunks once the file is big enough to be worth
    splitting, within [MIN_CHUNK_BYTES, MAX_CHUNK_BYTES]."""
    rows_in_sample = sample.count(b"\n")
    width = len(sample) / rows_in_sample if rows_in_sample else max(len(sample), 100)
    target = width * ROWS_PER_CHUNK
    data_bytes = max(0, layout.size - layout.data_start)
    if parallelism > 1 and data_bytes >= parallelism * MIN_CHUNK_BYTES:
        target = min(target, -(-data_bytes // parallelism))
    return int(min(max(target, MIN_CHUNK_BYTES), MAX_CHUNK_BYTES))


def read_sample(f: BinaryIO, layout: FileLayout, size: int = HEAD_BYTES) -> bytes:
    """The first bytes of the data, for adaptive_chunk_bytes."""
    f.seek(layout.data_start)
    return f.read(size)


def read_range(f: BinaryIO, r: ByteRange) -> bytes:
    f.seek(r.start)
    return f.read(r.end - r.start)
