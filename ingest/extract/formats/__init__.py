"""The format registry: one module per source (BittyTax style), each registering every header
version it reads (`VERSIONS`), detected from the header row.

Adding a version = one `FormatSpec` in its source's `VERSIONS`; adding a source = one module plus
one entry in `_MODULES`. A version's name is unique ("coinbase-2023"); the canonical `source`
column carries the source ("coinbase"), so ids do not depend on the version read.
"""

from __future__ import annotations

from collections.abc import Sequence

from ingest.extract.formats import (
    binance,
    bitstamp,
    bitvavo,
    bybit,
    coinbase,
    cryptocom,
    gemini,
    koinly,
    kraken,
    kucoin,
    okx,
)
from ingest.extract.formats.base import FormatError, FormatSpec

_MODULES = (
    koinly,
    coinbase,
    binance,
    kraken,
    bybit,
    okx,
    kucoin,
    gemini,
    bitstamp,
    cryptocom,
    bitvavo,
)

FORMATS: dict[str, FormatSpec] = {f.name: f for m in _MODULES for f in m.VERSIONS}
SOURCES: dict[str, tuple[FormatSpec, ...]] = {}
for _spec in FORMATS.values():
    SOURCES[_spec.source_name] = SOURCES.get(_spec.source_name, ()) + (_spec,)


def get_format(name: str) -> FormatSpec:
    """The version named `name` (a source name means its first, newest, version)."""
    key = name.strip().lower()
    if key in FORMATS:
        return FORMATS[key]
    if key in SOURCES:
        return SOURCES[key][0]
    raise FormatError(
        f"unknown format {name!r}; known formats: {', '.join(SOURCES)} "
        f"(or one version: {', '.join(FORMATS)})"
    )


def formats_named(name: str | None) -> tuple[FormatSpec, ...]:
    """The versions a `format=` parameter allows: all, one source's, or one version."""
    if not name:
        return tuple(FORMATS.values())
    key = name.strip().lower()
    if key in SOURCES:
        return SOURCES[key]
    return (get_format(key),)


def detect_format(
    header: Sequence[str], allowed: Sequence[FormatSpec] | None = None
) -> FormatSpec | None:
    """The version whose required columns the header has (extra columns are allowed); of
    several, the one that recognizes the most columns of the header."""
    candidates = FORMATS.values() if allowed is None else allowed
    matching = [f for f in candidates if f.matches(header)]
    return max(matching, key=lambda f: (f.present(header), len(f.columns)), default=None)


def closest_header(
    lines: Sequence[tuple[int, Sequence[str]]], allowed: Sequence[FormatSpec] | None = None
) -> tuple[int, Sequence[str], FormatSpec, list[str]] | None:
    """(line, its fields, version, the version's columns it lacks) of the (line, version) pair
    sharing the largest part of the version's columns; None when no line shares a column."""
    specs = list(FORMATS.values() if allowed is None else allowed)
    scored = [
        (f.present(fields) / len(f.columns), f.present(fields), -i, j)
        for i, (_, fields) in enumerate(lines)
        for j, f in enumerate(specs)
    ]
    best = max(scored, default=None)
    if best is None or best[1] == 0:
        return None
    line_no, fields = lines[-best[2]]
    spec = specs[best[3]]
    return line_no, fields, spec, spec.missing(fields)
