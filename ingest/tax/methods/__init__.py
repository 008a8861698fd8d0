"""Accounting methods, one module each behind ``CostBasisMethod`` (methods.base)."""

from __future__ import annotations

from ingest.tax.methods.acb import AcbMethod
from ingest.tax.methods.base import CostBasisMethod
from ingest.tax.methods.fifo import FifoMethod
from ingest.tax.methods.hifo import HifoMethod
from ingest.tax.methods.lifo import LifoMethod
from ingest.tax.methods.uk import UkPoolingMethod
from ingest.vocabulary import Method

METHODS: dict[Method, CostBasisMethod] = {
    Method(method.name): method
    for method in (FifoMethod(), LifoMethod(), HifoMethod(), AcbMethod(), UkPoolingMethod())
}


def get_method(name: str) -> CostBasisMethod:
    try:
        return METHODS[Method(name.lower())]
    except ValueError:
        raise ValueError(f"unknown method {name!r}: one of {', '.join(METHODS)}") from None
