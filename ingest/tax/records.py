"""Plain records the tax engine produces. All are dataclasses (picklable: they cross Ray task
boundaries); money is unrounded ``Decimal`` in the reporting currency (reports round on output)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest.tax.engine import WalkState


class Flag:
    """Flag and finding vocabulary (plain strings so records stay trivially serialisable)."""

    MISSING_PRICE = "missing_price"  # a value the tax needs is unknown: 0 was used
    MISSING_COST_BASIS = "missing_cost_basis"  # disposal with no (or unknown-basis) acquisition: 0
    NEGATIVE_BALANCE = "negative_balance"  # the transaction that first took a balance below 0
    UNMATCHED_WITHDRAWAL = "unmatched_withdrawal"  # left the books as a non-taxable transfer out
    UNMATCHED_DEPOSIT = "unmatched_deposit"  # entered the books at zero (unknown) cost basis
    TRANSFER = "transfer"  # one leg of a matched transfer between own wallets
    TRANSFER_FEE = "transfer_fee"  # units lost in a matched transfer: a disposal
    UNSUPPORTED = "unsupported"  # a row (or side of one) the engine cannot classify


class Term:
    SHORT = "short"
    LONG = "long"
    NONE = "n/a"  # the method's jurisdiction has no holding-period split (UK, Canada)
    MIXED = "mixed"  # per transaction only: lines of both terms


class Rule:
    """How a disposal line found its cost basis."""

    LOT = "lot"  # a specific lot (FIFO / LIFO / HIFO)
    AVERAGE = "average"  # average cost of the pool (ACB)
    SAME_DAY = "same_day"  # UK: acquisitions the same day (TCGA92/S105)
    BED_AND_BREAKFAST = "bed_and_breakfast"  # UK: acquisitions in the next 30 days (S106A)
    SECTION_104 = "section_104"  # UK: the Section 104 pool at average cost
    NO_BASIS = "no_basis"  # nothing to match: zero cost basis, flagged


@dataclass(slots=True)
class Finding:
    kind: str  # a Flag value
    asset: str | None
    wallet: str | None
    timestamp: datetime | None
    tx_id: str | None
    detail: str


@dataclass(slots=True)
class DisposalLine:
    """One Form 8949-style line: one disposal matched against one lot (or pool / rule)."""

    line_id: str  # stable: "<tx_id>:<asset>:<leg>:<n>"
    tx_id: str
    wallet: str
    asset: str
    quantity: Decimal
    date_acquired: date | None  # tax-calendar date; None = pooled / unknown ("VARIOUS")
    date_sold: date
    sold_at: datetime
    proceeds: Decimal
    cost_basis: Decimal
    gain: Decimal
    term: str  # Term.SHORT | Term.LONG | Term.NONE
    rule: str  # a Rule value
    purpose: str  # sell, trade, spend, fee, transfer_fee
    tax_year: str
    flags: frozenset[str] = frozenset()
    # Of cost_basis, the incidental costs of disposal (the selling fee), where the method states
    # gross proceeds (UK); the rest is the lots' cost.
    disposal_costs: Decimal = Decimal(0)
    # The lot this line consumed (GET /v1/gains/{tx_id}/lots): when it was acquired (UTC us;
    # None: a share of an average-cost pool or no acquisition) and the transaction that acquired
    # it ('' for a pool's share or the unknown-basis shortfall).
    acquired_us: int | None = None
    from_tx_id: str = ""


@dataclass(slots=True)
class IncomeRecord:
    tx_id: str
    wallet: str
    asset: str
    quantity: Decimal
    date: date
    received_at: datetime
    value: Decimal  # 0 when unknown (flagged missing_price)
    label: str
    tax_year: str
    flags: frozenset[str] = frozenset()


@dataclass(slots=True)
class BalanceRecord:
    """Holdings at the end of the history. ``quantity`` is the wallet's ledger (sum of its rows,
    can be negative when the history is incomplete); ``cost_basis`` is the basis of the lots held
    there. In universal pooling lots are not per wallet: a wallet's cost_basis is its pro-rata
    share (by quantity) of the asset's pool, and the wallets' shares add up to the pool's basis."""

    wallet: str
    asset: str
    quantity: Decimal
    cost_basis: Decimal


@dataclass(slots=True)
class TxMetrics:
    """What one transaction did to the books. Money fields are None when it disposed of /
    acquired nothing; ``balance_after`` is, per asset it touched, the balance of its own wallet
    right after it."""

    proceeds: Decimal | None = None
    cost_basis: Decimal | None = None
    gain: Decimal | None = None
    term: str | None = None  # short | long | mixed | n/a | None (no disposal)
    acquired_cost: Decimal | None = None  # basis of units it acquired (buy, trade, income)
    balance_after: dict[str, Decimal] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)


@dataclass(slots=True)
class YearSummary:
    """Totals of one tax year (or one year and asset). With no holding-period split (UK, ACB)
    short_term_gain and long_term_gain are None and only ``gain`` is meaningful."""

    proceeds: Decimal = Decimal(0)
    cost_basis: Decimal = Decimal(0)
    short_term_gain: Decimal | None = Decimal(0)
    long_term_gain: Decimal | None = Decimal(0)
    income: Decimal = Decimal(0)
    gain: Decimal = Decimal(0)


@dataclass(slots=True)
class AssetResult:
    """compute_asset's answer for one asset: independent of every other asset."""

    asset: str
    disposals: list[DisposalLine]
    income: list[IncomeRecord]
    balances: list[BalanceRecord]
    findings: list[Finding]
    per_tx: dict[str, TxMetrics]
    years: dict[str, YearSummary] = field(default_factory=dict)  # this asset's tax years
    # period start (us) -> the walk's state there (ingest.tax.checkpoints)
    snapshots: dict[int, WalkState] = field(default_factory=dict)
    # period start -> UK 30-day matches of earlier disposals into later acquisition days
    carried_matches: dict[int, dict[int, tuple[Decimal, Decimal]]] = field(default_factory=dict)


@dataclass(slots=True)
class TaxResult:
    method: str
    pooling: str
    currency: str
    disposals: list[DisposalLine]
    income: list[IncomeRecord]
    balances: list[BalanceRecord]
    findings: list[Finding]
    per_tx: dict[str, TxMetrics]
    years: dict[str, YearSummary]
    years_by_asset: dict[tuple[str, str], YearSummary]  # (tax_year, asset) -> totals
