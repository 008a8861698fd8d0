"""A correction in one line a person reads (the audit list's `summary`): what it changes, naming
the transactions by what they are (the deposit of 2 ETH in kraken) where the history has them,
else by their id. Pure: the caller hands the facts of the history and the recorded corrections.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal

from ingest.corrections.kinds import (
    AddTransaction,
    Change,
    Correction,
    DeleteAddedTransaction,
    DeleteUpload,
    EditTransaction,
    MarkTransfer,
    RenameWallet,
    SetCostBasis,
    SetIgnored,
    TxFacts,
    Undo,
    UnmarkTransfer,
)
from ingest.normalize.canonical import plain_decimal

SHORT_ID = 12  # characters of a tx_id shown when the history does not have the transaction


def as_written(amount: Decimal) -> str:
    """An amount of a correction as the user gave it (1234.50 stays 1234.50), never 1E+3."""
    return f"{amount:f}"


def transaction_text(tx_id: str, facts: Mapping[str, TxFacts]) -> str:
    """'the deposit of 2 ETH in kraken', 'the trade of 0.5 BTC for 10 ETH in binance', or
    'transaction 1a2b3c4d5e6f…' when the history does not hold it."""
    row = facts.get(tx_id)
    if row is None:
        return f"transaction {tx_id[:SHORT_ID]}{'…' if len(tx_id) > SHORT_ID else ''}"
    sent = f"{plain_decimal(row.sent)} {row.sends}" if row.sent is not None else None
    received = f"{plain_decimal(row.received)} {row.receives}" if row.received is not None else None
    moved = " for ".join(m for m in (sent, received) if m)
    return f"the {row.type}{f' of {moved}' if moved else ''} in {row.wallet}"


def summary(
    change: Change,
    facts: Mapping[str, TxFacts],
    recorded: Mapping[uuid.UUID, Correction] | None = None,
) -> str:
    """One line: what `change` does. `recorded` (id -> correction) words an undo's target."""
    if isinstance(change, EditTransaction):
        parts = []
        if change.type is not None:
            parts.append(f"type to {change.type}")
        if change.label is not None:
            parts.append(f"label to {change.label!r}" if change.label else "label cleared")
        if change.fiat_value is not None:
            parts.append(f"value to {as_written(change.fiat_value)} {change.fiat_currency}")
        return f"Edit {transaction_text(change.tx_id, facts)}: {', '.join(parts)}"
    if isinstance(change, SetCostBasis):
        return (
            f"Cost basis of {transaction_text(change.tx_id, facts)} set to "
            f"{as_written(change.cost_basis)} {change.currency}"
        )
    if isinstance(change, SetIgnored):
        verb = "Ignore" if change.ignored else "Stop ignoring"
        return f"{verb} {transaction_text(change.tx_id, facts)}"
    if isinstance(change, (MarkTransfer, UnmarkTransfer)):
        pair = (
            f"{transaction_text(change.withdrawal_tx_id, facts)} and "
            f"{transaction_text(change.deposit_tx_id, facts)}"
        )
        if isinstance(change, MarkTransfer):
            return f"Mark {pair} as one transfer between your wallets"
        return f"Unmark {pair}: not one transfer"
    if isinstance(change, AddTransaction):
        sides = [
            f"{name} {as_written(amount)} {asset}"
            for name, amount, asset in (
                ("sent", change.sent_amount, change.sent_asset),
                ("received", change.received_amount, change.received_asset),
                ("fee", change.fee_amount, change.fee_asset),
            )
            if amount is not None
        ]
        when = change.timestamp.strftime("%Y-%m-%d %H:%M %Z").strip()
        return (
            f"Add a {change.type} in {change.wallet} on {when}: {', '.join(sides) or 'no amounts'}"
        )
    if isinstance(change, DeleteAddedTransaction):
        return f"Delete {transaction_text(change.tx_id, facts)} (added by hand)"
    if isinstance(change, DeleteUpload):
        return f"Delete upload {change.upload_id}: its transactions leave the history"
    if isinstance(change, RenameWallet):
        return f"Rename wallet {change.old!r} to {change.new!r}"
    if isinstance(change, Undo):
        target = (recorded or {}).get(change.correction_id)
        if target is None:
            return f"Undo correction {change.correction_id}"
        inner = summary(target.change, facts, recorded)
        return f"Undo: {inner[:1].lower()}{inner[1:]}"
    raise TypeError(f"not a correction: {type(change).__name__}")
