"""The tax stage, composed once over its ports (ports.py): a job runs it on Ray with Cassandra
adapters (`run_tax`), `ledgerflow tax` in process with in-memory ones (cli.py), the same code.

    read   read_task x month groups   rows of a few months, corrected (corrected.py) -> small
                                      stats + checkpoint digests + price needs + what the job's
                                      corrections changed there; the rows stay in the object store
    prices (here)                     the missing price windows fetched once (PriceSource.fetch)
    plan   (here)                     plan.py, pure: shards by row counts, which recompute, what
                                      they rewrite and keep, where each resumes from checkpoints;
                                      a correction counts as new rows of the assets it changes,
                                      at the earliest time it changes them
    split  split_task x month groups  each group's rows -> one piece per shard
    shard  shard_task x dirty shards  from its resume point, a tax year at a time (ingest/tax/
                                      shards.py ShardStream): value the period's rows, reconcile,
                                      cost basis per asset from the state the last period left,
                                      write the period's view rows in slices and the Form 8949
                                      lines of the tax years it ends; then commit findings and,
                                      last, its checkpoints (ViewSink)
    totals (here)                     yearly summary and balances from the shards' summaries plus
                                      what the clean shards stored before

The orchestrator holds summaries only; a task holds one month group or one shard, never the
whole history.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest.load import jobs
from ingest.observe import metrics
from ingest.pipeline.context import JobContext, NoProgress, ProgressReporter
from ingest.pipeline.executors import Executor
from ingest.pipeline.results import StageResults, TaxStageResult
from ingest.pipeline.tax.cassandra import cassandra_ports
from ingest.pipeline.tax.corrected import (
    CorrectionOutcome,
    GroupChanges,
    foreign_bases,
    merge_changes,
    touched_ranges,
)
from ingest.pipeline.tax.options import (
    FRESH_WORKER_PLANNED_ROWS,
    SHARD_PERIOD_ROWS,
    TaxOptions,
    largest_period_rows,
    shard_count,
    shard_memory,
)
from ingest.pipeline.tax.plan import (
    CheckpointPlan,
    PlanInputs,
    Rewrite,
    StoredState,
    TaxPlan,
    history_starts,
    month_groups,
    plan_tax,
    rewrite_mask,
)
from ingest.pipeline.tax.ports import (
    CheckpointWrite,
    PriceSource,
    ShardCommit,
    TaxPorts,
    UnreadableCheckpoint,
)
from ingest.prices.valuation import price_needs, value_transactions
from ingest.tax.checkpoints import ShardResume, merge_digests, row_digests
from ingest.tax.engine import gc_paused
from ingest.tax.methods import get_method
from ingest.tax.records import BalanceRecord, DisposalLine
from ingest.tax.shards import (
    HistoryStats,
    Shard,
    ShardPlan,
    ShardStream,
    ShardSummary,
    anchor_mask,
    anchored_in,
    combine_summaries,
    history_stats,
    rows_from,
    shard_mask,
)
from ingest.tax.years import datetime_from_micros, micros_from_datetime
from ingest.vocabulary import JobKind, Stage

log = logging.getLogger(__name__)

# View rows are bound and written this many at a time: the driver's bound statements and their
# Python values (about 2 KB a row) then exist for one slice, not for the whole shard.
VIEW_WRITE_SLICE = 20_000
EMPTY_NEEDS = pa.schema([("asset", pa.string()), ("ts", pa.timestamp("us", tz="UTC"))])


@dataclass(frozen=True)
class TaxRun:
    """One run of the stage: its options and what it may skip."""

    options: TaxOptions
    label: str  # tasks are named read:<label>:<n>, split:..., tax:<label>:<shard>
    # what the upload touched: asset -> (earliest, latest) epoch seconds; None: recompute all.
    # A run whose history has new corrections (CorrectedHistory.new) adds what they change.
    touched: Mapping[str, tuple[float, float]] | None = None
    checkpoints: bool = False  # make (and, for an upload, resume from) checkpoints
    # the history's rows when known before reading it (sizes the read fan-out)
    rows_hint: int | None = None
    progress: ProgressReporter = field(default_factory=NoProgress)


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


@dataclass
class ShardOutcome:
    summary: ShardSummary
    balances: list[BalanceRecord]
    view_rows: int
    resumed_at: int | None = None
    rows_computed: int = 0
    checkpoints: int = 0


@dataclass
class History:
    """The read step's result: small facts here, the rows in the object store (`groups`)."""

    stats: HistoryStats
    needs: pa.Table
    rows: int
    groups: list[Any]  # handles of each month group's rows
    corrections: CorrectionOutcome  # what the run's new corrections change, merged


# --- the composition ----------------------------------------------------------------------------
def compose_tax(ports: TaxPorts, executor: Executor, run: TaxRun) -> TaxStageResult:
    """The whole tax stage of one user's history over ``ports``."""
    months = ports.history.months()
    if not months:
        return TaxStageResult()
    timer = StepTimer()
    run.progress.reset(Stage.TAX)
    options = run.options
    starts = history_starts(months, options.method) if run.checkpoints else []
    history = read_history(ports, executor, run, months, starts)
    timer.done("read")
    report = ports.prices.fetch(history.needs)
    timer.done("prices")
    assets = set(history.stats.asset_rows)
    touched = with_corrections(run.touched, history.corrections)
    incremental = run.checkpoints and touched is not None
    plan = plan_tax(
        PlanInputs(
            stats=history.stats,
            shard_count=shard_count(executor, sum(history.stats.asset_rows.values())),
            touched=touched,
            known_years=ports.views.stored_years(),
            fetched_windows=report.fetched_windows,
            unavailable_assets=frozenset(report.unavailable_assets),
            starts=tuple(starts),
            checkpoints=run.checkpoints,
            stored=StoredState(ports.checkpoints.index(), ports.prices.coverage(assets))
            if incremental
            else None,
            now_us=micros_from_datetime(datetime.now(timezone.utc)),
        ),
        options,
    )
    if history.corrections.removed is not None:  # rows the new corrections took out
        ports.views.remove(history.corrections.removed)
    outcomes = run_shards(ports, executor, run, history, plan)
    timer.done("shards")
    vanished = set(touched or ()) - assets  # their last row taken out: no shard owns them
    if vanished:
        ports.views.drop_assets(vanished, plan.rewrite.known_years)
    write_totals(ports, outcomes, assets, plan.rewrite)
    timer.done("totals")
    resumed = [o.resumed_at for o in outcomes]
    return TaxStageResult(
        corrections_touched=dict(sorted(history.corrections.touched.items())),
        recomputed_assets=sorted(touched) if touched is not None else sorted(assets),
        recompute_from=None
        if not resumed or None in resumed
        else datetime_from_micros(min(r for r in resumed if r is not None)),
        corrections_unapplied={
            str(k): v
            for k, v in (
                history.corrections.unapplied
                | foreign_bases(ports.history.corrections, options.currency)
            ).items()
        },
        assets=len(assets),
        history_rows=history.rows,
        view_rows_written=sum(o.view_rows for o in outcomes),
        shards=len(plan.shards.shards),
        shards_computed=len(plan.dirty),
        shards_resumed=sum(o.resumed_at is not None for o in outcomes),
        rows_computed=sum(o.rows_computed for o in outcomes),
        checkpoints_written=sum(o.checkpoints for o in outcomes),
        rows_held=max((o.summary.rows_held for o in outcomes), default=0),
        seconds=timer.total,
        steps=timer.steps,
    )


def with_corrections(
    touched: Mapping[str, tuple[float, float]] | None, corrections: CorrectionOutcome
) -> dict[str, tuple[float, float]] | None:
    """What the run touched: the upload's rows and the new corrections' changes (a correction
    is new rows of each asset it changes, at the earliest time it changes it); None: all."""
    if touched is None:
        return None
    out = dict(touched)
    for asset, (lo, hi) in touched_ranges(corrections.touched).items():
        known = out.get(asset)
        out[asset] = (lo, hi) if known is None else (min(lo, known[0]), max(hi, known[1]))
    return out


def run_tax(ctx: JobContext, executor: Executor, done: StageResults) -> StageResults:
    """A job's tax stage: the composition over Cassandra. An upload and a correction job are
    incremental (what the upload stored, what the correction changed); a settings recompute is
    not."""
    # Bad settings fail here, once, not in every shard's task.
    options = TaxOptions.of(ctx.user.method, ctx.user.pooling, ctx.currency, ctx.settings)
    touched: dict[str, tuple[float, float]] | None = None
    prior_months = None  # a recompute or a correction job rewrites rows of any month
    if ctx.job.kind == JobKind.UPLOAD:
        touched = done.ingest.asset_ranges if done.ingest else {}
        if done.ingest and done.ingest.stored_months is not None:
            prior_months = frozenset(done.ingest.stored_months)
    elif ctx.job.kind == JobKind.CORRECTION:
        touched = {}
    run = TaxRun(
        options,
        label=str(ctx.job.job_id),
        touched=touched,
        checkpoints=ctx.settings.tax_checkpoints,
        progress=ctx.progress,
        rows_hint=history_rows_hint(ctx, done),
    )
    ports = cassandra_ports(ctx, new=frozenset(done.corrections or ()), prior_months=prior_months)
    return StageResults(tax=compose_tax(ports, executor, run))


def history_rows_hint(ctx: JobContext, done: StageResults) -> int | None:
    """The history's rows before it is read (they size the read fan-out): a first upload's are
    its file's; a later job's, the rows the user's last tax run read plus those this upload
    added (corrections change a few: a hint, not a count). None: not known."""
    ingest = done.ingest if ctx.job.kind == JobKind.UPLOAD else None
    if ingest is not None and ingest.stored_months == []:  # a first upload
        return ingest.accepted
    last = jobs.last_history_rows(ctx.session(), ctx.job.user_id, before=ctx.job.job_id)
    if last is None:
        return None
    return last + (ingest.accepted - ingest.already_present if ingest is not None else 0)


# --- the steps ------------------------------------------------------------------------------------
def read_history(
    ports: TaxPorts, executor: Executor, run: TaxRun, months: list[int], starts: list[int]
) -> History:
    reach = run.options.reach_us
    currency = run.options.currency
    reads = [
        executor.submit(
            read_task,
            ports,
            group,
            starts,
            reach,
            currency,
            name=f"read:{run.label}:{i}",
            num_returns=5,
        )
        for i, group in enumerate(month_groups(months, executor.cpus, run.rows_hint))
    ]
    needs = [n for n in executor.get([r[1] for r in reads]) if n.num_rows]
    return History(
        stats=merge_stats(executor.get([r[0] for r in reads])),
        needs=pa.concat_tables(needs) if needs else EMPTY_NEEDS.empty_table(),
        rows=sum(executor.get([r[2] for r in reads])),
        groups=[r[3] for r in reads],
        corrections=merge_changes(ports.history, executor.get([r[4] for r in reads])),
    )


def run_shards(
    ports: TaxPorts, executor: Executor, run: TaxRun, history: History, plan: TaxPlan
) -> list[ShardOutcome]:
    count = len(plan.shards.shards)
    starts = plan.rewrite.checkpoints.starts if plan.rewrite.checkpoints is not None else ()
    if count == 1:  # the one shard reads every row (shard_mask of a lone catch-all): no split
        splits = [[rows] for rows in history.groups]
    else:
        splits = [
            executor.submit(
                split_task, rows, plan.shards, name=f"split:{run.label}:{i}", num_returns=count
            )
            for i, rows in enumerate(history.groups)
        ]
    return executor.get(
        [
            executor.submit(
                shard_task,
                ports,
                run,
                shard,
                plan.rewrite,
                *[pieces[shard.index] for pieces in splits],
                name=f"tax:{run.label}:{shard.index}",
                memory=shard_memory(shard, largest_period_rows(shard, history.stats, starts)),
                fresh_worker=shard.rows > FRESH_WORKER_PLANNED_ROWS,
            )
            for shard in plan.dirty
        ]
    )


def write_totals(
    ports: TaxPorts, outcomes: list[ShardOutcome], assets: set[str], rewrite: Rewrite
) -> None:
    """Yearly summary and balances from the recomputed shards' summaries plus, for the assets
    no shard recomputed, what was stored for them."""
    summaries = [o.summary for o in outcomes]
    balances = [b for o in outcomes for b in o.balances]
    clean = assets - {a for s in summaries for a in s.assets}
    if clean:
        kept, kept_balances = ports.views.stored_totals(clean)
        summaries.append(kept)
        balances += kept_balances
    totals = combine_summaries(summaries)
    # a recompute: the years no longer produced (another method's)
    dropped = set(rewrite.known_years) - set(totals.years) if rewrite.recompute else set()
    ports.views.write_totals(totals, sorted(balances, key=lambda b: (b.asset, b.wallet)), dropped)


# --- tasks ----------------------------------------------------------------------------------------
def read_task(
    ports: TaxPorts, months: list[int], starts: list[int], reach: int, currency: str
) -> tuple[HistoryStats, pa.Table, int, pa.Table, GroupChanges]:
    """A few months of the corrected history: (stats with the rows' checkpoint digests, price
    needs, row count, rows, what the run's new corrections changed in them). The digests count
    the corrections in effect too (CorrectedHistory.digest_rows): a checkpoint made before a
    correction that changes its period is not resumed after it."""
    rows, changes = ports.history.read_with_changes(months)
    needs = price_needs(rows, currency=currency).select(["asset", "ts"])
    digests = merge_digests(
        [
            row_digests(rows, starts, reach),
            row_digests(ports.history.digest_rows(rows), starts, reach),
        ]
    )
    stats = replace(history_stats(rows), digests=digests)
    return stats, needs, rows.num_rows, rows, changes


def split_task(rows: pa.Table, plan: ShardPlan) -> tuple[pa.Table, ...] | pa.Table:
    """One piece per shard; the piece itself when there is one shard (one return value)."""
    pieces = tuple(rows.filter(pa.array(shard_mask(rows, shard))) for shard in plan.shards)
    return pieces[0] if len(pieces) == 1 else pieces


def shard_task(
    ports: TaxPorts, run: TaxRun, shard: Shard, rewrite: Rewrite, *pieces: pa.Table
) -> ShardOutcome:
    # The collector paused for the whole task, writes included: re-enabled after the engine,
    # its first pass rescanned every live engine object (1.5 s of a 226k-row shard, profiled).
    # compute_and_write_shard collects the young generations itself after each period.
    with gc_paused():
        return compute_and_write_shard(ports, run, shard, rewrite, pa.concat_tables(pieces))


def load_resume(ports: TaxPorts, shard: Shard, plan: CheckpointPlan | None) -> ShardResume | None:
    """The shard's checkpoints at its resume point, or None (computed from its first row)."""
    if plan is None or shard.index not in plan.resume:
        return None
    start, metas = plan.resume[shard.index]
    try:
        loaded = ports.checkpoints.get(metas)
    except UnreadableCheckpoint as exc:
        log.warning("shard %d computes from its first row: %s", shard.index, exc)
        return None
    return ShardResume(start, loaded)


def compute_and_write_shard(
    ports: TaxPorts, run: TaxRun, shard: Shard, rewrite: Rewrite, rows: pa.Table
) -> ShardOutcome:
    """The shard walked period by period (ingest/tax/shards.py ShardStream): each period's rows
    are valued, walked from the state the last one left and their view cells written before
    the next period is taken, so the task holds a period's Python rows, not its history's."""
    options, plan = run.options, rewrite.checkpoints
    # the user's transfer pairs and stated bases, over all the shard's rows (a pair's legs may
    # lie on both sides of the resume point or of a period's end: the checkpoint carries it)
    rules = ports.history.rules_for(rows, options.currency)
    resume = load_resume(ports, shard, plan)
    if resume is not None:  # nothing before the start is read, valued or walked
        rows = rows_from(rows, resume.start_us)
    stream = ShardStream(
        rows,
        shard,
        method=options.method,
        pooling=options.pooling,
        currency=options.currency,
        transfer_window_hours=options.transfer_window_hours,
        transfer_max_fee_share=options.transfer_max_fee_share,
        resume=resume,
        period_starts=plan.starts if plan else (),
        rules=rules,
        value=lambda period: value_rows(
            ports.prices, period, options.currency, rewrite.unavailable_assets
        ),
        keep_lines=False,  # written by tax year as the walk passes its end
        period_rows=SHARD_PERIOD_ROWS,
    )
    method = get_method(options.method)
    owned = sorted(stream.shard.assets)
    open_years: dict[str, list[DisposalLine]] = {}  # their lines, until the walk is past them
    written_years: set[str] = set()
    total = int(rewrite_mask(rows, rewrite.cutoffs).sum())
    run.progress.report(Stage.TAX, shard.index, 0, total)
    written = 0
    for period in stream.periods():
        to_write = period.rows.filter(pa.array(rewrite_mask(period.rows, rewrite.cutoffs)))
        for offset in range(0, to_write.num_rows, VIEW_WRITE_SLICE):
            rows_slice = to_write.slice(offset, VIEW_WRITE_SLICE)
            anchored = anchor_mask(rows_slice, shard) | anchored_in(
                rows_slice, rewrite.clean_assets
            )
            ports.views.write(shard, rows_slice, anchored, period.per_tx)
            written += rows_slice.num_rows
            run.progress.report(Stage.TAX, shard.index, written, total)
        for line in period.disposals:
            open_years.setdefault(line.tax_year, []).append(line)
        for year in sorted(open_years):
            if period.end_us is None or method.year_start_us(int(year[:4]) + 1) <= period.end_us:
                ports.views.write_lines(shard, owned, year, open_years.pop(year))
                written_years.add(year)
        del period, to_write  # not held while the stream walks the next period
        # The collector is paused for the task (shard_task), and a period leaves reference
        # cycles (most likely the driver's write futures; the pure walk leaves none): collected
        # here, or they pile up over the task (24-119k objects and 10-70 MB per period of the
        # 600k-row file, so the worker grew with the history). Generations 0 and 1: what this
        # period and the one before allocated, not the walk state kept from earlier periods.
        gc.collect(1)
    result = stream.result()
    metrics.tax_asset_computed(len(result.assets))

    years = set(rewrite.known_years) - written_years  # stored before, not produced now
    if resume is not None:  # the Form 8949 years before the start stay as they are
        years = {y for y in years if method.year_start_us(int(y[:4])) >= resume.start_us}
    checkpoints = None
    if plan is not None:
        checkpoints = CheckpointWrite(
            result.checkpoints, plan.digests, options.fingerprint, plan.usable, plan.written_us
        )
    committed = ports.views.commit(ShardCommit(shard, result, sorted(years), checkpoints))
    return ShardOutcome(
        result.summary(),
        [b for r in result.assets for b in r.balances],
        written,
        resumed_at=resume.start_us if resume is not None else None,
        rows_computed=rows.num_rows,
        checkpoints=committed,
    )


def value_rows(
    prices: PriceSource, rows: pa.Table, currency: str, unavailable: frozenset[str]
) -> pa.Table:
    """The shard's rows valued (its price windows were fetched by the stage)."""
    needs = price_needs(rows, currency=currency)
    points = None
    if needs.num_rows:
        ts = needs.column("ts")
        points = prices.load(
            sorted(set(needs.column("asset").to_pylist())),
            pc.min(ts).as_py() - timedelta(days=2),
            pc.max(ts).as_py(),
        )
    return value_transactions(rows, points, currency=currency, unavailable_assets=unavailable)


def merge_stats(stats: list[HistoryStats]) -> HistoryStats:
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
