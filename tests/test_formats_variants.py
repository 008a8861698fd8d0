"""Every header version and row kind of issue 13, each from a small hand-made fixture with
hand-checked transactions (fixtures in tests/fixtures/formats/)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

import pytest

from tests.test_formats import rejected, rows

CB_INTERNAL = "skipped: {} is a move within the user's own Coinbase account (no disposal)"
SAME_ETH = "skipped: ETH on both sides: a rename or migration of one asset, no disposal"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def by_name(name: str, **kw: object):
    fixture = name if "." in name else f"{name}.csv"
    from tests.test_formats import CANONICAL_SCHEMA, FIXTURES, parse_local_file

    result = parse_local_file(FIXTURES / fixture, user_id="user-1", **kw)
    assert result.table.schema == CANONICAL_SCHEMA
    return result


def test_coinbase_2023_windows_1252_and_row_kinds() -> None:
    result = by_name("coinbase_2023_cp1252")
    assert (result.format, result.version, result.rows) == ("coinbase", "coinbase-2023", 13)
    c = "coinbase"
    assert rows(result) == [
        # "Advance Trade Buy" (sic); EUR values written with a cp1252 euro sign (byte 0x80)
        (
            4,
            "buy",
            None,
            c,
            utc(2023, 1, 5, 14, 3),
            "EUR",
            D("200"),
            "BTC",
            D("0.01"),
            "EUR",
            D("1.5"),
            D("200"),
            "EUR",
            None,
        ),
        # Convert with a blank Fees column: the spread Total - Subtotal = 20 of 1300 is
        # 1 x 20/1300 ETH, charged in ETH (no fiat moves)
        (
            8,
            "trade",
            None,
            c,
            utc(2023, 1, 9, 10),
            "ETH",
            D("0.984615384615384615"),
            "USDC",
            D("1280"),
            "ETH",
            D("0.015384615384615385"),
            D("1280"),
            "EUR",
            None,
        ),
        (
            13,
            "deposit",
            None,
            c,
            utc(2023, 1, 13, 10),
            None,
            None,
            "ETH",
            D("0.2"),
            None,
            None,
            D("280"),
            "EUR",
            None,
        ),
        # Wrap Asset ETH2 -> cbETH: ETH2 is ETH; cbETH a token of its own
        (
            14,
            "trade",
            None,
            c,
            utc(2023, 1, 14, 10),
            "ETH",
            D("0.3"),
            "CBETH",
            D("0.29"),
            None,
            None,
            D("450"),
            "EUR",
            None,
        ),
        # 0.0000000000000000015 has 19 decimals: rounded half-even to 18
        (
            15,
            "income",
            "staking",
            c,
            utc(2023, 1, 15, 10),
            None,
            None,
            "ETH",
            D("0.000000000000000002"),
            None,
            None,
            D("0"),
            "EUR",
            None,
        ),
        (
            16,
            "sell",
            None,
            c,
            utc(2023, 1, 16, 10),
            "BTC",
            D("0.005"),
            "EUR",
            D("105"),
            "EUR",
            D("1"),
            D("105"),
            "EUR",
            None,
        ),
    ]
    descriptions = result.table.column("description").to_pylist()
    assert descriptions[0] == "Bought 0.01 BTC for \u20ac 201.50"
    assert descriptions[4] == (
        "Caf\u00e9 reward [amount '0.0000000000000000015' in column Quantity "
        "Transacted rounded to 18 decimals]"
    )
    assert rejected(result) == [
        (5, CB_INTERNAL.format("Retail Staking Transfer"), True),
        (6, CB_INTERNAL.format("Retail Unstaking Transfer"), True),
        (7, SAME_ETH, True),  # Convert ETH -> ETH2: a rename, not a taxable trade
        (9, "skipped: fiat-for-fiat exchange is not a crypto movement (no tax effect)", True),
        (10, CB_INTERNAL.format("Retail Eth2 Deprecation"), True),
        (11, SAME_ETH, True),
        (12, SAME_ETH, True),  # ETH2 Send + ETH Receive: one migration
    ]


def test_coinbase_2020_currency_in_column_names() -> None:
    result = by_name("coinbase_2020")
    assert result.version == "coinbase-2020"
    c = "coinbase"
    assert rows(result) == [
        (
            2,
            "buy",
            None,
            c,
            utc(2020, 3, 1, 9),
            "EUR",
            D("150"),
            "BTC",
            D("0.02"),
            "EUR",
            D("2.99"),
            D("150"),
            "EUR",
            None,
        ),
        (
            3,
            "sell",
            None,
            c,
            utc(2020, 3, 2, 9),
            "BTC",
            D("0.01"),
            "EUR",
            D("76"),
            "EUR",
            D("1.14"),
            D("76"),
            "EUR",
            None,
        ),
        (
            4,
            "income",
            "reward",
            c,
            utc(2020, 3, 3, 9),
            None,
            None,
            "XLM",
            D("10"),
            None,
            None,
            D("0.5"),
            "EUR",
            None,
        ),
    ]


def test_coinbase_2017_us_dates() -> None:
    result = by_name("coinbase_2017")
    assert result.version == "coinbase-2017"
    c = "coinbase"
    assert rows(result) == [
        (
            2,
            "buy",
            None,
            c,
            utc(2017, 12, 8, 11, 50, 44),
            "USD",
            D("1500"),
            "BTC",
            D("0.1"),
            "USD",
            D("59.7"),
            D("1500"),
            "USD",
            None,
        ),
        (
            3,
            "withdrawal",
            None,
            c,
            utc(2018, 1, 5, 9, 5),
            "BTC",
            D("0.05"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ),
    ]


def test_koinly_template_tsv_with_tag() -> None:
    result = by_name("koinly_template.tsv")
    assert result.version == "koinly-template"
    k = "koinly"
    assert rows(result) == [
        (
            2,
            "buy",
            None,
            k,
            utc(2024, 2, 1, 10),
            "USD",
            D("500"),
            "BTC",
            D("0.01"),
            "USD",
            D("1"),
            None,
            None,
            None,
        ),
        # a negative sent amount, and "0" with a blank currency as the received side
        (
            3,
            "withdrawal",
            None,
            k,
            utc(2024, 2, 2, 10),
            "BTC",
            D("0.002"),
            None,
            None,
            "BTC",
            D("0.0001"),
            None,
            None,
            None,
        ),
        (
            4,
            "income",
            "reward",
            k,
            utc(2024, 2, 3, 10),
            None,
            None,
            "KOINLY-4521",
            D("25"),
            None,
            None,
            None,
            None,
            None,
        ),  # "ID:4521"
        (
            5,
            "income",
            "staking",
            k,
            utc(2024, 2, 4, 10),
            None,
            None,
            "USDC",
            D("3"),
            None,
            None,
            None,
            None,
            None,
        ),  # "USDC:0xa0b8..."
    ]
    assert not result.rejected


def test_koinly_simple_and_trades_templates() -> None:
    simple = by_name("koinly_simple")
    k = "koinly"
    assert simple.version == "koinly-simple" and rows(simple) == [
        (
            2,
            "deposit",
            None,
            k,
            utc(2024, 3, 1, 8),
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
            3,
            "spend",
            "gift",
            k,
            utc(2024, 3, 2, 8),
            "ETH",
            D("0.1"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ),
        (
            4,
            "income",
            "staking",
            k,
            utc(2024, 3, 3, 8),
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
    ]
    trades = by_name("koinly_trades")
    assert trades.version == "koinly-trades" and rows(trades) == [
        (
            2,
            "buy",
            None,
            k,
            utc(2024, 4, 1, 12),
            "USD",
            D("1200"),
            "BTC",
            D("0.02"),
            "USD",
            D("1.2"),
            None,
            None,
            None,
        ),
        (
            3,
            "trade",
            None,
            k,
            utc(2024, 4, 2, 12),
            "ETH",
            D("0.5"),
            "BTC",
            D("0.025"),
            "BTC",
            D("0.00001"),
            None,
            None,
            None,
        ),
    ]


def test_koinly_own_export_transfer_is_two_transactions() -> None:
    result = by_name("koinly_export")
    assert result.version == "koinly-export"
    assert rows(result) == [
        (
            2,
            "buy",
            None,
            "Kraken",
            utc(2024, 5, 1, 9),
            "GBP",
            D("1000"),
            "BTC",
            D("0.05"),
            "GBP",
            D("2"),
            D("1000"),
            "GBP",
            None,
        ),
        # transfer: out of Kraken, into Ledger (the 0.0001 difference is the transfer fee)
        (
            3,
            "withdrawal",
            None,
            "Kraken",
            utc(2024, 5, 2, 9),
            "BTC",
            D("0.05"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ),
        (
            3,
            "deposit",
            None,
            "Ledger",
            utc(2024, 5, 2, 9),
            None,
            None,
            "BTC",
            D("0.0499"),
            None,
            None,
            None,
            None,
            None,
        ),
        (
            4,
            "income",
            "interest",
            "Ledger",
            utc(2024, 5, 3, 9),
            None,
            None,
            "BTC",
            D("0.001"),
            None,
            None,
            D("20"),
            "GBP",
            None,
        ),  # loan_interest
    ]
    assert len(set(result.table.column("tx_id").to_pylist())) == 4


@pytest.mark.parametrize("chunk_bytes", [None, 1])
def test_binance_legs_paired_by_assets_not_line_order(chunk_bytes: int | None) -> None:
    result = by_name("binance_pairs", chunk_bytes=chunk_bytes)
    b = "binance"
    assert rows(result) == [
        # Buy/Spend legs and Sold/Revenue legs of one second are two trades; each fee goes to the
        # trade that received its asset. Rows without the trailing Remark field are read.
        (
            2,
            "trade",
            None,
            b,
            utc(2024, 6, 1, 10),
            "USDT",
            D("700"),
            "BTC",
            D("0.01"),
            "BTC",
            D("0.00001"),
            None,
            None,
            None,
        ),
        (
            3,
            "trade",
            None,
            b,
            utc(2024, 6, 1, 10),
            "ETH",
            D("0.5"),
            "USDT",
            D("1800"),
            "USDT",
            D("1.8"),
            None,
            None,
            None,
        ),
        (
            8,
            "income",
            "reward",
            b,
            utc(2024, 6, 2, 10),
            None,
            None,
            "USDT",
            D("2"),
            None,
            None,
            None,
            None,
            None,
        ),  # Mission Reward Distribution
        (
            9,
            "income",
            "income",
            b,
            utc(2024, 6, 3, 10),
            None,
            None,
            "USDT",
            D("15.5"),
            None,
            None,
            None,
            None,
            None,
        ),  # Realized Profit and Loss
        (
            10,
            "fee",
            "Funding Fee",
            b,
            utc(2024, 6, 4, 10),
            "USDT",
            D("0.25"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ),
        # a one-leg Buy Crypto (card purchase): the acquisition is kept
        (
            11,
            "buy",
            "card",
            b,
            utc(2024, 6, 5, 10),
            None,
            None,
            "SOL",
            D("3"),
            None,
            None,
            None,
            None,
            None,
        ),
    ]
    ambiguous = (
        "ambiguous trade: USDC, USDT sent and BTC, ETH received in one second cannot be "
        "paired without their pairs (export the spot trade history for these trades)"
    )
    assert rejected(result) == [(line, ambiguous, False) for line in (12, 13, 14, 15)]


def test_binance_2025_transaction_history() -> None:
    result = by_name("binance_2025")
    b = "binance"
    assert result.version == "binance-2025" and rows(result) == [
        (
            2,
            "deposit",
            None,
            b,
            utc(2025, 1, 2, 3, 4, 5),
            None,
            None,
            "ETH",
            D("1.5"),
            None,
            None,
            None,
            None,
            None,
        ),
        (
            3,
            "income",
            "interest",
            b,
            utc(2025, 1, 3, 3, 4, 5),
            None,
            None,
            "USDC",
            D("0.01"),
            None,
            None,
            None,
            None,
            None,
        ),
    ]


def test_binance_trade_histories() -> None:
    b = "binance"
    spot = by_name("binance_spot_trades")
    assert spot.version == "binance-spot-trades" and rows(spot) == [
        (
            2,
            "trade",
            None,
            b,
            utc(2024, 7, 1, 10),
            "USDT",
            D("600"),
            "BTC",
            D("0.01"),
            "BTC",
            D("0.00001"),
            None,
            None,
            None,
        ),
        (
            3,
            "trade",
            None,
            b,
            utc(2024, 7, 1, 10),
            "DOGE",
            D("1000.5"),
            "USDT",
            D("1.5"),
            "USDT",
            D("0.0015"),
            None,
            None,
            None,
        ),
        (
            4,
            "trade",
            None,
            b,
            utc(2024, 7, 2, 11),
            "BNB",
            D("0.5"),
            "SOL",
            D("2"),
            "BNB",
            D("0.0005"),
            None,
            None,
            None,
        ),
    ]
    old = by_name("binance_trades_2019")  # ;-separated, decimal commas
    assert old.version == "binance-trades-2019" and rows(old) == [
        (
            2,
            "trade",
            None,
            b,
            utc(2019, 3, 1, 10),
            "BTC",
            D("0.035"),
            "BNB",
            D("10"),
            "BNB",
            D("0.0075"),
            None,
            None,
            None,
        ),
        (
            3,
            "trade",
            None,
            b,
            utc(2019, 3, 2, 10),
            "ETH",
            D("2"),
            "USDT",
            D("271"),
            "USDT",
            D("0.271"),
            None,
            None,
            None,
        ),
    ]


def test_binance_order_history_with_nested_fills() -> None:
    result = by_name("binance_orders")
    b = "binance"
    assert result.version == "binance-orders" and rows(result) == [
        (
            2,
            "trade",
            None,
            b,
            utc(2024, 8, 1, 10),
            "USDT",
            D("1200"),
            "BTC",
            D("0.02"),
            None,
            None,
            None,
            None,
            "111",
        ),
        (
            4,
            "fee",
            "trading fee",
            b,
            utc(2024, 8, 1, 10, 0, 1),
            "BTC",
            D("0.000015"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ),
        (
            5,
            "fee",
            "trading fee",
            b,
            utc(2024, 8, 1, 10, 0, 5),
            "BTC",
            D("0.000005"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
        ),
    ]
    assert rejected(result) == [
        (3, "skipped: header of an order's fills", True),
        (6, "skipped: order not filled (status CANCELED)", True),
    ]


def test_kraken_trades_csv() -> None:
    result = by_name("kraken_trades")
    k = "kraken"
    assert result.version == "kraken-trades" and rows(result) == [
        (
            2,
            "buy",
            None,
            k,
            utc(2024, 9, 1, 10, 0, 0, 123400),
            "USD",
            D("600"),
            "BTC",
            D("0.01"),
            "USD",
            D("0.96"),
            None,
            None,
            "TAAAAA-AAAAA-AAAAAA",
        ),  # XXBTZUSD
        (
            3,
            "sell",
            None,
            k,
            utc(2024, 9, 2, 10),
            "DOT",
            D("10"),
            "EUR",
            D("50"),
            "EUR",
            D("0.13"),
            None,
            None,
            "TBBBBB-BBBBB-BBBBBB",
        ),
        (
            4,
            "trade",
            None,
            k,
            utc(2024, 9, 3, 10),
            "BTC",
            D("0.01"),
            "ETH",
            D("0.2"),
            "BTC",
            D("0.000026"),
            None,
            None,
            "TCCCCC-CCCCC-CCCCCC",
        ),
    ]


def test_kraken_fiat_reward_is_income() -> None:
    result = by_name("kraken_fiat_income")
    k = "kraken"
    assert rows(result) == [
        (
            2,
            "income",
            "staking",
            k,
            utc(2024, 10, 1),
            None,
            None,
            "EUR",
            D("0.42"),
            None,
            None,
            None,
            None,
            "RAAAAA-AAAAA-AAAAAA",
        ),  # EUR interest: income, not "no tax effect"
        (
            3,
            "income",
            "staking",
            k,
            utc(2024, 10, 2),
            None,
            None,
            "DOT",
            D("0.5"),
            None,
            None,
            None,
            None,
            "RBBBBB-BBBBB-BBBBBB",
        ),  # DOT.S -> DOT
    ]
    assert not result.rejected


@pytest.mark.parametrize(
    "name",
    ["coinbase_2023_cp1252", "koinly_export", "binance_pairs", "binance_orders", "kraken_trades"],
)
def test_variants_survive_any_chunking(name: str) -> None:
    assert rows(by_name(name, chunk_bytes=1)) == rows(by_name(name))
