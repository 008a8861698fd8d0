"""The tax stage's options (the settings a run is computed under, and what checkpoints are keyed
by) and how much work a shard is given."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ingest.config import Settings
from ingest.pipeline.executors import Executor
from ingest.tax.checkpoints import fingerprint, reach_us
from ingest.tax.engine import check_options
from ingest.tax.shards import HistoryStats, Shard
from ingest.vocabulary import Method, Pooling

SHARDS_PER_CPU = 2  # a few more shards than CPUs evens out assets of different sizes ...
# ... once each has enough rows to be worth a task: a small history is one shard (a 10k-row job
# ran 4 shard tasks of a few thousand planned rows, each paying a task's and a worker's start-up).
MIN_PLANNED_ROWS_PER_SHARD = 25_000
# A big history gets more shards, so a shard of small assets stays small (one asset's rows are
# never cut: its walk needs them all, so the largest asset bounds a shard from below).
PLANNED_ROWS_PER_SHARD = 200_000
# Peak memory of a streamed shard task (ShardStream walks a tax year at a time): per (asset, row)
# pair of its largest period, the walk's Python rows, events, lines and metrics, the view writes'
# buffers and the allocator's fragmentation over the periods; per pair of the whole shard, its
# Arrow rows (object store pages) and the masks over them; plus the worker's own and a view write
# slice. Measured on the 600k-row benchmark file, each shard in a fresh worker: shards of
# 170-177k pairs, periods of 57-59k, peaked at 745-837 MiB RSS (before streaming was bounded,
# shard tasks asked for 6 KiB per pair of the whole shard: 1.3 GB each there).
SHARD_BYTES_PER_PERIOD_ROW = 8 * 1024
# A shard's periods end at month starts inside a tax year too where a period would otherwise hold
# more rows (ShardStream period_rows), so a walk holds a month or a few of a dominant asset, not
# its tax year (57-59k pairs in the 600k-row file's largest shard). Checkpoints are still stored
# at tax-year starts only. A month of more rows stays one period. (Alone it took that file's
# largest worker from 849 to 776 MiB; collecting each period's garbage did more, stage.py.)
SHARD_PERIOD_ROWS = 20_000
SHARD_BYTES_PER_PLANNED_ROW = 512
SHARD_BASE_BYTES = 300 * 1024**2
# A shard of more planned rows runs in a worker of its own that exits after it (Executor.submit
# fresh_worker): a pooled worker would carry into it the object store pages earlier tasks
# touched (a split task's pieces, counted in the worker's RSS) and carry its fragmented heap into
# the next task. Smaller shards keep the pooled workers (no start-up for a small job).
FRESH_WORKER_PLANNED_ROWS = 100_000


@dataclass(frozen=True)
class TaxOptions:
    method: Method
    pooling: Pooling
    currency: str
    transfer_window_hours: float = 24.0
    transfer_max_fee_share: float = 0.05

    def __post_init__(self) -> None:
        check_options(self.method, self.pooling)

    @property
    def fingerprint(self) -> str:
        """What checkpoints made under these options are keyed by (ingest/tax/checkpoints.py)."""
        return fingerprint(
            self.method,
            self.pooling,
            self.currency,
            self.transfer_window_hours,
            self.transfer_max_fee_share,
        )

    @property
    def reach_us(self) -> int:
        return reach_us(self.method, self.transfer_window_hours)

    @classmethod
    def of(cls, method: Method, pooling: Pooling, currency: str, settings: Settings) -> TaxOptions:
        return cls(
            method,
            pooling,
            currency,
            settings.transfer_window_hours,
            settings.transfer_max_fee_share,
        )


def shard_count(executor: Executor, planned_rows: int = 0) -> int:
    """Shards for ``planned_rows`` (asset, row) pairs: SHARDS_PER_CPU per CPU once each has
    MIN_PLANNED_ROWS_PER_SHARD, more for a big history (PLANNED_ROWS_PER_SHARD each). The same
    rule for every job: a later upload or a correction on a small history is one shard too (it
    resumes from checkpoints only as far back as its least resumable asset allows, but walking
    a small history whole costs less than a task per shard and the split tasks feeding them)."""
    by_cpus = min(executor.cpus * SHARDS_PER_CPU, -(-planned_rows // MIN_PLANNED_ROWS_PER_SHARD))
    return max(1, by_cpus, -(-planned_rows // PLANNED_ROWS_PER_SHARD))


def largest_period_rows(shard: Shard, stats: HistoryStats, starts: Sequence[int]) -> int:
    """(asset, row) pairs of the shard's largest period (between tax-year ``starts``, with the
    reach after it that the walk looks ahead over), from the read's digests; the whole shard's
    when there are none (checkpoints off)."""
    if not starts or not stats.digests:
        return shard.rows

    def count(start: int | None, field: str) -> int:  # pairs before start (None: all)
        return sum(
            stats.asset_rows.get(a, 0)
            if start is None
            else getattr(stats.digests.get((a, start)), field, 0)
            for a in shard.assets
        )

    bounds: list[int | None] = [None, *sorted(starts), None]
    held = [
        count(end, "rows_reach") - (0 if start is None else count(start, "rows_before"))
        for start, end in zip(bounds, bounds[1:])
    ]
    return min(shard.rows, max(held))


def shard_memory(shard: Shard, period_rows: int) -> int:
    """Bytes a streamed shard task asks for (Ray's `memory` resource), its largest period
    holding ``period_rows`` (asset, row) pairs."""
    return (
        SHARD_BASE_BYTES
        + period_rows * SHARD_BYTES_PER_PERIOD_ROW
        + shard.rows * SHARD_BYTES_PER_PLANNED_ROW
    )
