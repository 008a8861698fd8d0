"""Transfer reconciliation: the matching rules, determinism, and what is reported."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from ingest.tax.engine import compute, prepare
from ingest.tax.reconcile import DEPOSIT, WITHDRAWAL, TransferLeg, reconcile
from ingest.tax.records import Flag
from ingest.tax.years import MICROS_PER_HOUR
from tests.fixtures.tax.builders import buy, deposit, sell, valued_table, withdrawal

D = Decimal
H = MICROS_PER_HOUR


def out(tx_id, hours, qty, wallet="a", asset="BTC", tx_hash=None):
    return TransferLeg(tx_id, WITHDRAWAL, wallet, asset, round(hours * H), D(qty), tx_hash)


def into(tx_id, hours, qty, wallet="b", asset="BTC", tx_hash=None):
    return TransferLeg(tx_id, DEPOSIT, wallet, asset, round(hours * H), D(qty), tx_hash)


def pairs(legs, **options):
    return [(m.withdrawal_tx_id, m.deposit_tx_id) for m in reconcile(legs, **options).matches]


def test_matches_within_window_and_fee_share():
    assert pairs([out("w", 0, 1), into("d", 23.9, "0.96")]) == [("w", "d")]
    assert pairs([out("w", 0, 1), into("d", 24.1, 1)]) == []  # too late
    assert pairs([out("w", 0, 1), into("d", -0.1, 1)]) == []  # before the withdrawal
    assert pairs([out("w", 0, 1), into("d", 1, "0.94")]) == []  # lost more than 5 %
    assert pairs([out("w", 0, 1), into("d", 1, "1.01")]) == []  # more than was sent
    assert pairs([out("w", 0, 1), into("d", 1, 1, wallet="a")]) == []  # same wallet
    assert pairs([out("w", 0, 1), into("d", 1, 1, asset="ETH")]) == []  # other asset


def test_window_and_fee_share_are_configurable():
    legs = [out("w", 0, 1), into("d", 30, "0.9")]
    assert pairs(legs) == []
    assert pairs(legs, window_hours=36, max_fee_share=0.1) == [("w", "d")]


def test_hashes_must_agree_when_both_exist_and_an_equal_hash_wins():
    assert pairs([out("w", 0, 1, tx_hash="0xAA"), into("d", 1, 1, tx_hash="bb")]) == []
    assert pairs([out("w", 0, 1, tx_hash="0xAA"), into("d", 1, 1)]) == [("w", "d")]
    # the closer deposit has no hash, the later one has the withdrawal's: the hash wins
    legs = [out("w", 0, 1, tx_hash="0xAA"), into("near", 1, 1), into("far", 20, 1, tx_hash="aa")]
    result = reconcile(legs)
    assert [(m.deposit_tx_id, m.hash_matched) for m in result.matches] == [("far", True)]
    assert [(f.kind, f.tx_id) for f in result.findings] == [(Flag.UNMATCHED_DEPOSIT, "near")]


def test_greedy_by_time_then_id_is_deterministic():
    legs = [
        out("w2", 0, 1),
        out("w1", 0, 1),
        out("w3", 2, 1),
        into("d2", 3, 1),
        into("d1", 3, 1),
        into("d3", 1, 1),
    ]
    expected = [("w1", "d3"), ("w2", "d1"), ("w3", "d2")]
    assert pairs(legs) == expected
    assert pairs(list(reversed(legs))) == expected


def test_unmatched_legs_are_findings_in_time_order():
    result = reconcile([into("d", 5, 1), out("w", 1, 1, asset="ETH"), out("w0", 0, 2)])
    assert [(f.kind, f.tx_id, f.asset, f.wallet) for f in result.findings] == [
        (Flag.UNMATCHED_WITHDRAWAL, "w0", "BTC", "a"),
        (Flag.UNMATCHED_WITHDRAWAL, "w", "ETH", "a"),
        (Flag.UNMATCHED_DEPOSIT, "d", "BTC", "b"),
    ]


def test_prepare_reconciles_across_uploads_and_values_the_transfer_fee():
    # the two legs come from two different files (uploads): one history
    table = valued_table(
        [
            buy("2024-01-01", "ETH", 2, 4000, wallet="kraken", source_file="kraken.csv"),
            withdrawal(
                "2024-02-01T10:00",
                "ETH",
                "1.0",
                wallet="kraken",
                value=2500,
                price=2500,
                price_asset="ETH",
                fee_asset="ETH",
                fee_amount="0.002",
                fee_value=5,
                source_file="kraken.csv",
            ),
            deposit("2024-02-01T11:00", "ETH", "0.99", wallet="metamask", source_file="wallet.csv"),
        ]
    )
    prepared = prepare(table, pooling="per-wallet")
    [match] = prepared.transfers
    assert (match.from_wallet, match.to_wallet, match.fee_quantity) == (
        "kraken",
        "metamask",
        D("0.01"),
    )
    result = compute(table, method="fifo", pooling="per-wallet")
    lost = [(d.purpose, d.quantity, d.proceeds, d.cost_basis) for d in result.disposals]
    # 0.01 lost on the way, at 2,500: a transfer fee disposal; the explicit 0.002 fee too, and
    # the fees' units leave first
    assert lost == [("fee", D("0.002"), D(5), D(4)), ("transfer_fee", D("0.01"), D(25), D(20))]
    balances = {b.wallet: (b.quantity, b.cost_basis) for b in result.balances}
    assert balances == {"kraken": (D("0.998"), D(1996)), "metamask": (D("0.99"), D(1980))}
    assert result.findings == []


def test_transfer_at_the_same_instant_still_carries_its_lots():
    table = valued_table(
        [
            buy("2024-01-01", "ETH", 1, 2000, wallet="a"),
            withdrawal("2024-02-01T10:00", "ETH", 1, wallet="a", tx_id="z-out"),
            deposit("2024-02-01T10:00", "ETH", 1, wallet="b", tx_id="a-in"),
        ]
    )
    result = compute(table, method="fifo", pooling="per-wallet")
    assert [(b.wallet, b.quantity, b.cost_basis) for b in result.balances] == [("b", D(1), D(2000))]
    assert result.findings == []


def test_a_near_miss_is_named_on_both_findings():
    # 6.1 % lost: past the 5 % limit, so no transfer; both legs say what kept them apart
    result = reconcile([out("w", 0, 1), into("d", 1, "0.939"), into("late", 30, "0.94")])
    assert result.matches == []
    assert [(f.kind, f.tx_id, f.detail) for f in result.findings] == [
        (
            Flag.UNMATCHED_WITHDRAWAL,
            "w",
            "withdrawal of 1 BTC matches no deposit: treated as a non-taxable transfer out of the "
            "books; near miss: the deposit of 0.939 BTC into b at 1970-01-01 01:00 UTC "
            "(fee 6.1% > 5% limit)",
        ),
        (
            Flag.UNMATCHED_DEPOSIT,
            "d",
            "deposit of 0.939 BTC matches no withdrawal: acquired at zero (unknown) cost basis; "
            "near miss: the withdrawal of 1 BTC from a at 1970-01-01 00:00 UTC "
            "(fee 6.1% > 5% limit)",
        ),
        # outside the window: no near miss
        (
            Flag.UNMATCHED_DEPOSIT,
            "late",
            "deposit of 0.94 BTC matches no withdrawal: acquired at zero (unknown) cost basis",
        ),
    ]


def test_near_misses_name_the_closest_leg_and_shown_share_exceeds_the_limit():
    legs = [out("w", 0, 1), into("far", 2, "0.9"), into("near", 3, "0.9496")]
    details = {f.tx_id: f.detail for f in reconcile(legs).findings}
    assert details["w"].endswith(
        "the deposit of 0.9496 BTC into b at 1970-01-01 03:00 UTC (fee 5.04% > 5% limit)"
    )
    assert details["far"].endswith("(fee 10.0% > 5% limit)")  # w is its only near miss
    # a different hash, the same wallet or more than was sent is no near miss
    for other in (
        into("d", 1, "0.9", tx_hash="bb"),
        into("d", 1, "0.9", wallet="a"),
        into("d", 1, "1.2"),
    ):
        found = reconcile([out("w", 0, 1, tx_hash="aa"), other]).findings
        assert not any("near miss" in f.detail for f in found)


def fee_spelled(inside_sent: bool) -> list[dict]:
    """One transfer of 0.99 BTC for a 0.01 BTC fee, the fee inside Sent (1.0 sent, 0.99
    received: the units lost on the way) or in the fee column (0.99 sent plus a 0.01 fee), out
    of a wallet holding two lots of different unit costs, and the received units sold later."""
    fee = {} if inside_sent else {"fee_asset": "BTC", "fee_amount": "0.01", "fee_value": 3}
    return [
        buy("2024-01-01", "BTC", "0.5", 100, wallet="exchange"),
        buy("2024-02-01", "BTC", "0.6", 180, wallet="exchange"),
        withdrawal(
            "2024-03-01T10:00",
            "BTC",
            "1.0" if inside_sent else "0.99",
            wallet="exchange",
            value=297,
            price=300,
            price_asset="BTC",
            **fee,
        ),
        deposit("2024-03-01T11:00", "BTC", "0.99", wallet="ledger"),
        sell("2024-04-01", "BTC", "0.99", 400, wallet="ledger"),
    ]


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo", "acb"])
def test_a_transfer_fee_leaves_first_however_the_file_spells_it(method):
    """The fee's units leave the sending wallet before the transferred units, whether the fee
    is inside Sent (a transfer_fee) or in the fee column (a fee): equal gains, lots, balances."""
    results = [
        compute(valued_table(fee_spelled(inside_sent)), method=method, pooling="per-wallet")
        for inside_sent in (True, False)
    ]

    def tax_of(result):
        lines = [
            (d.wallet, d.quantity, d.date_acquired, d.proceeds, d.cost_basis, d.gain)
            for d in result.disposals
        ]
        return lines, result.years, result.balances

    inside, in_column = (tax_of(r) for r in results)
    assert inside == in_column
    fee_line = inside[0][0]
    if method == "fifo":  # the fee takes the oldest lot's units (unit cost 200)
        assert fee_line == ("exchange", D("0.01"), date(2024, 1, 1), D(3), D(2), D(1))


# --- the user's corrections: forced and forbidden pairs, stated cost bases -------------------


def test_a_forced_pair_matches_outside_the_window_fee_share_and_hash_tests():
    far = [out("w", 0, 1, tx_hash="0xAA"), into("d", 24 * 40, "0.5", tx_hash="bb")]
    assert pairs(far) == []
    assert pairs(far, forced=frozenset({("w", "d")})) == [("w", "d")]


def test_a_forced_pair_that_cannot_be_one_transfer_is_left_to_the_matching():
    legs = [out("w", 10, 1), into("d", 11, 1), into("before", 5, 1)]
    # a deposit before the withdrawal cannot be its transfer: the greedy matching decides
    assert pairs(legs, forced=frozenset({("w", "before")})) == [("w", "d")]
    assert pairs(legs, forced=frozenset({("w", "d2")})) == [("w", "d")]  # not among the legs


def test_a_forced_pair_takes_its_deposit_from_the_greedy_matching():
    legs = [out("w1", 0, 1), out("w2", 1, 1), into("d", 2, 1)]
    assert pairs(legs) == [("w1", "d")]
    result = reconcile(legs, forced=frozenset({("w2", "d")}))
    assert [(m.withdrawal_tx_id, m.deposit_tx_id) for m in result.matches] == [("w2", "d")]
    assert [(f.kind, f.tx_id) for f in result.findings] == [(Flag.UNMATCHED_WITHDRAWAL, "w1")]


def test_a_forbidden_pair_is_never_matched_nor_named_a_near_miss():
    legs = [out("w", 0, 1), into("d", 1, 1), into("later", 3, 1)]
    assert pairs(legs, forbidden=frozenset({("w", "d")})) == [("w", "later")]
    near = [out("w", 0, 1), into("d", 1, "0.9")]
    assert reconcile(near).near_misses
    assert not reconcile(near, forbidden=frozenset({("w", "d")})).near_misses


def test_a_deposit_with_a_stated_basis_left_unmatched_is_no_finding():
    result = reconcile([into("d", 0, 1)], stated_basis=frozenset({"d"}))
    assert result.matches == [] and result.findings == []
