"""Token bucket and provider gate math, pure (explicit clocks, no sleeping)."""

from __future__ import annotations

import random

import pytest

from ingest.prices.ratelimit import GateConfig, ProviderGate, TokenBucket, backoff_delay


def config(**overrides) -> GateConfig:
    return GateConfig(
        **{
            "key": "t",
            "rate": 10.0,
            "burst": 5,
            "retry_after_cap": 30.0,
            "budget": 60.0,
            **overrides,
        }
    )


def test_bucket_starts_full_then_refills_at_rate():
    bucket = TokenBucket(rate=4.0, burst=2, updated=0.0)
    assert bucket.take(0.0) == 0.0 and bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(0.25)
    assert bucket.take(0.25) == 0.0
    assert bucket.take(10.0) == 0.0 and bucket.take(10.0) == 0.0 and bucket.take(10.0) > 0


@pytest.mark.parametrize("rate,burst", [(1.0, 1), (8.0, 8), (50.0, 5), (3.5, 2)])
def test_bucket_never_grants_more_than_rate_plus_burst_in_any_second(rate, burst):
    bucket = TokenBucket(rate=rate, burst=burst, updated=0.0)
    grants, now = [], 0.0
    while now < 20.0:  # a greedy client polling every 1 ms
        if bucket.take(now) == 0.0:
            grants.append(now)
        now += 0.001
    worst = max(sum(1 for g in grants if t - 1.0 < g <= t) for t in grants)
    assert worst <= rate + burst
    assert len(grants) == pytest.approx(rate * 20 + burst, abs=2)


def test_gate_shares_one_bucket():
    gate = ProviderGate(config(rate=2.0, burst=1))
    assert gate.try_acquire(0.0, 0.0).granted
    decision = gate.try_acquire(0.0, 0.0)
    assert not decision.granted and decision.wait == pytest.approx(0.5)


def test_429_halves_rate_once_per_second_with_floor_pauses_and_recovers_additively():
    gate = ProviderGate(config(rate=16.0, burst=4))
    d = gate.on_throttled(0.0, retry_after=2.0, since=0.0)
    assert gate.current_rate == 8.0 and d.wait == pytest.approx(2.0)
    gate.on_throttled(0.5, retry_after=None, since=0.0)  # same burst of 429s: no second halving
    assert gate.current_rate == 8.0
    for t in range(1, 10):
        gate.on_throttled(float(t * 2), retry_after=None, since=0.0)
    assert gate.current_rate == 1.0  # floor = rate / 16
    assert not gate.try_acquire(18.5, 0.0).granted  # paused (1 s default)
    assert gate.try_acquire(19.5, 0.0).granted
    assert gate.try_acquire(19.5, 0.0).wait > 0  # drained by the 429: no burst after
    assert gate.try_acquire(21.0, 0.0).granted
    gate.on_success(21.0)
    assert gate.current_rate == pytest.approx(1.0 + 16 * 0.02)
    for _ in range(100):
        gate.on_success(22.0)
    assert gate.current_rate == 16.0


def test_retry_after_is_capped():
    gate = ProviderGate(config(retry_after_cap=5.0))
    assert gate.on_throttled(0.0, retry_after=3600, since=0.0).wait == pytest.approx(5.0)


def test_breaker_opens_after_consecutive_failures_probes_one_at_a_time_and_closes():
    gate = ProviderGate(config(breaker_failures=3, breaker_base_cooldown=2.0))
    for t in range(2):
        assert gate.on_failure(float(t), None, 0.0).wait == 0.0  # closed: no pause yet
    d = gate.on_failure(2.0, None, 0.0)
    assert gate.breaker_open and d.wait == pytest.approx(2.0)
    assert gate.try_acquire(3.0, 0.0).wait == pytest.approx(1.0)
    assert gate.try_acquire(4.0, 0.0).granted  # the probe
    assert not gate.try_acquire(4.1, 0.0).granted  # one probe at a time
    gate.on_failure(5.0, None, 0.0)  # probe failed: longer pause
    assert gate.paused_until == pytest.approx(9.0)
    assert gate.try_acquire(9.0, 0.0).granted
    gate.on_success(9.5)
    assert not gate.breaker_open and gate.failing_since is None
    assert gate.try_acquire(9.5, 0.0).granted


def test_success_resets_the_failure_streak():
    gate = ProviderGate(config(breaker_failures=3))
    gate.on_failure(0.0, None, 0.0)
    gate.on_failure(1.0, None, 0.0)
    gate.on_success(2.0)
    gate.on_failure(3.0, None, 0.0)
    assert not gate.breaker_open


def test_down_once_failures_outlast_the_budget_and_a_new_job_gets_a_fresh_budget():
    gate = ProviderGate(config(budget=10.0, retry_after_cap=30.0))
    assert gate.on_failure(0.0, retry_after=5.0, since=0.0).wait == pytest.approx(5.0)
    d = gate.on_failure(1.0, retry_after=600.0, since=0.0)  # next try at 31 > 0 + 10
    assert d.down
    assert gate.try_acquire(2.0, since=0.0).down
    # A job starting later is measured from its own start.
    assert not gate.try_acquire(25.0, since=25.0).down
    assert gate.try_acquire(31.0, since=25.0).granted


def test_a_long_429_storm_also_ends_in_down():
    gate = ProviderGate(config(budget=5.0))
    decisions = [gate.on_throttled(float(t), 1.0, 0.0) for t in range(8)]
    assert not decisions[0].down and decisions[-1].down


def test_backoff_is_exponential_jittered_capped_and_respects_retry_after():
    rng = random.Random(1)
    delays = [backoff_delay(n, base=0.5, cap=8.0, rng=rng) for n in range(1, 9)]
    for n, d in enumerate(delays, start=1):
        step = min(8.0, 0.5 * 2 ** (n - 1))
        assert step * 0.5 <= d <= min(8.0, step * 1.5)
    assert backoff_delay(1, retry_after=5.0, cap=8.0, rng=rng) >= 5.0
    assert backoff_delay(1, retry_after=500.0, cap=8.0, rng=rng) == 8.0
