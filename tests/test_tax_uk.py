"""UK share pooling against the HMRC Cryptoassets Manual worked examples (CRYPTO22251-22257 and
the fee example CRYPTO22280), with the manual's figures.

The manual's "20XX" becomes 2024. Opening pools are one acquisition long before the example.
HMRC rounds allowable costs to whole pounds (upwards in these examples: £937.50 -> £938,
£62.50 -> £63, £313,636.36 -> £313,637) and works the gain from the rounded cost. The engine
keeps exact figures; each test asserts the exact figure and, where the manual's figure is
rounded, that rounding the exact cost up to the pound gives the manual's number.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

import pytest

from ingest.tax.engine import compute, compute_asset
from ingest.tax.events import Event, EventKind
from ingest.tax.records import Rule, Term
from ingest.tax.years import micros_from_datetime
from tests.fixtures.tax.builders import buy, income, sell, valued_table, when

D = Decimal


def uk(rows):
    return compute(valued_table(rows), method="uk", pooling="universal", currency="GBP")


def pounds_up(amount: Decimal) -> Decimal:
    return amount.quantize(D(1), rounding=ROUND_CEILING)


def cost_of(result, tx_id):
    return sum(d.cost_basis for d in result.disposals if d.tx_id == tx_id)


def gain_of(result, tx_id):
    return sum(d.gain for d in result.disposals if d.tx_id == tx_id)


def pool(result, asset="TOK"):
    [balance] = [b for b in result.balances if b.asset == asset]
    return balance.quantity, balance.cost_basis


def test_crypto22251_basic_section_104_pool():
    """CRYPTO22251 (Victoria): 100 token A for £1,000, then 50 for £125,000 on 18 Sep: pool 150 /
    £126,000. Sells 50 for £300,000 on 1 Dec: allowable cost £126,000 x 50/150 = £42,000, gain
    £258,000; pool left 100 / £84,000."""
    result = uk(
        [
            buy("2023-01-15", "TOK", 100, 1000),
            buy("2024-09-18", "TOK", 50, 125000),
            sell("2024-12-01", "TOK", 50, 300000),
        ]
    )
    [line] = result.disposals
    assert (line.cost_basis, line.gain, line.rule, line.term) == (
        D(42000),
        D(258000),
        Rule.SECTION_104,
        Term.NONE,
    )
    assert pool(result) == (D(100), D(84000))
    assert result.years["2024/25"].gain == D(258000)


def test_crypto22252_same_day_rule():
    """CRYPTO22252 (Martyn): pool 5,000 token B / £500. On 23 June: disposes of 1,000 for £800
    (morning), acquires 1,600 for £1,000 (afternoon), disposes of 500 for £600 (evening). One
    disposal of 1,500 for £1,400 matched with the same-day acquisition: cost £1,000 x 1,500/1,600
    = £937.50 (manual: £938), gain £462.50 (manual: £462). The other 100 (£62.50, manual £62)
    join the pool: 5,100 / £562.50 (manual £562)."""
    result = uk(
        [
            buy("2023-01-15", "TOK", 5000, 500),
            sell("2024-06-23T08:00", "TOK", 1000, 800),
            buy("2024-06-23T13:00", "TOK", 1600, 1000),
            sell("2024-06-23T19:00", "TOK", 500, 600),
        ]
    )
    assert {d.rule for d in result.disposals} == {Rule.SAME_DAY}
    # the day is one disposal: both take the same unit cost, the morning one included
    assert (cost_of(result, "t0002"), cost_of(result, "t0004")) == (D(625), D("312.5"))
    total_cost = cost_of(result, "t0002") + cost_of(result, "t0004")
    assert total_cost == D("937.5") and pounds_up(total_cost) == 938
    assert D(1400) - pounds_up(total_cost) == 462
    assert gain_of(result, "t0002") + gain_of(result, "t0004") == D("462.5")
    assert pool(result) == (D(5100), D("562.5"))


def test_crypto22253_thirty_day_rule():
    """CRYPTO22253 (Rachel): pool 2,000 token C / £1,000. Disposals 31 Mar (1,000 for £400) and
    20 Apr (500 for £150); acquisitions 21 Apr (700 for £175), 28 Apr (500 for £100), 1 May
    (500 for £150). 31 Mar is matched with 21 Apr (£175) and 300 of 28 Apr (£60): gain £165.
    20 Apr with 200 of 28 Apr (£40) and 300 of 1 May (£90): gain £20. 1 May is day 31 after
    31 March, out of its reach. The remaining 200 of 1 May (£60) go to the pool: 2,200 /
    £1,060 (the pool total is this test's arithmetic: the manual's closing table was not
    available to check). The two disposals fall in different tax years."""
    result = uk(
        [
            buy("2023-01-15", "TOK", 2000, 1000),
            sell("2024-03-31", "TOK", 1000, 400),
            sell("2024-04-20", "TOK", 500, 150),
            buy("2024-04-21", "TOK", 700, 175),
            buy("2024-04-28", "TOK", 500, 100),
            buy("2024-05-01", "TOK", 500, 150),
        ]
    )
    march = [
        (d.date_acquired.isoformat(), d.quantity, d.cost_basis)
        for d in result.disposals
        if d.tx_id == "t0002"
    ]
    april = [
        (d.date_acquired.isoformat(), d.quantity, d.cost_basis)
        for d in result.disposals
        if d.tx_id == "t0003"
    ]
    assert march == [("2024-04-21", D(700), D(175)), ("2024-04-28", D(300), D(60))]
    assert april == [("2024-04-28", D(200), D(40)), ("2024-05-01", D(300), D(90))]
    assert {d.rule for d in result.disposals} == {Rule.BED_AND_BREAKFAST}
    assert (gain_of(result, "t0002"), gain_of(result, "t0003")) == (D(165), D(20))
    assert (result.years["2023/24"].gain, result.years["2024/25"].gain) == (D(165), D(20))
    assert pool(result) == (D(2200), D(1060))


def test_crypto22254_same_day_rule_with_section_104_pool():
    """CRYPTO22254 (Daniel): pool 8,000 token D / £1,000. On 31 Jan: disposals of 5,000 (£500)
    and 2,000 (£142); acquisitions of 4,000 (£320), 1,000 (£75), 1,000 (£70), 500 (£35). One
    disposal of 7,000 for £642 matched with 6,500 acquired the same day (£500) and 500 from the
    pool: £1,000 x 500/8,000 = £62.50 (manual £63). Gain £79.50 (manual £79). Pool 7,500 /
    £937.50 (manual £937)."""
    result = uk(
        [
            buy("2023-01-15", "TOK", 8000, 1000),
            sell("2024-01-31T09:00", "TOK", 5000, 500),
            buy("2024-01-31T10:00", "TOK", 4000, 320),
            buy("2024-01-31T11:00", "TOK", 1000, 75),
            buy("2024-01-31T12:00", "TOK", 1000, 70),
            sell("2024-01-31T13:00", "TOK", 2000, 142),
            buy("2024-01-31T14:00", "TOK", 500, 35),
        ]
    )
    by_rule: dict[str, Decimal] = {}
    for line in result.disposals:
        by_rule[line.rule] = by_rule.get(line.rule, D(0)) + line.cost_basis
    assert by_rule == {Rule.SAME_DAY: D(500), Rule.SECTION_104: D("62.5")}
    assert pounds_up(by_rule[Rule.SECTION_104]) == 63
    assert D(642) - D(500) - pounds_up(by_rule[Rule.SECTION_104]) == 79
    assert sum(d.gain for d in result.disposals) == D("79.5")
    assert sum(d.quantity for d in result.disposals) == D(7000)
    assert pool(result) == (D(7500), D("937.5"))


def test_crypto22255_thirty_day_rule_with_section_104_pool():
    """CRYPTO22255 (Melanie): pool 14,000 token E / £200,000. Sells 4,000 for £160,000 on 30 Aug,
    buys 500 for £17,500 on 11 Sep. Disposal = the 500 bought (30-day, £17,500) + 3,500 from the
    pool (£200,000 x 3,500/14,000 = £50,000): gain £92,500. Pool 10,500 / £150,000."""
    result = uk(
        [
            buy("2023-01-15", "TOK", 14000, 200000),
            sell("2024-08-30", "TOK", 4000, 160000),
            buy("2024-09-11", "TOK", 500, 17500),
        ]
    )
    assert [(d.rule, d.quantity, d.cost_basis) for d in result.disposals] == [
        (Rule.BED_AND_BREAKFAST, D(500), D(17500)),
        (Rule.SECTION_104, D(3500), D(50000)),
    ]
    assert gain_of(result, "t0002") == D(92500)
    assert pool(result) == (D(10500), D(150000))


def test_crypto22256_same_day_thirty_day_and_section_104():
    """CRYPTO22256 (Gulferaz): pool 100,000 token F / £300,000. 31 Jul: acquires 10,000 for
    £45,000 and disposes of 30,000 for £150,000; 5 Aug: disposes of 20,000 for £100,000; 6 Aug:
    acquires 50,000 for £225,000; 7 Aug: disposes of 100,000 for £150,000.
    31 Jul: same day 10,000 (£45,000) + 30-day 20,000 of 6 Aug (£90,000): gain £15,000.
    5 Aug: 30-day 20,000 of 6 Aug (£90,000): gain £10,000. The other 10,000 of 6 Aug (£45,000)
    enter the pool: 110,000 / £345,000. 7 Aug: pool £345,000 x 100,000/110,000 = £313,636.36
    (manual: £313,637), loss £163,636.36 (manual: £163,637). The 7 Aug figures are the
    manual's as transcribed elsewhere; its page was only partly readable here."""
    result = uk(
        [
            buy("2023-01-15", "TOK", 100000, 300000),
            buy("2024-07-31T09:00", "TOK", 10000, 45000),
            sell("2024-07-31T15:00", "TOK", 30000, 150000),
            sell("2024-08-05", "TOK", 20000, 100000),
            buy("2024-08-06", "TOK", 50000, 225000),
            sell("2024-08-07", "TOK", 100000, 150000),
        ]
    )
    july = [(d.rule, d.quantity, d.cost_basis) for d in result.disposals if d.tx_id == "t0003"]
    assert july == [
        (Rule.SAME_DAY, D(10000), D(45000)),
        (Rule.BED_AND_BREAKFAST, D(20000), D(90000)),
    ]
    assert gain_of(result, "t0003") == D(15000)
    assert [(d.rule, d.cost_basis) for d in result.disposals if d.tx_id == "t0004"] == [
        (Rule.BED_AND_BREAKFAST, D(90000))
    ]
    assert gain_of(result, "t0004") == D(10000)
    final_cost = cost_of(result, "t0006")
    assert final_cost == D("313636.363636363636363636")
    assert pounds_up(final_cost) == 313637 and D(150000) - pounds_up(final_cost) == -163637
    assert gain_of(result, "t0006") == D("-163636.363636363636363636")
    quantity, cost = pool(result)
    assert quantity == D(10000) and cost == D(345000) - final_cost


def _event(asset, kind, ts, tx_id, quantity, amount):
    return Event(
        asset=asset,
        kind=kind,
        time_us=micros_from_datetime(when(ts)),
        phase=0,
        tx_id=tx_id,
        leg=0,
        wallet="wallet",
        quantity=D(quantity),
        amount=D(amount),
        purpose="trade",
    )


def test_crypto22257_crypto_to_crypto_exchange():
    """CRYPTO22257 (Elina): pool 100,000 token G / £300,000; six G<->H exchanges. Each is a
    disposal of one token for the value of what is received and an acquisition of the other at
    the value of what is given, so the example has two values per exchange: the events are
    built directly (the valued table carries one value per row).
    Results (the manual's rounded figures as transcribed elsewhere: only the first part of the
    page was readable here; the exact figures are this test's arithmetic and agree): token H: 31 Aug gain £267 (exact £266.67: 5,000 of the day's 15,000
    acquired for £4,960), 4 Sep gain £18 (30-day: 2,000 of 16 Sep for £540), 27 Oct loss £1,417
    (exact £1,416.67: the whole pool, 12,000 / £3,846.67). Token G: 31 Aug gain £280 (1,550 for
    £4,850 against 600 same day £1,700 + 180 of 4 Sep £560 + 770 from the pool £2,310),
    16 Sep loss £120 (400 from the pool at £3). Net loss £972; G pool 99,730 / £298,890."""
    G, H, A, S = "G", "H", EventKind.ACQUIRE, EventKind.DISPOSE
    g = [
        _event(G, A, "2023-01-15", "g0", 100000, 300000),
        _event(G, S, "2024-08-31T10:00", "x1", 1000, 3200),
        _event(G, A, "2024-08-31T12:00", "x2", 600, 1700),
        _event(G, S, "2024-08-31T14:00", "x3", 550, 1650),
        _event(G, A, "2024-09-04", "x4", 180, 560),
        _event(G, S, "2024-09-16", "x5", 400, 1080),
        _event(G, A, "2024-10-27", "x6", 900, 2400),
    ]
    h = [
        _event(H, A, "2024-08-31T10:00", "x1", 10000, 3200),
        _event(H, S, "2024-08-31T12:00", "x2", 5000, 1920),
        _event(H, A, "2024-08-31T14:00", "x3", 5000, 1760),
        _event(H, S, "2024-09-04", "x4", 2000, 558),
        _event(H, A, "2024-09-16", "x5", 4000, 1080),
        _event(H, S, "2024-10-27", "x6", 12000, 2430),
    ]
    g_result = compute_asset(G, g, method="uk", pooling="universal", currency="GBP")
    h_result = compute_asset(H, h, method="uk", pooling="universal", currency="GBP")

    def gains(result):
        totals: dict[str, Decimal] = {}
        for line in result.disposals:
            totals[line.tx_id] = totals.get(line.tx_id, D(0)) + line.gain
        return totals

    g_gains, h_gains = gains(g_result), gains(h_result)
    assert g_gains["x1"] + g_gains["x3"] == D(280)  # the day's one disposal of G
    assert g_gains["x5"] == D(-120)
    assert (h_gains["x2"].quantize(D(1)), h_gains["x4"], h_gains["x6"].quantize(D(1))) == (
        D(267),
        D(18),
        D(-1417),
    )
    assert sum(g_gains.values()) + sum(h_gains.values()) == D(-972)
    [g_pool] = g_result.balances
    assert (g_pool.quantity, g_pool.cost_basis) == (D(99730), D(298890))
    assert h_result.balances == []


def test_crypto22280_fee_paid_in_tokens():
    """CRYPTO22280 (Terri): 10,000 tokens for £20,000 (pool £2 a token); sells 1,000 for £5,000
    paying a fee of 1 token (market value £5). The fee token is disposed of for its market value
    and the fee is a cost of the sale: consideration £5,000 + £5, allowable costs 1,001 x £2 =
    £2,002 + the £5 fee: gain £2,998; pool 8,999 / £17,998. (Figures worked by the manual's
    stated method; its own final table was not readable here.) The engine books the sale
    (gross £5,000, allowable cost £2,000 + the £5 fee) and the fee disposal (£5, cost £2) as two
    lines: together consideration £5,005 and allowable costs £2,007, as on the SA108."""
    result = uk(
        [
            buy("2023-01-15", "TOK", 10000, 20000),
            sell("2024-07-01", "TOK", 1000, 5000, fee_asset="TOK", fee_amount=1, fee_value=5),
        ]
    )
    lines = [(d.purpose, d.quantity, d.proceeds, d.cost_basis, d.gain) for d in result.disposals]
    assert lines == [("sell", D(1000), D(5000), D(2005), D(2995)), ("fee", D(1), D(5), D(2), D(3))]
    assert sum(d.gain for d in result.disposals) == D(2998)
    assert (result.years["2024/25"].proceeds, result.years["2024/25"].cost_basis) == (
        D(5005),
        D(2007),
    )
    assert pool(result) == (D(8999), D(17998))


def test_uk_proceeds_are_gross_and_the_selling_fee_is_an_allowable_cost():
    """SA108 boxes (HMRC CG15250; TCGA 1992 s38(1)(c)): disposal proceeds are the gross
    consideration and the incidental costs of disposal (a fiat selling fee) are allowable costs.
    The gain is the same as netting the fee, but both boxes include it. Form 8949 (US methods)
    keeps proceeds net of the selling fee."""
    rows = [
        buy("2023-01-15", "TOK", 100, 1000),
        sell("2024-07-01", "TOK", 40, 900, fee_asset="GBP", fee_amount=12, fee_value=12),
    ]
    [line] = uk(rows).disposals
    assert (line.proceeds, line.cost_basis, line.gain) == (D(900), D(412), D(488))
    [us_line] = compute(
        valued_table(rows), method="fifo", pooling="universal", currency="USD"
    ).disposals
    assert (us_line.proceeds, us_line.cost_basis, us_line.gain) == (D(888), D(400), D(488))


def test_uk_days_are_london_days():
    # 23:30 UTC on 30 June is 00:30 on 1 July in London (BST): same day as the 1 July sale
    result = uk(
        [
            buy("2023-01-15", "TOK", 1000, 1000),
            buy("2024-06-30T23:30", "TOK", 100, 500),
            sell("2024-07-01T10:00", "TOK", 100, 600),
        ]
    )
    [line] = result.disposals
    assert (line.rule, line.cost_basis, line.date_acquired.isoformat()) == (
        Rule.SAME_DAY,
        D(500),
        "2024-07-01",
    )


def test_uk_tax_year_turns_on_6_april_london_time():
    result = uk(
        [
            buy("2023-01-15", "TOK", 1000, 1000),
            sell("2024-04-05T22:30", "TOK", 10, 20),  # 23:30 BST on 5 April: 2023/24
            sell("2024-04-05T23:30", "TOK", 10, 30),
        ]
    )  # 00:30 BST on 6 April: 2024/25
    assert [d.tax_year for d in result.disposals] == ["2023/24", "2024/25"]
    assert sorted(result.years) == ["2023/24", "2024/25"]


def test_income_is_an_acquisition_for_the_matching_rules():
    # a staking reward the day after a sale is matched with it by the 30-day rule
    result = uk(
        [
            buy("2023-01-15", "TOK", 100, 100),
            sell("2024-05-01", "TOK", 10, 50),
            income("2024-05-02", "TOK", 10, 40),
        ]
    )
    [line] = result.disposals
    assert (line.rule, line.cost_basis) == (Rule.BED_AND_BREAKFAST, D(40))
    assert result.years["2024/25"].income == D(40)
    assert pool(result) == (D(100), D(100))  # the pool never saw the sale or the reward


def test_uk_disposal_beyond_all_acquisitions_has_no_basis():
    result = uk([buy("2024-05-01", "TOK", 10, 100), sell("2024-06-01", "TOK", 15, 300)])
    assert [(d.rule, d.quantity, d.cost_basis) for d in result.disposals] == [
        (Rule.SECTION_104, D(10), D(100)),
        (Rule.NO_BASIS, D(5), D(0)),
    ]


def test_uk_requires_universal_pooling():
    with pytest.raises(ValueError, match="universal"):
        compute(valued_table([buy("2024-01-01", "TOK", 1, 1)]), method="uk", pooling="per-wallet")
