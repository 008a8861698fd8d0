"""Rate-limit math, pure: a token bucket, and the per-provider gate that the whole fetcher pool
shares (token bucket + AIMD on 429 + circuit breaker + the "provider is down" verdict).

Nothing here reads a clock: every method takes `now` (seconds, monotonic), so the behaviour is
unit-tested without sleeping. The RateLimiter Ray actor (ingest.prices.fetcher) and the simulator's
server-side limit are thin shells around these classes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """`rate` tokens per second, at most `burst` stored. Starts full."""

    rate: float
    burst: float
    tokens: float = -1.0
    updated: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = float(self.burst)

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def take(self, now: float) -> float:
        """Take one token if there is one: returns 0.0. Otherwise take nothing and return the
        seconds until one is available."""
        self.refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def set_rate(self, now: float, rate: float) -> None:
        self.refill(now)  # tokens earned at the old rate stay earned
        self.rate = rate

    def drain(self, now: float) -> None:
        self.refill(now)
        self.tokens = 0.0


def backoff_delay(
    failures: int,
    *,
    base: float = 0.5,
    cap: float = 30.0,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number `failures` (1-based): jittered exponential backoff
    (x0.5..x1.5, so retries of many windows spread out), never shorter than a capped Retry-After."""
    draw = random.random() if rng is None else rng.random()
    delay = min(cap, base * 2 ** max(0, failures - 1)) * (0.5 + draw)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return min(delay, cap)


@dataclass(frozen=True)
class GateConfig:
    """What a gate is configured with; a changed config (e.g. another base URL) resets the state."""

    key: str  # provider name + base URL: another endpoint is another gate
    rate: float  # requests/s for the whole pool
    burst: int
    retry_after_cap: float  # longest pause honoured (Retry-After or breaker cool-down)
    budget: float  # a provider failing for longer than this is "down" for a job
    breaker_failures: int = 5  # consecutive 5xx/network failures that open the breaker
    breaker_base_cooldown: float = 1.0  # first pause of the breaker; doubles per re-trip
    min_rate_share: float = 1 / 16  # floor of the rate after halvings, as a share of `rate`
    recovery_share: float = 0.02  # additive increase per success, as a share of `rate`
    probe_timeout: float = 60.0  # a half-open probe with no verdict after this is lost


@dataclass(frozen=True)
class Decision:
    """Verdict of the gate: go now (`granted`), wait `wait` seconds and ask again, or give up
    (`down`: the provider has failed for longer than the job's retry budget)."""

    granted: bool = False
    wait: float = 0.0
    down: bool = False


GRANTED = Decision(granted=True)
DOWN = Decision(down=True)


@dataclass
class ProviderGate:
    """Shared state of one provider for the whole pool.

    - Token bucket at `rate` (the only admission path, so N actors together never exceed it).
    - 429 (or a rate-limit error inside a 200 body): halve the rate (at most once a second, since
      the in-flight requests all see the same 429s; floor `rate * min_rate_share`), drain the
      bucket, pause everyone for the capped Retry-After; each later success adds back
      `rate * recovery_share` (additive increase).
    - 5xx/network: after `breaker_failures` in a row the breaker opens: nobody is admitted until the
      cool-down ends, then one probe at a time (half-open) until a success closes it.
    - "down": the provider has been failing without a single success since `failing_since` and the
      next moment it may be tried lies beyond `budget` seconds from then (or from the job's start,
      whichever is later, so a new job gets a fresh budget).
    """

    config: GateConfig
    now: float = 0.0
    bucket: TokenBucket = field(init=False)
    current_rate: float = field(init=False)
    paused_until: float = 0.0
    failing_since: float | None = None
    consecutive_failures: int = 0
    breaker_trips: int = 0
    breaker_open: bool = False
    probe_granted_at: float | None = None
    last_decrease: float = float("-inf")

    def __post_init__(self) -> None:
        self.current_rate = self.config.rate
        self.bucket = TokenBucket(self.config.rate, self.config.burst, updated=self.now)

    @property
    def floor_rate(self) -> float:
        return self.config.rate * self.config.min_rate_share

    def _is_down(self, now: float, since: float, next_try: float) -> bool:
        if self.failing_since is None:
            return False
        return next_try - max(self.failing_since, since) > self.config.budget

    def try_acquire(self, now: float, since: float) -> Decision:
        """One request may go now, or wait, or the provider is down (for a job started at
        `since`)."""
        if now < self.paused_until:
            if self._is_down(now, since, self.paused_until):
                return DOWN
            return Decision(wait=self.paused_until - now)
        if self.breaker_open:
            if (
                self.probe_granted_at is not None
                and now - self.probe_granted_at < self.config.probe_timeout
            ):
                # A probe is out; its verdict decides. Meanwhile the failing streak may run out.
                if self._is_down(now, since, now):
                    return DOWN
                return Decision(wait=0.25)
        wait = self.bucket.take(now)
        if wait > 0:
            return Decision(wait=wait)
        if self.breaker_open:
            self.probe_granted_at = now
        return GRANTED

    def on_success(self, now: float) -> None:
        self.failing_since = None
        self.consecutive_failures = 0
        self.breaker_open = False
        self.breaker_trips = 0
        self.probe_granted_at = None
        if self.current_rate < self.config.rate:
            rate = min(
                self.config.rate, self.current_rate + self.config.rate * self.config.recovery_share
            )
            self.current_rate = rate
            self.bucket.set_rate(now, rate)

    def on_throttled(self, now: float, retry_after: float | None, since: float) -> Decision:
        """A 429 or a body rate-limit error: multiplicative decrease and a shared pause."""
        if self.failing_since is None:
            self.failing_since = now
        if now - self.last_decrease >= 1.0:
            self.current_rate = max(self.floor_rate, self.current_rate / 2)
            self.bucket.set_rate(now, self.current_rate)
            self.last_decrease = now
        self.bucket.drain(now)
        pause = min(retry_after if retry_after is not None else 1.0, self.config.retry_after_cap)
        self.paused_until = max(self.paused_until, now + pause)
        self.probe_granted_at = None
        if self._is_down(now, since, self.paused_until):
            return DOWN
        return Decision(wait=max(0.0, self.paused_until - now))

    def _cooldown(self) -> float:
        return min(
            self.config.retry_after_cap,
            self.config.breaker_base_cooldown * 2 ** max(0, self.breaker_trips - 1),
        )

    def on_failure(self, now: float, retry_after: float | None, since: float) -> Decision:
        """A 5xx or network error. Returns DOWN when waiting would exceed the job's budget;
        otherwise how long the pool is paused (0 while the breaker stays closed)."""
        if self.failing_since is None:
            self.failing_since = now
        self.consecutive_failures += 1
        self.probe_granted_at = None
        capped_retry_after = (
            min(retry_after, self.config.retry_after_cap) if retry_after is not None else 0.0
        )
        if self.breaker_open and now >= self.paused_until:
            # The half-open probe failed: stay open, longer each time.
            self.breaker_trips += 1
            self.paused_until = now + max(self._cooldown(), capped_retry_after)
        elif not self.breaker_open and self.consecutive_failures >= self.config.breaker_failures:
            self.breaker_open = True
            self.breaker_trips = 1
            self.paused_until = max(
                self.paused_until, now + max(self._cooldown(), capped_retry_after)
            )
        elif retry_after is not None:
            # A server asking for a pause speaks for the whole service, not just this request
            # (and late failures of requests sent before the breaker opened land here).
            self.paused_until = max(self.paused_until, now + capped_retry_after)
        if self._is_down(now, since, max(now, self.paused_until)):
            return DOWN
        return Decision(wait=max(0.0, self.paused_until - now))
