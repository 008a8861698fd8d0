"""The OKX/OKEx, KuCoin and Bybit layouts of issue 22, each read end to end through the parser
from a hand-made fixture shaped like the real export (tests/fixtures/formats/): amounts, fees,
assets, timestamps and types hand-checked against the rows' own arithmetic."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

import pytest

from ingest.extract.parse import parse_bytes
from tests.test_formats import rejected, rows
from tests.test_formats_variants import by_name

OKX_INTERNAL = "skipped: move between the user's own OKX accounts (no disposal)"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_okx_trades_2025_combine_the_fills_of_an_order_and_check_balance_change() -> None:
    result = by_name("okx_trades_2025")  # after a 'UID:...,Time Zone:UTC+0' preamble line
    assert (result.format, result.version, result.rows) == ("okx", "okx-trades-2025", 12)
    o = "okx"
    assert rows(result) == [
        # Buy 0.05 BTC (Balance Change 0.04995 = 0.05 - 0.00005 fee) for 4500 EUR = 0.05 x 90000
        (
            3,
            "buy",
            None,
            o,
            utc(2025, 3, 1, 10),
            "EUR",
            D("4500"),
            "BTC",
            D("0.05"),
            "BTC",
            D("0.00005"),
            None,
            None,
            "9001",
        ),
        # two fills of one order (1000 ADA at 0.5, 2000 at 0.501): 3000 ADA -> 1502 EUR, fee
        # 1.25 + 2.505 EUR
        (
            5,
            "sell",
            None,
            o,
            utc(2025, 3, 2, 11),
            "ADA",
            D("3000"),
            "EUR",
            D("1502"),
            "EUR",
            D("3.755"),
            None,
            None,
            "9002",
        ),
        # a maker rebate (Fee +0.0001 ETH, Balance Change 0.1001) is part of what was received
        (
            11,
            "trade",
            None,
            o,
            utc(2025, 3, 5, 12),
            "USDT",
            D("300"),
            "ETH",
            D("0.1001"),
            None,
            None,
            None,
            None,
            "9005",
        ),
    ]
    assert result.table.column("description").to_pylist()[2] == (
        "[maker rebate '0.00010000' added to the amount]"
    )
    assert rejected(result) == [
        (9, OKX_INTERNAL, True),
        (10, "trade type 'Swap' is not supported (spot only)", False),
        # Balance Change 2 is not 2 - 0.002: the row does not say what the mapping reads
        (
            13,
            "Balance Change does not equal Amount + Fee (2.00000000 vs 2.00000000 vs "
            "-0.00200000): not a spot fill as read",
            False,
        ),
        (14, "incomplete trade: no received side among the rows of this transaction", False),
    ]


def test_okx_trades_2023_reads_amount_in_the_balance_unit() -> None:
    result = by_name("okx_trades_2023")
    assert (result.format, result.version, result.rows) == ("okx", "okx-trades-2023", 3)
    assert rows(result) == [
        (
            2,
            "trade",
            None,
            "okx",
            utc(2023, 11, 22, 22, 25, 56),
            "BTC",
            D("0.05"),
            "USDT",
            D("1890"),
            "USDT",
            D("1.89"),
            None,
            None,
            "8001",
        )
    ]
    assert rejected(result) == [(4, OKX_INTERNAL, True)]


def test_okx_funding_2025_without_fee_column() -> None:
    result = by_name("okx_funding_2025")
    assert (result.format, result.version, result.rows) == ("okx", "okx-funding-2025", 4)
    o = "okx"
    assert rows(result) == [
        (
            3,
            "deposit",
            None,
            o,
            utc(2025, 10, 31, 11, 54, 20),
            None,
            None,
            "BTC",
            D("0.0001"),
            None,
            None,
            None,
            None,
            "301",
        ),
        # the whole balance left: Before 0.01157863 - After 0
        (
            4,
            "withdrawal",
            None,
            o,
            utc(2025, 10, 31, 11, 55, 15),
            "BTC",
            D("0.01157863"),
            None,
            None,
            None,
            None,
            None,
            None,
            "302",
        ),
    ]
    assert rejected(result) == [
        (5, OKX_INTERNAL, True),
        (6, "unknown type 'Received' in column Type", False),
    ]


def test_okex_2020_pairs_buy_and_sell_rows_of_one_time() -> None:
    result = by_name("okex_2020")
    assert (result.format, result.version, result.rows) == ("okx", "okex-2020", 5)
    o = "okx"
    assert rows(result) == [
        (
            2,
            "trade",
            None,
            o,
            utc(2020, 1, 11, 14, 51, 28),
            "USDT",
            D("80.5"),
            "BTC",
            D("0.01"),
            "BTC",
            D("0.00001"),
            None,
            None,
            None,
        ),
        # 09:00 CST (China Standard Time, +08:00) is 01:00 UTC; the sell row comes first here
        (
            4,
            "trade",
            None,
            o,
            utc(2020, 2, 3, 1),
            "ETH",
            D("1"),
            "USDT",
            D("180"),
            "USDT",
            D("0.18"),
            None,
            None,
            None,
        ),
    ]
    assert rejected(result) == [
        (6, "type 'transfer' is not supported (buy and sell rows only)", False)
    ]


def test_kucoin_orders_2024_counts_what_filled_and_checks_price_times_amount() -> None:
    result = by_name("kucoin_orders_2024")
    assert (result.format, result.version, result.rows) == ("kucoin", "kucoin-orders-2024", 5)
    k = "kucoin"
    assert rows(result) == [
        # Filled Time(UTC): 42000 x 0.5 = 21000 USDT -> 0.5 BTC, fee 21 USDT
        (
            2,
            "trade",
            None,
            k,
            utc(2024, 1, 15, 10),
            "USDT",
            D("21000"),
            "BTC",
            D("0.5"),
            "USDT",
            D("21"),
            None,
            None,
            "6601a1",
        ),
        # cancelled after 1.2 of 2 ETH filled: the filled part is a trade
        (
            4,
            "trade",
            None,
            k,
            utc(2024, 2, 1, 8, 30),
            "ETH",
            D("1.2"),
            "USDT",
            D("3000.6"),
            "USDT",
            D("3.0006"),
            None,
            None,
            "6601a3",
        ),
    ]
    assert rejected(result) == [
        (3, "skipped: order 'cancel' filled nothing", True),
        (
            5,
            "Avg. Filled Price x Filled Amount does not match Filled Volume (200 vs 300): not a "
            "trade row as read",
            False,
        ),
        (6, "Tax '0.01' is not supported: the export does not say its currency", False),
    ]


def test_kucoin_fills_api_style_trade_history() -> None:
    result = by_name("kucoin_fills")
    assert (result.format, result.version, result.rows) == ("kucoin", "kucoin-fills", 4)
    k = "kucoin"
    assert rows(result) == [
        # sell: 0.1025 x 36.4479 = 3.73590975 USDT received, fee in USDT
        (
            2,
            "trade",
            None,
            k,
            utc(2022, 4, 28, 12, 36),
            "XTZ",
            D("36.4479"),
            "USDT",
            D("3.73590975"),
            "USDT",
            D("0.00373590975"),
            None,
            None,
            "1001",
        ),
        (
            3,
            "trade",
            None,
            k,
            utc(2022, 4, 28, 15, 46, 7),
            "USDT",
            D("280.8559209946952"),
            "XRP",
            D("432.59183198"),
            "USDT",
            D("0.2808559209946952"),
            None,
            None,
            "1002",
        ),
        # the fee in the base bought (feeCurrency KCS)
        (
            4,
            "trade",
            None,
            k,
            utc(2022, 4, 29, 10),
            "BTC",
            D("0.003"),
            "KCS",
            D("10"),
            "KCS",
            D("0.01"),
            None,
            None,
            "1003",
        ),
    ]
    assert rejected(result) == [(5, "side 'HOLD' is neither BUY nor SELL", False)]


def test_bybit_pre_uta_spot_trades_read_the_units_in_the_cells() -> None:
    result = by_name("bybit_spot_trades_pre_uta")
    assert (result.format, result.version, result.rows) == (
        "bybit",
        "bybit-spot-trades-pre-uta",
        5,
    )
    b = "bybit"
    assert rows(result) == [
        # Sell 1121.34 NEIRO x 0.0889 = 99.687126 USDT, the fee in USDT (its cell says so);
        # Timestamp (UTC), not the local time two hours later
        (
            2,
            "trade",
            None,
            b,
            utc(2024, 9, 27, 21, 52, 4),
            "NEIRO",
            D("1121.34"),
            "USDT",
            D("99.687126"),
            "USDT",
            D("0.199374252"),
            None,
            None,
            "67006201",
        ),
        (
            3,
            "trade",
            None,
            b,
            utc(2024, 9, 27, 21, 2, 35),
            "USDT",
            D("99.99951"),
            "NEIRO",
            D("1123.59"),
            "NEIRO",
            D("2.24718"),
            None,
            None,
            "67006202",
        ),
        (
            4,
            "trade",
            None,
            b,
            utc(2024, 10, 1, 8, 15),
            "USDT",
            D("100"),
            "RENDER",
            D("16.35"),
            "RENDER",
            D("0.01635"),
            None,
            None,
            "67006203",
        ),
    ]
    assert rejected(result) == [
        (5, "the unit of '16.35 USDT' in column Filled Quantity is not the pair's", False),
        (
            6,
            "Filled Price x Filled Quantity does not match Filled Value (99.99987 vs 120): not a "
            "trade row as read",
            False,
        ),
    ]


def test_bybit_transaction_log_combines_the_two_rows_of_a_spot_fill() -> None:
    result = by_name("bybit_transaction_log")  # after a 'UID: ...' preamble line
    assert (result.format, result.version, result.rows) == ("bybit", "bybit-transaction-log", 9)
    b = "bybit"
    assert rows(result) == [
        # BTC row: +0.00009, Change 0.000089775 = 0.00009 - 0.000000225 fee; EUR row: -4.839777
        (
            4,
            "buy",
            None,
            b,
            utc(2024, 6, 5, 8, 19, 22),
            "EUR",
            D("4.839777"),
            "BTC",
            D("0.00009"),
            "BTC",
            D("0.000000225"),
            None,
            None,
            None,
        ),
        # the fee on the EUR received: 1.07573 - 1.073040675
        (
            6,
            "sell",
            None,
            b,
            utc(2024, 6, 5, 8, 21, 2),
            "BTC",
            D("0.00002"),
            "EUR",
            D("1.07573"),
            "EUR",
            D("0.002689325"),
            None,
            None,
            None,
        ),
    ]
    assert rejected(result) == [
        (3, "skipped: move between the user's own Bybit accounts (no disposal)", True),
        (
            8,
            "a derivatives trade of 'XAUTUSDT' (Quantity is not the Cash Flow) is not supported",
            False,
        ),
        (9, "type 'SETTLEMENT' is not supported (spot trades and transfers only)", False),
        # a fee of 0.00001 ETH that Change does not show: the row does not add up
        (
            10,
            "Change is not Cash Flow + Funding + Fee Paid (0.01000000000000000000 vs "
            "0.01000000000000000000 vs -0.00001000000000000000): not a spot fill as read",
            False,
        ),
        (11, "incomplete trade: no received side among the rows of this transaction", False),
    ]


@pytest.mark.parametrize(
    "name", ["okx_trades_2025", "okx_trades_2023", "okex_2020", "bybit_transaction_log"]
)
def test_rows_of_one_trade_in_different_chunks_still_combine(name: str) -> None:
    """The rows of a fill meet in finalize whichever chunk they were read in."""
    whole, split = by_name(name), by_name(name, chunk_bytes=64)
    assert rows(split) == rows(whole)
    assert rejected(split) == rejected(whole)


def test_okx_trades_maker_rebate_is_received_not_charged() -> None:
    """A positive Fee is a rebate (OKX's sign convention): before, its absolute value was
    charged as a fee, so the wallet lost what it had gained."""
    data = (
        b"id,Order id,Time,Trade Type,Instrument,Type,Amount,Unit,PL,Fee,Position Change,"
        b"Position Balance,Balance Change,Balance,Unit\n"
        b"6001,9101,2024-04-01 10:00:00,Spot,BTC-USDT,Buy,0.01,BTC,,0.000002,,,0.010002,"
        b"0.010002,BTC\n"
        b"6001,9101,2024-04-01 10:00:00,Spot,BTC-USDT,Sell,-600,USDT,,0,,,-600,0,USDT\n"
    )
    result = parse_bytes(data, user_id="user-1")
    assert result.version == "okx-trades"
    assert rows(result) == [
        (
            2,
            "trade",
            None,
            "okx",
            utc(2024, 4, 1, 10),
            "USDT",
            D("600"),
            "BTC",
            D("0.010002"),
            None,
            None,
            None,
            None,
            "6001",
        )
    ]
    assert rejected(result) == []


def test_okx_time_is_local_to_the_zone_its_preamble_states() -> None:
    """'Time Zone:UTC+8' on the line before the header: 07:00 on New Year's day is 23:00 UTC of
    the year before (a tax year apart); `tz` does not apply to a file that states its zone."""
    body = (
        "id,Time,Type,Amount,Before Balance,After Balance,Symbol\n"
        "401,2025-01-01 07:00:00,Deposit,1,0,1,ETH\n"
    )
    for preamble, tz, expected in (
        ("UID:1,Account Type:Main,Time Zone:UTC+8\n", None, utc(2024, 12, 31, 23)),
        (
            "\ufeffUID:1,\ufeffAccount Type:Main,\ufeffTime Zone:UTC+8\n",
            "Europe/Berlin",
            utc(2024, 12, 31, 23),
        ),
        ("UID:1,Account Type:Main,Time Zone:UTC-3:30\n", None, utc(2025, 1, 1, 10, 30)),
        ("", "Asia/Tokyo", utc(2024, 12, 31, 22)),  # no preamble: zone-less, `tz` applies
    ):
        result = parse_bytes((preamble + body).encode(), user_id="user-1", tz=tz)
        assert result.version == "okx-funding-2025"
        assert result.table.column("timestamp").to_pylist() == [expected], preamble
