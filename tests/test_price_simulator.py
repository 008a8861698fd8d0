"""The price simulator: pure body building, then the real process (`ledgerflow pricesim`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime, timezone

import pytest

from devtools.pricesim import paths
from devtools.pricesim.server import (
    SlidingCounter,
    chart_body,
    outage_remaining,
    parse_outage,
    step_for_range,
)

T0 = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp())
DAY = 86400


def test_granularity_follows_coingecko():
    assert step_for_range(DAY) == 300
    assert step_for_range(2 * DAY) == 3600 and step_for_range(90 * DAY) == 3600
    assert step_for_range(90 * DAY + 1) == DAY


def test_chart_body_serves_exactly_the_paths():
    hourly = chart_body("BTC", T0, T0 + 88 * DAY - 1, now=T0 + 400 * DAY)
    assert [[ms, p] for ms, p in hourly["prices"]] == [
        [ts * 1000, p] for ts, p in paths.series("BTC", T0, T0 + 88 * DAY - 1)
    ]
    assert len(hourly["prices"]) == 88 * 24
    assert len(hourly["market_caps"]) == len(hourly["total_volumes"]) == 88 * 24
    daily = chart_body("BTC", T0, T0 + 200 * DAY, now=T0 + 400 * DAY)
    assert all(ms % (DAY * 1000) == 0 for ms, _ in daily["prices"]) and len(daily["prices"]) == 201
    five = chart_body("ETH", T0, T0 + 6 * 3600, now=T0 + DAY)
    assert len(five["prices"]) == 6 * 12 + 1
    assert all(p == paths.price_at("ETH", ms // 1000) for ms, p in five["prices"])


def test_no_points_before_listing_or_after_now():
    listed = int(datetime(2020, 4, 11, tzinfo=timezone.utc).timestamp())
    body = chart_body("SOL", listed - 10 * DAY, listed + 10 * DAY, now=listed + 5 * DAY)
    stamps = [ms // 1000 for ms, _ in body["prices"]]
    assert stamps[0] == listed and stamps[-1] <= listed + 5 * DAY
    assert chart_body("SOL", listed - 50 * DAY, listed - DAY, now=T0)["prices"] == []


def test_outages_and_sliding_counter():
    outages = [parse_outage("5:30"), parse_outage([100, 1])]
    assert outage_remaining(4.9, outages) is None
    assert outage_remaining(5.0, outages) == pytest.approx(30.0)
    assert outage_remaining(34.0, outages) == pytest.approx(1.0)
    assert outage_remaining(35.0, outages) is None
    counter = SlidingCounter()
    for t in (0.0, 0.2, 0.9, 1.0, 1.1, 1.15, 3.0):
        counter.add(t)
    assert counter.max_count == 5  # (0.15, 1.15]


# --- the process -------------------------------------------------------------------------------


def get(url: str, headers: dict | None = None) -> tuple[int, dict, object]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


def chart_url(base: str, coin: str = "bitcoin", start: int = T0, days: int = 30) -> str:
    return (
        f"{base}/api/v3/coins/{coin}/market_chart/range?vs_currency=usd&from={start}"
        f"&to={start + days * DAY}"
    )


@pytest.mark.pricesim
def test_process_serves_coins_list_series_and_404(pricesim):
    status, _, coins = get(f"{pricesim.url}/api/v3/coins/list")
    assert status == 200 and {"id": "bitcoin", "symbol": "btc", "name": "Bitcoin"} in coins
    status, _, body = get(chart_url(pricesim.url), {"x-cg-demo-api-key": "demo-key"})
    assert status == 200
    assert body["prices"][:3] == [[ts * 1000, p] for ts, p in paths.series("BTC", T0, T0 + 7200)]
    status, _, body = get(chart_url(pricesim.url, "no-such-coin"))
    assert status == 404 and body == {"error": "coin not found"}
    stats = pricesim.stats()
    assert stats["requests"] == 3 and stats["ok"] == 2 and stats["not_found"] == 1
    assert stats["with_api_key"] == 1 and stats["by_path"]["/api/v3/coins/list"] == 1
    assert len(stats["request_log"]) == 2
    pricesim.reset_stats()
    assert pricesim.stats()["requests"] == 0


@pytest.mark.pricesim
def test_process_token_bucket_answers_429_with_retry_after(pricesim_factory):
    sim = pricesim_factory(rate=2, burst=3)
    statuses = [get(chart_url(sim.url, days=1))[:2] for _ in range(8)]
    codes = [s for s, _ in statuses]
    assert codes[:3] == [200, 200, 200] and 429 in codes
    assert all(int(h["Retry-After"]) >= 1 for s, h in statuses if s == 429)
    stats = sim.stats()
    assert stats["throttled_429"] == codes.count(429) and stats["requests"] == 8
    assert stats["max_rate_1s"] >= 8 - 1  # rejected requests count too
    # Runtime reconfiguration: unlimited again.
    sim.configure(rate=0)
    assert all(get(chart_url(sim.url, days=1))[0] == 200 for _ in range(5))


@pytest.mark.pricesim
def test_process_outage_errors_body_rate_limits_and_latency(pricesim_factory):
    sim = pricesim_factory(outage=["0:600"], latency_ms=100)
    status, headers, _ = get(chart_url(sim.url))
    assert status == 503 and 1 <= int(headers["Retry-After"]) <= 600
    assert sim.configure(outages=[], body_ratelimit_rate=1.0)["latency_ms"] == 100
    status, _, body = get(chart_url(sim.url))
    assert status == 200 and ("Response" in body or body["status"]["error_code"] == 429)
    sim.configure(body_ratelimit_rate=0.0, error_rate=1.0)
    assert get(chart_url(sim.url))[0] in (500, 502, 503)
    stats = sim.stats()
    assert stats["errors_5xx"] == 2 and stats["body_errors"] == 1
    sim.outage_from_now(60)
    assert get(chart_url(sim.url))[0] == 503


@pytest.mark.pricesim
def test_process_is_deterministic_given_the_seed(pricesim_factory):
    a = pricesim_factory(error_rate=0.5, body_ratelimit_rate=0.3, seed=7)
    b = pricesim_factory(error_rate=0.5, body_ratelimit_rate=0.3, seed=7)

    def run(sim) -> list:
        return [
            (s, json.dumps(body)[:60])
            for s, _, body in (get(chart_url(sim.url, days=2)) for _ in range(12))
        ]

    first = run(a)
    assert first == run(b)
    assert len({s for s, _ in first}) > 1
