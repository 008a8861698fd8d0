"""The format registry: one module per export format (BittyTax style), detected from the header.

Adding a format = one module exposing `FORMAT = FormatSpec(...)` plus one line in `FORMATS`.
"""
from __future__ import annotations

from collections.abc import Sequence

from ingest.extract.formats import binance, coinbase, koinly, kraken
from ingest.extract.formats.base import FormatError, FormatSpec

FORMATS: dict[str, FormatSpec] = {f.name: f for f in (koinly.FORMAT, coinbase.FORMAT,
                                                       binance.FORMAT, kraken.FORMAT)}


def get_format(name: str) -> FormatSpec:
    try:
        return FORMATS[name.strip().lower()]
    except KeyError:
        raise FormatError(f"unknown format {name!r}; known formats: {', '.join(FORMATS)}") from None


def detect_format(header: Sequence[str]) -> FormatSpec | None:
    """The format whose required columns the header has (extra columns are allowed)."""
    matching = [f for f in FORMATS.values() if f.matches(header)]
    # Most specific first, should two ever both match.
    return max(matching, key=lambda f: len(f.columns), default=None)


def expected_headers() -> str:
    return "; ".join(f"{f.name}: {','.join(f.columns)}" for f in FORMATS.values())


def closest_format(header: Sequence[str]) -> tuple[FormatSpec, list[str]] | None:
    """The format the header resembles most (at least half its columns) and what it lacks."""
    best = min(FORMATS.values(), key=lambda f: len(f.missing(header)) / len(f.columns))
    missing = best.missing(header)
    return (best, missing) if len(missing) <= len(best.columns) // 2 else None
