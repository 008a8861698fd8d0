"""Transfer reconciliation: which withdrawals and deposits are one transfer between own wallets.

Runs on the user's whole history (all uploads) before any tax. A withdrawal W and a deposit D are
one transfer when:

- same asset, different wallets;
- D happens at or after W and at most ``window_hours`` later;
- D's amount <= W's amount and >= W's amount x (1 - max_fee_share): the difference is the
  transfer fee (the events stage turns it into a disposal, as Koinly does by default);
- if both carry a transaction hash the hashes must be equal (compared case-insensitively,
  without a ``0x`` prefix).

Matching is greedy and deterministic: withdrawals in (time, tx_id) order each take the best
still-free deposit; a deposit with an equal hash beats any other, otherwise the earliest deposit
(then smallest tx_id) wins. What is left is reported, never guessed: unmatched withdrawals and
unmatched deposits become findings (the events stage decides what they mean for the books).
An unmatched withdrawal and deposit that only the fee limit keeps apart are a near miss, named on
both findings ("fee 6.1% > 5% limit"): each names its closest such leg (least lost, then
earliest). Near misses that cross a period start are carried in the checkpoint there
(``carried_near_misses``), so a resumed run words its findings like a full run.

The user's corrections (ingest/corrections) add two inputs: ``forced`` pairs, matched first and
outside every test above but the sides (a withdrawal, then at or after it a deposit of the same
asset in another wallet, receiving no more than was sent), and ``forbidden`` pairs, which the
greedy matching never pairs (nor names as a near miss). ``stated_basis``: deposits with a cost
basis the user stated; left unmatched they are acquisitions at that basis, not findings.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from ingest.normalize.canonical import plain_decimal
from ingest.tax.records import Finding, Flag
from ingest.tax.years import MICROS_PER_HOUR, datetime_from_micros

WITHDRAWAL = "withdrawal"
DEPOSIT = "deposit"


@dataclass(slots=True, frozen=True)
class TransferLeg:
    tx_id: str
    direction: str  # WITHDRAWAL | DEPOSIT
    wallet: str
    asset: str
    time_us: int
    quantity: Decimal
    tx_hash: str | None


@dataclass(slots=True, frozen=True)
class TransferMatch:
    withdrawal_tx_id: str
    deposit_tx_id: str
    asset: str
    from_wallet: str
    to_wallet: str
    withdrawn_us: int
    deposited_us: int
    sent_quantity: Decimal
    received_quantity: Decimal
    hash_matched: bool

    @property
    def fee_quantity(self) -> Decimal:
        return self.sent_quantity - self.received_quantity


@dataclass(slots=True, frozen=True)
class NearMiss:
    """An unmatched withdrawal and deposit that would be one transfer but for the fee limit."""

    asset: str
    withdrawal_tx_id: str
    deposit_tx_id: str
    withdrawn_us: int
    deposited_us: int
    lost_share: Decimal  # of the withdrawal: 1 - deposit / withdrawal
    withdrawal_note: str  # the near miss as the withdrawal's finding names it
    deposit_note: str  # ... and as the deposit's finding does


@dataclass(frozen=True)
class UserRules:
    """What the user's corrections tell the engine besides the rows (ingest/corrections/overlay
    Overlay): pairs to match, pairs never to match, deposits' stated cost basis (in the
    reporting currency)."""

    forced: frozenset[tuple[str, str]] = frozenset()
    forbidden: frozenset[tuple[str, str]] = frozenset()
    cost_basis: Mapping[str, Decimal] = field(default_factory=dict)


NO_RULES = UserRules()


@dataclass(slots=True)
class ReconcileResult:
    matches: list[TransferMatch]
    findings: list[Finding]  # unmatched_withdrawal / unmatched_deposit, in time order
    near_misses: list[NearMiss] = field(default_factory=list)  # every pair


def normalize_hash(tx_hash: str | None) -> str | None:
    if tx_hash is None:
        return None
    cleaned = tx_hash.strip().lower()
    if cleaned.startswith("0x"):
        cleaned = cleaned[2:]
    return cleaned or None


def reconcile(
    legs: list[TransferLeg],
    *,
    window_hours: float = 24.0,
    max_fee_share: float = 0.05,
    taken_deposits: frozenset[str] = frozenset(),
    carried_near_misses: Sequence[NearMiss] = (),
    forced: frozenset[tuple[str, str]] = frozenset(),
    forbidden: frozenset[tuple[str, str]] = frozenset(),
    stated_basis: frozenset[str] = frozenset(),
) -> ReconcileResult:
    """``taken_deposits``: deposits already matched by withdrawals that are not among ``legs``
    (a walk resumed at a period start: withdrawals before it took them); they are neither
    matched again nor reported unmatched. Since withdrawals are matched in time order, the
    matches of the later withdrawals are then exactly those of a run over every leg.
    ``carried_near_misses``: near misses of withdrawals that are not among ``legs`` (same resume).
    ``forced`` / ``forbidden`` / ``stated_basis``: the user's corrections (module docstring)."""
    window_us = round(window_hours * MICROS_PER_HOUR)
    if taken_deposits:
        legs = [leg for leg in legs if leg.direction != DEPOSIT or leg.tx_id not in taken_deposits]
    matches: list[TransferMatch] = []
    if forced:
        matches, legs = _forced_matches(legs, forced)
    keep_share = Decimal(1) - Decimal(str(max_fee_share))  # str(): the decimal the user wrote

    withdrawals = sorted(
        (leg for leg in legs if leg.direction == WITHDRAWAL),
        key=lambda leg: (leg.time_us, leg.tx_id),
    )
    deposits_by_asset: dict[str, list[TransferLeg]] = defaultdict(list)
    for leg in legs:
        if leg.direction == DEPOSIT:
            deposits_by_asset[leg.asset].append(leg)
    deposit_times: dict[str, list[int]] = {}
    deposit_hashes: dict[str, list[str | None]] = {}
    by_hash: dict[tuple[str, str], list[int]] = defaultdict(list)  # (asset, hash) -> indices
    for asset, deposits in deposits_by_asset.items():
        deposits.sort(key=lambda leg: (leg.time_us, leg.tx_id))
        deposit_times[asset] = [leg.time_us for leg in deposits]
        deposit_hashes[asset] = hashes = [normalize_hash(leg.tx_hash) for leg in deposits]
        for index, hashed in enumerate(hashes):
            if hashed is not None:
                by_hash[(asset, hashed)].append(index)

    taken: set[tuple[str, int]] = set()
    matched_withdrawals: set[str] = set()

    def fits(withdrawal: TransferLeg, deposit: TransferLeg) -> bool:
        return (
            deposit.wallet != withdrawal.wallet
            and (not forbidden or (withdrawal.tx_id, deposit.tx_id) not in forbidden)
            and withdrawal.time_us <= deposit.time_us <= withdrawal.time_us + window_us
            and withdrawal.quantity * keep_share <= deposit.quantity <= withdrawal.quantity
        )

    for withdrawal in withdrawals:
        deposits = deposits_by_asset.get(withdrawal.asset, [])
        if not deposits:
            continue
        chosen: int | None = None
        w_hash = normalize_hash(withdrawal.tx_hash)
        if w_hash is not None:  # an equal hash wins over closeness
            for index in by_hash.get((withdrawal.asset, w_hash), ()):
                if (withdrawal.asset, index) not in taken and fits(withdrawal, deposits[index]):
                    chosen = index
                    break
        if chosen is None:
            times = deposit_times[withdrawal.asset]
            hashes = deposit_hashes[withdrawal.asset]
            index = bisect_left(times, withdrawal.time_us)
            end_us = withdrawal.time_us + window_us
            while index < len(deposits) and times[index] <= end_us:
                deposit = deposits[index]
                d_hash = hashes[index]
                if (
                    (withdrawal.asset, index) not in taken
                    and (w_hash is None or d_hash is None or d_hash == w_hash)
                    and fits(withdrawal, deposit)
                ):
                    chosen = index
                    break
                index += 1
        if chosen is None:
            continue
        deposit = deposits[chosen]
        taken.add((withdrawal.asset, chosen))
        matched_withdrawals.add(withdrawal.tx_id)
        matches.append(
            _match(
                withdrawal,
                deposit,
                hash_matched=w_hash is not None
                and w_hash == deposit_hashes[withdrawal.asset][chosen],
            )
        )

    unmatched_deposits = {
        (asset, index) for asset, found in deposits_by_asset.items() for index in range(len(found))
    } - taken
    near_misses = [
        _near_miss(withdrawal, deposits_by_asset[withdrawal.asset][index], keep_share)
        for withdrawal in withdrawals
        if withdrawal.tx_id not in matched_withdrawals
        for index in _deposits_within(
            deposit_times.get(withdrawal.asset, []), withdrawal.time_us, window_us
        )
        if (withdrawal.asset, index) in unmatched_deposits
        and _near(withdrawal, deposits_by_asset[withdrawal.asset][index], keep_share)
        and (withdrawal.tx_id, deposits_by_asset[withdrawal.asset][index].tx_id) not in forbidden
    ]
    by_withdrawal = _closest(near_misses, "withdrawal_tx_id", "deposited_us", "deposit_tx_id")
    by_deposit = _closest(
        [*carried_near_misses, *near_misses], "deposit_tx_id", "withdrawn_us", "withdrawal_tx_id"
    )

    findings: list[Finding] = []
    for withdrawal in withdrawals:
        if withdrawal.tx_id not in matched_withdrawals:
            near = by_withdrawal.get(withdrawal.tx_id)
            findings.append(
                Finding(
                    Flag.UNMATCHED_WITHDRAWAL,
                    withdrawal.asset,
                    withdrawal.wallet,
                    datetime_from_micros(withdrawal.time_us),
                    withdrawal.tx_id,
                    f"withdrawal of {plain_decimal(withdrawal.quantity)} {withdrawal.asset} matches "
                    "no deposit: treated as a non-taxable transfer out of the books"
                    + (f"; near miss: {near.withdrawal_note}" if near else ""),
                )
            )
    for asset, deposits in deposits_by_asset.items():
        for index, deposit in enumerate(deposits):
            if (asset, index) not in taken and deposit.tx_id not in stated_basis:
                near = by_deposit.get(deposit.tx_id)
                findings.append(
                    Finding(
                        Flag.UNMATCHED_DEPOSIT,
                        asset,
                        deposit.wallet,
                        datetime_from_micros(deposit.time_us),
                        deposit.tx_id,
                        f"deposit of {plain_decimal(deposit.quantity)} {asset} matches no withdrawal: "
                        "acquired at zero (unknown) cost basis"
                        + (f"; near miss: {near.deposit_note}" if near else ""),
                    )
                )
    findings.sort(key=lambda f: (f.timestamp, f.tx_id, f.kind))
    matches.sort(key=lambda m: (m.withdrawn_us, m.withdrawal_tx_id))
    return ReconcileResult(matches=matches, findings=findings, near_misses=near_misses)


def _match(withdrawal: TransferLeg, deposit: TransferLeg, *, hash_matched: bool) -> TransferMatch:
    return TransferMatch(
        withdrawal_tx_id=withdrawal.tx_id,
        deposit_tx_id=deposit.tx_id,
        asset=withdrawal.asset,
        from_wallet=withdrawal.wallet,
        to_wallet=deposit.wallet,
        withdrawn_us=withdrawal.time_us,
        deposited_us=deposit.time_us,
        sent_quantity=withdrawal.quantity,
        received_quantity=deposit.quantity,
        hash_matched=hash_matched,
    )


def _forced_matches(
    legs: list[TransferLeg], forced: frozenset[tuple[str, str]]
) -> tuple[list[TransferMatch], list[TransferLeg]]:
    """The user's marked pairs whose legs are both here and can be one transfer (a withdrawal,
    then a deposit of the same asset in another wallet receiving no more than was sent; a pair
    that cannot is left to the greedy matching), and the legs left for it."""
    by_id = {leg.tx_id: leg for leg in legs}
    matches: list[TransferMatch] = []
    used: set[str] = set()
    for w_id, d_id in sorted(forced):
        withdrawal, deposit = by_id.get(w_id), by_id.get(d_id)
        if (
            withdrawal is None
            or deposit is None
            or withdrawal.direction != WITHDRAWAL
            or deposit.direction != DEPOSIT
            or withdrawal.asset != deposit.asset
            or withdrawal.wallet == deposit.wallet
            or deposit.time_us < withdrawal.time_us
            or deposit.quantity > withdrawal.quantity
        ):
            continue
        w_hash, d_hash = normalize_hash(withdrawal.tx_hash), normalize_hash(deposit.tx_hash)
        matches.append(
            _match(withdrawal, deposit, hash_matched=w_hash is not None and w_hash == d_hash)
        )
        used.update((w_id, d_id))
    return matches, [leg for leg in legs if leg.tx_id not in used] if used else legs


def _deposits_within(times: list[int], start_us: int, window_us: int) -> range:
    """Indices of the deposits (sorted by time) in [start, start + window]."""
    return range(bisect_left(times, start_us), bisect_left(times, start_us + window_us + 1))


def _near(withdrawal: TransferLeg, deposit: TransferLeg, keep_share: Decimal) -> bool:
    """One transfer by every rule but the fee limit: the deposit lost more than it allows."""
    w_hash, d_hash = normalize_hash(withdrawal.tx_hash), normalize_hash(deposit.tx_hash)
    return (
        deposit.wallet != withdrawal.wallet
        and (w_hash is None or d_hash is None or w_hash == d_hash)
        and 0 < deposit.quantity < withdrawal.quantity * keep_share
    )


def _near_miss(withdrawal: TransferLeg, deposit: TransferLeg, keep_share: Decimal) -> NearMiss:
    lost = 1 - deposit.quantity / withdrawal.quantity
    limit = (1 - keep_share) * 100
    # one decimal, more when one would round down to the limit ("5.0% > 5%")
    percent = next(
        (f"{lost * 100:.{d}f}" for d in range(1, 6) if round(lost * 100, d) > limit),
        plain_decimal(lost * 100),
    )
    fee = f"fee {percent}% > {plain_decimal(limit)}% limit"

    def at(time_us: int) -> str:
        return datetime_from_micros(time_us).strftime("%Y-%m-%d %H:%M UTC")

    asset = withdrawal.asset
    return NearMiss(
        asset=asset,
        withdrawal_tx_id=withdrawal.tx_id,
        deposit_tx_id=deposit.tx_id,
        withdrawn_us=withdrawal.time_us,
        deposited_us=deposit.time_us,
        lost_share=lost,
        withdrawal_note=f"the deposit of {plain_decimal(deposit.quantity)} {asset} into "
        f"{deposit.wallet} at {at(deposit.time_us)} ({fee})",
        deposit_note=f"the withdrawal of {plain_decimal(withdrawal.quantity)} {asset} from "
        f"{withdrawal.wallet} at {at(withdrawal.time_us)} ({fee})",
    )


def _closest(near_misses: Sequence[NearMiss], leg: str, then: str, tie: str) -> dict[str, NearMiss]:
    """Per leg (a tx id attribute), its closest near miss: least lost, then `then`, then `tie`."""
    out: dict[str, NearMiss] = {}
    for near in sorted(
        near_misses, key=lambda n: (n.lost_share, getattr(n, then), getattr(n, tie))
    ):
        out.setdefault(getattr(near, leg), near)
    return out
