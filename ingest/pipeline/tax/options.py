"""The tax stage's options (the settings a run is computed under, and what checkpoints are keyed
by) and how much work a shard is given."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.config import Settings
from ingest.pipeline.executors import Executor
from ingest.tax.checkpoints import fingerprint, reach_us
from ingest.tax.engine import check_options
from ingest.tax.shards import Shard
from ingest.vocabulary import Method, Pooling

SHARDS_PER_CPU = 2  # a few more shards than CPUs evens out assets of different sizes ...
# ... once each has enough rows to be worth a task: a small history is one shard (a 10k-row job
# ran 4 shard tasks of a few thousand planned rows, each paying a task's and a worker's start-up).
MIN_PLANNED_ROWS_PER_SHARD = 25_000
# A big history gets more shards, so a shard of small assets stays small (one asset's rows are
# never cut: its walk needs them all, so the largest asset bounds a shard from below).
PLANNED_ROWS_PER_SHARD = 200_000
# Peak memory of a shard task per planned row (an (asset, row) pair: rows, valued table, engine
# events, per-transaction metrics, write buffers), measured: 5.4-6.0 GB for ~1M planned rows at
# 3M input rows, 1.7 GB for ~0.28M at 600k; plus the worker's own ~300 MB. Shard tasks ask Ray for
# it, so no more of them run at once than the node's memory holds.
SHARD_BYTES_PER_PLANNED_ROW = 6 * 1024
SHARD_BASE_BYTES = 300 * 1024**2


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


def shard_memory(shard: Shard) -> int:
    """Bytes a shard task asks for (Ray's `memory` resource)."""
    return SHARD_BASE_BYTES + shard.rows * SHARD_BYTES_PER_PLANNED_ROW
