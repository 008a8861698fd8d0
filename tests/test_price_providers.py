"""Provider request building and response parsing, pure, on recorded-shape bodies."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from ingest.config import Settings
from ingest.prices.providers import provider_chain
from ingest.prices.providers.base import (
    OutcomeKind,
    ProviderConfig,
    Window,
    parse_retry_after,
)
from ingest.prices.providers.coingecko import CoinGecko
from ingest.prices.providers.defillama import (
    DefiLlama,
    build_batch_requests,
    parse_batch,
    request_url_length,
    window_days,
)

W = Window(1_704_067_200, 1_704_067_200 + 88 * 86400)
CG = CoinGecko(ProviderConfig("http://sim:8765/", api_key="k", key_kind="demo"))


def body(obj) -> bytes:
    return json.dumps(obj).encode()


def test_coingecko_request_is_market_chart_range_inside_the_window_with_key_header():
    r = CG.build_request("bitcoin", W)
    assert r.url == "http://sim:8765/api/v3/coins/bitcoin/market_chart/range"
    assert dict(r.params) == {"vs_currency": "usd", "from": str(W.start), "to": str(W.end - 1)}
    assert dict(r.headers)["x-cg-demo-api-key"] == "k"
    pro = CoinGecko(ProviderConfig("http://x", api_key="p", key_kind="pro"))
    assert dict(pro.build_request("bitcoin", W).headers)["x-cg-pro-api-key"] == "p"
    assert "x-cg-demo-api-key" not in dict(
        CoinGecko(ProviderConfig("http://x")).build_request("bitcoin", W).headers
    )


def test_coingecko_prices_are_exact_decimals_inside_the_window():
    raw = (
        b'{"prices": [[%d, 42000.123456789012], [%d, 1.2345678901234567e-05], '
        b'[%d, 3], [%d, 99]], "market_caps": [], "total_volumes": []}'
        % ((W.start - 3600) * 1000, W.start * 1000, (W.start + 3600) * 1000, W.end * 1000)
    )
    out = CG.parse("bitcoin", W, 200, {}, raw)
    assert out.kind == OutcomeKind.OK and out.granularity == "hour"
    assert out.points == (
        (W.start * 1000, Decimal("0.000012345678901235")),
        ((W.start + 3600) * 1000, Decimal("3")),
    )
    ok = CG.parse("bitcoin", W, 200, {}, body({"prices": [[W.start * 1000, 0.1]]}))
    assert ok.points[0][1] == Decimal("0.1")  # not 0.1000000000000000055...


def test_coingecko_daily_series_is_tagged_day():
    pts = [[(W.start + d * 86400) * 1000, 10 + d] for d in range(5)]
    assert CG.parse("bitcoin", W, 200, {}, body({"prices": pts})).granularity == "day"


def test_coingecko_outcomes():
    assert CG.parse("bitcoin", W, 200, {}, body({"prices": []})).kind == OutcomeKind.NO_DATA
    assert CG.parse("x", W, 404, {}, body({"error": "coin not found"})).kind == OutcomeKind.UNLISTED
    # A 404 that does not name the coin (wrong base URL) must not mark the coin unlisted.
    assert CG.parse("x", W, 404, {}, b"<html>Not Found</html>").kind in (
        OutcomeKind.CLIENT_ERROR,
        OutcomeKind.SERVER_ERROR,
    )
    assert CG.parse("x", W, 404, {}, b"{}").kind == OutcomeKind.CLIENT_ERROR
    limited = CG.parse("bitcoin", W, 429, {"Retry-After": "7"}, b"{}")
    assert limited.kind == OutcomeKind.RATE_LIMITED and limited.retry_after == 7.0
    assert CG.parse("bitcoin", W, 429, {}, b"").retry_after is None
    err = CG.parse("bitcoin", W, 503, {"retry-after": "30"}, b"oops")
    assert err.kind == OutcomeKind.SERVER_ERROR and err.retry_after == 30.0
    assert CG.parse("bitcoin", W, 500, {}, b"").kind == OutcomeKind.SERVER_ERROR
    assert CG.parse("bitcoin", W, 200, {}, b"{not json").kind == OutcomeKind.SERVER_ERROR
    assert (
        CG.parse("bitcoin", W, 401, {}, body({"status": {"error_code": 10002}})).kind
        == OutcomeKind.CLIENT_ERROR
    )
    assert CG.parse("bitcoin", W, 200, {}, body([1, 2])).kind == OutcomeKind.SERVER_ERROR


@pytest.mark.parametrize(
    "payload",
    [
        {
            "Response": "Error",
            "Message": "You are over your rate limit please upgrade your account!",
            "HasWarning": False,
            "Type": 99,
            "RateLimit": {},
            "Data": {},
        },
        {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}},
        {
            "error": {
                "status": {
                    "timestamp": "2024-01-01T00:00:00Z",
                    "error_code": 429,
                    "error_message": "Throttled",
                }
            }
        },
    ],
)
def test_rate_limit_inside_a_200_body_is_detected(payload):
    assert CG.parse("bitcoin", W, 200, {}, body(payload)).kind == OutcomeKind.BODY_RATE_LIMITED


def test_retry_after_http_date():
    assert parse_retry_after(
        {"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, now=1445412480.0
    ) == pytest.approx(30.0)
    assert parse_retry_after({"Retry-After": "soon"}) is None


# --- DefiLlama -------------------------------------------------------------------------------
LLAMA = DefiLlama(ProviderConfig("https://coins.llama.fi"))


def test_defillama_window_request_asks_each_day_at_midnight():
    r = LLAMA.build_request("bitcoin", W)
    assert r.url == "https://coins.llama.fi/batchHistorical"
    coins = json.loads(dict(r.params)["coins"])
    assert list(coins) == ["coingecko:bitcoin"]
    assert coins["coingecko:bitcoin"] == window_days(W) and len(window_days(W)) == 88
    assert all(ts % 86400 == 0 for ts in window_days(W))
    assert window_days(Window(100, 86400 * 2 + 1)) == [86400, 172800]


def test_defillama_batches_stay_under_coin_and_url_limits_and_lose_nothing():
    coins = {f"coin-{i:03d}": [1_700_000_000 + 3600 * k for k in range(3)] for i in range(250)}
    coins["big"] = [1_600_000_000 + 3600 * k for k in range(900)]  # alone overflows a URL
    requests = build_batch_requests(
        "https://coins.llama.fi", coins, max_coins=100, max_url_chars=6000
    )
    seen: dict[str, list[int]] = {}
    for r in requests:
        asked = json.loads(dict(r.params)["coins"])
        assert len(asked) <= 100
        assert request_url_length(r) <= 6000
        assert len(r.url) + 1 + len(urlencode(r.params)) == request_url_length(r)
        for key, stamps in asked.items():
            seen.setdefault(key.removeprefix("coingecko:"), []).extend(stamps)
    assert seen == coins
    # Packed greedily: ~33 KB of encoded query in 6 KB URLs needs 6; allow one spare.
    assert len(requests) <= 7


def test_defillama_url_is_what_the_api_expects():
    (r,) = build_batch_requests("https://coins.llama.fi", {"bitcoin": [1666876743, 1666862343]})
    url = f"{r.url}?{urlencode(r.params)}"
    query = parse_qs(urlparse(url).query)
    assert json.loads(query["coins"][0]) == {"coingecko:bitcoin": [1666876743, 1666862343]}


RECORDED = {
    "coins": {
        "coingecko:bitcoin": {
            "symbol": "BTC",
            "prices": [
                {"timestamp": 1704153600, "price": 44187.14, "confidence": 0.99},
                {"timestamp": 1704067205, "price": 42280.235, "confidence": 0.99},
            ],
        },
        "coingecko:ethereum": {
            "symbol": "ETH",
            "prices": [{"timestamp": 1704067190, "price": 2281.4712, "confidence": 0.99}],
        },
    }
}


def test_defillama_parses_recorded_shape_exactly():
    batch = parse_batch(json.loads(json.dumps(RECORDED), parse_float=Decimal))
    assert batch["bitcoin"] == [
        (1704067205000, Decimal("42280.235")),
        (1704153600000, Decimal("44187.14")),
    ]
    out = LLAMA.parse("bitcoin", W, 200, {}, body(RECORDED))
    assert out.kind == OutcomeKind.OK and out.granularity == "day"
    assert out.points[0] == (1704067205000, Decimal("42280.235"))


def test_defillama_outcomes():
    assert LLAMA.parse("solana", W, 200, {}, body(RECORDED)).kind == OutcomeKind.NO_DATA
    assert LLAMA.parse("bitcoin", W, 200, {}, body({"coins": {}})).kind == OutcomeKind.NO_DATA
    assert (
        LLAMA.parse("bitcoin", W, 429, {"Retry-After": "2"}, b"").kind == OutcomeKind.RATE_LIMITED
    )
    assert LLAMA.parse("bitcoin", W, 414, {}, b"").kind == OutcomeKind.CLIENT_ERROR
    assert LLAMA.parse("bitcoin", W, 502, {}, b"").kind == OutcomeKind.SERVER_ERROR
    assert LLAMA.parse("bitcoin", W, 200, {}, b"[]").kind == OutcomeKind.SERVER_ERROR
    assert (
        LLAMA.parse(
            "bitcoin", W, 200, {}, body({"Response": "Error", "Message": "rate limit"})
        ).kind
        == OutcomeKind.BODY_RATE_LIMITED
    )


def test_provider_chain_follows_the_configured_order():
    chain = provider_chain(Settings(price_provider="defillama, coingecko"), "usd")
    assert [p.name for p in chain] == ["defillama", "coingecko"]
    assert chain[1].config.base_url == Settings().coingecko_url
    with pytest.raises(ValueError):
        provider_chain(Settings(price_provider="coingecko,nope"), "usd")
