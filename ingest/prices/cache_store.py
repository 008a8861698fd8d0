"""The shared price cache in Cassandra: `price_window_points` (one row per fetched (asset,
currency, window) holding the window's points packed as one Arrow IPC cell, exact decimals) and
`price_coverage` (which windows were fetched, including durable "no price here" markers).

A window's row is written before its coverage row, so a coverage row always means its points are
there (a fetch interrupted in between is simply fetched again: both writes are idempotent upserts).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args

from ingest.load.cassandra import execute, prepared, with_retry
from ingest.normalize.canonical import AMOUNT, TIMESTAMP
from ingest.prices.planner import WINDOW_SECONDS, CoverageRecord, window_of
from ingest.prices.providers.base import Outcome
from ingest.tax.years import micros_from_datetime

PRICES_SCHEMA = pa.schema(
    [
        pa.field("asset", pa.string(), nullable=False),
        pa.field("ts", TIMESTAMP, nullable=False),
        pa.field("price", AMOUNT, nullable=False),
        pa.field("granularity", pa.string(), nullable=False),  # hour | day
    ]
)

INSERT_WINDOW = (
    "INSERT INTO price_window_points (asset, currency, window_start, granularity, provider, "
    "points, body) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# Windows whose start lies in [first, last]: the caller widens `first` by one window, since a
# provider may answer a point a little past its window's end.
SELECT_WINDOWS = (
    "SELECT body, granularity FROM price_window_points WHERE asset = ? AND "
    "currency = ? AND window_start >= ? AND window_start <= ?"
)
INSERT_COVERAGE = (
    "INSERT INTO price_coverage (asset, currency, window_start, window_end, "
    "covered_until, status, provider, points, fetched_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SELECT_COVERAGE = (
    "SELECT window_start, window_end, covered_until, status, fetched_at "
    "FROM price_coverage WHERE asset = ? AND currency = ?"
)


POINTS_SCHEMA = pa.schema(
    [pa.field("ms", pa.int64(), nullable=False), pa.field("price", AMOUNT, nullable=False)]
)
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")


def pack_points(points: Sequence[tuple[int, Decimal]]) -> bytes:
    """(unix ms, price) points, ascending, as one Arrow IPC stream. Raises for a price that does
    not fit decimal128(38, 18) (nothing is rounded)."""
    table = pa.table(
        [pa.array([ms for ms, _ in points], pa.int64()), pa.array([p for _, p in points], AMOUNT)],
        schema=POINTS_SCHEMA,
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, POINTS_SCHEMA, options=_IPC_OPTIONS) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def unpack_points(body: bytes) -> pa.Table:
    return pa.ipc.open_stream(body).read_all()


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def unix_time(value: datetime) -> float:
    """Unix seconds with the value's fraction (a Cassandra timestamp holds milliseconds)."""
    if value.tzinfo is None:  # the driver returns naive UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def unix_seconds(value: datetime) -> int:
    return int(unix_time(value))


def read_coverage(
    session: Session, assets: Iterable[str], *, currency: str = "usd"
) -> list[CoverageRecord]:
    records = []
    for asset in sorted(set(assets)):
        for row in execute(session, SELECT_COVERAGE, (asset, currency)):
            records.append(
                CoverageRecord(
                    asset,
                    unix_seconds(row["window_start"]),
                    unix_seconds(row["window_end"]),
                    unix_seconds(row["covered_until"]),
                    row["status"],
                    unix_time(row["fetched_at"]) if row["fetched_at"] is not None else None,
                )
            )
    return records


def write_window(
    session: Session,
    asset: str,
    window_start: int,
    points: Sequence[tuple[int, Decimal]],
    *,
    granularity: str,
    provider: str,
    currency: str = "usd",
) -> int:
    """One row holding a fetched window's (unix ms, price) points (any order; stored ascending).
    Returns the number of points."""
    ordered = sorted(points)
    execute(
        session,
        INSERT_WINDOW,
        (
            asset,
            currency,
            utc(window_start),
            granularity,
            provider,
            len(ordered),
            pack_points(ordered),
        ),
    )
    return len(ordered)


def write_coverage(
    session: Session,
    record: CoverageRecord,
    *,
    provider: str,
    points: int,
    currency: str = "usd",
    fetched_at: datetime | None = None,
) -> None:
    execute(
        session,
        INSERT_COVERAGE,
        (
            record.asset,
            currency,
            utc(record.window_start),
            utc(record.window_end),
            utc(record.covered_until),
            record.status,
            provider,
            points,
            fetched_at or datetime.now(timezone.utc),
        ),
    )


def load_prices(
    session: Session,
    assets: Iterable[str],
    start: datetime,
    end: datetime,
    *,
    currency: str = "usd",
    concurrency: int = 16,
) -> pa.Table:
    """Every cached point of `assets` with start <= ts <= end, sorted by (asset, ts):
    PRICES_SCHEMA (asset, ts, price decimal128(38, 18), granularity). Reads whole window rows,
    one query per asset."""
    stmt = prepared(session, SELECT_WINDOWS)
    assets = sorted(set(assets))
    first = utc(window_of(unix_seconds(start)).start - WINDOW_SECONDS)
    last = utc(window_of(unix_seconds(end)).start)
    start_ms, end_ms = micros_from_datetime(start) // 1000, micros_from_datetime(end) // 1000
    params = [(asset, currency, first, last) for asset in assets]
    pieces: list[pa.Table] = []

    def run() -> None:
        pieces.clear()
        results = execute_concurrent_with_args(
            session, stmt, params, concurrency=concurrency, results_generator=True
        )
        for (asset, *_), (ok, result) in zip(params, results):
            if not ok:
                raise result
            for row in result:
                points = unpack_points(row["body"])
                ms = points.column("ms")
                kept = points.filter(
                    pc.and_(pc.greater_equal(ms, start_ms), pc.less_equal(ms, end_ms))
                )
                if kept.num_rows:
                    n = kept.num_rows
                    pieces.append(
                        pa.table(
                            [
                                pa.array([asset] * n, pa.string()),
                                kept.column("ms")
                                .cast(pa.timestamp("ms", tz="UTC"))
                                .cast(TIMESTAMP),
                                kept.column("price"),
                                pa.array([row["granularity"]] * n, pa.string()),
                            ],
                            schema=PRICES_SCHEMA,
                        )
                    )

    with_retry(run)
    table = pa.concat_tables(pieces) if pieces else PRICES_SCHEMA.empty_table()
    return table.sort_by([("asset", "ascending"), ("ts", "ascending")])


SELECT_LATEST_WINDOW = (
    "SELECT body FROM price_window_points WHERE asset = ? AND currency = ? "
    "ORDER BY window_start DESC LIMIT 1"
)


def latest_prices(
    session: Session, assets: Iterable[str], *, currency: str = "usd", concurrency: int = 16
) -> dict[str, tuple[datetime, Decimal]]:
    """asset -> (time, price) of its latest cached point in `currency` (assets with none are
    left out): the last point of its latest fetched window, one query per asset."""
    stmt = prepared(session, SELECT_LATEST_WINDOW)
    params = [(asset, currency) for asset in sorted(set(assets))]
    out: dict[str, tuple[datetime, Decimal]] = {}

    def run() -> None:
        out.clear()
        results = execute_concurrent_with_args(
            session, stmt, params, concurrency=concurrency, results_generator=True
        )
        for (asset, _), (ok, result) in zip(params, results):
            if not ok:
                raise result
            row = result.one()
            points = unpack_points(row["body"]) if row is not None else None
            if points is not None and points.num_rows:
                last = points.slice(points.num_rows - 1).to_pylist()[0]
                out[asset] = (utc(last["ms"] / 1000), last["price"])

    with_retry(run)
    return out


def store_outcome(
    session: Session,
    asset: str,
    window_start: int,
    window_end: int,
    outcome: Outcome,
    *,
    provider: str,
    covered_until: int,
    currency: str,
) -> None:
    """A provider's final answer for one window: its points first, then the coverage row that
    says they are there (both idempotent upserts), so a crash between them only refetches."""
    if outcome.points:
        write_window(
            session,
            asset,
            window_start,
            outcome.points,
            granularity=outcome.granularity,
            provider=provider,
            currency=currency,
        )
    status = outcome.kind.value  # ok | no_data | unlisted
    write_coverage(
        session,
        CoverageRecord(asset, window_start, window_end, covered_until, status),
        provider=provider,
        points=len(outcome.points),
        currency=currency,
    )
