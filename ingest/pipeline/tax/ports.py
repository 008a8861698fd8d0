"""What the tax stage touches, as ports (Ray Data's datasource/datasink split is the model): the
composition (stage.py) is written once against them; Cassandra adapters (cassandra.py) serve a
job, in-memory ones (memory.py) the offline `ledgerflow tax` and tests.

    HistorySource    the user's stored rows: the months holding rows, and the rows of some months
                     (what one read task takes); the stage reads it through CorrectedHistory
                     (corrected.py), which applies the user's corrections (issue 21)
    PriceSource      make sure the history's price windows are in the cache (the orchestrator,
                     once), the points for some assets over a time range (a shard valuing its
                     rows), and the cache's coverage (checkpoint validity)
    CheckpointStore  the stored checkpoints' index, their bodies, and putting new ones
    ViewSink         a shard writes its view rows in slices and each tax year's Form 8949 lines
                     as its walk passes the year, then commits what is left (the years it no
                     longer produces, findings) and, last, its checkpoints: a checkpoint never
                     runs ahead of the rows derived from it. The orchestrator then writes the user's
                     totals. It also answers what the stage keeps: the years and totals stored.

Adapters travel to Ray tasks as task arguments: they hold how to reach the storage (a session
factory, the user id), never a live connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pyarrow as pa

from ingest.prices.planner import CoverageRecord
from ingest.prices.report import PriceFetchReport
from ingest.tax.checkpoints import AssetCheckpoint, CheckpointMeta, Digest
from ingest.tax.records import BalanceRecord, DisposalLine, TxMetrics
from ingest.tax.shards import Shard, ShardResult, ShardSummary, UserTotals

if TYPE_CHECKING:  # corrected.py wraps a HistorySource (defined here)
    from ingest.pipeline.tax.corrected import CorrectedHistory


class UnreadableCheckpoint(Exception):
    """A body that is missing, of a format version this code has no migration from, or that
    does not decode: the shard computes from its first row."""


class HistorySource(Protocol):
    def months(self) -> list[int]:
        """The months (yyyymm) holding rows, ascending."""
        ...

    def read(self, months: Sequence[int]) -> pa.Table:
        """The canonical rows of ``months``."""
        ...


class PriceSource(Protocol):
    def fetch(self, needs: pa.Table) -> PriceFetchReport:
        """Have every (asset, ts) of ``needs`` fetched or cached."""
        ...

    def load(self, assets: Sequence[str], start: datetime, end: datetime) -> pa.Table | None:
        """The points of ``assets`` between start and end (None: no prices, values from the
        rows alone)."""
        ...

    def coverage(self, assets: Iterable[str]) -> list[CoverageRecord]: ...


@dataclass(frozen=True)
class CheckpointWrite:
    """New checkpoints and what they are made from (ingest/tax/checkpoints.py)."""

    checkpoints: Sequence[AssetCheckpoint]
    digests: Mapping[tuple[str, int], Digest]
    fingerprint: str
    usable: Mapping[int, bool]
    written_us: int


class CheckpointStore(Protocol):
    def index(self) -> dict[tuple[str, int], CheckpointMeta]: ...

    def get(self, metas: Sequence[CheckpointMeta]) -> dict[str, list[AssetCheckpoint]]:
        """Bodies of ``metas``, per key, oldest first. Raises UnreadableCheckpoint."""
        ...

    def put(self, write: CheckpointWrite) -> int:
        """Stores them; returns how many."""
        ...


@dataclass(frozen=True)
class ShardCommit:
    """What a shard derived besides its view rows."""

    shard: Shard
    result: ShardResult
    years: Sequence[str]  # the Form 8949 years whose lines of the shard's assets are replaced
    checkpoints: CheckpointWrite | None  # written last


class ViewSink(Protocol):
    def write(
        self,
        shard: Shard,
        rows: pa.Table,
        anchored: np.ndarray,
        per_tx: Mapping[str, Mapping[str, TxMetrics]],
    ) -> None:
        """One slice of a shard's view rows: the ``anchored`` ones whole (own columns and the
        shard's metrics elements), the others' elements only (ingest/tax/shards.py)."""
        ...

    def write_lines(
        self, shard: Shard, assets: Sequence[str], year: str, lines: Sequence[DisposalLine]
    ) -> None:
        """One tax year's Form 8949 lines of ``assets`` (a shard's own), replacing those stored:
        a streamed shard writes a year's as soon as its walk is past the year's end."""
        ...

    def commit(self, commit: ShardCommit) -> int:
        """The shard's Form 8949 lines (of ``commit.years`` and of its result) and findings,
        then its checkpoints; returns the checkpoints written."""
        ...

    def remove(self, rows: pa.Table) -> None:
        """The view rows of ``rows`` (tx_id, timestamp): transactions a correction took out of
        the history."""
        ...

    def drop_assets(self, assets: set[str], years: Sequence[str]) -> None:
        """The Form 8949 lines (of ``years``) and findings of assets no longer in the history
        (their last row ignored or deleted): no shard owns them any more."""
        ...

    def stored_years(self) -> tuple[str, ...]:
        """The tax years with stored results (their Form 8949 lines are replaced)."""
        ...

    def stored_totals(self, assets: set[str]) -> tuple[ShardSummary, list[BalanceRecord]]:
        """What was stored for ``assets`` before: their yearly rows and balances."""
        ...

    def write_totals(
        self, totals: UserTotals, balances: Sequence[BalanceRecord], dropped_years: set[str]
    ) -> None:
        """The user's yearly summary and balances; the Form 8949 years no longer produced."""
        ...


@dataclass(frozen=True)
class TaxPorts:
    history: CorrectedHistory  # the stored rows with the user's corrections applied
    prices: PriceSource
    checkpoints: CheckpointStore
    views: ViewSink
