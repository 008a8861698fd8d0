"""The sharded tax core equals the single-process engine, for every method and pooling."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.generate import generate
from ingest.pipeline.tax.cli import load_valued
from ingest.tax.engine import compute
from ingest.tax.records import TaxResult
from ingest.tax.shards import (
    HistoryStats,
    anchor_mask,
    combine_summaries,
    compute_shard,
    fold_metrics,
    history_stats,
    merge_shards,
    plan_shards,
    shard_mask,
    split_history,
)
from tests.fixtures.tax.builders import buy, deposit, income, sell, trade, valued_table, withdrawal
from tests.fixtures.tax.synthetic import synthetic_history
from tests.test_tax_properties import histories

ALL = (
    ("fifo", "per-wallet"),
    ("lifo", "per-wallet"),
    ("hifo", "per-wallet"),
    ("acb", "per-wallet"),
    ("fifo", "universal"),
    ("lifo", "universal"),
    ("hifo", "universal"),
    ("acb", "universal"),
    ("uk", "universal"),
)


def sharded(tx, method: str, pooling: str, shard_count: int) -> TaxResult:
    plan = plan_shards(history_stats(tx), shard_count)
    results = [
        compute_shard(table, shard, method=method, pooling=pooling)
        for table, shard in zip(split_history(tx, plan), plan.shards)
    ]
    merged = merge_shards(results, method=method, pooling=pooling)
    totals = combine_summaries(r.summary() for r in results)
    assert totals.years == merged.years and totals.years_by_asset == merged.years_by_asset
    # what the view's reader folds from the per-asset elements is the engine's per-tx metrics
    elements: dict = {}
    for result in results:
        for tx_id, by_asset in result.per_tx.items():
            assert not set(by_asset) & set(elements.get(tx_id, {})), "an asset written twice"
            elements.setdefault(tx_id, {}).update(by_asset)
    assert {t: fold_metrics(e) for t, e in elements.items()} == merged.per_tx
    return merged


def assert_same(expected: TaxResult, got: TaxResult) -> None:
    assert got.disposals == expected.disposals
    assert [d.line_id for d in got.disposals] == [d.line_id for d in expected.disposals]
    assert got.income == expected.income
    assert got.balances == expected.balances
    assert got.findings == expected.findings
    assert got.per_tx == expected.per_tx
    assert got.years == expected.years
    assert got.years_by_asset == expected.years_by_asset


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_history(6000, assets=12, seed=11)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> object:
    folder: Path = tmp_path_factory.mktemp("generated")
    main, peer = folder / "main.csv", folder / "peer.csv"
    generate(4000, "koinly", 5, main, peer_out=peer)
    return load_valued([main, peer], currency="USD")


@pytest.mark.parametrize("method,pooling", ALL)
def test_sharded_equals_engine_on_synthetic_history(synthetic, method, pooling):
    expected = compute(synthetic, method=method, pooling=pooling)
    for shard_count in (1, 3, 7):
        assert_same(expected, sharded(synthetic, method, pooling, shard_count))


@pytest.mark.parametrize("method,pooling", ALL)
def test_sharded_equals_engine_on_generated_files(generated, method, pooling):
    expected = compute(generated, method=method, pooling=pooling)
    assert expected.disposals and expected.findings  # the comparison has something to compare
    assert_same(expected, sharded(generated, method, pooling, 4))


def cross_asset_rows() -> list[dict]:
    """Withdrawals paying their fee in another asset (matched with a loss, matched without, and
    unmatched), a trade paying a third asset's fee, rows of fiat only and rows without value."""
    return [
        buy("2024-01-01", "ETH", 10, 20000),
        buy("2024-01-01T01:00", "BNB", 5, 1500),
        buy("2024-01-02", "BTC", 1, 40000),
        withdrawal(
            "2024-02-01",
            "ETH",
            2,
            wallet="exchange",
            value=4000,
            fee_asset="BNB",
            fee_amount="0.01",
            fee_value=3,
        ),
        deposit("2024-02-01T02:00", "ETH", "1.99", wallet="ledger"),
        withdrawal(
            "2024-02-03",
            "ETH",
            1,
            wallet="exchange",
            value=2000,
            fee_asset="BNB",
            fee_amount="0.01",
            fee_value=3,
        ),
        deposit("2024-02-03T01:00", "ETH", 1, wallet="ledger"),
        withdrawal("2024-02-05", "ETH", 1, wallet="exchange", fee_asset="BNB", fee_amount="0.02"),
        trade(
            "2024-03-01",
            "BTC",
            "0.5",
            "ETH",
            9,
            21000,
            fee_asset="BNB",
            fee_amount="0.1",
            fee_value=30,
        ),
        sell("2024-03-02", "ETH", 3, 6000, wallet="ledger"),
        income("2024-03-03", "SOL", 4, None),
        dict(
            timestamp="2024-03-04",
            type="buy",
            sent_asset="USD",
            sent_amount=10,
            received_asset="EUR",
            received_amount=9,
            value=10,
        ),
        dict(timestamp="2024-03-05", type="mystery", sent_asset="DOGE", sent_amount=1),
        sell("2025-04-01", "BTC", 1, 80000),  # more than held: missing basis, negative balance
    ]


@pytest.mark.parametrize("method,pooling", ALL)
@pytest.mark.parametrize("shard_count", (2, 3, 5))
def test_cross_asset_rows_shard_exactly(method, pooling, shard_count):
    tx = valued_table(cross_asset_rows())
    assert_same(
        compute(tx, method=method, pooling=pooling), sharded(tx, method, pooling, shard_count)
    )


def test_context_assets_are_reconciled_not_owned():
    tx = valued_table(cross_asset_rows())
    stats = history_stats(tx)
    assert stats.withdrawal_fee_links == {"BNB": frozenset({"ETH"})}
    plan = plan_shards(
        HistoryStats({"ETH": 100, "BNB": 1, "BTC": 1}, stats.withdrawal_fee_links), 2
    )
    bnb = plan.shards[plan.shard_of("BNB")]
    assert plan.shard_of("ETH") != bnb.index and bnb.context == {"ETH"}
    types = tx.filter(shard_mask(tx, bnb)).column("type").to_pylist()
    assert types.count("deposit") == 2  # ETH's deposits, read for reconciliation only


def test_stale_plan_loses_nothing():
    """Assets the plan never heard of are computed by shard 0."""
    tx = valued_table(cross_asset_rows())
    plan = plan_shards(HistoryStats({"BTC": 3, "BNB": 3}), 2)
    results = [
        compute_shard(t, s, method="fifo", pooling="per-wallet")
        for t, s in zip(split_history(tx, plan), plan.shards)
    ]
    assert_same(
        compute(tx, method="fifo", pooling="per-wallet"),
        merge_shards(results, method="fifo", pooling="per-wallet"),
    )


def test_plan_balances_rows_and_isolates_a_dominant_asset():
    plan = plan_shards(
        HistoryStats({"BTC": 1000, "ETH": 300, "SOL": 280, "ADA": 20, "DOT": 10, "XRP": 5}), 3
    )
    assert [sorted(s.assets) for s in plan.shards] == [
        ["BTC"],
        ["DOT", "ETH"],
        ["ADA", "SOL", "XRP"],
    ]
    assert [s.rows for s in plan.shards] == [1000, 310, 305]
    assert plan.shards[0].others == {"ETH", "SOL", "ADA", "DOT", "XRP"}
    assert len(plan_shards(HistoryStats({"BTC": 1}), 8).shards) == 1
    with pytest.raises(ValueError):
        plan_shards(HistoryStats({"BTC": 1}), 0)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.sampled_from(ALL), st.integers(min_value=1, max_value=4))
def test_sharded_equals_engine_on_random_histories(history, option, shard_count):
    rows, _, _ = history
    tx = valued_table(rows)
    method, pooling = option
    assert_same(
        compute(tx, method=method, pooling=pooling), sharded(tx, method, pooling, shard_count)
    )


@pytest.mark.parametrize("stats", [None, HistoryStats({"BTC": 3, "BNB": 3})])
def test_every_row_is_anchored_by_exactly_one_shard_that_reads_it(stats):
    tx = valued_table(cross_asset_rows() + [dict(timestamp="2024-06-01", type="fee")])
    plan = plan_shards(stats or history_stats(tx), 3)
    anchored = sum(anchor_mask(tx, s).astype(int) for s in plan.shards)
    assert anchored.tolist() == [1] * tx.num_rows
    for shard in plan.shards:  # a shard writes the own columns only of rows it reads
        assert not (anchor_mask(tx, shard) & ~shard_mask(tx, shard)).any()
