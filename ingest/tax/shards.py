"""The tax engine cut into shards that each own some assets: pure (no Ray, no Cassandra).

Once rows are valued, everything the engine does is per asset: transfers match within one asset
(ingest.tax.reconcile keys deposits and taken deposits by asset), lots, pools, UK matching and
negative balances live in one asset's walk. A shard therefore computes its assets exactly from
the rows that touch them, and the results equal ``engine.compute`` on the whole history
(tests/test_tax_shards.py pins it for every method and pooling).

    stats = history_stats(valued)                          # or kept up to date at store time
    plan = plan_shards(stats, shard_count=4)               # who owns which asset
    tables = split_history(valued, plan)                   # or: each shard reads its own rows
    results = [compute_shard(t, s, method=..., pooling=...) for t, s in zip(tables, plan.shards)]
    # or, holding one period's rows at a time (what the tax stage's shard task runs):
    stream = ShardStream(t, s, method=..., pooling=...)
    for period in stream.periods(): ...                    # write period.rows' view cells
    result = stream.result()                               # == compute_shard's (per_tx given per period)
    totals = combine_summaries([r.summary() for r in results])   # small: per (year, asset)
    full = merge_shards(results, method=..., pooling=..., currency=...)  # == engine.compute

What a shard reads: every row whose sent, received or fee asset it owns, plus the deposit and
withdrawal rows of its *context* assets. Why context: a withdrawal of A paying its fee in B makes
a B disposal whose leg number (part of the line id) follows A's events in that row, and A's
events depend on whether A's withdrawal matched a deposit with a loss (a transfer_fee disposal
comes first). The shard owning B therefore reconciles A too (A's transfer rows are enough; only
A's matches are used, A's events and findings are dropped). Rows no asset of the plan claims
(no asset at all, or an asset the plan did not know) belong to shard 0.

Findings: reconciliation and row findings are kept by the shard owning the finding's asset
(shard 0 for none), so a row seen by two shards reports once; walk findings are per asset.

How shards write one transactions_view row without reading it (Cassandra upserts are per cell,
and a map element is its own cell):
- the row's own columns (wallet, type, label, sides, price, price_source, value, tx_hash) are
  written by the shard owning the row's *anchor* asset, ``anchor_asset(row)``: the first of sent,
  received, fee asset that is set (shard 0 for a row without one). Other shards never write them.
- every shard writes, per asset A it owns and the transaction touched, one element
  ``metrics[A] = (proceeds, cost_basis, gain, term, acquired_cost, balance_after, flags)``
  (``UPDATE transactions_view SET metrics = metrics + ? ...`` with the shard's elements: a map
  append, no read). The element is A's own ``TxMetrics`` (``ShardResult.per_tx``); the set of
  assets of a transaction is fixed by its row, so an element is always overwritten whole and
  none goes stale.
- the reader folds the elements, exactly as ``engine._combine`` does: money sums of the non-null
  values (null when every element is null), term by ``engine.combine_terms``, balance_after =
  {A: element's balance}, flags = union (``fold_metrics`` below, used by ingest.load.queries).
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from operator import attrgetter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.normalize.canonical import ASSET_COLUMNS, TxType
from ingest.tax.checkpoints import (
    NO_ASSET,
    AssetCheckpoint,
    Digest,
    ShardResume,
    make_checkpoints,
    reach_us,
)
from ingest.tax.checkpoints import (
    period_starts as tax_year_starts,
)
from ingest.tax.engine import (
    PreparedHistory,
    _add,
    _sum_summaries,
    add_years,
    check_options,
    combine_terms,
    compute_asset,
    gc_paused,
    merge,
    sort_findings,
    summarize,
)
from ingest.tax.events import Event, build_events, read_columns, transfer_legs
from ingest.tax.numbers import tax_context
from ingest.tax.reconcile import NO_RULES, TransferMatch, UserRules, reconcile
from ingest.tax.records import (
    AssetResult,
    DisposalLine,
    Finding,
    IncomeRecord,
    TaxResult,
    TxMetrics,
    YearSummary,
)
from ingest.tax.years import micros_from_datetime

_TRANSFER_TYPES = (TxType.DEPOSIT.value, TxType.WITHDRAWAL.value)


@dataclass(frozen=True, slots=True)
class HistoryStats:
    """What planning needs, small: rows per asset (a row counts once for each distinct asset it
    names) and, per fee asset, the sent assets of withdrawals paying their fee in it."""

    asset_rows: Mapping[str, int]
    withdrawal_fee_links: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # (asset key, period start) -> the rows' digest (ingest.tax.checkpoints.row_digests)
    digests: Mapping[tuple[str, int], Digest] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    assets: frozenset[str]  # owned: computed and written by this shard
    context: frozenset[str]  # reconciled only (their deposit/withdrawal rows are read)
    rows: int  # planned load: sum of asset_rows of `assets`
    # shard 0 only: the assets other shards own. Shard 0 also owns rows naming no asset and any
    # asset the plan did not know (stats older than the rows), so nothing is ever lost.
    others: frozenset[str] = frozenset()

    @property
    def catch_all(self) -> bool:
        return self.index == 0


@dataclass(frozen=True, slots=True)
class ShardPlan:
    shards: tuple[Shard, ...]
    owner: Mapping[str, int]  # asset -> shard index

    def shard_of(self, asset: str | None) -> int:
        return self.owner.get(asset, 0) if asset is not None else 0


@dataclass(slots=True)
class ShardSummary:
    """What the orchestrator keeps of a shard: totals per (tax year, asset) and counts."""

    index: int
    assets: tuple[str, ...]
    years_by_asset: dict[tuple[str, str], YearSummary]
    rows_read: int
    disposals: int
    income: int
    findings: int
    # the most rows the walk held at once (a streamed shard: one period's and its look-ahead;
    # else every row it read): the instrument of its memory bound
    rows_held: int = 0


@dataclass(slots=True)
class ShardResult:
    """One shard's share of the TaxResult: per owned asset the engine's AssetResult (its
    disposals, income, balances, walk findings, per-tx metrics of that asset, years), and the
    reconciliation / row findings this shard owns."""

    index: int
    method: str
    pooling: str
    currency: str
    assets: list[AssetResult]  # sorted by asset
    findings: list[Finding]  # reconcile + row findings owned here, sorted
    rows_read: int = 0
    checkpoints: list[AssetCheckpoint] = field(default_factory=list)
    rows_held: int = 0  # ShardSummary.rows_held (0: not streamed, rows_read held at once)
    lines_given: int = 0  # Form 8949 lines a streamed shard gave per period, not in ``assets``

    @property
    def per_tx(self) -> dict[str, dict[str, TxMetrics]]:
        """tx_id -> {asset: that asset's metrics}: the ``metrics[A]`` elements to write."""
        out: dict[str, dict[str, TxMetrics]] = defaultdict(dict)
        for result in self.assets:
            for tx_id, metrics in result.per_tx.items():
                out[tx_id][result.asset] = metrics
        return dict(out)

    def summary(self) -> ShardSummary:
        years = {(year, r.asset): s for r in self.assets for year, s in r.years.items()}
        return ShardSummary(
            index=self.index,
            assets=tuple(r.asset for r in self.assets),
            years_by_asset=dict(sorted(years.items())),
            rows_read=self.rows_read,
            disposals=self.lines_given + sum(len(r.disposals) for r in self.assets),
            income=sum(len(r.income) for r in self.assets),
            findings=len(self.findings) + sum(len(r.findings) for r in self.assets),
            rows_held=self.rows_held or self.rows_read,
        )


@dataclass(slots=True)
class UserTotals:
    years: dict[str, YearSummary]  # the yearly '*' rows
    years_by_asset: dict[tuple[str, str], YearSummary]  # (tax year, asset)


# --- (a) planning --------------------------------------------------------------------------
def history_stats(tx: pa.Table) -> HistoryStats:
    """Rows per asset and withdrawal fee links of a (canonical or valued) table."""
    counts: Counter[str] = Counter()
    assets = [tx.column(name).to_pylist() for name in ASSET_COLUMNS]
    for row_assets in zip(*assets):
        counts.update({a for a in row_assets if a is not None})
    links: dict[str, set[str]] = defaultdict(set)
    kinds = tx.column("type").to_pylist()
    for kind, sent, fee in zip(kinds, assets[0], assets[2]):
        if kind == TxType.WITHDRAWAL.value and sent is not None and fee is not None and fee != sent:
            links[fee].add(sent)
    return HistoryStats(dict(counts), {k: frozenset(v) for k, v in links.items()})


def plan_shards(stats: HistoryStats, shard_count: int) -> ShardPlan:
    """Assign assets to at most ``shard_count`` shards, balanced by rows: largest asset first onto
    the least loaded shard (a dominant asset ends up alone, small ones are grouped); ties by name,
    so the plan is deterministic. Context assets follow from the fee links."""
    if shard_count < 1:
        raise ValueError("shard_count must be at least 1")
    ranked = sorted(stats.asset_rows.items(), key=lambda item: (-item[1], item[0]))
    count = max(1, min(shard_count, len(ranked)))
    heap = [(0, index) for index in range(count)]
    owned: list[list[str]] = [[] for _ in range(count)]
    loads = [0] * count
    for asset, rows in ranked:
        load, index = heapq.heappop(heap)
        owned[index].append(asset)
        loads[index] = load + rows
        heapq.heappush(heap, (loads[index], index))
    owner = {asset: index for index, assets in enumerate(owned) for asset in assets}
    shards = []
    for index, assets in enumerate(owned):
        mine = frozenset(assets)
        context = frozenset(
            sent
            for fee in mine
            for sent in stats.withdrawal_fee_links.get(fee, ())
            if sent not in mine
        )
        others = frozenset(owner) - mine if index == 0 else frozenset()
        shards.append(Shard(index, mine, context, loads[index], others))
    return ShardPlan(tuple(shards), owner)


def anchor_asset(
    sent_asset: str | None, received_asset: str | None, fee_asset: str | None
) -> str | None:
    """The asset whose shard writes a view row's own columns."""
    return sent_asset or received_asset or fee_asset


# --- (b) splitting -------------------------------------------------------------------------
def shard_mask(tx: pa.Table, shard: Shard) -> np.ndarray:
    """Rows of ``tx`` that ``shard`` reads: rows naming an owned asset, deposit/withdrawal rows of
    its context assets, and (shard 0) rows naming no asset another shard owns."""
    n = tx.num_rows
    mask = np.zeros(n, dtype=bool)
    owned = pa.array(sorted(shard.assets), pa.string())
    for name in ASSET_COLUMNS:
        mask |= _is_in(tx.column(name), owned)
    if shard.context:
        context = pa.array(sorted(shard.context), pa.string())
        transfer = _is_in(tx.column("type"), pa.array(_TRANSFER_TYPES))
        mask |= transfer & (
            _is_in(tx.column("sent_asset"), context) | _is_in(tx.column("received_asset"), context)
        )
    if shard.catch_all:  # rows naming no asset, or one the plan does not know
        planned = pa.array(sorted(shard.others | shard.assets), pa.string())
        named = np.zeros(n, dtype=bool)
        for name in ASSET_COLUMNS:
            column = tx.column(name)
            valid = pc.is_valid(column).to_numpy(zero_copy_only=False)
            named |= valid
            mask |= valid & ~_is_in(column, planned)
        mask |= ~named
    return mask


def anchored_in(tx: pa.Table, assets: frozenset[str]) -> np.ndarray:
    """Rows of ``tx`` whose anchor asset (``anchor_asset``) is in ``assets``."""
    anchor = pc.coalesce(*(tx.column(name) for name in ASSET_COLUMNS))
    return _is_in(anchor, pa.array(sorted(assets), pa.string()))


def anchor_mask(tx: pa.Table, shard: Shard) -> np.ndarray:
    """Rows of ``tx`` whose own view columns ``shard`` writes (their anchor asset is its own;
    shard 0 also takes rows without one or with an asset the plan does not know). Over a plan's
    shards every row is anchored exactly once."""
    mask = anchored_in(tx, shard.assets)
    if shard.catch_all:
        mask |= ~anchored_in(tx, shard.others | shard.assets)
    return mask


def split_history(tx: pa.Table, plan: ShardPlan) -> list[pa.Table]:
    """Per shard, the rows it reads (a row naming assets of two shards goes to both)."""
    return [tx.filter(pa.array(shard_mask(tx, shard))) for shard in plan.shards]


def _is_in(column: pa.ChunkedArray, values: pa.Array) -> np.ndarray:
    return pc.fill_null(pc.is_in(column, value_set=values), False).to_numpy(zero_copy_only=False)


# --- (c) one shard ---------------------------------------------------------------------------
def compute_shard(
    tx: pa.Table,
    shard: Shard,
    *,
    method: str,
    pooling: str,
    currency: str = "USD",
    transfer_window_hours: float = 24,
    transfer_max_fee_share: float = 0.05,
    resume: ShardResume | None = None,
    period_starts: Sequence[int] = (),
    rules: UserRules = NO_RULES,
) -> ShardResult:
    """Reconcile and compute the shard's assets from the rows it reads (``shard_mask``).

    ``resume``: start at its period start from its checkpoints (ingest.tax.checkpoints); rows
    before it are ignored, and disposals, income and per-tx metrics are those from it on (years,
    findings and balances are whole). ``period_starts``: where to make checkpoints
    (``ShardResult.checkpoints``; only those after the resume point)."""
    return _walk_shard(
        tx,
        shard,
        method=method,
        pooling=pooling,
        currency=currency,
        transfer_window_hours=transfer_window_hours,
        transfer_max_fee_share=transfer_max_fee_share,
        resume=resume,
        period_starts=period_starts,
        rules=rules,
    )[0]


def _walk_shard(
    tx: pa.Table,
    shard: Shard,
    *,
    method: str,
    pooling: str,
    currency: str,
    transfer_window_hours: float,
    transfer_max_fee_share: float,
    resume: ShardResume | None,
    period_starts: Sequence[int],
    rules: UserRules,
) -> tuple[ShardResult, list[TransferMatch]]:
    """compute_shard, and every transfer match it used (carried ones included, context assets'
    too): a streamed walk carries the context assets' matches that cross a period's end."""
    accounting = check_options(method, pooling)
    if resume is not None:
        tx = rows_from(tx, resume.start_us)
        period_starts = [s for s in period_starts if s > resume.start_us]
    with gc_paused():
        columns = read_columns(tx)
        owned = shard.assets
        if shard.catch_all:  # adopt what no other shard owns
            named = {a for name in ASSET_COLUMNS for a in getattr(columns, name) if a is not None}
            owned = owned | (frozenset(named) - shard.others - shard.context)
        context = shard.context - owned

        def mine(asset: str | None) -> bool:
            return asset in owned if asset is not None else shard.catch_all

        carried = resume.transfers(owned | context) if resume is not None else []
        legs = [leg for leg in transfer_legs(columns) if leg.asset in owned or leg.asset in context]
        recon = reconcile(
            legs,
            window_hours=transfer_window_hours,
            max_fee_share=transfer_max_fee_share,
            taken_deposits=frozenset(m.deposit_tx_id for m in carried),
            carried_near_misses=resume.near_misses(owned) if resume is not None else (),
            forced=rules.forced,
            forbidden=rules.forbidden,
            stated_basis=frozenset(rules.cost_basis),
        )
        matches = sorted(
            carried + recon.matches, key=attrgetter("withdrawn_us", "withdrawal_tx_id")
        )
        events, row_findings = build_events(columns, matches, rules.cost_basis)
        findings = [f for f in recon.findings + row_findings if mine(f.asset)]
        kept: dict[str, list[Event]] = {a: e for a, e in events.items() if a in owned}
        walked = set(kept) | (resume.walked() & owned if resume is not None else set())
        results = [
            compute_asset(
                asset,
                kept.get(asset, []),
                method=method,
                pooling=pooling,
                currency=currency,
                start=resume.walk_start(asset) if resume is not None else None,
                snapshot_at=period_starts,
            )
            for asset in sorted(walked)
        ]
        keys = set(owned) | ({NO_ASSET} if shard.catch_all else set())
        checkpoints = make_checkpoints(
            keys=keys,
            starts=period_starts,
            has_rows_before=first_rows(tx, keys, resume),
            results={r.asset: r for r in results},
            matches=[m for m in matches if m.asset in owned],
            findings=findings + [f for r in results for f in r.findings],
            holding_term=accounting.holding_term,
            resumed_at=resume.start_us if resume is not None else None,
            near_misses=[n for n in recon.near_misses if n.asset in owned],
        )
        if resume is not None:  # what the periods before the resume point produced
            findings += resume.findings(sorted(keys))
            by_asset = {r.asset: r for r in results}
            for key in sorted(owned):
                years = resume.years(key)
                if not years:
                    continue
                result = by_asset.get(key)
                if result is None:
                    result = by_asset[key] = AssetResult(key, [], [], [], [], {})
                result.years = dict(sorted({**years, **result.years}.items()))
            results = [by_asset[a] for a in sorted(by_asset)]
    shard_result = ShardResult(
        index=shard.index,
        method=method,
        pooling=pooling,
        currency=currency,
        assets=results,
        findings=sort_findings(findings),
        rows_read=len(columns),
        checkpoints=checkpoints,
    )
    return shard_result, matches


# --- (c') one shard, period by period -------------------------------------------------------
@dataclass(slots=True)
class ShardPeriod:
    """One period of a streamed shard: its rows (valued) and, per transaction, the metrics
    elements of the shard's assets (``ShardResult.per_tx``'s share of the period): the view
    cells to write before the next period is read."""

    start_us: int | None  # None: from the shard's first row
    end_us: int | None  # None: to its last
    rows: pa.Table
    per_tx: dict[str, dict[str, TxMetrics]]
    # the period's Form 8949 lines (keep_lines=False: to write now, the result holds none)
    disposals: list[DisposalLine] = field(default_factory=list)


class ShardStream:
    """A shard walked period by period, with results equal to ``compute_shard`` on all its rows
    (tests/test_tax_stream.py). What it holds between periods is the walk state, as a
    checkpoint at the period's end (ingest.tax.checkpoints: lots, ledgers, transfers in flight
    and crossing the end, near misses, UK matches carried), resumed at once; what it holds of
    the rows is one period's and their look-ahead: the rows up to the *reach* after the end
    decide what happens before it (a transfer's deposit, a UK 30-day acquisition), so each
    period is walked with them and keeps only what falls before its end.

        stream = ShardStream(rows, shard, method=..., pooling=..., value=...)
        for period in stream.periods():   # write the period's view cells
            ...
        result = stream.result()          # compute_shard's, but per_tx (given per period)

    ``keep_lines``: False gives each period's Form 8949 lines with it (``ShardPeriod.disposals``)
    instead of keeping them in the result (which then counts them, ``lines_given``).
    ``value``: values a period's rows (the shell's prices; None: they are valued). ``ends``:
    where periods may end besides ``period_starts`` (default: ``period_starts`` if any, else
    the method's tax-year starts); ``period_rows``: also end periods at month starts where a
    period would otherwise hold more rows than that (a dominant asset's tax year);
    ``stream_ends`` keeps those a walk can resume at. A checkpoint is stored only at
    ``period_starts``: one made by a walk resumed at another end gets the years and findings
    of the periods before it since the last stored one (``_pending``), so it equals the whole
    walk's."""

    def __init__(
        self,
        tx: pa.Table,
        shard: Shard,
        *,
        method: str,
        pooling: str,
        currency: str = "USD",
        transfer_window_hours: float = 24,
        transfer_max_fee_share: float = 0.05,
        resume: ShardResume | None = None,
        period_starts: Sequence[int] = (),
        rules: UserRules = NO_RULES,
        ends: Sequence[int] | None = None,
        value: Callable[[pa.Table], pa.Table] | None = None,
        keep_lines: bool = True,
        period_rows: int | None = None,
    ) -> None:
        self.accounting = check_options(method, pooling)
        self.tx = tx if resume is None else rows_from(tx, resume.start_us)
        self.shard = _with_adopted(self.tx, shard)
        self.method, self.pooling, self.currency = method, pooling, currency
        self.window_hours, self.max_fee_share = transfer_window_hours, transfer_max_fee_share
        self.resume = resume
        self.requested = sorted(set(period_starts))
        self.rules = rules
        self.reach = reach_us(method, transfer_window_hours)
        candidates = self._candidates(ends)
        if period_rows:
            candidates = sorted({*candidates, *month_ends(self.tx, candidates, period_rows)})
        self.ends = stream_ends(
            candidates,
            self.tx,
            reach=self.reach,
            after=resume.start_us if resume is not None else None,
            forced=rules.forced,
            resumable_at=self.accounting.resumable_at,
        )
        self.value = value
        self.keep_lines = keep_lines
        self.rows_held = 0  # the most rows one period's walk held (its look-ahead included)
        self._assets: dict[str, AssetResult] = {}
        self._findings: list[Finding] = []
        self._checkpoints: list[AssetCheckpoint] = []
        # per key, the years and findings of the periods since its last stored checkpoint that
        # ended where none is stored (period_rows' or ``ends``' ends)
        self._pending: dict[str, tuple[dict[str, YearSummary], list[Finding]]] = {}
        self._rows = 0
        self._lines_given = 0
        self._years: dict[str, dict[str, YearSummary]] = defaultdict(dict)  # asset -> year ->
        self._done = False

    def _candidates(self, ends: Sequence[int] | None) -> list[int]:
        if self.requested:
            return sorted({*self.requested, *(ends or ())})
        if ends is not None:
            return sorted(ends)
        if not self.tx.num_rows:
            return []
        stamps = pc.cast(self.tx.column("timestamp"), pa.int64())
        return tax_year_starts(self.method, pc.min(stamps).as_py(), pc.max(stamps).as_py())

    def periods(self) -> Iterator[ShardPeriod]:
        stamps = pc.cast(self.tx.column("timestamp"), pa.int64())
        resume = self.resume
        low = resume.start_us if resume is not None else None
        for end in [*self.ends, None]:
            window = self.tx.filter(
                _between(stamps, low, None if end is None else end + self.reach)
            )
            if self.value is not None:
                window = self.value(window)
            starts = [s for s in self.requested if (low is None or s > low) and _before_us(s, end)]
            result, matches = _walk_shard(
                window,
                self.shard,
                method=self.method,
                pooling=self.pooling,
                currency=self.currency,
                transfer_window_hours=self.window_hours,
                transfer_max_fee_share=self.max_fee_share,
                resume=resume,
                period_starts=starts + ([end] if end is not None else []),
                rules=self.rules,
            )
            self.rows_held = max(self.rows_held, result.rows_read)
            rows = (
                window if end is None else window.filter(_between(window["timestamp"], None, end))
            )
            lines: list[DisposalLine] = []
            per_tx = self._keep(result, rows, end, lines)
            yield ShardPeriod(low, end, rows, per_tx, [] if self.keep_lines else lines)
            self._rows += rows.num_rows
            if end is not None:
                resume = self._carry(result, matches, end)
            low = end
            # let the period go before the next is walked: held until rebound, its walk's
            # results and rows (about as much as the next period's) would double the peak
            del window, result, matches, rows, per_tx, lines
        self._done = True

    def _keep(
        self, result: ShardResult, rows: pa.Table, end: int | None, lines: list[DisposalLine]
    ) -> dict[str, dict[str, TxMetrics]]:
        """The period's share of the walk's outputs (what falls before its end; its lines into
        ``lines``); returns its per-tx metrics elements."""
        ids = set(rows.column("tx_id").to_pylist())
        per_tx: dict[str, dict[str, TxMetrics]] = defaultdict(dict)
        for walked in result.assets:
            kept = self._assets.get(walked.asset)
            if kept is None:
                kept = self._assets[walked.asset] = AssetResult(walked.asset, [], [], [], [], {})
            disposals = [d for d in walked.disposals if _before(d.sold_at, end)]
            income = [r for r in walked.income if _before(r.received_at, end)]
            self._add_years(walked.asset, disposals, income)
            lines += disposals
            if self.keep_lines:
                kept.disposals += disposals
            else:
                self._lines_given += len(disposals)
            kept.income += income
            kept.findings += [f for f in walked.findings if _before(f.timestamp, end)]
            kept.balances = walked.balances  # the last period's are the shard's
            for tx_id, metrics in walked.per_tx.items():
                if tx_id in ids:
                    per_tx[tx_id][walked.asset] = metrics
        self._findings += [f for f in result.findings if _before(f.timestamp, end)]
        self._store(result.checkpoints)
        return dict(per_tx)

    def _store(self, checkpoints: Sequence[AssetCheckpoint]) -> None:
        """Keep a walk's checkpoints at the requested starts. Each holds the years and findings
        of its walk since the walk's start; when that start was an end with no stored
        checkpoint, those of the periods before it since the last stored one are added."""
        for made in sorted(checkpoints, key=attrgetter("start_us")):
            pending = self._pending.pop(made.key, None)
            checkpoint = made if pending is None else _with_earlier(made, *pending)
            if checkpoint.start_us in self.requested:
                self._checkpoints.append(checkpoint)
            else:
                self._pending[made.key] = (checkpoint.years, checkpoint.findings)

    def _carry(
        self, result: ShardResult, matches: Sequence[TransferMatch], end: int
    ) -> ShardResume:
        """The walk state at ``end``, to resume the next period from: the owned keys'
        checkpoints there (their years and findings are already kept) and the context assets'
        transfers crossing it."""
        carried = {
            c.key: [
                AssetCheckpoint(
                    c.key, c.start_us, c.walk, c.transfers, c.carried, near_misses=c.near_misses
                )
            ]
            for c in result.checkpoints
            if c.start_us == end
        }
        for asset in sorted(self.shard.context - self.shard.assets):
            crossing = [
                m for m in matches if m.asset == asset and m.withdrawn_us < end <= m.deposited_us
            ]
            if crossing:
                carried[asset] = [AssetCheckpoint(asset, end, None, crossing)]
        return ShardResume(end, carried)

    def _add_years(
        self, asset: str, disposals: list[DisposalLine], income: list[IncomeRecord]
    ) -> None:
        """The period's tax-year totals added to the asset's (exact: the engine's context)."""
        with tax_context():
            years, _ = summarize(disposals, income, holding_term=self.accounting.holding_term)
            add_years(self._years[asset], years)

    def result(self) -> ShardResult:
        """The whole walk's result (after ``periods`` ran out), its per-tx metrics excepted:
        they were given with each period."""
        if not self._done:
            raise RuntimeError("ShardStream.result() before its periods were walked")
        for key, kept in self._assets.items():
            years = dict(sorted(self._years.get(key, {}).items()))
            stored = self.resume.years(key) if self.resume is not None else {}
            kept.years = dict(sorted({**stored, **years}.items())) if stored else years
        return ShardResult(
            index=self.shard.index,
            method=self.method,
            pooling=self.pooling,
            currency=self.currency,
            assets=[self._assets[a] for a in sorted(self._assets)],
            findings=sort_findings(self._findings),
            rows_read=self._rows,
            checkpoints=sorted(self._checkpoints, key=attrgetter("key", "start_us")),
            rows_held=self.rows_held,
            lines_given=self._lines_given,
        )


def stream_ends(
    candidates: Iterable[int],
    tx: pa.Table,
    *,
    reach: int,
    after: int | None = None,
    forced: frozenset[tuple[str, str]] = frozenset(),
    resumable_at: Callable[[int], int] = lambda time_us: time_us,
) -> list[int]:
    """Where a streamed shard's periods end: the candidates, each moved back to where the
    method can resume a walk (``resumable_at``: the UK's at the start of a London day, as its
    same-day rule takes the whole day), after its first row and after ``after`` (where it
    resumed), each at least ``reach`` after the one before (a transfer, a near miss or a UK
    match then crosses one end at most, and the checkpoint there carries it), and none that a
    transfer the user marked (``forced``: matched whatever the time between its legs) crosses
    by more than the reach (the walk of the withdrawal's period would not see its deposit)."""
    if not tx.num_rows:
        return []
    first = pc.min(pc.cast(tx.column("timestamp"), pa.int64())).as_py()
    spans = _forced_spans(tx, forced)
    out: list[int] = []
    previous = after
    for end in sorted({resumable_at(candidate) for candidate in candidates}):
        if end <= first or (previous is not None and end < previous + reach):
            continue
        if any(withdrawn < end and deposited >= end + reach for withdrawn, deposited in spans):
            continue
        out.append(end)
        previous = end
    return out


def _with_earlier(
    checkpoint: AssetCheckpoint, years: Mapping[str, YearSummary], findings: Sequence[Finding]
) -> AssetCheckpoint:
    """The checkpoint with the years and findings of the spans before its walk's start added
    (tax years summed exactly: a year's totals are the sums of its parts')."""
    summed = dict(years)
    with tax_context():
        add_years(summed, checkpoint.years)
    return replace(
        checkpoint,
        years=dict(sorted(summed.items())),
        findings=sort_findings([*findings, *checkpoint.findings]),
    )


def month_ends(tx: pa.Table, ends: Sequence[int], period_rows: int) -> list[int]:
    """Month starts (UTC) at which to end periods too, so that a period between ``ends`` holds
    at most ``period_rows`` rows where months allow: taken greedily, a month start when the
    rows since the last end would pass ``period_rows`` by the next boundary (a month of more
    rows stays one period)."""
    if tx.num_rows <= period_rows:
        return []
    stamps = np.sort(pc.cast(tx.column("timestamp"), pa.int64()).to_numpy())
    first = stamps[0].astype("datetime64[us]").astype("datetime64[M]")
    last = stamps[-1].astype("datetime64[us]").astype("datetime64[M]")
    months = np.arange(first + 1, last + 1).astype("datetime64[us]").astype(np.int64)
    fixed = set(ends)
    bounds = sorted(fixed | {int(m) for m in months})
    taken: list[int] = []
    since = 0  # index of the first row after the last end
    for bound, following in zip(bounds, [*bounds[1:], None]):
        at = int(np.searchsorted(stamps, bound, "left"))
        if bound in fixed:
            since = at
            continue
        upto = len(stamps) if following is None else int(np.searchsorted(stamps, following))
        if at > since and upto - since > period_rows:
            taken.append(bound)
            since = at
    return taken


def _forced_spans(tx: pa.Table, forced: frozenset[tuple[str, str]]) -> list[tuple[int, int]]:
    """(withdrawal time, deposit time) of the marked pairs whose both rows are in ``tx``."""
    if not forced:
        return []
    ids = pa.array(sorted({t for pair in forced for t in pair}), pa.string())
    rows = tx.filter(pc.is_in(tx.column("tx_id"), value_set=ids))
    times = dict(
        zip(
            rows.column("tx_id").to_pylist(),
            pc.cast(rows.column("timestamp"), pa.int64()).to_pylist(),
        )
    )
    return [(times[w], times[d]) for w, d in sorted(forced) if w in times and d in times]


def _with_adopted(tx: pa.Table, shard: Shard) -> Shard:
    """Shard 0 with the assets it adopts over all its rows (compute_shard adopts those of the
    rows it walks: a period's would miss an asset of an earlier one)."""
    if not shard.catch_all:
        return shard
    named = {a for name in ASSET_COLUMNS for a in pc.unique(tx.column(name)).to_pylist()}
    named.discard(None)
    return replace(shard, assets=shard.assets | (frozenset(named) - shard.others - shard.context))


def _between(stamps: pa.ChunkedArray | pa.Array, low: int | None, high: int | None) -> pa.Array:
    """low <= stamp < high (None: unbounded) of timestamps or their int64 microseconds."""
    micros = pc.cast(stamps, pa.int64())
    keep = pa.array(np.ones(len(micros), dtype=bool))
    if low is not None:
        keep = pc.and_(keep, pc.greater_equal(micros, low))
    if high is not None:
        keep = pc.and_(keep, pc.less(micros, high))
    return keep


def _before(moment: datetime | None, end: int | None) -> bool:
    return end is None or (moment is not None and micros_from_datetime(moment) < end)


def _before_us(time_us: int, end: int | None) -> bool:
    return end is None or time_us < end


def rows_from(tx: pa.Table, start_us: int) -> pa.Table:
    """The rows at or after ``start_us``."""
    ts = tx.column("timestamp")
    return tx.filter(pc.greater_equal(ts, pa.scalar(start_us, pa.int64()).cast(ts.type)))


def first_rows(
    tx: pa.Table, keys: Iterable[str], resume: ShardResume | None
) -> dict[str, int | None]:
    """Per key, the earliest time (us) a row of ``tx`` names it (NO_ASSET: a row naming no asset;
    None: no row); a key ``resume`` has checkpoints of: before every time."""
    stamps = pc.cast(tx.column("timestamp"), pa.int64())
    earliest: dict[str, int] = {}
    named = np.zeros(tx.num_rows, dtype=bool)
    for name in ASSET_COLUMNS:
        column = tx.column(name)
        named |= pc.is_valid(column).to_numpy(zero_copy_only=False)
        grouped = pa.table({"key": column, "ts": stamps}).group_by("key").aggregate([("ts", "min")])
        for key, ts in zip(grouped["key"].to_pylist(), grouped["ts_min"].to_pylist()):
            if key is not None and (key not in earliest or ts < earliest[key]):
                earliest[key] = ts
    if not named.all():
        earliest[NO_ASSET] = int(stamps.to_numpy()[~named].min())
    return {
        key: -(1 << 62) if resume is not None and resume.checkpoints.get(key) else earliest.get(key)
        for key in sorted(set(keys))
    }


# --- (d) combining ---------------------------------------------------------------------------
def combine_summaries(summaries: Iterable[ShardSummary]) -> UserTotals:
    """User-level totals from the shards' small summaries: equal to TaxResult.years and
    TaxResult.years_by_asset of the single-process engine."""
    by_asset: dict[tuple[str, str], YearSummary] = {}
    for summary in summaries:
        by_asset.update(summary.years_by_asset)
    years: dict[str, YearSummary] = {}
    for (year, _asset), year_summary in sorted(
        by_asset.items(), key=lambda item: (item[0][1], item[0][0])
    ):
        years[year] = _sum_summaries(years.get(year), year_summary)
    return UserTotals(dict(sorted(years.items())), dict(sorted(by_asset.items())))


def merge_shards(
    results: Sequence[ShardResult], *, method: str, pooling: str, currency: str = "USD"
) -> TaxResult:
    """The whole TaxResult from every shard (tests, the offline CLI): the engine's own merge."""
    findings = [f for r in results for f in r.findings]
    prepared = PreparedHistory(pooling=pooling, assets={}, findings=sort_findings(findings))
    assets = sorted((a for r in results for a in r.assets), key=attrgetter("asset"))
    return merge(prepared, assets, method=method, currency=currency)


def fold_metrics(elements: Mapping[str, TxMetrics]) -> TxMetrics:
    """One transaction's metrics from its per-asset elements (the reader's side of the view):
    what the engine's merge gives for it."""
    proceeds = cost = gain = acquired = None
    term: str | None = None
    balance: dict[str, Decimal] = {}
    flags: set[str] = set()
    for asset in sorted(elements):
        m = elements[asset]
        proceeds = _add(proceeds, m.proceeds)
        cost = _add(cost, m.cost_basis)
        gain = _add(gain, m.gain)
        acquired = _add(acquired, m.acquired_cost)
        term = combine_terms(term, m.term)
        balance.update(m.balance_after)
        flags |= m.flags
    return TxMetrics(proceeds, cost, gain, term, acquired, balance, flags)
