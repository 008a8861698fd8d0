"""The corrections overlay: a user's recorded corrections applied to their history, and what a
set of corrections changes (the earliest timestamp per asset), both pure functions.

Undo: an undo is itself a recorded correction (`Undo`), never an edit of the log; `active` says
which corrections count (one is cancelled when an active Undo names it; an Undo of an Undo
restores its target). The overlay is a function of the active corrections only, so recording any
corrections and then an Undo of each gives back the uploaded history exactly.

`apply_corrections` works in fixed phases, whatever the order the kinds were recorded in:
1. transactions added by hand join the history (unless deleted by hand);
2. rows of deleted uploads leave it (a row another live upload also holds stays);
3. ignored rows leave it (per transaction, the last SetIgnored recorded wins);
4. edits: per transaction and field (type, label, fiat value and currency), the last recorded wins;
5. wallet renames, applied one after another in recorded order to every row's wallet;
6. cost bases (last per deposit) and transfer marks (per pair, the last of mark/unmark wins; a
   later mark takes a leg from an earlier forced pair) for the rows still present.

So corrections of different kinds commute, and so do corrections of one kind on different
targets. What does not commute (recorded order decides): two edits of one field of one
transaction, SetIgnored True/False of one transaction, cost bases of one deposit, mark/unmark of
one pair or two marks sharing a leg, and renames where one's `new` is another's `old` (A->B then
B->C moves A to C; the other order leaves A at B) or two renames of one `old`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest.corrections.kinds import (
    MANUAL_SOURCE,
    AddTransaction,
    Correction,
    DeleteAddedTransaction,
    DeleteUpload,
    EditTransaction,
    MarkTransfer,
    RenameWallet,
    SetCostBasis,
    SetIgnored,
    Undo,
    UnmarkTransfer,
    manual_tx_id,
)
from ingest.normalize.canonical import CANONICAL_SCHEMA

Pair = tuple[str, str]  # (withdrawal tx_id, deposit tx_id)
ASSET_COLUMNS = ("sent_asset", "received_asset", "fee_asset")


@dataclass(frozen=True, slots=True)
class CostBasis:
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class Overlay:
    """The corrected history and what the tax engine must take from the corrections besides it.

    - `history`: the corrected canonical table (CANONICAL_SCHEMA; uploaded rows keep their order,
      hand-added rows follow in recorded order).
    - `forced_transfers`: (withdrawal, deposit) pairs the reconcile step must match as one own
      transfer, before and outside its greedy matching (no window, fee share or hash test); each
      leg is in at most one pair.
    - `forbidden_transfers`: pairs the greedy matching must never match.
    - `cost_basis`: deposit tx_id -> the basis the user stated; used for a deposit that is not a
      matched transfer, instead of the zero basis flagged unmatched_deposit.
    - `unapplied`: (correction id, why) for active corrections that changed nothing (their
      transaction is not in the history, e.g. its upload was deleted): shown, never dropped.
    """

    history: pa.Table
    forced_transfers: frozenset[Pair] = frozenset()
    forbidden_transfers: frozenset[Pair] = frozenset()
    cost_basis: Mapping[str, CostBasis] = field(default_factory=dict)
    unapplied: tuple[tuple[uuid.UUID, str], ...] = ()


def cancelled(corrections: Sequence[Correction]) -> set[uuid.UUID]:
    """Ids of the corrections an Undo in effect cancels: walking from the newest, an Undo counts
    unless a later Undo in effect cancelled it (Undos name earlier corrections)."""
    out: set[uuid.UUID] = set()
    for correction in reversed(corrections):
        if correction.correction_id not in out and isinstance(correction.change, Undo):
            out.add(correction.change.correction_id)
    return out


def active(corrections: Sequence[Correction]) -> list[Correction]:
    """The corrections in effect, in recorded order, without the Undos."""
    gone = cancelled(corrections)
    return [
        c for c in corrections if c.correction_id not in gone and not isinstance(c.change, Undo)
    ]


def apply_corrections(
    history: pa.Table,
    corrections: Sequence[Correction],
    *,
    uploads_of: Mapping[str, Collection[str]] | None = None,
) -> Overlay:
    """The overlay of `corrections` (a user's, in recorded order) on `history` (canonical rows as
    uploaded). `uploads_of`: tx_id -> ids of the uploads holding that row, needed only when an
    upload is deleted; a row it does not list belongs to no upload and stays."""
    counted = active(corrections)
    if not counted:
        return Overlay(history)
    unapplied: list[tuple[uuid.UUID, str]] = []
    table = _with_added(history, counted)
    # a row whose every upload is deleted is not in the history: corrections naming it are
    # unapplied (shown), not silently kept
    of_deleted = rows_of_deleted_uploads(counted, uploads_of)
    present = set(table.column("tx_id").to_pylist()) - of_deleted

    def missing(c: Correction, *tx_ids: str) -> bool:
        gone = [t for t in tx_ids if t not in present]
        if gone:
            unapplied.append((c.correction_id, f"no transaction {', '.join(gone)} in the history"))
        return bool(gone)

    ignored: dict[str, bool] = {}
    edits: dict[str, dict[str, Any]] = {
        "type": {},
        "label": {},
        "fiat_value": {},
        "fiat_currency": {},
    }
    renames: list[RenameWallet] = []
    bases: dict[str, CostBasis] = {}
    marks: dict[Pair, tuple[int, bool]] = {}  # pair -> (recorded position, forced)
    for position, c in enumerate(counted):
        change = c.change
        if isinstance(change, SetIgnored):
            if not missing(c, change.tx_id):
                ignored[change.tx_id] = change.ignored
        elif isinstance(change, EditTransaction):
            if not missing(c, change.tx_id):
                if change.type is not None:
                    edits["type"][change.tx_id] = change.type
                if change.label is not None:
                    edits["label"][change.tx_id] = change.label or None
                if change.fiat_value is not None:
                    edits["fiat_value"][change.tx_id] = change.fiat_value
                    edits["fiat_currency"][change.tx_id] = change.fiat_currency
        elif isinstance(change, RenameWallet):
            renames.append(change)
        elif isinstance(change, SetCostBasis):
            if not missing(c, change.tx_id):
                bases[change.tx_id] = CostBasis(change.cost_basis, change.currency)
        elif isinstance(change, (MarkTransfer, UnmarkTransfer)):
            if not missing(c, change.withdrawal_tx_id, change.deposit_tx_id):
                pair = (change.withdrawal_tx_id, change.deposit_tx_id)
                marks[pair] = (position, isinstance(change, MarkTransfer))
        elif isinstance(change, DeleteAddedTransaction):
            if change.tx_id not in _added_ids(counted):
                unapplied.append((c.correction_id, f"no hand-added transaction {change.tx_id}"))

    removed = {tx for tx, is_ignored in ignored.items() if is_ignored} | of_deleted
    if removed:
        table = table.filter(
            pc.invert(
                pc.is_in(table.column("tx_id"), value_set=pa.array(list(removed), pa.string()))
            )
        )
    for column, values in edits.items():
        table = _replace_by(table, "tx_id", column, values)
    table, renamed = _renamed(table, renames)
    for c in counted:
        if isinstance(c.change, RenameWallet) and c.change.old not in renamed:
            unapplied.append((c.correction_id, f"no transaction in wallet {c.change.old!r}"))

    left = set(table.column("tx_id").to_pylist()) if removed else present
    forced, forbidden = _transfer_rules(marks, left)
    return Overlay(
        history=table,
        forced_transfers=forced,
        forbidden_transfers=forbidden,
        cost_basis={tx: basis for tx, basis in bases.items() if tx in left},
        unapplied=tuple(unapplied),
    )


def rows_of_deleted_uploads(
    counted: Iterable[Correction], uploads_of: Mapping[str, Collection[str]] | None
) -> set[str]:
    """tx_ids whose every upload a DeleteUpload in ``counted`` (corrections in effect) deletes;
    a row ``uploads_of`` does not list belongs to no upload and stays."""
    deleted = {c.change.upload_id for c in counted if isinstance(c.change, DeleteUpload)}
    if not deleted or not uploads_of:
        return set()
    return {tx for tx, uploads in uploads_of.items() if uploads and set(uploads) <= deleted}


def _added_ids(counted: Iterable[Correction]) -> set[str]:
    return {
        manual_tx_id(c.user_id, c.correction_id)
        for c in counted
        if isinstance(c.change, AddTransaction)
    }


def _with_added(history: pa.Table, counted: Sequence[Correction]) -> pa.Table:
    """History plus the rows added by hand and not deleted by hand."""
    deleted = {c.change.tx_id for c in counted if isinstance(c.change, DeleteAddedTransaction)}
    rows: list[dict[str, Any]] = []
    for c in counted:
        add = c.change
        if not isinstance(add, AddTransaction):
            continue
        tx = manual_tx_id(c.user_id, c.correction_id)
        if tx in deleted:
            continue
        rows.append(
            {
                "tx_id": tx,
                "user_id": c.user_id,
                "wallet": add.wallet,
                "timestamp": add.timestamp,
                "type": add.type,
                "label": add.label,
                "sent_asset": add.sent_asset,
                "sent_amount": add.sent_amount,
                "received_asset": add.received_asset,
                "received_amount": add.received_amount,
                "fee_asset": add.fee_asset,
                "fee_amount": add.fee_amount,
                "fiat_value": add.fiat_value,
                "fiat_currency": add.fiat_currency,
                "tx_hash": None,
                "external_id": str(c.correction_id),
                "description": add.description,
                "source": MANUAL_SOURCE,
                "source_file": "",
                "source_line": 0,
            }
        )
    if not rows:
        return history
    added = pa.Table.from_pylist(rows, schema=CANONICAL_SCHEMA)
    return pa.concat_tables([history.cast(CANONICAL_SCHEMA), added])


def _renamed(table: pa.Table, renames: Sequence[RenameWallet]) -> tuple[pa.Table, set[str]]:
    """Wallet names mapped through the renames in order; also the `old` names that had rows."""
    if not renames:
        return table, set()
    final: dict[str, str] = {}
    matched: set[str] = set()
    for wallet in pc.unique(table.column("wallet")).to_pylist():
        name = wallet
        for rename in renames:
            if name == rename.old:
                matched.add(rename.old)
                name = rename.new
        if name != wallet:
            final[wallet] = name
    return _replace_by(table, "wallet", "wallet", final), matched


def _replace_by(table: pa.Table, key: str, column: str, values: Mapping[str, Any]) -> pa.Table:
    """`column` set to values[row's `key`] on the rows whose key is listed (None: null)."""
    if not values or table.num_rows == 0:
        return table
    index = pc.index_in(table.column(key), value_set=pa.array(list(values), pa.string()))
    where = table.schema.get_field_index(column)
    target = table.schema.field(column)
    replacement = pa.array(list(values.values()), type=target.type).take(index)
    new = pc.if_else(pc.is_valid(index), replacement, table.column(column))
    return table.set_column(where, target, new)


def _transfer_rules(
    marks: Mapping[Pair, tuple[int, bool]], present: Collection[str]
) -> tuple[frozenset[Pair], frozenset[Pair]]:
    """Forced pairs (a later mark takes a leg from an earlier one) and forbidden pairs."""
    forced: dict[str, Pair] = {}  # leg -> its pair
    for pair, (_position, is_forced) in sorted(marks.items(), key=lambda item: item[1][0]):
        if not is_forced or pair[0] not in present or pair[1] not in present:
            continue
        for leg in pair:
            earlier = forced.get(leg)
            if earlier is not None:
                forced.pop(earlier[0], None)
                forced.pop(earlier[1], None)
        forced[pair[0]] = forced[pair[1]] = pair
    forbidden = frozenset(
        pair
        for pair, (_position, is_forced) in marks.items()
        if not is_forced and pair[0] in present and pair[1] in present
    )
    return frozenset(forced.values()), forbidden


# --- What corrections touch ------------------------------------------------------------------


def touched_from(
    history: pa.Table,
    corrections: Sequence[Correction],
    new: Collection[uuid.UUID],
    *,
    uploads_of: Mapping[str, Collection[str]] | None = None,
) -> dict[str, datetime]:
    """Per asset, the earliest timestamp the corrections `new` (ids among `corrections`) change:
    the overlay without them against the overlay with them. The incremental planner treats each
    as new rows of that asset at that time (so the transfer window and UK look-back apply as for
    an upload). Assets are those the changed rows name on any side (fee and fiat included)."""
    before = apply_corrections(
        history, [c for c in corrections if c.correction_id not in new], uploads_of=uploads_of
    )
    after = apply_corrections(history, corrections, uploads_of=uploads_of)
    return earliest_changes(before, after)


def earliest_changes(before: Overlay, after: Overlay) -> dict[str, datetime]:
    """Per asset, the earliest timestamp of a row added, removed or changed between two overlays
    of one history, or of a row whose forced/forbidden transfer or cost basis changed."""
    a, b = before.history, after.history
    a_ids, b_ids = a.column("tx_id"), b.column("tx_id")
    in_b = pc.is_in(a_ids, value_set=pc.unique(b_ids))
    in_a = pc.is_in(b_ids, value_set=pc.unique(a_ids))
    order = [("tx_id", "ascending"), ("timestamp", "ascending")]
    a_common = a.filter(in_b).sort_by(order)
    b_common = b.filter(in_a).sort_by(order)
    differs = pa.array([False] * a_common.num_rows, pa.bool_())
    for name in CANONICAL_SCHEMA.names:
        x, y = a_common.column(name), b_common.column(name)
        same = pc.if_else(
            pc.and_(pc.is_valid(x), pc.is_valid(y)),
            pc.equal(x, y),
            pc.equal(pc.is_valid(x), pc.is_valid(y)),
        )
        differs = pc.or_(differs, pc.invert(same))
    linked = _linked_ids(before, after)
    parts = [
        a.filter(pc.invert(in_b)),
        b.filter(pc.invert(in_a)),
        a_common.filter(differs),
        b_common.filter(differs),
    ]
    if linked:
        keys = pa.array(sorted(linked), pa.string())
        parts += [
            a.filter(pc.is_in(a_ids, value_set=keys)),
            b.filter(pc.is_in(b_ids, value_set=keys)),
        ]
    earliest: dict[str, datetime] = {}
    for part in parts:
        for asset, at in _earliest_per_asset(part).items():
            if asset not in earliest or at < earliest[asset]:
                earliest[asset] = at
    return earliest


def _linked_ids(before: Overlay, after: Overlay) -> set[str]:
    ids: set[str] = set()
    for pairs in (
        before.forced_transfers ^ after.forced_transfers,
        before.forbidden_transfers ^ after.forbidden_transfers,
    ):
        for pair in pairs:
            ids.update(pair)
    for tx in set(before.cost_basis) | set(after.cost_basis):
        if before.cost_basis.get(tx) != after.cost_basis.get(tx):
            ids.add(tx)
    return ids


def _earliest_per_asset(rows: pa.Table) -> dict[str, datetime]:
    out: dict[str, datetime] = {}
    if rows.num_rows == 0:
        return out
    for column in ASSET_COLUMNS:
        part = rows.select([column, "timestamp"]).filter(pc.is_valid(rows.column(column)))
        grouped = part.group_by(column).aggregate([("timestamp", "min")])
        for asset, at in zip(
            grouped.column(column).to_pylist(), grouped.column("timestamp_min").to_pylist()
        ):
            if asset not in out or at < out[asset]:
                out[asset] = at
    return out
