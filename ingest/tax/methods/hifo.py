"""HIFO: the lot with the highest unit cost goes first (US specific identification); equal unit
costs go oldest first."""

from __future__ import annotations

from ingest.tax.methods.base import CostBasisMethod, HeapLotPool, Lot, LotPool


def dearest_first(lot: Lot) -> tuple:
    # unit cost only orders lots: it is never used as money, so its rounding does not matter
    unit_cost = lot.cost / lot.quantity if lot.quantity else lot.cost
    return (-unit_cost, lot.acquired_us, lot.seq)


class HifoMethod(CostBasisMethod):
    name = "hifo"

    def new_pool(self) -> LotPool:
        return HeapLotPool(dearest_first)
