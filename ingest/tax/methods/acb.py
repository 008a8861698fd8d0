"""ACB: Canada's adjusted cost base, the average cost per unit of all identical property held.

Canada has no holding-period split (term 'n/a') and pools per taxpayer, so universal pooling is
the Canadian computation; per-wallet pooling is offered as a comparison view. Out of scope: the
superficial loss rule (a loss is denied when the property is re-acquired within 30 days before or
after the disposal and still held 30 days after); losses are reported as computed.
"""

from __future__ import annotations

from ingest.tax.methods.base import AverageCostPool, CostBasisMethod, LotPool
from ingest.tax.records import Rule


class AcbMethod(CostBasisMethod):
    name = "acb"
    holding_term = False
    pool_rule = Rule.AVERAGE

    def new_pool(self) -> LotPool:
        return AverageCostPool()
