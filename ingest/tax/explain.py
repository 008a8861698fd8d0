"""Explain a number: the lots one disposal consumed, from its Form 8949 lines.

The engine writes one line per portion a disposal took (a lot, a share of an average-cost pool,
a UK same-day or 30-day match, or the shortfall at zero basis), each carrying the lot's
acquisition time and acquiring transaction (``DisposalLine.acquired_us``, ``from_tx_id``). So a
disposal's lines are its lots, exactly: no replay is needed, and the lots' quantities and costs
add up to the disposal's because the disposal's figures are their sums (GET /v1/gains/{tx_id}/lots
prints both).

A lot's ``cost`` is its line's cost basis: where the method states gross proceeds (UK) that
includes the line's share of the selling fee (``selling_costs`` says how much).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ingest.tax.engine import ALL_WALLETS, combine_terms
from ingest.tax.numbers import ZERO
from ingest.tax.records import DisposalLine, Rule
from ingest.tax.years import datetime_from_micros
from ingest.vocabulary import Pooling

# How a lot was matched, as the API names it: the lot order of FIFO/LIFO/HIFO, the UK same-day
# and 30-day (bed and breakfast) rules, a pool at average cost (UK Section 104 'pool', Canada's
# 'acb'), and 'no_basis' for units no acquisition supplied (zero cost basis, flagged).
LOT_RULES = ("fifo", "hifo", "lifo", "same_day", "bed_and_breakfast", "pool", "acb", "no_basis")
_BY_ENGINE_RULE = {
    Rule.AVERAGE: "acb",
    Rule.SAME_DAY: "same_day",
    Rule.BED_AND_BREAKFAST: "bed_and_breakfast",
    Rule.SECTION_104: "pool",
    Rule.NO_BASIS: "no_basis",
}


class LotsUnrecorded(ValueError):
    """Lines stored before lots were recorded (no rule): a recompute records them."""


def lot_rule(rule: str, method: str) -> str:
    """The API's name of an engine rule; Rule.LOT is the method's own lot order."""
    if rule == Rule.LOT:
        if method not in ("fifo", "hifo", "lifo"):
            raise ValueError(f"a lot line under method {method!r}")
        return method
    try:
        return _BY_ENGINE_RULE[rule]
    except KeyError:
        raise LotsUnrecorded(f"line rule {rule!r} is not recorded") from None


@dataclass(frozen=True, slots=True)
class ExplainedDisposal:
    tx_id: str
    timestamp: datetime
    asset: str
    wallet: str
    quantity: Decimal
    proceeds: Decimal
    cost_basis: Decimal
    gain: Decimal
    term: str
    method: str


@dataclass(frozen=True, slots=True)
class ConsumedLot:
    acquired_at: datetime | None  # None: a pool's share, or no acquisition (no_basis)
    wallet: str  # the pool it was taken from: the wallet, or '*' (all wallets) when universal
    quantity: Decimal
    cost: Decimal
    selling_costs: Decimal  # of cost: the line's share of the selling fee (UK), else 0
    currency: str
    from_tx_id: str | None
    rule: str  # one of LOT_RULES


@dataclass(frozen=True, slots=True)
class Explanation:
    disposal: ExplainedDisposal
    lots: list[ConsumedLot]


def explain_disposal(
    lines: Sequence[DisposalLine], *, method: str, pooling: str, currency: str
) -> Explanation:
    """``lines``: every line of one disposal of one asset (one tx_id, one asset), in line
    order. Raises ValueError when there are none or they are of several transactions or assets,
    LotsUnrecorded when they were stored before lots were recorded."""
    if not lines:
        raise ValueError("no lines")
    first = lines[0]
    if any(line.tx_id != first.tx_id or line.asset != first.asset for line in lines):
        raise ValueError("lines of more than one disposal")
    universal = pooling == Pooling.UNIVERSAL
    lots = [
        ConsumedLot(
            acquired_at=None
            if line.acquired_us is None
            else datetime_from_micros(line.acquired_us),
            wallet=ALL_WALLETS if universal else line.wallet,
            quantity=line.quantity,
            cost=line.cost_basis,
            selling_costs=line.disposal_costs,
            currency=currency,
            from_tx_id=line.from_tx_id or None,
            rule=lot_rule(line.rule, method),
        )
        for line in lines
    ]
    term: str | None = None
    for line in lines:
        term = combine_terms(term, line.term)
    assert term is not None
    proceeds = sum((line.proceeds for line in lines), ZERO)
    cost_basis = sum((lot.cost for lot in lots), ZERO)
    return Explanation(
        disposal=ExplainedDisposal(
            tx_id=first.tx_id,
            timestamp=first.sold_at,
            asset=first.asset,
            wallet=first.wallet,
            quantity=sum((lot.quantity for lot in lots), ZERO),
            proceeds=proceeds,
            cost_basis=cost_basis,
            gain=proceeds - cost_basis,
            term=term,
            method=method,
        ),
        lots=lots,
    )
