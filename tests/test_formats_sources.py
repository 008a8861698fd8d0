"""The further sources of issue 13 (Bybit, OKX, KuCoin, Gemini, Bitstamp, Crypto.com App,
Bitvavo), each from a small hand-made fixture with hand-checked transactions (fixtures in
tests/fixtures/formats/)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

import pytest

from ingest.extract.formats.base import FormatError
from ingest.extract.formats.mapped import ColumnMapping
from tests.test_formats import rejected, rows
from tests.test_formats_variants import by_name


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_bybit_spot_trades_fee_in_the_asset_received() -> None:
    result = by_name("bybit_spot_trades")
    assert (result.format, result.version, result.rows) == ("bybit", "bybit-spot-trades", 4)
    b = "bybit"
    assert rows(result) == [
        # BUY: the fee is in the base received; time written '10:00 2024-09-01'
        (
            2,
            "trade",
            None,
            b,
            utc(2024, 9, 1, 10),
            "USDT",
            D("600"),
            "BTC",
            D("0.01"),
            "BTC",
            D("0.00001"),
            None,
            None,
            "2200000000000001",
        ),
        # SELL: base -> quote, the fee in the quote received
        (
            3,
            "trade",
            None,
            b,
            utc(2024, 9, 2, 11, 30),
            "ETH",
            D("0.2"),
            "BTC",
            D("0.01"),
            "BTC",
            D("0.00001"),
            None,
            None,
            "2200000000000002",
        ),
    ]
    assert rejected(result) == [
        (4, "side 'HOLD' is neither BUY nor SELL", False),
        (
            5,
            "non-numeric amount 'abc' in column Filled Value; missing amount or asset in column "
            "Filled Value",
            False,
        ),
    ]


def test_bybit_deposits_withdrawals() -> None:
    result = by_name("bybit_deposits")
    assert result.version == "bybit-deposits-withdrawals"
    b = "bybit"
    assert rows(result)[:2] == [
        (
            2,
            "deposit",
            None,
            b,
            utc(2024, 9, 1, 8),
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
        (
            3,
            "withdrawal",
            None,
            b,
            utc(2024, 9, 5, 9),
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
    ]
    assert rows(result)[2:] == [
        (
            6,
            "income",
            "airdrop",
            b,
            utc(2024, 9, 8, 9),
            None,
            None,
            "MNT",
            D("25"),
            None,
            None,
            None,
            None,
            None,
        ),
        # a card purchase: the fiat paid is not in the file, the coins are valued at market
        (
            7,
            "buy",
            "card",
            b,
            utc(2024, 9, 9, 9),
            None,
            None,
            "USDT",
            D("50"),
            None,
            None,
            None,
            None,
            None,
        ),
    ]
    assert rejected(result) == [
        (4, "skipped: move between the user's own Bybit accounts (no disposal)", True),
        (5, "unknown description 'Mystery Box' in column Description", False),
    ]


OKX_INTERNAL = "skipped: move between the user's own OKX accounts (no disposal)"


def test_okx_trades_pair_the_two_rows_of_one_id() -> None:
    result = by_name("okx_trades")  # with a UTF-8 BOM before "id"
    assert (result.format, result.version, result.rows) == ("okx", "okx-trades", 6)
    o = "okx"
    assert rows(result) == [
        (
            2,
            "trade",
            None,
            o,
            utc(2024, 3, 1, 10),
            "USDT",
            D("600"),
            "BTC",
            D("0.01"),
            "BTC",
            D("0.00001"),
            None,
            None,
            "5001",
        ),
        # the Buy leg of id 5002 comes three lines later: paired by id, not by position
        (
            4,
            "trade",
            None,
            o,
            utc(2024, 3, 2, 10),
            "ETH",
            D("0.5"),
            "USDT",
            D("1500"),
            "USDT",
            D("1.5"),
            None,
            None,
            "5002",
        ),
    ]
    assert rejected(result) == [
        (5, OKX_INTERNAL, True),
        (6, "trade type 'Perpetual' is not supported (spot only)", False),
    ]


def test_okx_funding() -> None:
    result = by_name("okx_funding")
    assert result.version == "okx-funding"
    o = "okx"
    assert rows(result)[:-1] == [
        (
            2,
            "deposit",
            None,
            o,
            utc(2024, 3, 1, 8),
            None,
            None,
            "USDT",
            D("1000"),
            None,
            None,
            None,
            None,
            "7001",
        ),
        # Before 1 - After 0.8 = |Amount|: the 0.2 that left already holds the 0.001 fee
        (
            3,
            "withdrawal",
            None,
            o,
            utc(2024, 3, 5, 8),
            "ETH",
            D("0.199"),
            None,
            None,
            "ETH",
            D("0.001"),
            None,
            None,
            "7002",
        ),
        (
            4,
            "income",
            "staking",
            o,
            utc(2024, 3, 6, 8),
            None,
            None,
            "DOT",
            D("0.05"),
            None,
            None,
            None,
            None,
            "7003",
        ),
        (
            6,
            "income",
            "reward",
            o,
            utc(2024, 3, 8, 8),
            None,
            None,
            "USDT",
            D("1.5"),
            None,
            None,
            None,
            None,
            "7005",
        ),
    ]
    assert rows(result)[-1] == (
        # 0.8 - 0.699 = |Amount| + Fee: the fee is charged on top of the 0.1 sent
        8,
        "withdrawal",
        None,
        o,
        utc(2024, 3, 10, 8),
        "ETH",
        D("0.1"),
        None,
        None,
        "ETH",
        D("0.001"),
        None,
        None,
        "7007",
    )
    assert rejected(result) == [
        (5, OKX_INTERNAL, True),
        (7, "unknown type 'Lucky draw' in column Type", False),
        (
            9,
            "After Balance - Before Balance does not match Amount and Fee (0.699 0.5 -0.1): not "
            "a movement as read",
            False,
        ),
    ]


def test_kucoin_trades_zone_from_the_column_name() -> None:
    result = by_name("kucoin_trades")
    assert (result.format, result.version, result.rows) == ("kucoin", "kucoin-trades", 3)
    k = "kucoin"
    assert rows(result) == [
        # Filled Time(UTC+08:00) 18:00 is 10:00 UTC
        (
            2,
            "trade",
            None,
            k,
            utc(2024, 5, 1, 10),
            "USDT",
            D("600"),
            "BTC",
            D("0.01"),
            "USDT",
            D("0.6"),
            None,
            None,
            "64a1",
        ),
        (
            3,
            "trade",
            None,
            k,
            utc(2024, 5, 2, 0, 30),
            "ETH",
            D("0.2"),
            "BTC",
            D("0.01"),
            "BTC",
            D("0.00001"),
            None,
            None,
            "64a2",
        ),
    ]
    assert rejected(result) == [(4, "missing amount or asset in column Filled Amount", False)]


def test_kucoin_deposits_and_earn_income() -> None:
    deposits = by_name("kucoin_deposits")
    assert deposits.version == "kucoin-deposits"
    assert rows(deposits) == [
        (
            2,
            "deposit",
            None,
            "kucoin",
            utc(2024, 5, 1, 1),
            None,
            None,
            "USDT",
            D("1000"),
            None,
            None,
            None,
            None,
            None,
        )
    ]
    assert deposits.table.column("tx_hash").to_pylist() == ["0xdep1"]
    assert rejected(deposits) == [
        (3, "skipped: status 'PROCESSING' is not a completed transfer", True)
    ]
    earn = by_name("kucoin_earn")  # Time(UTC)
    assert earn.version == "kucoin-earn"
    assert rows(earn) == [
        (
            2,
            "income",
            "staking",
            "kucoin",
            utc(2024, 5, 4),
            None,
            None,
            "ATOM",
            D("0.12"),
            None,
            None,
            None,
            None,
            "e1",
        )
    ]
    assert rejected(earn) == [(3, "a positive Amount is expected for a profit, got '-0.1'", False)]


def test_gemini_columns_per_asset() -> None:
    result = by_name("gemini")
    assert (result.format, result.version, result.rows) == ("gemini", "gemini", 7)
    g = "gemini"
    assert rows(result) == [
        # "($600.00)" and "($2.10)": money in parentheses; the fee from the quote's Fee column
        (
            3,
            "buy",
            None,
            g,
            datetime(2024, 2, 2, 10, 15, 30, 250000, tzinfo=timezone.utc),
            "USD",
            D("600"),
            "BTC",
            D("0.01"),
            "USD",
            D("2.1"),
            None,
            None,
            "t-1",
        ),
        (
            4,
            "trade",
            None,
            g,
            utc(2024, 2, 3, 11),
            "ETH",
            D("1"),
            "BTC",
            D("0.05"),
            "BTC",
            D("0.00001"),
            None,
            None,
            "t-2",
        ),
        (
            5,
            "income",
            "interest",
            g,
            utc(2024, 2, 4, 12),
            None,
            None,
            "ETH",
            D("0.002"),
            None,
            None,
            None,
            None,
            None,
        ),
        (
            6,
            "withdrawal",
            None,
            g,
            utc(2024, 2, 5, 13),
            "BTC",
            D("0.02"),
            None,
            None,
            "BTC",
            D("0.0001"),
            None,
            None,
            None,
        ),
    ]
    assert result.table.column("tx_hash").to_pylist()[3] == "0xhash"
    assert rejected(result) == [
        (2, "skipped: fiat deposit is not a crypto movement (no tax effect)", True),
        (7, "unknown type 'Trade Bonus' in column Type", False),
        (8, "skipped: totals row (no Date)", True),
    ]


def test_bitstamp_rfc4180_export() -> None:
    result = by_name("bitstamp")
    assert (result.format, result.version, result.rows) == ("bitstamp", "bitstamp", 7)
    b = "bitstamp"
    assert rows(result) == [
        (
            3,
            "buy",
            None,
            b,
            utc(2024, 4, 2, 9),
            "EUR",
            D("600"),
            "BTC",
            D("0.01"),
            "EUR",
            D("1.2"),
            None,
            None,
            "102",
        ),
        (
            4,
            "sell",
            None,
            b,
            utc(2024, 4, 3, 9),
            "ETH",
            D("0.5"),
            "EUR",
            D("1500"),
            "EUR",
            D("3"),
            None,
            None,
            "103",
        ),
        (
            5,
            "income",
            "staking",
            b,
            utc(2024, 4, 4, 9),
            None,
            None,
            "ETH",
            D("0.01"),
            None,
            None,
            None,
            None,
            "104",
        ),
        (
            6,
            "withdrawal",
            None,
            b,
            utc(2024, 4, 5, 9),
            "BTC",
            D("0.005"),
            None,
            None,
            "BTC",
            D("0.0001"),
            None,
            None,
            "105",
        ),
    ]
    assert rejected(result) == [
        (2, "skipped: fiat deposit is not a crypto movement (no tax effect)", True),
        (7, "skipped: move between the user's own Bitstamp accounts", True),
        (8, "subtype 'Swap' of a Market row is neither Buy nor Sell", False),
    ]


def test_bitstamp_2019_units_in_cells_and_us_dates() -> None:
    result = by_name("bitstamp_2019")
    assert result.version == "bitstamp-2019"
    b = "bitstamp"
    assert rows(result) == [
        (
            2,
            "buy",
            None,
            b,
            utc(2019, 1, 5, 14, 3),
            "USD",
            D("1800"),
            "BTC",
            D("0.5"),
            "USD",
            D("4.5"),
            None,
            None,
            None,
        ),
        (
            3,
            "deposit",
            None,
            b,
            utc(2019, 5, 6, 9, 15),
            None,
            None,
            "ETH",
            D("1"),
            None,
            None,
            None,
            None,
            None,
        ),
    ]
    assert rejected(result) == [(4, "bad date 'Feb. 30, 2019, 10:00 AM' in column Datetime", False)]


def test_cryptocom_app() -> None:
    result = by_name("cryptocom")
    assert (result.format, result.version, result.rows) == ("cryptocom", "cryptocom", 9)
    c = "cryptocom"
    assert rows(result) == [
        # crypto_purchase: the Native Amount was paid
        (
            2,
            "buy",
            None,
            c,
            utc(2024, 6, 1, 10),
            "EUR",
            D("600"),
            "BTC",
            D("0.01"),
            None,
            None,
            D("600"),
            "EUR",
            None,
        ),
        (
            3,
            "trade",
            None,
            c,
            utc(2024, 6, 2, 10),
            "BTC",
            D("0.005"),
            "ETH",
            D("0.1"),
            None,
            None,
            D("300"),
            "EUR",
            None,
        ),
        (
            4,
            "income",
            "interest",
            c,
            utc(2024, 6, 3, 10),
            None,
            None,
            "ETH",
            D("0.001"),
            None,
            None,
            D("3"),
            "EUR",
            None,
        ),
        (
            6,
            "withdrawal",
            None,
            c,
            utc(2024, 6, 5, 10),
            "ETH",
            D("0.02"),
            None,
            None,
            None,
            None,
            D("60"),
            "EUR",
            None,
        ),
        # the debited and credited rows of one dust conversion are one trade, valued at the
        # debited row's Native Amount
        (
            7,
            "trade",
            "dust",
            c,
            utc(2024, 6, 6, 10),
            "DOGE",
            D("100"),
            "CRO",
            D("60"),
            None,
            None,
            D("6"),
            "EUR",
            None,
        ),
        (
            9,
            "income",
            "reward",
            c,
            utc(2024, 6, 7, 10),
            None,
            None,
            "CRO",
            D("2"),
            None,
            None,
            D("0.2"),
            "EUR",
            None,
        ),
    ]
    assert result.table.column("tx_hash").to_pylist()[3] == "0xabc"
    assert rejected(result) == [
        (
            5,
            "skipped: crypto_earn_program_created is a move within the user's own Crypto.com "
            "account (no disposal)",
            True,
        ),
        (10, "unknown transaction kind 'mystery_kind' in column Transaction Kind", False),
    ]


def test_bitvavo_zone_per_row() -> None:
    result = by_name("bitvavo")
    assert (result.format, result.version, result.rows) == ("bitvavo", "bitvavo", 6)
    b = "bitvavo"
    assert rows(result) == [
        # 12:00 in Europe/Amsterdam (CEST) is 10:00 UTC
        (
            3,
            "buy",
            None,
            b,
            utc(2024, 7, 2, 10),
            "EUR",
            D("300"),
            "BTC",
            D("0.005"),
            "EUR",
            D("0.75"),
            None,
            None,
            "b-1",
        ),
        (
            4,
            "income",
            "staking",
            b,
            utc(2024, 7, 3, 10),
            None,
            None,
            "ETH",
            D("0.001"),
            None,
            None,
            None,
            None,
            "s-1",
        ),
        (
            5,
            "sell",
            None,
            b,
            utc(2024, 7, 4, 12),
            "BTC",
            D("0.002"),
            "EUR",
            D("122"),
            "EUR",
            D("0.31"),
            None,
            None,
            "b-2",
        ),
    ]
    assert rejected(result) == [
        (2, "skipped: fiat deposit is not a crypto movement (no tax effect)", True),
        (6, "skipped: status 'Canceled' is not a completed transaction", True),
        (7, "unknown time zone 'Mars/Olympus' in column Timezone", False),
    ]


def test_bitvavo_2023_currency_in_column_names() -> None:
    result = by_name("bitvavo_2023")
    assert result.version == "bitvavo-2023"
    assert rows(result) == [
        (
            2,
            "buy",
            None,
            "bitvavo",
            utc(2023, 1, 10, 8, 30),
            "EUR",
            D("650"),
            "ETH",
            D("0.5"),
            "EUR",
            D("1.63"),
            None,
            None,
            "x-1",
        ),
        # a fiat reward is income (kept, see formats.base.skip_fiat_only)
        (
            3,
            "income",
            "reward",
            "bitvavo",
            utc(2023, 1, 11, 8, 30),
            None,
            None,
            "EUR",
            D("1"),
            None,
            None,
            None,
            None,
            "x-2",
        ),
    ]


MAPPING = ColumnMapping(
    timestamp="When",
    type="Kind",
    sent_amount="Out",
    sent_asset="Out Coin",
    received_amount="In",
    received_asset="In Coin",
    fee_amount="Fee",
    fee_asset="Fee Coin",
    tx_hash="Hash",
    description="Notes",
    timestamp_format="%d/%m/%Y %H:%M",
)


def test_mapped_csv_reads_the_users_columns() -> None:
    result = by_name("mapped", fmt="mapped", mapping=MAPPING)  # ;-separated, day-first dates
    assert (result.format, result.version, result.rows) == ("mapped", "mapped", 5)
    m = "mapped"
    assert rows(result) == [
        (
            2,
            "buy",
            "buy",
            m,
            utc(2024, 1, 5, 14, 3),
            "EUR",
            D("1000"),
            "BTC",
            D("0.025"),
            "EUR",
            D("2.5"),
            None,
            None,
            None,
        ),
        # the type names a reward: income
        (
            3,
            "income",
            "staking",
            m,
            utc(2024, 1, 6, 10),
            None,
            None,
            "ETH",
            D("0.01"),
            None,
            None,
            None,
            None,
            None,
        ),
        (
            4,
            "withdrawal",
            None,
            m,
            utc(2024, 1, 7, 9),
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
    ]
    assert result.table.column("tx_hash").to_pylist() == [None, "0xst", "0xw"]
    assert result.table.column("description").to_pylist()[0] == "first buy"
    # reasons name the user's columns
    assert rejected(result) == [
        (5, "bad date '30/02/2024 09:00' in column When", False),
        (6, "non-numeric amount 'abc' in column Out", False),
    ]


def test_mapped_csv_needs_a_mapping_that_fits() -> None:
    with pytest.raises(FormatError, match="PUT /v1/formats/mapping"):
        by_name("mapped", fmt="mapped")
    other = ColumnMapping(timestamp="Date", received_amount="In", received_asset="In Coin")
    with pytest.raises(FormatError, match="lacks Date of mapped"):
        by_name("mapped", fmt="mapped", mapping=other)
    # without fmt=mapped the file is not detected as anything
    with pytest.raises(FormatError, match="unrecognized file"):
        by_name("mapped")


def test_mapping_validation_and_round_trip() -> None:
    assert MAPPING.errors() == []
    assert ColumnMapping.from_json(MAPPING.to_json()) == MAPPING
    assert ColumnMapping(timestamp="T", sent_amount="A").errors() == [
        "sent_amount and sent_asset go together: name both columns or neither"
    ]
    assert ColumnMapping(timestamp="T", fee_amount="F", fee_asset="G").errors() == [
        "name at least the sent or the received amount and asset columns"
    ]
    assert ColumnMapping(timestamp="T", received_amount="A", received_asset="a ").errors() == [
        "each column can hold one field; named twice: A, a "
    ]
    no_fields = ColumnMapping(
        timestamp="T", received_amount="A", received_asset="B", timestamp_format="dd/mm"
    )
    assert "has no strptime field" in no_fields.errors()[0]


@pytest.mark.parametrize("fmt", ["%Q%Y", "%Y", "%H:%M", "%Y-%m-%d %H:%M:%S.%f"])
def test_a_mapping_whose_timestamp_format_cannot_read_a_sample_is_invalid(fmt: str) -> None:
    mapping = ColumnMapping(
        timestamp="T", received_amount="A", received_asset="B", timestamp_format=fmt
    )
    assert any(fmt in error for error in mapping.errors()), mapping.errors()


@pytest.mark.parametrize(
    "fmt", ["%d/%m/%Y %H:%M", "%m/%d/%Y", "%b %d, %Y, %I:%M %p", "%d.%m.%Y %H:%M:%S", "%y-%m-%d"]
)
def test_a_mapping_whose_timestamp_format_reads_a_sample_back_is_valid(fmt: str) -> None:
    mapping = ColumnMapping(
        timestamp="T", received_amount="A", received_asset="B", timestamp_format=fmt
    )
    assert mapping.errors() == []
