"""The read-optimized tables the query API serves, written by the tax stage.

transactions_view rows are upserts keyed by (user, month, timestamp, tx_id): rewriting a period
replaces it in place. Per-user tables that are small (balances, summaries, findings) and the
per-year disposals partitions are replaced whole, so no stale line survives a recompute.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from cassandra.cluster import Session

from ingest.load.cassandra import execute, execute_batches, execute_many
from ingest.load.jobs import now

VIEW_COLUMNS = ("user_id", "month", "timestamp", "tx_id", "wallet", "type", "label", "sent_asset",
                "sent_amount", "received_asset", "received_amount", "fee_asset", "fee_amount",
                "price", "price_source", "value", "cost_basis", "gain", "term", "balance_after",
                "flags", "tx_hash")
INSERT_VIEW = (f"INSERT INTO transactions_view ({', '.join(VIEW_COLUMNS)}) "
               f"VALUES ({', '.join('?' for _ in VIEW_COLUMNS)})")


def write_transactions_view(session: Session, rows: Iterable[Sequence[Any]], *,
                            batch_rows: int | None = None) -> int:
    """rows: tuples in VIEW_COLUMNS order; batched per (user_id, month) partition."""
    by_partition: dict[tuple[str, int], list[Sequence[Any]]] = defaultdict(list)
    for row in rows:
        by_partition[(row[0], row[1])].append(row)
    return execute_batches(session, INSERT_VIEW, by_partition, max_rows=batch_rows)


def replace_balances(session: Session, user_id: str,
                     balances: Iterable[tuple[str, str, Decimal, Decimal | None]]) -> None:
    """(wallet, asset, quantity, cost_basis) rows replace the user's balances."""
    execute(session, "DELETE FROM balances WHERE user_id = ?", (user_id,))
    ts = now()
    execute_many(session, "INSERT INTO balances (user_id, wallet, asset, quantity, cost_basis, "
                 "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                 [(user_id, w, a, q, c, ts) for w, a, q, c in balances])


def replace_yearly_summary(session: Session, user_id: str,
                           rows: Iterable[tuple]) -> None:
    """(year, asset, proceeds, cost_basis, short_term_gain, long_term_gain, gain, income) rows;
    asset '*' holds the year's totals."""
    execute(session, "DELETE FROM yearly_summary WHERE user_id = ?", (user_id,))
    execute_many(session, "INSERT INTO yearly_summary (user_id, year, asset, proceeds, cost_basis, "
                 "short_term_gain, long_term_gain, gain, income) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 [(user_id, *r) for r in rows])


def delete_disposal_years(session: Session, user_id: str, years: Iterable[str]) -> None:
    """Drop the Form 8949 partitions of `years` before their lines are written again."""
    for year in sorted(set(years)):
        execute(session, "DELETE FROM disposals WHERE user_id = ? AND year = ?", (user_id, year))


def write_disposals(session: Session, user_id: str, lines: Iterable[tuple]) -> int:
    """lines: (year, date_sold, line_id, asset, wallet, quantity, date_acquired, proceeds,
    cost_basis, gain, term, tx_id), batched per (user, year) partition."""
    by_partition: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for line in lines:
        by_partition[(user_id, line[0])].append((user_id, *line))
    return execute_batches(session, "INSERT INTO disposals (user_id, year, date_sold, line_id, "
                           "asset, wallet, quantity, date_acquired, proceeds, cost_basis, gain, "
                           "term, tx_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           by_partition)


def replace_reconciliation(session: Session, user_id: str,
                           findings: Iterable[tuple[str, str, datetime, str, str]]) -> None:
    """(kind, asset, timestamp, tx_id, detail) rows replace the user's findings."""
    execute(session, "DELETE FROM reconciliation WHERE user_id = ?", (user_id,))
    execute_many(session, "INSERT INTO reconciliation (user_id, kind, asset, timestamp, tx_id, "
                 "detail) VALUES (?, ?, ?, ?, ?, ?)",
                 [(user_id, k, a or "", ts or datetime(1970, 1, 1, tzinfo=timezone.utc), t or "", d)
                  for k, a, ts, t, d in findings])
