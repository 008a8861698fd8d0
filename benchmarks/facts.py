"""What a generated file holds, read independently of ledgerflow (csv module): rows, priceable
transactions, the distinct (asset, price window) pairs they fall in, the first priceable
(asset, time) keys for the naive fetcher, and a rare asset and a wallet holding it (the filtered
page of the read latency step)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from benchmarks.baseline import read_koinly_file
from ingest.normalize.assets import PROVIDER_IDS
from ingest.normalize.canonical import FIAT

RARE_MIN_ROWS = 50
DEFAULT_WALLET = "koinly"  # ledgerflow's wallet for a Koinly row without a Wallet cell


@dataclass
class FileFacts:
    path: str
    bytes: int
    rows: int = 0
    priceable_transactions: int = 0  # rows with a crypto asset that has a coin id
    window_pairs: int = 0  # distinct (asset, window) over every crypto asset seen
    window_seconds: int = 0
    naive_sample: list[tuple[str, datetime]] = field(default_factory=list)
    asset_wallet_rows: Counter[tuple[str, str]] = field(default_factory=Counter)

    def rare_asset_wallet(self, min_rows: int = RARE_MIN_ROWS) -> tuple[str, str] | None:
        """The crypto asset in the fewest rows (of those in at least `min_rows`, or the most
        common one when none is), with the wallet holding most of its rows."""
        by_asset: Counter[str] = Counter()
        for (asset, _), n in self.asset_wallet_rows.items():
            by_asset[asset] += n
        if not by_asset:
            return None
        common = [a for a, n in by_asset.items() if n >= min_rows]
        asset = (
            min(common, key=lambda a: (by_asset[a], a)) if common else by_asset.most_common(1)[0][0]
        )
        wallet = max(
            (w for a, w in self.asset_wallet_rows if a == asset),
            key=lambda w: (self.asset_wallet_rows[(asset, w)], w),
        )
        return asset, wallet

    def summary(self) -> dict:
        return {
            "path": self.path,
            "bytes": self.bytes,
            "rows": self.rows,
            "priceable_transactions": self.priceable_transactions,
            "window_pairs": self.window_pairs,
            "window_days": self.window_seconds // 86400,
            "rare_asset_wallet": self.rare_asset_wallet(),
        }


def file_facts(path: Path, window_seconds: int, sample_size: int) -> FileFacts:
    facts = FileFacts(str(path), path.stat().st_size, window_seconds=window_seconds)
    pairs: set[tuple[str, int]] = set()
    for row in read_koinly_file(str(path)):
        facts.rows += 1
        second = int(row.timestamp.timestamp())
        for asset in {row.sent_currency, row.received_currency, row.fee_currency}:
            if asset and asset not in FIAT and PROVIDER_IDS.get(asset):
                pairs.add((asset, second // window_seconds))
                facts.asset_wallet_rows[(asset, row.wallet or DEFAULT_WALLET)] += 1
        asset = row.priced_asset
        if asset:
            facts.priceable_transactions += 1
            if len(facts.naive_sample) < sample_size:
                facts.naive_sample.append((asset, row.timestamp))
    facts.window_pairs = len(pairs)
    return facts
