"""The read-optimized tables the query API serves, written by the tax stage.

transactions_view rows are upserts keyed by (user, month, timestamp, tx_id): rewriting a period
replaces it in place; tax shards add their assets' ``metrics`` elements to the same rows
(``write_view_metrics``, no read). Per-user tables that are small (balances, summaries) are
replaced whole. Form 8949 lines and findings are stored packed, many per row
(``disposal_chunks``: per (user, year, asset), ``finding_chunks``: per (user, kind, asset)), and
replaced per year (or per year and asset for a shard), so no stale line survives a recompute.
Each line records the lot it consumed (rule, acquisition, acquiring tx_id); ``disposal_index``
finds a disposal's lines by its tx_id (GET /v1/gains/{tx_id}/lots).

Packing: a chunk's ``body`` is compact JSON, one list per line/finding, decimals as their exact
strings, times as integer unix microseconds, dates as ISO strings (null for none).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from cassandra.cluster import Session
from cassandra.query import UNSET_VALUE

from ingest.load.cassandra import execute, execute_batches, execute_many
from ingest.load.jobs import now
from ingest.tax.records import BalanceRecord, DisposalLine, Finding, Flag, TxMetrics, YearSummary
from ingest.tax.years import datetime_from_micros, micros_from_datetime

# Read and written (write_transactions_view) as positional tuples in this order, so this
# list is the order of the tuples, not derived from the canonical columns (most of which it
# repeats: tests/test_canonical_columns.py checks those are canonical or valued columns).
VIEW_COLUMNS = (
    "user_id",
    "month",
    "timestamp",
    "tx_id",
    "wallet",
    "type",
    "label",
    "sent_asset",
    "sent_amount",
    "received_asset",
    "received_amount",
    "fee_asset",
    "fee_amount",
    "price",
    "price_source",
    "value",
    "cost_basis",
    "gain",
    "term",
    "balance_after",
    "flags",
    "tx_hash",
)


def write_transactions_view(
    session: Session, rows: Iterable[Sequence[Any]], *, batch_rows: int | None = None
) -> int:
    """rows: tuples in VIEW_COLUMNS order (what a reader sees, the single-writer metric columns
    included), written like a shard's rows (UPDATE_VIEW_ROW: missing values unset, the assets
    cell appended); batched per (user_id, month) partition."""
    by_partition: dict[tuple[str, int], list[Sequence[Any]]] = defaultdict(list)
    for row in rows:
        named = dict(zip(VIEW_COLUMNS, row))
        by_partition[(row[0], row[1])].append(
            (
                *[_bound(named[c]) for c in _ALL_OWN_COLUMNS],
                _bound(row_assets(named)),
                *[named[c] for c in _KEY_COLUMNS],
            )
        )
    return execute_batches(session, UPDATE_VIEW_COLUMNS, by_partition, max_rows=batch_rows)


# A view row's own columns, without the single-writer metric columns: what the tax shard owning
# the row's anchor asset writes (ingest.tax.shards.anchor_mask, write_view_rows below); metrics
# come as map elements.
VIEW_BASE_COLUMNS = tuple(
    c for c in VIEW_COLUMNS if c not in ("cost_basis", "gain", "term", "balance_after", "flags")
)


def replace_balances(session: Session, user_id: str, balances: Iterable[BalanceRecord]) -> None:
    """``balances`` replace the user's balances."""
    execute(session, "DELETE FROM balances WHERE user_id = ?", (user_id,))
    ts = now()
    execute_many(
        session,
        "INSERT INTO balances (user_id, wallet, asset, quantity, cost_basis, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(user_id, b.wallet, b.asset, b.quantity, b.cost_basis, ts) for b in balances],
    )


SUMMARY_FIELDS = ("proceeds", "cost_basis", "short_term_gain", "long_term_gain", "gain", "income")


def replace_yearly_summary(
    session: Session, user_id: str, rows: Iterable[tuple[str, str, YearSummary]]
) -> None:
    """(year, asset, its YearSummary) rows; asset '*' holds the year's totals."""
    execute(session, "DELETE FROM yearly_summary WHERE user_id = ?", (user_id,))
    execute_many(
        session,
        f"INSERT INTO yearly_summary (user_id, year, asset, {', '.join(SUMMARY_FIELDS)}) "
        f"VALUES (?, ?, ?, {', '.join('?' for _ in SUMMARY_FIELDS)})",
        [
            (user_id, year, asset, *(getattr(s, f) for f in SUMMARY_FIELDS))
            for year, asset, s in rows
        ],
    )


# --- Form 8949 lines, packed -----------------------------------------------------------------
LINES_PER_CHUNK = 500  # ~60 KB of JSON per row
FINDINGS_PER_CHUNK = 200  # ~20-40 KB per row
# one disposal line in a chunk (the asset is the row's key)
DISPOSAL_FIELDS = (
    "date_sold",
    "line_id",
    "wallet",
    "quantity",
    "date_acquired",
    "proceeds",
    "cost_basis",
    "gain",
    "term",
    "tx_id",
    # the lot the line consumed (GET /v1/gains/{tx_id}/lots); bodies written before these
    # fields were added end at tx_id, and unpack to None/''
    "rule",
    "acquired_us",
    "from_tx_id",
    "disposal_costs",
)
INSERT_DISPOSAL_CHUNK = (
    "INSERT INTO disposal_chunks (user_id, year, asset, chunk, lines, body) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _day(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    return (value.date() if isinstance(value, datetime) else value).isoformat()


def _packed_disposals(lines: Iterable[tuple]) -> list[tuple[str, str, list[tuple]]]:
    """write_disposals' tuples as packed lines (DISPOSAL_FIELDS order) per (year, asset), in
    (date sold, line id) order."""
    grouped: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for (
        year,
        sold,
        line_id,
        asset,
        wallet,
        quantity,
        acquired,
        proceeds,
        cost,
        gain,
        term,
        tx_id,
        rule,
        acquired_us,
        from_tx_id,
        disposal_costs,
    ) in lines:
        grouped[(year, asset)].append(
            (
                micros_from_datetime(sold),
                line_id,
                wallet,
                _text(quantity),
                _day(acquired),
                _text(proceeds),
                _text(cost),
                _text(gain),
                term,
                tx_id,
                rule,
                acquired_us,
                from_tx_id,
                _text(disposal_costs) if disposal_costs else None,
            )
        )
    out = []
    for (year, asset), packed in sorted(grouped.items()):
        packed.sort(key=lambda line: (line[0], line[1]))
        out.append((year, asset, packed))
    return out


def _chunks(packed: list[tuple]) -> Iterator[tuple[int, list[tuple]]]:
    for chunk, start in enumerate(range(0, len(packed), LINES_PER_CHUNK)):
        yield chunk, packed[start : start + LINES_PER_CHUNK]


def disposal_chunk_rows(user_id: str, lines: Iterable[tuple]) -> list[tuple]:
    """Rows of disposal_chunks for ``lines`` (write_disposals' tuples): per (year, asset) in
    (date sold, line id) order, LINES_PER_CHUNK per row."""
    return _chunk_rows(user_id, _packed_disposals(lines))


def disposal_index_rows(user_id: str, lines: Iterable[tuple]) -> list[tuple]:
    """Rows of disposal_index for ``lines``: per (disposal tx_id, asset), the year and the
    first chunk holding its lines (a disposal's lines are consecutive: its line ids share the
    tx_id prefix and its sale time)."""
    return _index_rows(user_id, _packed_disposals(lines))


def _chunk_rows(user_id: str, packed: list[tuple[str, str, list[tuple]]]) -> list[tuple]:
    return [
        (user_id, year, asset, chunk, len(part), json.dumps(part, separators=(",", ":")))
        for year, asset, lines in packed
        for chunk, part in _chunks(lines)
    ]


def _index_rows(user_id: str, packed: list[tuple[str, str, list[tuple]]]) -> list[tuple]:
    rows: dict[tuple[str, str], tuple] = {}
    for year, asset, lines in packed:
        for chunk, part in _chunks(lines):
            for line in part:
                tx_id = line[9]
                if (tx_id, asset) not in rows:
                    rows[(tx_id, asset)] = (user_id, tx_id, asset, year, chunk)
    return list(rows.values())


def unpack_disposal_chunk(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A chunk's lines as dicts (DISPOSAL_FIELDS + asset), exact decimals, UTC datetimes."""
    out = []
    for packed in json.loads(row["body"]):
        sold, line_id, wallet, quantity, acquired, proceeds, cost, gain, term, tx_id = packed[:10]
        rule, acquired_us, from_tx_id, costs = (*packed[10:], None, None, "", None)[:4]
        out.append(
            {
                "date_sold": datetime_from_micros(sold),
                "line_id": line_id,
                "asset": row["asset"],
                "wallet": wallet,
                "quantity": Decimal(quantity),
                "date_acquired": (
                    None
                    if acquired is None
                    else datetime.combine(
                        date.fromisoformat(acquired), datetime.min.time(), timezone.utc
                    )
                ),
                "proceeds": Decimal(proceeds),
                "cost_basis": Decimal(cost),
                "gain": Decimal(gain),
                "term": term,
                "tx_id": tx_id,
                "rule": rule,
                "acquired_us": acquired_us,
                "from_tx_id": from_tx_id,
                "disposal_costs": Decimal(costs) if costs else Decimal(0),
            }
        )
    return out


def delete_disposal_years(session: Session, user_id: str, years: Iterable[str]) -> None:
    """Drop the Form 8949 partitions of `years` before their lines are written again."""
    for year in sorted(set(years)):
        execute(
            session, "DELETE FROM disposal_chunks WHERE user_id = ? AND year = ?", (user_id, year)
        )


def delete_disposal_assets(
    session: Session, user_id: str, year: str, assets: Iterable[str]
) -> None:
    """A shard's share of delete_disposal_years: its own assets' chunks of one year."""
    execute_many(
        session,
        "DELETE FROM disposal_chunks WHERE user_id = ? AND year = ? AND asset = ?",
        [(user_id, year, asset) for asset in sorted(set(assets))],
    )


def disposal_line_row(line: DisposalLine) -> tuple:
    """A Form 8949 line as write_disposals takes it."""
    acquired = line.date_acquired
    return (
        line.tax_year,
        line.sold_at,
        line.line_id,
        line.asset,
        line.wallet,
        line.quantity,
        None
        if acquired is None
        else datetime(acquired.year, acquired.month, acquired.day, tzinfo=timezone.utc),
        line.proceeds,
        line.cost_basis,
        line.gain,
        line.term,
        line.tx_id,
        line.rule,
        line.acquired_us,
        line.from_tx_id,
        line.disposal_costs,
    )


def finding_row(finding: Finding) -> tuple[str, str | None, datetime | None, str | None, str]:
    """A finding as replace_reconciliation and replace_findings_of_assets take it."""
    return (finding.kind, finding.asset, finding.timestamp, finding.tx_id, finding.detail)


INSERT_DISPOSAL_INDEX = (
    "INSERT INTO disposal_index (user_id, tx_id, asset, year, chunk) VALUES (?, ?, ?, ?, ?)"
)


def write_disposals(session: Session, user_id: str, lines: Iterable[tuple]) -> int:
    """lines: (year, date_sold, line_id, asset, wallet, quantity, date_acquired, proceeds,
    cost_basis, gain, term, tx_id, rule, acquired_us, from_tx_id, disposal_costs), packed into disposal_chunks
    rows, and each disposal's place in disposal_index. Returns lines written.

    The index is not cleared with the chunks: an entry whose chunk no longer holds that
    disposal (recomputed away) finds no line there, which reads as no such disposal."""
    packed = _packed_disposals(lines)
    rows = _chunk_rows(user_id, packed)
    by_partition: dict[tuple[str, str], list[Sequence[Any]]] = defaultdict(list)
    for row in rows:
        by_partition[(row[0], row[1])].append(row)
    execute_batches(session, INSERT_DISPOSAL_CHUNK, by_partition)
    # after the chunks: an entry always points at a written chunk
    index: list[Sequence[Any]] = list(_index_rows(user_id, packed))
    execute_batches(session, INSERT_DISPOSAL_INDEX, {user_id: index})
    return sum(row[4] for row in rows)


# --- findings, packed ---------------------------------------------------------------------------
INSERT_FINDING_CHUNK = (
    "INSERT INTO finding_chunks (user_id, kind, asset, chunk, findings, body) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
FINDING_KINDS = tuple(v for k, v in vars(Flag).items() if k.isupper())


def finding_chunk_rows(
    user_id: str, findings: Iterable[tuple[str, str | None, datetime | None, str | None, str]]
) -> list[Sequence[Any]]:
    """Rows of finding_chunks for (kind, asset, timestamp, tx_id, detail) findings: per (kind,
    asset) in (timestamp, tx_id, detail) order (undated first), FINDINGS_PER_CHUNK per row."""
    grouped: dict[tuple[str, str], list[list]] = defaultdict(list)
    for kind, asset, ts, tx_id, detail in findings:
        grouped[(kind, asset or "")].append(
            [None if ts is None else micros_from_datetime(ts), tx_id, detail]
        )
    rows: list[Sequence[Any]] = []
    for (kind, asset), packed in sorted(grouped.items()):
        packed.sort(key=lambda f: (f[0] is not None, f[0] or 0, f[1] or "", f[2]))
        for chunk, start in enumerate(range(0, len(packed), FINDINGS_PER_CHUNK)):
            part = packed[start : start + FINDINGS_PER_CHUNK]
            rows.append(
                (user_id, kind, asset, chunk, len(part), json.dumps(part, separators=(",", ":")))
            )
    return rows


def replace_reconciliation(
    session: Session,
    user_id: str,
    findings: Iterable[tuple[str, str | None, datetime | None, str | None, str]],
) -> None:
    """(kind, asset, timestamp, tx_id, detail) rows replace the user's findings."""
    execute(session, "DELETE FROM finding_chunks WHERE user_id = ?", (user_id,))
    rows = finding_chunk_rows(user_id, findings)
    execute_batches(session, INSERT_FINDING_CHUNK, {user_id: rows})


def replace_findings_of_assets(
    session: Session,
    user_id: str,
    assets: Iterable[str],
    findings: Iterable[tuple[str, str | None, datetime | None, str | None, str]],
) -> None:
    """A shard's share of replace_reconciliation: the findings of its own assets ('' for
    findings without an asset, which shard 0 owns)."""
    execute_many(
        session,
        "DELETE FROM finding_chunks WHERE user_id = ? AND kind = ? AND asset = ?",
        [(user_id, kind, asset) for asset in sorted(set(assets)) for kind in FINDING_KINDS],
    )
    execute_batches(session, INSERT_FINDING_CHUNK, {user_id: finding_chunk_rows(user_id, findings)})


# --- per-asset view metrics (tax shards) ------------------------------------------------------
UPDATE_VIEW_METRICS = (
    "UPDATE transactions_view SET metrics = metrics + ? WHERE user_id = ? AND "
    "month = ? AND timestamp = ? AND tx_id = ?"
)


def metrics_element(asset: str, metrics: TxMetrics) -> tuple:
    """One asset's element of transactions_view.metrics (the migration's tuple order)."""
    return (
        metrics.proceeds,
        metrics.cost_basis,
        metrics.gain,
        metrics.term,
        metrics.acquired_cost,
        metrics.balance_after.get(asset),
        set(metrics.flags) if metrics.flags else None,
    )


def element_metrics(asset: str, element: Sequence[Any]) -> TxMetrics:
    proceeds, cost, gain, term, acquired, balance, flags = element
    return TxMetrics(
        proceeds,
        cost,
        gain,
        term,
        acquired,
        {} if balance is None else {asset: balance},
        set(flags or ()),
    )


def write_view_metrics(
    session: Session, rows: Iterable[tuple[str, int, datetime, str, Mapping[str, TxMetrics]]]
) -> int:
    """(user_id, month, timestamp, tx_id, {asset: metrics}) -> one map append per row: the
    shard's own elements of that transactions_view row. Returns rows updated."""
    by_partition: dict[tuple[str, int], list[Sequence[Any]]] = defaultdict(list)
    for user_id, month, ts, tx_id, by_asset in rows:
        by_partition[(user_id, month)].append(
            (
                {asset: metrics_element(asset, m) for asset, m in by_asset.items()},
                user_id,
                month,
                ts,
                tx_id,
            )
        )
    return execute_batches(session, UPDATE_VIEW_METRICS, by_partition)


# A view row a shard anchors, in one statement: its own columns, the assets it names (the asset
# filter's access path, migration 014) and the shard's metrics elements.
#
# Written once, with no tombstones: a column the row does not have is bound UNSET_VALUE (the
# cell is left as it is), never null (a null is a tombstone cell: 3.25 per row on a first upload
# before). It stays an UPDATE, not an INSERT: an INSERT of the non-frozen `metrics` or `assets`
# would write a collection tombstone erasing the elements other shards append to the same row.
# A value that a rewrite empties (a re-export dropping a label under the exchange's own id, an
# edit) is cleared by `view_clears` instead: only where a stored cell holds a value the new row
# lacks, so tombstones are written only for values that really go away.
_KEY_COLUMNS = ("user_id", "month", "timestamp", "tx_id")
_OWN_COLUMNS = tuple(c for c in VIEW_BASE_COLUMNS if c not in _KEY_COLUMNS)
_KEY_WHERE = "WHERE user_id = ? AND month = ? AND timestamp = ? AND tx_id = ?"
_ASSET_COLUMNS = ("sent_asset", "received_asset", "fee_asset")
UPDATE_VIEW_ROW = (
    "UPDATE transactions_view SET "
    + ", ".join(f"{c} = ?" for c in _OWN_COLUMNS)
    + f", assets = assets + ?, metrics = metrics + ? {_KEY_WHERE}"
)
_ALL_OWN_COLUMNS = tuple(c for c in VIEW_COLUMNS if c not in _KEY_COLUMNS)
UPDATE_VIEW_COLUMNS = (
    "UPDATE transactions_view SET "
    + ", ".join(f"{c} = ?" for c in _ALL_OWN_COLUMNS)
    + f", assets = assets + ? {_KEY_WHERE}"
)
SELECT_STORED_CELLS = (
    f"SELECT timestamp, tx_id, {', '.join(_OWN_COLUMNS)}, assets FROM transactions_view "
    "WHERE user_id = ? AND month = ? AND timestamp >= ? AND timestamp <= ?"
)
REMOVE_VIEW_ASSETS = f"UPDATE transactions_view SET assets = assets - ? {_KEY_WHERE}"


def row_assets(own: Mapping[str, Any]) -> set[str]:
    """The assets a view row names (sent, received, fee): its `assets` cell."""
    return {own[c] for c in _ASSET_COLUMNS if own.get(c)}


def _bound(value: Any) -> Any:
    return UNSET_VALUE if value is None or value == {} or value == set() else value


def view_row_values(own: Mapping[str, Any], by_asset: Mapping[str, TxMetrics]) -> tuple:
    """UPDATE_VIEW_ROW's bound values: what the row has, UNSET_VALUE for what it lacks."""
    return (
        *[_bound(own[c]) for c in _OWN_COLUMNS],
        _bound(row_assets(own)),
        _bound({asset: metrics_element(asset, m) for asset, m in by_asset.items()}),
        *[own[c] for c in _KEY_COLUMNS],
    )


def _stored_key(ts: datetime, tx_id: str) -> tuple[int, str]:
    """A row's key as stored (Cassandra timestamps are milliseconds; the driver's are naive)."""
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)
    return micros_from_datetime(aware) // 1000, tx_id


@dataclass(frozen=True)
class ViewClear:
    """What a rewrite of one view row removes: columns to delete, assets to take out."""

    key: tuple[str, int, datetime, str]  # user_id, month, timestamp, tx_id
    columns: tuple[str, ...]
    assets: frozenset[str]


def view_clears(
    stored: Mapping[tuple[int, str], Mapping[str, Any]], rows: Iterable[Mapping[str, Any]]
) -> list[ViewClear]:
    """Pure: for each new row (own columns by name) whose stored version (``stored``, by
    _stored_key) holds a value the new row lacks, that column (or asset) to clear."""
    clears = []
    for own in rows:
        before = stored.get(_stored_key(own["timestamp"], own["tx_id"]))
        if before is None:
            continue
        columns = tuple(c for c in _OWN_COLUMNS if own[c] is None and before.get(c) is not None)
        gone = frozenset(before.get("assets") or ()) - row_assets(own)
        if columns or gone:
            clears.append(ViewClear(tuple(own[c] for c in _KEY_COLUMNS), columns, gone))
    return clears


def stored_cells(
    session: Session, user_id: str, month: int, start: datetime, end: datetime
) -> dict[tuple[int, str], dict[str, Any]]:
    """The own cells and assets of the view rows stored in one month between start and end."""
    return {
        _stored_key(row["timestamp"], row["tx_id"]): row
        for row in execute(
            session, SELECT_STORED_CELLS, (user_id, month, start, end), fetch_size=5000
        )
    }


def clear_view_cells(session: Session, clears: Sequence[ViewClear]) -> None:
    """Delete the emptied cells (a DELETE per set of columns) and take out the gone assets."""
    by_columns: dict[tuple[str, ...], list[tuple]] = defaultdict(list)
    for clear in clears:
        if clear.columns:
            by_columns[clear.columns].append(clear.key)
    for columns, keys in sorted(by_columns.items()):
        execute_many(
            session, f"DELETE {', '.join(columns)} FROM transactions_view {_KEY_WHERE}", keys
        )
    execute_many(
        session,
        REMOVE_VIEW_ASSETS,
        [(set(clear.assets), *clear.key) for clear in clears if clear.assets],
    )


def write_view_rows(
    session: Session,
    rows: Iterable[tuple[Mapping[str, Any], Mapping[str, TxMetrics]]],
    *,
    prior_months: Collection[int] | None = None,
) -> int:
    """(own, {asset: metrics}) per anchored row, ``own`` a row's VIEW_BASE_COLUMNS by name: the
    row's own columns and the shard's elements of its metrics. ``prior_months``: the months where
    an earlier job may have written view rows (None: any); the stored rows of the slice's range in
    those months are read first, to clear what a rewrite empties (none on a first upload).
    Returns rows written."""
    by_partition: dict[tuple[str, int], list[tuple[Mapping[str, Any], tuple]]] = defaultdict(list)
    for own, by_asset in rows:
        by_partition[(own["user_id"], own["month"])].append((own, view_row_values(own, by_asset)))
    clears: list[ViewClear] = []
    for (user_id, month), part in by_partition.items():
        if prior_months is not None and month not in prior_months:
            continue
        stamps = [own["timestamp"] for own, _ in part]
        stored = stored_cells(session, user_id, month, min(stamps), max(stamps))
        clears += view_clears(stored, [own for own, _ in part])
    written = execute_batches(
        session,
        UPDATE_VIEW_ROW,
        {key: [values for _, values in part] for key, part in by_partition.items()},
    )
    clear_view_cells(session, clears)
    return written


def backfill_view_assets(session: Session) -> int:
    """Migration 014: the `assets` cell of every view row stored before it (an append of the
    row's own sent, received and fee assets: idempotent). Visits the (user, month) partitions
    user_months lists; a row whose cell already names its assets (written since) is left as it
    is, so a keyspace of mostly new rows costs reads, not a rewrite of its whole view. Returns
    rows updated."""
    partitions = {
        (row["user_id"], row["month"])
        for row in execute(session, "SELECT user_id, month FROM user_months", fetch_size=5000)
    }
    updated = 0
    for user_id, month in sorted(partitions):
        rows = execute(
            session,
            "SELECT timestamp, tx_id, sent_asset, received_asset, fee_asset, assets"
            " FROM transactions_view WHERE user_id = ? AND month = ?",
            (user_id, month),
            fetch_size=5000,
        )
        updated += execute_batches(  # one partition: unlogged batches (~3x single writes)
            session,
            f"UPDATE transactions_view SET assets = assets + ? {_KEY_WHERE}",
            {
                (user_id, month): [
                    (row_assets(row), user_id, month, row["timestamp"], row["tx_id"])
                    for row in rows
                    if row_assets(row) - (row["assets"] or set())
                ]
            },
        )
    return updated


DELETE_VIEW_ROW = (
    "DELETE FROM transactions_view WHERE user_id = ? AND month = ? AND timestamp = ? AND tx_id = ?"
)


def delete_view_rows(
    session: Session, user_id: str, keys: Iterable[tuple[int, datetime, str]]
) -> int:
    """(month, timestamp, tx_id) rows of transactions that left the history (a correction
    ignored or deleted them). Returns rows deleted."""
    by_partition: dict[tuple[str, int], list[Sequence[Any]]] = defaultdict(list)
    for month, ts, tx_id in keys:
        by_partition[(user_id, month)].append((user_id, month, ts, tx_id))
    return execute_batches(session, DELETE_VIEW_ROW, by_partition) if by_partition else 0
