"""Corrections as data (ingest/corrections/): each kind validated naming the field, each kind's
overlay on a canonical history, undo, what a correction touches, and properties over random
corrections (undo gives back the history; kinds that commute give one overlay in any order)."""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.corrections.kinds import (
    AddTransaction,
    Change,
    Correction,
    CorrectionError,
    DeleteAddedTransaction,
    DeleteUpload,
    EditTransaction,
    MarkTransfer,
    RenameWallet,
    SetCostBasis,
    SetIgnored,
    Undo,
    UnmarkTransfer,
    change_from_json,
    change_to_json,
    facts_of,
    manual_tx_id,
    problems,
    problems_in_history,
    record,
    recorded_change,
    require_valid,
)
from ingest.corrections.overlay import (
    CostBasis,
    Overlay,
    active,
    apply_corrections,
    touched_from,
)
from ingest.normalize.canonical import CANONICAL_SCHEMA

USER = "u1"
T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
UPLOAD_A = "00000000-0000-0000-0000-00000000000a"
UPLOAD_B = "00000000-0000-0000-0000-00000000000b"


def row(tx: str, wallet: str, hours: int, type_: str, **sides) -> dict:
    base = {name: None for name in CANONICAL_SCHEMA.names}
    base.update(
        tx_id=tx,
        user_id=USER,
        wallet=wallet,
        timestamp=T0 + timedelta(hours=hours),
        type=type_,
        source="koinly",
        source_file="f.csv",
        source_line=hours + 2,
    )
    base.update({k: Decimal(v) if k.endswith(("amount", "value")) else v for k, v in sides.items()})
    return base


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=CANONICAL_SCHEMA)


HISTORY = table(
    [
        row(
            "buy1",
            "kraken",
            0,
            "buy",
            sent_asset="USD",
            sent_amount="100",
            received_asset="BTC",
            received_amount="0.01",
        ),  # fmt: skip
        row("wd1", "kraken", 10, "withdrawal", sent_asset="BTC", sent_amount="0.01"),
        row("dep1", "ledger", 11, "deposit", received_asset="BTC", received_amount="0.0099"),
        row("dep2", "ledger", 40, "deposit", received_asset="ETH", received_amount="2"),
        row(
            "sell1",
            "Kraken ",
            50,
            "sell",
            sent_asset="ETH",
            sent_amount="1",
            received_asset="USD",
            received_amount="3000",
            fee_asset="USD",
            fee_amount="3",
        ),  # fmt: skip
    ]
)


def corrected(*changes: Change, uploads_of=None) -> Overlay:
    return apply_corrections(HISTORY, recorded(*changes), uploads_of=uploads_of)


def recorded(*changes: Change, start: int = 1) -> list[Correction]:
    return [
        Correction(uuid.UUID(int=start + i), USER, "tester", T0, change)
        for i, change in enumerate(changes)
    ]


def column(overlay: Overlay, name: str) -> dict:
    history = overlay.history
    return dict(zip(history.column("tx_id").to_pylist(), history.column(name).to_pylist()))


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (EditTransaction("buy1", type="gift"), "type"),
        (EditTransaction("buy1"), "type"),
        (EditTransaction("buy1", fiat_value=Decimal("-1"), fiat_currency="USD"), "fiat_value"),
        (EditTransaction("buy1", fiat_value=Decimal("5")), "fiat_currency"),
        (EditTransaction("buy1", fiat_currency="USD"), "fiat_value"),
        (EditTransaction("", label="x"), "tx_id"),
        (EditTransaction("buy1", label=" padded"), "label"),
        (SetCostBasis("dep1", Decimal("NaN"), "USD"), "cost_basis"),
        (SetCostBasis("dep1", Decimal("1e-19"), "USD"), "cost_basis"),
        (SetCostBasis("dep1", Decimal("10"), "BTC"), "currency"),
        (SetIgnored("", True), "tx_id"),
        (MarkTransfer("wd1", "wd1"), "deposit_tx_id"),
        (UnmarkTransfer("", "dep1"), "withdrawal_tx_id"),
        (AddTransaction("w", T0, "deposit"), "received_amount"),
        (
            AddTransaction(
                "w",
                T0.replace(tzinfo=None),
                "income",
                received_asset="BTC",
                received_amount=Decimal(1),
            ),
            "timestamp",
        ),  # fmt: skip
        (
            AddTransaction("w", T0, "deposit", received_asset="BTC", received_amount=Decimal(0)),
            "received_amount",
        ),  # fmt: skip
        (
            AddTransaction(
                "w",
                T0,
                "deposit",
                received_asset="BTC",
                received_amount=Decimal(1),
                sent_asset="ETH",
                sent_amount=Decimal(1),
            ),
            "sent_amount",
        ),  # fmt: skip
        (
            AddTransaction(
                "",
                T0,
                "buy",
                sent_asset="USD",
                sent_amount=Decimal(1),
                received_asset="BTC",
                received_amount=Decimal(1),
            ),
            "wallet",
        ),  # fmt: skip
        (AddTransaction("w", T0, "fee"), "fee_amount"),
        (DeleteAddedTransaction(""), "tx_id"),
        (DeleteUpload("not-a-uuid"), "upload_id"),
        (RenameWallet("kraken", "kraken"), "new"),
        (RenameWallet("", "x"), "old"),
    ],
)
def test_a_malformed_correction_is_refused_naming_the_field(change, field):
    found = problems(change)
    assert field in {p.field for p in found}, found


def test_well_formed_corrections_of_every_kind_have_no_problems():
    for change in EVERY_KIND:
        assert problems(change) == [], change


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        (EditTransaction("nope", label="x"), "tx_id", "no transaction nope"),
        (EditTransaction("buy1", type="income"), "type", "a received side"),
        (EditTransaction("wd1", type="deposit"), "type", "this row has a sent side"),
        (SetCostBasis("buy1", Decimal(1), "USD"), "tx_id", "a cost basis is set on a deposit"),
        (MarkTransfer("buy1", "dep1"), "withdrawal_tx_id", "not a withdrawal"),
        (MarkTransfer("wd1", "buy1"), "deposit_tx_id", "not a deposit"),
        (MarkTransfer("wd1", "dep2"), "deposit_tx_id", "receives ETH"),
        (DeleteAddedTransaction("buy1"), "tx_id", "ignore it instead"),
        (DeleteUpload(UPLOAD_B), "upload_id", "no upload"),
        (RenameWallet("binance", "kraken"), "old", "no transaction in wallet"),
        (Undo(uuid.UUID(int=99)), "correction_id", "no correction"),
    ],
)
def test_a_correction_that_does_not_fit_the_history_is_refused_naming_the_field(
    change, field, says
):
    found = problems_in_history(change, facts_of(HISTORY), recorded(), uploads={UPLOAD_A})
    assert [(p.field, says in p.message) for p in found] == [(field, True)], found
    with pytest.raises(CorrectionError, match=field):
        require_valid(change, facts_of(HISTORY), recorded(), uploads={UPLOAD_A})


def test_a_marked_deposit_may_not_receive_more_than_the_withdrawal_sent():
    history = table(
        [
            row("w", "a", 0, "withdrawal", sent_asset="BTC", sent_amount="1"),
            row("d", "b", 1, "deposit", received_asset="BTC", received_amount="1.1"),
        ]
    )
    (found,) = problems_in_history(MarkTransfer("w", "d"), facts_of(history))
    assert found.field == "deposit_tx_id" and "more than the withdrawal sends" in found.message
    assert problems_in_history(UnmarkTransfer("w", "d"), facts_of(history)) == []


EVERY_KIND: list[Change] = [
    EditTransaction(
        "buy1", type="trade", label="", fiat_value=Decimal("101.5"), fiat_currency="EUR"
    ),  # fmt: skip
    SetCostBasis("dep2", Decimal("3100.25"), "USD"),
    SetIgnored("sell1", True),
    MarkTransfer("wd1", "dep1"),
    UnmarkTransfer("wd1", "dep1"),
    AddTransaction(
        "cold",
        T0,
        "income",
        label="airdrop",
        received_asset="ARB",
        received_amount=Decimal("12.000000000000000001"),
        fiat_value=Decimal(0),
        fiat_currency="USD",
        description="by hand",
    ),  # fmt: skip
    DeleteAddedTransaction("abc"),
    DeleteUpload(UPLOAD_A),
    RenameWallet("Kraken ".strip() + "2", "kraken"),
    Undo(uuid.UUID(int=7)),
]


@pytest.mark.parametrize("change", EVERY_KIND, ids=lambda c: c.kind)
def test_every_kind_round_trips_through_its_json_body_exactly(change):
    assert change_from_json(change.kind, change_to_json(change)) == change


def test_an_added_rows_recorded_change_names_the_tx_id_it_added_and_other_kinds_only_fields():
    change = next(c for c in EVERY_KIND if isinstance(c, AddTransaction))
    added = record("u1", change, by="t")
    shown = recorded_change(added)
    assert shown.pop("tx_id") == manual_tx_id("u1", added.correction_id)
    assert shown == json.loads(change_to_json(added.change))
    ignored = record("u1", SetIgnored("abc"), by="t")
    assert recorded_change(ignored) == json.loads(change_to_json(ignored.change))


def test_a_stored_body_that_does_not_decode_is_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"cost_basis\.cost_basis"):
        change_from_json("cost_basis", '{"tx_id":"x","cost_basis":"ten","currency":"USD"}')
    with pytest.raises(ValueError, match="unknown correction kind"):
        change_from_json("merge", "{}")
    with pytest.raises(ValueError, match="version 2"):
        change_from_json("ignore", '{"tx_id":"x","ignored":true}', version=2)


# --- the overlay of each kind ----------------------------------------------------------------


def test_no_correction_leaves_the_history_as_uploaded():
    assert corrected().history is HISTORY


def test_an_edit_sets_type_label_and_fiat_value_of_its_transaction_only():
    overlay = corrected(
        EditTransaction("dep2", type="income", label="staking"),
        EditTransaction("sell1", fiat_value=Decimal("2990.5"), fiat_currency="USD"),
    )
    assert column(overlay, "type") == {**column(corrected(), "type"), "dep2": "income"}
    assert column(overlay, "label")["dep2"] == "staking"
    assert column(overlay, "fiat_value")["sell1"] == Decimal("2990.5")
    assert column(overlay, "fiat_currency")["sell1"] == "USD"
    assert overlay.history.schema == CANONICAL_SCHEMA


def test_the_last_edit_of_a_field_wins_and_an_empty_label_clears_it():
    overlay = corrected(
        EditTransaction("dep2", label="gift"),
        EditTransaction("dep2", label="staking", type="income"),
        EditTransaction("dep2", label=""),
    )
    assert column(overlay, "label")["dep2"] is None
    assert column(overlay, "type")["dep2"] == "income"


def test_a_cost_basis_is_handed_to_the_engine_and_leaves_the_rows_alone():
    overlay = corrected(SetCostBasis("dep2", Decimal("3100"), "USD"))
    assert overlay.history.equals(HISTORY)
    assert overlay.cost_basis == {"dep2": CostBasis(Decimal("3100"), "USD")}


def test_an_ignored_transaction_leaves_the_history_until_un_ignored():
    assert "sell1" not in column(corrected(SetIgnored("sell1")), "type")
    overlay = corrected(SetIgnored("sell1"), SetIgnored("sell1", False))
    assert overlay.history.equals(HISTORY)


def test_marked_pairs_are_forced_unmarked_pairs_forbidden_and_a_later_mark_takes_a_leg():
    history = table(
        [
            row("w1", "a", 0, "withdrawal", sent_asset="BTC", sent_amount="1"),
            row("w2", "a", 1, "withdrawal", sent_asset="BTC", sent_amount="1"),
            row("d1", "b", 2, "deposit", received_asset="BTC", received_amount="1"),
        ]
    )
    overlay = apply_corrections(
        history,
        recorded(MarkTransfer("w1", "d1"), MarkTransfer("w2", "d1"), UnmarkTransfer("w1", "d1")),
    )
    assert overlay.forced_transfers == {("w2", "d1")}
    assert overlay.forbidden_transfers == {("w1", "d1")}
    assert overlay.history.equals(history)
    ignored_leg = apply_corrections(history, recorded(MarkTransfer("w1", "d1"), SetIgnored("d1")))
    assert ignored_leg.forced_transfers == frozenset()


def test_a_transaction_added_by_hand_joins_the_history_until_deleted_by_hand():
    add = AddTransaction("cold", T0 + timedelta(days=3), "income", label="airdrop",
                         received_asset="ARB", received_amount=Decimal("12.5"))  # fmt: skip
    (added,) = recorded(add)
    tx = manual_tx_id(USER, added.correction_id)
    overlay = corrected(add)
    assert overlay.history.num_rows == HISTORY.num_rows + 1
    assert overlay.history.slice(0, HISTORY.num_rows).equals(HISTORY)
    manual = overlay.history.slice(HISTORY.num_rows).to_pylist()[0]
    assert manual["tx_id"] == tx and manual["source"] == "manual"
    assert (manual["wallet"], manual["received_amount"]) == ("cold", Decimal("12.5"))
    assert manual["external_id"] == str(added.correction_id)
    assert corrected(add, DeleteAddedTransaction(tx)).history.equals(HISTORY)
    # and it can be corrected like any other
    assert column(corrected(add, EditTransaction(tx, label="reward")), "label")[tx] == "reward"


def test_a_deleted_upload_takes_its_rows_but_not_those_another_upload_also_holds():
    uploads_of = {
        "buy1": {UPLOAD_A},
        "wd1": {UPLOAD_A, UPLOAD_B},
        "dep1": {UPLOAD_B},
        "dep2": {UPLOAD_A},
    }
    overlay = corrected(DeleteUpload(UPLOAD_A), uploads_of=uploads_of)
    assert sorted(column(overlay, "type")) == ["dep1", "sell1", "wd1"]
    both = corrected(DeleteUpload(UPLOAD_A), DeleteUpload(UPLOAD_B), uploads_of=uploads_of)
    assert sorted(column(both, "type")) == ["sell1"]  # a row no upload lists stays


def test_renaming_a_wallet_merges_two_names_of_one_account():
    overlay = corrected(RenameWallet("Kraken ", "kraken"))
    assert set(column(overlay, "wallet").values()) == {"kraken", "ledger"}
    assert column(overlay, "wallet")["sell1"] == "kraken"


def test_renames_apply_in_recorded_order():
    chained = corrected(RenameWallet("Kraken ", "kraken"), RenameWallet("kraken", "exchange"))
    assert set(column(chained, "wallet").values()) == {"exchange", "ledger"}
    reversed_ = corrected(RenameWallet("kraken", "exchange"), RenameWallet("Kraken ", "kraken"))
    assert column(reversed_, "wallet")["sell1"] == "kraken"
    assert column(reversed_, "wallet")["buy1"] == "exchange"


def test_an_undo_cancels_its_target_and_an_undo_of_the_undo_restores_it():
    ignore, undo, redo = recorded(
        SetIgnored("sell1"), Undo(uuid.UUID(int=1)), Undo(uuid.UUID(int=2))
    )
    assert apply_corrections(HISTORY, [ignore, undo]).history.equals(HISTORY)
    assert active([ignore, undo, redo]) == [ignore]
    assert "sell1" not in column(apply_corrections(HISTORY, [ignore, undo, redo]), "type")


def test_a_correction_whose_transaction_is_gone_is_listed_as_unapplied():
    edit, rename = recorded(EditTransaction("gone", label="x"), RenameWallet("nowhere", "x"))
    overlay = apply_corrections(HISTORY, [edit, rename])
    assert overlay.history.equals(HISTORY)
    assert [c for c, _why in overlay.unapplied] == [edit.correction_id, rename.correction_id]


# --- what a correction touches ---------------------------------------------------------------


def test_a_correction_touches_the_assets_of_the_rows_it_changes_from_their_time():
    earlier = recorded(SetIgnored("buy1"))
    edit = recorded(EditTransaction("sell1", type="spend"), start=10)[0]
    touched = touched_from(HISTORY, [*earlier, edit], {edit.correction_id})
    at = T0 + timedelta(hours=50)
    assert touched == {"ETH": at, "USD": at}


def test_a_mark_touches_both_legs_and_a_rename_every_row_of_the_renamed_wallet():
    mark, rename = recorded(MarkTransfer("wd1", "dep1"), RenameWallet("kraken", "Kraken "))
    assert touched_from(HISTORY, [mark], {mark.correction_id}) == {"BTC": T0 + timedelta(hours=10)}
    assert touched_from(HISTORY, [rename], {rename.correction_id}) == {
        "USD": T0,
        "BTC": T0,
    }


def test_an_undo_touches_what_its_target_touched():
    ignore, undo = recorded(SetIgnored("dep2"), Undo(uuid.UUID(int=1)))
    assert touched_from(HISTORY, [ignore, undo], {undo.correction_id}) == {
        "ETH": T0 + timedelta(hours=40)
    }
    assert touched_from(HISTORY, [ignore, undo], {ignore.correction_id, undo.correction_id}) == {}


# --- properties over random corrections ------------------------------------------------------

WALLETS = ["a", "b", "c", "d"]
ASSETS = ["BTC", "ETH", "USD"]
UPLOADS = [UPLOAD_A, UPLOAD_B]


@st.composite
def histories(draw) -> tuple[pa.Table, dict[str, frozenset[str]]]:
    n = draw(st.integers(2, 8))
    rows = []
    for i in range(n):
        kind = draw(st.sampled_from(["buy", "withdrawal", "deposit", "income"]))
        sides: dict = {}
        if kind in ("buy", "withdrawal"):
            sides.update(sent_asset=draw(st.sampled_from(ASSETS)), sent_amount="1")
        if kind in ("buy", "deposit", "income"):
            sides.update(received_asset=draw(st.sampled_from(ASSETS)), received_amount="1")
        rows.append(row(f"t{i}", draw(st.sampled_from(WALLETS)), draw(st.integers(0, 99)), kind,
                        **sides))  # fmt: skip
    uploads = {
        f"t{i}": frozenset(draw(st.sets(st.sampled_from(UPLOADS), max_size=2))) for i in range(n)
    }
    return table(rows), uploads


def changes(ids: list[str]) -> st.SearchStrategy[Change]:
    tx = st.sampled_from(ids + ["missing"])
    amount = st.sampled_from([Decimal("0"), Decimal("1.5"), Decimal("250")])
    return st.one_of(
        st.builds(
            EditTransaction,
            tx,
            type=st.sampled_from([None, "income", "deposit", "trade"]),
            label=st.sampled_from([None, "", "gift"]),
        ),
        st.builds(EditTransaction, tx, fiat_value=amount, fiat_currency=st.just("USD")),
        st.builds(SetCostBasis, tx, amount, st.just("USD")),
        st.builds(SetIgnored, tx, st.booleans()),
        st.builds(MarkTransfer, tx, tx),
        st.builds(UnmarkTransfer, tx, tx),
        st.builds(
            AddTransaction,
            st.sampled_from(WALLETS),
            st.integers(0, 99).map(lambda h: T0 + timedelta(hours=h)),
            st.just("income"),
            received_asset=st.sampled_from(ASSETS),
            received_amount=st.just(Decimal(2)),
        ),
        st.builds(DeleteUpload, st.sampled_from(UPLOADS)),
        st.builds(RenameWallet, st.sampled_from(WALLETS), st.sampled_from(WALLETS + ["e"])),
    )


@st.composite
def scenarios(draw):
    history, uploads = draw(histories())
    ids = history.column("tx_id").to_pylist()
    drawn = draw(st.lists(changes(ids), max_size=12))
    corrections = recorded(*drawn)
    adds = [c for c in corrections if isinstance(c.change, AddTransaction)]
    for c in draw(st.lists(st.sampled_from(adds), max_size=2)) if adds else []:
        corrections += recorded(
            DeleteAddedTransaction(manual_tx_id(USER, c.correction_id)), start=len(corrections) + 1
        )
    return history, uploads, corrections


def undos_of(corrections: list[Correction], chosen: list[Correction]) -> list[Correction]:
    return recorded(*(Undo(c.correction_id) for c in chosen), start=len(corrections) + 1)


def same(a: Overlay, b: Overlay) -> None:
    order = [("tx_id", "ascending"), ("timestamp", "ascending")]
    assert a.history.sort_by(order).equals(b.history.sort_by(order))
    assert (a.forced_transfers, a.forbidden_transfers) == (
        b.forced_transfers,
        b.forbidden_transfers,
    )
    assert dict(a.cost_basis) == dict(b.cost_basis)
    assert sorted(a.unapplied) == sorted(b.unapplied)


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_corrections_then_their_undos_give_back_the_uploaded_history(scenario, rnd):
    history, uploads, corrections = scenario
    undo_all = undos_of(corrections, rnd.sample(corrections, len(corrections)))
    assert apply_corrections(history, corrections + undo_all, uploads_of=uploads).history.equals(
        history
    )
    # undoing some of them is the same as never having recorded those
    some = [c for c in corrections if rnd.random() < 0.5]
    kept = [c for c in corrections if c not in some]
    same(
        apply_corrections(history, corrections + undos_of(corrections, some), uploads_of=uploads),
        apply_corrections(history, kept, uploads_of=uploads),
    )


def conflict_keys(change: Change) -> list[tuple]:
    """Corrections with a key in common do not commute (see ingest/corrections/overlay.py)."""
    if isinstance(change, (EditTransaction, SetCostBasis, SetIgnored)):
        return [(change.kind, change.tx_id)]
    if isinstance(change, (MarkTransfer, UnmarkTransfer)):
        return [("leg", change.withdrawal_tx_id), ("leg", change.deposit_tx_id)]
    return []


def commuting(corrections: list[Correction]) -> list[Correction]:
    """The corrections without any that does not commute with an earlier one kept: no shared
    conflict key; renames with distinct olds, none renaming a name another renames to."""
    seen: set[tuple] = set()
    olds: set[str] = set()
    news: set[str] = set()
    kept = []
    for c in corrections:
        change = c.change
        if isinstance(change, RenameWallet):
            if change.old in olds | news or change.new in olds:
                continue
            olds.add(change.old)
            news.add(change.new)
        else:
            keys = conflict_keys(change)
            if any(k in seen for k in keys):
                continue
            seen.update(keys)
        kept.append(c)
    return kept


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_corrections_that_commute_give_one_overlay_in_any_order(scenario, rnd):
    history, uploads, corrections = scenario
    kept = commuting(corrections)
    shuffled = kept[:]
    rnd.shuffle(shuffled)
    same(
        apply_corrections(history, kept, uploads_of=uploads),
        apply_corrections(history, shuffled, uploads_of=uploads),
    )


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_rows_before_the_touched_time_of_their_asset_are_unchanged(scenario, rnd):
    """What lets the planner resume a touched asset from a checkpoint before its touched time:
    the rows (and transfer rules, cost bases) naming it before then are the same."""
    history, uploads, corrections = scenario
    new = {c.correction_id for c in corrections if rnd.random() < 0.5}
    touched = touched_from(history, corrections, new, uploads_of=uploads)
    before = apply_corrections(
        history, [c for c in corrections if c.correction_id not in new], uploads_of=uploads
    )
    after = apply_corrections(history, corrections, uploads_of=uploads)

    def rows_by_asset(overlay: Overlay) -> dict[str, set[tuple]]:
        out: dict[str, set[tuple]] = {}
        links = {tx: ("forced", p) for p in overlay.forced_transfers for tx in p}
        links.update({tx: ("forbidden", p) for p in overlay.forbidden_transfers for tx in p})
        for r in overlay.history.to_pylist():
            for asset in {r["sent_asset"], r["received_asset"], r["fee_asset"]} - {None}:
                if asset in touched and r["timestamp"] >= touched[asset]:
                    continue
                out.setdefault(asset, set()).add(
                    (
                        tuple(sorted(r.items())),
                        links.get(r["tx_id"]),
                        overlay.cost_basis.get(r["tx_id"]),
                    )  # fmt: skip
                )
        return out

    assert rows_by_asset(before) == rows_by_asset(after)


def test_the_overlay_of_many_rows_edits_only_its_targets():
    rnd = random.Random(5)
    rows = [
        row(f"r{i}", rnd.choice(WALLETS), i, "deposit", received_asset="BTC", received_amount="1")
        for i in range(5000)
    ]
    history = table(rows)
    overlay = apply_corrections(history, recorded(EditTransaction("r4000", label="gift")))
    labels = overlay.history.column("label").to_pylist()
    assert labels[4000] == "gift" and labels.count(None) == 4999


def test_a_correction_on_a_row_of_a_deleted_upload_is_listed_as_unapplied():
    uploads_of = {"buy1": {UPLOAD_A}, "sell1": {UPLOAD_A, UPLOAD_B}}
    delete, edit, kept = recorded(
        DeleteUpload(UPLOAD_A), EditTransaction("buy1", label="x"), SetIgnored("sell1")
    )
    overlay = apply_corrections(HISTORY, [delete, edit, kept], uploads_of=uploads_of)
    assert [c for c, _why in overlay.unapplied] == [edit.correction_id]  # sell1 is in B too


@pytest.mark.parametrize(
    ("amount", "refused"),
    [
        (Decimal("12345678901.5"), False),  # 11 integer digits and a fraction
        (
            Decimal("99999999999999999999.999999999999999999"),
            False,
        ),  # the largest decimal128(38,18)
        (Decimal("12345678901.0000000000000000001"), True),  # a 19th decimal
        (Decimal("1e20"), True),
    ],
)
def test_an_amount_of_many_digits_is_checked_not_raised(amount, refused):
    """The check quantizes in a context wide enough for 38 digits: in the default 28 it raised
    InvalidOperation on 11+ integer digits, and POST /v1/corrections answered 500 (found by the
    API fuzz test)."""
    change = AddTransaction("w", T0, "deposit", received_asset="BTC", received_amount=amount)
    assert ("received_amount" in {p.field for p in problems(change)}) is refused
