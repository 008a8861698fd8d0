"""The one interface every accounting method implements, and the two pool shapes they use.

A method decides (1) how the units a disposal takes are identified: lots in some order
(FIFO/LIFO/HIFO) or one average (ACB, the UK's Section 104 pool), optionally after rules that
match disposals with specific acquisitions first (the UK same-day and 30-day rules, ``pre_match``),
(2) whether gains split into short and long term, and (3) its tax calendar. Everything else
(ledgers, transfers, lines, findings) is the engine's, identical for every method.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

from ingest.tax.numbers import ZERO, share
from ingest.tax.records import Rule
from ingest.tax.years import calendar_year, calendar_year_start_us, utc_date

if TYPE_CHECKING:
    from ingest.tax.events import Event


@dataclass(slots=True)
class Lot:
    """Units acquired together (or a share of a pool): quantity and their total cost basis."""

    quantity: Decimal
    cost: Decimal
    acquired_us: int | None  # None: a share of an average-cost pool, no single date
    basis_known: bool  # False: units of unknown basis (unmatched deposit, missing price)
    seq: int  # acquisition order: the final tie-breaker
    origin_tx_id: str


def copy_lot(lot: Lot) -> Lot:
    return Lot(lot.quantity, lot.cost, lot.acquired_us, lot.basis_known, lot.seq, lot.origin_tx_id)


@dataclass(slots=True)
class PoolState:
    """A pool as plain data (what a checkpoint stores): its totals and, for a heap pool, its
    lots in heap order, each with the order key it entered with (HIFO's unit cost is taken when
    the lot enters, and a partly taken lot keeps its place) and its insertion number. Which
    pool, and how it orders lots added later, comes from the method on restore."""

    kind: str  # HeapLotPool.KIND | AverageCostPool.KIND
    quantity: Decimal
    cost: Decimal
    unknown_quantity: Decimal = ZERO  # average-cost pools only
    lots: list[Lot] = field(default_factory=list)
    order_keys: list[tuple] = field(default_factory=list)
    added: list[int] = field(default_factory=list)
    next_added: int = 0


class LotPool(ABC):
    """The holdings of one asset in one pool (a wallet, or all wallets)."""

    KIND: ClassVar[str]
    quantity: Decimal
    cost: Decimal

    @abstractmethod
    def add(self, lot: Lot) -> None: ...

    @abstractmethod
    def take(self, quantity: Decimal) -> tuple[list[Lot], Decimal]:
        """Remove up to ``quantity``: the portions taken, in the method's order, and the
        shortfall (what the pool could not supply)."""

    @abstractmethod
    def export(self) -> PoolState:
        """A snapshot: later changes to the pool do not reach it."""

    @abstractmethod
    def load(self, state: PoolState) -> None:
        """Become the pool ``state`` describes (a fresh pool of the method's own kind)."""

    def _check_kind(self, state: PoolState) -> None:
        if state.kind != self.KIND:
            raise ValueError(f"a {state.kind!r} pool cannot restore into a {self.KIND!r} pool")


class HeapLotPool(LotPool):
    """Lots taken smallest ``order_key`` first; a partly taken lot keeps its place."""

    KIND = "heap"

    def __init__(self, order_key: Callable[[Lot], tuple]) -> None:
        self._order_key = order_key
        self._heap: list[tuple[tuple, int, Lot]] = []
        self._added = 0  # insertion counter: breaks ties (parts of one lot share its seq)
        self.quantity = ZERO
        self.cost = ZERO

    def add(self, lot: Lot) -> None:
        heapq.heappush(self._heap, (self._order_key(lot), self._added, lot))
        self._added += 1
        self.quantity += lot.quantity
        self.cost += lot.cost

    def take(self, quantity: Decimal) -> tuple[list[Lot], Decimal]:
        portions: list[Lot] = []
        remaining = quantity
        heap = self._heap
        while remaining > 0 and heap:
            lot = heap[0][2]
            if lot.quantity <= remaining:
                heapq.heappop(heap)
                portions.append(lot)
                remaining -= lot.quantity
            else:
                part_cost = share(lot.cost, remaining, lot.quantity)
                portions.append(
                    Lot(
                        remaining,
                        part_cost,
                        lot.acquired_us,
                        lot.basis_known,
                        lot.seq,
                        lot.origin_tx_id,
                    )
                )
                lot.quantity -= remaining
                lot.cost -= part_cost
                remaining = ZERO
        for portion in portions:
            self.quantity -= portion.quantity
            self.cost -= portion.cost
        return portions, remaining

    def lots(self) -> list[Lot]:
        return [lot for _, _, lot in sorted(self._heap, key=lambda entry: entry[:2])]

    def export(self) -> PoolState:
        heap = self._heap  # the heap's own array order: restored as is, it is the same heap
        return PoolState(
            kind=self.KIND,
            quantity=self.quantity,
            cost=self.cost,
            lots=[copy_lot(lot) for _, _, lot in heap],
            order_keys=[key for key, _, _ in heap],
            added=[added for _, added, _ in heap],
            next_added=self._added,
        )

    def load(self, state: PoolState) -> None:
        self._check_kind(state)
        if not len(state.lots) == len(state.order_keys) == len(state.added):
            raise ValueError(
                "a heap pool's lots, order keys and insertion numbers differ in length"
            )
        self._heap = [
            (key, added, copy_lot(lot))
            for key, added, lot in zip(state.order_keys, state.added, state.lots)
        ]
        self._added = state.next_added
        self.quantity = state.quantity
        self.cost = state.cost


class AverageCostPool(LotPool):
    """One pool at average cost (Canada's ACB, the UK's Section 104 holding)."""

    KIND = "average"

    def __init__(self) -> None:
        self.quantity = ZERO
        self.cost = ZERO
        self.unknown_quantity = ZERO  # units of unknown basis inside the average

    def add(self, lot: Lot) -> None:
        self.quantity += lot.quantity
        self.cost += lot.cost
        if not lot.basis_known:
            self.unknown_quantity += lot.quantity

    def take(self, quantity: Decimal) -> tuple[list[Lot], Decimal]:
        available = min(quantity, self.quantity) if self.quantity > 0 else ZERO
        if available <= 0:
            return [], quantity
        part_cost = share(self.cost, available, self.quantity)
        part_unknown = share(self.unknown_quantity, available, self.quantity)
        self.quantity -= available
        self.cost -= part_cost
        self.unknown_quantity -= part_unknown
        return [Lot(available, part_cost, None, part_unknown == 0, 0, "")], quantity - available

    def export(self) -> PoolState:
        return PoolState(self.KIND, self.quantity, self.cost, self.unknown_quantity)

    def load(self, state: PoolState) -> None:
        self._check_kind(state)
        self.quantity = state.quantity
        self.cost = state.cost
        self.unknown_quantity = state.unknown_quantity


@dataclass(slots=True)
class PreMatch:
    """Identification done before the pool is consulted (UK same-day and 30-day rules).

    ``disposals``: event index -> (portion, rule) matched to specific acquisitions; the rest of
    the disposal comes from the pool. ``into_pool``: acquisition event index -> (quantity, cost)
    that enters the pool (what the rules did not match); acquisitions absent here enter whole."""

    disposals: dict[int, list[tuple[Lot, str]]] = field(default_factory=dict)
    into_pool: dict[int, tuple[Decimal, Decimal, bool]] = field(default_factory=dict)
    # per requested period start: acquisition day ordinal (on or after the start's day) ->
    # (quantity, cost) that 30-day matches of disposals before the start took from that day
    carried_at: dict[int, dict[int, tuple[Decimal, Decimal]]] = field(default_factory=dict)


# What matching carries into a period: acquisition day ordinal -> (quantity, cost) taken by
# disposals before the period start (see PreMatch.carried_at).
CarriedMatches = dict[int, tuple[Decimal, Decimal]]


class CostBasisMethod(ABC):
    name: ClassVar[str]
    holding_term: ClassVar[bool] = True  # US-style short / long split
    per_wallet_allowed: ClassVar[bool] = True
    # Disposal lines state gross proceeds, with the incidental costs of disposal (the selling
    # fee) in the allowable costs (HMRC CG15250, TCGA 1992 s38: the SA108 boxes); otherwise
    # proceeds are net of the fee (Form 8949's convention). The gain is the same either way.
    gross_proceeds: ClassVar[bool] = False
    pool_rule: ClassVar[str] = Rule.LOT  # rule of lines the pool supplies
    # How far after an event matching rules may look (days): a disposal's identification can
    # depend on acquisitions this much later (the UK 30-day rule), so a checkpoint at a period
    # start stays valid only while the rows up to this much later are unchanged.
    match_lookahead_days: ClassVar[int] = 0

    @abstractmethod
    def new_pool(self) -> LotPool: ...

    def pre_match(
        self,
        events: Sequence[Event],
        carried: CarriedMatches | None = None,
        period_starts: Sequence[int] = (),
    ) -> PreMatch | None:
        """``carried``: a resumed walk's matches made before its first event; ``period_starts``:
        where to report what is carried (PreMatch.carried_at)."""
        return None

    def tax_date(self, time_us: int) -> date:
        return utc_date(time_us)

    def tax_year(self, day: date) -> str:
        return calendar_year(day)

    def resumable_at(self, time_us: int) -> int:
        """The latest instant at or before ``time_us`` where a walk may stop and resume from its
        state (a streamed period's end): any instant, unless matching takes a whole tax day."""
        return time_us

    def year_start_us(self, year: int) -> int:
        """The first instant of the tax year that begins in calendar year ``year`` (UTC us)."""
        return calendar_year_start_us(year)
