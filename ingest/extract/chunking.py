"""File layout and byte-range planning: find the header (skipping any preamble, unwrapping a
header Excel saved as one quoted cell), detect the format, decide once per file the order of its
slashed dates, and cut the data into ranges that end on row ends, so each range parses on its own.

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
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import BinaryIO

from ingest.extract.binary import not_text_reason
from ingest.extract.encoding import UTF8, decode, detect_encoding, encoded_length
from ingest.extract.formats import closest_header, detect_format, formats_named, get_format
from ingest.extract.formats.base import DAY_FIRST, MONTH_FIRST, FormatError, FormatSpec
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
    # The order of the file's slashed dates (MONTH_FIRST "mdy" / DAY_FIRST "dmy"), decided once
    # per file (date_order_of) and handed to every chunk; None when the file writes none.
    date_order: str | None = None
    date_order_shown_by: str | None = None  # the value that decided it; None: the convention
    requoted: bool = False  # every line saved by Excel as one quoted cell (unwrap_requoted)

    @property
    def spec(self) -> FormatSpec:
        """The version that reads the file."""
        return self.mapping.spec() if self.mapping is not None else get_format(self.spec_name)

    @property
    def spec_name(self) -> str:
        return self.version or self.format

    @property
    def notes(self) -> list[str]:
        """How the file was read where it could be read two ways (shown on the job)."""
        if self.date_order is None:
            return []
        first = "month first (M/D/Y)" if self.date_order == MONTH_FIRST else "day first (D/M/Y)"
        if self.date_order_shown_by is not None:
            return [
                f"slashed dates read {first}, as '{self.date_order_shown_by}' in the file shows"
            ]
        return [
            f"slashed dates read {first}, the convention of {self.spec_name}: no day above 12 "
            "in the file tells the order; check a date you know"
        ]


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
    """Read the first HEAD_BYTES, skip preamble lines, detect (or check) the format; the order
    of slashed dates the head leaves open is looked for in the rest of the file."""
    f.seek(0)
    layout = sniff_layout(f.read(min(size, HEAD_BYTES)), size, fmt, mapping)
    if layout.date_order is not None and layout.date_order_shown_by is None and size > HEAD_BYTES:
        layout = date_order_of(f, layout)
    return layout


# Evidence of the order of slashed dates in raw text: a first number above 12 is a day (D/M), a
# second one above 12 is a day too (M/D). Columns are not needed: a file's dates have one writer.
_YEAR_END = r"/(?:\d{4}|\d{2})(?![\d/])"
_SLASHED_TEXT = re.compile(r"(?<![\d/.])\d{1,2}/\d{1,2}" + _YEAR_END)
_DAY, _MONTH = r"(?:1[3-9]|2\d|3[01])", r"(?:0?[1-9]|1[0-2])"
_EVIDENCE = {
    DAY_FIRST: re.compile(rf"(?<![\d/.]){_DAY}/{_MONTH}{_YEAR_END}"),
    MONTH_FIRST: re.compile(rf"(?<![\d/.]){_MONTH}/{_DAY}{_YEAR_END}"),
}


def date_order_evidence(text: str) -> tuple[str, str] | None:
    """(order, the value deciding it) of the first slashed date in `text` that only one order
    reads ('22/1/2023': day first); None when every one reads both ways."""
    found = [
        (m.start(), order, m.group()) for order, rx in _EVIDENCE.items() if (m := rx.search(text))
    ]
    return (min(found)[1], min(found)[2]) if found else None


def _head_date_order(spec: FormatSpec, data_text: str) -> tuple[str | None, str | None]:
    """(order, deciding value) from the head's data rows; the convention when they do not tell."""
    if spec.date_order is None or not _SLASHED_TEXT.search(data_text):
        return None, None
    found = date_order_evidence(data_text)
    return found if found is not None else (spec.date_order, None)


def date_order_of(f: BinaryIO, layout: FileLayout) -> FileLayout:
    """The layout with the order of slashed dates the whole file shows (one streaming pass that
    stops at the first deciding value); unchanged when none decides (the convention stays)."""
    decoder = codecs.getincrementaldecoder(
        layout.encoding if layout.encoding.startswith("utf-16") else "latin-1"
    )(errors="replace")  # digits and '/' are single bytes in UTF-8 and Windows-1252
    f.seek(layout.data_start)
    tail = ""
    while block := f.read(BLOCK_BYTES):
        text = tail + decoder.decode(block)
        found = date_order_evidence(text)
        if found is not None:
            return replace(layout, date_order=found[0], date_order_shown_by=found[1])
        tail = text[-32:]  # a date cut by the block's end
    return layout


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
    pos, line_no = 0, 1
    seen: list[tuple[int, tuple[str, ...]]] = []  # (line, fields) of lines that split: the message
    while pos < len(text):
        nl = text.find("\n", pos)
        if nl < 0 and not whole:
            break  # a line longer than the head: no header there
        end = len(text) if nl < 0 else nl
        line = text[pos:end].rstrip("\r")
        for delimiter in DELIMITERS:
            if delimiter not in line and delimiter != ",":
                continue
            header = line
            fields = header_fields(header.encode("utf-8", errors="surrogatepass"), delimiter)
            requoted = _requoted(fields, delimiter)
            if requoted is not None:  # Excel saved the header as one quoted cell
                header = requoted
                fields = header_fields(header.encode("utf-8", errors="surrogatepass"), delimiter)
            if delimiter in header and len(seen) < MESSAGE_LINES:
                seen.append((line_no, fields))
            spec = detect_format(fields, allowed)
            if spec is not None:
                data_start = bom + encoded_length(text[: end + 1 if nl >= 0 else end], encoding)
                date_order, shown_by = _head_date_order(spec, text[end + 1 :])
                return FileLayout(
                    format=spec.source_name,
                    version=spec.name,
                    header=header.encode("utf-8", errors="surrogatepass"),
                    data_start=data_start,
                    first_data_line=line_no + 1,
                    size=size,
                    encoding=encoding,
                    delimiter=delimiter,
                    mapping=mapping,
                    preamble=text[:pos],
                    date_order=date_order,
                    date_order_shown_by=shown_by,
                    requoted=requoted is not None,
                )
        pos, line_no = end + 1, line_no + 1
    reason = not_text_reason(head)  # judged only now: a NUL in some data row must not sink the file
    if reason is not None:
        raise FormatError(reason)
    raise FormatError(_no_header_message(fmt, allowed, seen, line_no - 1))


MESSAGE_LINES = 20  # lines the unknown-header message compares with the known headers


def _requoted(fields: tuple[str, ...], delimiter: str) -> str | None:
    """The text of a line Excel saved as one quoted cell ("User_ID,UTC_Time,..."), else None."""
    if fields and delimiter in fields[0] and not any(f.strip() for f in fields[1:]):
        return fields[0]
    return None


def unwrap_requoted(data: bytes, delimiter: str) -> bytes:
    """Rows saved as one quoted cell each (FileLayout.requoted) -> the rows themselves; line ends
    are kept, so lines keep their numbers. A row that is not one quoted cell stays as it is."""
    out = []
    for line in data.decode("utf-8", errors="surrogateescape").splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if body.startswith('"'):
            try:
                fields = tuple(next(csv.reader([body], delimiter=delimiter), []))
            except csv.Error:
                fields = ()
            inner = _requoted(fields, delimiter)
            body = inner if inner is not None else body
        out.append(body + line[len(line.rstrip("\r\n")) :])
    return "".join(out).encode("utf-8", errors="surrogateescape")


def _no_header_message(
    fmt: str | None,
    allowed: tuple[FormatSpec, ...] | None,
    seen: list[tuple[int, tuple[str, ...]]],
    lines: int,
) -> str:
    """One short line: what was seen, the closest known header, where every header is listed.
    The closest is judged over the first lines, not only the first (a preamble comes first)."""
    what = f"no {fmt} header" if fmt and allowed else "unrecognized file: no known header"
    msg = f"{what} in the first {lines} line{'s' if lines != 1 else ''}"
    close = closest_header(seen, allowed)
    if close is None:
        return f"{msg}; known headers: GET /v1/formats"
    line_no, fields, spec, missing = close
    shown = _shorten(", ".join(f.strip() for f in fields), 60)
    lacks = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    return (
        f'{msg}; closest: line {line_no} ("{shown}") lacks {lacks} of {spec.name}; '
        "known headers: GET /v1/formats"
    )


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "\u2026"


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
