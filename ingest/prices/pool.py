"""The price fetch's master side: the named actor pool (PriceFetcher x N, one RateLimiter per
provider), the dispatch of window requests over it, and `fetch_prices`, which plans, dispatches
and reports.

Fault tolerance: fetchers restart (max_restarts=-1) and the master resubmits the windows that were
in flight on a dead actor; cache writes are idempotent upserts (points first, then the coverage
row).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from ingest.config import Settings
from ingest.load.cassandra import get_session
from ingest.normalize.assets import provider_ids
from ingest.observe import metrics
from ingest.prices import cache_store
from ingest.prices.actors import FetchJob, PriceFetcher, RateLimiter, gate_config
from ingest.prices.planner import WindowRequest, plan_fetches
from ingest.prices.providers import provider_chain, provider_names
from ingest.prices.report import (
    UNAVAILABLE,
    PriceFetchReport,
    UnavailableWindow,
    WindowResult,
)

log = logging.getLogger(__name__)

FETCHER_NAME = "price-fetcher-{}"
LIMITER_NAME = "price-rate-limiter-{}"
MAX_RESUBMITS = 3  # a window whose actor died this often is reported unavailable


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


def _named_actor(
    name: str,
    cls: type,
    args: tuple,
    options: dict[str, Any],
    expected: dict[str, int] | None = None,
) -> Any:
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
    except ActorDiedError:  # dead for good (killed without restart, or its owner exited)
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
    while True:  # the name of a killed actor is freed asynchronously
        try:
            return actor_cls.options(name=name, **options).remote(*args)
        except ValueError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def get_pool(settings: Settings, placed: Mapping[str, Any] | None = None) -> PricePool:
    """Create or reuse the named actors `price-fetcher-0..N-1` and one
    `price-rate-limiter-<provider>` per configured provider, in the caller's Ray namespace. They
    take no CPU (I/O only) and restart when killed. ``placed``: the prices stage's Ray options
    (ingest/pipeline/placement.py, LEDGERFLOW_STAGE_RESOURCES), given by the caller."""
    placed = dict(placed or {})
    limiters = {
        name: _named_actor(
            LIMITER_NAME.format(name),
            RateLimiter,
            (),
            dict(num_cpus=0, max_restarts=-1, max_task_retries=-1, max_concurrency=1000, **placed),
        )
        for name in provider_names(settings)
    }
    options = dict(
        num_cpus=0,
        max_restarts=-1,
        max_task_retries=0,
        max_concurrency=settings.price_concurrency,
        **placed,
    )
    fetchers = [
        _named_actor(
            FETCHER_NAME.format(i),
            PriceFetcher,
            (settings.price_concurrency,),
            options,
            {"concurrency": settings.price_concurrency},
        )
        for i in range(settings.price_pool_size)
    ]
    return PricePool(fetchers, limiters)


# --- the master ----------------------------------------------------------------------------------
def dispatch(
    pool_factory: Callable[[], PricePool], requests: list[WindowRequest], job: Any, per_actor: int
) -> tuple[list[WindowResult], int]:
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
                    results.append(
                        WindowResult(
                            request.asset,
                            request.window.start,
                            request.window.end,
                            UNAVAILABLE,
                            detail=f"fetcher died: {type(exc).__name__}",
                        )
                    )
                else:
                    log.warning(
                        "fetcher died with %s %s in flight; resubmitting",
                        request.asset,
                        request.window,
                    )
                    pending.appendleft((request, tries + 1))
                    resubmitted += 1
                    stale = True
    return results, resubmitted


def fetch_prices(
    needs: pa.Table,
    *,
    settings: Settings,
    currency: str,
    placed: Mapping[str, Any] | None = None,
) -> PriceFetchReport:
    """Make sure every (asset, ts) of `needs` has its window in `currency` fetched (or cached)
    in the price cache. Unavailable windows are not recorded, so a later job retries them.
    Ray must be initialized (the pool is made of actors); ``placed``: see get_pool."""
    started = time.time()
    currency = currency.lower()
    session = get_session(settings)
    assets = pc.unique(needs.column("asset")).drop_null().to_pylist() if needs.num_rows else []
    coverage = cache_store.read_coverage(session, assets, currency=currency)
    plan = plan_fetches(
        needs,
        coverage,
        provider_ids(settings.asset_ids_file),
        now=int(started),
        recheck_after=settings.price_recheck_hours * 3600,
    )
    metrics.price_cache(hits=plan.windows_cached, misses=len(plan.requests))
    results: list[WindowResult] = []
    resubmitted = 0
    if plan.requests:
        pool = get_pool(settings, placed)
        providers = provider_chain(settings, currency)
        job = FetchJob(
            settings,
            currency,
            started,
            pool.limiters,
            {p.name: gate_config(p, settings) for p in providers},
        )
        results, resubmitted = dispatch(
            lambda: get_pool(settings, placed),
            plan.requests,
            ray.put(job),
            settings.price_concurrency,
        )
    unavailable = [
        UnavailableWindow(
            asset=r.asset,
            start=cache_store.utc(r.window_start),
            end=cache_store.utc(r.window_end),
            reason=r.detail,
        )
        for r in results
        if r.status == UNAVAILABLE
    ]
    newly_unlisted = {r.asset for r in results if r.status == "unlisted"}
    return PriceFetchReport(
        requests_sent=sum(r.requests for r in results),
        windows_needed=plan.windows_needed,
        windows_cached=plan.windows_cached,
        windows_fetched=sum(1 for r in results if r.status != UNAVAILABLE),
        windows_no_data=sum(1 for r in results if r.status == "no_data"),
        windows_unavailable=sorted(unavailable, key=lambda w: (w.asset, w.start)),
        assets_unlisted=sorted(set(plan.assets_unlisted) | newly_unlisted),
        elapsed_s=time.time() - started,
        windows_resubmitted=resubmitted,
        fetched_windows=sorted(
            (r.asset, cache_store.utc(r.window_start)) for r in results if r.status != UNAVAILABLE
        ),
    )
