"""Is this a text file with a few bad rows, or not a text file at all? Judged on the file's head.

A UTF-32 file (BOM) or one whose head is dense with NUL bytes (binary, or UTF-16 without a BOM:
every other byte is NUL) is refused as a whole; UTF-16 with a BOM is text (transcoded by
ingest/extract/encoding.py). A few NUL bytes in a UTF-8 file are a few bad
rows: the parser rejects those rows with their line and keeps the rest.
"""

from __future__ import annotations

import codecs

HEAD_BYTES = 64 * 1024
MAX_NUL_SHARE = 0.01  # a text head past 1% NUL bytes is not a UTF-8 text file
UTF32_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def not_text_reason(head: bytes) -> str | None:
    """Why a file starting with `head` is not a text file we read (None: it may be one)."""
    if head.startswith(UTF32_BOMS):  # before UTF-16: FF FE 00 00 starts with FF FE
        return "the file is UTF-32 encoded: export or save it as UTF-8 (or UTF-16) CSV"
    if head.startswith(UTF16_BOMS):
        return None
    head = head[:HEAD_BYTES]
    if head and head.count(b"\x00") > MAX_NUL_SHARE * len(head):
        return "the file contains binary data (NUL bytes): not a CSV text file"
    return None
