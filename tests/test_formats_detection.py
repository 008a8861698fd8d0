"""Header versions, tolerant column matching, delimiter and encoding detection."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest

from ingest.extract.chunking import inspect_file, plan_chunks
from ingest.extract.formats import FORMATS, SOURCES, detect_format, formats_named
from ingest.extract.parse import FormatError, parse_bytes, parse_local_file

FIXTURES = Path(__file__).parent / "fixtures" / "formats"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


BINANCE_ROWS = [
    "12345678,2024-01-05 14:03:00,Spot,Deposit,BTC,1,",
    "12345678,2024-01-06 14:03:00,Spot,Withdraw,BTC,-0.25,",
]
BINANCE_HEADER = "User_ID,UTC_Time,Account,Operation,Coin,Change,Remark"


def binance_file(delimiter: str = ",", header: str = BINANCE_HEADER, newline: str = "\n") -> str:
    return (
        newline.join(
            [header.replace(",", delimiter)] + [r.replace(",", delimiter) for r in BINANCE_ROWS]
        )
        + newline
    )


def amounts(result) -> list[tuple[int, str, D | None, D | None]]:
    return [
        (r["source_line"], r["type"], r["sent_amount"], r["received_amount"])
        for r in result.table.to_pylist()
    ]


EXPECTED = [(2, "deposit", None, D(1)), (3, "withdrawal", D("0.25"), None)]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
@pytest.mark.parametrize("chunk_bytes", [None, 1])
def test_delimiter_is_detected(delimiter: str, chunk_bytes: int | None) -> None:
    result = parse_bytes(binance_file(delimiter).encode(), user_id="u", chunk_bytes=chunk_bytes)
    assert amounts(result) == EXPECTED and not result.rejected


@pytest.mark.parametrize(
    "encoding, bom",
    [
        ("utf-8", b""),
        ("utf-8", b"\xef\xbb\xbf"),
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("cp1252", b""),
    ],
)
def test_encodings(encoding: str, bom: bytes) -> None:
    text = binance_file(newline="\r\n").replace(
        "Spot,Withdraw,BTC,-0.25,", "Spot,Withdraw,BTC,-0.25,caf\u00e9 \u20ac"
    )
    data = bom + text.encode(encoding)
    layout = inspect_file(io.BytesIO(data), len(data))
    assert (layout.format, layout.encoding) == ("binance", encoding)
    result = parse_bytes(data, user_id="u", chunk_bytes=16)
    assert amounts(result) == EXPECTED and not result.rejected
    assert result.table.column("description").to_pylist()[1] == "caf\u00e9 \u20ac"


def test_windows_1252_is_decided_per_file_and_later_chunks_follow() -> None:
    # the head is plain ASCII (looks like UTF-8); a chunk far below holds a cp1252 euro sign
    rows = [f"12345678,2024-01-05 14:03:00,Spot,Deposit,BTC,{i + 1}," for i in range(3000)]
    rows.append("12345678,2024-01-06 14:03:00,Spot,Deposit,ETH,2,Paid \x80 5")
    data = (BINANCE_HEADER + "\n" + "\n".join(rows) + "\n").encode("latin-1")
    result = parse_bytes(data, user_id="u", chunk_bytes=4096)
    assert result.table.num_rows == 3001 and not result.rejected
    assert result.table.column("description").to_pylist()[-1] == "Paid \u20ac 5"
    assert result.table.column("source_line").to_pylist()[-1] == 3002


def test_utf16_is_one_range() -> None:
    data = b"\xff\xfe" + binance_file().encode("utf-16-le")
    layout = inspect_file(io.BytesIO(data), len(data))
    ranges = plan_chunks(io.BytesIO(data), layout, 8)
    assert [(r.start, r.end, r.first_line) for r in ranges] == [(layout.data_start, len(data), 2)]


def test_header_matching_ignores_case_blanks_bom_quotes_and_order() -> None:
    header = '\ufeff"utc_time" ; OPERATION;  Coin ;user_id;account;change ;remark'
    rows = [
        "2024-01-05 14:03:00;Deposit;BTC;12345678;Spot;1;",
        "2024-01-06 14:03:00;Withdraw;BTC;12345678;Spot;-0.25;",
    ]
    data = ("\n".join([header] + rows) + "\n").encode()
    assert amounts(parse_bytes(data, user_id="u")) == EXPECTED


def test_rows_without_trailing_optional_fields_are_padded() -> None:
    text = binance_file().replace("Spot,Deposit,BTC,1,", "Spot,Deposit,BTC,1")
    for chunk_bytes in (None, 1):
        result = parse_bytes(text.encode(), user_id="u", chunk_bytes=chunk_bytes)
        assert amounts(result) == EXPECTED and not result.rejected
    # a required field missing is still an error
    short = binance_file().replace("Spot,Deposit,BTC,1,", "Spot,Deposit,BTC")
    result = parse_bytes(short.encode(), user_id="u")
    assert [(r.line, r.reason) for r in result.rejected] == [
        (2, "wrong number of columns: expected 7, got 5")
    ]


def test_every_version_is_detected_from_its_own_header() -> None:
    for spec in FORMATS.values():
        header = [c.replace("{ccy}", "EUR").replace("{utc}", "UTC+08:00") for c in spec.columns]
        found = detect_format(header, formats_named(spec.source_name))
        assert found is not None and found.source_name == spec.source_name, spec.name
        assert detect_format(header) is not None


def test_registry_lists_sources_with_versions() -> None:
    assert {"koinly", "coinbase", "binance", "kraken"} <= set(SOURCES)
    assert all(s.source_name == source for source, specs in SOURCES.items() for s in specs)
    with pytest.raises(FormatError, match="unknown format 'ftx'"):
        formats_named("ftx")


def test_timestamps_stay_utc() -> None:
    result = parse_bytes(binance_file().encode(), user_id="u")
    assert result.table.column("timestamp")[0].as_py() == datetime(
        2024, 1, 5, 14, 3, tzinfo=timezone.utc
    )


def test_bybit_2024_spot_history_after_a_uid_line() -> None:
    result = parse_local_file(FIXTURES / "bybit_spot_trades_2024.csv", user_id="u", chunk_bytes=1)
    assert result.version == "bybit-spot-trades-2024" and not result.rejected
    assert [
        (r["source_line"], r["timestamp"], r["sent_asset"], r["sent_amount"])
        + (r["received_asset"], r["received_amount"], r["fee_asset"], r["fee_amount"])
        for r in result.table.to_pylist()
    ] == [
        # BUY 0.2 ETH at 3276: 655.2 USDT out, the fee in the ETH received
        (3, utc(2024, 11, 18, 9, 12, 44), "USDT", D("655.2"), "ETH", D("0.2"), "ETH", D("0.0002")),
        # SELL 0.1 ETH at 3391: 339.1 USDT in, the fee in the USDT received
        (4, utc(2024, 11, 20, 17, 3, 5), "ETH", D("0.1"), "USDT", D("339.1"), "USDT", D("0.3391")),
    ]


@pytest.mark.parametrize("chunk_bytes", [None, 1])
def test_binance_statement_excel_requoted_into_one_cell_per_line(chunk_bytes: int | None) -> None:
    result = parse_local_file(
        FIXTURES / "binance_requoted.csv", user_id="u", chunk_bytes=chunk_bytes
    )
    assert (result.version, result.rejected) == ("binance", [])
    assert [
        (r["source_line"], r["type"], r["sent_amount"], r["received_amount"], r["description"])
        for r in result.table.to_pylist()
    ] == [
        (2, "deposit", None, D("0.05"), None),
        (3, "withdrawal", D("0.01"), None, "to cold storage, ledger"),
    ]


def test_requoted_row_that_is_not_one_cell_is_read_as_it_is() -> None:
    data = (
        FIXTURES / "binance_requoted.csv"
    ).read_bytes() + b"39271122,2022-03-03 09:30:00,Spot,Deposit,ETH,1,\r\n"
    result = parse_bytes(data, user_id="u")
    assert [r["source_line"] for r in result.table.to_pylist()] == [2, 3, 4] and not result.rejected


UNKNOWN_LIMIT = 300  # characters: the message is one short line


def unknown(data: bytes, fmt: str | None = None) -> str:
    with pytest.raises(FormatError) as info:
        parse_bytes(data, user_id="u", fmt=fmt)
    message = str(info.value)
    assert "\n" not in message and len(message) <= UNKNOWN_LIMIT, message
    assert message.endswith("known headers: GET /v1/formats"), message
    return message


def test_unknown_header_message_is_one_short_line_naming_the_closest() -> None:
    assert unknown(b"Date,Amount,Asset,Kind\n2024-01-01,1,BTC,buy\n") == (
        'unrecognized file: no known header in the first 2 lines; closest: line 1 ("Date, '
        'Amount, Asset, Kind") lacks Koinly Date, Currency of koinly-simple; known headers: '
        "GET /v1/formats"
    )
    assert unknown(b"a,b,c\n1,2,3\n") == (
        "unrecognized file: no known header in the first 2 lines; known headers: GET /v1/formats"
    )
    assert "lacks Change of binance;" in unknown(
        b"User_ID,UTC_Time,Account,Operation,Coin,Remark\n"
    )
    assert unknown(b"txid,refid,time,type,asset,amount,fee\n", fmt="kraken") == (
        'no kraken header in the first 1 line; closest: line 1 ("txid, refid, time, type, '
        'asset, amount, fee") lacks subtype, aclass, balance of kraken; known headers: '
        "GET /v1/formats"
    )
    assert unknown(BINANCE_HEADER.encode() + b"\n", fmt="kraken") == (
        "no kraken header in the first 1 line; known headers: GET /v1/formats"
    )


def test_unknown_header_after_a_preamble_is_judged_on_the_line_that_resembles_one() -> None:
    data = (
        b"UID: 10293847,Exported 2024-11-21\n"
        b"Uid,Spot Pairs,Order Type,Direction,Filled Value,Filled Price,Filled Quantity,Fees,"
        b"Transaction ID,Order No.,Time (UTC+0)\n"
        b"10293847,ETHUSDT,LIMIT,BUY,655.2,3276,0.2,0.0002,1,2,2024-11-18 09:12:44\n"
    )
    message = unknown(data)
    assert 'closest: line 2 ("Uid, Spot Pairs, Order Type,' in message
    assert "lacks Timestamp (UTC+0) of bybit-spot-trades-2024;" in message
