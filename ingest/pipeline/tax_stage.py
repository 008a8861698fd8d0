"""Tax stage: the user's whole history (all uploads) in shards that each own some assets.

    read  read_task x month groups    rows of a few months -> small stats + price needs; the rows
                                      stay in the object store
    plan  (here)                      fetch the missing price windows once; assign assets to
                                      shards by row counts (ingest/tax/shards.py)
    split split_task x month groups   each group's rows -> one piece per shard (a row naming
                                      assets of two shards goes to both)
    shard shard_task x dirty shards   from its resume point (the latest tax-year start where its
                                      checkpoints are valid; its first row without one): value
                                      its rows, reconcile, cost basis per asset, and write its own
                                      cells: transactions_view rows it anchors and its assets'
                                      metrics elements, its assets' Form 8949 chunks and
                                      findings, then its checkpoints; returns a small summary
    totals (here)                     yearly_summary and balances from the shards' summaries

The orchestrator holds summaries only; a task holds one month group or one shard, never the
whole history. Incremental: an upload recomputes only the shards owning (or reconciling) an
asset it touched; transactions_view rows are rewritten from each touched asset's earliest new
transaction, less the transfer window (a new deposit can re-classify an older withdrawal) and,
for the UK method, 30 more days (bed and breakfast looks forward), and from the start of any
price window fetched now for the first time. With checkpoints (ingest/tax/checkpoints.py) a
dirty shard also skips everything before its resume point: rows are not valued or walked, Form
8949 years before it stay, and its totals and findings come from the checkpoints. A recompute
(settings changed) rewrites all and makes checkpoints anew.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.load import checkpoints as checkpoint_store
from ingest.load import queries, views
from ingest.load.price_cache import load_prices, read_coverage
from ingest.load.transactions import month_keys, read_transactions, user_months
from ingest.observe import metrics
from ingest.pipeline.context import JobContext
from ingest.pipeline.executors import Executor
from ingest.pipeline.results import StageResults, TaxStageResult
from ingest.pipeline.tax_compute import (
    TaxOptions,
    compute_shard_with,
    shard_count,
    shard_memory,
)
from ingest.prices.pool import fetch_prices
from ingest.prices.report import PriceFetchReport
from ingest.prices.valuation import price_needs, value_transactions
from ingest.tax.checkpoints import (
    NO_ASSET,
    CheckpointMeta,
    Digest,
    ShardResume,
    merge_digests,
    needed_checkpoints,
    period_starts,
    prices_changed,
    resume_point,
    row_digests,
    settled,
)
from ingest.tax.engine import gc_paused
from ingest.tax.methods import get_method
from ingest.tax.records import BalanceRecord, DisposalLine, Finding, TxMetrics, YearSummary
from ingest.tax.shards import (
    ASSET_COLUMNS,
    HistoryStats,
    Shard,
    ShardPlan,
    ShardSummary,
    anchor_mask,
    anchored_in,
    combine_summaries,
    history_stats,
    plan_shards,
    rows_from,
    shard_mask,
)
from ingest.tax.years import micros_from_datetime
from ingest.vocabulary import JobKind, Stage

log = logging.getLogger(__name__)

MONTHS_PER_READ = 3  # a read task holds at most this many months of the history
# View rows are bound and written this many at a time: the driver's bound statements and their
# Python values (about 2 KB a row) then exist for one slice, not for the whole shard.
VIEW_WRITE_SLICE = 20_000
EMPTY_NEEDS = pa.schema([("asset", pa.string()), ("ts", pa.timestamp("us", tz="UTC"))])


class StepTimer:
    """Seconds per named step, for the job summary."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self.started = self._last = time.monotonic()

    def done(self, name: str) -> None:
        now = time.monotonic()
        self.steps[name] = round(now - self._last, 3)
        self._last = now

    @property
    def total(self) -> float:
        return round(time.monotonic() - self.started, 3)


@dataclass(frozen=True)
class Rewrite:
    """What a shard task rewrites, decided by the orchestrator."""

    cutoffs: dict[str, datetime] | None  # per asset, view rows from then on; None: all rows
    known_years: tuple[str, ...]  # tax years stored before (their chunks are replaced)
    unavailable_assets: frozenset[str]  # price windows the provider could not give now
    # assets of shards not recomputed: a rewritten row anchored there (an old trade of a clean
    # asset against a touched one) gets its own columns from every recomputing shard reading it
    # (the same values: idempotent upserts)
    clean_assets: frozenset[str] = frozenset()
    checkpoints: CheckpointPlan | None = None  # None: checkpoints off


@dataclass(frozen=True)
class CheckpointPlan:
    """Where dirty shards resume and what they need to (ingest/tax/checkpoints.py)."""

    starts: tuple[int, ...]  # the history's tax-year starts: where checkpoints are made
    digests: dict[tuple[str, int], Digest]  # of the history just read
    usable: dict[int, bool]  # per start: whether this run's checkpoints there may be resumed
    resume: dict[int, tuple[int, tuple[CheckpointMeta, ...]]]  # shard -> (start, to load)
    written_us: int  # the bodies' version


@dataclass
class ShardOutcome:
    summary: ShardSummary
    balances: list[BalanceRecord]
    view_rows: int
    resumed_at: int | None = None
    rows_computed: int = 0
    checkpoints: int = 0


# --- tasks ------------------------------------------------------------------------------------
def read_task(
    ctx: JobContext, months: list[int], starts: list[int], reach: int
) -> tuple[HistoryStats, pa.Table, int, pa.Table]:
    """A few months of the history: (stats with the rows' checkpoint digests, price needs, row
    count, rows)."""
    rows = read_transactions(ctx.session(), ctx.job.user_id, months)
    needs = price_needs(rows, currency=ctx.currency).select(["asset", "ts"])
    stats = history_stats(rows)
    stats = replace(stats, digests=row_digests(rows, starts, reach))
    return stats, needs, rows.num_rows, rows


def split_task(rows: pa.Table, plan: ShardPlan) -> tuple[pa.Table, ...]:
    return tuple(rows.filter(pa.array(shard_mask(rows, shard))) for shard in plan.shards)


def shard_task(
    ctx: JobContext, shard: Shard, options: TaxOptions, rewrite: Rewrite, *pieces: pa.Table
) -> ShardOutcome:
    # The collector paused for the whole task, writes included: re-enabled after the engine,
    # its first pass rescanned every live engine object (1.5 s of a 226k-row shard, profiled).
    with gc_paused():
        return compute_and_write_shard(ctx, shard, options, rewrite, pa.concat_tables(pieces))


def load_resume(ctx: JobContext, shard: Shard, plan: CheckpointPlan | None) -> ShardResume | None:
    """The shard's checkpoints at its resume point, or None (computed from its first row)."""
    if plan is None or shard.index not in plan.resume:
        return None
    start, metas = plan.resume[shard.index]
    try:
        loaded = checkpoint_store.read_checkpoints(ctx.session(), ctx.job.user_id, metas)
    except checkpoint_store.UnreadableCheckpoint as exc:
        log.warning("shard %d computes from its first row: %s", shard.index, exc)
        return None
    return ShardResume(start, loaded)


def compute_and_write_shard(
    ctx: JobContext, shard: Shard, options: TaxOptions, rewrite: Rewrite, rows: pa.Table
) -> ShardOutcome:
    plan = rewrite.checkpoints
    resume = load_resume(ctx, shard, plan)
    if resume is not None:  # nothing before the start is read, valued or walked
        rows = rows_from(rows, resume.start_us)
    valued = value_shard(ctx, rows, rewrite.unavailable_assets)
    result = compute_shard_with(
        valued, shard, options, resume=resume, period_starts=plan.starts if plan else ()
    )
    owned = sorted(r.asset for r in result.assets)
    metrics.tax_asset_computed(len(owned))
    session, user_id = ctx.session(), ctx.job.user_id

    to_write = valued.filter(pa.array(rewrite_mask(valued, rewrite.cutoffs)))
    total = to_write.num_rows
    ctx.progress.report(Stage.TAX, shard.index, 0, total)
    per_tx = result.per_tx
    for offset in range(0, total, VIEW_WRITE_SLICE):
        write_view_slice(ctx, shard, rewrite, to_write.slice(offset, VIEW_WRITE_SLICE), per_tx)
        ctx.progress.report(Stage.TAX, shard.index, min(total, offset + VIEW_WRITE_SLICE), total)

    lines = [line for r in result.assets for line in r.disposals]
    known_years = set(rewrite.known_years)
    if resume is not None:  # the Form 8949 years before the start stay as they are
        method = get_method(options.method)
        known_years = {
            y for y in known_years if method.year_start_us(int(y[:4])) >= resume.start_us
        }
    by_year: dict[str, list[DisposalLine]] = {}
    for line in lines:
        by_year.setdefault(line.tax_year, []).append(line)
    for year in sorted(known_years | set(by_year)):  # a year at a time, like the view slices
        views.delete_disposal_assets(session, user_id, year, owned)
        views.write_disposals(session, user_id, disposal_rows(by_year.get(year, ())))
    findings = result.findings + [f for r in result.assets for f in r.findings]
    views.replace_findings_of_assets(
        session, user_id, owned + ([""] if shard.catch_all else []), finding_rows(findings)
    )
    written = 0
    if plan is not None:  # last: a checkpoint never runs ahead of the rows derived from it
        written = checkpoint_store.write_checkpoints(
            session,
            user_id,
            result.checkpoints,
            digests=plan.digests,
            fingerprint=options.fingerprint,
            usable=plan.usable,
            written_us=plan.written_us,
        )
    return ShardOutcome(
        result.summary(),
        [b for r in result.assets for b in r.balances],
        total,
        resumed_at=resume.start_us if resume is not None else None,
        rows_computed=valued.num_rows,
        checkpoints=written,
    )


def write_view_slice(
    ctx: JobContext,
    shard: Shard,
    rewrite: Rewrite,
    rows: pa.Table,
    per_tx: dict[str, dict[str, TxMetrics]],
) -> None:
    """One slice of the shard's transactions_view writes: the rows it anchors whole (own columns
    and its metrics elements), the others' elements only."""
    session, user_id = ctx.session(), ctx.job.user_id
    anchored = anchor_mask(rows, shard) | anchored_in(rows, rewrite.clean_assets)
    own_rows = view_base_rows(rows.filter(pa.array(anchored)))
    tx_at = views.VIEW_BASE_COLUMNS.index("tx_id")
    views.write_view_rows(session, [(own, per_tx.get(own[tx_at], {})) for own in own_rows])
    others = rows.filter(pa.array(~anchored))  # rows another shard anchors: elements only
    views.write_view_metrics(
        session,
        [
            (user_id, month, ts, tx_id, per_tx[tx_id])
            for month, ts, tx_id in zip(
                month_keys(others.column("timestamp")).tolist(),
                others.column("timestamp").to_pylist(),
                others.column("tx_id").to_pylist(),
            )
            if tx_id in per_tx
        ],
    )


def value_shard(ctx: JobContext, rows: pa.Table, unavailable: Iterable[str]) -> pa.Table:
    """The shard's rows valued from the price cache (its windows were fetched by the stage)."""
    needs = price_needs(rows, currency=ctx.currency)
    prices = None
    if needs.num_rows:
        ts = needs.column("ts")
        prices = load_prices(
            ctx.session(),
            sorted(set(needs.column("asset").to_pylist())),
            pc.min(ts).as_py() - timedelta(days=2),
            pc.max(ts).as_py(),
            currency=ctx.currency.lower(),
        )
    return value_transactions(rows, prices, currency=ctx.currency, unavailable_assets=unavailable)


# --- rows for the writers -------------------------------------------------------------------
def view_base_rows(valued: pa.Table) -> list[tuple]:
    """transactions_view rows' own columns (views.VIEW_BASE_COLUMNS order)."""
    months = month_keys(valued.column("timestamp")).tolist()
    names = [c for c in views.VIEW_BASE_COLUMNS if c != "month"]
    columns = [valued.column(n).to_pylist() for n in names]
    month_at = views.VIEW_BASE_COLUMNS.index("month")
    return [(*row[:month_at], month, *row[month_at:]) for month, row in zip(months, zip(*columns))]


def _midnight(d) -> datetime | None:
    return None if d is None else datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


def disposal_rows(lines: Iterable[DisposalLine]) -> list[tuple]:
    return [
        (
            d.tax_year,
            d.sold_at,
            d.line_id,
            d.asset,
            d.wallet,
            d.quantity,
            _midnight(d.date_acquired),
            d.proceeds,
            d.cost_basis,
            d.gain,
            d.term,
            d.tx_id,
        )
        for d in lines
    ]


def finding_rows(findings: Iterable[Finding]) -> list[tuple]:
    return [(f.kind, f.asset, f.timestamp, f.tx_id, f.detail) for f in findings]


def rewrite_mask(valued: pa.Table, cutoffs: dict[str, datetime] | None) -> np.ndarray:
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


# --- the orchestrator ---------------------------------------------------------------------------
def cutoffs_of(
    ctx: JobContext, done: StageResults, fetched_windows: list, options: TaxOptions
) -> dict[str, datetime] | None:
    """Per asset, the time from which view rows may have changed; None: all of them."""
    if ctx.job.kind != JobKind.UPLOAD:
        return None
    lookback = timedelta(microseconds=options.reach_us)  # transfer window + method look-ahead
    cutoffs: dict[str, datetime] = {}
    ranges = done.ingest.asset_ranges if done.ingest else {}
    for asset, (lo, _hi) in ranges.items():
        cutoffs[asset] = datetime.fromtimestamp(lo, tz=timezone.utc) - lookback
    for asset, start in fetched_windows:
        cutoffs[asset] = min(cutoffs.get(asset, start), start)
    return cutoffs


def month_groups(months: list[int], executor: Executor) -> list[list[int]]:
    """Consecutive months, at least one group per CPU, at most MONTHS_PER_READ months each."""
    n = max(executor.cpus, -(-len(months) // MONTHS_PER_READ))
    size = -(-len(months) // n)
    return [months[i : i + size] for i in range(0, len(months), size)]


def merge_stats(stats: Iterable[HistoryStats]) -> HistoryStats:
    rows: dict[str, int] = {}
    links: dict[str, frozenset[str]] = {}
    digests = []
    for s in stats:
        for asset, n in s.asset_rows.items():
            rows[asset] = rows.get(asset, 0) + n
        for fee, sent in s.withdrawal_fee_links.items():
            links[fee] = links.get(fee, frozenset()) | sent
        digests.append(s.digests)
    return HistoryStats(rows, links, merge_digests(digests))


def dirty_shards(plan: ShardPlan, cutoffs: dict[str, datetime] | None) -> list[Shard]:
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


def stored_summaries(ctx: JobContext, assets: set[str]) -> tuple[ShardSummary, list[BalanceRecord]]:
    """What clean shards computed before, read back: their assets' yearly rows and balances."""
    session, user_id = ctx.session(), ctx.job.user_id
    years = {
        (r["year"], r["asset"]): YearSummary(
            r["proceeds"],
            r["cost_basis"],
            r["short_term_gain"],
            r["long_term_gain"],
            r["income"],
            r["gain"],
        )
        for r in queries.summary_rows(session, user_id)
        if r["asset"] in assets
    }
    balances = [
        BalanceRecord(r["wallet"], r["asset"], r["quantity"], r["cost_basis"])
        for r in queries.balance_rows(session, user_id)
        if r["asset"] in assets
    ]
    return ShardSummary(-1, tuple(sorted(assets)), years, 0, 0, 0, 0), balances


@dataclass
class History:
    """The read step's result: small facts here, the rows in the object store (`groups`)."""

    stats: HistoryStats
    needs: pa.Table
    rows: int
    groups: list[Any]  # handles of each month group's rows
    starts: list[int] = field(default_factory=list)  # tax-year starts within the history


def read_history(
    ctx: JobContext, executor: Executor, months: list[int], starts: list[int], reach: int
) -> History:
    reads = [
        executor.submit(
            read_task, ctx, group, starts, reach, name=f"read:{ctx.job.job_id}:{i}", num_returns=4
        )
        for i, group in enumerate(month_groups(months, executor))
    ]
    needs = [n for n in executor.get([r[1] for r in reads]) if n.num_rows]
    return History(
        stats=merge_stats(executor.get([r[0] for r in reads])),
        needs=pa.concat_tables(needs) if needs else EMPTY_NEEDS.empty_table(),
        rows=sum(executor.get([r[2] for r in reads])),
        groups=[r[3] for r in reads],
        starts=starts,
    )


def plan_rewrite(
    ctx: JobContext,
    done: StageResults,
    history: History,
    report: PriceFetchReport,
    executor: Executor,
    options: TaxOptions,
) -> tuple[ShardPlan, list[Shard], Rewrite]:
    """Who owns which asset, which shards must recompute, and what they rewrite."""
    cutoffs = cutoffs_of(ctx, done, report.fetched_windows, options)
    plan = plan_shards(history.stats, shard_count(executor, sum(history.stats.asset_rows.values())))
    dirty = dirty_shards(plan, cutoffs)
    known_years = tuple(
        sorted({r["year"] for r in queries.summary_rows(ctx.session(), ctx.job.user_id)})
    )
    clean_assets = frozenset(a for s in plan.shards if s not in dirty for a in s.assets)
    checkpoints = (
        plan_checkpoints(ctx, history, dirty, options, report, incremental=cutoffs is not None)
        if ctx.settings.tax_checkpoints
        else None
    )
    return (
        plan,
        dirty,
        Rewrite(
            cutoffs, known_years, frozenset(report.unavailable_assets), clean_assets, checkpoints
        ),
    )


def plan_checkpoints(
    ctx: JobContext,
    history: History,
    dirty: list[Shard],
    options: TaxOptions,
    report: PriceFetchReport,
    *,
    incremental: bool,
) -> CheckpointPlan:
    """Where each dirty shard resumes (an upload only: a recompute changed the settings), and
    whether the checkpoints this run makes may be resumed from later."""
    digests = dict(history.stats.digests)
    now_us = micros_from_datetime(datetime.now(timezone.utc))
    priced = not report.unavailable_assets
    usable = {s: priced and settled(s, options.reach_us, now_us) for s in history.starts}
    resume: dict[int, tuple[int, tuple[CheckpointMeta, ...]]] = {}
    if incremental:
        index = checkpoint_store.read_index(ctx.session(), ctx.job.user_id)
        coverage = read_coverage(
            ctx.session(), history.stats.asset_rows, currency=ctx.currency.lower()
        )
        priced_since = prices_changed(
            (  # fetched_at has whole seconds: the second after, to be safe
                (
                    c.window_start * 1_000_000,
                    None if c.fetched_at is None else (c.fetched_at + 1) * 1_000_000,
                )
                for c in coverage
            ),
            history.starts,
            options.reach_us,
        )
        for shard in dirty:
            keys = set(shard.assets) | ({NO_ASSET} if shard.catch_all else set())
            start = resume_point(
                keys,
                shard.context,
                history.starts,
                digests,
                index,
                options.fingerprint,
                priced_since,
            )
            if start is not None:
                wanted = needed_checkpoints(keys, shard.context, start, history.starts, digests)
                resume[shard.index] = (start, tuple(index[w] for w in wanted))
    return CheckpointPlan(tuple(history.starts), digests, usable, resume, now_us)


def run_shards(
    ctx: JobContext,
    executor: Executor,
    history: History,
    plan: ShardPlan,
    dirty: list[Shard],
    options: TaxOptions,
    rewrite: Rewrite,
) -> list[ShardOutcome]:
    count = len(plan.shards)
    splits = [
        executor.submit(
            split_task, rows, plan, name=f"split:{ctx.job.job_id}:{i}", num_returns=count
        )
        for i, rows in enumerate(history.groups)
    ]
    if count == 1:
        splits = [[pieces] for pieces in splits]
    return executor.get(
        [
            executor.submit(
                shard_task,
                ctx,
                shard,
                options,
                rewrite,
                *[pieces[shard.index] for pieces in splits],
                name=f"tax:{ctx.job.job_id}:{shard.index}",
                memory=shard_memory(shard),
            )
            for shard in dirty
        ]
    )


def history_starts(months: list[int], options: TaxOptions) -> list[int]:
    """The tax-year starts within the months of the history (where checkpoints are made)."""
    first = datetime(months[0] // 100, months[0] % 100, 1, tzinfo=timezone.utc)
    year, month = divmod(months[-1], 100)
    after = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc)
    return period_starts(
        options.method, micros_from_datetime(first), micros_from_datetime(after) - 1
    )


def run_tax(ctx: JobContext, executor: Executor, done: StageResults) -> StageResults:
    # Bad settings fail here, once, not in every shard's task.
    options = TaxOptions.of(ctx.user.method, ctx.user.pooling, ctx.currency, ctx.settings)
    months = sorted(user_months(ctx.session(), ctx.job.user_id))
    if not months:
        return StageResults(tax=TaxStageResult())
    timer = StepTimer()
    ctx.progress.reset(Stage.TAX)
    starts = history_starts(months, options) if ctx.settings.tax_checkpoints else []
    history = read_history(ctx, executor, months, starts, options.reach_us)
    timer.done("read")
    report = fetch_prices(history.needs, settings=ctx.settings, currency=ctx.currency)
    timer.done("prices")
    plan, dirty, rewrite = plan_rewrite(ctx, done, history, report, executor, options)
    outcomes = run_shards(ctx, executor, history, plan, dirty, options, rewrite)
    timer.done("shards")
    write_user_totals(ctx, outcomes, set(history.stats.asset_rows), rewrite)
    timer.done("totals")
    return StageResults(
        tax=TaxStageResult(
            assets=len(history.stats.asset_rows),
            history_rows=history.rows,
            view_rows_written=sum(o.view_rows for o in outcomes),
            shards=len(plan.shards),
            shards_computed=len(dirty),
            shards_resumed=sum(o.resumed_at is not None for o in outcomes),
            rows_computed=sum(o.rows_computed for o in outcomes),
            checkpoints_written=sum(o.checkpoints for o in outcomes),
            seconds=timer.total,
            steps=timer.steps,
        )
    )


def write_user_totals(
    ctx: JobContext, outcomes: list[ShardOutcome], assets: set[str], rewrite: Rewrite
) -> None:
    """yearly_summary and balances from the recomputed shards' summaries plus, for the assets
    no shard recomputed, their stored rows."""
    summaries = [o.summary for o in outcomes]
    balances = [b for o in outcomes for b in o.balances]
    clean = assets - {a for s in summaries for a in s.assets}
    if clean:
        kept, kept_balances = stored_summaries(ctx, clean)
        summaries.append(kept)
        balances += kept_balances
    totals = combine_summaries(summaries)
    rows = [
        (
            year,
            queries.TOTALS_ASSET,
            s.proceeds,
            s.cost_basis,
            s.short_term_gain,
            s.long_term_gain,
            s.gain,
            s.income,
        )
        for year, s in totals.years.items()
    ]
    rows += [
        (
            year,
            asset,
            s.proceeds,
            s.cost_basis,
            s.short_term_gain,
            s.long_term_gain,
            s.gain,
            s.income,
        )
        for (year, asset), s in totals.years_by_asset.items()
    ]
    session, user_id = ctx.session(), ctx.job.user_id
    views.replace_yearly_summary(session, user_id, rows)
    views.replace_balances(
        session,
        user_id,
        [
            (b.wallet, b.asset, b.quantity, b.cost_basis)
            for b in sorted(balances, key=lambda b: (b.asset, b.wallet))
        ],
    )
    if rewrite.cutoffs is None:  # a recompute: the years no longer produced (another method's)
        views.delete_disposal_years(session, user_id, set(rewrite.known_years) - set(totals.years))
