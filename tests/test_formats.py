"""Each format's hand-checked fixture parses to exactly the expected canonical rows."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D
from pathlib import Path

import pyarrow as pa
import pytest

from ingest.extract.chunking import inspect_file
from ingest.extract.parse import FormatError, ParseResult, parse_bytes, parse_local_file
from ingest.normalize.assets import normalize_symbol
from ingest.normalize.canonical import CANONICAL_SCHEMA

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
FIELDS = (
    "source_line",
    "type",
    "label",
    "wallet",
    "timestamp",
    "sent_asset",
    "sent_amount",
    "received_asset",
    "received_amount",
    "fee_asset",
    "fee_amount",
    "fiat_value",
    "fiat_currency",
    "external_id",
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def parse(name: str, **kw: object) -> ParseResult:
    result = parse_local_file(FIXTURES / f"{name}.csv", user_id="user-1", **kw)
    assert result.table.schema == CANONICAL_SCHEMA
    return result


def rows(result: ParseResult) -> list[tuple]:
    return [tuple(r[f] for f in FIELDS) for r in result.table.to_pylist()]


def rejected(result: ParseResult) -> list[tuple[int, str, bool]]:
    return [(r.line, r.reason, r.skipped) for r in result.rejected]


FIAT_SKIP = "skipped: fiat deposit is not a crypto movement (no tax effect)"


def test_koinly_fixture() -> None:
    result = parse("koinly")
    assert result.format == "koinly" and result.rows == 11
    k = "koinly"
    assert rows(result) == [
        (
            2,
            "buy",
            None,
            k,
            utc(2024, 1, 5, 14, 3),
            "USD",
            D("1000"),
            "BTC",
            D("0.025"),
            "USD",
            D("2.5"),
            None,
            None,
            None,
        ),
        (
            3,
            "trade",
            None,
            "Ledger",
            utc(2024, 1, 6, 10),
            "BTC",
            D("0.01"),
            "ETH",
            D("0.2"),
            "ETH",
            D("0.0001"),
            D("420.5"),
            "USD",
            None,
        ),
        (
            4,
            "income",
            "staking",
            k,
            utc(2024, 1, 7, 9, 30),
            None,
            None,
            "ETH",
            D("0.00123"),
            None,
            None,
            D("2.83"),
            "USD",
            None,
        ),
        (
            5,
            "sell",
            None,
            k,
            utc(2024, 1, 8, 10),
            "BTC",
            D("0.005"),
            "EUR",
            D("210"),
            None,
            None,
            None,
            None,
            None,
        ),  # +02:00 -> 10:00 UTC
        (
            6,
            "deposit",
            None,
            k,
            utc(2024, 1, 9, 8),
            None,
            None,
            "ETH",
            D("0.5"),
            None,
            None,
            None,
            None,
            None,
        ),
        (
            7,
            "withdrawal",
            None,
            k,
            utc(2024, 1, 10, 8),
            "ETH",
            D("0.1"),
            None,
            None,
            "ETH",
            D("0.001"),
            None,
            None,
            None,
        ),
        (
            8,
            "spend",
            "gift",
            k,
            utc(2024, 1, 11, 8),
            "ETH",
            D("0.01"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ),
        (
            10,
            "fee",
            None,
            k,
            utc(2024, 1, 12, 8),
            "ETH",
            D("0.0005"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ),
        (
            12,
            "income",
            "airdrop",
            k,
            utc(2024, 1, 14, 8),
            None,
            None,
            "DOT",
            D("5"),
            None,
            None,
            D("30"),
            "USD",
            None,
        ),
        (
            13,
            "fee",
            "cost",
            k,
            utc(2024, 1, 15, 8),
            "BTC",
            D("0.0001"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ),
    ]
    table = result.table.to_pylist()
    assert (
        table[4]["description"] == 'From my "cold" wallet, with a comma'
        and table[4]["tx_hash"] == "0xabc"
    )
    assert (
        table[6]["description"] == "Birthday\npresent"
    )  # quoted newline: the row starts at line 8
    assert rejected(result) == [(11, FIAT_SKIP, True)]
    assert {r["source"] for r in table} == {"koinly"}
    assert {r["user_id"] for r in table} == {"user-1"}


def test_coinbase_fixture_skips_preamble() -> None:
    result = parse("coinbase")
    assert result.format == "coinbase" and result.rows == 10
    c = "coinbase"
    assert rows(result) == [
        (
            5,
            "buy",
            None,
            c,
            utc(2024, 1, 5, 14, 3),
            "USD",
            D("1050"),
            "BTC",
            D("0.025"),
            "USD",
            D("10"),
            D("1050"),
            "USD",
            "65a1b2c3d4e5f60718293a4b",
        ),
        (
            6,
            "sell",
            None,
            c,
            utc(2024, 1, 6, 10),
            "BTC",
            D("0.01"),
            "USD",
            D("430"),
            "USD",
            D("5"),
            D("430"),
            "USD",
            "65a1b2c3d4e5f60718293a4c",
        ),
        # Convert: no fiat moves; the $10 spread of the $1160 total is 10/1160 of the 0.5 ETH
        (
            7,
            "trade",
            None,
            c,
            utc(2024, 1, 7, 11),
            "ETH",
            D("0.495689655172413793"),
            "USDC",
            D("1149.5"),
            "ETH",
            D("0.004310344827586207"),
            D("1150"),
            "USD",
            "65a1b2c3d4e5f60718293a4d",
        ),
        (
            8,
            "withdrawal",
            None,
            c,
            utc(2024, 1, 8, 12),
            "ETH",
            D("0.1"),
            None,
            None,
            None,
            None,
            D("231"),
            "USD",
            "65a1b2c3d4e5f60718293a4e",
        ),
        (
            9,
            "deposit",
            None,
            c,
            utc(2024, 1, 9, 13),
            None,
            None,
            "SOL",
            D("2"),
            None,
            None,
            D("200"),
            "USD",
            "65a1b2c3d4e5f60718293a4f",
        ),
        (
            10,
            "income",
            "staking",
            c,
            utc(2024, 1, 10, 14),
            None,
            None,
            "ETH",
            D("0.0004"),
            None,
            None,
            D("0.93"),
            "USD",
            "65a1b2c3d4e5f60718293a50",
        ),
        (
            12,
            "trade",
            None,
            c,
            utc(2024, 1, 12, 16),
            "USDC",
            D("460"),
            "ETH",
            D("0.2"),
            "USDC",
            D("0.46"),
            None,
            None,
            "65a1b2c3d4e5f60718293a52",
        ),  # quote in crypto: no fiat value stated
        (
            13,
            "income",
            "reward",
            c,
            utc(2024, 1, 13, 17),
            None,
            None,
            "GRT",
            D("10"),
            None,
            None,
            D("2"),
            "USD",
            "65a1b2c3d4e5f60718293a53",
        ),
    ]
    assert rejected(result) == [
        (11, FIAT_SKIP, True),
        (14, "unknown transaction type 'Mystery' in column Transaction Type", False),
    ]


def test_binance_fixture_combines_trade_rows() -> None:
    result = parse("binance")
    assert result.format == "binance" and result.rows == 18
    b = "binance"
    assert rows(result) == [
        (
            2,
            "deposit",
            None,
            b,
            utc(2024, 1, 5, 14, 3),
            None,
            None,
            "USDT",
            D("1000"),
            None,
            None,
            None,
            None,
            None,
        ),
        # Transaction Spend / Buy / Fee at one instant: one trade, fee in BNB
        (
            3,
            "trade",
            None,
            b,
            utc(2024, 1, 5, 15),
            "USDT",
            D("420.5"),
            "BTC",
            D("0.01"),
            "BNB",
            D("0.001"),
            None,
            None,
            None,
        ),
        (
            6,
            "income",
            "interest",
            b,
            utc(2024, 1, 6),
            None,
            None,
            "USDT",
            D("0.05"),
            None,
            None,
            None,
            None,
            None,
        ),
        (
            7,
            "income",
            "staking",
            b,
            utc(2024, 1, 6, 1),
            None,
            None,
            "ETH",
            D("0.0001"),
            None,
            None,
            None,
            None,
            None,
        ),
        # dust conversion of two coins: one trade per coin, paired in line order
        (
            9,
            "trade",
            "dust",
            b,
            utc(2024, 1, 7, 3),
            "DOGE",
            D("10"),
            "BNB",
            D("0.002"),
            None,
            None,
            None,
            None,
            None,
        ),
        (
            11,
            "trade",
            "dust",
            b,
            utc(2024, 1, 7, 3),
            "XRP",
            D("3"),
            "BNB",
            D("0.003"),
            None,
            None,
            None,
            None,
            None,
        ),
        (
            13,
            "withdrawal",
            None,
            b,
            utc(2024, 1, 8, 4),
            "BTC",
            D("0.005"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ),
        (
            15,
            "income",
            "airdrop",
            b,
            utc(2024, 1, 8, 6),
            None,
            None,
            "BTC",
            D("0.0001"),
            None,
            None,
            None,
            None,
            None,
        ),  # LDBTC -> BTC
        (
            17,
            "trade",
            None,
            b,
            utc(2024, 1, 10, 8),
            "ETH",
            D("0.1"),
            "USDT",
            D("230"),
            "USDT",
            D("0.23"),
            None,
            None,
            None,
        ),  # two-digit year
    ]
    assert rejected(result) == [
        (8, "skipped: move between the user's own Binance accounts (no disposal)", True),
        (14, "unknown operation 'Foo' in column Operation", False),
        (
            16,
            "incomplete trade: no sent and received sides among the rows of this transaction",
            False,
        ),
    ]


def test_kraken_fixture_combines_refid_rows() -> None:
    result = parse("kraken")
    assert result.format == "kraken" and result.rows == 15
    k = "kraken"
    assert rows(result) == [
        (
            4,
            "deposit",
            None,
            k,
            utc(2024, 1, 5, 14, 12),
            None,
            None,
            "BTC",
            D("0.05"),
            None,
            None,
            None,
            None,
            "QBBBBB-BBBBB-BBBBBB",
        ),
        # two ledger rows, one refid: one buy, the fee on the USD row
        (
            5,
            "buy",
            None,
            k,
            utc(2024, 1, 6, 9),
            "USD",
            D("500"),
            "ETH",
            D("0.21"),
            "USD",
            D("1.3"),
            None,
            None,
            "TCCCCC-CCCCC-CCCCCC",
        ),
        (
            7,
            "income",
            "staking",
            k,
            utc(2024, 1, 7),
            None,
            None,
            "ETH",
            D("0.0001"),
            None,
            None,
            None,
            None,
            "SDDDDD-DDDDD-DDDDDD",
        ),  # ETH2.S -> ETH
        (
            10,
            "trade",
            None,
            k,
            utc(2024, 1, 8, 10),
            "BTC",
            D("0.01"),
            "ETH",
            D("0.19"),
            "ETH",
            D("0.0002"),
            None,
            None,
            "TGGGGG-GGGGG-GGGGGG",
        ),
        (
            12,
            "withdrawal",
            None,
            k,
            utc(2024, 1, 9, 11),
            "ETH",
            D("0.05"),
            None,
            None,
            "ETH",
            D("0.001"),
            None,
            None,
            "AHHHHH-HHHHH-HHHHHH",
        ),
        (
            15,
            "buy",
            None,
            k,
            utc(2024, 1, 11, 12, 0, 0, 500000),
            "USD",
            D("100"),
            "DOT",
            D("14"),
            None,
            None,
            None,
            None,
            "TKKKKK-KKKKK-KKKKKK",
        ),  # spend/receive pair
    ]
    internal = "skipped: move between the user's own Kraken balances (not taxable)"
    assert rejected(result) == [
        (2, FIAT_SKIP, True),
        (3, "skipped: row without txid (unconfirmed duplicate of a ledger entry)", True),
        (8, internal, True),
        (9, internal, True),
        (13, "margin trading is not supported (type 'margin')", False),
        (14, "incomplete trade: no received side among the rows of this transaction", False),
    ]


@pytest.mark.parametrize("name", ["koinly", "coinbase", "binance", "kraken"])
def test_every_line_is_accounted_for(name: str) -> None:
    """Each data row either starts a transaction's rows or is reported: nothing vanishes."""
    result = parse(name, chunk_bytes=64)  # many chunks: groups meet again in finalize
    assert rows(result) == rows(parse(name))
    lines = set(result.table.column("source_line").to_pylist()) | {r.line for r in result.rejected}
    assert len(result.rejected) + result.table.num_rows <= result.rows
    assert min(lines) >= 2


def test_kraken_trade_split_over_chunks_is_one_trade() -> None:
    data = (FIXTURES / "kraken.csv").read_bytes()
    result = parse_bytes(data, user_id="u", chunk_bytes=1)  # every row its own chunk
    trades = [r for r in result.table.to_pylist() if r["external_id"] == "TGGGGG-GGGGG-GGGGGG"]
    assert (
        len(trades) == 1
        and trades[0]["sent_asset"] == "BTC"
        and trades[0]["received_asset"] == "ETH"
    )


def test_explicit_format_overrides_detection_and_wallet_parameter() -> None:
    result = parse("binance", fmt="binance", wallet="my-binance")
    assert set(result.table.column("wallet").to_pylist()) == {"my-binance"}
    koinly = parse("koinly", wallet="exchange")  # the Wallet column still wins where set
    assert koinly.table.column("wallet").to_pylist()[:2] == ["exchange", "Ledger"]
    with pytest.raises(FormatError, match="no kraken header in the first"):
        parse("binance", fmt="kraken")
    with pytest.raises(FormatError, match="unknown format 'ftx'"):
        parse("binance", fmt="ftx")


def test_local_time_zone_option() -> None:
    # binance-2025's "Time" is zone-less (the zone picked when the statement was made)
    data = b"User ID,Time,Account,Operation,Coin,Change,Remark\n1,24-07-01 12:00:00,Spot,Deposit,BTC,1,\n"
    assert parse_bytes(data, user_id="u").table.column("timestamp")[0].as_py() == utc(
        2024, 7, 1, 12
    )
    berlin = parse_bytes(data, user_id="u", tz="Europe/Berlin")  # CEST = UTC+2
    assert berlin.table.column("timestamp")[0].as_py() == utc(2024, 7, 1, 10)
    # UTC_Time is UTC by its name: tz does not move it
    utc_time = b"User_ID,UTC_Time,Account,Operation,Coin,Change,Remark\n1,2024-07-01 12:00:00,Spot,Deposit,BTC,1,\n"
    in_berlin = parse_bytes(utc_time, user_id="u", tz="Europe/Berlin")
    assert in_berlin.table.column("timestamp")[0].as_py() == utc(2024, 7, 1, 12)
    with pytest.raises(ValueError, match="unknown time zone"):
        parse_bytes(data, user_id="u", tz="Mars/Olympus")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"\n\n  \n", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary data"),
        (b"\xff\xfeD\x00a\x00", "unrecognized file"),  # UTF-16 is read, but no header
        (
            b"a,b,c\n1,2,3\n",
            "unrecognized file: no known header in the first 2 lines; known headers: GET /v1/formats",
        ),
        (
            b"User_ID,UTC_Time,Account,Operation,Coin,Remark\n",
            "lacks Change of binance; known headers: GET /v1/formats",
        ),
    ],
)
def test_file_level_errors(content: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message.replace("(", r"\(")):
        parse_bytes(content, user_id="u")


def test_header_only_and_bom() -> None:
    header = (FIXTURES / "binance.csv").read_bytes().split(b"\n")[0]
    assert parse_bytes(header, user_id="u").table.num_rows == 0
    result = parse_bytes(
        b"\xef\xbb\xbf" + header + b"\r\n1,2024-01-01 00:00:00,Spot,Deposit,BTC,1,\r\n", user_id="u"
    )
    assert result.table.column("source_line").to_pylist() == [2]
    assert result.table.column("received_amount").to_pylist() == [D(1)]


def test_detection_reads_only_the_head() -> None:
    import io

    data = (FIXTURES / "coinbase.csv").read_bytes()
    layout = inspect_file(io.BytesIO(data), len(data))
    assert (layout.format, layout.first_data_line) == ("coinbase", 5)
    assert data[layout.data_start :].startswith(b"65a1b2c3d4e5f60718293a4b")


@pytest.mark.parametrize(
    "code, symbol",
    [
        ("XXBT", "BTC"),
        ("XBT", "BTC"),
        ("XBT.M", "BTC"),
        ("XETH", "ETH"),
        ("ETH2.S", "ETH"),
        ("ETH2", "ETH"),
        ("ZUSD", "USD"),
        ("ZEUR", "EUR"),
        ("XXDG", "DOGE"),
        ("DOT28.S", "DOT"),
        ("DOT.S", "DOT"),
        ("USD.HOLD", "USD"),
        ("API3.S", "API3"),
        ("XRP", "XRP"),
        ("XTZ", "XTZ"),
        ("xtz.s", "XTZ"),
        (" btc ", "BTC"),
    ],
)
def test_symbol_normalization(code: str, symbol: str) -> None:
    assert normalize_symbol(code, "kraken") == symbol


def test_binance_symbol_quirks() -> None:
    assert normalize_symbol("LDUSDT", "binance") == "USDT"
    assert normalize_symbol("LDO", "binance") == "LDO"  # Lido, not an LD receipt
    assert normalize_symbol("BCC", "binance") == "BCH"
    assert normalize_symbol("BCC", "kraken") == "BCC"


def test_amounts_are_exact_decimals() -> None:
    data = (
        b"Date,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,Fee Currency,"
        b"Net Worth Amount,Net Worth Currency,Label,Description,TxHash\n"
        b"2024-01-01 00:00:00 UTC,,,0.123456789012345678,ETH,,,,,,,\n"
        b"2024-01-01 00:00:00 UTC,,,12345678901234567890.5,SHIB,,,,,,,\n"
        b"2024-01-01 00:00:00 UTC,,,1E-8,BTC,,,,,,,\n"
        b"2024-01-01 00:00:00 UTC,,,0.1234567890123456789,ETH,,,,,,,\n"
        b"2024-01-01 00:00:00 UTC,,,123456789012345678901,ETH,,,,,,,\n"
    )
    result = parse_bytes(data, user_id="u")
    # more than 18 decimals: rounded to the storage scale (half even), and the row says so
    assert result.table.column("received_amount").to_pylist() == [
        D("0.123456789012345678"),
        D("12345678901234567890.5"),
        D("0.00000001"),
        D("0.123456789012345679"),
    ]
    assert result.table.column("description").to_pylist()[3] == (
        "[amount '0.1234567890123456789' in column Received Amount rounded to 18 decimals]"
    )
    assert result.table.column("received_amount").type == pa.decimal128(38, 18)
    assert [(r.line, r.reason) for r in result.rejected] == [
        (
            6,
            "amount '123456789012345678901' in column Received Amount is out of range "
            "(at most 20 integer digits)",
        )
    ]


def test_a_row_of_binary_junk_is_one_rejected_row_not_a_refused_file(tmp_path) -> None:
    from devtools.generate import generate
    from ingest.extract.binary import not_text_reason

    path = tmp_path / "koinly.csv"
    stats = generate(20_000, "koinly", seed=3, out=path, years=1.0)
    lines = path.read_bytes().split(b"\n")
    junk_line = 12_345  # 1-based file line (line 1 is the header)
    lines[junk_line - 1] = b"\x00\x00\x07\xff\x00PK\x03\x04\x00binary\x00junk\x00,\x00"
    data = b"\n".join(lines)
    assert not_text_reason(data[: 64 * 1024]) is None
    result = parse_bytes(data, user_id="u")
    assert [(r.line, r.reason) for r in result.errors] == [
        (junk_line, "the row contains NUL bytes (binary data, not text)")
    ]
    assert result.table.num_rows == sum(stats.by_type.values()) - 1
    # UTF-16 without its BOM and binary files stay refused as a whole; with a BOM it is text
    # (transcoded, see ingest/extract/encoding.py).
    text = path.read_text()
    for whole in (text.encode("utf-16-le"), b"PK\x03\x04" + b"\x00" * 64):
        assert not_text_reason(whole[: 64 * 1024]) is not None
    assert not_text_reason(text.encode("utf-16")[: 64 * 1024]) is None
