"""The tax engine: reconcile the whole history, then walk each asset's events through a method.

Partition-friendly: ``prepare`` (whole history, once) -> ``compute_asset`` (pure, independent per
asset: the lead's Ray tasks run these in parallel) -> ``merge``. ``compute`` chains the three.

Pooling:
- ``per-wallet``: each wallet holds its own lots (Rev. Proc. 2024-28). A matched transfer takes
  lots from the sending wallet in the method's own order and the receiving wallet gets them with
  their original dates and basis; the units lost on the way are a ``transfer_fee`` disposal.
- ``universal``: one pool per asset across wallets; transfers only move wallet ledgers.

Disposals take lots from the pool; what the pool cannot supply gets zero cost basis, no
acquisition date and term 'short' where terms exist (the conservative choice), flagged
``missing_cost_basis``. Negative balances are reported once per episode with the transaction that
first took the balance below zero: per wallet in per-wallet pooling, for the whole asset
(all wallets plus transfers in flight) in universal pooling.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from operator import attrgetter

import pyarrow as pa

from ingest.normalize.canonical import plain_decimal
from ingest.tax.events import (
    INCOME_REVERSAL,
    Event,
    EventKind,
    build_events,
    read_columns,
    transfer_legs,
)
from ingest.tax.methods import get_method
from ingest.tax.methods.base import (
    CarriedMatches,
    CostBasisMethod,
    Lot,
    LotPool,
    PoolState,
    copy_lot,
)
from ingest.tax.numbers import ZERO, split, tax_context
from ingest.tax.reconcile import TransferMatch, reconcile
from ingest.tax.records import (
    AssetResult,
    BalanceRecord,
    DisposalLine,
    Finding,
    Flag,
    IncomeRecord,
    Rule,
    TaxResult,
    Term,
    TxMetrics,
    YearSummary,
)
from ingest.tax.years import datetime_from_micros, one_year_after
from ingest.vocabulary import Pooling

PER_WALLET, UNIVERSAL = Pooling.PER_WALLET, Pooling.UNIVERSAL
ALL_WALLETS = "*"  # pool key in universal pooling
_NEVER = datetime.min.replace(tzinfo=timezone.utc)
_MISSING_BASIS = frozenset({Flag.MISSING_COST_BASIS})
_ACQUIRE, _INCOME, _DISPOSE = EventKind.ACQUIRE, EventKind.INCOME, EventKind.DISPOSE
_SEND, _RECEIVE, _REMOVE = EventKind.SEND, EventKind.RECEIVE, EventKind.REMOVE
_EVENT_ORDER = attrgetter("time_us", "phase", "tx_id", "leg")  # events.event_order, C speed


@dataclass(slots=True)
class PreparedHistory:
    """The whole history reconciled and split by asset: the input of compute_asset."""

    pooling: str
    assets: dict[str, list[Event]]
    findings: list[Finding]
    transfers: list[TransferMatch] = field(default_factory=list)
    transaction_count: int = 0


@contextmanager
def gc_paused() -> Iterator[None]:
    """The engine allocates millions of small acyclic objects (Decimals, events, lines): the
    cyclic collector would rescan them all again and again (it doubled the run time at 600k
    transactions), while reference counting frees them anyway."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def check_options(method: str, pooling: str) -> CostBasisMethod:
    """The one validation of a (method, pooling) pair: the API, the CLI, stored settings and the
    engine all call it. Raises ValueError with a message meant for the user."""
    try:
        Pooling(pooling)
    except ValueError:
        raise ValueError(
            f"unknown pooling {pooling!r}: one of {', '.join(p.value for p in Pooling)}"
        ) from None
    accounting = get_method(method)
    if pooling == PER_WALLET and not accounting.per_wallet_allowed:
        raise ValueError(f"method {accounting.name!r} pools per person: use pooling 'universal'")
    return accounting


def prepare(
    tx: pa.Table,
    *,
    pooling: str,
    transfer_window_hours: float = 24,
    transfer_max_fee_share: float = 0.05,
) -> PreparedHistory:
    Pooling(pooling)  # ValueError for an unknown pooling (the method is checked per asset)
    with gc_paused():
        columns = read_columns(tx)
        recon = reconcile(
            transfer_legs(columns),
            window_hours=transfer_window_hours,
            max_fee_share=transfer_max_fee_share,
        )
        assets, findings = build_events(columns, recon.matches)
    return PreparedHistory(
        pooling=pooling,
        assets=dict(sorted(assets.items())),
        findings=sort_findings(recon.findings + findings),
        transfers=recon.matches,
        transaction_count=len(columns),
    )


@dataclass(slots=True)
class WalkState:
    """Everything the rest of an asset's walk depends on, as plain data (a snapshot: later
    changes to the walk do not reach it). Lines, income and per-tx metrics are outputs, not
    state. Stored in checkpoints by ingest/tax/checkpoint_codec.py."""

    pools: dict[str, PoolState]  # pool key (a wallet, or ALL_WALLETS) -> pool
    ledger: dict[str, Decimal]  # wallet -> quantity
    holdings: Decimal
    negative: list[str]  # pools below zero, sorted
    in_flight: dict[str, list[Lot]]  # transfer id -> lots travelling
    early_arrivals: dict[str, str]  # transfer id -> wallet (the deposit came first)
    seq: int  # the next lot's acquisition number


@dataclass(frozen=True, slots=True)
class WalkStart:
    """Where a resumed walk begins (ingest.tax.checkpoints): the walk state at a period start
    and what UK matching carried into the period."""

    start_us: int
    state: WalkState
    carried: CarriedMatches = field(default_factory=dict)


def compute_asset(
    asset: str,
    events: list[Event],
    *,
    method: str,
    pooling: str,
    currency: str = "USD",
    start: WalkStart | None = None,
    snapshot_at: Sequence[int] = (),
) -> AssetResult:
    """Pure and independent per asset. ``currency`` is the reporting currency of the events'
    amounts (recorded for the caller; no conversion happens here).

    ``start``: resume from a checkpoint; ``events`` are then the asset's events from its period
    start on, and the result holds what those events produce (lines, income, per-tx metrics,
    walk findings from then on; balances at the end). ``snapshot_at``: period starts at which
    to take the walk's state (``AssetResult.snapshots``; none before the asset's first event)."""
    accounting = check_options(method, pooling)
    with tax_context(), gc_paused():
        ordered = sorted(events, key=_EVENT_ORDER)  # prepare's lists are sorted: linear
        walk = _AssetWalk(asset, ordered, accounting, pooling == UNIVERSAL)
        if start is not None:
            walk.restore(start.state)
        result = walk.run(start, sorted(snapshot_at))
        years, _ = summarize(result.disposals, result.income, holding_term=accounting.holding_term)
    result.years = years
    return result


def merge(
    prepared: PreparedHistory, results: list[AssetResult], *, method: str, currency: str
) -> TaxResult:
    with gc_paused():
        return _merge(prepared, results, get_method(method), currency)


def _merge(
    prepared: PreparedHistory,
    results: list[AssetResult],
    accounting: CostBasisMethod,
    currency: str,
) -> TaxResult:
    results = sorted(results, key=attrgetter("asset"))
    # each asset's lines are in time order already: sorting merges the runs
    disposals = sorted(
        (line for r in results for line in r.disposals),
        key=attrgetter("sold_at", "tx_id", "asset", "line_id"),
    )
    income = sorted(
        (rec for r in results for rec in r.income), key=attrgetter("received_at", "tx_id", "asset")
    )
    balances = sorted((b for r in results for b in r.balances), key=attrgetter("asset", "wallet"))
    findings = sort_findings(list(prepared.findings) + [f for r in results for f in r.findings])
    with tax_context():
        per_tx: dict[str, TxMetrics] = {}  # insertion order: by asset, then time (deterministic)
        for result in results:
            for tx_id, metrics in result.per_tx.items():
                known = per_tx.get(tx_id)
                per_tx[tx_id] = metrics if known is None else _combine(known, metrics)
        years: dict[str, YearSummary] = {}
        years_by_asset: dict[tuple[str, str], YearSummary] = {}
        for result in results:
            for year, summary in result.years.items():
                years_by_asset[(year, result.asset)] = summary
                years[year] = _sum_summaries(years.get(year), summary)
    return TaxResult(
        method=accounting.name,
        pooling=prepared.pooling,
        currency=currency,
        disposals=disposals,
        income=income,
        balances=balances,
        findings=findings,
        per_tx=per_tx,
        years=dict(sorted(years.items())),
        years_by_asset=dict(sorted(years_by_asset.items())),
    )


def compute(
    tx: pa.Table, *, method: str, pooling: str, currency: str = "USD", **recon_options: float
) -> TaxResult:
    """The whole history in one process: the oracle the tests compare the tax stage
    (ingest/pipeline/tax/stage.py, sharded) against; the product never calls it."""
    check_options(method, pooling)
    with gc_paused():  # across the calls too: a collection between them rescans everything
        prepared = prepare(tx, pooling=pooling, **recon_options)
        results = [
            compute_asset(asset, events, method=method, pooling=pooling, currency=currency)
            for asset, events in sorted(prepared.assets.items())
        ]
        return merge(prepared, results, method=method, currency=currency)


def summarize(
    disposals: Iterable[DisposalLine], income: Iterable[IncomeRecord], *, holding_term: bool
) -> tuple[dict[str, YearSummary], dict[tuple[str, str], YearSummary]]:
    """Totals per tax year and per (tax year, asset)."""

    def blank() -> YearSummary:
        return (
            YearSummary()
            if holding_term
            else YearSummary(short_term_gain=None, long_term_gain=None)
        )

    years: dict[str, YearSummary] = defaultdict(blank)
    by_asset: dict[tuple[str, str], YearSummary] = defaultdict(blank)
    for line in disposals:
        for summary in (years[line.tax_year], by_asset[(line.tax_year, line.asset)]):
            summary.proceeds += line.proceeds
            summary.cost_basis += line.cost_basis
            summary.gain += line.gain
            if holding_term:  # blank() gave this summary Decimal term gains
                if line.term == Term.LONG:
                    assert summary.long_term_gain is not None
                    summary.long_term_gain += line.gain
                else:
                    assert summary.short_term_gain is not None
                    summary.short_term_gain += line.gain
    for record in income:
        for summary in (years[record.tax_year], by_asset[(record.tax_year, record.asset)]):
            summary.income += record.value
    return dict(sorted(years.items())), dict(sorted(by_asset.items()))


def sort_findings(findings: list[Finding]) -> list[Finding]:
    def key(f: Finding) -> tuple:  # undated findings last
        return (
            f.timestamp is None,
            f.timestamp or _NEVER,
            f.kind,
            f.asset or "",
            f.wallet or "",
            f.tx_id or "",
            f.detail,
        )

    return sorted(findings, key=key)


def add_years(into: dict[str, YearSummary], years: Mapping[str, YearSummary]) -> None:
    """``years``' totals added to ``into``'s, year by year (call under tax_context: exact)."""
    for year, summary in years.items():
        into[year] = _sum_summaries(into.get(year), summary)


def _sum_summaries(first: YearSummary | None, second: YearSummary) -> YearSummary:
    if first is None:
        return YearSummary(
            second.proceeds,
            second.cost_basis,
            second.short_term_gain,
            second.long_term_gain,
            second.income,
            second.gain,
        )
    return YearSummary(
        first.proceeds + second.proceeds,
        first.cost_basis + second.cost_basis,
        _add(first.short_term_gain, second.short_term_gain),
        _add(first.long_term_gain, second.long_term_gain),
        first.income + second.income,
        first.gain + second.gain,
    )


def combine_terms(first: str | None, second: str | None) -> str | None:
    if first is None or first == second:
        return second
    if second is None:
        return first
    return Term.MIXED


def _add(first: Decimal | None, second: Decimal | None) -> Decimal | None:
    if first is None:
        return second
    if second is None:
        return first
    return first + second


def _combine(first: TxMetrics, second: TxMetrics) -> TxMetrics:
    return TxMetrics(
        proceeds=_add(first.proceeds, second.proceeds),
        cost_basis=_add(first.cost_basis, second.cost_basis),
        gain=_add(first.gain, second.gain),
        term=combine_terms(first.term, second.term),
        acquired_cost=_add(first.acquired_cost, second.acquired_cost),
        balance_after={**first.balance_after, **second.balance_after},
        flags=first.flags | second.flags,
    )


class _AssetWalk:
    """One pass over one asset's events in order."""

    def __init__(
        self, asset: str, events: list[Event], method: CostBasisMethod, universal: bool
    ) -> None:
        self.asset = asset
        self.events = events
        self.method = method
        self.universal = universal
        self.pools: dict[str, LotPool] = {}
        self.ledger: dict[str, Decimal] = defaultdict(lambda: ZERO)  # wallet -> quantity
        self.holdings = ZERO  # all wallets + in flight (universal negativity)
        self.negative: set[str] = set()  # pools currently below zero
        self.in_flight: dict[str, list[Lot]] = {}  # transfer id -> lots travelling
        self.early_arrivals: dict[str, str] = {}  # transfer id -> wallet (arrived first)
        self.seq = 0
        self.disposals: list[DisposalLine] = []
        self.income: list[IncomeRecord] = []
        self.findings: list[Finding] = []
        self.per_tx: dict[str, TxMetrics] = {}

    def pool(self, wallet: str) -> LotPool:
        key = ALL_WALLETS if self.universal else wallet
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = self.method.new_pool()
        return pool

    def state(self) -> WalkState:
        return WalkState(
            pools={key: pool.export() for key, pool in self.pools.items()},
            ledger=dict(self.ledger),
            holdings=self.holdings,
            negative=sorted(self.negative),
            in_flight={t: [copy_lot(lot) for lot in lots] for t, lots in self.in_flight.items()},
            early_arrivals=dict(self.early_arrivals),
            seq=self.seq,
        )

    def restore(self, state: WalkState) -> None:
        """The pools are the method's own (new_pool), filled from ``state``, which stays as
        it was (it may be restored again)."""
        self.pools = {}
        for key, pool_state in state.pools.items():
            pool = self.pools[key] = self.method.new_pool()
            pool.load(pool_state)
        self.ledger = defaultdict(lambda: ZERO, state.ledger)
        self.holdings = state.holdings
        self.negative = set(state.negative)
        self.in_flight = {t: [copy_lot(lot) for lot in lots] for t, lots in state.in_flight.items()}
        self.early_arrivals = dict(state.early_arrivals)
        self.seq = state.seq

    def run(self, start: WalkStart | None = None, snapshot_at: Sequence[int] = ()) -> AssetResult:
        starts = [t for t in snapshot_at if start is None or t > start.start_us]
        pre_match = self.method.pre_match(
            self.events, start.carried if start is not None else None, starts
        )
        into_pool = pre_match.into_pool if pre_match else {}
        matched = pre_match.disposals if pre_match else {}
        snapshots: dict[int, WalkState] = {}
        # No snapshot before anything happened: the state there is the empty one.
        began = start is not None
        next_start = 0
        acquire_kind, income_kind, dispose_kind = _ACQUIRE, _INCOME, _DISPOSE
        send_kind, receive_kind, remove_kind = _SEND, _RECEIVE, _REMOVE
        per_tx, ledger, asset = self.per_tx, self.ledger, self.asset
        for index, event in enumerate(self.events):
            while next_start < len(starts) and event.time_us >= starts[next_start]:
                if began:
                    snapshots[starts[next_start]] = self.state()
                next_start += 1
            began = True
            metrics = per_tx.get(event.tx_id)
            if metrics is None:
                metrics = per_tx[event.tx_id] = TxMetrics()
            if event.flags:
                metrics.flags |= event.flags
            kind = event.kind
            if kind is dispose_kind:
                self.dispose(event, metrics, matched.get(index))
            elif kind is acquire_kind or kind is income_kind:
                self.acquire(index, event, metrics, into_pool)
            elif kind is send_kind:
                self.send(event)
            elif kind is receive_kind:
                self.receive(event)
            elif kind is remove_kind:
                self.pool(event.wallet).take(event.quantity)  # leaves the books, no line
                ledger[event.wallet] -= event.quantity
                self.holdings -= event.quantity
                if event.purpose == INCOME_REVERSAL:
                    self.record_income(event, -event.quantity, -(event.amount or ZERO))
            balance = ledger[event.wallet]
            metrics.balance_after[asset] = balance
            if balance < 0 or self.holdings < 0 or self.negative:
                self.check_negative(event, metrics)
        if began:  # period starts after the last event: the final state
            final = self.state()
            for period_start in starts[next_start:]:
                snapshots[period_start] = final
        carried = pre_match.carried_at if pre_match else {}
        return AssetResult(
            asset=self.asset,
            disposals=self.disposals,
            income=self.income,
            balances=self.balances(),
            findings=self.findings,
            per_tx=self.per_tx,
            snapshots=snapshots,
            carried_matches={t: carried.get(t, {}) for t in snapshots},
        )

    def acquire(
        self,
        index: int,
        event: Event,
        metrics: TxMetrics,
        into_pool: dict[int, tuple[Decimal, Decimal, bool]],
    ) -> None:
        cost = event.amount
        known = cost is not None
        if cost is None:
            cost = ZERO
        if into_pool and index in into_pool:  # UK: only what the matching rules left
            quantity, pooled_cost, pooled_known = into_pool[index]
        else:
            quantity, pooled_cost, pooled_known = event.quantity, cost, known
        if quantity > 0:
            self.pool(event.wallet).add(
                Lot(quantity, pooled_cost, event.time_us, pooled_known, self.seq, event.tx_id)
            )
            self.seq += 1
        self.ledger[event.wallet] += event.quantity
        self.holdings += event.quantity
        metrics.acquired_cost = (
            cost if metrics.acquired_cost is None else metrics.acquired_cost + cost
        )
        if event.kind is _INCOME:
            self.record_income(event, event.quantity, cost)

    def record_income(self, event: Event, quantity: Decimal, value: Decimal) -> None:
        """Income of an INCOME event, or (negative) of an income reversal."""
        day = self.method.tax_date(event.time_us)
        self.income.append(
            IncomeRecord(
                tx_id=event.tx_id,
                wallet=event.wallet,
                asset=self.asset,
                quantity=quantity,
                date=day,
                received_at=datetime_from_micros(event.time_us),
                value=value,
                label=event.label or "income",
                tax_year=self.method.tax_year(day),
                flags=event.flags,
            )
        )

    def dispose(
        self, event: Event, metrics: TxMetrics, matched: list[tuple[Lot, str]] | None
    ) -> None:
        rule = self.method.pool_rule
        if matched:  # UK: portions the same-day / 30-day rules identified
            portions = list(matched)
            remaining = event.quantity - sum([lot.quantity for lot, _ in portions], ZERO)
        else:
            portions = []
            remaining = event.quantity
        if remaining > 0:
            taken, shortfall = self.pool(event.wallet).take(remaining)
            for lot in taken:
                portions.append((lot, rule))
            if shortfall > 0:
                portions.append((Lot(shortfall, ZERO, None, False, -1, ""), Rule.NO_BASIS))
        self.ledger[event.wallet] -= event.quantity
        self.holdings -= event.quantity
        self.lines(event, metrics, portions)

    def lines(self, event: Event, metrics: TxMetrics, portions: list[tuple[Lot, str]]) -> None:
        method, asset = self.method, self.asset
        tax_date = method.tax_date
        date_sold = tax_date(event.time_us)
        sold_at = datetime_from_micros(event.time_us)
        tax_year = method.tax_year(date_sold)
        proceeds_total = event.amount if event.amount is not None else ZERO
        weights = [lot.quantity for lot, _ in portions]
        costs_total = event.costs if method.gross_proceeds else ZERO
        if costs_total:  # gross proceeds, the selling fee among the allowable costs
            proceeds_total += costs_total
        shares = [proceeds_total] if len(portions) == 1 else split(proceeds_total, weights)
        cost_shares = (
            None
            if not costs_total
            else [costs_total]
            if len(portions) == 1
            else split(costs_total, weights)
        )
        holding_term = method.holding_term
        unknown_basis = ZERO
        cost_total = ZERO
        term_seen = metrics.term
        line_prefix = f"{event.tx_id}:{asset}:{event.leg}:"
        append = self.disposals.append
        for number, ((lot, rule), proceeds) in enumerate(zip(portions, shares)):
            date_acquired = None if lot.acquired_us is None else tax_date(lot.acquired_us)
            if not holding_term:
                term = Term.NONE
            elif date_acquired is not None and date_sold > one_year_after(date_acquired):
                term = Term.LONG  # held more than one year
            else:
                term = Term.SHORT  # includes no known acquisition: the conservative choice
            flags = event.flags
            if not lot.basis_known:
                flags = flags | _MISSING_BASIS
                unknown_basis += lot.quantity
            costs = ZERO if cost_shares is None else cost_shares[number]
            cost = lot.cost + costs
            cost_total += cost
            append(
                DisposalLine(
                    line_prefix + str(number),
                    event.tx_id,
                    event.wallet,
                    asset,
                    lot.quantity,
                    date_acquired,
                    date_sold,
                    sold_at,
                    proceeds,
                    cost,
                    proceeds - cost,
                    term,
                    rule,
                    event.purpose,
                    tax_year,
                    flags,
                    costs,
                    lot.acquired_us,
                    lot.origin_tx_id,
                )
            )
            term_seen = term if term_seen is None or term_seen == term else Term.MIXED
        gain_total = proceeds_total - cost_total
        if metrics.proceeds is None:
            metrics.proceeds, metrics.cost_basis, metrics.gain = (
                proceeds_total,
                cost_total,
                gain_total,
            )
        else:  # the three are set together, above
            assert metrics.cost_basis is not None and metrics.gain is not None
            metrics.proceeds += proceeds_total
            metrics.cost_basis += cost_total
            metrics.gain += gain_total
        metrics.term = term_seen
        if unknown_basis > 0:
            metrics.flags.add(Flag.MISSING_COST_BASIS)
            self.findings.append(
                Finding(
                    Flag.MISSING_COST_BASIS,
                    asset,
                    event.wallet,
                    sold_at,
                    event.tx_id,
                    f"{event.purpose}: {plain_decimal(unknown_basis)} of "
                    f"{plain_decimal(event.quantity)} {asset} have no known acquisition: "
                    "zero cost basis used",
                )
            )

    def send(self, event: Event) -> None:
        self.ledger[event.wallet] -= event.quantity  # still held: in flight
        if self.universal:
            return
        transfer_id = event.transfer_id
        assert transfer_id is not None  # events.py sets it on every SEND and RECEIVE
        lots, shortfall = self.pool(event.wallet).take(event.quantity)
        if shortfall > 0:  # nothing to carry: the receiving wallet gets units of unknown basis
            lots.append(Lot(shortfall, ZERO, event.time_us, False, self.seq, event.tx_id))
            self.seq += 1
        destination = self.early_arrivals.pop(transfer_id, None)
        if destination is not None:
            for lot in lots:
                self.pool(destination).add(lot)
        else:
            self.in_flight[transfer_id] = lots

    def receive(self, event: Event) -> None:
        self.ledger[event.wallet] += event.quantity
        if self.universal:
            return
        transfer_id = event.transfer_id
        assert transfer_id is not None  # events.py sets it on every SEND and RECEIVE
        lots = self.in_flight.pop(transfer_id, None)
        if lots is None:  # same timestamp, deposit ordered first: deliver when the send comes
            self.early_arrivals[transfer_id] = event.wallet
            return
        pool = self.pool(event.wallet)
        for lot in lots:
            pool.add(lot)  # original dates and basis travel with the units

    def check_negative(self, event: Event, metrics: TxMetrics) -> None:
        key, balance = (
            (ALL_WALLETS, self.holdings)
            if self.universal
            else (event.wallet, self.ledger[event.wallet])
        )
        if balance >= 0:
            self.negative.discard(key)
            return
        if key in self.negative:
            return
        self.negative.add(key)
        metrics.flags.add(Flag.NEGATIVE_BALANCE)
        where = "all wallets" if self.universal else f"wallet {event.wallet}"
        self.findings.append(
            Finding(
                Flag.NEGATIVE_BALANCE,
                self.asset,
                None if self.universal else event.wallet,
                datetime_from_micros(event.time_us),
                event.tx_id,
                f"{self.asset} balance of {where} goes to {plain_decimal(balance)} "
                f"with this {event.purpose}",
            )
        )

    def balances(self) -> list[BalanceRecord]:
        wallets = sorted(self.ledger)
        if not self.universal:
            return [
                BalanceRecord(
                    wallet,
                    self.asset,
                    self.ledger[wallet],
                    self.pools[wallet].cost if wallet in self.pools else ZERO,
                )
                for wallet in wallets
                if self.ledger[wallet] != 0
                or (wallet in self.pools and self.pools[wallet].cost != 0)
            ]
        pool = self.pools.get(ALL_WALLETS)
        pool_cost = pool.cost if pool is not None else ZERO
        holders = [wallet for wallet in wallets if self.ledger[wallet] > 0]
        shares = (
            dict(zip(holders, split(pool_cost, [self.ledger[w] for w in holders])))
            if holders
            else {}
        )
        records = [
            BalanceRecord(wallet, self.asset, self.ledger[wallet], shares.get(wallet, ZERO))
            for wallet in wallets
            if self.ledger[wallet] != 0
        ]
        if not holders and pool_cost != 0:  # basis left but no wallet holds units: say so
            records.append(BalanceRecord(ALL_WALLETS, self.asset, ZERO, pool_cost))
        return records
