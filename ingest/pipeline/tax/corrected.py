"""The history source with the user's corrections applied (issue 21): a wrapper around any
HistorySource (Cassandra, memory), so the raw read stays the inner adapter's business.

Read tasks each take a month group (stage.read_task), so what the wrapper does per group is
only what is per row: rows added by hand join their own month (``months()`` lists theirs too),
deleted uploads' rows, ignored rows, edits and wallet renames apply row by row
(``overlay.apply_corrections`` on the group). What needs the whole history is decided
elsewhere:

- the forced and forbidden transfer pairs and the stated cost bases need both legs present:
  transfers are of one asset, so the shard owning it decides (``rules_for``, over every row of
  the shard, before a resume point trims them);
- which corrections changed nothing (``unapplied``) is judged by the job over what every group
  saw (``merge_changes``);
- what a job's new corrections touch (per asset, the earliest time): each group reports its
  changed rows and the transfer legs it saw; ``merge_changes`` adds the pairs linked to a
  changed leg (a leg marked away from another frees that other leg, wherever its month).

Checkpoints: their digests count rows by tx_id, so an edit or a rename (same tx_ids) or a pair
or basis (no row at all) would leave them equal. ``digest_rows`` gives small stand-in rows for
the corrections in effect (one per corrected transaction and correction, one per rename and
asset at the earliest renamed row of the group), folded into the digests: a checkpoint made
before a correction is not resumed after it, and one made before a correction that was undone
is valid again.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest.corrections.kinds import (
    AddTransaction,
    Change,
    Correction,
    DeleteAddedTransaction,
    EditTransaction,
    MarkTransfer,
    RenameWallet,
    SetCostBasis,
    SetIgnored,
    Undo,
    UnmarkTransfer,
    manual_tx_id,
)
from ingest.corrections.overlay import (
    Overlay,
    _transfer_rules,
    active,
    apply_corrections,
    earliest_changes,
    rows_of_deleted_uploads,
)
from ingest.load.transactions import month_keys
from ingest.normalize.canonical import ASSET_COLUMNS
from ingest.pipeline.tax.ports import HistorySource
from ingest.tax.reconcile import NO_RULES, UserRules

Pair = tuple[str, str]
DIGEST_COLUMNS = ("tx_id", "timestamp", *ASSET_COLUMNS)


@dataclass(frozen=True)
class GroupChanges:
    """What one month group saw of a job's new corrections."""

    earliest: dict[str, datetime]  # asset -> earliest row the new corrections change
    legs: dict[str, tuple[tuple[str, ...], datetime]]  # transfer leg seen -> (assets, time)
    changed: frozenset[str]  # tx_ids of changed rows that are transfer legs or have a basis
    seen: frozenset[str]  # tx_ids named by corrections present in the group (before removals)
    wallets: frozenset[str]  # renamed wallets (old names) with rows in the group
    # (tx_id, timestamp) of the rows the new corrections take out of the history: their view
    # rows are deleted
    removed: pa.Table | None = None


@dataclass(frozen=True)
class CorrectedHistory:
    """``inner``'s rows with ``corrections`` (every one of the user's, undos included, in
    recorded order) applied. ``new``: the corrections the running job applies (what it touched
    is reported by ``read_with_changes``). ``uploads_of``: tx_id -> uploads holding it, for the
    rows of deleted uploads (store.uploads_of)."""

    inner: HistorySource
    corrections: tuple[Correction, ...] = ()
    new: frozenset[uuid.UUID] = frozenset()
    uploads_of: Mapping[str, frozenset[str]] = field(default_factory=dict)

    # --- HistorySource ---------------------------------------------------------------------
    def months(self) -> list[int]:
        months = set(self.inner.months())
        for counted in (active(self.corrections), self._before()):
            months.update(_month(add.timestamp) for add in _added(counted))
        return sorted(months)

    def read(self, months: Sequence[int]) -> pa.Table:
        return self._apply(self.inner.read(months), months, active(self.corrections))

    # --- what the stage asks besides ------------------------------------------------------
    def read_with_changes(self, months: Sequence[int]) -> tuple[pa.Table, GroupChanges]:
        raw = self.inner.read(months)
        after = self._apply(raw, months, active(self.corrections))
        before = self._apply(raw, months, self._before()) if self.new else after
        earliest = earliest_changes(Overlay(before), Overlay(after)) if self.new else {}
        linked = self._pair_legs() | self._based()
        legs: dict[str, tuple[tuple[str, ...], datetime]] = {}
        changed: set[str] = set()
        if linked:
            keys = pa.array(sorted(linked), pa.string())
            for rows in (before, after):
                hit = rows.filter(pc.is_in(rows.column("tx_id"), value_set=keys))
                for tx, at, *assets in zip(
                    *(hit.column(c).to_pylist() for c in ("tx_id", "timestamp", *ASSET_COLUMNS))
                ):
                    legs[tx] = (tuple(a for a in assets if a is not None), at)
            if self.new:
                changed = _changed_ids(before, after) & linked
        removed = None
        if self.new:
            gone = pc.invert(pc.is_in(before.column("tx_id"), value_set=after.column("tx_id")))
            removed = before.filter(gone).select(["tx_id", "timestamp"])
        return after, GroupChanges(
            removed=removed,
            earliest=earliest,
            legs=legs,
            changed=frozenset(changed),
            seen=self._seen(raw, months),
            wallets=frozenset(_wallets_renamed(raw, self.corrections)),
        )

    def digest_rows(self, rows: pa.Table) -> pa.Table:
        """Stand-in rows for the corrections in effect on ``rows`` (a group's corrected rows):
        folded into the checkpoint digests (module docstring)."""
        counted = active(self.corrections)
        named: dict[str, list[str]] = {}
        for c in counted:
            for tx in _named(c.change):
                named.setdefault(tx, []).append(str(c.correction_id))
        out: list[pa.Table] = []
        if named and rows.num_rows:
            hit = rows.filter(
                pc.is_in(rows.column("tx_id"), value_set=pa.array(sorted(named), pa.string()))
            ).select(list(DIGEST_COLUMNS))
            if hit.num_rows:
                ids = [f"{tx}|{','.join(named[tx])}" for tx in hit.column("tx_id").to_pylist()]
                out.append(hit.set_column(0, "tx_id", pa.array(ids, pa.string())))
        renames = [c for c in counted if isinstance(c.change, RenameWallet)]
        if renames and rows.num_rows:
            finals = {c.change.new for c in renames if isinstance(c.change, RenameWallet)}
            moved = rows.filter(
                pc.is_in(rows.column("wallet"), value_set=pa.array(sorted(finals), pa.string()))
            )
            tag = "rename|" + ",".join(str(c.correction_id) for c in renames)
            for column in ASSET_COLUMNS:
                part = moved.filter(pc.is_valid(moved.column(column)))
                if not part.num_rows:
                    continue
                first = part.group_by(column).aggregate([("timestamp", "min")])
                n = first.num_rows
                out.append(
                    pa.table(
                        {
                            "tx_id": pa.array([f"{tag}|{column}"] * n, pa.string()),
                            "timestamp": first.column("timestamp_min"),
                            **{
                                c: first.column(column) if c == column else pa.nulls(n, pa.string())
                                for c in ASSET_COLUMNS
                            },
                        }
                    )
                )
        if not out:
            return rows.select(list(DIGEST_COLUMNS)).slice(0, 0)
        schema = rows.select(list(DIGEST_COLUMNS)).schema
        return pa.concat_tables([t.cast(schema) for t in out])

    def rules_for(self, rows: pa.Table, currency: str) -> UserRules:
        """The forced/forbidden pairs and stated bases whose transactions are all in ``rows``
        (a shard's corrected rows, all of an asset's: transfers are of one asset)."""
        counted = active(self.corrections)
        marks: dict[Pair, tuple[int, bool]] = {}
        bases: dict[str, tuple[Decimal, str]] = {}
        for position, c in enumerate(counted):
            change = c.change
            if isinstance(change, (MarkTransfer, UnmarkTransfer)):
                pair = (change.withdrawal_tx_id, change.deposit_tx_id)
                marks[pair] = (position, isinstance(change, MarkTransfer))
            elif isinstance(change, SetCostBasis):
                bases[change.tx_id] = (change.cost_basis, change.currency)
        if not marks and not bases:
            return NO_RULES
        wanted = {tx for pair in marks for tx in pair} | set(bases)
        ids = rows.column("tx_id")
        present = set(
            ids.filter(pc.is_in(ids, value_set=pa.array(sorted(wanted), pa.string()))).to_pylist()
        )
        forced, forbidden = _transfer_rules(marks, present)
        return UserRules(
            forced=forced,
            forbidden=forbidden,
            cost_basis={
                tx: amount
                for tx, (amount, ccy) in bases.items()
                if tx in present and ccy.upper() == currency.upper()
            },
        )

    # --- helpers -----------------------------------------------------------------------------
    def _before(self) -> list[Correction]:
        return active([c for c in self.corrections if c.correction_id not in self.new])

    def _apply(self, raw: pa.Table, months: Sequence[int], counted: list[Correction]) -> pa.Table:
        if not counted:
            return raw
        rows = apply_corrections(raw, counted, uploads_of=self.uploads_of).history
        if rows.num_rows > raw.num_rows or any(
            isinstance(c.change, AddTransaction) for c in counted
        ):
            # rows added by hand belong to their own month's group only
            keep = np.isin(month_keys(rows.column("timestamp")), list(months))
            if not keep.all():
                rows = rows.filter(pa.array(keep))
        return rows

    def _pair_legs(self) -> set[str]:
        return {
            tx
            for c in self.corrections
            if isinstance(c.change, (MarkTransfer, UnmarkTransfer))
            for tx in (c.change.withdrawal_tx_id, c.change.deposit_tx_id)
        }

    def _based(self) -> set[str]:
        return {c.change.tx_id for c in self.corrections if isinstance(c.change, SetCostBasis)}

    def _seen(self, raw: pa.Table, months: Sequence[int]) -> frozenset[str]:
        """Of the tx_ids the corrections name, those in the group's rows (hand-added included,
        ignored ones too, rows of deleted uploads not): whether a correction applies is judged
        over every group."""
        named = {tx for c in self.corrections for tx in _named(c.change)}
        named |= {tx for c in self.corrections if (tx := _deleted_added(c.change))}
        named -= rows_of_deleted_uploads(active(self.corrections), self.uploads_of)
        if not named:
            return frozenset()
        adds = [
            c
            for c in active(self.corrections)
            if isinstance(c.change, (AddTransaction, DeleteAddedTransaction))
        ]
        with_added = apply_corrections(raw, adds).history
        keep = np.isin(month_keys(with_added.column("timestamp")), list(months))
        ids = with_added.column("tx_id").filter(pa.array(keep))
        return frozenset(
            ids.filter(pc.is_in(ids, value_set=pa.array(sorted(named), pa.string()))).to_pylist()
        )


def _deleted_added(change: Change) -> str | None:
    return change.tx_id if isinstance(change, DeleteAddedTransaction) else None


def _named(change: Change) -> tuple[str, ...]:
    """The transactions a correction names whose rows stay (edits, bases, pairs, ignores)."""
    if isinstance(change, (EditTransaction, SetCostBasis, SetIgnored)):
        return (change.tx_id,)
    if isinstance(change, (MarkTransfer, UnmarkTransfer)):
        return (change.withdrawal_tx_id, change.deposit_tx_id)
    return ()


def _added(counted: Sequence[Correction]) -> list[AddTransaction]:
    """The rows added by hand and not deleted by hand."""
    deleted = {c.change.tx_id for c in counted if isinstance(c.change, DeleteAddedTransaction)}
    return [
        c.change
        for c in counted
        if isinstance(c.change, AddTransaction)
        and manual_tx_id(c.user_id, c.correction_id) not in deleted
    ]


def _month(at: datetime) -> int:
    at = at.astimezone(timezone.utc)
    return at.year * 100 + at.month


def _changed_ids(before: pa.Table, after: pa.Table) -> set[str]:
    """tx_ids of rows added, removed or changed between two corrected groups."""
    a_ids, b_ids = set(before.column("tx_id").to_pylist()), set(after.column("tx_id").to_pylist())
    out = a_ids ^ b_ids
    common = pa.array(sorted(a_ids & b_ids), pa.string())
    if len(common):
        a = before.filter(pc.is_in(before.column("tx_id"), value_set=common)).sort_by("tx_id")
        b = after.filter(pc.is_in(after.column("tx_id"), value_set=common)).sort_by("tx_id")
        for tx, x, y in zip(a.column("tx_id").to_pylist(), a.to_pylist(), b.to_pylist()):
            if x != y:
                out.add(tx)
    return out


def _wallets_renamed(raw: pa.Table, corrections: Sequence[Correction]) -> set[str]:
    olds = {c.change.old for c in corrections if isinstance(c.change, RenameWallet)}
    if not olds or not raw.num_rows:
        return set()
    return olds & set(pc.unique(raw.column("wallet")).to_pylist())


@dataclass(frozen=True)
class CorrectionOutcome:
    """What the groups saw, merged: per asset the earliest time the job's new corrections
    change (its cutoffs), and the corrections in effect that changed nothing, with why."""

    touched: dict[str, datetime]
    unapplied: dict[uuid.UUID, str]
    removed: pa.Table | None = None  # (tx_id, timestamp) of the rows they took out


def merge_changes(history: CorrectedHistory, parts: Sequence[GroupChanges]) -> CorrectionOutcome:
    """The groups' reports, merged (module docstring): a changed transfer leg or basis, or one
    a new correction names, touches its asset from the earliest of it and of every leg linked
    to it through the marked pairs."""
    earliest: dict[str, datetime] = {}
    legs: dict[str, tuple[tuple[str, ...], datetime]] = {}
    changed: set[str] = set()
    seen: set[str] = set()
    wallets: set[str] = set()
    for part in parts:
        for asset, at in part.earliest.items():
            if asset not in earliest or at < earliest[asset]:
                earliest[asset] = at
        for tx, (assets, at) in part.legs.items():
            known = legs.get(tx)
            legs[tx] = (tuple(sorted(set(assets) | set(known[0] if known else ()))),
                        min(at, known[1]) if known else at)  # fmt: skip
        changed |= part.changed
        seen |= part.seen
        wallets |= part.wallets
    by_id = {c.correction_id: c for c in history.corrections}
    start: set[str] = set(changed)
    for cid in history.new:
        base = _base_change(cid, by_id)
        if base is not None:
            start.update(_named(base))
    pairs = [
        (c.change.withdrawal_tx_id, c.change.deposit_tx_id)
        for c in history.corrections
        if isinstance(c.change, (MarkTransfer, UnmarkTransfer))
    ]
    linked = _closure(start, pairs)
    for tx in linked:
        if tx in legs:
            assets, at = legs[tx]
            for asset in assets:
                if asset not in earliest or at < earliest[asset]:
                    earliest[asset] = at
    gone = [p.removed for p in parts if p.removed is not None and p.removed.num_rows]
    return CorrectionOutcome(
        earliest,
        _unapplied(history.corrections, seen, wallets),
        pa.concat_tables(gone) if gone else None,
    )


def _base_change(cid: uuid.UUID, by_id: Mapping[uuid.UUID, Correction]) -> Change | None:
    """The change a correction stands for: an Undo's target's (followed through Undos)."""
    seen: set[uuid.UUID] = set()
    found = by_id.get(cid)
    while found is not None and isinstance(found.change, Undo) and cid not in seen:
        seen.add(cid)
        cid = found.change.correction_id
        found = by_id.get(cid)
    return None if found is None else found.change


def _closure(start: set[str], pairs: Collection[Pair]) -> set[str]:
    linked = set(start)
    grew = True
    while grew:
        grew = False
        for w, d in pairs:
            if (w in linked) != (d in linked):
                linked.update((w, d))
                grew = True
    return linked


def _unapplied(
    corrections: Sequence[Correction], seen: set[str], wallets: set[str]
) -> dict[uuid.UUID, str]:
    """The corrections in effect that changed nothing, judged over the whole history (as
    ``apply_corrections`` does on it)."""
    counted = active(corrections)
    all_added = {
        manual_tx_id(c.user_id, c.correction_id)
        for c in counted
        if isinstance(c.change, AddTransaction)
    }
    out: dict[uuid.UUID, str] = {}
    for c in counted:
        change = c.change
        if isinstance(change, DeleteAddedTransaction):
            if change.tx_id not in all_added:
                out[c.correction_id] = f"no hand-added transaction {change.tx_id}"
            continue
        if isinstance(change, RenameWallet):
            if change.old not in wallets and not _renamed_into(change.old, counted):
                out[c.correction_id] = f"no transaction in wallet {change.old!r}"
            continue
        gone = [tx for tx in _named(change) if tx not in seen]
        if gone:
            out[c.correction_id] = f"no transaction {', '.join(gone)} in the history"
    return out


def _renamed_into(name: str, counted: Sequence[Correction]) -> bool:
    """Whether an earlier rename or an added row gives wallet ``name`` rows."""
    return any(
        (isinstance(c.change, RenameWallet) and c.change.new == name)
        or (isinstance(c.change, AddTransaction) and c.change.wallet == name)
        for c in counted
    )


def foreign_bases(corrections: Sequence[Correction], currency: str) -> dict[uuid.UUID, str]:
    """Stated cost bases in another currency than the reporting one: not used (no FX rates
    here), said so."""
    return {
        c.correction_id: f"cost basis stated in {c.change.currency}; the reporting currency is "
        f"{currency}: state it in {currency}"
        for c in active(corrections)
        if isinstance(c.change, SetCostBasis) and c.change.currency.upper() != currency.upper()
    }


def touched_ranges(touched: Mapping[str, datetime]) -> dict[str, tuple[float, float]]:
    """The planner's form (asset -> (earliest, latest) epoch seconds), whole seconds rounded
    down so a cutoff is never after the row it comes from."""
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    out = {}
    for asset, at in touched.items():
        seconds = float((at.astimezone(timezone.utc) - epoch) // _SECOND)
        out[asset] = (seconds, seconds)
    return out


_SECOND = timedelta(seconds=1)
