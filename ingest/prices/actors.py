"""The two actors of the price fetch, thin shells around pure code: `RateLimiter` holds the
pool-wide token bucket of one provider (ratelimit.ProviderGate); `PriceFetcher` sends one
window's requests, following the retry state machine (retry.WindowRetry), and stores what it got
through the price cache (prices/cache_store.py).

Shared rate limit: every request of every fetcher takes a token from its provider's one
`RateLimiter` first. One bucket (rather than splitting the budget per actor) keeps the pool's
total exact whatever the number of actors, lets an idle actor's share go to busy ones, and gives
a single place for the AIMD rate, the shared Retry-After pause and the circuit breaker. Its cost
is one actor round trip (~1 ms) per request, small against a provider's latency and rate. Grants
are FIFO (an asyncio.Lock) so no window starves while the rate is halved.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from ingest.config import Settings
from ingest.load.cassandra import get_session
from ingest.observe import metrics
from ingest.prices import cache_store
from ingest.prices.planner import WindowRequest
from ingest.prices.providers import provider_chain
from ingest.prices.providers.base import Outcome, OutcomeKind, PriceProvider
from ingest.prices.ratelimit import GateConfig, ProviderGate
from ingest.prices.report import STATUS_OF_KIND, UNAVAILABLE, WindowResult
from ingest.prices.retry import PROVIDER_DOWN, WindowRetry, gate_report

MAX_THROTTLED = 50  # 429s one window may absorb (they are also bounded by the budget)


def gate_config(provider: PriceProvider, settings: Settings) -> GateConfig:
    rate, burst = settings.price_rate, settings.price_burst
    if provider.max_rate is not None and provider.max_rate < rate:
        # A provider's own ceiling also bounds the burst (DefiLlama: ~1.5 req/s, no bursts).
        rate, burst = provider.max_rate, max(1, min(burst, math.ceil(provider.max_rate)))
    return GateConfig(
        key=f"{provider.name} {provider.config.base_url}",
        rate=rate,
        burst=burst,
        retry_after_cap=settings.price_retry_after_cap,
        budget=settings.price_retry_budget,
        probe_timeout=settings.price_timeout + 5,
    )


@dataclass(frozen=True)
class FetchJob:
    """One fetch's context, shipped to the actors once (ray.put)."""

    settings: Settings
    currency: str  # lower case, CoinGecko's vs_currency
    started_at: float  # wall clock: "since" of the job's retry budget
    limiters: dict[str, Any]  # provider name -> RateLimiter handle
    gates: dict[str, GateConfig]


class RateLimiter:
    """The pool-wide gate of one provider (see the module docstring). The gate's config travels
    with every call, so a restarted limiter, or one reused by a job with another endpoint or rate,
    configures itself."""

    def __init__(self) -> None:
        self.gate: ProviderGate | None = None
        self.lock = asyncio.Lock()

    def _gate(self, config: GateConfig) -> ProviderGate:
        if self.gate is None or self.gate.config != config:
            self.gate = ProviderGate(config, now=time.time())
        return self.gate

    async def acquire(self, config: GateConfig, since: float) -> bool:
        """True once a request may go; False when the provider is down for this job."""
        async with self.lock:
            # Bounded: the gate says DOWN once failures outlast the budget, and tokens arrive at
            # least at the floor rate otherwise.
            give_up_at = time.time() + 10 * (config.budget + config.retry_after_cap) + 600
            while time.time() < give_up_at:
                decision = self._gate(config).try_acquire(time.time(), since)
                if decision.granted:
                    return True
                if decision.down:
                    return False
                await asyncio.sleep(min(decision.wait, 1.0))
            return False

    async def record(
        self, config: GateConfig, kind: str, retry_after: float | None, since: float
    ) -> bool:
        """Report an outcome ('success' | 'throttled' | 'failure'); False means: give up."""
        gate, now = self._gate(config), time.time()
        if kind == "success":
            gate.on_success(now)
            return True
        decide = gate.on_throttled if kind == "throttled" else gate.on_failure
        return not decide(now, retry_after, since).down

    def spec(self) -> dict[str, int]:
        return {"pid": os.getpid()}

    def state(self) -> dict[str, Any]:
        gate = self.gate
        if gate is None:
            return {}
        return {
            "rate": gate.current_rate,
            "breaker_open": gate.breaker_open,
            "paused_until": gate.paused_until,
            "failing_since": gate.failing_since,
        }


class PriceFetcher:
    """Fetches one (asset, window) at a time per call, up to `concurrency` calls at once (the
    actor's max_concurrency); one aiohttp ClientSession per actor."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.http: aiohttp.ClientSession | None = None

    def spec(self) -> dict[str, int]:
        return {"concurrency": self.concurrency, "pid": os.getpid()}

    async def _session(self) -> aiohttp.ClientSession:
        if self.http is None or self.http.closed:
            self.http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency * 2)
            )
        return self.http

    async def fetch_window(self, request: WindowRequest, job: FetchJob) -> WindowResult:
        result = WindowResult(
            request.asset,
            request.window.start,
            request.window.end,
            UNAVAILABLE,
            detail="no provider configured",
        )
        sent = 0
        for provider in provider_chain(job.settings, job.currency):
            result = await self._fetch_from(provider, request, job)
            sent += result.requests
            if result.status != UNAVAILABLE:
                break  # the first provider that answers wins
        return WindowResult(**{**result.__dict__, "requests": sent})

    async def _fetch_from(
        self, provider: PriceProvider, request: WindowRequest, job: FetchJob
    ) -> WindowResult:
        settings, since = job.settings, job.started_at
        limiter, config = job.limiters[provider.name], job.gates[provider.name]
        retry = WindowRetry(
            settings.price_max_retries, MAX_THROTTLED, settings.price_retry_after_cap
        )
        sent = 0
        while True:
            if not await limiter.acquire.remote(config, since):
                step_reason = PROVIDER_DOWN
                break
            sent_at = time.time()
            outcome = await self._send(provider, request, settings.price_timeout)
            sent += 1
            metrics.price_request(provider.name, outcome.kind.value)
            report = gate_report(outcome.kind)
            healthy = (
                True
                if report is None
                else await limiter.record.remote(config, report.value, outcome.retry_after, since)
            )
            step = retry.after_outcome(
                outcome.kind, outcome.detail, outcome.retry_after, provider_down=not healthy
            )
            if step.action == "done":
                await asyncio.to_thread(
                    cache_store.store_outcome,
                    get_session(settings),
                    request.asset,
                    request.window.start,
                    request.window.end,
                    outcome,
                    provider=provider.name,
                    covered_until=min(request.window.end, int(sent_at)),
                    currency=job.currency,
                )
                return WindowResult(
                    request.asset,
                    request.window.start,
                    request.window.end,
                    STATUS_OF_KIND[outcome.kind],
                    len(outcome.points),
                    sent,
                    provider.name,
                )
            if step.action == "give_up":
                step_reason = step.reason
                break
            if step.delay:
                await asyncio.sleep(step.delay)
        return WindowResult(
            request.asset,
            request.window.start,
            request.window.end,
            UNAVAILABLE,
            requests=sent,
            provider=provider.name,
            detail=step_reason,
        )

    async def _send(
        self, provider: PriceProvider, request: WindowRequest, timeout: float
    ) -> Outcome:
        http_request = provider.build_request(request.coin_id, request.window)
        session = await self._session()
        try:
            async with session.request(
                http_request.method,
                http_request.url,
                params=list(http_request.params),
                headers=dict(http_request.headers),
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                body = await response.read()
                return provider.parse(
                    request.coin_id, request.window, response.status, dict(response.headers), body
                )
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return Outcome(OutcomeKind.SERVER_ERROR, detail=f"network: {exc!r}")
