"""Explain a number: the lots each disposal consumed, per method, through the stored chunk
format (views packing) and back, and a property over random histories that a disposal's lots
add up exactly to its quantity and cost basis."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given, settings

from ingest.load.views import disposal_chunk_rows, disposal_line_row, unpack_disposal_chunk
from ingest.tax.engine import compute, compute_asset, prepare
from ingest.tax.events import EventKind
from ingest.tax.explain import LOT_RULES, LotsUnrecorded, explain_disposal
from ingest.tax.records import DisposalLine
from serve.reports import disposal_line
from tests.fixtures.tax.builders import buy, deposit, sell, valued_table, when, withdrawal
from tests.test_tax_properties import COMMON, METHODS, histories

D = Decimal


def stored(lines: list[DisposalLine]) -> list[DisposalLine]:
    """``lines`` as the API reads them back: packed into disposal_chunks bodies and unpacked."""
    out = []
    for row in disposal_chunk_rows("u", [disposal_line_row(line) for line in lines]):
        chunk = {"asset": row[2], "body": row[5]}
        out.extend(disposal_line(item, row[1]) for item in unpack_disposal_chunk(chunk))
    return out


def explain(rows, tx_id, *, method, pooling="per-wallet", currency="USD", asset="BTC"):
    result = compute(valued_table(rows), method=method, pooling=pooling, currency=currency)
    lines = [d for d in stored(result.disposals) if d.tx_id == tx_id and d.asset == asset]
    return explain_disposal(lines, method=method, pooling=pooling, currency=currency)


THREE_BUYS = [
    buy("2024-01-01", "BTC", 1, 100),  # t0001
    buy("2024-02-01", "BTC", 1, 300),  # t0002
    buy("2024-03-01", "BTC", 1, 200),  # t0003
    sell("2024-04-01", "BTC", "1.5", 600),  # t0004
]


def lots_of(explanation):
    return [(lot.from_tx_id, lot.quantity, lot.cost, lot.rule) for lot in explanation.lots]


def test_fifo_names_the_oldest_lots_with_their_acquisition_and_rule():
    explained = explain(THREE_BUYS, "t0004", method="fifo")
    assert lots_of(explained) == [
        ("t0001", D(1), D(100), "fifo"),
        ("t0002", D("0.5"), D(150), "fifo"),
    ]
    assert explained.lots[0].acquired_at == when("2024-01-01")
    assert explained.lots[0].wallet == "exchange"
    assert explained.disposal.quantity == D("1.5")
    assert explained.disposal.cost_basis == D(250)
    assert explained.disposal.gain == D(350)
    assert explained.disposal.method == "fifo"


def test_lifo_names_the_newest_lots():
    explained = explain(THREE_BUYS, "t0004", method="lifo")
    assert lots_of(explained) == [
        ("t0003", D(1), D(200), "lifo"),
        ("t0002", D("0.5"), D(150), "lifo"),
    ]


def test_hifo_names_the_dearest_lots():
    explained = explain(THREE_BUYS, "t0004", method="hifo")
    assert lots_of(explained) == [
        ("t0002", D(1), D(300), "hifo"),
        ("t0003", D("0.5"), D(100), "hifo"),
    ]


def test_acb_takes_a_share_of_the_pool_with_no_single_acquisition():
    explained = explain(THREE_BUYS, "t0004", method="acb", pooling="universal")
    assert lots_of(explained) == [(None, D("1.5"), D(300), "acb")]
    assert explained.lots[0].acquired_at is None
    assert explained.lots[0].wallet == "*"


def test_uk_names_same_day_thirty_day_and_pool_matches():
    rows = [
        buy("2024-05-01T09:00", "BTC", 2, 200),  # t0001: the pool
        buy("2024-06-01T09:00", "BTC", 1, 150),  # t0002: same day as the sale
        sell("2024-06-01T15:00", "BTC", 4, 1000),  # t0003
        buy("2024-06-10T09:00", "BTC", 1, 120),  # t0004: within 30 days after
    ]
    explained = explain(rows, "t0003", method="uk", pooling="universal", currency="GBP")
    assert lots_of(explained) == [
        ("t0002", D(1), D(150), "same_day"),
        ("t0004", D(1), D(120), "bed_and_breakfast"),
        (None, D(2), D(200), "pool"),
    ]
    assert explained.lots[1].acquired_at == when("2024-06-10T09:00")
    assert {lot.currency for lot in explained.lots} == {"GBP"}
    assert explained.disposal.term == "n/a"


def test_units_no_acquisition_supplied_are_a_no_basis_lot():
    rows = [buy("2024-01-01", "BTC", 1, 100), sell("2024-02-01", "BTC", 3, 900)]
    explained = explain(rows, "t0002", method="fifo")
    assert lots_of(explained) == [("t0001", D(1), D(100), "fifo"), (None, D(2), D(0), "no_basis")]


def test_a_transferred_lot_keeps_its_acquisition_in_per_wallet_pooling():
    rows = [
        buy("2024-01-01", "BTC", 1, 100, wallet="kraken"),
        withdrawal("2024-02-01T10:00", "BTC", 1, wallet="kraken"),
        deposit("2024-02-01T11:00", "BTC", 1, wallet="ledger"),
        sell("2024-03-01", "BTC", 1, 500, wallet="ledger"),
    ]
    explained = explain(rows, "t0004", method="fifo")
    assert lots_of(explained) == [("t0001", D(1), D(100), "fifo")]
    assert explained.lots[0].acquired_at == when("2024-01-01")
    assert explained.lots[0].wallet == "ledger"  # the pool it was taken from


def test_lines_stored_before_lots_were_recorded_are_refused():
    result = compute(valued_table(THREE_BUYS), method="fifo", pooling="per-wallet")
    old = [row[:12] for row in (disposal_line_row(d) for d in result.disposals)]
    chunk = disposal_chunk_rows("u", [(*row, None, None, "", D(0)) for row in old])[0]
    lines = [
        disposal_line(item, chunk[1])
        for item in unpack_disposal_chunk({"asset": chunk[2], "body": chunk[5]})
    ]
    with pytest.raises(LotsUnrecorded):
        explain_disposal(lines, method="fifo", pooling="per-wallet", currency="USD")


@settings(**COMMON)
@given(histories())
def test_every_disposals_lots_add_up_to_its_quantity_and_cost_basis(history):
    rows, _disposed, _net = history
    table = valued_table(rows)
    for method, pooling in METHODS:
        prepared = prepare(table, pooling=pooling)
        for asset, events in prepared.assets.items():
            result = compute_asset(asset, events, method=method, pooling=pooling)
            disposed: dict[str, Decimal] = defaultdict(Decimal)
            for event in events:
                if event.kind is EventKind.DISPOSE:
                    disposed[event.tx_id] += event.quantity
            by_tx: dict[str, list[DisposalLine]] = defaultdict(list)
            for line in stored(result.disposals):
                by_tx[line.tx_id].append(line)
            assert set(by_tx) == set(disposed), (method, pooling, asset)
            for tx_id, lines in by_tx.items():
                explained = explain_disposal(lines, method=method, pooling=pooling, currency="USD")
                lots = explained.lots
                assert {lot.rule for lot in lots} <= set(LOT_RULES)
                # exact Decimal sums: what the API prints adds up as printed
                assert sum((lot.quantity for lot in lots), D(0)) == disposed[tx_id]
                assert explained.disposal.quantity == disposed[tx_id]
                assert sum((lot.cost for lot in lots), D(0)) == result.per_tx[tx_id].cost_basis
                assert explained.disposal.cost_basis == result.per_tx[tx_id].cost_basis
                assert explained.disposal.proceeds == result.per_tx[tx_id].proceeds
                assert explained.disposal.gain == result.per_tx[tx_id].gain
