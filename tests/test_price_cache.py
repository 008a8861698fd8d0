"""The price cache against the real Cassandra node: one row per window, exact decimals back."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from ingest.load.cassandra import execute
from ingest.prices.cache_store import (
    PRICES_SCHEMA,
    latest_prices,
    load_prices,
    read_coverage,
    unpack_points,
    write_coverage,
    write_window,
)
from ingest.prices.planner import WINDOW_SECONDS, CoverageRecord, window_of

HOUR_MS = 3_600_000


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def test_a_window_is_one_row_and_its_decimals_come_back_exactly(session):
    window = window_of(1_700_000_000)
    base = window.start * 1000 + 123  # provider times are not on the hour
    prices = [
        Decimal("42000.123456789012345678"),
        Decimal("0.000000000000000001"),
        Decimal("99999999999999999999.999999999999999999"),
        Decimal("1E-7"),
        Decimal("3"),
    ]
    points = [(base + i * HOUR_MS, p) for i, p in enumerate(prices)]
    assert write_window(
        session,
        "RTRIP",
        window.start,
        list(reversed(points)),
        granularity="hour",
        provider="coingecko",
    ) == len(points)

    rows = list(
        execute(
            session,
            "SELECT points, body FROM price_window_points WHERE asset = ? AND currency = ?",
            ("RTRIP", "usd"),
        )
    )
    assert len(rows) == 1 and rows[0]["points"] == len(points)
    assert unpack_points(rows[0]["body"]).column("ms").to_pylist() == [ms for ms, _ in points]

    table = load_prices(session, ["RTRIP"], at(base), at(base + 10 * HOUR_MS))
    assert table.schema == PRICES_SCHEMA
    assert table.column("price").to_pylist() == prices
    assert [int(t.timestamp() * 1000) for t in table.column("ts").to_pylist()] == [
        ms for ms, _ in points
    ]
    assert set(table.column("granularity").to_pylist()) == {"hour"}


def test_load_prices_keeps_only_the_range_across_windows_and_assets(session):
    first = window_of(1_600_000_000)
    second_start = first.start + WINDOW_SECONDS
    for asset, offset in (("RANGEA", 0), ("RANGEB", 7)):
        write_window(
            session,
            asset,
            first.start,
            [((first.start + h * 3600) * 1000, Decimal(h + offset)) for h in range(10)],
            granularity="hour",
            provider="p",
        )
        # a point a little past its window's end is still found (stored under its window)
        write_window(
            session,
            asset,
            second_start,
            [((second_start + h * 3600) * 1000, Decimal(100 + h + offset)) for h in range(5)],
            granularity="day",
            provider="p",
        )
    lo, hi = at((first.start + 8 * 3600) * 1000), at((second_start + 2 * 3600) * 1000)
    table = load_prices(session, ["RANGEB", "RANGEA", "NOSUCH"], lo, hi)
    assert table.column("asset").to_pylist() == ["RANGEA"] * 5 + ["RANGEB"] * 5
    assert table.column("price").to_pylist() == [
        Decimal(v) for v in (8, 9, 100, 101, 102, 15, 16, 107, 108, 109)
    ]
    assert table.column("granularity").to_pylist()[:5] == ["hour", "hour", "day", "day", "day"]


def test_latest_prices_are_the_last_point_of_each_assets_latest_window(session):
    first = window_of(1_500_000_000)
    later = first.start + 3 * WINDOW_SECONDS
    for start, prices in ((first.start, (1, 2)), (later, (5, 6, 7))):
        write_window(
            session,
            "LATESTA",
            start,
            [((start + h * 3600) * 1000, Decimal(p)) for h, p in enumerate(prices)],
            granularity="hour",
            provider="p",
        )
    found = latest_prices(session, ["LATESTA", "NOSUCHLATEST"])
    assert found == {"LATESTA": (at((later + 2 * 3600) * 1000), Decimal(7))}
    assert latest_prices(session, ["LATESTA"], currency="eur") == {}


def test_a_windows_fetched_at_comes_back_to_the_millisecond(session):
    """Checkpoints compare it with the microsecond they were made (ingest/pipeline/tax/plan.py
    fetched_by_us): whole seconds made a job's own fetch look later than its checkpoints."""
    window = window_of(1_600_000_000)
    record = CoverageRecord("FETCHEDMS", window.start, window.end, window.end, "ok")
    stored_at = datetime(2026, 12, 7, 17, 42, 26, 730_473, tzinfo=timezone.utc)
    write_coverage(session, record, provider="p", points=0, fetched_at=stored_at)
    [found] = read_coverage(session, ["FETCHEDMS"])
    assert found.fetched_at == 1_796_665_346.730  # the column's milliseconds, truncated
    assert found.window_start == window.start
