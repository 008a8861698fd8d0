"""The tax computation, composed once for both executors: `ledgerflow tax` runs it in process,
a job runs it on Ray. Reconcile the valued history, run the cost-basis method per asset (one task
each), merge. Engine objects travel packed (see packing.py)."""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from ingest.config import Settings
from ingest.pipeline.executors import Executor
from ingest.pipeline.packing import pack, unpack
from ingest.tax.engine import (
    PreparedHistory,
    check_options,
    compute_asset,
    merge,
    prepare,
)
from ingest.tax.records import TaxResult
from ingest.vocabulary import Method, Pooling


@dataclass(frozen=True)
class TaxOptions:
    method: Method
    pooling: Pooling
    currency: str
    transfer_window_hours: float = 24.0
    transfer_max_fee_share: float = 0.05

    def __post_init__(self) -> None:
        check_options(self.method, self.pooling)

    @classmethod
    def of(cls, method: Method, pooling: Pooling, currency: str,
           settings: Settings) -> TaxOptions:
        return cls(method, pooling, currency, settings.transfer_window_hours,
                   settings.transfer_max_fee_share)


def compute_asset_task(asset: str, events: bytes, options: TaxOptions) -> bytes:
    return pack(compute_asset(asset, unpack(events), method=options.method,
                              pooling=options.pooling, currency=options.currency))


def compute_tax(valued: pa.Table, options: TaxOptions, executor: Executor, *,
                label: str = "local") -> tuple[PreparedHistory, TaxResult]:
    """`valued` is value_transactions' output for the whole history; tasks are named
    tax:<label>:<asset>."""
    prepared = prepare(valued, pooling=options.pooling,
                       transfer_window_hours=options.transfer_window_hours,
                       transfer_max_fee_share=options.transfer_max_fee_share)
    handles = [executor.submit(compute_asset_task, asset, pack(events), options,
                               name=f"tax:{label}:{asset}")
               for asset, events in prepared.assets.items()]
    results = [unpack(blob) for blob in executor.get(handles)]
    return prepared, merge(prepared, results, method=options.method, currency=options.currency)
