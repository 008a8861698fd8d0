"""A shard walked period by period (ShardStream) equals the whole walk (compute_shard), and holds
one period's rows at a time (pure: no Ray, no Cassandra).

Every output is compared: per asset the Form 8949 lines (with their lots), income, walk findings,
balances and tax years; the shard's findings, its summary and checkpoints; the view cells (each
row written once, with the same metrics elements). The bound is read from the stream's own
instrument (``rows_held``: the most rows one period's walk held), never from a timer.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.tax.checkpoint_codec import encode_checkpoint
from ingest.tax.checkpoints import period_starts, reach_us
from ingest.tax.methods import get_method
from ingest.tax.reconcile import NO_RULES, UserRules
from ingest.tax.records import TxMetrics
from ingest.tax.shards import (
    Shard,
    ShardResult,
    ShardStream,
    compute_shard,
    history_stats,
    month_ends,
    plan_shards,
    split_history,
)
from ingest.tax.years import micros_from_datetime
from tests.fixtures.tax.builders import buy, deposit, sell, valued_table, withdrawal
from tests.fixtures.tax.synthetic import synthetic_history
from tests.test_tax_checkpoints import TO_DECEMBER, full_run, resume_of, span
from tests.test_tax_properties import histories
from tests.test_tax_shards import ALL

HOUR_US = 3_600_000_000


def streamed(
    tx: pa.Table, shard: Shard, method: str, pooling: str, keep_lines: bool = False, **options
) -> tuple[ShardStream, ShardResult, dict[str, dict[str, TxMetrics]], list[str]]:
    """The stream run through: its result, the metrics elements its periods gave and the tx ids
    of the rows they gave (each period's view rows). Lines given per period (keep_lines False,
    the stage's way) are put back into the result's assets, in the order given."""
    stream = ShardStream(
        tx, shard, method=method, pooling=pooling, keep_lines=keep_lines, **options
    )
    elements: dict[str, dict[str, TxMetrics]] = {}
    written: list[str] = []
    given: dict[str, list] = defaultdict(list)
    for period in stream.periods():
        assert not set(period.per_tx) & set(elements), "a transaction's cells written twice"
        elements.update(period.per_tx)
        written += period.rows.column("tx_id").to_pylist()
        for line in period.disposals:
            given[line.asset].append(line)
    result = stream.result()
    assert result.lines_given == sum(len(lines) for lines in given.values())
    assert result.summary().disposals == result.lines_given + sum(
        len(r.disposals) for r in result.assets
    )
    if given:
        assert not keep_lines
        for asset_result in result.assets:
            asset_result.disposals = given.pop(asset_result.asset, [])
        assert not given
        result.lines_given = 0
    return stream, result, elements, written


def assert_stream_equals_whole(
    whole: ShardResult,
    got: ShardResult,
    elements: dict[str, dict[str, TxMetrics]],
    written: list[str],
    tx: pa.Table,
) -> None:
    assert [r.asset for r in got.assets] == [r.asset for r in whole.assets]
    for mine, expected in zip(got.assets, whole.assets):
        assert mine.disposals == expected.disposals  # line ids, lots (acquired, from tx) included
        assert mine.income == expected.income
        assert mine.findings == expected.findings
        assert mine.balances == expected.balances
        assert mine.years == expected.years
    assert got.findings == whole.findings
    assert elements == whole.per_tx  # the view's metrics cells
    assert sorted(written) == sorted(tx.column("tx_id").to_pylist())  # each view row once
    assert [encode_checkpoint(c) for c in got.checkpoints] == [
        encode_checkpoint(c) for c in whole.checkpoints
    ]
    summary, expected_summary = got.summary(), whole.summary()
    expected_summary.rows_held = summary.rows_held
    assert summary == expected_summary


def period_bound(tx: pa.Table, ends: list[int], reach: int) -> int:
    """The most rows of one period plus the rows within the reach after its end: what a period's
    walk may hold."""
    stamps = pc.cast(tx.column("timestamp"), pa.int64()).to_numpy()
    bounds = [-(1 << 62), *ends, 1 << 62]
    return max(
        int(((stamps >= low) & (stamps < high + (reach if high < 1 << 62 else 0))).sum())
        for low, high in zip(bounds, bounds[1:])
    )


def marked_rules(rows: list[dict], choices: list[tuple[int, int, bool]]) -> UserRules:
    """Transfers the user marked (any withdrawal with any later deposit of its asset, however
    far) and deposits' stated bases, picked by index."""
    withdrawals = [r for r in rows if r["type"] == "withdrawal"]
    deposits = [r for r in rows if r["type"] == "deposit"]
    forced, basis = set(), {}
    for w, d, stated in choices:
        if not withdrawals or not deposits:
            break
        out, into = withdrawals[w % len(withdrawals)], deposits[d % len(deposits)]
        if stated:
            basis[into["tx_id"]] = Decimal(w % 97)
        elif out["sent_asset"] == into["received_asset"]:
            forced.add((out["tx_id"], into["tx_id"]))
    return UserRules(forced=frozenset(forced), cost_basis=basis)


choices = st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50), st.booleans()), max_size=4)
# period ends a few minutes after a withdrawal (its deposit comes an hour later) or up to 40
# days after any row (inside UK 30-day windows)
random_ends = st.tuples(
    st.lists(st.tuples(st.integers(0, 30), st.integers(1, 90)), max_size=3),
    st.lists(st.tuples(st.integers(0, 60), st.integers(1, 40 * 24 * 60)), max_size=4),
)
MINUTE_US = 60_000_000


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    histories(),
    st.sampled_from(ALL),
    st.integers(min_value=1, max_value=3),
    st.one_of(st.none(), random_ends),
    choices,
    st.booleans(),
    st.booleans(),
)
def test_a_streamed_walk_equals_the_whole_walk_on_random_histories(
    history, method_pooling, shard_count, end_hours, picks, keep_lines, stored_years
):
    """Random histories (transfers, fees, trades, income; gaps of up to 200 days), every method
    and pooling, transfers the user marked across any distance and stated bases; periods end at
    the tax-year starts (checkpoints made there, compared too), at random instants, or at both
    (checkpoints only at the tax-year starts, each with the years and findings of the periods
    since the last one)."""
    method, pooling = method_pooling
    rows, _, _ = history
    rows = [{**row, "timestamp": row["timestamp"] + TO_DECEMBER} for row in rows]
    tx = valued_table(rows)
    rules = marked_rules(rows, picks)
    first, last = span(tx)
    if end_hours is None:  # the product's periods: tax years, a checkpoint at each end
        starts, ends = period_starts(method, first, last), None
    else:
        starts, ends = period_starts(method, first, last) if stored_years else [], []
        near_withdrawals, near_rows = end_hours
        for kinds, picks in (({"withdrawal"}, near_withdrawals), (None, near_rows)):
            stamps = sorted(
                micros_from_datetime(r["timestamp"])
                for r in rows
                if kinds is None or r["type"] in kinds
            )
            ends += [stamps[i % len(stamps)] + m * MINUTE_US for i, m in picks if stamps]
    plan = plan_shards(history_stats(tx), shard_count)
    pieces = split_history(tx, plan)
    wholes = [
        compute_shard(
            piece, shard, method=method, pooling=pooling, period_starts=starts, rules=rules
        )
        for piece, shard in zip(pieces, plan.shards)
    ]
    for piece, shard, whole in zip(pieces, plan.shards, wholes):
        stream, got, elements, written = streamed(
            piece,
            shard,
            method,
            pooling,
            keep_lines=keep_lines,
            period_starts=starts,
            ends=ends,
            rules=rules,
        )
        assert_stream_equals_whole(whole, got, elements, written, piece)
        reach = reach_us(method, 24)
        assert got.rows_held <= period_bound(piece, stream.ends, reach)
        assert got.summary().rows_held == got.rows_held
        for start in starts:  # an upload's run: resumed from the whole walk's checkpoints
            later = piece.filter(pc.greater_equal(pc.cast(piece["timestamp"], pa.int64()), start))
            options = dict(period_starts=starts, rules=rules)
            resumed = compute_shard(
                piece,
                shard,
                method=method,
                pooling=pooling,
                resume=resume_of(wholes, shard, start),
                **options,
            )
            _, got, elements, written = streamed(
                piece, shard, method, pooling, resume=resume_of(wholes, shard, start), **options
            )
            assert_stream_equals_whole(resumed, got, elements, written, later)


@pytest.mark.parametrize("method,pooling", [("fifo", "per-wallet"), ("uk", "universal")])
def test_a_dominant_asset_is_held_one_tax_year_at_a_time(method, pooling):
    """Years of one asset's history in one shard: the walk never holds more than a tax year's
    rows and the reach after it, far fewer than the history, with the whole walk's results."""
    tx = synthetic_history(4000, assets=3, seed=7)
    first, last = span(tx)
    starts = period_starts(method, first, last)
    assert len(starts) >= 2
    (shard,) = plan_shards(history_stats(tx), 1).shards
    whole = compute_shard(tx, shard, method=method, pooling=pooling, period_starts=starts)
    stream, got, elements, written = streamed(tx, shard, method, pooling, period_starts=starts)
    assert_stream_equals_whole(whole, got, elements, written, tx)
    assert stream.ends == starts
    bound = period_bound(tx, starts, reach_us(method, 24))
    assert got.rows_held <= bound < tx.num_rows
    assert whole.summary().rows_held == tx.num_rows  # the whole walk holds every row


@pytest.mark.parametrize("method,pooling", [("fifo", "per-wallet"), ("uk", "universal")])
def test_a_dominant_asset_is_held_a_few_months_at_a_time_with_period_rows(method, pooling):
    """period_rows ends periods at month starts inside a tax year too: the walk holds about
    that many rows (and the reach after them), the results equal the whole walk's, and the
    checkpoints stored at the tax-year starts (the only ones stored) are the whole walk's, so
    a later upload resumed from them equals a resumed whole walk."""
    tx = synthetic_history(4000, assets=3, seed=7)
    first, last = span(tx)
    starts = period_starts(method, first, last)
    (shard,) = plan_shards(history_stats(tx), 1).shards
    whole = compute_shard(tx, shard, method=method, pooling=pooling, period_starts=starts)
    stream, got, elements, written = streamed(
        tx, shard, method, pooling, period_starts=starts, period_rows=400
    )
    assert_stream_equals_whole(whole, got, elements, written, tx)
    assert set(starts) < set(stream.ends) and len(stream.ends) >= 3 * len(starts)
    reach = reach_us(method, 24)
    assert got.rows_held <= period_bound(tx, stream.ends, reach)
    assert got.rows_held < period_bound(tx, starts, reach) / 2  # a few months, not a year
    start = starts[-1]
    resumed_whole = compute_shard(
        tx,
        shard,
        method=method,
        pooling=pooling,
        resume=resume_of([whole], shard, start),
        period_starts=starts,
    )
    _, resumed, elements, written = streamed(
        tx,
        shard,
        method,
        pooling,
        resume=resume_of([got], shard, start),  # the stream's own stored checkpoints
        period_starts=starts,
        period_rows=400,
    )
    later = tx.filter(pc.greater_equal(pc.cast(tx["timestamp"], pa.int64()), start))
    assert_stream_equals_whole(resumed_whole, resumed, elements, written, later)


def test_month_ends_split_only_what_passes_the_rows():
    """Month starts taken greedily between the fixed ends; a quiet stretch stays one period."""
    day = 86_400_000_000
    jan = micros_from_datetime(datetime(2023, 1, 1, tzinfo=timezone.utc))
    stamps = [jan + d * day for d in range(0, 120)]  # Jan..Apr, one row a day
    stamps += [jan + 200 * day + h * HOUR_US for h in range(5)]  # a few rows in July
    tx = pa.table({"timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC"))})
    months = {
        m: micros_from_datetime(datetime(2023, m, 1, tzinfo=timezone.utc)) for m in range(2, 8)
    }
    assert month_ends(tx, [], 1000) == []
    # April's 30 rows and July's 5 stay one period of 35: May and June are empty
    assert month_ends(tx, [], 40) == [months[2], months[3], months[4]]
    assert month_ends(tx, [], 70) == [months[3]]  # Jan+Feb 59, Mar..Jul 66
    # a fixed end restarts the count
    assert month_ends(tx, [months[3]], 50) == [months[2], months[4]]


@pytest.mark.parametrize("method,pooling", [("fifo", "per-wallet"), ("uk", "universal")])
def test_a_stream_resumed_from_stored_checkpoints_equals_a_resumed_whole_walk(method, pooling):
    tx = synthetic_history(3000, assets=6, seed=3)
    results, starts, plan = full_run(tx, method, pooling, shards=2)
    start = starts[0]
    for piece, shard in zip(split_history(tx, plan), plan.shards):
        resume = resume_of(results, shard, start)
        whole = compute_shard(
            piece, shard, method=method, pooling=pooling, resume=resume, period_starts=starts
        )
        later = piece.filter(pc.greater_equal(pc.cast(piece["timestamp"], pa.int64()), start))
        _, got, elements, written = streamed(
            piece,
            shard,
            method,
            pooling,
            resume=resume_of(results, shard, start),
            period_starts=starts,
        )
        assert_stream_equals_whole(whole, got, elements, written, later)


def test_a_marked_transfer_over_years_keeps_its_years_in_one_period():
    """A withdrawal the user marked as the transfer of a deposit two years later: no period
    ends between them (its withdrawal's walk would not see the deposit), and the transfer
    carries its lots as in the whole walk."""
    tx = valued_table(
        [
            buy("2022-03-01", "BTC", 1, 100, wallet="exchange", tx_id="b1"),
            withdrawal("2022-06-01", "BTC", 1, wallet="exchange", value=200, tx_id="w1"),
            buy("2023-05-01", "BTC", 1, 300, wallet="ledger", tx_id="b2"),
            deposit("2024-06-01", "BTC", 1, wallet="ledger", value=500, tx_id="d1"),
            sell("2025-02-01", "BTC", 2, 900, wallet="ledger", tx_id="s1"),
        ]
    )
    rules = UserRules(forced=frozenset({("w1", "d1")}))
    first, last = span(tx)
    starts = period_starts("fifo", first, last)
    (shard,) = plan_shards(history_stats(tx), 1).shards
    whole = compute_shard(
        tx, shard, method="fifo", pooling="per-wallet", period_starts=starts, rules=rules
    )
    stream, got, elements, written = streamed(
        tx, shard, "fifo", "per-wallet", period_starts=starts, rules=rules
    )
    assert_stream_equals_whole(whole, got, elements, written, tx)
    year_2025 = micros_from_datetime(datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert stream.ends == [year_2025]  # 2023 and 2024 lie within the marked transfer
    (line, *_) = got.assets[0].disposals
    assert line.date_acquired == datetime(2022, 3, 1, tzinfo=timezone.utc).date()
    assert NO_RULES != rules


def test_periods_closer_than_the_reach_are_joined():
    tx = valued_table(
        [
            buy("2022-03-01", "ETH", 2, 100, tx_id="b1"),
            sell("2022-03-05", "ETH", 1, 100, tx_id="s1"),
            sell("2022-04-05", "ETH", 1, 100, tx_id="s2"),
        ]
    )
    (shard,) = plan_shards(history_stats(tx), 1).shards
    first = micros_from_datetime(datetime(2022, 3, 2, tzinfo=timezone.utc))
    near = first + 12 * HOUR_US  # within the 24-hour transfer window of the first end
    later = first + int(timedelta(days=20).total_seconds()) * 1_000_000
    stream = ShardStream(tx, shard, method="fifo", pooling="per-wallet", ends=[near, first, later])
    assert stream.ends == [first, later]
    assert [p.rows.num_rows for p in stream.periods()] == [1, 1, 1]
    assert np.all(np.diff(stream.ends) >= reach_us("fifo", 24))


def test_years_of_amounts_with_every_decimal_sum_exactly():
    """Tax-year totals of 18-decimal amounts need more digits than Python's default context:
    the stream sums them as the engine does."""
    big = "123456789012.123456789012345678"
    tx = valued_table(
        [
            buy("2022-03-01", "BTC", 3, big, tx_id="b1"),
            sell("2022-05-01", "BTC", 1, big, tx_id="s1"),
            sell("2022-06-01", "BTC", 1, "987654321098.987654321098765432", tx_id="s2"),
            sell("2023-06-01", "BTC", 1, big, tx_id="s3"),
        ]
    )
    first, last = span(tx)
    (shard,) = plan_shards(history_stats(tx), 1).shards
    whole = compute_shard(tx, shard, method="fifo", pooling="universal")
    _, got, elements, written = streamed(tx, shard, "fifo", "universal")
    assert_stream_equals_whole(whole, got, elements, written, tx)
    assert len(period_starts("fifo", first, last)) == 1


@pytest.mark.parametrize("method,pooling", ALL)
def test_transfers_near_misses_and_30_day_matches_across_a_period_end(method, pooling):
    """A transfer, a near miss (7.5 % lost) and a sale bought back 10 days later, each with a
    period end between its two rows (at midnight UTC, or London's for the UK: 23:00 UTC in
    summer): the walk of the first period sees the second row in its reach, the next resumes
    with what crosses the end."""
    tx = valued_table(
        [
            buy("2022-03-01", "SOL", 10, 1000, wallet="exchange", tx_id="b1"),
            withdrawal("2022-06-01T22:30", "SOL", 2, wallet="exchange", value=200, tx_id="w1"),
            deposit("2022-06-02T00:30", "SOL", 2, wallet="ledger", value=200, tx_id="d1"),
            withdrawal("2022-08-01T22:30", "SOL", 4, wallet="exchange", value=400, tx_id="w2"),
            deposit("2022-08-02T01:00", "SOL", "3.7", wallet="ledger", value=370, tx_id="d2"),
            sell("2022-10-10", "SOL", 1, 150, wallet="ledger", tx_id="s1"),
            buy("2022-10-20", "SOL", 1, 90, wallet="ledger", tx_id="b2"),
            sell("2023-02-01", "SOL", 2, 300, wallet="ledger", tx_id="s2"),
        ]
    )
    ends = [
        micros_from_datetime(datetime.fromisoformat(moment).replace(tzinfo=timezone.utc))
        for moment in ("2022-06-02T00:00", "2022-08-02T00:00", "2022-10-15T00:00")
    ]
    (shard,) = plan_shards(history_stats(tx), 1).shards
    whole = compute_shard(tx, shard, method=method, pooling=pooling)
    stream, got, elements, written = streamed(tx, shard, method, pooling, ends=ends)
    assert_stream_equals_whole(whole, got, elements, written, tx)
    # each more than the reach after the one before; the UK's at the start of its London day
    assert stream.ends == [get_method(method).resumable_at(end) for end in ends]
    assert got.rows_held < tx.num_rows


@pytest.mark.parametrize(
    "rows",
    [
        # bought before the end, sold after it the same day: the sale takes that buy's cost
        [
            buy("2022-11-01T02:00", "BTC", 1, 100),
            buy("2022-12-01T02:00", "BTC", 1, 300),
            sell("2022-12-01T20:00", "BTC", "0.5", 90),
        ],
        # sold before the end, bought after it the same day: the sale takes the later buy's
        [
            buy("2022-11-01T02:00", "BTC", 1, 100),
            sell("2022-12-01T02:00", "BTC", "0.5", 90),
            buy("2022-12-01T20:00", "BTC", 1, 300),
        ],
    ],
    ids=["acquired-then-disposed", "disposed-then-acquired"],
)
def test_a_uk_day_is_never_split_by_a_period_end(rows):
    """The UK same-day rule takes a day's acquisitions as one and its disposals as one, so a
    walk resumed mid-day would see part of the day only (hypothesis found it: a sale lined
    'section_104' instead of 'same_day', the pool's cost off). A period ends at the start of
    the London day its end falls in."""
    tx = valued_table(rows)
    (shard,) = plan_shards(history_stats(tx), 1).shards
    noon = micros_from_datetime(datetime(2022, 12, 1, 12, tzinfo=timezone.utc))
    whole = compute_shard(tx, shard, method="uk", pooling="universal")
    stream, got, elements, written = streamed(tx, shard, "uk", "universal", ends=[noon])
    assert_stream_equals_whole(whole, got, elements, written, tx)
    day_start = micros_from_datetime(datetime(2022, 12, 1, tzinfo=timezone.utc))  # GMT: UTC
    assert stream.ends == [day_start]
    assert {line.rule for line in got.assets[0].disposals} == {"same_day"}
    summer = datetime(2022, 6, 2, 0, 30, tzinfo=timezone.utc)  # 01:30 in London (BST)
    london_midnight = datetime(2022, 6, 1, 23, tzinfo=timezone.utc)
    uk = get_method("uk")
    assert uk.resumable_at(micros_from_datetime(summer)) == micros_from_datetime(london_midnight)
