"""The history as a user sees it now (their stored rows with their corrections applied), in the
form a new correction is checked against: which transactions exist (and what they are), which
are ignored. Read in full from Cassandra (the months the user has), so a check costs one read of
the user's history; the overlay itself is the pure `apply_corrections`.

What a correction names that the history does not hold is told apart from what is wrong with it
(`missing_targets`): the API answers the first 404 and the second 422.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
from cassandra.cluster import Session

from ingest.corrections import store
from ingest.corrections.kinds import (
    Change,
    Correction,
    DeleteAddedTransaction,
    DeleteUpload,
    EditTransaction,
    MarkTransfer,
    Problem,
    SetCostBasis,
    SetIgnored,
    TxFacts,
    UnmarkTransfer,
    facts_of,
)
from ingest.corrections.overlay import active, apply_corrections
from ingest.load.transactions import read_transactions, user_months


@dataclass(frozen=True)
class CurrentHistory:
    facts: dict[str, TxFacts]  # tx_id -> what it is, in the corrected history
    ignored: frozenset[str]  # tx_ids an ignore in effect leaves out (they are not in `facts`)
    known: dict[str, TxFacts]  # `facts` and, as uploaded, the stored rows it leaves out


def corrected(
    session: Session, user_id: str, raw: pa.Table, recorded: Sequence[Correction]
) -> pa.Table:
    """`raw` (the user's stored rows) with `recorded` (their corrections) applied; the upload
    membership of rows is read only when an upload is deleted."""
    deleted = [
        uuid.UUID(c.change.upload_id)
        for c in active(recorded)
        if isinstance(c.change, DeleteUpload)
    ]
    holders = store.uploads_of(session, user_id, deleted) if deleted else None
    return apply_corrections(raw, recorded, uploads_of=holders).history


def current_history(
    session: Session, user_id: str, recorded: Sequence[Correction]
) -> CurrentHistory:
    """The user's corrected history now (`recorded`: all their corrections, in order)."""
    raw = read_transactions(session, user_id, user_months(session, user_id))
    history = corrected(session, user_id, raw, recorded) if recorded else raw
    facts = facts_of(history)
    ignored: dict[str, bool] = {}
    for c in active(recorded):
        if isinstance(c.change, SetIgnored):
            ignored[c.change.tx_id] = c.change.ignored
    return CurrentHistory(
        facts,
        frozenset(tx for tx, yes in ignored.items() if yes and tx not in facts),
        {**facts_of(raw), **facts} if recorded else facts,
    )


def targets(change: Change) -> list[tuple[str, str]]:
    """(field, tx_id) of each transaction the correction names."""
    if isinstance(change, (EditTransaction, SetCostBasis, SetIgnored, DeleteAddedTransaction)):
        return [("tx_id", change.tx_id)]
    if isinstance(change, (MarkTransfer, UnmarkTransfer)):
        return [
            ("withdrawal_tx_id", change.withdrawal_tx_id),
            ("deposit_tx_id", change.deposit_tx_id),
        ]
    return []


def missing_targets(change: Change, now: CurrentHistory) -> list[Problem]:
    """The transactions the correction names that the user's history does not hold (another
    user's, or none at all). Un-ignoring names an ignored transaction, which is not in `facts`."""
    out = []
    for name, tx in targets(change):
        if tx in now.facts or (isinstance(change, SetIgnored) and tx in now.ignored):
            continue
        out.append(Problem(name, f"no transaction {tx} in your history"))
    return out


def conflicts(change: Change, now: CurrentHistory) -> list[Problem]:
    """What `kinds.problems_in_history` does not check: ignoring an ignored transaction again,
    un-ignoring one that is not ignored."""
    if isinstance(change, SetIgnored) and change.ignored == (change.tx_id in now.ignored):
        return [Problem("tx_id", "is ignored already" if change.ignored else "is not ignored")]
    return []
