"""The pure core of an upload: what body a request carries, the file bytes out of a streamed
multipart body, and a sink that writes them while hashing, counting and checking them.

Nothing here holds more than one chunk (plus the first 64 KiB for the CSV check) in memory, and
nothing here does network I/O: the HTTP shell feeds chunks in as they arrive.
"""

from __future__ import annotations

import codecs
import hashlib
from typing import BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from ingest.extract.binary import not_text_reason
from ingest.extract.chunking import FileLayout, sniff_layout
from ingest.extract.formats.base import FormatError
from ingest.extract.formats.mapped import ColumnMapping

# Content types a raw body may have. Browsers label CSV files as text/csv, application/csv,
# text/plain or (Windows with Excel) application/vnd.ms-excel; generic clients send
# application/octet-stream. The bytes are checked either way.
RAW_CONTENT_TYPES = frozenset(
    {
        "text/csv",
        "application/csv",
        "text/plain",
        "application/octet-stream",
        "application/vnd.ms-excel",
    }
)
MULTIPART = "multipart/form-data"
FILE_FIELD = "file"
SNIFF_BYTES = 64 * 1024
DELIMITERS = (b",", b";", b"\t", b"|")
# A multipart body is the file plus boundaries, part headers and small fields.
MULTIPART_OVERHEAD_BYTES = 1024 * 1024


class UploadRejected(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def too_large(max_bytes: int) -> UploadRejected:
    return UploadRejected(
        413, "payload_too_large", f"the file exceeds the upload limit of {max_bytes} bytes"
    )


def multipart_boundary(content_type: str | None) -> bytes | None:
    """None for a raw CSV body, the boundary for multipart/form-data; 415 for anything else."""
    media_type, params = parse_options_header(content_type or "")
    kind = media_type.decode("latin-1").lower()
    if kind == MULTIPART:
        boundary = params.get(b"boundary")
        if not boundary:
            raise UploadRejected(400, "bad_request", "multipart/form-data without a boundary")
        return boundary
    if kind in RAW_CONTENT_TYPES:
        return None
    accepted = ", ".join(sorted(RAW_CONTENT_TYPES | {MULTIPART}))
    raise UploadRejected(
        415,
        "unsupported_media_type",
        f"Content-Type {kind or '(none)'!r} is not "
        f"accepted; send the CSV as one of: {accepted} (field '{FILE_FIELD}')",
    )


def body_limit(max_bytes: int, multipart: bool) -> int:
    return max_bytes + (MULTIPART_OVERHEAD_BYTES if multipart else 0)


class CsvSink:
    """Writes a file's bytes to `out` while computing its sha256 and size, enforcing the size cap
    and rejecting what is clearly not CSV, judged on the first 64 KiB: binary (dense NUL bytes:
    ingest/extract/binary.py; UTF-16 with a BOM is text), no field delimiter, no bytes at all, and
    (415) no known header: the header is sniffed while the body streams, before any job exists.
    A few NUL bytes in a text file are bad rows, which the parser rejects with their line."""

    def __init__(
        self,
        out: BinaryIO,
        max_bytes: int,
        fmt: str | None = None,
        mapping: ColumnMapping | None = None,
    ) -> None:
        self.out = out
        self.max_bytes = max_bytes
        self.fmt = fmt
        self.mapping = mapping  # the user's columns of a `mapped` upload
        self.layout: FileLayout | None = None
        self._is_utf16: bool | None = None  # decided by the first bytes (a UTF-16 BOM)
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._head = b""
        self._sniffed = False

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.size + len(data) > self.max_bytes:
            raise too_large(self.max_bytes)
        if self._is_utf16 is None:
            self._is_utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        if not self._sniffed:
            self._head += data[: SNIFF_BYTES - len(self._head)]
            if len(self._head) >= SNIFF_BYTES:
                self._check_head()
        self.size += len(data)
        self._sha256.update(data)
        self.out.write(data)

    def finish(self) -> None:
        """Call after the last byte: the checks that need the whole (small) file."""
        if self.size == 0:
            raise UploadRejected(400, "empty_file", "the file is empty")
        if not self._sniffed:
            self._check_head(whole=True)

    def _check_head(self, whole: bool = False) -> None:
        self._sniffed = True
        reason = not_text_reason(self._head)
        if reason is not None:
            raise UploadRejected(400, "not_csv", reason)
        if self._is_utf16:
            text = self._head.decode("utf-16", errors="replace")
            has_delimiter = any(d.decode() in text for d in DELIMITERS)
        else:
            has_delimiter = any(d in self._head for d in DELIMITERS)
        if not has_delimiter:
            raise UploadRejected(
                400,
                "not_csv",
                "no field delimiter (, ; tab |) in the first "
                f"{min(len(self._head), SNIFF_BYTES)} bytes: not a CSV file",
            )
        try:  # whole: the head is the file; else a size past the head (a line may go on)
            self.layout = sniff_layout(
                self._head, len(self._head) + (0 if whole else 1), self.fmt, self.mapping
            )
        except FormatError as exc:
            raise UploadRejected(415, "unrecognized_format", str(exc)) from None
        self._head = b""


class MultipartFileReader:
    """The bytes of the form field `file` out of a streamed multipart/form-data body, chunk by
    chunk (python-multipart's streaming parser; other fields are skipped). A second file part
    (another `file` field, or any part with a filename) is refused: one file per upload."""

    def __init__(self, boundary: bytes, field: str = FILE_FIELD) -> None:
        self.field = field
        self.file_name: str | None = None
        self.found = False
        self._in_file = False
        self._ended = False
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._out: list[bytes] = []
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )

    def feed(self, chunk: bytes) -> list[bytes]:
        """The file's bytes in this chunk of the body (possibly none)."""
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise UploadRejected(400, "bad_multipart", f"malformed multipart body: {exc}") from None
        out, self._out = self._out, []
        return out

    def finish(self) -> None:
        if not self.found:
            raise UploadRejected(400, "bad_request", f"no form field '{self.field}' holding a file")
        if not self._ended:
            raise UploadRejected(400, "bad_multipart", "the multipart body ended early")

    # python-multipart callbacks ------------------------------------------------------------------
    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        is_file = name == self.field or b"filename" in params
        if is_file and self.found:  # read only the first would drop the others unsaid
            raise UploadRejected(
                400,
                "one_file_per_upload",
                f"one file per upload: the body holds a second file part (field {name!r}); "
                "upload each file with a request of its own",
            )
        self._in_file = name == self.field
        if self._in_file:
            self.found = True
            self.file_name = params.get(b"filename", b"").decode("utf-8", "replace") or None

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file and end > start:
            self._out.append(bytes(data[start:end]))

    def _on_part_end(self) -> None:
        self._in_file = False

    def _on_end(self) -> None:
        self._ended = True
