"""The tax stage's ports in memory: the offline `ledgerflow tax` (its files are the history, no
price service: rows are valued from themselves) and tests. Used with the in-process executor
only (their state lives in this process)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any

import numpy as np
import pyarrow as pa

from ingest.corrections.kinds import Correction
from ingest.load.transactions import month_keys
from ingest.pipeline.tax.cassandra import view_base_rows
from ingest.pipeline.tax.corrected import CorrectedHistory
from ingest.pipeline.tax.ports import (
    CheckpointWrite,
    ShardCommit,
    TaxPorts,
    UnreadableCheckpoint,
)
from ingest.prices.planner import CoverageRecord
from ingest.prices.report import PriceFetchReport
from ingest.tax.checkpoints import AssetCheckpoint, CheckpointMeta, Digest
from ingest.tax.records import (
    BalanceRecord,
    DisposalLine,
    Finding,
    TaxResult,
    TxMetrics,
)
from ingest.tax.shards import (
    Shard,
    ShardResult,
    ShardSummary,
    UserTotals,
    fold_metrics,
    merge_shards,
)


@dataclass
class MemoryHistory:
    rows: pa.Table

    def months(self) -> list[int]:
        return sorted(set(month_keys(self.rows.column("timestamp")).tolist()))

    def read(self, months: Sequence[int]) -> pa.Table:
        of_row = month_keys(self.rows.column("timestamp"))
        return self.rows.filter(pa.array(np.isin(of_row, list(months))))


@dataclass
class NoPrices:
    """No price service: every row is valued from its own fiat side or stated value."""

    def fetch(self, needs: pa.Table) -> PriceFetchReport:
        return PriceFetchReport()

    def load(self, assets: Sequence[str], start: datetime, end: datetime) -> pa.Table | None:
        return None

    def coverage(self, assets: Iterable[str]) -> list[CoverageRecord]:
        return []


@dataclass
class MemoryCheckpoints:
    stored: dict[tuple[str, int], tuple[CheckpointMeta, AssetCheckpoint]] = field(
        default_factory=dict
    )

    def index(self) -> dict[tuple[str, int], CheckpointMeta]:
        return {key: meta for key, (meta, _) in self.stored.items()}

    def get(self, metas: Sequence[CheckpointMeta]) -> dict[str, list[AssetCheckpoint]]:
        out: dict[str, list[AssetCheckpoint]] = {}
        for meta in metas:
            found = self.stored.get((meta.key, meta.start_us))
            if found is None or found[0] != meta:
                raise UnreadableCheckpoint(f"checkpoint {meta.key}@{meta.start_us}: missing")
            out.setdefault(meta.key, []).append(found[1])
        for checkpoints in out.values():
            checkpoints.sort(key=lambda c: c.start_us)
        return out

    def put(self, write: CheckpointWrite) -> int:
        for checkpoint in write.checkpoints:
            key = (checkpoint.key, checkpoint.start_us)
            digest = write.digests.get(key)
            meta = CheckpointMeta(
                key=checkpoint.key,
                start_us=checkpoint.start_us,
                fingerprint=write.fingerprint,
                usable=digest is not None and write.usable.get(checkpoint.start_us, False),
                digest=digest if digest is not None else Digest(-1, -1, 0),
                written_us=write.written_us,
                parts=1,
            )
            self.stored[key] = (meta, checkpoint)
        return len(write.checkpoints)


@dataclass
class MemoryViews:
    """Keeps each shard's result (the offline report is made from them: ``tax_result``), the
    view rows written and the user's totals; and the tables as a job leaves them in Cassandra
    (an incremental run is compared with a full one on them): Form 8949 lines per (year, asset),
    findings per asset ('' none), transactions_view rows (own columns, per-asset metrics)."""

    checkpoints: MemoryCheckpoints = field(default_factory=MemoryCheckpoints)
    results: dict[int, ShardResult] = field(default_factory=dict)
    view_rows: int = 0
    totals: UserTotals | None = None
    balances: list[BalanceRecord] = field(default_factory=list)
    lines: dict[tuple[str, str], list[DisposalLine]] = field(default_factory=dict)
    findings: dict[str, list[Finding]] = field(default_factory=dict)
    view: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, dict[str, TxMetrics]] = field(default_factory=dict)

    def write(
        self,
        shard: Shard,
        rows: pa.Table,
        anchored: np.ndarray,
        per_tx: Mapping[str, Mapping[str, TxMetrics]],
    ) -> None:
        self.view_rows += int(anchored.sum())
        for own in view_base_rows(rows.filter(pa.array(anchored))):
            self.view[own["tx_id"]] = own
        for tx in rows.column("tx_id").to_pylist():
            self.metrics.setdefault(tx, {}).update(per_tx.get(tx, {}))

    def commit(self, commit: ShardCommit) -> int:
        result = commit.result
        self.results[commit.shard.index] = result
        owned = sorted(r.asset for r in result.assets)
        by_year: dict[str, list[DisposalLine]] = {}
        for r in result.assets:
            for line in r.disposals:
                by_year.setdefault(line.tax_year, []).append(line)
        for year in set(commit.years) | set(by_year):
            self.write_lines(commit.shard, owned, year, by_year.get(year, ()))
        for key in set(owned) | ({""} if commit.shard.catch_all else set()):
            self.findings.pop(key, None)
        for f in result.findings + [f for r in result.assets for f in r.findings]:
            self.findings.setdefault(f.asset or "", []).append(f)
        return 0 if commit.checkpoints is None else self.checkpoints.put(commit.checkpoints)

    def write_lines(
        self, shard: Shard, assets: Sequence[str], year: str, lines: Sequence[DisposalLine]
    ) -> None:
        for asset in assets:
            self.lines.pop((year, asset), None)
        for line in lines:
            self.lines.setdefault((year, line.asset), []).append(line)

    def remove(self, rows: pa.Table) -> None:
        for tx in rows.column("tx_id").to_pylist():
            self.view.pop(tx, None)
            self.metrics.pop(tx, None)

    def drop_assets(self, assets: set[str], years: Sequence[str]) -> None:
        for year in years:
            for asset in assets:
                self.lines.pop((year, asset), None)
        for asset in assets:
            self.findings.pop(asset, None)

    def stored_years(self) -> tuple[str, ...]:
        return tuple(sorted(self.totals.years)) if self.totals is not None else ()

    def stored_totals(self, assets: set[str]) -> tuple[ShardSummary, list[BalanceRecord]]:
        years = {
            key: s
            for key, s in (self.totals.years_by_asset if self.totals else {}).items()
            if key[1] in assets
        }
        kept = [b for b in self.balances if b.asset in assets]
        return ShardSummary(-1, tuple(sorted(assets)), years, 0, 0, 0, 0), kept

    def write_totals(
        self, totals: UserTotals, balances: Sequence[BalanceRecord], dropped_years: set[str]
    ) -> None:
        self.totals, self.balances = totals, list(balances)

    def tax_result(self, *, method: str, pooling: str, currency: str) -> TaxResult:
        """The whole TaxResult of the shards committed (the engine's own merge)."""
        results = [self.results[i] for i in sorted(self.results)]
        merged = merge_shards(results, method=method, pooling=pooling, currency=currency)
        # a shard gives its per-tx metrics and Form 8949 lines with each period, not in its
        # result: read back from what was written, as the query API reads them
        merged.per_tx = {tx: fold_metrics(e) for tx, e in self.metrics.items() if e}
        merged.disposals = sorted(
            (line for lines in self.lines.values() for line in lines),
            key=attrgetter("sold_at", "tx_id", "asset", "line_id"),
        )
        return merged


def memory_ports(
    rows: pa.Table,
    corrections: Sequence[Correction] = (),
    *,
    new: frozenset[uuid.UUID] = frozenset(),
    uploads_of: Mapping[str, frozenset[str]] | None = None,
    checkpoints: MemoryCheckpoints | None = None,
    views: MemoryViews | None = None,
) -> TaxPorts:
    """Ports over ``rows`` (canonical, unvalued, as uploaded) with the user's ``corrections``
    applied and no price service. ``checkpoints``/``views``: a previous run's, to run again on
    (an incremental run: ``new`` names its corrections)."""
    checkpoints = checkpoints if checkpoints is not None else MemoryCheckpoints()
    return TaxPorts(
        history=CorrectedHistory(
            MemoryHistory(rows), tuple(corrections), new=new, uploads_of=uploads_of or {}
        ),
        prices=NoPrices(),
        checkpoints=checkpoints,
        views=views if views is not None else MemoryViews(checkpoints),
    )
