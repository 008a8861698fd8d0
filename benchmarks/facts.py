"""What a generated file holds, read independently of ledgerflow (csv module): rows, priceable
transactions, the distinct (asset, price window) pairs they fall in, and the first priceable
(asset, time) keys for the naive fetcher."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from benchmarks.baseline import read_koinly_file
from ingest.normalize.assets import PROVIDER_IDS
from ingest.normalize.canonical import FIAT


@dataclass
class FileFacts:
    path: str
    bytes: int
    rows: int = 0
    priceable_transactions: int = 0  # rows with a crypto asset that has a coin id
    window_pairs: int = 0  # distinct (asset, window) over every crypto asset seen
    window_seconds: int = 0
    naive_sample: list[tuple[str, datetime]] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "path": self.path,
            "bytes": self.bytes,
            "rows": self.rows,
            "priceable_transactions": self.priceable_transactions,
            "window_pairs": self.window_pairs,
            "window_days": self.window_seconds // 86400,
        }


def file_facts(path: Path, window_seconds: int, sample_size: int) -> FileFacts:
    facts = FileFacts(str(path), path.stat().st_size, window_seconds=window_seconds)
    pairs: set[tuple[str, int]] = set()
    for row in read_koinly_file(str(path)):
        facts.rows += 1
        second = int(row.timestamp.timestamp())
        for asset in (row.sent_currency, row.received_currency, row.fee_currency):
            if asset and asset not in FIAT and PROVIDER_IDS.get(asset):
                pairs.add((asset, second // window_seconds))
        asset = row.priced_asset
        if asset:
            facts.priceable_transactions += 1
            if len(facts.naive_sample) < sample_size:
                facts.naive_sample.append((asset, row.timestamp))
    facts.window_pairs = len(pairs)
    return facts
