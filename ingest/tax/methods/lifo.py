"""LIFO: the newest lot goes first (US specific identification, where records allow)."""

from __future__ import annotations

from ingest.tax.methods.base import CostBasisMethod, HeapLotPool, Lot, LotPool


def newest_first(lot: Lot) -> tuple:
    # a heap pool's lots are dated (None is only an average-cost pool's share)
    assert lot.acquired_us is not None
    return (-lot.acquired_us, -lot.seq)


class LifoMethod(CostBasisMethod):
    name = "lifo"

    def new_pool(self) -> LotPool:
        return HeapLotPool(newest_first)
