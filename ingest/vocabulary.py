"""The words every layer shares: job kinds, stages, statuses, cost-basis methods, poolings and
the reporting currency. One definition each; the API models, the CLI, the job record and the tax
engine all use these (values are the strings stored in Cassandra and sent over HTTP).

Which method/pooling pairs are valid is a tax rule, not a word: `ingest.tax.engine.check_options`
is the one validation, and everything that accepts a pair calls it.
"""

from __future__ import annotations

import re
import sys
from enum import Enum
from typing import Annotated

from pydantic import AfterValidator

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, Enum):
        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return format(str(self.value), spec)


class JobKind(StrEnum):
    UPLOAD = "upload"  # a file: parse, store, prices, tax
    RECOMPUTE = "recompute"  # settings changed: tax only, over the whole history
    CORRECTION = "correction"  # corrections recorded: tax only, from what they change


class Stage(StrEnum):
    PARSE = "parse"
    STORE = "store"
    PRICES = "prices"
    TAX = "tax"


STAGES: tuple[Stage, ...] = tuple(Stage)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


FINISHED: frozenset[JobStatus] = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})


class Method(StrEnum):
    FIFO = "fifo"
    LIFO = "lifo"
    HIFO = "hifo"
    ACB = "acb"  # average cost (Canada's adjusted cost base)
    UK = "uk"  # HMRC share pooling: same day, 30-day bed and breakfast, section 104


class Pooling(StrEnum):
    PER_WALLET = "per-wallet"  # each wallet its own lots (US, Rev. Proc. 2024-28)
    UNIVERSAL = "universal"  # one pool per asset across wallets


_CURRENCY = re.compile(r"[A-Z]{3}")


def currency_code(value: str) -> str:
    """An ISO 4217 code, upper case ('usd' -> 'USD'). Prices are cached and requested under its
    lower-case form (CoinGecko's vs_currency)."""
    code = value.strip().upper()
    if not _CURRENCY.fullmatch(code):
        raise ValueError(f"currency must be a three-letter ISO 4217 code, not {value!r}")
    return code


Currency = Annotated[str, AfterValidator(currency_code)]
