"""Idempotent identity: same file -> same ids; identical rows -> distinct ids; unrelated rows
and chunking change nothing; the exchange's own id wins over content."""

from __future__ import annotations

import re

import pyarrow as pa

from ingest.extract.parse import parse_bytes
from ingest.normalize.identity import occurrence_index, tx_id, tx_ids

HEADER = (
    b"Date,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,"
    b"Fee Currency,Net Worth Amount,Net Worth Currency,Label,Description,TxHash\n"
)
ROW_A = b"2024-01-07 09:30:00 UTC,,,0.00123,ETH,,,2.83,USD,staking,,\n"
ROW_B = b"2024-01-08 09:30:00 UTC,0.1,BTC,2,ETH,,,,,,,\n"
ROW_C = b"2024-02-01 00:00:00 UTC,,,1,SOL,,,,,,,\n"


def ids(data: bytes, **kw: object) -> list[str]:
    result = parse_bytes(data, user_id=kw.pop("user_id", "user-1"), **kw)  # type: ignore[arg-type]
    assert not result.rejected
    return result.table.column("tx_id").to_pylist()


def test_ids_are_32_hex_and_reparse_gives_the_same_ids() -> None:
    data = HEADER + ROW_A + ROW_B
    first = ids(data)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in first)
    assert ids(data) == first
    assert ids(data, source_file="renamed.csv") == first  # the file name is no part of it


def test_identical_rows_stay_two_with_two_ids() -> None:
    data = HEADER + ROW_A + ROW_A + ROW_B + ROW_A
    result = parse_bytes(data, user_id="u")
    assert result.table.num_rows == 4
    assert len(set(result.table.column("tx_id").to_pylist())) == 4


def test_unrelated_rows_do_not_change_existing_ids() -> None:
    a1, a2, b = ids(HEADER + ROW_A + ROW_A + ROW_B)
    more = ids(HEADER + ROW_C + ROW_A + ROW_C + ROW_A + ROW_B + ROW_C)
    assert [more[1], more[3], more[4]] == [a1, a2, b]


def test_ids_do_not_depend_on_chunking() -> None:
    data = HEADER + (ROW_A + ROW_B) * 40 + ROW_C  # identical rows across many chunks
    assert ids(data, chunk_bytes=1) == ids(data, chunk_bytes=10**9)


def test_other_user_other_ids() -> None:
    data = HEADER + ROW_A
    assert ids(data, user_id="alice") != ids(data, user_id="bob")


def test_exchange_id_is_the_identity() -> None:
    head = (
        b"ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,Price at "
        b"Transaction,Subtotal,Total (inclusive of fees and/or spread),Fees and/or Spread,Notes\n"
    )
    row = b"65a1b2c3d4e5f60718293a4f,2024-01-09 13:00:00 UTC,Receive,SOL,2,USD,$100.00,$200.00,$200.00,$0.00,%s\n"
    # a re-export that rewords the notes keeps the id: the Coinbase ID is the identity
    assert ids(head + row % b"first") == ids(head + row % b"reworded")
    assert ids(head + row % b"x") == [tx_id("user-1", "coinbase", "x:65a1b2c3d4e5f60718293a4f", 0)]


def test_kraken_refid_identity_across_files() -> None:
    head = b"txid,refid,time,type,subtype,aclass,asset,amount,fee,balance\n"
    legs = (
        b"L1,TREF,2024-01-06 09:00:00,trade,,currency,ZUSD,-500,1.3,0\n"
        b"L2,TREF,2024-01-06 09:00:00,trade,,currency,XETH,0.21,0,0.21\n"
    )
    other = b"L3,QDEP,2024-01-05 09:00:00,deposit,,currency,XXBT,1,0,1\n"
    assert ids(head + legs) == [tx_id("user-1", "kraken", "g:TREF", 0)]
    assert ids(head + other + legs)[1] == ids(head + legs)[0]


def test_tx_ids_matches_tx_id_and_occurrences() -> None:
    keys = ["c:a", "c:b", "c:a"]
    occ = occurrence_index(pa.array(keys), pa.array([7, 3, 2]))
    assert occ.tolist() == [1, 0, 0]  # ranks by line among equal keys
    assert tx_ids("u", "koinly", keys, occ.tolist()) == [
        tx_id("u", "koinly", k, o) for k, o in zip(keys, occ.tolist())
    ]
