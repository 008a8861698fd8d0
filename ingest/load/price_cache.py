"""The shared price cache in Cassandra: `prices` (points, one partition per asset, currency and
month) and `price_coverage` (which windows were fetched, including durable "no price here" markers).

Points are written before their window's coverage row, so a coverage row always means its points
are there (a fetch interrupted in between is simply fetched again: writes are idempotent upserts).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args

from ingest.load.cassandra import execute, execute_batches, prepared, with_retry
from ingest.normalize.canonical import AMOUNT, TIMESTAMP
from ingest.prices.planner import CoverageRecord

PRICES_SCHEMA = pa.schema([
    pa.field("asset", pa.string(), nullable=False),
    pa.field("ts", TIMESTAMP, nullable=False),
    pa.field("price", AMOUNT, nullable=False),
    pa.field("granularity", pa.string(), nullable=False),   # hour | day
])

INSERT_PRICE = ("INSERT INTO prices (asset, currency, month, ts, price, granularity, provider) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)")
SELECT_PRICES = ("SELECT toUnixTimestamp(ts) AS ms, price, granularity FROM prices "
                 "WHERE asset = ? AND currency = ? AND month = ? AND ts >= ? AND ts <= ?")
INSERT_COVERAGE = ("INSERT INTO price_coverage (asset, currency, window_start, window_end, "
                   "covered_until, status, provider, points, fetched_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
SELECT_COVERAGE = ("SELECT window_start, window_end, covered_until, status, fetched_at "
                   "FROM price_coverage WHERE asset = ? AND currency = ?")

# Rows per batch: a price row is ~60 bytes, so 40 stay under Cassandra's 5 KiB batch warning.
BATCH_ROWS = 40


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def unix_seconds(value: datetime) -> int:
    if value.tzinfo is None:   # the driver returns naive UTC
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp())


def yyyymm(value: datetime) -> int:
    return value.year * 100 + value.month


def months_between(start: datetime, end: datetime) -> list[int]:
    months = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(year * 100 + month)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def read_coverage(session: Session, assets: Iterable[str], *,
                  currency: str = "usd") -> list[CoverageRecord]:
    records = []
    for asset in sorted(set(assets)):
        for row in execute(session, SELECT_COVERAGE, (asset, currency)):
            records.append(CoverageRecord(asset, unix_seconds(row["window_start"]),
                                          unix_seconds(row["window_end"]),
                                          unix_seconds(row["covered_until"]), row["status"],
                                          unix_seconds(row["fetched_at"])
                                          if row["fetched_at"] is not None else None))
    return records


def write_points(session: Session, asset: str, points: Sequence[tuple[int, Decimal]], *,
                 granularity: str, provider: str, currency: str = "usd",
                 concurrency: int | None = None) -> int:
    """Upsert (unix ms, price) points, batched per (asset, currency, month) partition."""
    by_partition: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for ms, price in points:
        ts = utc(ms / 1000)
        month = yyyymm(ts)
        by_partition[month].append((asset, currency, month, ts, price, granularity, provider))
    return execute_batches(session, INSERT_PRICE, by_partition, max_rows=BATCH_ROWS,
                           concurrency=concurrency)


def write_coverage(session: Session, record: CoverageRecord, *, provider: str, points: int,
                   currency: str = "usd", fetched_at: datetime | None = None) -> None:
    execute(session, INSERT_COVERAGE, (
        record.asset, currency, utc(record.window_start), utc(record.window_end),
        utc(record.covered_until), record.status, provider, points,
        fetched_at or datetime.now(timezone.utc)))


def load_prices(session: Session, assets: Iterable[str], start: datetime, end: datetime, *,
                currency: str = "usd", concurrency: int = 16) -> pa.Table:
    """Every cached point of `assets` with start <= ts <= end, sorted by (asset, ts):
    PRICES_SCHEMA (asset, ts, price decimal128(38, 18), granularity)."""
    stmt = prepared(session, SELECT_PRICES)
    assets = sorted(set(assets))
    params = [(a, currency, m, start, end) for a in assets for m in months_between(start, end)]
    columns: tuple[list[str], list[int], list[Decimal], list[str]] = ([], [], [], [])

    def run() -> None:
        for column in columns:
            column.clear()
        results = execute_concurrent_with_args(session, stmt, params, concurrency=concurrency,
                                               results_generator=True)
        names, stamps, prices, granularities = columns
        for (asset, *_), (ok, result) in zip(params, results):
            if not ok:
                raise result
            for row in result:
                names.append(asset)
                stamps.append(row["ms"])
                prices.append(row["price"])
                granularities.append(row["granularity"])

    with_retry(run)
    names, stamps, prices, granularities = columns
    ts = pa.array(stamps, pa.int64()).cast(pa.timestamp("ms", tz="UTC")).cast(TIMESTAMP)
    table = pa.Table.from_arrays(
        [pa.array(names, pa.string()), ts, pa.array(prices, AMOUNT),
         pa.array(granularities, pa.string())], schema=PRICES_SCHEMA)
    return table.sort_by([("asset", "ascending"), ("ts", "ascending")])
