"""The tax stage's incremental planner (ingest/pipeline/tax/plan.py) on plain data: no Ray, no
Cassandra."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa

from ingest.pipeline.tax.options import TaxOptions
from ingest.pipeline.tax.plan import (
    PlanInputs,
    StoredState,
    history_starts,
    month_groups,
    plan_tax,
    rewrite_mask,
)
from ingest.prices.planner import CoverageRecord
from ingest.tax.checkpoints import PRICE_SETTLE_US, CheckpointMeta, Digest
from ingest.tax.methods import get_method
from ingest.tax.shards import HistoryStats
from ingest.tax.years import micros_from_datetime
from ingest.vocabulary import Method, Pooling

FIFO = TaxOptions(Method.FIFO, Pooling.PER_WALLET, "USD", transfer_window_hours=24)
UK = TaxOptions(Method.UK, Pooling.UNIVERSAL, "GBP", transfer_window_hours=24)
STATS = HistoryStats({"BTC": 100, "ETH": 60, "SOL": 40, "ADA": 10})
Y2024 = micros_from_datetime(datetime(2024, 1, 1, tzinfo=timezone.utc))
Y2025 = micros_from_datetime(datetime(2025, 1, 1, tzinfo=timezone.utc))
LONG_AFTER = Y2025 + 400 * 86_400_000_000


def seconds(day: datetime) -> float:
    return day.timestamp()


def owner_of(plan, asset: str) -> int:
    return plan.shards.owner[asset]


def test_a_recompute_rewrites_every_shard_and_all_rows():
    plan = plan_tax(PlanInputs(STATS, shard_count=3, touched=None, known_years=("2023",)), FIFO)
    assert plan.dirty == plan.shards.shards and len(plan.dirty) == 3
    assert plan.rewrite.recompute and plan.rewrite.cutoffs is None
    assert plan.rewrite.clean_assets == frozenset()
    assert plan.rewrite.known_years == ("2023",)
    assert plan.rewrite.checkpoints is None  # checkpoints off


def test_an_upload_recomputes_only_the_shards_of_the_assets_it_touched():
    day = datetime(2024, 6, 1, tzinfo=timezone.utc)
    touched = {"SOL": (seconds(day), seconds(day) + 3600)}
    plan = plan_tax(PlanInputs(STATS, shard_count=3, touched=touched), FIFO)
    assert [s.index for s in plan.dirty] == [owner_of(plan, "SOL")]
    # from the earliest new row, less the transfer window (a new deposit can re-classify an
    # older withdrawal)
    assert plan.rewrite.cutoffs == {"SOL": day - timedelta(hours=24)}
    sol_shard = plan.shards.shards[owner_of(plan, "SOL")]
    assert plan.rewrite.clean_assets == frozenset(STATS.asset_rows) - sol_shard.assets


def test_the_uk_lookback_adds_the_methods_own_reach():
    day = datetime(2024, 6, 1, tzinfo=timezone.utc)
    plan = plan_tax(PlanInputs(STATS, 2, touched={"BTC": (seconds(day), seconds(day))}), UK)
    assert plan.rewrite.cutoffs == {"BTC": day - timedelta(microseconds=UK.reach_us)}
    assert UK.reach_us == (24 + 31 * 24) * 3_600_000_000  # bed and breakfast + a day of margin


def test_a_price_window_fetched_now_rewrites_from_its_start():
    day = datetime(2024, 6, 1, tzinfo=timezone.utc)
    window = datetime(2024, 3, 1, tzinfo=timezone.utc)
    inputs = PlanInputs(
        STATS,
        3,
        touched={"SOL": (seconds(day), seconds(day))},
        fetched_windows=[("SOL", window), ("ADA", window)],
    )
    plan = plan_tax(inputs, FIFO)
    assert plan.rewrite.cutoffs == {"SOL": window, "ADA": window}
    assert {s.index for s in plan.dirty} == {owner_of(plan, "SOL"), owner_of(plan, "ADA")}


def test_an_asset_no_shard_owns_goes_to_shard_zero():
    day = seconds(datetime(2024, 6, 1, tzinfo=timezone.utc))
    plan = plan_tax(PlanInputs(STATS, 3, touched={"NEW": (day, day)}), FIFO)
    assert [s.index for s in plan.dirty] == [0]


def test_a_shard_reconciling_a_touched_asset_recomputes_too():
    stats = HistoryStats({"BTC": 100, "ETH": 60}, withdrawal_fee_links={"ETH": frozenset({"BTC"})})
    day = seconds(datetime(2024, 6, 1, tzinfo=timezone.utc))
    plan = plan_tax(PlanInputs(stats, 2, touched={"BTC": (day, day)}), FIFO)
    assert len(plan.dirty) == 2  # the ETH shard reconciles BTC's withdrawals


def checkpoint_inputs(index, coverage=(), unavailable=frozenset(), now_us=LONG_AFTER):
    digest = Digest(rows_before=5, rows_reach=6, hash_reach=42)
    stats = HistoryStats({"BTC": 10}, digests={("BTC", Y2024): digest, ("BTC", Y2025): digest})
    day = seconds(datetime(2025, 6, 1, tzinfo=timezone.utc))
    return PlanInputs(
        stats,
        1,
        touched={"BTC": (day, day)},
        unavailable_assets=unavailable,
        starts=(Y2024, Y2025),
        checkpoints=True,
        stored=StoredState(index, list(coverage)),
        now_us=now_us,
    )


def meta(start: int, *, fingerprint: str = FIFO.fingerprint, written_us: int = Y2025 + 1):
    return CheckpointMeta(
        "BTC", start, fingerprint, True, Digest(5, 6, 42), written_us=written_us, parts=1
    )


def test_a_dirty_shard_resumes_at_its_latest_valid_checkpoint():
    index = {("BTC", Y2024): meta(Y2024), ("BTC", Y2025): meta(Y2025)}
    plan = plan_tax(checkpoint_inputs(index), FIFO)
    assert plan.rewrite.checkpoints is not None
    start, metas = plan.rewrite.checkpoints.resume[0]
    assert start == Y2025 and metas == (index[("BTC", Y2024)], index[("BTC", Y2025)])
    assert plan.rewrite.checkpoints.usable == {Y2024: True, Y2025: True}


def test_checkpoints_of_other_settings_are_not_resumed():
    index = {("BTC", s): meta(s, fingerprint="other") for s in (Y2024, Y2025)}
    assert plan_tax(checkpoint_inputs(index), FIFO).rewrite.checkpoints.resume == {}


def test_a_price_window_fetched_after_a_checkpoint_invalidates_it():
    index = {("BTC", Y2024): meta(Y2024), ("BTC", Y2025): meta(Y2025)}
    later_s = (Y2025 + 10) // 1_000_000 + 5  # fetched after the checkpoints were written
    window = CoverageRecord(
        "BTC", Y2025 // 1_000_000, Y2025 // 1_000_000 + 86_400, 0, "ok", later_s
    )
    plan = plan_tax(checkpoint_inputs(index, coverage=[window]), FIFO)
    # the window starts after 2024's reach: the 2024 checkpoint still holds
    assert plan.rewrite.checkpoints.resume[0][0] == Y2024


def test_a_runs_own_fetch_in_the_second_before_its_checkpoints_leaves_them_resumable():
    """The first job fetched its last window at S.2 s and made its checkpoints at S.7 s (its
    plan's clock): the next job resumes from them. fetched_at holds milliseconds (a Cassandra
    timestamp); read as whole seconds plus one (S+1 > S.7) every checkpoint of the first job
    looked older than its own prices, whatever the shard count: tests/test_pipeline_consistency
    .py::test_an_upload_of_recent_rows_resumes_from_checkpoints failed whenever the first job's
    plan ran within the second of its last fetch."""
    second = LONG_AFTER // 1_000_000
    made_at = second * 1_000_000 + 700_000
    index = {("BTC", s): meta(s, written_us=made_at) for s in (Y2024, Y2025)}

    def fetched(at: float) -> CoverageRecord:  # a window before 2024's reach
        return CoverageRecord("BTC", Y2024 // 1_000_000, Y2024 // 1_000_000 + 86_400, 0, "ok", at)

    def resume(at: float) -> dict:
        inputs = checkpoint_inputs(index, coverage=[fetched(at)], now_us=made_at + 5_000_000)
        return plan_tax(inputs, FIFO).rewrite.checkpoints.resume

    assert resume(second + 0.2)[0][0] == Y2025  # fetched before the checkpoints: they hold
    assert resume(second + 0.699)[0][0] == Y2025  # its millisecond ended by then
    assert resume(second + 0.7) == {}  # the same millisecond: maybe after, never resumed
    assert resume(second + 1.5) == {}  # fetched after them


def test_checkpoints_made_while_prices_are_missing_or_unsettled_are_not_usable():
    index: dict = {}
    missing = plan_tax(checkpoint_inputs(index, unavailable=frozenset({"BTC"})), FIFO)
    assert set(missing.rewrite.checkpoints.usable.values()) == {False}
    fresh = plan_tax(checkpoint_inputs(index, now_us=Y2025 + PRICE_SETTLE_US), FIFO)
    assert fresh.rewrite.checkpoints.usable == {Y2024: True, Y2025: False}


def test_a_recompute_with_checkpoints_on_makes_them_but_resumes_from_none():
    inputs = checkpoint_inputs({("BTC", Y2025): meta(Y2025)})
    plan = plan_tax(PlanInputs(**{**inputs.__dict__, "touched": None}), FIFO)
    assert plan.rewrite.checkpoints.resume == {}
    assert plan.rewrite.checkpoints.starts == (Y2024, Y2025)


def test_rewrite_mask_takes_rows_of_a_touched_asset_from_its_cutoff():
    ts = [datetime(2024, m, 1, tzinfo=timezone.utc) for m in (1, 3, 5)]
    rows = pa.table(
        {
            "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "sent_asset": ["BTC", "ETH", None],
            "received_asset": [None, "BTC", "BTC"],
            "fee_asset": [None, None, None],
        }
    )
    cutoff = {"BTC": datetime(2024, 2, 1, tzinfo=timezone.utc)}
    assert rewrite_mask(rows, cutoff).tolist() == [False, True, True]
    assert rewrite_mask(rows, None).tolist() == [True, True, True]


def test_read_groups_and_tax_year_starts():
    months = [202311, 202312, 202401, 202402, 202403, 202404, 202405]
    assert month_groups(months, cpus=2) == [months[:3], months[3:6], months[6:]]
    assert month_groups(months[:2], cpus=4) == [[202311], [202312]]
    # a history of known size: the read fan-out follows its rows, not its months
    assert month_groups(months, cpus=2, rows_hint=10_000) == [months]
    assert month_groups(months, cpus=2, rows_hint=30_000) == [months[:4], months[4:]]
    year = [202401 + i for i in range(12)]
    assert month_groups(year, cpus=2, rows_hint=300_000) == [
        year[i : i + 2] for i in range(0, 12, 2)
    ]
    assert month_groups([], cpus=2, rows_hint=10) == []
    assert history_starts(months, Method.FIFO) == [Y2024]
    # the UK tax year begins on 6 April
    assert history_starts(months, Method.UK) == [get_method(Method.UK).year_start_us(2024)]


def test_shard_count_follows_the_planned_rows():
    from ingest.pipeline.executors import InProcessExecutor
    from ingest.pipeline.tax.options import shard_count

    two_cpus = InProcessExecutor()
    two_cpus.cpus = 2
    assert shard_count(two_cpus, 0) == 1
    assert shard_count(two_cpus, 13_000) == 1  # a 10k-row history: one shard, whatever the job
    assert shard_count(two_cpus, 60_000) == 3
    assert shard_count(two_cpus, 200_000) == 4  # SHARDS_PER_CPU per CPU
    assert shard_count(two_cpus, 1_000_000) == 5  # PLANNED_ROWS_PER_SHARD each


def test_a_streamed_shard_asks_for_the_memory_of_its_largest_period():
    """A shard task holds one tax year's rows (and the reach after it) at once: its memory is
    sized by its largest period's (asset, row) pairs, counted from the read's digests."""
    from ingest.pipeline.tax.options import largest_period_rows, shard_memory
    from ingest.tax.shards import Shard

    y2023, y2024 = micros_from_datetime(datetime(2023, 1, 1, tzinfo=timezone.utc)), Y2024
    shard = Shard(1, frozenset({"BTC", "ETH"}), frozenset(), rows=1_000)
    stats = HistoryStats(
        {"BTC": 700, "ETH": 300, "SOL": 5_000},  # SOL: another shard's
        digests={
            ("BTC", y2023): Digest(rows_before=100, rows_reach=110, hash_reach=0),
            # ETH: no digest at 2023 (no row of it before 2023 and its reach): none there
            ("BTC", y2024): Digest(rows_before=500, rows_reach=505, hash_reach=0),
            ("ETH", y2024): Digest(rows_before=100, rows_reach=100, hash_reach=0),
            ("SOL", y2024): Digest(rows_before=4_000, rows_reach=4_000, hash_reach=0),
        },
    )
    # periods: ..2023 (110 with the reach), 2023 (605 - 100), 2024.. (1000 - 600)
    assert largest_period_rows(shard, stats, [y2023, y2024]) == 505
    # no digests (checkpoints off) or no period starts: the whole shard
    assert largest_period_rows(shard, HistoryStats(stats.asset_rows), [y2023]) == 1_000
    assert largest_period_rows(shard, stats, []) == 1_000
    # a streamed shard asks for its largest period, not for its history
    assert shard_memory(shard, 500) < shard_memory(shard, 1_000)
