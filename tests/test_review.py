"""Review, pure: findings grouped by kind with counts, titles and the corrections that fix
them; the near-miss counterpart a finding names, read back as data; what an item moved."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from ingest.corrections.review import (
    REVIEW_KINDS,
    group_findings,
    item_actions,
    moved_amount,
    near_leg,
)
from ingest.tax.reconcile import DEPOSIT, WITHDRAWAL, TransferLeg, reconcile

D = Decimal
UTC = timezone.utc
HOUR_US = 3_600_000_000
BASE_US = 1_717_200_000_000_000  # 2024-06-01 00:00 UTC


def test_groups_hold_only_kinds_with_findings_costliest_first_with_counts():
    groups = group_findings(
        {
            "unmatched_withdrawal": 2874,
            "missing_cost_basis": 5678,
            "negative_balance": 0,
            "unmatched_deposit": 2188,
        }
    )
    assert [(g.kind, g.count) for g in groups] == [
        ("missing_cost_basis", 5678),
        ("unmatched_deposit", 2188),
        ("unmatched_withdrawal", 2874),
    ]
    assert groups[0].title == "Disposals with no known acquisition: zero cost basis used"
    assert groups[1].actions == ("mark_transfer", "cost_basis", "edit", "ignore")


def test_every_action_is_a_correction_kind():
    from ingest.corrections.kinds import KINDS

    for kind in REVIEW_KINDS:
        assert set(kind.actions) <= set(KINDS), kind.kind


def test_a_kind_added_later_still_shows_after_the_known_ones():
    groups = group_findings({"brand_new": 3, "missing_price": 1})
    assert [(g.kind, g.title, g.actions) for g in groups] == [
        ("missing_price", "Transactions with no price: a value of 0 used", ("edit", "ignore")),
        ("brand_new", "Brand new", ("edit", "ignore")),
    ]


def test_no_findings_no_groups():
    assert group_findings({}) == []


def near_miss_findings():
    """A withdrawal of 1 BTC and a deposit of 0.9 BTC an hour later: 10% lost > 5% limit."""
    legs = [
        TransferLeg("w1", WITHDRAWAL, "kraken", "BTC", BASE_US, D("1"), None),
        TransferLeg("d1", DEPOSIT, "my ledger at home", "BTC", BASE_US + HOUR_US, D("0.9"), None),
    ]
    return {f.tx_id: f for f in reconcile(legs).findings}


def test_the_near_miss_a_withdrawal_names_is_its_deposit():
    findings = near_miss_findings()
    leg = near_leg(findings["w1"].detail)
    assert leg is not None
    assert (leg.direction, leg.quantity, leg.asset, leg.wallet) == (
        "deposit",
        D("0.9"),
        "BTC",
        "my ledger at home",
    )
    assert leg.minute == datetime(2024, 6, 1, 1, 0, tzinfo=UTC)
    deposit = {
        "tx_id": "d1",
        "timestamp": datetime(2024, 6, 1, 1, 0, 0, 123000),  # the driver's naive UTC
        "type": "deposit",
        "wallet": "my ledger at home",
        "received_asset": "BTC",
        "received_amount": D("0.90"),
    }
    assert leg.matches(deposit)
    assert not leg.matches({**deposit, "wallet": "kraken"})
    assert not leg.matches({**deposit, "received_amount": D("0.91")})
    assert not leg.matches({**deposit, "timestamp": datetime(2024, 6, 1, 1, 1)})


def test_the_near_miss_a_deposit_names_is_its_withdrawal():
    leg = near_leg(near_miss_findings()["d1"].detail)
    assert leg is not None
    assert (leg.direction, leg.quantity, leg.wallet) == ("withdrawal", D("1"), "kraken")
    assert leg.matches(
        {
            "timestamp": datetime(2024, 6, 1, tzinfo=UTC),
            "type": "withdrawal",
            "wallet": "kraken",
            "sent_asset": "BTC",
            "sent_amount": D(1),
        }
    )


def test_a_finding_without_a_near_miss_names_no_counterpart():
    legs = [TransferLeg("w1", WITHDRAWAL, "kraken", "BTC", BASE_US, D("1"), None)]
    (finding,) = reconcile(legs).findings
    assert near_leg(finding.detail) is None


def test_only_mark_transfer_carries_the_counterpart():
    actions = item_actions("unmatched_deposit", "w1")
    assert [(a.kind, a.counterpart_tx_id) for a in actions] == [
        ("mark_transfer", "w1"),
        ("cost_basis", None),
        ("edit", None),
        ("ignore", None),
    ]
    assert [a.kind for a in item_actions("negative_balance")] == ["edit", "ignore"]


def test_the_amount_is_what_the_transaction_moved_of_the_findings_asset():
    tx = {
        "sent_asset": "BTC",
        "sent_amount": D("0.5"),
        "received_asset": "ETH",
        "received_amount": D(8),
        "fee_asset": "BNB",
        "fee_amount": D("0.01"),
    }
    assert moved_amount(tx, "BTC") == D("0.5")
    assert moved_amount(tx, "ETH") == D(8)
    assert moved_amount(tx, "BNB") == D("0.01")
    assert moved_amount(tx, "SOL") is None
    assert moved_amount(tx, None) is None
