"""The read side: paged reads of the tables the pipeline precomputes.

Every function reads one user's partition(s) by key, one page at a time, with the driver's paging
state as the cursor; nothing here computes over raw transactions. The transactions' asset and
wallet filters are answered by the view's storage-attached indexes inside each month partition
(migration 014: only matching rows are read); the type filter is applied to the rows as they are
paged, which costs reading the rows that do not match: see `transactions_page`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from cassandra.cluster import Session

from ingest.load.cassandra import execute, execute_each
from ingest.load.transactions import user_months
from ingest.load.views import (
    VIEW_COLUMNS,
    element_metrics,
    unpack_disposal_chunk,
)
from ingest.tax.shards import fold_metrics
from ingest.tax.years import datetime_from_micros

Row = dict[str, Any]

SELECT_VIEW = (
    f"SELECT {', '.join(VIEW_COLUMNS)}, metrics FROM transactions_view "
    "WHERE user_id = ? AND month = ? AND timestamp >= ? AND timestamp <= ?"
)
# the view's indexed filters (migration 014), appended to SELECT_VIEW
VIEW_ASSET_FILTER = " AND assets CONTAINS ?"
VIEW_WALLET_FILTER = " AND wallet = ?"  # the index compares case-insensitively
SELECT_BALANCES = (
    "SELECT wallet, asset, quantity, cost_basis, updated_at FROM balances WHERE user_id = ?"
)
SELECT_BALANCES_OF_WALLET = SELECT_BALANCES + " AND wallet = ?"
SUMMARY_COLUMNS = "year, asset, proceeds, cost_basis, short_term_gain, long_term_gain, gain, income"
SELECT_SUMMARY = f"SELECT {SUMMARY_COLUMNS} FROM yearly_summary WHERE user_id = ?"
SELECT_YEAR_TOTALS = (
    f"SELECT {SUMMARY_COLUMNS} FROM yearly_summary WHERE user_id = ? AND year = ? AND asset = ?"
)
SELECT_YEAR_ASSETS = (
    f"SELECT {SUMMARY_COLUMNS} FROM yearly_summary WHERE user_id = ? AND year = ? AND asset > ?"
)
SELECT_DISPOSALS = "SELECT asset, body FROM disposal_chunks WHERE user_id = ? AND year = ?"
_FINDING_CHUNKS = "SELECT kind, asset, chunk, body FROM finding_chunks WHERE user_id = ?"
SELECT_FINDINGS_FROM = _FINDING_CHUNKS + " AND (kind, asset, chunk) >= (?, ?, ?)"
SELECT_FINDINGS_OF_KIND_FROM = _FINDING_CHUNKS + " AND kind = ? AND (asset, chunk) >= (?, ?)"
# Findings chunks per driver page while filling one API page.
FINDING_CHUNKS_FETCH = 4
SELECT_USER_JOBS = "SELECT job_id, status FROM jobs_by_user WHERE user_id = ?"
SELECT_FINDING_COUNTS = "SELECT kind, findings FROM finding_chunks WHERE user_id = ?"
SELECT_TX_BRIEF = (
    "SELECT timestamp, tx_id, wallet, type, sent_asset, sent_amount, received_asset, "
    "received_amount, fee_asset, fee_amount FROM transactions_view "
    "WHERE user_id = ? AND month = ? AND timestamp >= ? AND timestamp < ?"
)
SELECT_DISPOSAL_INDEX = (
    "SELECT asset, year, chunk FROM disposal_index WHERE user_id = ? AND tx_id = ?"
)
SELECT_DISPOSAL_CHUNKS_FROM = (
    "SELECT asset, chunk, body FROM disposal_chunks "
    "WHERE user_id = ? AND year = ? AND asset = ? AND chunk >= ?"
)
SELECT_INCOME = (
    "SELECT timestamp, type, label, value FROM transactions_view "
    "WHERE user_id = ? AND month = ? AND timestamp >= ? AND timestamp < ?"
)
INCOME_FETCH = 5000

TOTALS_ASSET = "*"  # yearly_summary's row holding a year's totals
# Rows one transactions request reads at most when filters drop rows (bounds its latency); the
# page then ends early with a token to continue from.
TX_SCAN_BUDGET = 5000
# Driver page size while filtering: matches are sparse, so read in larger pages.
TX_FILTER_FETCH = 500
# An indexed (asset, wallet) walk asks for the first pages of the next months at once, twice as
# many each round up to this: a rare asset or wallet has no match in most months, and one index
# lookup per month in turn was most of a filtered page's time (benchmarks/analysis.md); a
# frequent one fills the page from the first month, read alone.
TX_MONTHS_AT_ONCE = 16
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    paging_state: bytes | None  # None: this was the last page


def read_page(
    session: Session, cql: str, params: tuple[Any, ...], limit: int, paging_state: bytes | None
) -> Page:
    result = execute(session, cql, params, paging_state=paging_state, fetch_size=limit)
    return Page(list(result.current_rows), result.paging_state)


def utc(ts: datetime | None) -> datetime | None:
    """The driver returns naive UTC datetimes."""
    return ts.replace(tzinfo=timezone.utc) if ts is not None and ts.tzinfo is None else ts


# --- jobs, balances, gains, disposals, reconciliation --------------------------------------
def user_jobs_page(session: Session, user_id: str, limit: int, paging_state: bytes | None) -> Page:
    """A user's jobs, newest first."""
    return read_page(session, SELECT_USER_JOBS, (user_id,), limit, paging_state)


def balances_page(
    session: Session,
    user_id: str,
    limit: int,
    paging_state: bytes | None,
    wallet: str | None = None,
) -> Page:
    if wallet is None:
        return read_page(session, SELECT_BALANCES, (user_id,), limit, paging_state)
    return read_page(session, SELECT_BALANCES_OF_WALLET, (user_id, wallet), limit, paging_state)


def year_totals(session: Session, user_id: str, year: str) -> Row | None:
    return execute(session, SELECT_YEAR_TOTALS, (user_id, year, TOTALS_ASSET)).one()


def summary_rows(session: Session, user_id: str) -> list[Row]:
    """The user's whole yearly_summary partition (years x assets rows: thousands at most)."""
    return list(execute(session, SELECT_SUMMARY, (user_id,), fetch_size=1000))


def balance_rows(session: Session, user_id: str) -> list[Row]:
    """The user's whole balances partition (wallets x assets rows)."""
    return list(execute(session, SELECT_BALANCES, (user_id,), fetch_size=1000))


def totals_by_year(session: Session, user_id: str) -> list[Row]:
    """The totals row of every year, oldest first (the totals are not a key prefix)."""
    return [row for row in summary_rows(session, user_id) if row["asset"] == TOTALS_ASSET]


def year_assets_page(
    session: Session, user_id: str, year: str, limit: int, paging_state: bytes | None
) -> Page:
    """Per-asset rows of one year; the totals row ('*' sorts first) is excluded by the range."""
    return read_page(
        session, SELECT_YEAR_ASSETS, (user_id, year, TOTALS_ASSET), limit, paging_state
    )


def iter_disposals(
    session: Session, user_id: str, year: str, fetch_size: int = 16
) -> Iterator[Row]:
    """Every Form 8949 line of a year (by asset, then sale date); chunk rows are fetched page
    after page (`fetch_size` chunks each) and unpacked as they come."""
    for row in execute(session, SELECT_DISPOSALS, (user_id, year), fetch_size=fetch_size):
        yield from unpack_disposal_chunk(row)


def iter_income(session: Session, user_id: str, start: datetime, end: datetime) -> Iterator[Row]:
    """The user's income view rows from ``start`` (inclusive) to ``end`` (exclusive), oldest
    first. The type is not a key column: every view row of the range's months is read (a year
    of a 50k-row history: about 20k short rows)."""
    first, last = month_key(start), month_key(end - timedelta(milliseconds=1))
    for month in sorted(m for m in user_months(session, user_id) if first <= m <= last):
        for row in execute(
            session, SELECT_INCOME, (user_id, month, start, end), fetch_size=INCOME_FETCH
        ):
            if row["type"] == "income":
                yield row


class BadCursor(ValueError):
    """A page cursor this module did not issue."""


def _finding_cursor(state: bytes | None) -> tuple[str, str, int, int] | None:
    if state is None:
        return None
    try:
        kind, asset, chunk, offset = json.loads(state)
    except (ValueError, TypeError):
        raise BadCursor("not a findings cursor") from None
    if not (
        isinstance(kind, str)
        and isinstance(asset, str)
        and isinstance(chunk, int)
        and isinstance(offset, int)
        and chunk >= 0
        and offset >= 0
    ):
        raise BadCursor("not a findings cursor")
    return kind, asset, chunk, offset


def findings_page(
    session: Session, user_id: str, limit: int, paging_state: bytes | None, kind: str | None = None
) -> Page:
    """Up to `limit` findings by (kind, asset, timestamp, tx_id); `paging_state` is this
    function's own cursor (kind, asset, chunk, offset into the chunk) as bytes."""
    cursor = _finding_cursor(paging_state)
    first = cursor or (kind or "", "", 0, 0)
    if kind is not None and first[0] != kind:
        raise BadCursor("cursor of another kind")
    if kind is None:
        result = execute(
            session, SELECT_FINDINGS_FROM, (user_id, *first[:3]), fetch_size=FINDING_CHUNKS_FETCH
        )
    else:
        result = execute(
            session,
            SELECT_FINDINGS_OF_KIND_FROM,
            (user_id, kind, *first[1:3]),
            fetch_size=FINDING_CHUNKS_FETCH,
        )
    rows: list[Row] = []
    for chunk in result:
        items = json.loads(chunk["body"])
        start = first[3] if (chunk["kind"], chunk["asset"], chunk["chunk"]) == first[:3] else 0
        for position in range(start, len(items)):
            if len(rows) == limit:
                following = [chunk["kind"], chunk["asset"], chunk["chunk"], position]
                return Page(rows, json.dumps(following).encode())
            ts, tx_id, detail = items[position]
            rows.append(
                {
                    "kind": chunk["kind"],
                    "asset": chunk["asset"],
                    "timestamp": None if ts is None else datetime_from_micros(ts),
                    "tx_id": tx_id,
                    "detail": detail,
                }
            )
    return Page(rows, None)


def finding_counts(session: Session, user_id: str) -> dict[str, int]:
    """Findings per kind (the chunks' counts; their bodies are not read)."""
    counts: dict[str, int] = {}
    for row in execute(session, SELECT_FINDING_COUNTS, (user_id,), fetch_size=1000):
        counts[row["kind"]] = counts.get(row["kind"], 0) + (row["findings"] or 0)
    return counts


def transactions_between(
    session: Session, user_id: str, start: datetime, end: datetime
) -> list[Row]:
    """The user's view rows from ``start`` (inclusive) to ``end`` (exclusive), oldest first:
    who, what and how much (no tax metrics). For short ranges (a moment, a minute)."""
    rows: list[Row] = []
    month = month_key(start)
    while month <= month_key(end):
        rows.extend(execute(session, SELECT_TX_BRIEF, (user_id, month, start, end)))
        month = month + 1 if month % 100 < 12 else (month // 100 + 1) * 100 + 1
    return rows


def transaction_at(session: Session, user_id: str, at: datetime, tx_id: str) -> Row | None:
    """One view row by its key (a finding's time and tx_id), or None."""
    start = at.replace(microsecond=at.microsecond // 1000 * 1000)  # the table keeps ms
    end = start + timedelta(milliseconds=1)
    return next(
        (r for r in transactions_between(session, user_id, start, end) if r["tx_id"] == tx_id), None
    )


def disposal_lines_of(
    session: Session, user_id: str, tx_id: str
) -> dict[str, tuple[str, list[Row]]]:
    """A disposal's Form 8949 lines per asset it disposed of, with their tax year: asset ->
    (year, lines in line order). Empty when ``tx_id`` disposed of nothing (or no longer does:
    an index entry whose chunk holds none of its lines)."""
    out: dict[str, tuple[str, list[Row]]] = {}
    for entry in execute(session, SELECT_DISPOSAL_INDEX, (user_id, tx_id)):
        lines: list[Row] = []
        for chunk in execute(
            session,
            SELECT_DISPOSAL_CHUNKS_FROM,
            (user_id, entry["year"], entry["asset"], entry["chunk"]),
            fetch_size=2,
        ):
            unpacked = unpack_disposal_chunk(chunk)
            lines.extend(line for line in unpacked if line["tx_id"] == tx_id)
            # a disposal's lines are consecutive: they end in this chunk unless it ends with one
            if not unpacked or unpacked[-1]["tx_id"] != tx_id:
                break
        if lines:
            out[entry["asset"]] = (entry["year"], lines)
    return out


# --- transactions --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TxFilter:
    start: datetime = EARLIEST  # inclusive, UTC
    end: datetime = LATEST  # inclusive, UTC
    asset: str | None = None  # sent, received or fee asset
    wallet: str | None = None  # compared case-insensitively
    type: str | None = None

    @property
    def drops_rows(self) -> bool:
        """True when rows read may not match: the type filter, applied while paging (asset and
        wallet are answered by the view's indexes)."""
        return bool(self.type)

    def view_query(self) -> tuple[str, tuple[Any, ...]]:
        """SELECT_VIEW with the indexed filters, and their values after the partition's."""
        cql, values = SELECT_VIEW, list[Any]()
        if self.asset is not None:
            cql, values = cql + VIEW_ASSET_FILTER, [*values, self.asset]
        if self.wallet is not None:
            cql, values = cql + VIEW_WALLET_FILTER, [*values, self.wallet]
        return cql, tuple(values)

    def matches(self, row: Row) -> bool:
        if self.wallet is not None and (row["wallet"] or "").lower() != self.wallet.lower():
            return False
        if self.type is not None and row["type"] != self.type:
            return False
        return self.asset is None or self.asset in (
            row["sent_asset"],
            row["received_asset"],
            row["fee_asset"],
        )


@dataclass(frozen=True)
class TxCursor:
    """Where the next page starts: in partition `month`, `skip` rows past the driver page that
    `paging_state` resumes (None: the month's first row)."""

    month: int
    paging_state: bytes | None = None
    skip: int = 0


def month_key(ts: datetime) -> int:
    return ts.year * 100 + ts.month


def months_to_visit(
    session: Session, user_id: str, flt: TxFilter, cursor: TxCursor | None
) -> list[int]:
    """The user's month partitions in the filter's range, newest first; with an asset filter only
    the months `user_months` lists for that asset."""
    first, last = month_key(flt.start), month_key(flt.end)
    if cursor is not None:
        last = min(last, cursor.month)
    return [
        month
        for month, assets in sorted(user_months(session, user_id).items(), reverse=True)
        if first <= month <= last and (flt.asset is None or flt.asset in assets)
    ]


def transactions_page(
    session: Session,
    user_id: str,
    flt: TxFilter,
    limit: int,
    cursor: TxCursor | None = None,
    *,
    scan_budget: int = TX_SCAN_BUDGET,
) -> tuple[list[Row], TxCursor | None]:
    """Up to `limit` view rows matching `flt`, newest first, and the cursor of the next page
    (None: no more rows).

    Month partitions are walked newest first; `from`/`to` are clustering bounds (no wasted reads).
    Asset and wallet filters are answered by the view's indexes in each partition (only matching
    rows are read: months without a match cost one index lookup, and the next months' lookups are
    sent together, so a rare match costs a few round trips; never an empty page). The type
    filter is applied to the rows as they are read: it reads every row of the range to find its
    matches, at most `scan_budget` rows per call, after which the page ends early (possibly
    empty) with a cursor to continue from.
    """
    months = months_to_visit(session, user_id, flt, cursor)
    cql, filter_values = flt.view_query()
    indexed = flt.asset is not None or flt.wallet is not None
    firsts: dict[int, Any] = {}  # months' first pages asked for ahead (an indexed walk)
    window = 1
    items: list[Row] = []
    scanned = 0

    def fetch_size(skip: int) -> int:
        wanted = limit - len(items)
        return skip + (max(wanted, TX_FILTER_FETCH) if flt.drops_rows else wanted)

    for index, month in enumerate(months):
        resume = cursor if cursor is not None and month == cursor.month else None
        state = resume.paging_state if resume is not None else None
        skip = resume.skip if resume is not None else 0
        following = TxCursor(months[index + 1]) if index + 1 < len(months) else None
        if indexed and resume is None and month not in firsts:
            ahead = months[index : index + window]
            results = execute_each(
                session,
                cql,
                [(user_id, m, flt.start, flt.end, *filter_values) for m in ahead],
                fetch_size=fetch_size(0),
            )
            firsts.update(zip(ahead, results))
            window = min(2 * window, TX_MONTHS_AT_ONCE)
        while True:
            if state is None and month in firsts:
                result = firsts.pop(month)
            else:
                result = execute(
                    session,
                    cql,
                    (user_id, month, flt.start, flt.end, *filter_values),
                    paging_state=state,
                    fetch_size=fetch_size(skip),
                )
            rows = [with_metrics(row) for row in result.current_rows]
            page_end = TxCursor(month, result.paging_state) if result.paging_state else following
            for position in range(skip, len(rows)):
                scanned += 1
                if flt.matches(rows[position]):
                    items.append(rows[position])
                    if len(items) == limit:
                        after = position + 1
                        return items, (
                            TxCursor(month, state, after) if after < len(rows) else page_end
                        )
            if scanned >= scan_budget:
                return items, page_end
            if result.paging_state is None:
                break
            state, skip = result.paging_state, 0
    return items, None


def with_metrics(row: Row) -> Row:
    """A view row whose tax shards wrote per-asset ``metrics`` elements gets the folded
    cost_basis, gain, term, balance_after and flags (ingest.tax.shards.fold_metrics)."""
    elements = row.pop("metrics", None)
    if elements:
        folded = fold_metrics(
            {asset: element_metrics(asset, element) for asset, element in elements.items()}
        )
        row.update(
            cost_basis=folded.cost_basis,
            gain=folded.gain,
            term=folded.term,
            balance_after=folded.balance_after,
            flags=folded.flags or None,
        )
    return row
