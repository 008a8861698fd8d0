"""Corrections applied by the tax stage (ingest/pipeline/tax/corrected.py) over in-memory ports,
in process: each kind changes the figures as it says, and a correction job's incremental
recompute (only the touched assets, from the last valid checkpoint) equals a full recompute of
the corrected history (a hypothesis property over random histories and corrections)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.corrections.kinds import (
    MANUAL_SOURCE,
    SIDES,
    AddTransaction,
    Change,
    Correction,
    DeleteAddedTransaction,
    DeleteUpload,
    EditTransaction,
    MarkTransfer,
    RenameWallet,
    SetCostBasis,
    SetIgnored,
    TxFacts,
    Undo,
    UnmarkTransfer,
    facts_of,
    manual_tx_id,
    problems_in_history,
)
from ingest.normalize.canonical import CANONICAL_SCHEMA
from ingest.pipeline.executors import InProcessExecutor
from ingest.pipeline.tax import options
from ingest.pipeline.tax.memory import MemoryViews, memory_ports
from ingest.pipeline.tax.options import TaxOptions
from ingest.pipeline.tax.ports import TaxPorts
from ingest.pipeline.tax.stage import TaxRun, compose_tax
from ingest.vocabulary import Method, Pooling

USER = "u1"
T0 = datetime(2021, 1, 1, tzinfo=timezone.utc)
UPLOAD_A = "00000000-0000-0000-0000-00000000000a"
UPLOAD_B = "00000000-0000-0000-0000-00000000000b"
FIFO = TaxOptions(Method.FIFO, Pooling.PER_WALLET, "USD")


class ThreeCpus(InProcessExecutor):
    """In process, planned like three CPUs: six shards, so a correction leaves some clean."""

    cpus = 3


@pytest.fixture(autouse=True, scope="module")
def shards_for_a_few_rows():
    """These histories are a few rows, which options.shard_count makes one shard: planned as if
    each shard were worth a task, ThreeCpus gives six."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(options, "MIN_PLANNED_ROWS_PER_SHARD", 1)
        yield


def row(tx: str, wallet: str, hours: int, type_: str, **sides: Any) -> dict:
    base: dict[str, Any] = {name: None for name in CANONICAL_SCHEMA.names}
    base.update(
        tx_id=tx,
        user_id=USER,
        wallet=wallet,
        timestamp=T0 + timedelta(hours=hours),
        type=type_,
        source="koinly",
        source_file="f.csv",
        source_line=2,
    )
    for k, v in sides.items():
        base[k] = Decimal(v) if k.endswith(("amount", "value")) else v
    return base


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=CANONICAL_SCHEMA)


def buy(tx: str, wallet: str, hours: int, asset: str, qty: str, usd: str) -> dict:
    return row(tx, wallet, hours, "buy", sent_asset="USD", sent_amount=usd,
               received_asset=asset, received_amount=qty)  # fmt: skip


def sell(tx: str, wallet: str, hours: int, asset: str, qty: str, usd: str) -> dict:
    return row(tx, wallet, hours, "sell", sent_asset=asset, sent_amount=qty,
               received_asset="USD", received_amount=usd)  # fmt: skip


def withdrawal(tx: str, wallet: str, hours: int, asset: str, qty: str) -> dict:
    return row(tx, wallet, hours, "withdrawal", sent_asset=asset, sent_amount=qty)


def deposit(tx: str, wallet: str, hours: int, asset: str, qty: str) -> dict:
    return row(tx, wallet, hours, "deposit", received_asset=asset, received_amount=qty)


def recorded(*changes: Change, start: int = 1) -> list[Correction]:
    return [
        Correction(uuid.UUID(int=start + i), USER, "tester", T0, change)
        for i, change in enumerate(changes)
    ]


def run(
    rows: pa.Table,
    corrections: Sequence[Correction] = (),
    uploads_of: Mapping[str, frozenset[str]] | None = None,
) -> MemoryViews:
    """A full run of the stage over the corrected history."""
    ports = memory_ports(rows, corrections, uploads_of=uploads_of)
    compose_tax(ports, ThreeCpus(), TaxRun(FIFO, label="full", checkpoints=True))
    assert isinstance(ports.views, MemoryViews)
    return ports.views


def balances(views: MemoryViews) -> dict[tuple[str, str], Decimal]:
    return {(b.wallet, b.asset): b.quantity for b in views.balances}


def lines(views: MemoryViews) -> list:
    return sorted((line for ls in views.lines.values() for line in ls), key=lambda x: x.line_id)


def finding_kinds(views: MemoryViews) -> list[tuple[str, str | None]]:
    return sorted((f.kind, f.tx_id) for fs in views.findings.values() for f in fs)


# --- each kind ---------------------------------------------------------------------------------

HISTORY = table(
    [
        buy("b1", "kraken", 0, "BTC", "1", "10000"),
        withdrawal("w1", "kraken", 10, "BTC", "1"),
        # 30 days later: beyond the transfer window, so the engine does not pair them
        deposit("d1", "ledger", 10 + 24 * 30, "BTC", "1"),
        sell("s1", "ledger", 24 * 60, "BTC", "1", "30000"),
        deposit("d2", "binance", 24 * 70, "ETH", "2"),
        sell("s2", "binance", 24 * 80, "ETH", "2", "4000"),
        row(
            "spam",
            "binance",
            24 * 90,
            "income",
            received_asset="SPAM",
            received_amount="1000",
            fiat_value="0",
            fiat_currency="USD",
        ),  # fmt: skip
    ]
)


def test_a_marked_transfer_carries_the_withdrawn_lots_cost_to_the_deposit():
    before = run(HISTORY)
    assert ("unmatched_deposit", "d1") in finding_kinds(before)
    after = run(HISTORY, recorded(MarkTransfer("w1", "d1")))
    assert ("unmatched_deposit", "d1") not in finding_kinds(after)
    assert ("unmatched_withdrawal", "w1") not in finding_kinds(after)
    (btc_sale,) = [line for line in lines(after) if line.asset == "BTC"]
    assert btc_sale.cost_basis == Decimal("10000") and btc_sale.gain == Decimal("20000")


def test_an_unmarked_transfer_is_never_matched_by_the_engine():
    close = table([*HISTORY.slice(0, 1).to_pylist(), withdrawal("w1", "kraken", 10, "BTC", "1"),
                   deposit("d1", "ledger", 11, "BTC", "1")])  # fmt: skip
    assert "unmatched_deposit" not in {k for k, _ in finding_kinds(run(close))}
    forbidden = run(close, recorded(UnmarkTransfer("w1", "d1")))
    assert {("unmatched_deposit", "d1"), ("unmatched_withdrawal", "w1")} <= set(
        finding_kinds(forbidden)
    )


def test_a_stated_cost_basis_replaces_the_zero_basis_of_a_deposit_from_outside():
    after = run(HISTORY, recorded(SetCostBasis("d2", Decimal("1500"), "USD")))
    (eth_sale,) = [line for line in lines(after) if line.asset == "ETH"]
    assert eth_sale.cost_basis == Decimal("1500") and eth_sale.gain == Decimal("2500")
    assert ("unmatched_deposit", "d2") not in finding_kinds(after)
    assert "missing_cost_basis" not in {k for k, tx in finding_kinds(after) if tx == "s2"}


def test_a_cost_basis_stated_in_another_currency_is_unused_and_said_so():
    ports = memory_ports(HISTORY, recorded(SetCostBasis("d2", Decimal("1500"), "EUR")))
    result = compose_tax(ports, ThreeCpus(), TaxRun(FIFO, label="t", checkpoints=True))
    assert result.corrections_unapplied == {
        str(uuid.UUID(int=1)): "cost basis stated in EUR; the reporting currency is USD: state "
        "it in USD"
    }
    assert ("unmatched_deposit", "d2") in finding_kinds(ports.views)  # type: ignore[arg-type]


def test_an_ignored_airdrop_leaves_the_balances_and_an_unignored_one_comes_back():
    assert ("binance", "SPAM") in balances(run(HISTORY))
    ignore = recorded(SetIgnored("spam"))
    assert ("binance", "SPAM") not in balances(run(HISTORY, ignore))
    unignore = ignore + recorded(SetIgnored("spam", ignored=False), start=2)
    assert balances(run(HISTORY, unignore)) == balances(run(HISTORY))


def test_an_edited_fiat_value_is_the_income_of_the_row():
    edit = recorded(EditTransaction("spam", fiat_value=Decimal("50"), fiat_currency="USD"))
    totals = run(HISTORY, edit).totals
    assert totals is not None
    assert sum(s.income for s in totals.years.values()) == Decimal(50)


def test_a_fiat_value_edit_of_a_row_valued_by_its_fiat_side_is_refused():
    edit = EditTransaction("s2", fiat_value=Decimal("5000"), fiat_currency="USD")
    (problem,) = problems_in_history(edit, facts_of(HISTORY))
    assert problem.field == "fiat_value" and "USD side" in problem.message


def test_a_deposit_edited_into_income_is_income_not_a_finding():
    after = run(HISTORY, recorded(EditTransaction("d2", type="income")))
    assert ("unmatched_deposit", "d2") not in finding_kinds(after)
    assert after.totals is not None
    assert sum(s.income for s in after.totals.years.values()) == sum(
        s.income
        for s in run(HISTORY).totals.years.values()  # type: ignore[union-attr]
    )  # valued from the row itself: no fiat value, no price service here: 0 either way


def test_an_added_transaction_counts_and_deleting_it_gives_back_the_figures():
    add = recorded(AddTransaction("binance", T0 + timedelta(days=75), "buy", sent_asset="USD",
                                  sent_amount=Decimal(100), received_asset="ETH",
                                  received_amount=Decimal(1)))  # fmt: skip
    added = run(HISTORY, add)
    assert balances(added)[("binance", "ETH")] == Decimal(1)
    deleted = add + recorded(DeleteAddedTransaction(manual_tx_id(USER, add[0].correction_id)),
                             start=2)  # fmt: skip
    assert balances(run(HISTORY, deleted)) == balances(run(HISTORY))


def test_a_deleted_upload_takes_out_only_the_rows_no_other_upload_holds():
    uploads_of = {tx: frozenset({UPLOAD_A}) for tx in HISTORY.column("tx_id").to_pylist()}
    uploads_of["b1"] = frozenset({UPLOAD_A, UPLOAD_B})
    after = run(HISTORY, recorded(DeleteUpload(UPLOAD_A)), uploads_of)
    assert balances(after) == {("kraken", "BTC"): Decimal(1)}
    assert set(after.view) == {"b1"}


def test_a_correction_on_a_row_of_a_deleted_upload_is_unapplied_and_says_why():
    uploads_of = {tx: frozenset({UPLOAD_A}) for tx in HISTORY.column("tx_id").to_pylist()}
    uploads_of["b1"] = frozenset({UPLOAD_A, UPLOAD_B})
    corrections = recorded(
        DeleteUpload(UPLOAD_A), SetCostBasis("d2", Decimal("1500"), "USD"), SetIgnored("b1")
    )
    ports = memory_ports(HISTORY, corrections, uploads_of=uploads_of)
    result = compose_tax(ports, ThreeCpus(), TaxRun(FIFO, label="t", checkpoints=True))
    assert result.corrections_unapplied == {
        str(uuid.UUID(int=2)): "no transaction d2 in the history"
    }


def test_a_renamed_wallet_merges_with_the_wallet_of_the_new_name():
    after = run(HISTORY, recorded(RenameWallet("ledger", "kraken")))
    assert ("ledger", "BTC") not in balances(after)
    # per-wallet pooling: w1 -> d1 is now within one wallet; the sale takes kraken's lot
    (btc_sale,) = [line for line in lines(after) if line.asset == "BTC"]
    assert btc_sale.wallet == "kraken"
    assert {row["wallet"] for row in after.view.values()} == {"kraken", "binance"}


def test_a_correction_job_recomputes_only_the_assets_it_touches_from_a_checkpoint():
    first = memory_ports(HISTORY)
    compose_tax(first, ThreeCpus(), TaxRun(FIFO, label="1", checkpoints=True))
    ignore = recorded(SetIgnored("s2"))
    ports = correction_ports(first, HISTORY, ignore, {}, ignore[0].correction_id)
    result = compose_tax(ports, ThreeCpus(), TaxRun(FIFO, label="2", touched={}, checkpoints=True))
    assert result.recomputed_assets == ["ETH", "USD"]
    assert result.corrections_touched == {
        "ETH": T0 + timedelta(days=80),
        "USD": T0 + timedelta(days=80),
    }
    assert result.shards_computed < result.shards
    same_tables(ports.views, run(HISTORY, ignore))


# --- incremental == full, over random corrections ----------------------------------------------

ASSETS = ["BTC", "ETH", "SOL"]
WALLETS = ["a", "b", "c"]
YEARS_HOURS = 3 * 8760  # the histories span three tax years: checkpoints at each start


@st.composite
def histories(draw) -> tuple[pa.Table, dict[str, frozenset[str]]]:
    n = draw(st.integers(4, 30))
    rows = []
    for i in range(n):
        kind = draw(st.sampled_from(["buy", "sell", "withdrawal", "deposit", "income"]))
        asset, wallet = draw(st.sampled_from(ASSETS)), draw(st.sampled_from(WALLETS))
        hours = draw(st.integers(0, YEARS_HOURS))
        qty = str(draw(st.sampled_from([1, 2, 3])))
        usd = str(draw(st.sampled_from([100, 250, 900])))
        if kind == "buy":
            rows.append(buy(f"t{i}", wallet, hours, asset, qty, usd))
        elif kind == "sell":
            rows.append(sell(f"t{i}", wallet, hours, asset, qty, usd))
        elif kind == "withdrawal":
            rows.append(withdrawal(f"t{i}", wallet, hours, asset, qty))
        elif kind == "deposit":
            rows.append(deposit(f"t{i}", wallet, hours, asset, qty))
        else:
            rows.append(row(f"t{i}", wallet, hours, "income", received_asset=asset,
                            received_amount=qty, fiat_value=usd, fiat_currency="USD"))  # fmt: skip
    uploads = {
        f"t{i}": draw(
            st.sampled_from(
                [frozenset({UPLOAD_A}), frozenset({UPLOAD_B}), frozenset({UPLOAD_A, UPLOAD_B})]
            )
        )  # fmt: skip
        for i in range(n)
    }
    return table(rows), uploads


def candidates(
    facts: Mapping[str, TxFacts], corrections: Sequence[Correction]
) -> st.SearchStrategy[Change]:
    """Corrections a user could record on the corrected history ``facts`` (some still refused:
    the API refuses them too)."""
    ids = sorted(facts)
    of_type = {t: sorted(tx for tx, f in facts.items() if f.type == t) for t in SIDES}
    pairs = [
        (w, d)
        for w in of_type["withdrawal"]
        for d in of_type["deposit"]
        if facts[w].sends == facts[d].receives and facts[w].wallet != facts[d].wallet
    ]
    added = sorted(tx for tx, f in facts.items() if f.source == MANUAL_SOURCE)
    tx = st.sampled_from(ids)
    options = [
        st.builds(EditTransaction, tx, type=st.sampled_from(["income", "deposit", "sell", "buy"])),
        st.builds(EditTransaction, tx, label=st.just("gift")),
        st.builds(
            EditTransaction,
            tx,
            fiat_value=st.sampled_from([Decimal(0), Decimal(700)]),
            fiat_currency=st.just("USD"),
        ),  # fmt: skip
        st.builds(SetIgnored, tx, st.booleans()),
        st.builds(
            AddTransaction,
            st.sampled_from(WALLETS),
            st.integers(0, YEARS_HOURS).map(lambda h: T0 + timedelta(hours=h)),
            st.just("buy"),
            sent_asset=st.just("USD"),
            sent_amount=st.just(Decimal(300)),
            received_asset=st.sampled_from(ASSETS),
            received_amount=st.just(Decimal(2)),
        ),
        st.builds(DeleteUpload, st.sampled_from([UPLOAD_A, UPLOAD_B])),
        st.builds(RenameWallet, st.sampled_from(WALLETS), st.sampled_from([*WALLETS, "d"])),
    ]
    if of_type["deposit"]:
        options.append(st.builds(SetCostBasis, st.sampled_from(of_type["deposit"]),
                                 st.sampled_from([Decimal(0), Decimal(50)]), st.just("USD")))  # fmt: skip
    if pairs:
        pair = st.sampled_from(pairs)
        options.append(pair.map(lambda p: MarkTransfer(*p)))
        options.append(pair.map(lambda p: UnmarkTransfer(*p)))
    if corrections:
        options.append(st.sampled_from([Undo(c.correction_id) for c in corrections]))
    if added:
        options.append(st.sampled_from([DeleteAddedTransaction(tx) for tx in added]))
    return st.one_of(*options)


def correction_ports(
    before: TaxPorts,
    rows: pa.Table,
    corrections: Sequence[Correction],
    uploads_of: Mapping[str, frozenset[str]],
    new: uuid.UUID,
) -> TaxPorts:
    """The next job's ports: the stored state of the last one, the corrections up to ``new``."""
    assert isinstance(before.views, MemoryViews)
    return memory_ports(rows, corrections, new=frozenset({new}), uploads_of=uploads_of,
                        checkpoints=before.views.checkpoints, views=before.views)  # fmt: skip


def same_tables(incremental: Any, full: MemoryViews) -> None:
    assert isinstance(incremental, MemoryViews)
    assert incremental.totals == full.totals
    assert sorted(incremental.balances, key=lambda b: (b.asset, b.wallet)) == sorted(
        full.balances, key=lambda b: (b.asset, b.wallet)
    )
    assert lines(incremental) == lines(full)
    key = lambda f: (f.kind, f.asset or "", f.tx_id or "", f.detail)  # noqa: E731
    assert {a: sorted(fs, key=key) for a, fs in incremental.findings.items() if fs} == {
        a: sorted(fs, key=key) for a, fs in full.findings.items() if fs
    }
    assert incremental.view == full.view
    assert incremental.metrics == full.metrics


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(histories(), st.data())
def test_incremental_recompute_after_each_correction_equals_a_full_recompute(scenario, data):
    rows, uploads_of = scenario
    ports = memory_ports(rows, uploads_of=uploads_of)
    compose_tax(ports, ThreeCpus(), TaxRun(FIFO, label="upload", checkpoints=True))
    corrections: list[Correction] = []
    for step in range(data.draw(st.integers(1, 6), label="jobs")):
        before = memory_ports(rows, corrections, uploads_of=uploads_of).history
        facts = facts_of(before.read(before.months()))
        if not facts:
            break
        change = data.draw(candidates(facts, corrections), label=f"change {step}")
        recorded_now = corrections + recorded(change, start=len(corrections) + 1)
        if problems_in_history(change, facts, corrections, uploads=frozenset({UPLOAD_A, UPLOAD_B})):
            continue  # the API refuses it: never recorded
        corrections = recorded_now
        new = corrections[-1].correction_id
        ports = correction_ports(ports, rows, corrections, uploads_of, new)
        compose_tax(ports, ThreeCpus(), TaxRun(FIFO, label=f"c{step}", touched={},
                                               checkpoints=True))  # fmt: skip
        same_tables(ports.views, run(rows, corrections, uploads_of))


@pytest.mark.parametrize("change", [SetIgnored("t0"), RenameWallet("a", "b")])
def test_undoing_a_correction_gives_back_the_uploaded_figures(change):
    rows = table([buy("t0", "a", 5, "BTC", "1", "100"), sell("t1", "b", 9000, "BTC", "1", "300"),
                  withdrawal("t2", "a", 9100, "BTC", "1"), deposit("t3", "b", 9101, "BTC", "1")])  # fmt: skip
    ports = memory_ports(rows)
    compose_tax(ports, ThreeCpus(), TaxRun(FIFO, label="upload", checkpoints=True))
    corrections = recorded(change)
    for c in (corrections[0], *recorded(Undo(corrections[0].correction_id), start=2)):
        corrections = [*corrections, c] if c is not corrections[0] else corrections
        ports = correction_ports(ports, rows, corrections, {}, c.correction_id)
        compose_tax(ports, ThreeCpus(), TaxRun(FIFO, label="c", touched={}, checkpoints=True))
    same_tables(ports.views, run(rows))
