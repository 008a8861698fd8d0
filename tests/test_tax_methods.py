"""FIFO / LIFO / HIFO / ACB on hand-checked histories: partial lots, fees, income, transfers,
pooling, missing basis, negative balances, per-transaction metrics and determinism."""

from __future__ import annotations

import pickle
import random
from datetime import date
from decimal import Decimal

import pytest

from ingest.tax.engine import compute, compute_asset, merge, prepare
from ingest.tax.records import Flag, Rule, Term
from ingest.tax.report import (
    disposal_rows,
    form8949_lines,
    form8949_rows,
    money,
    summary_dict,
)
from tests.fixtures.tax.builders import (
    buy,
    deposit,
    income,
    sell,
    trade,
    valued_table,
    withdrawal,
)

D = Decimal


def lines_of(result, asset=None):
    return [
        (d.quantity, d.cost_basis, d.proceeds, d.gain, d.term)
        for d in result.disposals
        if asset is None or d.asset == asset
    ]


def three_lots_and_a_sale():
    # lots: 1 @ 10,000 (Jan 23), 1 @ 30,000 (Jun 23), 1 @ 20,000 (Jul 23); sell 1.5 for 60,000
    # on 1 Mar 24 with a 15 USD fee -> proceeds 59,985 (39,990 per BTC).
    return valued_table(
        [
            buy("2023-01-10", "BTC", 1, 10000),
            buy("2023-06-10", "BTC", 1, 30000),
            buy("2023-07-10", "BTC", 1, 20000),
            sell("2024-03-01", "BTC", "1.5", 60000, fee_asset="USD", fee_amount=15, fee_value=15),
        ]
    )


def test_fifo_takes_oldest_lots_and_splits_the_last_one():
    result = compute(three_lots_and_a_sale(), method="fifo", pooling="per-wallet")
    assert lines_of(result) == [
        (D(1), D(10000), D(39990), D(29990), Term.LONG),  # Jan 23 -> Mar 24: > 1 year
        (D("0.5"), D(15000), D(19995), D(4995), Term.SHORT),  # half of the Jun 23 lot
    ]
    [balance] = result.balances
    assert (balance.quantity, balance.cost_basis) == (D("1.5"), D(35000))  # 0.5 @ 30k + 1 @ 20k
    assert [d.rule for d in result.disposals] == [Rule.LOT, Rule.LOT]
    assert [d.date_acquired for d in result.disposals] == [date(2023, 1, 10), date(2023, 6, 10)]


def test_lifo_takes_newest_lots():
    result = compute(three_lots_and_a_sale(), method="lifo", pooling="per-wallet")
    assert lines_of(result) == [
        (D(1), D(20000), D(39990), D(19990), Term.SHORT),  # Jul 23 lot
        (D("0.5"), D(15000), D(19995), D(4995), Term.SHORT),  # half of Jun 23
    ]
    assert result.balances[0].cost_basis == D(25000)  # 1 @ 10k + 0.5 @ 30k


def test_hifo_takes_dearest_lots():
    result = compute(three_lots_and_a_sale(), method="hifo", pooling="per-wallet")
    assert lines_of(result) == [
        (D(1), D(30000), D(39990), D(9990), Term.SHORT),  # Jun 23 lot, 30k
        (D("0.5"), D(10000), D(19995), D(9995), Term.SHORT),  # half of the 20k lot
    ]
    assert result.balances[0].cost_basis == D(20000)  # 1 @ 10k + 0.5 @ 20k


def test_acb_uses_the_average_and_has_no_term():
    result = compute(three_lots_and_a_sale(), method="acb", pooling="universal")
    # average 60,000 / 3 = 20,000 per BTC: 1.5 BTC cost 30,000
    assert lines_of(result) == [(D("1.5"), D(30000), D(59985), D(29985), Term.NONE)]
    assert result.disposals[0].rule == Rule.AVERAGE
    assert result.disposals[0].date_acquired is None
    assert result.balances[0].cost_basis == D(30000)
    year = result.years["2024"]
    assert (year.gain, year.short_term_gain, year.long_term_gain) == (D(29985), None, None)


@pytest.mark.parametrize("sold, term", [("2024-03-15", Term.SHORT), ("2024-03-16", Term.LONG)])
def test_holding_period_is_more_than_one_year(sold, term):
    table = valued_table([buy("2023-03-15T12:00", "ETH", 1, 1000), sell(sold, "ETH", 1, 1500)])
    assert compute(table, method="fifo", pooling="per-wallet").disposals[0].term == term


@pytest.mark.parametrize("sold, term", [("2025-02-28", Term.SHORT), ("2025-03-01", Term.LONG)])
def test_holding_period_from_29_february(sold, term):
    table = valued_table([buy("2024-02-29", "ETH", 1, 1000), sell(sold, "ETH", 1, 1500)])
    assert compute(table, method="fifo", pooling="per-wallet").disposals[0].term == term


def test_fiat_fee_adds_to_cost_and_reduces_proceeds():
    table = valued_table(
        [
            buy("2024-01-01", "ETH", 2, 4000, fee_asset="USD", fee_amount=20, fee_value=20),
            sell("2024-02-01", "ETH", 1, 2500, fee_asset="USD", fee_amount=5, fee_value=5),
        ]
    )
    result = compute(table, method="fifo", pooling="per-wallet")
    assert lines_of(result) == [(D(1), D(2010), D(2495), D(485), Term.SHORT)]
    assert result.per_tx["t0001"].acquired_cost == D(4020)


def test_crypto_fee_is_a_disposal_of_the_fee_asset():
    # BNB bought at 300; a BTC buy pays 0.1 BNB (worth 40) as fee: BTC cost 30,040 and a BNB
    # disposal of 0.1 for 40 against a basis of 30.
    table = valued_table(
        [
            buy("2024-01-01", "BNB", 1, 300),
            buy("2024-02-01", "BTC", 1, 30000, fee_asset="BNB", fee_amount="0.1", fee_value=40),
        ]
    )
    result = compute(table, method="fifo", pooling="per-wallet")
    [fee_line] = result.disposals
    assert (fee_line.asset, fee_line.purpose) == ("BNB", "fee")
    assert (fee_line.quantity, fee_line.proceeds, fee_line.cost_basis, fee_line.gain) == (
        D("0.1"),
        D(40),
        D(30),
        D(10),
    )
    balances = {b.asset: (b.quantity, b.cost_basis) for b in result.balances}
    assert balances == {"BNB": (D("0.9"), D(270)), "BTC": (D(1), D(30040))}
    metrics = result.per_tx["t0002"]
    assert metrics.balance_after == {"BTC": D(1), "BNB": D("0.9")}
    assert (metrics.acquired_cost, metrics.gain) == (D(30040), D(10))


def test_trade_disposes_at_fair_value_and_fee_in_sent_asset_is_its_own_disposal():
    # 10 ETH bought at 1,000. Trade 4 ETH for 0.2 BTC worth 8,000, fee 0.1 ETH (worth 200):
    # ETH disposal 4 for 8,000 - 200 = 7,800 (basis 4,000); ETH fee disposal 0.1 for 200
    # (basis 100); BTC acquired at 8,000.
    table = valued_table(
        [
            buy("2024-01-01", "ETH", 10, 10000),
            trade(
                "2024-05-01",
                "ETH",
                4,
                "BTC",
                "0.2",
                8000,
                fee_asset="ETH",
                fee_amount="0.1",
                fee_value=200,
            ),
            sell("2024-06-01", "BTC", "0.2", 9000),
        ]
    )
    result = compute(table, method="fifo", pooling="per-wallet")
    eth = [
        (d.purpose, d.quantity, d.proceeds, d.cost_basis, d.gain)
        for d in result.disposals
        if d.asset == "ETH"
    ]
    assert eth == [
        ("trade", D(4), D(7800), D(4000), D(3800)),
        ("fee", D("0.1"), D(200), D(100), D(100)),
    ]
    assert lines_of(result, "BTC") == [(D("0.2"), D(8000), D(9000), D(1000), Term.SHORT)]
    assert result.per_tx["t0002"].balance_after == {"BTC": D("0.2"), "ETH": D("5.9")}
    assert result.per_tx["t0002"].gain == D(3900)


def test_unpriced_crypto_fee_takes_the_rows_own_price():
    # Offline files give no fee value: a BTC sell paying 0.01 BTC prices it at 50,000 / BTC.
    table = valued_table(
        [
            buy("2024-01-01", "BTC", 2, 40000),
            sell(
                "2024-02-01",
                "BTC",
                1,
                50000,
                fee_asset="BTC",
                fee_amount="0.01",
                price=50000,
                price_asset="BTC",
            ),
        ]
    )
    result = compute(table, method="fifo", pooling="per-wallet")
    fee = [d for d in result.disposals if d.purpose == "fee"][0]
    assert (fee.proceeds, fee.cost_basis) == (D(500), D(200))
    assert [d.proceeds for d in result.disposals if d.purpose == "sell"] == [D(49500)]
    assert not [f for f in result.findings if f.kind == Flag.MISSING_PRICE]


def test_income_is_ordinary_income_and_the_basis_of_the_units():
    table = valued_table(
        [
            income("2024-01-05", "ETH", "0.5", 1100, label="staking"),
            income("2024-02-05", "ETH", "0.5", 1300, label="Mining"),
            sell("2025-02-01", "ETH", "0.75", 3000),
        ]
    )
    result = compute(table, method="fifo", pooling="per-wallet")
    assert [(i.label, i.quantity, i.value, i.tax_year) for i in result.income] == [
        ("staking", D("0.5"), D(1100), "2024"),
        ("mining", D("0.5"), D(1300), "2024"),
    ]
    assert lines_of(result) == [
        (D("0.5"), D(1100), D(2000), D(900), Term.LONG),
        (D("0.25"), D(650), D(1000), D(350), Term.SHORT),
    ]
    assert result.years["2024"].income == D(2400)
    assert result.years["2025"].long_term_gain == D(900)
    assert result.years["2025"].short_term_gain == D(350)
    assert result.per_tx["t0003"].term == Term.MIXED


def two_wallet_history():
    # Jan 23: buy 1 BTC @ 10,000 on the exchange. Jun 23: withdraw 1 BTC to a ledger, 0.999
    # arrives (0.001 lost: transfer fee, BTC at 25,000). Feb 24: buy 1 BTC @ 40,000 on the
    # exchange. Mar 24: the ledger sells 0.5 BTC for 30,000.
    return valued_table(
        [
            buy("2023-01-10", "BTC", 1, 10000),
            withdrawal(
                "2023-06-01T10:00",
                "BTC",
                1,
                wallet="exchange",
                value=25000,
                price=25000,
                price_asset="BTC",
                tx_hash="0xABC",
            ),
            deposit("2023-06-01T10:30", "BTC", "0.999", wallet="ledger", tx_hash="abc"),
            buy("2024-02-01", "BTC", 1, 40000),
            sell("2024-03-01", "BTC", "0.5", 30000, wallet="ledger"),
        ]
    )


def test_transfer_carries_lots_with_their_date_and_basis():
    result = compute(two_wallet_history(), method="fifo", pooling="per-wallet")
    fee, sale = result.disposals
    assert (fee.purpose, fee.wallet, fee.quantity, fee.proceeds, fee.cost_basis) == (
        "transfer_fee",
        "exchange",
        D("0.001"),
        D(25),
        D(10),
    )
    assert Flag.TRANSFER_FEE in fee.flags
    # the ledger's lot is the January 2023 lot: long term, 10 per 0.001 BTC
    assert (sale.wallet, sale.date_acquired, sale.cost_basis, sale.term) == (
        "ledger",
        date(2023, 1, 10),
        D(5000),
        Term.LONG,
    )
    balances = {b.wallet: (b.quantity, b.cost_basis) for b in result.balances}
    assert balances == {"exchange": (D(1), D(40000)), "ledger": (D("0.499"), D(4990))}
    assert result.per_tx["t0002"].flags == {Flag.TRANSFER, Flag.TRANSFER_FEE}
    assert result.per_tx["t0003"].balance_after == {"BTC": D("0.999")}
    assert not [f for f in result.findings if f.kind.startswith("unmatched")]


def test_per_wallet_and_universal_pooling_differ():
    result = compute(two_wallet_history(), method="fifo", pooling="universal")
    sale = result.disposals[-1]
    # one pool: FIFO still takes the January lot (0.999 left of it)
    assert (sale.cost_basis, sale.term) == (D(5000), Term.LONG)
    # ... but a HIFO pool reaches the exchange's 40,000 lot from the ledger
    hifo_universal = compute(two_wallet_history(), method="hifo", pooling="universal")
    hifo_wallet = compute(two_wallet_history(), method="hifo", pooling="per-wallet")
    assert hifo_universal.disposals[-1].cost_basis == D(20000)
    assert hifo_universal.disposals[-1].term == Term.SHORT
    assert hifo_wallet.disposals[-1].cost_basis == D(5000)
    # universal balances: per-wallet quantities, the pool's basis shared pro rata
    balances = {b.wallet: (b.quantity, b.cost_basis) for b in hifo_universal.balances}
    assert balances["exchange"][0] == D(1) and balances["ledger"][0] == D("0.499")
    assert sum(cost for _, cost in balances.values()) == D(10000 + 40000 - 10 - 20000)


def test_sale_without_acquisition_gets_zero_basis_and_is_flagged():
    table = valued_table(
        [
            buy("2024-01-01", "SOL", 10, 1000, wallet="a"),
            sell("2024-02-01", "SOL", 4, 800, wallet="b"),
            sell("2024-02-02", "SOL", 1, 200, wallet="b"),
            buy("2024-03-01", "SOL", 10, 1500, wallet="b"),
        ]
    )
    result = compute(table, method="fifo", pooling="per-wallet")
    first = result.disposals[0]
    assert (first.cost_basis, first.gain, first.rule, first.date_acquired) == (
        D(0),
        D(800),
        Rule.NO_BASIS,
        None,
    )
    assert Flag.MISSING_COST_BASIS in first.flags
    missing = [f for f in result.findings if f.kind == Flag.MISSING_COST_BASIS]
    assert [f.tx_id for f in missing] == ["t0002", "t0003"]
    negative = [f for f in result.findings if f.kind == Flag.NEGATIVE_BALANCE]
    # one finding per episode, naming the first transaction that went below zero
    assert [(f.tx_id, f.wallet) for f in negative] == [("t0002", "b")]
    assert Flag.NEGATIVE_BALANCE in result.per_tx["t0002"].flags
    assert Flag.NEGATIVE_BALANCE not in result.per_tx["t0003"].flags


def test_universal_negative_balance_is_across_wallets():
    table = valued_table(
        [
            buy("2024-01-01", "SOL", 10, 1000, wallet="a"),
            sell("2024-02-01", "SOL", 4, 800, wallet="b"),  # fine overall: a holds 10
            sell("2024-02-02", "SOL", 7, 1400, wallet="a"),  # overall 10 - 11 < 0 here
        ]
    )
    result = compute(table, method="fifo", pooling="universal")
    negative = [(f.tx_id, f.wallet) for f in result.findings if f.kind == Flag.NEGATIVE_BALANCE]
    assert negative == [("t0003", None)]
    assert result.disposals[0].cost_basis == D(400)  # b's sale uses a's lot
    assert [d.rule for d in result.disposals] == [Rule.LOT, Rule.LOT, Rule.NO_BASIS]


def test_missing_price_is_processed_at_zero_and_reported():
    table = valued_table(
        [
            buy("2024-01-01", "ADA", 100, 50),
            dict(
                timestamp="2024-02-01",
                type="sell",
                sent_asset="ADA",
                sent_amount=40,
                received_asset="EUR",
                received_amount=20,
                value=None,
                price_status="unavailable",
            ),
        ]
    )
    result = compute(table, method="fifo", pooling="per-wallet")
    [line] = result.disposals
    assert (line.quantity, line.proceeds, line.cost_basis, line.gain) == (
        D(40),
        D(0),
        D(20),
        D(-20),
    )
    assert Flag.MISSING_PRICE in line.flags
    [finding] = [f for f in result.findings if f.kind == Flag.MISSING_PRICE]
    assert finding.tx_id == "t0002" and "unavailable" in finding.detail


def test_unmatched_withdrawal_leaves_the_books_untaxed_and_is_reported():
    table = valued_table(
        [
            buy("2024-01-01", "ETH", 2, 4000),
            withdrawal("2024-02-01", "ETH", "0.5", wallet="exchange", value=1200),
            sell("2024-03-01", "ETH", "1.5", 4500),
        ]
    )
    result = compute(table, method="fifo", pooling="per-wallet")
    assert lines_of(result) == [(D("1.5"), D(3000), D(4500), D(1500), Term.SHORT)]
    [finding] = [f for f in result.findings if f.kind == Flag.UNMATCHED_WITHDRAWAL]
    assert (finding.tx_id, finding.asset, finding.wallet) == ("t0002", "ETH", "exchange")
    assert result.per_tx["t0002"].flags == {Flag.UNMATCHED_WITHDRAWAL}
    assert result.per_tx["t0002"].balance_after == {"ETH": D("1.5")}
    assert result.balances == []


def test_unmatched_deposit_has_zero_basis_and_its_sale_is_flagged():
    table = valued_table(
        [
            deposit("2024-01-01", "DOT", 10, wallet="exchange", value=70),
            sell("2024-02-01", "DOT", 4, 40),
        ]
    )
    result = compute(table, method="fifo", pooling="per-wallet")
    [line] = result.disposals
    assert (line.cost_basis, line.date_acquired, line.rule) == (D(0), date(2024, 1, 1), Rule.LOT)
    assert Flag.MISSING_COST_BASIS in line.flags
    kinds = [f.kind for f in result.findings]
    assert kinds == [Flag.UNMATCHED_DEPOSIT, Flag.MISSING_COST_BASIS]


def test_partitioned_api_equals_compute_and_results_pickle():
    table = two_wallet_history()
    prepared = prepare(table, pooling="per-wallet")
    assert sorted(prepared.assets) == ["BTC"]
    prepared = pickle.loads(pickle.dumps(prepared))  # crosses a Ray task boundary
    results = [
        pickle.loads(
            pickle.dumps(compute_asset(asset, events, method="fifo", pooling="per-wallet"))
        )
        for asset, events in prepared.assets.items()
    ]
    merged = merge(prepared, results, method="fifo", currency="USD")
    direct = compute(table, method="fifo", pooling="per-wallet")
    assert pickle.loads(pickle.dumps(merged)) == direct


def test_results_do_not_depend_on_row_order():
    rows = [
        buy("2023-01-10", "BTC", 1, 10000),
        buy("2023-01-10", "ETH", 5, 6000),
        trade("2023-05-01", "ETH", 2, "BTC", "0.1", 2600),
        sell("2023-05-01", "BTC", "0.5", 13000),
        income("2023-05-01", "ETH", "0.1", 150),
        sell("2024-06-01", "ETH", 3, 9000),
    ]
    reference = compute(valued_table(rows), method="hifo", pooling="per-wallet")
    tables = []
    numbered = valued_table(rows).to_pylist()
    for seed in range(3):
        random.Random(seed).shuffle(numbered)
        tables.append(
            compute(
                __import__("pyarrow").Table.from_pylist(numbered, schema=valued_table(rows).schema),
                method="hifo",
                pooling="per-wallet",
            )
        )
    assert all(t == reference for t in tables)


def test_same_timestamp_inflow_comes_before_outflow():
    # a sell that sorts (by tx id) before the buy at the same instant still finds the lot
    table = valued_table(
        [
            sell("2024-01-01T12:00", "BTC", 1, 50000, tx_id="a-sell"),
            buy("2024-01-01T12:00", "BTC", 1, 40000, tx_id="b-buy"),
        ]
    )
    result = compute(table, method="fifo", pooling="per-wallet")
    assert lines_of(result) == [(D(1), D(40000), D(50000), D(10000), Term.SHORT)]
    assert not result.findings


def test_unknown_method_and_pooling_are_rejected():
    table = three_lots_and_a_sale()
    with pytest.raises(ValueError, match="unknown method"):
        compute(table, method="average", pooling="universal")
    with pytest.raises(ValueError, match="unknown pooling"):
        compute(table, method="fifo", pooling="wallet")


def test_report_rows_round_money_half_up_only_on_output():
    result = compute(three_lots_and_a_sale(), method="fifo", pooling="per-wallet")
    assert money(D("0.005")) == "0.01" and money(D("2.345")) == "2.35"
    rows = disposal_rows(result.disposals)
    assert rows[0] == [
        "wallet",
        "asset",
        "quantity",
        "date_acquired",
        "date_sold",
        "proceeds",
        "cost_basis",
        "gain",
        "term",
    ]
    assert rows[2] == [
        "exchange",
        "BTC",
        "0.5",
        "2023-06-10",
        "2024-03-01",
        "19995.00",
        "15000.00",
        "4995.00",
        "short",
    ]
    form = form8949_rows(form8949_lines(result.disposals))
    assert form[1][:3] == ["I", "C", "0.5 BTC"] and form[2][:5] == [
        "II",
        "F",
        "1 BTC",
        "01/10/2023",
        "03/01/2024",
    ]
    summary = summary_dict(result)
    assert summary["years"]["2024"] == {
        "proceeds": "59985.00",
        "cost_basis": "25000.00",
        "short_term_gain": "4995.00",
        "long_term_gain": "29990.00",
        "gain": "34985.00",
        "income": "0.00",
    }
