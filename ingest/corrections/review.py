"""Review: the reconciliation findings grouped by kind, each kind with its title and the
corrections that fix one of its findings (GET /v1/review).

Pure: counts per kind in, groups out; one finding and its transaction in, an item's message
and actions out. An action is a correction kind (ingest/corrections/kinds.py); a mark_transfer
action carries the counterpart the reconciler saw as a near miss (the leg that only the fee
limit kept apart, which its finding names), when there was one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from ingest.corrections.kinds import EditTransaction, MarkTransfer, SetCostBasis, SetIgnored
from ingest.tax.records import Flag

COST_BASIS, MARK_TRANSFER = SetCostBasis.kind, MarkTransfer.kind
IGNORE, EDIT = SetIgnored.kind, EditTransaction.kind


@dataclass(frozen=True, slots=True)
class ReviewKind:
    kind: str
    title: str
    actions: tuple[str, ...]  # correction kinds, the likeliest fix first


# In the order the review shows them: the ones that move a figure most first.
REVIEW_KINDS: tuple[ReviewKind, ...] = (
    ReviewKind(
        Flag.MISSING_COST_BASIS,
        "Disposals with no known acquisition: zero cost basis used",
        (EDIT, IGNORE),
    ),
    ReviewKind(
        Flag.UNMATCHED_DEPOSIT,
        "Deposits matched to no withdrawal: acquired at zero cost basis",
        (MARK_TRANSFER, COST_BASIS, EDIT, IGNORE),
    ),
    ReviewKind(
        Flag.UNMATCHED_WITHDRAWAL,
        "Withdrawals matched to no deposit: left your books untaxed",
        (MARK_TRANSFER, EDIT, IGNORE),
    ),
    ReviewKind(
        Flag.NEGATIVE_BALANCE,
        "Balances below zero: a history is incomplete",
        (EDIT, IGNORE),
    ),
    ReviewKind(
        Flag.MISSING_PRICE,
        "Transactions with no price: a value of 0 used",
        (EDIT, IGNORE),
    ),
    ReviewKind(
        Flag.UNSUPPORTED,
        "Rows the engine could not classify",
        (EDIT, IGNORE),
    ),
)
_BY_KIND = {k.kind: k for k in REVIEW_KINDS}


def review_kind(kind: str) -> ReviewKind:
    """Any stored kind, known or not (a kind added later still shows, fixable by edit/ignore)."""
    known = _BY_KIND.get(kind)
    return known or ReviewKind(kind, kind.replace("_", " ").capitalize(), (EDIT, IGNORE))


@dataclass(frozen=True, slots=True)
class ReviewGroup:
    kind: str
    title: str
    count: int
    actions: tuple[str, ...]


def group_findings(counts: Mapping[str, int]) -> list[ReviewGroup]:
    """The kinds with findings, in REVIEW_KINDS order (unknown kinds after, by name)."""
    order = {k.kind: n for n, k in enumerate(REVIEW_KINDS)}
    kinds = sorted(
        (kind for kind, count in counts.items() if count > 0),
        key=lambda kind: (order.get(kind, len(order)), kind),
    )
    return [
        ReviewGroup(kind, review_kind(kind).title, counts[kind], review_kind(kind).actions)
        for kind in kinds
    ]


@dataclass(frozen=True, slots=True)
class NearLeg:
    """The counterpart a near-miss note names: the other leg's direction, quantity, asset,
    wallet and minute (notes are worded by ingest/tax/reconcile.py _near_miss)."""

    direction: str  # 'deposit' | 'withdrawal'
    quantity: Decimal
    asset: str
    wallet: str
    minute: datetime  # UTC, seconds dropped

    def matches(self, tx: Mapping[str, Any]) -> bool:
        """Whether a transaction row (transactions_view columns) is this leg."""
        ts = tx.get("timestamp")
        if ts is None or tx.get("type") != self.direction or tx.get("wallet") != self.wallet:
            return False
        moment = ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
        if not self.minute <= moment < self.minute + timedelta(minutes=1):
            return False
        side = "received" if self.direction == "deposit" else "sent"
        return tx.get(f"{side}_asset") == self.asset and tx.get(f"{side}_amount") == self.quantity


_NEAR = re.compile(
    r"; near miss: the (?P<direction>deposit|withdrawal) of (?P<quantity>\S+) (?P<asset>\S+) "
    r"(?:into|from) (?P<wallet>.+) at (?P<minute>\d{4}-\d\d-\d\d \d\d:\d\d) UTC \(fee "
)


def near_leg(detail: str) -> NearLeg | None:
    """The counterpart a finding's near-miss note names, if it names one."""
    found = _NEAR.search(detail)
    if found is None:
        return None
    try:
        quantity = Decimal(found["quantity"])
    except InvalidOperation:
        return None
    minute = datetime.strptime(found["minute"], "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc)
    return NearLeg(found["direction"], quantity, found["asset"], found["wallet"], minute)


@dataclass(frozen=True, slots=True)
class ReviewAction:
    kind: str  # a correction kind
    counterpart_tx_id: str | None = None  # mark_transfer: the suggested other leg


def item_actions(kind: str, counterpart_tx_id: str | None = None) -> list[ReviewAction]:
    return [
        ReviewAction(action, counterpart_tx_id if action == MARK_TRANSFER else None)
        for action in review_kind(kind).actions
    ]


def moved_amount(tx: Mapping[str, Any], asset: str | None) -> Decimal | None:
    """What a transaction moved of the finding's asset: sent, else received, else the fee."""
    if asset is None:
        return None
    for side in ("sent", "received", "fee"):
        if tx.get(f"{side}_asset") == asset and tx.get(f"{side}_amount") is not None:
            amount: Decimal = tx[f"{side}_amount"]
            return amount
    return None
