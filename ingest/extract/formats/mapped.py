"""A generic CSV read through the user's own column mapping (`?format=mapped`): the user names,
once, which of their columns holds the timestamp, the type, the sent / received / fee amount and
asset, and optionally the value, wallet, tx hash and description, plus the timestamp's format.
The mapping is saved per user (`format_mappings`, PUT /v1/formats/mapping) and copied into the
upload's job record, so a resumed job reads the file as it was uploaded.

Parsing stays pure: `ColumnMapping.spec()` is a `FormatSpec` whose header is the user's
columns, renamed to the universal (Koinly) columns and read by `koinly.to_legs`, so a mapped row
means what a universal row means: both sides = buy / sell / trade, only received = deposit or
income when the type names a reward (staking, reward, airdrop, interest, mining, ...), only sent
= withdrawal, or fee / spend when the type says so; the type text is the label. Without
`timestamp_format` the timestamp is ISO 8601 ('2024-01-05 14:03:00', zone optional); with it, a
strptime format ("%d/%m/%Y %H:%M").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from ingest.extract.formats import koinly
from ingest.extract.formats.base import (
    MONTH_FIRST,
    FormatSpec,
    ParseContext,
    RowChecks,
    constant,
    header_key,
    text,
    timestamp_text,
)

NAME = "mapped"
# mapping field -> the universal column it becomes
UNIVERSAL = {
    "timestamp": "Date",
    "sent_amount": "Sent Amount",
    "sent_asset": "Sent Currency",
    "received_amount": "Received Amount",
    "received_asset": "Received Currency",
    "fee_amount": "Fee Amount",
    "fee_asset": "Fee Currency",
    "type": "Label",
    "value": "Net Worth Amount",
    "value_currency": "Net Worth Currency",
    "wallet": "Wallet",
    "tx_hash": "TxHash",
    "description": "Description",
}
PAIRS = (
    ("sent_amount", "sent_asset"),
    ("received_amount", "received_asset"),
    ("fee_amount", "fee_asset"),
    ("value", "value_currency"),
)


# A moment whose fields all differ (day > 12: a day/month swap shows) for checking a format.
SAMPLE_MOMENT = datetime(2024, 3, 25, 14, 7, 9)


def timestamp_format_errors(fmt: str) -> list[str]:
    """Why the parser cannot read timestamps written in `fmt` (empty: it can): a sample moment is
    written with the format and read back by the parser's own `timestamp_text`; it must come back
    with its day (an unknown directive such as %Q, or a format without the date, does not)."""
    try:
        written = pc.strftime(pa.array([SAMPLE_MOMENT], pa.timestamp("s")), format=fmt)
        read = timestamp_text(written, fmt)[0].as_py()
    except (pa.ArrowException, ValueError) as e:
        return [f"timestamp_format {fmt!r} is not usable: {e}"]
    if read is None or read[:10] != SAMPLE_MOMENT.strftime("%Y-%m-%d"):
        return [
            f"timestamp_format {fmt!r} cannot be read back: {SAMPLE_MOMENT} written with it is "
            f"{written[0].as_py()!r}, read as {read or 'no timestamp'} (name the year, month and "
            "day, e.g. %d/%m/%Y %H:%M)"
        ]
    return []


@dataclass(frozen=True)
class ColumnMapping:
    """Column names of the user's CSV (None: the file has no such column)."""

    timestamp: str
    sent_amount: str | None = None
    sent_asset: str | None = None
    received_amount: str | None = None
    received_asset: str | None = None
    fee_amount: str | None = None
    fee_asset: str | None = None
    type: str | None = None
    value: str | None = None
    value_currency: str | None = None
    wallet: str | None = None
    tx_hash: str | None = None
    description: str | None = None
    timestamp_format: str | None = None  # strptime format; None: ISO 8601

    def columns(self) -> dict[str, str]:
        """mapping field -> the user's column, for the fields that name one."""
        return {f: v for f in UNIVERSAL if (v := getattr(self, f))}

    def errors(self) -> list[str]:
        """What makes the mapping unusable (empty when it is fine)."""
        out = []
        cols = self.columns()
        if not (self.timestamp or "").strip():
            out.append("timestamp names no column")
        for amount, asset in PAIRS:
            if (amount in cols) != (asset in cols):
                out.append(f"{amount} and {asset} go together: name both columns or neither")
        if "sent_amount" not in cols and "received_amount" not in cols:
            out.append("name at least the sent or the received amount and asset columns")
        keys = [header_key(c) for c in cols.values()]
        repeated = sorted({c for c, k in zip(cols.values(), keys) if keys.count(k) > 1})
        if repeated:
            out.append(f"each column can hold one field; named twice: {', '.join(repeated)}")
        if self.timestamp_format is not None:
            if "%" not in self.timestamp_format:
                out.append(
                    f"timestamp_format {self.timestamp_format!r} has no strptime field "
                    "(e.g. %d/%m/%Y %H:%M)"
                )
            else:
                out += timestamp_format_errors(self.timestamp_format)
        return out

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, str | None]) -> ColumnMapping:
        """From field -> column name; names are trimmed, blank ones mean no column."""

        def name(key: str) -> str | None:
            value = data.get(key)
            return value.strip() or None if isinstance(value, str) else None

        others = {f.name: name(f.name) for f in fields(cls) if f.name != "timestamp"}
        return cls(timestamp=name("timestamp") or "", **others)

    @classmethod
    def from_json(cls, text_: str) -> ColumnMapping:
        return cls.from_dict(json.loads(text_))

    def spec(self) -> FormatSpec:
        return _spec(self)


# The columns whose absence makes a row unreadable; the others may be missing from the header.
_REQUIRED = ("timestamp", "sent_amount", "sent_asset", "received_amount", "received_asset")


@lru_cache(maxsize=256)
def _spec(mapping: ColumnMapping) -> FormatSpec:
    cols = mapping.columns()
    required = tuple(cols[f] for f in _REQUIRED if f in cols)
    optional = tuple(v for f, v in cols.items() if f not in _REQUIRED)

    def to_legs(table: pa.Table, ctx: ParseContext) -> tuple[pa.Table, RowChecks]:
        n = table.num_rows
        universal = {name: text(table, name) for name in koinly.COLUMNS + koinly.OPTIONAL_COLUMNS}
        written = universal["Date"]
        if mapping.timestamp_format:
            universal["Date"] = pc.coalesce(
                timestamp_text(written, mapping.timestamp_format), written
            )
        universal["Wallet"] = pc.coalesce(universal["Wallet"], constant(n, ctx.wallet or NAME))
        draft, checks = koinly.to_legs(pa.table(universal), ctx)
        checks.rename_columns({UNIVERSAL[f]: v for f, v in cols.items()})
        return draft, checks

    return FormatSpec(
        name=NAME,
        columns=required,
        optional_columns=optional,
        to_legs=to_legs,
        rename={v: UNIVERSAL[f] for f, v in cols.items()},
        zoned=False,
        date_order=None if mapping.timestamp_format else MONTH_FIRST,
        description="your CSV read through your column mapping (PUT /v1/formats/mapping)",
    )
