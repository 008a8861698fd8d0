"""Text encodings of exports: decided once per file from its first bytes, and every chunk
transcoded to UTF-8 before the Arrow reader sees it.

- a UTF-8 BOM, or bytes that are valid UTF-8: "utf-8";
- a UTF-16 BOM (Excel's "Unicode text"): "utf-16-le" / "utf-16-be";
- otherwise "cp1252" (Windows-1252, what Excel on Windows saves: the euro sign is byte 0x80).
  Its five unassigned bytes map to the same-numbered C1 controls, as Windows itself does, so
  every byte sequence decodes and nothing is lost.

Transcoding keeps every newline and quote, so line numbers and row boundaries are unchanged.
A UTF-8 file whose first 64 KiB are plain ASCII cannot be told from Windows-1252 there: a later
chunk that is not valid UTF-8 is read as Windows-1252 (the only other encoding that writes
single-byte text like that).
"""

from __future__ import annotations

import codecs

UTF8, CP1252, UTF16_LE, UTF16_BE = "utf-8", "cp1252", "utf-16-le", "utf-16-be"

BOMS = ((codecs.BOM_UTF8, UTF8), (codecs.BOM_UTF16_LE, UTF16_LE), (codecs.BOM_UTF16_BE, UTF16_BE))

# Windows-1252 with its holes (0x81 0x8D 0x8F 0x90 0x9D) mapped to the C1 controls.
_CP1252_TABLE = "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(256))


def detect_encoding(head: bytes, whole_file: bool) -> tuple[str, int]:
    """(encoding, BOM length) of a file from its first bytes (`whole_file`: head is all of it)."""
    for bom, name in BOMS:
        if head.startswith(bom):
            return name, len(bom)
    try:
        codecs.getincrementaldecoder(UTF8)().decode(head, final=whole_file)
    except UnicodeDecodeError:
        return CP1252, 0
    return UTF8, 0


def decode(data: bytes, encoding: str, final: bool = True) -> str:
    """Text of `data` (an incomplete trailing character is dropped unless `final`)."""
    if encoding == CP1252:
        return codecs.charmap_decode(data, "strict", _CP1252_TABLE)[0]
    return codecs.getincrementaldecoder(encoding)(errors="replace").decode(data, final=final)


def to_utf8(data: bytes, encoding: str) -> bytes:
    """`data` as UTF-8 bytes; a UTF-8 chunk that is not valid UTF-8 is read as Windows-1252."""
    if encoding == UTF8:
        try:
            data.decode(UTF8)
            return data
        except UnicodeDecodeError:
            encoding = CP1252
    return decode(data, encoding).encode(UTF8, errors="surrogatepass")


def encoded_length(text: str, encoding: str) -> int:
    """Bytes `text` takes in `encoding` (byte offsets in the stored file)."""
    if encoding == CP1252:
        return len(text)
    return len(text.encode(encoding, errors="surrogatepass"))
