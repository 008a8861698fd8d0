"""The planner, pure: windows, deduplication, coverage, unlisted assets, "now"."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from ingest.normalize.canonical import TIMESTAMP
from ingest.prices.planner import (
    WINDOW_SECONDS,
    CoverageRecord,
    distinct_windows,
    plan_fetches,
    window_of,
)

IDS = {"BTC": "bitcoin", "ETH": "ethereum", "SOL": "solana"}
NOW = int(datetime(2026, 6, 1, tzinfo=timezone.utc).timestamp())


def needs(pairs: list[tuple[str, int]]) -> pa.Table:
    return pa.table(
        {
            "asset": pa.array([a for a, _ in pairs], pa.string()),
            "ts": pa.array([t * 1_000_000 for _, t in pairs], pa.int64()).cast(TIMESTAMP),
        }
    )


def test_windows_are_88_days_aligned_to_the_epoch_and_under_90_days():
    assert WINDOW_SECONDS == 88 * 86400 < 90 * 86400
    w = window_of(1_704_067_200)
    assert w.start % WINDOW_SECONDS == 0 and w.end - w.start == WINDOW_SECONDS
    assert w.start <= 1_704_067_200 < w.end
    assert window_of(w.end).start == w.end and window_of(w.end - 1).start == w.start


def test_duplicates_collapse_to_one_request_per_asset_and_window():
    t = 1_704_067_200
    plan = plan_fetches(
        needs([("BTC", t), ("BTC", t), ("BTC", t + 3600), ("ETH", t), ("BTC", t + WINDOW_SECONDS)]),
        [],
        IDS,
        now=NOW,
    )
    assert [(r.asset, r.window.start) for r in plan.requests] == [
        ("BTC", window_of(t).start),
        ("BTC", window_of(t + WINDOW_SECONDS).start),
        ("ETH", window_of(t).start),
    ]
    assert plan.windows_needed == 3 and plan.windows_cached == 0
    assert plan.requests[0].coin_id == "bitcoin"


def test_covered_windows_are_dropped_and_counted():
    t = 1_704_067_200
    w = window_of(t)
    coverage = [
        CoverageRecord("BTC", w.start, w.end, w.end, "ok"),
        CoverageRecord("ETH", w.start, w.end, w.end, "no_data"),
    ]
    plan = plan_fetches(needs([("BTC", t), ("ETH", t), ("SOL", t)]), coverage, IDS, now=NOW)
    assert [r.asset for r in plan.requests] == ["SOL"]
    assert plan.windows_needed == 3 and plan.windows_cached == 2


def test_window_holding_now_is_covered_only_until_its_fetch():
    w = window_of(NOW)
    fetched = NOW - 3600
    coverage = [CoverageRecord("BTC", w.start, w.end, fetched, "ok")]
    before = plan_fetches(needs([("BTC", fetched - 60)]), coverage, IDS, now=NOW)
    after = plan_fetches(needs([("BTC", fetched + 60)]), coverage, IDS, now=NOW)
    assert before.requests == [] and before.windows_cached == 1
    assert [r.window for r in after.requests] == [w]


def test_unlisted_unknown_fiat_null_and_future_needs_are_not_requested():
    t = 1_704_067_200
    coverage = [CoverageRecord("SOL", 0, WINDOW_SECONDS, WINDOW_SECONDS, "unlisted")]
    table = pa.table(
        {
            "asset": pa.array(["SOL", "FOO", "USD", "EUR", None, "BTC", "ETH"]),
            "ts": pa.array([t, t, t, t, t, None, NOW + 10], pa.int64()).cast(
                pa.timestamp("s", tz="UTC")
            ),
        }
    )
    plan = plan_fetches(table, coverage, IDS, now=NOW)
    assert plan.requests == []
    assert plan.assets_unlisted == ["FOO", "SOL"]
    assert plan.windows_needed == 0


def test_empty_needs():
    plan = plan_fetches(needs([]), [], IDS, now=NOW)
    assert plan.requests == [] and plan.windows_needed == 0


@hsettings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["BTC", "ETH", "SOL"]), st.integers(1_420_070_400, NOW)),
        max_size=200,
    )
)
def test_requests_equal_distinct_asset_windows_and_cover_every_need(pairs):
    plan = plan_fetches(needs(pairs), [], IDS, now=NOW)
    distinct = {(a, window_of(t).start) for a, t in pairs}
    assert len(plan.requests) == len(distinct) == plan.windows_needed
    for asset, t in pairs:
        assert any(r.asset == asset and r.window.start <= t < r.window.end for r in plan.requests)
    assert distinct_windows(needs(pairs), now=NOW).keys() == {a for a, _ in pairs}


def test_microsecond_timestamps_before_a_boundary_stay_in_their_window():
    boundary = window_of(1_704_067_200).end
    ts = datetime.fromtimestamp(boundary, tz=timezone.utc) - timedelta(microseconds=1)
    table = pa.table({"asset": ["BTC"], "ts": pa.array([ts], TIMESTAMP)})
    assert plan_fetches(table, [], IDS, now=NOW).requests[0].window.end == boundary
