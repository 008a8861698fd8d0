"""A chunk of raw history as stored bytes (pure: no Cassandra): canonical rows come back equal,
decimals to the last of their 18 places and ids as they were; a body of an unknown format, or
bytes that are no chunk, are refused; merging chunks keeps one row per id (a re-upload or an
overlapping export adds nothing) and every row with its own id (true duplicates in one export
stay two); cutting a partition into month pieces is deterministic."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.load.chunk_codec import CHUNK_FORMAT, decode_chunk, encode_chunk, merge_chunks
from ingest.load.history_chunks import PIECES_PER_PART, chunk_part, month_pieces
from ingest.normalize.canonical import CANONICAL_SCHEMA
from ingest.normalize.identity import tx_id

EPOCH = datetime(2015, 1, 1, tzinfo=timezone.utc)
AMOUNTS = st.one_of(
    st.none(),
    st.decimals(
        min_value=Decimal("-99999999999999999999.999999999999999999"),
        max_value=Decimal("99999999999999999999.999999999999999999"),
        places=18,
        allow_nan=False,
        allow_infinity=False,
    ),
)
TEXT = st.one_of(st.none(), st.text(max_size=12))


@st.composite
def canonical_rows(draw: Any, max_rows: int = 30) -> pa.Table:
    n = draw(st.integers(0, max_rows))
    rows = []
    for i in range(n):
        rows.append(
            {
                "tx_id": tx_id("u", "koinly", f"c:{draw(st.text(max_size=6))}", i),
                "user_id": "u",
                "wallet": draw(st.sampled_from(["Binance", "Ledger", "kraken"])),
                "timestamp": EPOCH
                + timedelta(microseconds=draw(st.integers(0, 10 * 365 * 86_400 * 10**6))),
                "type": draw(st.sampled_from(["buy", "sell", "trade", "deposit"])),
                "label": draw(TEXT),
                "sent_asset": draw(st.one_of(st.none(), st.sampled_from(["BTC", "ETH"]))),
                "sent_amount": draw(AMOUNTS),
                "received_asset": draw(st.one_of(st.none(), st.sampled_from(["USD", "SOL"]))),
                "received_amount": draw(AMOUNTS),
                "fee_asset": None,
                "fee_amount": draw(AMOUNTS),
                "fiat_value": draw(AMOUNTS),
                "fiat_currency": "USD",
                "tx_hash": draw(TEXT),
                "external_id": draw(TEXT),
                "description": draw(TEXT),
                "source": "koinly",
                "source_file": "a.csv",
                "source_line": i + 2,
            }
        )
    return pa.Table.from_pylist(rows, schema=CANONICAL_SCHEMA)


@settings(max_examples=150, deadline=None)
@given(canonical_rows())
def test_a_chunk_decodes_to_the_rows_it_encoded_decimals_and_ids_exact(rows: pa.Table) -> None:
    back = decode_chunk(encode_chunk(rows), CHUNK_FORMAT)
    assert back.schema.equals(CANONICAL_SCHEMA)
    assert back.to_pylist() == rows.to_pylist()  # Decimal == Decimal: every place compared


def test_an_amount_with_38_digits_is_kept_to_its_last_place() -> None:
    amount = Decimal("12345678901234567890.123456789012345678")
    rows = pa.Table.from_pylist(
        [
            {
                "tx_id": "a",
                "user_id": "u",
                "wallet": "w",
                "timestamp": EPOCH,
                "type": "buy",
                "received_asset": "ETH",
                "received_amount": amount,
                "source": "s",
                "source_file": "f",
                "source_line": 2,
            }
        ],
        schema=CANONICAL_SCHEMA,
    )
    back = decode_chunk(encode_chunk(rows), CHUNK_FORMAT)
    assert back.column("received_amount")[0].as_py() == amount
    assert str(back.column("received_amount")[0].as_py()) == str(amount)


@given(canonical_rows())
@settings(max_examples=50, deadline=None)
def test_the_same_rows_encode_to_the_same_bytes(rows: pa.Table) -> None:
    assert encode_chunk(rows) == encode_chunk(rows)


def test_rows_with_their_columns_in_another_order_are_stored_canonically() -> None:
    rows = one_row("a")
    shuffled = rows.select(list(reversed(rows.column_names)))
    assert decode_chunk(encode_chunk(shuffled), CHUNK_FORMAT).equals(rows)


def test_rows_missing_a_canonical_column_are_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="tx_hash"):
        encode_chunk(one_row("a").drop_columns(["tx_hash"]))


@pytest.mark.parametrize("fmt", [0, CHUNK_FORMAT + 1, -1])
def test_a_body_of_an_unknown_format_is_refused(fmt: int) -> None:
    with pytest.raises(ValueError, match=f"format {fmt}"):
        decode_chunk(encode_chunk(one_row("a")), fmt)


def test_bytes_that_are_no_chunk_are_refused() -> None:
    with pytest.raises(ValueError, match="not an Arrow IPC stream"):
        decode_chunk(b"PK\x03\x04 a zip, say", CHUNK_FORMAT)


def test_a_stream_of_other_columns_is_refused() -> None:
    sink = pa.BufferOutputStream()
    other = pa.table({"tx_id": ["a"]})
    with pa.ipc.new_stream(sink, other.schema) as writer:
        writer.write_table(other)
    with pytest.raises(ValueError, match="not the canonical schema"):
        decode_chunk(sink.getvalue().to_pybytes(), CHUNK_FORMAT)


def one_row(tx: str, minute: int = 0, line: int = 2, description: str = "") -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "tx_id": tx,
                "user_id": "u",
                "wallet": "w",
                "timestamp": EPOCH + timedelta(minutes=minute),
                "type": "buy",
                "received_asset": "BTC",
                "received_amount": Decimal("0.1"),
                "description": description or None,
                "source": "koinly",
                "source_file": "a.csv",
                "source_line": line,
            }
        ],
        schema=CANONICAL_SCHEMA,
    )


def shuffled(rows: pa.Table, rnd: Any) -> pa.Table:
    return rows.take(pa.array(rnd.sample(range(rows.num_rows), rows.num_rows), pa.int64()))


@settings(max_examples=100, deadline=None)
@given(canonical_rows(), st.integers(0, 30), st.randoms(use_true_random=False))
def test_a_reupload_or_an_overlapping_export_adds_nothing_to_the_merged_history(
    rows: pa.Table, overlap_from: int, rnd: Any
) -> None:
    """The same file again, and a second export sharing rows with the first (same stable ids),
    merge into each id once; every row of one export (distinct ids) stays."""
    again = shuffled(rows, rnd)  # the same file again (its rows in any order)
    overlapping = rows.slice(min(overlap_from, rows.num_rows))
    merged = merge_chunks([rows, again, overlapping])
    assert merged.num_rows == len(set(rows.column("tx_id").to_pylist()))
    assert sorted(merged.to_pylist(), key=lambda r: r["tx_id"]) == sorted(
        {r["tx_id"]: r for r in rows.to_pylist()}.values(), key=lambda r: r["tx_id"]
    )


def test_two_identical_rows_of_one_export_stay_two_transactions() -> None:
    """Identical content, ranked by line: two ids (normalize.identity), so two rows."""
    first = tx_id("u", "koinly", "c:same row", 0)
    second = tx_id("u", "koinly", "c:same row", 1)
    assert first != second
    export = pa.concat_tables([one_row(first, line=2), one_row(second, line=3)])
    assert merge_chunks([export, export]).num_rows == 2


def test_the_latest_chunk_holding_an_id_gives_its_row() -> None:
    """Chunks are passed oldest upload first: a re-export's changed text wins, as an upsert."""
    old, new = one_row("a", description="old text"), one_row("a", description="new text")
    assert merge_chunks([old, new]).column("description").to_pylist() == ["new text"]
    assert merge_chunks([new, old]).column("description").to_pylist() == ["old text"]


@settings(max_examples=100, deadline=None)
@given(st.lists(canonical_rows(max_rows=10), max_size=4))
def test_a_merged_history_is_sorted_by_time_then_id(tables: list[pa.Table]) -> None:
    merged = merge_chunks(tables)
    keys = list(zip(merged.column("timestamp").to_pylist(), merged.column("tx_id").to_pylist()))
    assert keys == sorted(keys)
    assert merged.schema.equals(CANONICAL_SCHEMA)


def test_no_chunks_merge_into_an_empty_history() -> None:
    assert merge_chunks([]).num_rows == 0
    assert merge_chunks([]).schema.equals(CANONICAL_SCHEMA)


@settings(max_examples=100, deadline=None)
@given(canonical_rows(max_rows=40), st.integers(1, 7), st.randoms(use_true_random=False))
def test_month_pieces_are_the_same_whatever_the_rows_order(
    rows: pa.Table, max_rows: int, rnd: Any
) -> None:
    """A retried store task writes the same keys with the same rows, even if its rows came in
    another order; every piece is one month's, at most max_rows, and together they are all."""
    pieces = month_pieces(rows, max_rows)
    again = month_pieces(shuffled(rows, rnd), max_rows)
    assert [(m, p, t.to_pylist()) for m, p, t in pieces] == [
        (m, p, t.to_pylist()) for m, p, t in again
    ]
    assert sum(t.num_rows for _m, _p, t in pieces) == rows.num_rows
    for month, _piece, table in pieces:
        assert 0 < table.num_rows <= max_rows
        assert {t.year * 100 + t.month for t in table.column("timestamp").to_pylist()} == {month}


def test_a_part_names_its_partition_and_piece_and_refuses_too_many_pieces() -> None:
    assert chunk_part(3, 2) == 3 * PIECES_PER_PART + 2
    assert chunk_part(0, 0) != chunk_part(0, 1) != chunk_part(1, 0)
    with pytest.raises(ValueError, match="at most"):
        chunk_part(0, PIECES_PER_PART)


def test_month_pieces_keep_to_the_byte_budget_and_a_larger_row_goes_alone() -> None:
    rows = pa.concat_tables(
        [one_row(f"t{i}", minute=i, description="x" * (5000 if i == 3 else 100)) for i in range(8)]
    )
    pieces = month_pieces(rows, max_rows=100, max_bytes=2000)
    assert sum(t.num_rows for _m, _p, t in pieces) == 8
    assert [p for _m, p, _t in pieces] == list(range(len(pieces)))
    alone = [t for _m, _p, t in pieces if "t3" in t.column("tx_id").to_pylist()]
    assert alone[0].num_rows == 1
    assert all(t.num_rows > 1 for _m, _p, t in pieces if "t3" not in t.column("tx_id").to_pylist())
