"""Is this a text file with a few bad rows, or not a text file at all? Judged on the file's head.

A UTF-16/UTF-32 file (BOM) or one whose head is dense with NUL bytes (binary, or UTF-16 without a
BOM: every other byte is NUL) is refused as a whole. A few NUL bytes in a UTF-8 file are a few bad
rows: the parser rejects those rows with their line and keeps the rest.
"""
from __future__ import annotations

import codecs

HEAD_BYTES = 64 * 1024
MAX_NUL_SHARE = 0.01  # a text head past 1% NUL bytes is not a UTF-8 text file
WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def not_text_reason(head: bytes) -> str | None:
    """Why a file starting with `head` is not a UTF-8 text file (None: it may be one)."""
    if head.startswith(WIDE_BOMS):
        return "the file is UTF-16 or UTF-32 encoded: export or save it as UTF-8 CSV"
    head = head[:HEAD_BYTES]
    if head and head.count(b"\x00") > MAX_NUL_SHARE * len(head):
        return "the file contains binary data (NUL bytes): not a CSV text file"
    return None
