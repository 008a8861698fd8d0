"""FIFO: the oldest lot goes first (the IRS default when lots are not specifically identified)."""

from __future__ import annotations

from ingest.tax.methods.base import CostBasisMethod, HeapLotPool, Lot, LotPool


def oldest_first(lot: Lot) -> tuple:
    return (lot.acquired_us, lot.seq)


class FifoMethod(CostBasisMethod):
    name = "fifo"

    def new_pool(self) -> LotPool:
        return HeapLotPool(oldest_first)
