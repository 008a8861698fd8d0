"""The tax stage's incremental planner, pure: given what the shell read (the history's stats and
checkpoint digests, the stored checkpoint index, the price cache's coverage, the Form 8949 years
stored, what this upload touched and which price windows were fetched now), decide the run:

    plan = plan_tax(PlanInputs(...), options)
    plan.shards       who owns which asset (ingest/tax/shards.py plan_shards)
    plan.dirty        the shards to recompute: all for a recompute; for an upload those owning
                      (or reconciling) an asset it touched
    plan.rewrite      what they rewrite (view rows from each touched asset's cutoff on, the Form
                      8949 years stored before) and keep (the clean shards' assets), and where
                      each dirty shard resumes from checkpoints (ingest/tax/checkpoints.py)

No Ray, no Cassandra: the reads happen before, in the shell (stage.py), and the plan is tested
on plain data (tests/test_tax_plan.py).

The rewrite rule: view rows of a touched asset change from its earliest new row less the reach
(``TaxOptions.reach_us``: the transfer window, plus the UK 30-day look-ahead: a new deposit can
re-classify an older withdrawal, a new acquisition an older UK disposal), and from the start of
any price window fetched now for the first time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.pipeline.tax.options import TaxOptions
from ingest.prices.planner import CoverageRecord
from ingest.tax.checkpoints import (
    NO_ASSET,
    CheckpointMeta,
    Digest,
    needed_checkpoints,
    period_starts,
    prices_changed,
    resume_point,
    settled,
)
from ingest.tax.shards import ASSET_COLUMNS, HistoryStats, Shard, ShardPlan, plan_shards
from ingest.tax.years import micros_from_datetime

MONTHS_PER_READ = 3  # a read task holds at most this many months of the history ...
# ... when its size is not known. Known (a first upload: the file's accepted rows; a later job:
# the rows its user's last tax run read, plus the upload's new ones), the read tasks follow the
# rows: one for a small history (each task pays Ray's start-up and a worker's
# session; a 10k-row job ran a dozen read and a dozen split tasks of a few hundred rows each), at
# least one per CPU past SMALL_HISTORY_ROWS, about READ_ROWS_PER_TASK rows each (600k: 12 tasks,
# as the month rule gave over 3 years).
SMALL_HISTORY_ROWS = 20_000
READ_ROWS_PER_TASK = 50_000


@dataclass(frozen=True)
class CheckpointPlan:
    """Where dirty shards resume and what they need to (ingest/tax/checkpoints.py)."""

    starts: tuple[int, ...]  # the history's tax-year starts: where checkpoints are made
    digests: Mapping[tuple[str, int], Digest]  # of the history just read
    usable: Mapping[int, bool]  # per start: whether this run's checkpoints there may be resumed
    resume: Mapping[int, tuple[int, tuple[CheckpointMeta, ...]]]  # shard -> (start, to load)
    written_us: int  # the bodies' version


@dataclass(frozen=True)
class Rewrite:
    """What a shard task rewrites and keeps."""

    cutoffs: Mapping[str, datetime] | None  # per asset, view rows from then on; None: all rows
    known_years: tuple[str, ...]  # tax years stored before (their chunks are replaced)
    unavailable_assets: frozenset[str]  # price windows the provider could not give now
    # assets of shards not recomputed: a rewritten row anchored there (an old trade of a clean
    # asset against a touched one) gets its own columns from every recomputing shard reading it
    # (the same values: idempotent upserts)
    clean_assets: frozenset[str] = frozenset()
    checkpoints: CheckpointPlan | None = None  # None: checkpoints off

    @property
    def recompute(self) -> bool:
        """Everything is rewritten (a settings change, the offline CLI)."""
        return self.cutoffs is None


@dataclass(frozen=True)
class StoredState:
    """What the shell read for an upload's incremental plan (checkpoints on)."""

    index: Mapping[tuple[str, int], CheckpointMeta]  # the stored checkpoints' index
    coverage: Sequence[CoverageRecord]  # the price cache's windows of the history's assets


@dataclass(frozen=True)
class PlanInputs:
    stats: HistoryStats  # of the whole history, with its checkpoint digests
    shard_count: int
    # what the upload touched: asset -> (earliest, latest) epoch seconds; None: a recompute
    touched: Mapping[str, tuple[float, float]] | None
    known_years: tuple[str, ...] = ()
    fetched_windows: Sequence[tuple[str, datetime]] = ()  # (asset, window start) fetched now
    unavailable_assets: frozenset[str] = frozenset()
    starts: tuple[int, ...] = ()  # the history's tax-year starts (history_starts)
    checkpoints: bool = False  # LEDGERFLOW_TAX_CHECKPOINTS
    stored: StoredState | None = None  # read when the run is incremental with checkpoints
    now_us: int = 0  # when the run's checkpoints are made (their version)


@dataclass(frozen=True)
class TaxPlan:
    shards: ShardPlan
    dirty: tuple[Shard, ...]
    rewrite: Rewrite = field(default_factory=lambda: Rewrite(None, (), frozenset()))


def plan_tax(inputs: PlanInputs, options: TaxOptions) -> TaxPlan:
    """The whole decision: shards, which recompute, what they rewrite, where they resume."""
    cutoffs = cutoffs_of(inputs.touched, inputs.fetched_windows, options.reach_us)
    shards = plan_shards(inputs.stats, inputs.shard_count)
    dirty = dirty_shards(shards, cutoffs)
    clean_assets = frozenset(a for s in shards.shards if s not in dirty for a in s.assets)
    checkpoints = None
    if inputs.checkpoints:
        checkpoints = plan_checkpoints(
            inputs.stats,
            inputs.starts,
            dirty,
            options,
            unavailable=bool(inputs.unavailable_assets),
            stored=inputs.stored if cutoffs is not None else None,
            now_us=inputs.now_us,
            touched=inputs.touched,
        )
    rewrite = Rewrite(
        cutoffs, inputs.known_years, inputs.unavailable_assets, clean_assets, checkpoints
    )
    return TaxPlan(shards, tuple(dirty), rewrite)


def cutoffs_of(
    touched: Mapping[str, tuple[float, float]] | None,
    fetched_windows: Iterable[tuple[str, datetime]],
    reach_us: int,
) -> dict[str, datetime] | None:
    """Per asset, the time from which view rows may have changed; None: all of them."""
    if touched is None:
        return None
    lookback = timedelta(microseconds=reach_us)
    cutoffs = {
        asset: datetime.fromtimestamp(lo, tz=timezone.utc) - lookback
        for asset, (lo, _hi) in touched.items()
    }
    for asset, start in fetched_windows:
        cutoffs[asset] = min(cutoffs.get(asset, start), start)
    return cutoffs


def dirty_shards(plan: ShardPlan, cutoffs: Mapping[str, datetime] | None) -> list[Shard]:
    """Shards whose results may have changed: all for a recompute, else those owning or
    reconciling a touched asset (shard 0 also for a touched asset nobody owns)."""
    if cutoffs is None:
        return list(plan.shards)
    touched = set(cutoffs)
    return [
        s
        for s in plan.shards
        if touched & (s.assets | s.context) or (s.catch_all and touched - set(plan.owner))
    ]


def rewrite_mask(valued: pa.Table, cutoffs: Mapping[str, datetime] | None) -> np.ndarray:
    """Which rows to (re)write: all when cutoffs is None, else rows touching an asset at or after
    that asset's cutoff."""
    n = valued.num_rows
    if cutoffs is None:
        return np.ones(n, dtype=bool)
    mask = np.zeros(n, dtype=bool)
    ts = valued.column("timestamp")
    for col in ASSET_COLUMNS:
        assets = valued.column(col)
        for asset, cutoff in cutoffs.items():
            hit = pc.and_(pc.equal(assets, asset), pc.greater_equal(ts, pa.scalar(cutoff, ts.type)))
            mask |= pc.fill_null(hit, False).to_numpy(zero_copy_only=False)
    return mask


def plan_checkpoints(
    stats: HistoryStats,
    starts: Sequence[int],
    dirty: Iterable[Shard],
    options: TaxOptions,
    *,
    unavailable: bool,
    stored: StoredState | None,
    now_us: int,
    touched: Mapping[str, tuple[float, float]] | None = None,
) -> CheckpointPlan:
    """Where each dirty shard resumes (an upload or a correction only, ``stored`` given: a
    recompute changed the settings), and whether the checkpoints this run makes may be resumed
    from later. A shard resumes at a start no later than the earliest ``touched`` time of its
    assets: the digests tell a checkpoint still holds, but a row that comes back (an undone
    ignore) before a valid checkpoint would otherwise not be written again."""
    digests = dict(stats.digests)
    usable = {s: not unavailable and settled(s, options.reach_us, now_us) for s in starts}
    resume: dict[int, tuple[int, tuple[CheckpointMeta, ...]]] = {}
    if stored is not None:
        priced_since = prices_changed(
            ((c.window_start * 1_000_000, fetched_by_us(c.fetched_at)) for c in stored.coverage),
            starts,
            options.reach_us,
        )
        for shard in dirty:
            keys = set(shard.assets) | ({NO_ASSET} if shard.catch_all else set())
            before = starts_before(starts, shard, touched)
            start = resume_point(
                keys,
                shard.context,
                before,
                digests,
                stored.index,
                options.fingerprint,
                priced_since,
            )
            if start is not None:
                wanted = needed_checkpoints(keys, shard.context, start, before, digests)
                resume[shard.index] = (start, tuple(stored.index[w] for w in wanted))
    return CheckpointPlan(tuple(starts), digests, usable, resume, now_us)


FETCHED_AT_RESOLUTION_US = 1_000  # price_coverage.fetched_at: a Cassandra timestamp (ms)


def fetched_by_us(fetched_at: float | None) -> int | None:
    """By when a price window's points were surely stored, in us: the end of the millisecond its
    ``fetched_at`` names (taken after the points were written; the column holds milliseconds,
    truncated). Whole seconds plus one made a run whose plan followed its own last fetch within
    the same second see its own fetches as later than its checkpoints: never resumed."""
    if fetched_at is None:
        return None
    return round(fetched_at * 1_000) * 1_000 + FETCHED_AT_RESOLUTION_US


def starts_before(
    starts: Sequence[int], shard: Shard, touched: Mapping[str, tuple[float, float]] | None
) -> list[int]:
    """The starts at or before the earliest touched time of the shard's assets (all: none
    touched)."""
    times = [lo for a, (lo, _hi) in (touched or {}).items() if a in shard.assets | shard.context]
    if shard.catch_all:  # it also computes the touched assets nobody owns
        times += [lo for _a, (lo, _hi) in (touched or {}).items()]
    if not times:
        return list(starts)
    limit = round(min(times) * 1_000_000)
    return [s for s in starts if s <= limit]


def history_starts(months: Sequence[int], method: str) -> list[int]:
    """The tax-year starts within the months (yyyymm) of the history: where checkpoints are
    made."""
    first = datetime(months[0] // 100, months[0] % 100, 1, tzinfo=timezone.utc)
    year, month = divmod(months[-1], 100)
    after = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc)
    return period_starts(method, micros_from_datetime(first), micros_from_datetime(after) - 1)


def month_groups(months: Sequence[int], cpus: int, rows_hint: int | None = None) -> list[list[int]]:
    """Consecutive months for the read tasks. ``rows_hint`` (the history's rows, when known):
    one group below SMALL_HISTORY_ROWS, else at least one per CPU and about READ_ROWS_PER_TASK
    rows each; unknown: at least one group per CPU, at most MONTHS_PER_READ months each."""
    if not months:
        return []
    if rows_hint is None:
        n = max(cpus, -(-len(months) // MONTHS_PER_READ))
    elif rows_hint < SMALL_HISTORY_ROWS:
        n = 1
    else:
        n = max(cpus, -(-rows_hint // READ_ROWS_PER_TASK))
    size = -(-len(months) // n)
    return [list(months[i : i + size]) for i in range(0, len(months), size)]
