"""Valuation: the rules (pure), then the whole chain against the simulator process: prices joined
equal the simulator's series exactly, and "no price" is told apart from "unavailable"."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from devtools.pricesim import paths
from ingest.normalize.canonical import (
    AMOUNT,
    CANONICAL_SCHEMA,
    TIMESTAMP,
    VALUED_SCHEMA,
)
from ingest.prices.cache_store import PRICES_SCHEMA, load_prices, read_coverage
from ingest.prices.valuation import needs_range, price_needs, value_transactions

Q = Decimal("1e-18")
T = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)


def tx_table(rows: list[dict]) -> pa.Table:
    full = []
    for i, row in enumerate(rows):
        base = {f.name: None for f in CANONICAL_SCHEMA}
        base.update(
            tx_id=f"t{i}",
            user_id="u",
            wallet="w",
            timestamp=T,
            source="test",
            source_file="f.csv",
            source_line=i + 1,
        )
        base.update(row)
        full.append(base)
    return pa.Table.from_pylist(full, schema=CANONICAL_SCHEMA)


def price_table(points: list[tuple[str, datetime, str, str]]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"asset": a, "ts": t, "price": Decimal(p), "granularity": g} for a, t, p, g in points],
        schema=PRICES_SCHEMA,
    )


def D(x: str) -> Decimal:
    return Decimal(x)


def valued(rows, prices=None, **kw) -> list[dict]:
    return value_transactions(tx_table(rows), prices, **kw).to_pylist()


HOURLY = price_table(
    [("BTC", T - timedelta(hours=h), str(60000 + h), "hour") for h in range(4)]
    + [("ETH", T - timedelta(hours=1), "3000.5", "hour"), ("ADA", T.replace(hour=0), "0.75", "day")]
)


def test_output_has_the_valued_schema():
    out = value_transactions(
        tx_table([{"type": "buy", "received_asset": "BTC", "received_amount": D("1")}]), HOURLY
    )
    assert out.schema.equals(VALUED_SCHEMA, check_metadata=False)


def test_side_in_reporting_currency_gives_the_value():
    buy, sell, cash = valued(
        [
            {
                "type": "buy",
                "sent_asset": "USD",
                "sent_amount": D("150"),
                "received_asset": "BTC",
                "received_amount": D("0.003"),
            },
            {
                "type": "sell",
                "sent_asset": "ETH",
                "sent_amount": D("2"),
                "received_asset": "USD",
                "received_amount": D("6000.10"),
            },
            {"type": "deposit", "received_asset": "USD", "received_amount": D("50")},
        ],
        HOURLY,
    )
    assert (buy["value"], buy["price"], buy["price_asset"], buy["price_source"]) == (
        D("150"),
        D("50000"),
        "BTC",
        "fiat",
    )
    assert (sell["value"], sell["price"], sell["price_source"]) == (
        D("6000.10"),
        D("3000.05"),
        "fiat",
    )
    assert (cash["value"], cash["price"], cash["price_asset"]) == (D("50"), D("1"), "USD")
    assert {r["price_status"] for r in (buy, sell, cash)} == {"ok"}


def test_file_value_wins_over_prices_only_in_the_reporting_currency():
    usd, eur = valued(
        [
            {
                "type": "income",
                "received_asset": "BTC",
                "received_amount": D("0.5"),
                "fiat_value": D("1234.5"),
                "fiat_currency": "USD",
            },
            {
                "type": "income",
                "received_asset": "BTC",
                "received_amount": D("0.5"),
                "fiat_value": D("999"),
                "fiat_currency": "EUR",
            },
        ],
        HOURLY,
    )
    assert (usd["value"], usd["price"], usd["price_source"]) == (D("1234.5"), D("2469"), "file")
    assert (eur["value"], eur["price"], eur["price_source"]) == (D("30000"), D("60000"), "hour")


def test_value_asset_is_sent_for_disposals_and_received_otherwise():
    trade, income, sell_eur, buy_eur = valued(
        [
            {
                "type": "trade",
                "sent_asset": "BTC",
                "sent_amount": D("1"),
                "received_asset": "ETH",
                "received_amount": D("20"),
            },
            {"type": "income", "received_asset": "ETH", "received_amount": D("2")},
            {
                "type": "sell",
                "sent_asset": "ETH",
                "sent_amount": D("1"),
                "received_asset": "EUR",
                "received_amount": D("2700"),
            },
            {
                "type": "buy",
                "sent_asset": "EUR",
                "sent_amount": D("2700"),
                "received_asset": "eth",
                "received_amount": D("1"),
            },
        ],
        HOURLY,
    )
    assert (trade["price_asset"], trade["value"]) == ("BTC", D("60000"))
    assert (income["price_asset"], income["value"]) == ("ETH", D("6001.0"))
    assert (sell_eur["price_asset"], sell_eur["value"]) == ("ETH", D("3000.5"))
    assert (buy_eur["price_asset"], buy_eur["value"]) == ("eth", D("3000.5"))


def test_a_stablecoin_side_values_a_trade_before_the_other_side():
    sell_for_usdt, buy_with_usdc = valued(
        [
            {
                "type": "trade",
                "sent_asset": "BTC",
                "sent_amount": D("0.01"),
                "received_asset": "USDT",
                "received_amount": D("821"),
            },
            {
                "type": "trade",
                "sent_asset": "usdc",
                "sent_amount": D("3000"),
                "received_asset": "ETH",
                "received_amount": D("1"),
            },
        ],
        price_table(
            [
                ("BTC", T, "60000", "hour"),
                ("ETH", T, "2950", "hour"),
                ("USDT", T, "0.999", "hour"),
                ("USDC", T, "1.001", "hour"),
            ]
        ),
    )
    # The price stays the unit price of the side the row is about: BTC's, implied by the value.
    assert (sell_for_usdt["value"], sell_for_usdt["price_asset"], sell_for_usdt["price"]) == (
        D("820.179"),
        "BTC",
        D("82017.9"),
    )
    assert (buy_with_usdc["price_asset"], buy_with_usdc["value"]) == ("usdc", D("3003"))


def test_an_unknown_token_sold_for_usdt_is_valued_from_the_usdt_side():
    (row,) = valued(
        [
            {
                "type": "sell",
                "sent_asset": "NOPRICE",
                "sent_amount": D("125000"),
                "received_asset": "USDT",
                "received_amount": D("821"),
                "fee_asset": "USDT",
                "fee_amount": D("0.06"),
            }
        ],
        price_table([("USDT", T - timedelta(minutes=5), "1.0002", "hour")]),
    )
    assert (row["price_asset"], row["price"], row["price_source"]) == (
        "NOPRICE",
        D("0.0065693136"),
        "hour",
    )
    assert row["value"] == D("821.1642") and row["fee_value"] == D("0.060012")
    assert row["price_status"] == "ok"


def test_the_received_side_values_a_sale_whose_sent_side_has_no_price():
    (row,) = valued(
        [
            {
                "type": "trade",
                "sent_asset": "NOPRICE",
                "sent_amount": D("5"),
                "received_asset": "ETH",
                "received_amount": D("0.5"),
            }
        ],
        HOURLY,
    )
    assert (row["value"], row["price_asset"], row["price"]) == (
        D("1500.25"),
        "NOPRICE",
        D("300.05"),
    )
    assert row["price_status"] == "ok"


def test_the_sent_side_values_a_purchase_whose_received_side_has_no_price():
    (row,) = valued(
        [
            {
                "type": "buy",
                "sent_asset": "ETH",
                "sent_amount": D("2"),
                "received_asset": "NEWTOKEN",
                "received_amount": D("1000"),
            }
        ],
        HOURLY,
    )
    assert (row["value"], row["price_asset"], row["price"]) == (D("6001.0"), "NEWTOKEN", D("6.001"))
    assert row["price_source"] == "hour"


def test_the_fiat_side_values_a_trade_before_any_price():
    (row,) = valued(
        [
            {
                "type": "sell",
                "sent_asset": "USDT",
                "sent_amount": D("1000"),
                "received_asset": "USD",
                "received_amount": D("998.5"),
            }
        ],
        price_table([("USDT", T, "1.01", "hour")]),
    )
    assert (row["value"], row["price_source"], row["price_asset"]) == (D("998.5"), "fiat", "USDT")


def test_a_trade_neither_side_of_which_has_a_price_is_a_finding():
    no_price, unavailable = valued(
        [
            {
                "type": "trade",
                "sent_asset": "NOPRICE",
                "sent_amount": D("5"),
                "received_asset": "OTHER",
                "received_amount": D("7"),
            },
            {
                "type": "trade",
                "sent_asset": "NOPRICE",
                "sent_amount": D("5"),
                "received_asset": "DOWN",
                "received_amount": D("7"),
            },
        ],
        HOURLY,
        unavailable_assets={"DOWN"},
    )
    assert (no_price["value"], no_price["price_source"], no_price["price_status"]) == (
        None,
        "none",
        "no_price",
    )
    assert unavailable["value"] is None and unavailable["price_status"] == "unavailable"


def test_nearest_hour_at_or_before_then_day_then_none():
    rows = [
        {"type": "income", "received_asset": a, "received_amount": D("2"), "timestamp": t}
        for a, t in [
            ("BTC", T + timedelta(minutes=59)),  # the 12:00 point
            ("BTC", T - timedelta(hours=3, minutes=1)),  # before the first point: none
            ("BTC", T + timedelta(hours=2, seconds=1)),  # last point over 2 h old: none
            ("ADA", T + timedelta(hours=11)),  # only daily: day
            ("ADA", T + timedelta(days=1, hours=1)),  # daily point over a day old: none
            ("ETH", T - timedelta(minutes=30)),
        ]
    ]  # hourly
    out = valued(rows, HOURLY)
    assert [r["price_source"] for r in out] == ["hour", "none", "none", "day", "none", "hour"]
    assert [r["price"] for r in out] == [D("60000"), None, None, D("0.75"), None, D("3000.5")]
    assert out[0]["value"] == D("120000") and out[3]["value"] == D("1.5")
    assert [r["price_status"] for r in out] == [
        "ok",
        "no_price",
        "no_price",
        "ok",
        "no_price",
        "ok",
    ]


def test_no_price_and_unavailable_are_told_apart():
    out = valued(
        [
            {"type": "deposit", "received_asset": a, "received_amount": D("1")}
            for a in ("SOL", "DOT", "BTC")
        ],
        HOURLY,
        unavailable_assets={"DOT", "BTC"},
    )
    assert [(r["price_source"], r["price_status"]) for r in out] == [
        ("none", "no_price"),
        ("none", "unavailable"),
        ("hour", "ok"),
    ]


def test_fee_rules():
    rows = [
        {
            "type": "trade",
            "sent_asset": "BTC",
            "sent_amount": D("1"),
            "received_asset": "ETH",
            "received_amount": D("20"),
            "fee_asset": f,
            "fee_amount": a,
        }
        for f, a in [
            (None, None),
            ("ETH", D("0")),
            ("USD", D("2.5")),
            ("ETH", D("0.01")),
            ("EUR", D("1")),
            ("SOL", D("1")),
        ]
    ]
    out = valued(rows, HOURLY, unavailable_assets={"SOL"})
    assert [r["fee_value"] for r in out] == [D("0"), D("0"), D("2.5"), D("30.005"), None, None]
    assert [r["price_status"] for r in out] == ["ok", "ok", "ok", "ok", "no_price", "unavailable"]
    fee_only = valued([{"type": "fee", "fee_asset": "BTC", "fee_amount": D("0.001")}], HOURLY)[0]
    assert (fee_only["value"], fee_only["fee_value"], fee_only["price_asset"]) == (
        D("60"),
        D("60"),
        "BTC",
    )


def test_without_prices_only_fiat_and_file_values():
    out = valued(
        [
            {
                "type": "buy",
                "sent_asset": "USD",
                "sent_amount": D("10"),
                "received_asset": "BTC",
                "received_amount": D("1"),
            },
            {
                "type": "income",
                "received_asset": "BTC",
                "received_amount": D("1"),
                "fiat_value": D("7"),
                "fiat_currency": "usd",
            },
            {"type": "income", "received_asset": "BTC", "received_amount": D("1")},
        ],
        None,
    )
    assert [(r["value"], r["price_source"], r["price_status"]) for r in out] == [
        (D("10"), "fiat", "ok"),
        (D("7"), "file", "ok"),
        (None, "none", "no_price"),
    ]


def test_exact_decimal_arithmetic():
    prices = price_table([("SHIB", T, "0.000012345678901234", "hour")])
    (row,) = valued(
        [
            {
                "type": "income",
                "received_asset": "SHIB",
                "received_amount": D("123456789.123456789123456789"),
            }
        ],
        prices,
    )
    assert row["value"] == (D("123456789.123456789123456789") * D("0.000012345678901234")).quantize(
        Q
    )


def test_a_crypto_fee_of_a_row_stating_its_value_is_valued_at_the_rows_own_rate():
    # The file says the trade of 1 BTC for 20 ETH was worth 50,000 USD: its fee of 0.01 ETH is
    # worth 0.01 x 50,000 / 20, whatever the hour's market price (3000.5), online and offline.
    stated = {
        "type": "trade",
        "sent_asset": "BTC",
        "sent_amount": D("1"),
        "received_asset": "ETH",
        "received_amount": D("20"),
        "fiat_value": D("50000"),
        "fiat_currency": "USD",
    }
    rows = [
        {**stated, "fee_asset": "ETH", "fee_amount": D("0.01")},
        {**stated, "fee_asset": "BTC", "fee_amount": D("0.001")},
        {**stated, "fee_asset": "ADA", "fee_amount": D("2")},  # not traded: the market price
    ]
    for prices in (HOURLY, None):
        out = valued(rows, prices)
        assert [r["fee_value"] for r in out[:2]] == [D("25"), D("50")]
    assert valued(rows, HOURLY)[2]["fee_value"] == D("1.5")
    # ...so only the untraded fee asset needs a price
    assert price_needs(tx_table(rows)).column("asset").to_pylist() == ["ADA"]


def test_price_needs():
    tx = tx_table(
        [
            {
                "type": "buy",
                "sent_asset": "USD",
                "sent_amount": D("1"),
                "received_asset": "BTC",
                "received_amount": D("1"),
                "fee_asset": "BNB",
                "fee_amount": D("0.1"),
            },
            {
                "type": "trade",
                "sent_asset": "btc",
                "sent_amount": D("1"),
                "received_asset": "ETH",
                "received_amount": D("1"),
                "fee_asset": "ETH",
                "fee_amount": D("0"),
            },
            {
                "type": "income",
                "received_asset": "SOL",
                "received_amount": D("1"),
                "fiat_value": D("5"),
                "fiat_currency": "USD",
            },
            {"type": "deposit", "received_asset": "EUR", "received_amount": D("1")},
            {
                "type": "withdrawal",
                "sent_asset": "ADA",
                "sent_amount": D("1"),
                "fee_asset": "USD",
                "fee_amount": D("1"),
            },
        ]
    )
    needs = price_needs(tx)
    assert needs.schema.field("ts").type == TIMESTAMP
    # Both sides of the btc -> ETH trade: ETH values it when BTC has no price.
    assert sorted(needs.column("asset").to_pylist()) == ["ADA", "BNB", "BTC", "ETH"]
    assets, start, end = needs_range(needs)
    assert assets == ["ADA", "BNB", "BTC", "ETH"]
    assert start == T - timedelta(days=1) and end == T


def test_600k_rows_are_valued_vectorized():
    n = 600_000
    rng = np.random.default_rng(3)
    hours = np.arange(0, 2 * 365 * 24, dtype=np.int64) * 3600 + 1_700_000_000
    symbols = np.array(["BTC", "ETH", "SOL", "ADA", "XRP"])
    prices = pa.table(
        {
            "asset": pa.array(np.repeat(symbols, len(hours))),
            "ts": pa.array(np.tile(hours, len(symbols)) * 1_000_000).cast(TIMESTAMP),
            "price": pa.array(np.char.mod("%.6f", rng.random(len(hours) * 5) * 1000)).cast(AMOUNT),
            "granularity": pa.array(np.full(len(hours) * 5, "hour")),
        },
        schema=PRICES_SCHEMA,
    )
    amounts = pa.array(np.char.mod("%.8f", rng.random(n) * 10)).cast(AMOUNT)
    stamps = pa.array((rng.integers(0, 2 * 365 * 86400, n) + 1_700_000_000) * 1_000_000)
    cols = {f.name: pa.nulls(n, f.type) for f in CANONICAL_SCHEMA}
    cols.update(
        tx_id=pa.array(np.arange(n).astype(str)),
        user_id=pa.array(np.full(n, "u")),
        wallet=pa.array(np.full(n, "w")),
        timestamp=stamps.cast(TIMESTAMP),
        type=pa.array(rng.choice(["buy", "sell", "trade", "income"], n)),
        sent_asset=pa.array(rng.choice(symbols, n)),
        sent_amount=amounts,
        received_asset=pa.array(rng.choice(symbols, n)),
        received_amount=amounts,
        fee_asset=pa.array(rng.choice(symbols, n)),
        fee_amount=amounts,
        source=pa.array(np.full(n, "s")),
        source_file=pa.array(np.full(n, "f")),
        source_line=pa.array(np.arange(n)),
    )
    tx = pa.table(cols, schema=CANONICAL_SCHEMA)
    out = value_transactions(tx, prices)
    assert out.num_rows == n
    assert set(out.column("price_source").unique().to_pylist()) == {"hour"}


# --- against the simulator process ---------------------------------------------------------------
def sim_settings(settings, sim, **overrides):
    return settings.model_copy(
        update={
            "coingecko_url": sim.url,
            "price_provider": "coingecko",
            "price_rate": 50.0,
            "price_burst": 10,
            **overrides,
        }
    )


@pytest.mark.cassandra
@pytest.mark.ray
@pytest.mark.pricesim
def test_joined_prices_equal_the_simulator_series_exactly(
    ray_local, cold_price_cache, settings, session, pricesim
):
    from ingest.prices.pool import fetch_prices

    rng = np.random.default_rng(11)
    start = int(datetime(2023, 2, 1, tzinfo=timezone.utc).timestamp())
    symbols = ["BTC", "ETH", "SHIB", "USDT"]
    rows = [
        {
            "type": "income",
            "received_asset": s,
            "received_amount": D("3"),
            "timestamp": datetime.fromtimestamp(
                int(start + rng.integers(0, 200 * 86400)), tz=timezone.utc
            ),
        }
        for s in symbols
        for _ in range(40)
    ]
    tx = tx_table(rows)
    needs = price_needs(tx)
    report = fetch_prices(needs, settings=sim_settings(settings, pricesim), currency="USD")
    assert report.windows_unavailable == [] and report.windows_fetched == report.windows_needed
    assets, lo, hi = needs_range(needs)
    out = value_transactions(
        tx, load_prices(session, assets, lo, hi), unavailable_assets=report.unavailable_assets
    )
    for row in out.to_pylist():
        # What the JSON carried (float repr), to the 18 decimals the cache keeps.
        expected = Decimal(repr(paths.price_at(row["price_asset"], row["timestamp"]))).quantize(Q)
        assert (row["price_source"], row["price"]) == ("hour", expected), row
        assert row["value"] == (expected * 3).quantize(Q)


@pytest.fixture()
def bogus_coin_id(tmp_path) -> str:
    """An asset-ids file mapping BOGUS to an id the provider does not know (the 404 "coin not
    found" path); pass it as Settings.asset_ids_file."""
    path = tmp_path / "ids.json"
    path.write_text(json.dumps({"BOGUS": "bogus-coin"}))
    return str(path)


@pytest.mark.cassandra
@pytest.mark.ray
@pytest.mark.pricesim
def test_no_price_and_unavailable_are_told_apart_end_to_end(
    ray_local, cold_price_cache, settings, session, pricesim, pricesim_factory, bogus_coin_id
):
    from ingest.prices.pool import fetch_prices

    before_listing = datetime(2019, 6, 1, 12, tzinfo=timezone.utc)  # SOL listed 2020-04-11
    in_2022 = datetime(2022, 9, 1, 12, tzinfo=timezone.utc)
    tx = tx_table(
        [
            {"type": "deposit", "received_asset": a, "received_amount": D("1"), "timestamp": t}
            for a, t in [
                ("SOL", before_listing),
                ("FOO", in_2022),
                ("BOGUS", in_2022),
                ("ATOM", in_2022),
            ]
        ]
    )
    needs = price_needs(tx)
    healthy = sim_settings(settings, pricesim, asset_ids_file=bogus_coin_id)
    report = fetch_prices(
        needs.filter(pc.not_equal(needs["asset"], "ATOM")), settings=healthy, currency="USD"
    )
    assert report.windows_unavailable == []
    assert report.assets_unlisted == ["BOGUS", "FOO"]
    assert {r.status for r in read_coverage(session, ["BOGUS"])} == {"unlisted"}
    assert {
        r.status
        for r in read_coverage(session, ["SOL"])
        if r.window_start <= before_listing.timestamp() < r.window_end
    } == {"no_data"}
    # "No price" is durable: asked again, nothing is fetched.
    again = fetch_prices(
        needs.filter(pc.not_equal(needs["asset"], "ATOM")), settings=healthy, currency="USD"
    )
    assert again.requests_sent == 0 and pricesim.stats()["not_found"] == 1

    down = pricesim_factory(outage=["0:600"])
    outage = fetch_prices(
        needs.filter(pc.equal(needs["asset"], "ATOM")),
        settings=sim_settings(settings, down, price_retry_budget=2.0),
        currency="USD",
    )
    assert outage.unavailable_assets == {"ATOM"}

    assets, lo, hi = needs_range(needs)
    out = value_transactions(
        tx,
        load_prices(session, assets, lo, hi),
        unavailable_assets=report.unavailable_assets | outage.unavailable_assets,
    )
    assert dict(
        zip(out.column("price_asset").to_pylist(), out.column("price_status").to_pylist())
    ) == {"SOL": "no_price", "FOO": "no_price", "BOGUS": "no_price", "ATOM": "unavailable"}
    assert set(out.column("price_source").to_pylist()) == {"none"}


@pytest.mark.cassandra
@pytest.mark.ray
@pytest.mark.pricesim
def test_no_price_markers_are_asked_again_after_the_recheck_age(
    ray_local, cold_price_cache, settings, session, pricesim, bogus_coin_id
):
    from ingest.prices.cache_store import write_coverage
    from ingest.prices.pool import fetch_prices

    before_listing = datetime(2019, 3, 1, 12, tzinfo=timezone.utc)  # SOL listed 2020-04-11
    tx = tx_table(
        [
            {"type": "deposit", "received_asset": a, "received_amount": D("1"), "timestamp": t}
            for a, t in [
                ("SOL", before_listing),
                ("BOGUS", datetime(2022, 5, 1, 12, tzinfo=timezone.utc)),
            ]
        ]
    )
    needs = price_needs(tx)
    healthy = sim_settings(settings, pricesim, asset_ids_file=bogus_coin_id)
    first = fetch_prices(needs, settings=healthy, currency="USD")
    assert (first.windows_no_data, first.assets_unlisted) == (1, ["BOGUS"])
    assert (
        fetch_prices(needs, settings=healthy, currency="USD").requests_sent == 0
    )  # fresh markers hold

    # The markers age (their fetched_at is rewritten 8 days back, past the default week).
    markers = [
        r for r in read_coverage(session, ["SOL", "BOGUS"]) if r.status in ("no_data", "unlisted")
    ]
    assert {r.asset for r in markers} == {"SOL", "BOGUS"}
    aged = datetime.now(timezone.utc) - timedelta(days=8)
    for record in markers:
        write_coverage(session, record, provider="coingecko", points=0, fetched_at=aged)
    never = sim_settings(settings, pricesim, asset_ids_file=bogus_coin_id, price_recheck_hours=0)
    assert (
        fetch_prices(needs, settings=never, currency="USD").requests_sent == 0
    )  # 0: never asked again
    requests, not_found = pricesim.stats()["requests"], pricesim.stats()["not_found"]
    again = fetch_prices(needs, settings=healthy, currency="USD")
    assert again.requests_sent == 2 and pricesim.stats()["requests"] == requests + 2
    assert pricesim.stats()["not_found"] == not_found + 1  # BOGUS asked again
    assert (again.windows_no_data, again.assets_unlisted) == (1, ["BOGUS"])
    assert fetch_prices(needs, settings=healthy, currency="USD").requests_sent == 0  # fresh again


@pytest.mark.cassandra
@pytest.mark.ray
@pytest.mark.pricesim
def test_a_token_the_simulator_does_not_list_sold_for_usdt_is_valued_from_the_usdt_side(
    ray_local, cold_price_cache, settings, session, pricesim
):
    from ingest.prices.pool import fetch_prices

    at = datetime(2023, 5, 10, 14, 20, tzinfo=timezone.utc)
    tx = tx_table(
        [
            {
                "type": "sell",
                "sent_asset": "FOO",
                "sent_amount": D("125000"),
                "received_asset": "USDT",
                "received_amount": D("821"),
                "timestamp": at,
            }
        ]
    )
    needs = price_needs(tx)
    assert sorted(needs.column("asset").to_pylist()) == ["FOO", "USDT"]
    report = fetch_prices(needs, settings=sim_settings(settings, pricesim), currency="USD")
    assert report.assets_unlisted == ["FOO"] and report.windows_unavailable == []
    assets, lo, hi = needs_range(needs)
    (row,) = value_transactions(
        tx, load_prices(session, assets, lo, hi), unavailable_assets=report.unavailable_assets
    ).to_pylist()
    usdt = Decimal(repr(paths.price_at("USDT", row["timestamp"]))).quantize(Q)
    assert row["value"] == (usdt * 821).quantize(Q)
    assert (row["price_asset"], row["price_source"], row["price_status"]) == ("FOO", "hour", "ok")
    assert row["price"] == (row["value"] / 125000).quantize(Q)
