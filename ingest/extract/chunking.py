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

import csv
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO

from ingest.extract.binary import not_text_reason
from ingest.extract.encoding import UTF8, decode, detect_encoding, encoded_length
from ingest.extract.formats import (
    FORMATS,
    closest_format,
    detect_format,
    expected_headers,
    formats_named,
    get_format,
    nearest_format,
)
from ingest.extract.formats.base import FormatError, FormatSpec
from ingest.extract.formats.mapped import NAME as MAPPED
from ingest.extract.formats.mapped import ColumnMapping

HEAD_BYTES = 64 * 1024  # what inspect_file reads: preamble + header live there
BLOCK_BYTES = 4 * 1024 * 1024  # planner read size
ROWS_PER_CHUNK = 75_000  # adaptive target, between the brief's 50k and 100k
MIN_CHUNK_BYTES = 256 * 1024
MAX_CHUNK_BYTES = 64 * 1024 * 1024
DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class ByteRange:
    index: int
    start: int  # [start, end) bytes of the file
    end: int
    first_line: int  # 1-based physical line of byte `start`


@dataclass(frozen=True)
class FileLayout:
    format: str  # the source (koinly, coinbase, ...): the canonical `source` column
    header: bytes  # the header line as UTF-8, without BOM and line end
    data_start: int  # byte offset of the first data line (in the stored file)
    first_data_line: int  # its 1-based physical line
    size: int
    version: str = ""  # the registered header version read ("coinbase-2023"); "" = format
    encoding: str = UTF8  # of the stored file (see ingest.extract.encoding)
    delimiter: str = ","
    mapping: ColumnMapping | None = None  # the user's columns of a `mapped` file
    preamble: str = ""  # the lines before the header (OKX states the Time Zone there)

    @property
    def spec(self) -> FormatSpec:
        """The version that reads the file."""
        return self.mapping.spec() if self.mapping is not None else get_format(self.spec_name)

    @property
    def spec_name(self) -> str:
        return self.version or self.format


@lru_cache(maxsize=64)
def header_fields(header: bytes, delimiter: str = ",") -> tuple[str, ...]:
    """The header's column names as written (CSV-quoted names unquoted)."""
    text = header.decode("utf-8", errors="replace")
    try:
        row = next(csv.reader([text], delimiter=delimiter), [])
    except csv.Error:
        return ()
    return tuple(row)


def inspect_file(
    f: BinaryIO, size: int, fmt: str | None = None, mapping: ColumnMapping | None = None
) -> FileLayout:
    """Read the first HEAD_BYTES, skip preamble lines, detect (or check) the format."""
    f.seek(0)
    return sniff_layout(f.read(min(size, HEAD_BYTES)), size, fmt, mapping)


def sniff_layout(
    head: bytes, size: int, fmt: str | None = None, mapping: ColumnMapping | None = None
) -> FileLayout:
    """The layout of a file from its first bytes (`size`: the whole file's, which may still be
    unknown while an upload streams: pass len(head) + 1 then). Decides the encoding, skips
    preamble lines, tries each delimiter (, ; tab) on each line until one is a known header.
    `fmt` "mapped" reads the header through the user's `mapping`.
    Raises FormatError naming the known formats and the nearest match."""
    if fmt == MAPPED:
        if mapping is None:
            raise FormatError(
                "format 'mapped' needs your column mapping: save it first with "
                "PUT /v1/formats/mapping"
            )
        allowed: tuple[FormatSpec, ...] | None = (mapping.spec(),)
    else:
        allowed, mapping = (formats_named(fmt) if fmt else None), None
    if not head.strip():
        raise FormatError("empty file: no header and no rows")
    whole = len(head) >= size
    encoding, bom = detect_encoding(head, whole)
    text = decode(head[bom:], encoding, final=whole)
    pos, line_no, first_fields = 0, 1, None
    while pos < len(text):
        nl = text.find("\n", pos)
        if nl < 0 and not whole:
            break  # a line longer than the head: no header there
        end = len(text) if nl < 0 else nl
        line = text[pos:end].rstrip("\r")
        for delimiter in DELIMITERS:
            if delimiter not in line and delimiter != ",":
                continue
            fields = header_fields(line.encode("utf-8", errors="surrogatepass"), delimiter)
            if first_fields is None and any(x.strip() for x in fields) and delimiter in line:
                first_fields = fields
            spec = detect_format(fields, allowed)
            if spec is not None:
                data_start = bom + encoded_length(text[: end + 1 if nl >= 0 else end], encoding)
                return FileLayout(
                    format=spec.source_name,
                    version=spec.name,
                    header=line.encode("utf-8", errors="surrogatepass"),
                    data_start=data_start,
                    first_data_line=line_no + 1,
                    size=size,
                    encoding=encoding,
                    delimiter=delimiter,
                    mapping=mapping,
                    preamble=text[:pos],
                )
        pos, line_no = end + 1, line_no + 1
    reason = not_text_reason(head)  # judged only now: a NUL in some data row must not sink the file
    if reason is not None:
        raise FormatError(reason)
    raise FormatError(_no_header_message(fmt, allowed, first_fields or (), line_no))


def _no_header_message(
    fmt: str | None,
    allowed: tuple[FormatSpec, ...] | None,
    first_fields: tuple[str, ...],
    lines: int,
) -> str:
    if fmt and allowed:
        msg = (
            f"no {fmt} header found in the first {lines} lines; expected the columns of "
            f"{expected_headers(allowed)}"
        )
        close = closest_format(first_fields, allowed) if first_fields else None
        if close and close[1]:
            msg += f" (the first line lacks: {', '.join(close[1])})"
        return msg
    # Short facts first (a job's error keeps only its first 500 characters), headers last.
    sources = sorted({spec.source_name for spec in FORMATS.values()})
    msg = (
        f"unrecognized file: no known header in the first {lines} lines. Known sources: "
        f"{', '.join(sources)} (GET /v1/formats lists every header version)"
    )
    close = closest_format(first_fields) if first_fields else None
    if close:
        msg += f". The first line looks like {close[0].name} but lacks: {', '.join(close[1])}"
    elif first_fields:
        near = nearest_format(first_fields)
        msg += (
            f". The nearest known header is {near.name} ({near.description or near.source_name}"
            f"; the first line has {near.present(first_fields)} of its {len(near.columns)} "
            "columns)"
        )
    return f"{msg}. Expected the header of one of these formats - {expected_headers()}"


def plan_chunks(f: BinaryIO, layout: FileLayout, target_bytes: int) -> list[ByteRange]:
    """Ranges of about target_bytes covering [data_start, size), each ending after a newline
    outside quotes (or at the end of the file). One streaming pass, BLOCK_BYTES in memory."""
    if layout.encoding not in (UTF8, "cp1252"):
        # UTF-16: a newline byte may be half of another character; one range, read whole.
        return (
            [ByteRange(0, layout.data_start, layout.size, layout.first_data_line)]
            if layout.data_start < layout.size
            else []
        )
    target = max(1, int(target_bytes))
    ranges: list[ByteRange] = []
    chunk_start, chunk_line = layout.data_start, layout.first_data_line
    want = chunk_start + target  # the next boundary is the first row end at or after it
    parity, line = 0, layout.first_data_line  # quote parity and line number at `pos`
    f.seek(layout.data_start)
    block_pos = layout.data_start
    while block_pos < layout.size:
        block = f.read(min(BLOCK_BYTES, layout.size - block_pos))
        if not block:
            break
        i = 0  # everything before i is accounted for
        while want - block_pos < len(block):
            nl = block.find(b"\n", max(i, want - block_pos))
            if nl < 0:
                break
            parity ^= block.count(b'"', i, nl) & 1
            line += block.count(b"\n", i, nl) + 1
            i = nl + 1
            if parity == 0:  # a row end: cut after it
                end = block_pos + i
                ranges.append(ByteRange(len(ranges), chunk_start, end, chunk_line))
                chunk_start, chunk_line, want = end, line, end + target
            else:  # newline inside a quoted field: try the next one
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
