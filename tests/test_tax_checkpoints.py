"""A shard resumed from its checkpoints equals the full computation (pure: no Ray, no Cassandra).

Two properties:
- resuming at any tax-year start from the checkpoints a full run made there gives the full run's
  balances, findings and yearly totals, and exactly its disposals, income and per-transaction
  metrics from that start on;
- after rows are added, a shard resumes only where its checkpoints are still valid (digests of
  the rows up to the start plus the reach), and the result equals a full run over all rows.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings

from ingest.tax.checkpoint_codec import decode_checkpoint, encode_checkpoint
from ingest.tax.checkpoints import (
    CheckpointMeta,
    ShardResume,
    fingerprint,
    needed_checkpoints,
    period_starts,
    prices_changed,
    reach_us,
    resume_point,
    row_digests,
)
from ingest.tax.engine import compute
from ingest.tax.records import TaxResult
from ingest.tax.shards import (
    ShardResult,
    compute_shard,
    history_stats,
    merge_shards,
    plan_shards,
    rows_from,
    split_history,
)
from ingest.tax.years import micros_from_datetime
from tests.fixtures.tax.builders import buy, deposit, sell, valued_table, withdrawal
from tests.fixtures.tax.synthetic import synthetic_history
from tests.test_tax_properties import histories
from tests.test_tax_shards import ALL, assert_same, cross_asset_rows

FP = fingerprint("fifo", "per-wallet", "USD", 24.0, 0.05)
TO_DECEMBER = datetime(2022, 12, 1, tzinfo=timezone.utc) - datetime(2022, 1, 1, tzinfo=timezone.utc)


def span(tx: pa.Table) -> tuple[int, int]:
    stamps = pc.cast(tx.column("timestamp"), pa.int64())
    return pc.min(stamps).as_py(), pc.max(stamps).as_py()


def full_run(tx, method, pooling, shards=3) -> tuple[list[ShardResult], list[int], object]:
    starts = period_starts(method, *span(tx))
    plan = plan_shards(history_stats(tx), shards)
    results = [
        compute_shard(piece, shard, method=method, pooling=pooling, period_starts=starts)
        for piece, shard in zip(split_history(tx, plan), plan.shards)
    ]
    return results, starts, plan


def resume_of(results: list[ShardResult], shard, start: int) -> ShardResume:
    """What the stage would load: every checkpoint of the shard's keys up to ``start``
    (context assets: the one at start), round-tripped through the stored body."""
    everything = [c for r in results for c in r.checkpoints]
    owned = set(shard.assets) | ({""} if shard.catch_all else set())
    chosen: dict[str, list] = {}
    for c in sorted(everything, key=lambda c: (c.key, c.start_us)):
        if (c.key in owned and c.start_us <= start) or (
            c.key in shard.context and c.start_us == start
        ):
            chosen.setdefault(c.key, []).append(decode_checkpoint(encode_checkpoint(c)))
    return ShardResume(start, chosen)


def resume_all(tx, results, plan, method, pooling, start, starts) -> list[ShardResult]:
    """Every shard of the plan resumed at ``start`` from the full run's checkpoints."""
    return [
        compute_shard(
            piece,
            shard,
            method=method,
            pooling=pooling,
            resume=resume_of(results, shard, start),
            period_starts=starts,
        )
        for piece, shard in zip(split_history(tx, plan), plan.shards)
    ]


def from_start(result: TaxResult, start: int) -> TaxResult:
    """The parts of a full result a resumed run reproduces line for line."""

    def at_or_after(moment: datetime) -> bool:
        return micros_from_datetime(moment) >= start

    kept_tx = {d.tx_id for d in result.disposals if at_or_after(d.sold_at)}
    kept_tx |= {r.tx_id for r in result.income if at_or_after(r.received_at)}
    result.disposals = [d for d in result.disposals if at_or_after(d.sold_at)]
    result.income = [r for r in result.income if at_or_after(r.received_at)]
    return result


def assert_resumed_equal(expected: TaxResult, got: TaxResult, start: int, tx: pa.Table) -> None:
    later = set(rows_from(tx, start).column("tx_id").to_pylist())
    assert got.disposals == from_start(expected, start).disposals
    assert got.income == expected.income
    assert got.balances == expected.balances
    assert got.findings == expected.findings
    assert got.years == expected.years
    assert got.years_by_asset == expected.years_by_asset
    assert got.per_tx == {t: m for t, m in expected.per_tx.items() if t in later}


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_history(5000, assets=10, seed=5)


@pytest.mark.parametrize("method,pooling", ALL)
def test_resuming_at_every_year_start_equals_the_full_run(synthetic, method, pooling):
    results, starts, plan = full_run(synthetic, method, pooling)
    assert len(starts) >= 2 and all(r.checkpoints for r in results)
    full = merge_shards(results, method=method, pooling=pooling)
    assert_same(compute(synthetic, method=method, pooling=pooling), full)
    for start in starts:
        resumed = resume_all(synthetic, results, plan, method, pooling, start, starts)
        got = merge_shards(resumed, method=method, pooling=pooling)
        expected = merge_shards(results, method=method, pooling=pooling)
        assert_resumed_equal(expected, got, start, synthetic)
        # the checkpoints it makes after its start are the full run's
        made = {(c.key, c.start_us): c for r in resumed for c in r.checkpoints}
        full_made = {(c.key, c.start_us): c for r in results for c in r.checkpoints}
        assert made == {k: c for k, c in full_made.items() if k[1] > start}


def boundary_rows() -> list[dict]:
    """Rows that carry state across 1 January 2025 and 6 April 2025: a transfer in flight over
    the year end, a UK bed-and-breakfast match reaching into the next tax year, context assets
    (cross_asset_rows), and a sale with no basis after the boundary."""
    return cross_asset_rows() + [
        buy("2024-06-01", "ADA", 1000, 500),
        withdrawal("2024-12-31T23:30", "ADA", 400, wallet="exchange"),
        deposit("2025-01-01T00:30", "ADA", "399", wallet="ledger"),
        sell("2025-01-02", "ADA", 100, 80, wallet="ledger"),
        buy("2025-03-01", "DOT", 50, 300),
        sell("2025-04-04", "DOT", 20, 150),
        buy("2025-04-10", "DOT", 20, 100),  # 30-day rule: matched with the 4 April sale
        sell("2025-06-01", "DOT", 40, 400),
        buy("2026-02-01", "ADA", 10, 5),
    ]


@pytest.mark.parametrize("method,pooling", ALL)
def test_state_across_boundaries_resumes_exactly(method, pooling):
    tx = valued_table(boundary_rows())
    results, starts, plan = full_run(tx, method, pooling, shards=3)
    expected = merge_shards(results, method=method, pooling=pooling)
    assert_same(compute(tx, method=method, pooling=pooling), expected)
    for start in starts:
        resumed = resume_all(tx, results, plan, method, pooling, start, starts)
        got = merge_shards(resumed, method=method, pooling=pooling)
        assert_resumed_equal(merge_shards(results, method=method, pooling=pooling), got, start, tx)


def stored_index(results: list[ShardResult], digests, fp: str) -> dict:
    return {
        (c.key, c.start_us): CheckpointMeta(
            c.key, c.start_us, fp, True, digests[(c.key, c.start_us)], 0, 1
        )
        for r in results
        for c in r.checkpoints
    }


@pytest.mark.parametrize("method,pooling", [("fifo", "per-wallet"), ("uk", "universal")])
def test_an_upload_resumes_where_its_rows_cannot_reach(synthetic, method, pooling):
    """Old history, then rows added in its last months: the shards resume at the latest valid
    start, and the whole result equals a full run over everything."""
    stamps = pc.cast(synthetic.column("timestamp"), pa.int64())
    first, last = span(synthetic)
    cut = last - 200 * 86_400_000_000  # the upload adds the last ~200 days
    old = synthetic.filter(pc.less(stamps, cut))
    fp = fingerprint(method, pooling, "USD", 24.0, 0.05)
    reach = reach_us(method, 24.0)
    old_results, old_starts, _ = full_run(old, method, pooling)
    stored = stored_index(old_results, row_digests(old, old_starts, reach), fp)

    starts = period_starts(method, first, last)
    digests = row_digests(synthetic, starts, reach)
    plan = plan_shards(history_stats(synthetic), 3)
    everything = {(c.key, c.start_us): c for r in old_results for c in r.checkpoints}
    resumed = []
    points = []
    for piece, shard in zip(split_history(synthetic, plan), plan.shards):
        keys = set(shard.assets) | ({""} if shard.catch_all else set())
        point = resume_point(keys, shard.context, starts, digests, stored, fp)
        points.append(point)
        resume = None
        if point is not None:
            loaded: dict[str, list] = {}
            for key, at in needed_checkpoints(keys, shard.context, point, starts, digests):
                loaded.setdefault(key, []).append(everything[(key, at)])
            resume = ShardResume(point, loaded)
        resumed.append(
            compute_shard(
                piece, shard, method=method, pooling=pooling, resume=resume, period_starts=starts
            )
        )
    # every shard resumed, and none at a start the new rows can reach
    assert all(p is not None and p + reach <= cut for p in points)
    got = merge_shards(resumed, method=method, pooling=pooling)
    expected = compute(synthetic, method=method, pooling=pooling)
    start = min(points)
    assert_resumed_equal(expected, got, start, synthetic) if len(set(points)) == 1 else None
    assert got.balances == expected.balances
    assert got.findings == expected.findings
    assert got.years_by_asset == expected.years_by_asset


def test_changed_rows_before_a_start_invalidate_it():
    tx = valued_table(boundary_rows())
    starts = period_starts("fifo", *span(tx))
    reach = reach_us("fifo", 24.0)
    results, _, _ = full_run(tx, "fifo", "per-wallet")
    stored = stored_index(results, row_digests(tx, starts, reach), FP)
    late = valued_table(boundary_rows() + [buy("2025-01-01T12:00", "ADA", 1, 1)])
    digests = row_digests(late, starts, reach)
    year_2025 = micros_from_datetime(datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert starts == [year_2025, micros_from_datetime(datetime(2026, 1, 1, tzinfo=timezone.utc))]
    # a row within the reach of 1 January 2025: no start is valid for ADA (a later start also
    # needs the earlier periods' years and findings)
    assert resume_point({"ADA"}, set(), starts, digests, stored, FP) is None
    assert resume_point({"BTC"}, set(), starts, digests, stored, FP) == starts[-1]
    # nor for a shard that only reconciles ADA
    assert resume_point({"BNB"}, {"ADA"}, starts, digests, stored, FP) is None
    # a row beyond the reach of 2025's start leaves that start valid
    later = valued_table(boundary_rows() + [buy("2025-03-01", "ADA", 1, 1)])
    digests = row_digests(later, starts, reach)
    assert resume_point({"ADA"}, set(), starts, digests, stored, FP) == year_2025
    other = fingerprint("lifo", "per-wallet", "USD", 24.0, 0.05)
    assert resume_point({"BTC"}, set(), starts, digests, stored, other) is None


def test_a_price_fetched_after_a_checkpoint_invalidates_it():
    """A window beginning before a start + reach fetched after the checkpoint was made (a "no
    price" answer asked again, another user's fetch): the start is not resumed from."""
    tx = valued_table(boundary_rows())
    starts = period_starts("fifo", *span(tx))
    reach = reach_us("fifo", 24.0)
    results, _, _ = full_run(tx, "fifo", "per-wallet")
    digests = row_digests(tx, starts, reach)
    stored = stored_index(results, digests, FP)  # written_us 0
    assert resume_point({"BTC"}, set(), starts, digests, stored, FP) == starts[-1]
    later_window = prices_changed([(starts[-1] + reach, 5)], starts, reach)
    assert resume_point({"BTC"}, set(), starts, digests, stored, FP, later_window) == starts[-1]
    before_last = prices_changed([(starts[-1] - 1, 5)], starts, reach)
    assert before_last == {starts[0]: 0, starts[1]: 5}
    assert resume_point({"BTC"}, set(), starts, digests, stored, FP, before_last) == starts[0]
    everything = prices_changed([(starts[0] - 1, 5), (0, None)], starts, reach)
    assert resume_point({"BTC"}, set(), starts, digests, stored, FP, everything) is None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_resuming_random_histories_equals_the_full_run(history):
    """The engine's property histories (transfers, fees, trades, income; gaps of up to 200 days),
    for a method of each kind."""
    rows, _, _ = history
    # moved to start in December, so even short histories cross a year start
    tx = valued_table([{**row, "timestamp": row["timestamp"] + TO_DECEMBER} for row in rows])
    for method, pooling in (("fifo", "per-wallet"), ("hifo", "universal"), ("uk", "universal")):
        results, starts, plan = full_run(tx, method, pooling, shards=2)
        expected = merge_shards(results, method=method, pooling=pooling)
        for start in starts:
            resumed = resume_all(tx, results, plan, method, pooling, start, starts)
            got = merge_shards(resumed, method=method, pooling=pooling)
            assert_resumed_equal(
                merge_shards(results, method=method, pooling=pooling), got, start, tx
            )
        assert expected.balances == compute(tx, method=method, pooling=pooling).balances


def test_each_method_states_its_reach():
    """The reach of checkpoints (and of an upload's rewritten view rows) is the transfer window
    plus the look-ahead the method declares: none for lot and average methods, the UK's 30-day
    rule (in London days) for the UK."""
    from ingest.tax.methods import METHODS
    from ingest.tax.methods.uk import BED_AND_BREAKFAST_DAYS
    from ingest.tax.years import MICROS_PER_DAY, MICROS_PER_HOUR

    lookahead = {str(name): m.match_lookahead_days for name, m in METHODS.items()}
    assert lookahead == {
        "fifo": 0,
        "lifo": 0,
        "hifo": 0,
        "acb": 0,
        "uk": BED_AND_BREAKFAST_DAYS + 1,
    }
    for name, days in lookahead.items():
        assert reach_us(name, 24.0) == 24 * MICROS_PER_HOUR + days * MICROS_PER_DAY


def test_a_near_miss_over_a_year_end_is_named_alike_when_resumed():
    # 4 SOL withdrawn before the year end, 3.7 deposited after it: 7.5 % lost, no transfer
    tx = valued_table(
        [
            buy("2024-06-01", "SOL", 10, 1000, wallet="exchange"),
            withdrawal("2024-12-31T23:00", "SOL", 4, wallet="exchange", value=400),
            deposit("2025-01-01T01:00", "SOL", "3.7", wallet="ledger", value=370),
            buy("2025-03-01", "SOL", 1, 100, wallet="exchange"),
        ]
    )
    results, starts, plan = full_run(tx, "fifo", "per-wallet", shards=2)
    expected = merge_shards(results, method="fifo", pooling="per-wallet")
    assert [f.detail.split("; near miss: ")[1] for f in expected.findings] == [
        "the deposit of 3.7 SOL into ledger at 2025-01-01 01:00 UTC (fee 7.5% > 5% limit)",
        "the withdrawal of 4 SOL from exchange at 2024-12-31 23:00 UTC (fee 7.5% > 5% limit)",
    ]
    year_2025 = micros_from_datetime(datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert year_2025 in starts
    resumed = resume_all(tx, results, plan, "fifo", "per-wallet", year_2025, starts)
    got = merge_shards(resumed, method="fifo", pooling="per-wallet")
    assert_resumed_equal(expected, got, year_2025, tx)
