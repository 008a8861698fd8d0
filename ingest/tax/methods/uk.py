"""UK share pooling for cryptoassets (HMRC Cryptoassets Manual CRYPTO22200 onward).

A disposal is matched, in this order (TCGA92/S105, S106A, S104):
1. with acquisitions on the same day (all acquisitions of a day are one acquisition and all
   disposals of a day are one disposal; each disposal of the day gets its pro-rata share);
2. with acquisitions in the following 30 days (day + 1 .. day + 30), earliest acquisition first,
   earlier disposals first (a 31 March disposal reaches 30 April, not 1 May: CRYPTO22253);
3. with the Section 104 pool at its average cost.
Acquisitions the first two rules do not use enter the pool on their day. Days and the tax year
(6 April - 5 April, keys like ``2024/25``) are UK local days. No holding-period split (term 'n/a').

Pools are per person (per token across all wallets), so only universal pooling is allowed.
Income (staking, airdrops...) is an acquisition at its value; an unmatched deposit an acquisition
at zero (unknown) cost; fees paid in tokens are disposals in their own right (CRYPTO22280).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from ingest.tax.methods.base import (
    AverageCostPool,
    CarriedMatches,
    CostBasisMethod,
    Lot,
    LotPool,
    PreMatch,
)
from ingest.tax.numbers import ZERO, share, split
from ingest.tax.records import Rule
from ingest.tax.years import (
    london_date,
    london_day_start_us,
    uk_tax_year,
    uk_tax_year_start_us,
)

if TYPE_CHECKING:
    from ingest.tax.events import Event

BED_AND_BREAKFAST_DAYS = 30


class UkPoolingMethod(CostBasisMethod):
    name = "uk"
    holding_term = False
    per_wallet_allowed = False
    gross_proceeds = True  # SA108: proceeds gross, the selling fee in allowable costs
    pool_rule = Rule.SECTION_104
    match_lookahead_days = BED_AND_BREAKFAST_DAYS + 1  # London days vs UTC: one day of margin

    def new_pool(self) -> LotPool:
        return AverageCostPool()

    def tax_date(self, time_us: int) -> date:
        return london_date(time_us)

    def tax_year(self, day: date) -> str:
        return uk_tax_year(day)

    def year_start_us(self, year: int) -> int:
        return uk_tax_year_start_us(year)

    def resumable_at(self, time_us: int) -> int:
        # A day's acquisitions are one acquisition and its disposals one disposal (same-day
        # rule): a walk resumed mid-day would match the part after the cut alone.
        return london_day_start_us(time_us)

    def pre_match(
        self,
        events: Sequence[Event],
        carried: CarriedMatches | None = None,
        period_starts: Sequence[int] = (),
    ) -> PreMatch:
        from ingest.tax.events import EventKind

        acquisitions: dict[int, list[int]] = defaultdict(list)  # day ordinal -> event indices
        disposals: dict[int, list[int]] = defaultdict(list)
        for index, event in enumerate(events):
            if event.kind is EventKind.ACQUIRE or event.kind is EventKind.INCOME:
                acquisitions[london_date(event.time_us).toordinal()].append(index)
            elif event.kind is EventKind.DISPOSE:
                disposals[london_date(event.time_us).toordinal()].append(index)

        acquired_qty = {
            day: sum((events[i].quantity for i in idx), ZERO) for day, idx in acquisitions.items()
        }
        acquired_cost = {
            day: sum((events[i].amount or ZERO for i in idx), ZERO)
            for day, idx in acquisitions.items()
        }
        basis_known = {
            day: all(events[i].amount is not None for i in idx) for day, idx in acquisitions.items()
        }
        acquired_left = dict(acquired_qty)
        cost_used: dict[int, Decimal] = defaultdict(lambda: ZERO)
        disposed_qty = {
            day: sum((events[i].quantity for i in idx), ZERO) for day, idx in disposals.items()
        }
        disposed_left = dict(disposed_qty)
        # disposal day -> [(rule, acquisition day, quantity, cost)]
        matched: dict[int, list[tuple[str, int, Decimal, Decimal]]] = defaultdict(list)

        def match(rule: str, disposal_day: int, acquisition_day: int) -> None:
            quantity = min(disposed_left[disposal_day], acquired_left[acquisition_day])
            if quantity <= 0:
                return
            cost = share(acquired_cost[acquisition_day], quantity, acquired_qty[acquisition_day])
            if quantity == acquired_left[acquisition_day]:  # the last of the day: exact remainder
                cost = acquired_cost[acquisition_day] - cost_used[acquisition_day]
            cost_used[acquisition_day] += cost
            acquired_left[acquisition_day] -= quantity
            disposed_left[disposal_day] -= quantity
            matched[disposal_day].append((rule, acquisition_day, quantity, cost))

        disposal_days = sorted(disposals)
        for day in disposal_days:  # 1. same day
            if day in acquisitions:
                match(Rule.SAME_DAY, day, day)
        # A resumed walk: 30-day matches of the disposals before its first event come next in
        # the full run's order (all same-day matches first, then 30-day ones by disposal day).
        for day, (quantity, cost) in sorted((carried or {}).items()):
            if day in acquired_left:
                acquired_left[day] -= quantity
                cost_used[day] += cost
        acquisition_days = sorted(acquisitions)
        for day in disposal_days:  # 2. the next 30 days, earliest first
            position = bisect_right(acquisition_days, day)
            while (
                disposed_left[day] > 0
                and position < len(acquisition_days)
                and acquisition_days[position] <= day + BED_AND_BREAKFAST_DAYS
            ):
                match(Rule.BED_AND_BREAKFAST, day, acquisition_days[position])
                position += 1

        result = PreMatch()
        for start in period_starts:  # what crosses each period start, for its checkpoint
            first_day = london_date(start).toordinal()
            crossing: dict[int, tuple[Decimal, Decimal]] = {}
            carried_in = [
                (day, quantity, cost)
                for day, (quantity, cost) in (carried or {}).items()
                if day >= first_day
            ]
            made_here = [
                (acquisition_day, quantity, cost)
                for disposal_day, components in matched.items()
                if disposal_day < first_day
                for rule, acquisition_day, quantity, cost in components
                if acquisition_day >= first_day
            ]
            for day, quantity, cost in sorted(carried_in + made_here):
                known_qty, known_cost = crossing.get(day, (ZERO, ZERO))
                crossing[day] = (known_qty + quantity, known_cost + cost)
            result.carried_at[start] = crossing
        for day, components in matched.items():
            indices = disposals[day]
            quantities = [events[i].quantity for i in indices]
            fully_matched = disposed_left[day] == 0
            per_event: list[list[tuple[Lot, str]]] = [[] for _ in indices]
            for rule, acquisition_day, quantity, cost in components:
                first = events[acquisitions[acquisition_day][0]]
                for slot, (qty, cst) in enumerate(
                    zip(split(quantity, quantities), split(cost, quantities))
                ):
                    if qty > 0:
                        per_event[slot].append(
                            (
                                Lot(
                                    qty,
                                    cst,
                                    first.time_us,
                                    basis_known[acquisition_day],
                                    0,
                                    first.tx_id,
                                ),
                                rule,
                            )
                        )
            for slot, index in enumerate(indices):
                portions = per_event[slot]
                if fully_matched and portions:
                    # shares of shares may miss the event's quantity by 1e-18: give it back
                    drift = quantities[slot] - sum((lot.quantity for lot, _ in portions), ZERO)
                    portions[-1][0].quantity += drift
                if portions:
                    result.disposals[index] = portions

        for day, indices in acquisitions.items():
            left = acquired_left[day]
            if left == acquired_qty[day]:
                continue  # untouched: each enters whole
            left_cost = acquired_cost[day] - cost_used[day]
            quantities = [events[i].quantity for i in indices]
            for index, qty, cst in zip(
                indices, split(left, quantities), split(left_cost, quantities)
            ):
                result.into_pool[index] = (qty, cst, basis_known[day])
        return result
