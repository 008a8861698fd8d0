"""The price fetch: a pool of PriceFetcher actors behind one shared rate limit, and the master
function `fetch_prices` that plans, dispatches and reports.

Shared rate limit: one `RateLimiter` async actor per provider holds the only token bucket (a
`ProviderGate`); every request of every fetcher takes a token from it first. One bucket (rather
than splitting the budget per actor) keeps the pool's total exact whatever the number of actors,
lets an idle actor's share go to busy ones, and gives a single place for the AIMD rate, the shared
Retry-After pause and the circuit breaker. Its cost is one actor round trip (~1 ms) per request,
small against a provider's latency and rate. Grants are FIFO (an asyncio.Lock) so no window
starves while the rate is halved.

Fault tolerance: fetchers restart (max_restarts=-1) and the master resubmits the windows that were
in flight on a dead actor; writes are idempotent upserts (points first, then the coverage row).
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Callable
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import pyarrow as pa
import pyarrow.compute as pc
import ray
from pydantic import BaseModel
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from ingest.config import Settings, get_settings
from ingest.load import price_cache
from ingest.load.cassandra import get_session
from ingest.normalize.assets import provider_ids
from ingest.observe import metrics
from ingest.pipeline.placement import stage_options
from ingest.prices.planner import CoverageRecord, WindowRequest, plan_fetches
from ingest.prices.providers import provider_chain, provider_names
from ingest.prices.providers.base import (FINAL_KINDS, THROTTLED_KINDS, Outcome, OutcomeKind,
                                          PriceProvider)
from ingest.prices.ratelimit import GateConfig, ProviderGate, backoff_delay

log = logging.getLogger(__name__)

FETCHER_NAME = "price-fetcher-{}"
LIMITER_NAME = "price-rate-limiter-{}"
MAX_RESUBMITS = 3          # a window whose actor died this often is reported unavailable
MAX_THROTTLED = 50         # 429s one window may absorb (they are also bounded by the budget)

STATUS_OF_KIND = {OutcomeKind.OK: "ok", OutcomeKind.NO_DATA: "no_data",
                  OutcomeKind.UNLISTED: "unlisted"}
UNAVAILABLE = "unavailable"


# --- results and report --------------------------------------------------------------------
@dataclass(frozen=True)
class WindowResult:
    asset: str
    window_start: int
    window_end: int
    status: str          # ok | no_data | unlisted | unavailable
    points: int = 0
    requests: int = 0    # HTTP requests sent for it (retries included)
    provider: str = ""
    detail: str = ""


class UnavailableWindow(BaseModel):
    asset: str
    start: datetime
    end: datetime
    reason: str


class PriceFetchReport(BaseModel):
    requests_sent: int
    windows_needed: int          # distinct (asset, window) pairs the needs fall in
    windows_cached: int          # already covered before this job
    windows_fetched: int         # answered this job (ok, no_data or unlisted)
    windows_no_data: int         # of those fetched, answered "no price here"
    windows_unavailable: list[UnavailableWindow]
    assets_unlisted: list[str]
    elapsed_s: float
    windows_resubmitted: int = 0   # re-run because their fetcher actor died
    # (asset, window start) answered this job: rows in them may have changed value or status.
    fetched_windows: list[tuple[str, datetime]] = []

    @property
    def unavailable_assets(self) -> set[str]:
        """What value_transactions(unavailable_assets=...) wants."""
        return {w.asset for w in self.windows_unavailable}


# --- per-job context shipped to the actors ---------------------------------------------------
def gate_config(provider: PriceProvider, settings: Settings) -> GateConfig:
    rate, burst = settings.price_rate, settings.price_burst
    if provider.max_rate is not None and provider.max_rate < rate:
        # A provider's own ceiling also bounds the burst (DefiLlama: ~1.5 req/s, no bursts).
        rate, burst = provider.max_rate, max(1, min(burst, math.ceil(provider.max_rate)))
    return GateConfig(key=f"{provider.name} {provider.config.base_url}", rate=rate,
                      burst=burst, retry_after_cap=settings.price_retry_after_cap,
                      budget=settings.price_retry_budget, probe_timeout=settings.price_timeout + 5)


@dataclass(frozen=True)
class FetchJob:
    settings: Settings
    started_at: float                    # wall clock: "since" of the job's retry budget
    limiters: dict[str, Any]             # provider name -> RateLimiter handle
    gates: dict[str, GateConfig]


# --- actors (thin shells) ----------------------------------------------------------------------
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

    async def record(self, config: GateConfig, kind: str, retry_after: float | None,
                     since: float) -> bool:
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
        return {"rate": gate.current_rate, "breaker_open": gate.breaker_open,
                "paused_until": gate.paused_until, "failing_since": gate.failing_since}


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
                connector=aiohttp.TCPConnector(limit=self.concurrency * 2))
        return self.http

    async def fetch_window(self, request: WindowRequest, job: FetchJob) -> WindowResult:
        result = WindowResult(request.asset, request.window.start, request.window.end,
                              UNAVAILABLE, detail="no provider configured")
        sent = 0
        for provider in provider_chain(job.settings):
            result = await self._fetch_from(provider, request, job)
            sent += result.requests
            if result.status != UNAVAILABLE:
                break   # the first provider that answers wins
        return WindowResult(**{**result.__dict__, "requests": sent})

    async def _fetch_from(self, provider: PriceProvider, request: WindowRequest,
                          job: FetchJob) -> WindowResult:
        settings, since = job.settings, job.started_at
        limiter, config = job.limiters[provider.name], job.gates[provider.name]
        sent = failures = throttled = 0

        def unavailable(detail: str) -> WindowResult:
            return WindowResult(request.asset, request.window.start, request.window.end,
                                UNAVAILABLE, requests=sent, provider=provider.name, detail=detail)

        while failures <= settings.price_max_retries and throttled <= MAX_THROTTLED:
            if not await limiter.acquire.remote(config, since):
                return unavailable("provider down (retry budget exhausted)")
            sent_at = time.time()
            outcome = await self._send(provider, request, settings.price_timeout)
            sent += 1
            metrics.price_request(provider.name, outcome.kind.value)
            if outcome.kind in FINAL_KINDS:
                await limiter.record.remote(config, "success", None, since)
                covered_until = min(request.window.end, int(sent_at))
                await asyncio.to_thread(store_outcome, settings, request, outcome, provider.name,
                                        covered_until)
                return WindowResult(request.asset, request.window.start, request.window.end,
                                    STATUS_OF_KIND[outcome.kind], len(outcome.points), sent,
                                    provider.name)
            if outcome.kind in THROTTLED_KINDS:
                throttled += 1
                # The limiter pauses the whole pool; the next acquire waits that out.
                if not await limiter.record.remote(config, "throttled", outcome.retry_after, since):
                    return unavailable(f"rate limited past the retry budget ({outcome.detail})")
                continue
            if outcome.kind == OutcomeKind.CLIENT_ERROR:
                return unavailable(f"client error: {outcome.detail}")
            failures += 1
            if not await limiter.record.remote(config, "failure", outcome.retry_after, since):
                return unavailable(f"provider failing past the retry budget ({outcome.detail})")
            if failures <= settings.price_max_retries:
                await asyncio.sleep(backoff_delay(failures, cap=settings.price_retry_after_cap,
                                                  retry_after=outcome.retry_after))
        return unavailable(f"retries exhausted ({failures} errors, {throttled} throttled)")

    async def _send(self, provider: PriceProvider, request: WindowRequest,
                    timeout: float) -> Outcome:
        http_request = provider.build_request(request.coin_id, request.window)
        session = await self._session()
        try:
            async with session.request(http_request.method, http_request.url,
                                       params=list(http_request.params),
                                       headers=dict(http_request.headers),
                                       timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                body = await response.read()
                return provider.parse(request.coin_id, request.window, response.status,
                                      dict(response.headers), body)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return Outcome(OutcomeKind.SERVER_ERROR, detail=f"network: {exc!r}")


def store_outcome(settings: Settings, request: WindowRequest, outcome: Outcome, provider: str,
                  covered_until: int) -> None:
    """Points first, then the coverage row that says they are there (both idempotent)."""
    session = get_session(settings.keyspace, settings)
    currency = settings.fiat_currency.lower()
    if outcome.points:
        price_cache.write_points(session, request.asset, outcome.points,
                                 granularity=outcome.granularity, provider=provider,
                                 currency=currency, concurrency=settings.write_concurrency)
    record = CoverageRecord(request.asset, request.window.start, request.window.end,
                            covered_until, STATUS_OF_KIND[outcome.kind])
    price_cache.write_coverage(session, record, provider=provider, points=len(outcome.points),
                               currency=currency)


# --- the pool ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PricePool:
    fetchers: list[Any]
    limiters: dict[str, Any]


# Non-detached named actors are garbage-collected once no handle is left: this process keeps its
# handles (so the pool, and the limiter's learned rate, live as long as the process that made them).
_handles: dict[str, Any] = {}
_remote_classes: dict[str, Any] = {}


def _remote_class(cls: type) -> Any:
    if cls.__name__ not in _remote_classes:
        _remote_classes[cls.__name__] = ray.remote(cls)
    return _remote_classes[cls.__name__]


def _named_actor(name: str, cls: type, args: tuple, options: dict[str, Any],
                 expected: dict[str, int] | None = None) -> Any:
    """The live actor `name` (this process's handle, or the namespace's, or a new one); one with
    another spec (max_concurrency is fixed at creation) is replaced."""
    # Handles are only good in the Ray session that made them (tests re-init Ray).
    key = f"{ray.get_runtime_context().get_job_id()}/{name}"
    actor = _handles.get(key)
    if actor is None:
        actor = _remote_class(cls).options(name=name, get_if_exists=True, **options).remote(*args)
    try:
        spec = _spec(actor)
        if expected and {k: spec.get(k) for k in expected} != expected:
            ray.kill(actor, no_restart=True)
            actor = _recreate(_remote_class(cls), name, args, options)
    except ActorDiedError:   # dead for good (killed without restart, or its owner exited)
        actor = _recreate(_remote_class(cls), name, args, options)
    _handles[key] = actor
    return actor


def _spec(actor: Any, timeout_s: float = 60.0) -> dict[str, int]:
    """The actor's spec, waiting while it restarts."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return ray.get(actor.spec.remote())
        except ActorUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _recreate(actor_cls: Any, name: str, args: tuple, options: dict[str, Any]) -> Any:
    deadline = time.monotonic() + 30
    while True:   # the name of a killed actor is freed asynchronously
        try:
            return actor_cls.options(name=name, **options).remote(*args)
        except ValueError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def get_pool(settings: Settings | None = None) -> PricePool:
    """Create or reuse the named actors `price-fetcher-0..N-1` and one
    `price-rate-limiter-<provider>` per configured provider, in the caller's Ray namespace. They
    take no CPU (I/O only) and restart when killed."""
    settings = settings or get_settings()
    placed = stage_options("prices")   # issue 14: LEDGERFLOW_STAGE_RESOURCES
    limiters = {name: _named_actor(LIMITER_NAME.format(name), RateLimiter, (), dict(
                    num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=1000,
                    **placed))
                for name in provider_names(settings)}
    options = dict(num_cpus=0, max_restarts=-1, max_task_retries=0,
                   max_concurrency=settings.price_concurrency, **placed)
    fetchers = [_named_actor(FETCHER_NAME.format(i), PriceFetcher, (settings.price_concurrency,),
                             options, {"concurrency": settings.price_concurrency})
                for i in range(settings.price_pool_size)]
    return PricePool(fetchers, limiters)


# --- the master ----------------------------------------------------------------------------------
def dispatch(pool_factory: Callable[[], PricePool], requests: list[WindowRequest], job: Any,
             per_actor: int) -> tuple[list[WindowResult], int]:
    """Run every request on the pool, at most `per_actor` in flight per actor; windows whose actor
    died are resubmitted up to MAX_RESUBMITS times, after asking `pool_factory` again (it waits for
    a restarting actor, or replaces one that is gone for good).
    Returns (results, number of resubmissions)."""
    pool = pool_factory()
    pending: deque[tuple[WindowRequest, int]] = deque((r, 0) for r in requests)
    inflight: dict[Any, tuple[WindowRequest, int, int]] = {}
    load = [0] * len(pool.fetchers)
    results: list[WindowResult] = []
    resubmitted = 0
    stale = False
    while pending or inflight:
        if stale and pending:
            pool, stale = pool_factory(), False
        while pending:
            actor_index = min(range(len(load)), key=load.__getitem__)
            if load[actor_index] >= per_actor:
                break
            request, tries = pending.popleft()
            ref = pool.fetchers[actor_index].fetch_window.remote(request, job)
            inflight[ref] = (request, actor_index, tries)
            load[actor_index] += 1
        ready, _ = ray.wait(list(inflight), num_returns=1)
        for ref in ready:
            request, actor_index, tries = inflight.pop(ref)
            load[actor_index] -= 1
            try:
                results.append(ray.get(ref))
            except (RayActorError, ActorUnavailableError) as exc:
                if tries + 1 >= MAX_RESUBMITS:
                    results.append(WindowResult(request.asset, request.window.start,
                                                request.window.end, UNAVAILABLE,
                                                detail=f"fetcher died: {type(exc).__name__}"))
                else:
                    log.warning("fetcher died with %s %s in flight; resubmitting", request.asset,
                                request.window)
                    pending.appendleft((request, tries + 1))
                    resubmitted += 1
                    stale = True
    return results, resubmitted


def fetch_prices(needs: pa.Table, *, settings: Settings | None = None) -> PriceFetchReport:
    """Make sure every (asset, ts) of `needs` has its window fetched (or cached) in `prices` /
    `price_coverage`. Unavailable windows are not recorded, so a later job retries them."""
    settings = settings or get_settings()
    started = time.time()
    currency = settings.fiat_currency.lower()
    session = get_session(settings.keyspace, settings)
    assets = pc.unique(needs.column("asset")).drop_null().to_pylist() if needs.num_rows else []
    coverage = price_cache.read_coverage(session, assets, currency=currency)
    plan = plan_fetches(needs, coverage, provider_ids(settings.asset_ids_file), now=int(started))
    results: list[WindowResult] = []
    resubmitted = 0
    metrics.price_cache(hits=plan.windows_cached, misses=len(plan.requests))
    if plan.requests:
        if not ray.is_initialized():
            from ingest.pipeline.ray_runtime import ensure_ray
            ensure_ray()
        pool = get_pool(settings)
        providers = provider_chain(settings)
        job = FetchJob(settings, started, pool.limiters,
                       {p.name: gate_config(p, settings) for p in providers})
        results, resubmitted = dispatch(lambda: get_pool(settings), plan.requests,
                                        ray.put(job), settings.price_concurrency)
    unavailable = [UnavailableWindow(asset=r.asset, start=price_cache.utc(r.window_start),
                                     end=price_cache.utc(r.window_end), reason=r.detail)
                   for r in results if r.status == UNAVAILABLE]
    newly_unlisted = {r.asset for r in results if r.status == "unlisted"}
    return PriceFetchReport(
        requests_sent=sum(r.requests for r in results),
        windows_needed=plan.windows_needed, windows_cached=plan.windows_cached,
        windows_fetched=sum(1 for r in results if r.status != UNAVAILABLE),
        windows_no_data=sum(1 for r in results if r.status == "no_data"),
        windows_unavailable=sorted(unavailable, key=lambda w: (w.asset, w.start)),
        assets_unlisted=sorted(set(plan.assets_unlisted) | newly_unlisted),
        elapsed_s=time.time() - started, windows_resubmitted=resubmitted,
        fetched_windows=sorted((r.asset, price_cache.utc(r.window_start)) for r in results
                               if r.status != UNAVAILABLE))
