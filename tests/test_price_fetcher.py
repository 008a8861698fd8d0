"""PriceFetcher pool against the simulator process: shared rate limit, 429 bursts, outages,
the cache, unavailable vs no price, and a killed actor."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from ingest.normalize.canonical import TIMESTAMP
from ingest.prices.cache_store import read_coverage
from ingest.prices.planner import distinct_windows
from ingest.prices.pool import fetch_prices, get_pool

pytestmark = [pytest.mark.cassandra, pytest.mark.ray, pytest.mark.pricesim]

# Tests share one keyspace (the cache), so each asks for (asset, period) pairs no other test asks
# for: then "fetched", "cached" and request counts do not depend on test order.


def needs_table(
    assets: list[str], start: datetime, end: datetime, step: timedelta = timedelta(hours=7)
) -> pa.Table:
    """Every `step` from start to end for each asset (a dense set of needed times)."""
    names, stamps = [], []
    t = start
    while t < end:
        for a in assets:
            names.append(a)
            stamps.append(t)
        t += step
    return pa.table({"asset": pa.array(names), "ts": pa.array(stamps, TIMESTAMP)})


def sim_settings(settings, sim, **overrides):
    return settings.model_copy(
        update={"coingecko_url": sim.url, "price_provider": "coingecko", **overrides}
    )


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def covered_windows(session, needs: pa.Table) -> set[tuple[str, int]]:
    """The windows of `needs` that price_coverage records as fetched."""
    wanted = wanted_windows(needs)
    records = read_coverage(session, {a for a, _ in wanted})
    return {(r.asset, r.window_start) for r in records if r.status in ("ok", "no_data")} & wanted


def wanted_windows(needs: pa.Table) -> set[tuple[str, int]]:
    return {(a, w) for a, ws in distinct_windows(needs, now=int(time.time())).items() for w in ws}


def test_pool_never_exceeds_the_shared_rate(
    ray_local, cold_price_cache, settings, session, pricesim
):
    rate, burst = 10.0, 2
    cfg = sim_settings(settings, pricesim, price_rate=rate, price_burst=burst, price_pool_size=2)
    needs = needs_table(
        ["BTC", "ETH", "LTC", "XRP", "DOGE", "XLM", "ADA", "TRX", "BNB", "ETC"],
        utc(2018, 1, 1),
        utc(2018, 12, 1),
    )
    assert len(get_pool(cfg).fetchers) >= 2
    report = fetch_prices(needs, settings=cfg, currency="USD")
    stats = pricesim.stats()
    windows = wanted_windows(needs)
    assert report.windows_unavailable == [], report
    assert report.windows_needed == len(windows) and report.windows_fetched == len(windows), report
    # One request per (asset, window), and the simulator saw exactly those.
    assert (
        report.requests_sent
        == len(windows)
        == stats["by_path"]["/api/v3/coins/{id}/market_chart/range"]
    ), (report, stats["by_path"])
    # The bucket grants at most rate + burst in any second; +2 absorbs the grant-to-send jitter
    # of a loaded 2-core box (a descheduled actor sends two granted requests back to back).
    assert stats["max_rate_1s"] <= rate + burst + 2, stats["max_rate_1s"]
    assert covered_windows(session, needs) == windows


def test_cached_windows_are_not_fetched_again(
    ray_local, cold_price_cache, settings, session, pricesim
):
    cfg = sim_settings(settings, pricesim, price_rate=50.0, price_burst=10)
    needs = needs_table(["SOL", "AVAX"], utc(2021, 3, 1), utc(2021, 8, 1))
    first = fetch_prices(needs, settings=cfg, currency="USD")
    assert first.windows_fetched == first.windows_needed > 0 and first.windows_cached == 0
    assert len(first.fetched_windows) == first.windows_fetched
    before = pricesim.stats()["requests"]
    second = fetch_prices(needs, settings=cfg, currency="USD")
    assert pricesim.stats()["requests"] == before
    assert second.requests_sent == 0 and second.windows_cached == first.windows_needed
    assert second.fetched_windows == []


def test_window_holding_now_is_covered_only_until_fetch_time(
    ray_local, cold_price_cache, settings, session, pricesim
):
    cfg = sim_settings(settings, pricesim, price_rate=50.0, price_burst=10)
    now = datetime.now(timezone.utc)
    needs = pa.table({"asset": ["LINK"], "ts": pa.array([now - timedelta(hours=3)], TIMESTAMP)})
    assert fetch_prices(needs, settings=cfg, currency="USD").windows_fetched == 1
    assert (
        fetch_prices(needs, settings=cfg, currency="USD").requests_sent == 0
    )  # before the fetch: covered
    time.sleep(1.1)
    later = pa.table({"asset": ["LINK"], "ts": pa.array([datetime.now(timezone.utc)], TIMESTAMP)})
    assert (
        fetch_prices(later, settings=cfg, currency="USD").requests_sent == 1
    )  # after it: fetched again


def test_burst_of_429s_slows_but_loses_nothing(
    ray_local, cold_price_cache, settings, session, pricesim
):
    cfg = sim_settings(settings, pricesim, price_rate=20.0, price_burst=4)
    needs = needs_table(
        ["BTC", "LTC", "XRP", "DOGE", "XLM", "USDT"], utc(2015, 2, 1), utc(2015, 12, 1)
    )
    # After the first requests the provider drops to 2 requests/s until it has refused 10.
    throttle = pricesim.when(
        lambda s: s["requests"] >= 4, lambda: pricesim.configure(rate=2, burst=1)
    )
    recover = pricesim.when(lambda s: s["throttled_429"] >= 10, lambda: pricesim.configure(rate=0))
    try:
        report = fetch_prices(needs, settings=cfg, currency="USD")
    finally:
        throttle.join()
        pricesim.configure(rate=0)
        recover.join(timeout=1)
    stats = pricesim.stats()
    assert throttle.fired and recover.fired, stats
    assert stats["throttled_429"] >= 10
    assert report.windows_unavailable == []
    assert covered_windows(session, needs) == wanted_windows(needs)


def test_outage_of_30s_inside_the_budget_loses_nothing(
    ray_local, cold_price_cache, settings, session, pricesim
):
    cfg = sim_settings(settings, pricesim, price_rate=20.0, price_burst=4, price_retry_budget=90.0)
    needs = needs_table(["BTC", "ETH", "LTC", "XRP"], utc(2016, 3, 1), utc(2016, 12, 1))
    windows = wanted_windows(needs)
    # The outage starts once a few windows are in: the rest must wait it out.
    outage = pricesim.when(lambda s: s["ok"] >= 3, lambda: pricesim.outage_from_now(30))
    try:
        report = fetch_prices(needs, settings=cfg, currency="USD")
    finally:
        outage.join()
    stats = pricesim.stats()
    assert outage.fired and stats["errors_5xx"] > 0
    assert report.windows_fetched == len(windows) > 3  # the rest came after the outage
    assert report.windows_unavailable == []
    assert covered_windows(session, needs) == wanted_windows(needs)
    # The pool stopped hammering while the provider was down (Retry-After and the breaker).
    assert stats["errors_5xx"] <= 40, stats["errors_5xx"]


def test_outage_past_the_budget_reports_unavailable_and_records_nothing(
    ray_local, cold_price_cache, settings, session, pricesim_factory
):
    down = pricesim_factory(outage=["0:600"])
    cfg = sim_settings(settings, down, price_rate=20.0, price_burst=4, price_retry_budget=3.0)
    needs = needs_table(["DOT", "UNI"], utc(2022, 2, 1), utc(2022, 6, 1))
    report = fetch_prices(needs, settings=cfg, currency="USD")
    assert down.stats()["ok"] == 0
    assert {
        (w.asset, int(w.start.timestamp())) for w in report.windows_unavailable
    } == wanted_windows(needs)
    assert report.unavailable_assets == {"DOT", "UNI"}
    assert covered_windows(session, needs) == set()  # a later job retries them


def test_killed_fetcher_is_replaced_and_its_windows_retried(
    ray_local, cold_price_cache, settings, session, pricesim_factory
):
    import ray

    sim = pricesim_factory(latency_ms=400)
    cfg = sim_settings(settings, sim, price_rate=50.0, price_burst=20)
    needs = needs_table(["NEAR", "FIL", "AAVE", "MATIC"], utc(2021, 1, 1), utc(2021, 12, 1))
    victim = get_pool(cfg).fetchers[0]
    # Killed once requests are in flight (each takes 400 ms at the simulator).
    kill = sim.when(lambda s: s["requests"] >= 2, lambda: ray.kill(victim, no_restart=False))
    try:
        report = fetch_prices(needs, settings=cfg, currency="USD")
    finally:
        kill.join()
    assert kill.fired
    assert report.windows_resubmitted > 0  # the kill landed while windows were in flight
    assert report.windows_unavailable == []
    assert covered_windows(session, needs) == wanted_windows(needs)
    assert ray.get(victim.spec.remote())["concurrency"] == cfg.price_concurrency  # replaced
