"""The history as a user sees it now, in the form a new correction is checked against: which
transactions exist in the corrected history (and what they are: `facts`, read by the pipeline's
`recompute.history_facts`), which are ignored. Pure.

What a correction names that the history does not hold is told apart from what is wrong with it
(`missing_targets`): the API answers the first 404 and the second 422.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ingest.corrections.kinds import (
    Change,
    Correction,
    DeleteAddedTransaction,
    EditTransaction,
    MarkTransfer,
    Problem,
    SetCostBasis,
    SetIgnored,
    TxFacts,
    UnmarkTransfer,
)
from ingest.corrections.overlay import active


@dataclass(frozen=True)
class CurrentHistory:
    facts: Mapping[str, TxFacts]  # tx_id -> what it is, in the corrected history
    ignored: frozenset[str]  # tx_ids an ignore in effect leaves out (they are not in `facts`)


def current_of(facts: Mapping[str, TxFacts], recorded: Sequence[Correction]) -> CurrentHistory:
    """The corrected history's `facts` and what the user's corrections (`recorded`, all, in
    order) ignore: per transaction, the last ignore or un-ignore in effect decides."""
    ignored: dict[str, bool] = {}
    for c in active(recorded):
        if isinstance(c.change, SetIgnored):
            ignored[c.change.tx_id] = c.change.ignored
    return CurrentHistory(
        facts, frozenset(tx for tx, yes in ignored.items() if yes and tx not in facts)
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
