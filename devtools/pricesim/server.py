"""The price service simulator: an aiohttp app speaking CoinGecko's protocol over the deterministic
paths of `paths.py`, with the failure modes real providers show (token-bucket 429s with
Retry-After = seconds until the next token, latency, random 500/502/503 without Retry-After,
scheduled outages answering 503 with Retry-After = seconds left of the outage, rate-limit errors
inside 200 bodies). Every API request counts in /stats, rejected ones included.

Granularity follows CoinGecko: range <= 1 day -> 5-minute points (the hourly path held over its
hour: each 5-minute point is `paths.price_at` of its time), <= 90 days -> hourly, longer -> daily
at 00:00 UTC. Points exist only from listing up to the simulator's "now". Deterministic given the
seed and the order of requests.

Pure parts (`chart_body`, `step_for_range`, `outage_remaining`, `SlidingCounter`) are tested
without a server; `make_app` is the thin aiohttp shell.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from devtools.pricesim import paths
from ingest.prices.ratelimit import TokenBucket

DAY = 86400
FIVE_MINUTES = 300
REQUEST_LOG_SIZE = 10_000
MARKET_CHART = "/api/v3/coins/{id}/market_chart/range"
COINS_LIST = "/api/v3/coins/list"


@dataclass
class SimConfig:
    rate: float = 0.0  # requests/s; 0 = unlimited
    burst: int = 0  # token bucket size; 0 = max(1, rate)
    latency_ms: float = 0.0
    error_rate: float = 0.0  # share of requests answered 500/502/503
    body_ratelimit_rate: float = 0.0  # share answered 200 with a rate-limit error body
    outages: list[tuple[float, float]] = field(default_factory=list)  # (start, duration) s
    seed: int = 0


def parse_outage(spec: str | list | tuple) -> tuple[float, float]:
    """'START:DURATION' (seconds after process start) or [start, duration]."""
    if isinstance(spec, str):
        start, _, duration = spec.partition(":")
        return float(start), float(duration)
    start, duration = spec
    return float(start), float(duration)


def outage_remaining(uptime: float, outages: list[tuple[float, float]]) -> float | None:
    """Seconds left of the outage in force at `uptime`, or None."""
    remaining = [
        start + duration - uptime
        for start, duration in outages
        if start <= uptime < start + duration
    ]
    return max(remaining) if remaining else None


def step_for_range(range_seconds: int) -> int:
    if range_seconds <= DAY:
        return FIVE_MINUTES
    if range_seconds <= 90 * DAY:
        return paths.HOUR
    return DAY


def chart_body(
    symbol: str, start: int, end: int, now: int, currency: str = "usd"
) -> dict[str, list]:
    """market_chart/range body for [start, end] (CoinGecko's inclusive `to`), up to `now`."""
    step = step_for_range(end - start)
    points = paths.series(symbol, start, min(end, now), step=step, currency=currency)
    return {
        "prices": [[ts * 1000, price] for ts, price in points],
        # Plausible companions; only `prices` is used by clients.
        "market_caps": [[ts * 1000, price * 1.9e7] for ts, price in points],
        "total_volumes": [[ts * 1000, price * 3.1e5] for ts, price in points],
    }


class SlidingCounter:
    """Largest number of events in any 1-second window (t-1, t], over all events seen."""

    def __init__(self, width: float = 1.0) -> None:
        self.width = width
        self.recent: deque[float] = deque()
        self.max_count = 0

    def add(self, t: float) -> None:
        self.recent.append(t)
        while self.recent and self.recent[0] <= t - self.width:
            self.recent.popleft()
        self.max_count = max(self.max_count, len(self.recent))


class Simulator:
    def __init__(self, config: SimConfig) -> None:
        self.started = time.monotonic()
        self.config = config
        self.apply(config)
        self.reset_stats()

    def apply(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.bucket = (
            TokenBucket(
                config.rate,
                config.burst or max(1, math.ceil(config.rate)),
                updated=time.monotonic(),
            )
            if config.rate > 0
            else None
        )

    def reset_stats(self) -> None:
        self.counts: Counter[str] = Counter()
        self.by_path: Counter[str] = Counter()
        self.request_log: deque[float] = deque(maxlen=REQUEST_LOG_SIZE)
        self.window = SlidingCounter()

    @property
    def uptime(self) -> float:
        return time.monotonic() - self.started

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.counts["requests"],
            "ok": self.counts["ok"],
            "throttled_429": self.counts["throttled_429"],
            "errors_5xx": self.counts["errors_5xx"],
            "body_errors": self.counts["body_errors"],
            "not_found": self.counts["not_found"],
            "with_api_key": self.counts["with_api_key"],
            "by_path": dict(self.by_path),
            "max_rate_1s": self.window.max_count,
            "request_log": list(self.request_log),
            "uptime_s": self.uptime,
        }

    def admit(self, is_chart: bool, has_key: bool, path: str) -> web.Response | None:
        """Count the request and decide its fate at arrival; None means serve it."""
        self.counts["requests"] += 1
        self.by_path[path] += 1
        if has_key:
            self.counts["with_api_key"] += 1
        if is_chart:
            now = time.time()
            self.request_log.append(now)
            self.window.add(now)
        remaining = outage_remaining(self.uptime, self.config.outages)
        if remaining is not None:
            self.counts["errors_5xx"] += 1
            return web.json_response(
                {"error": "service unavailable (maintenance)"},
                status=503,
                headers={"Retry-After": str(max(1, math.ceil(remaining)))},
            )
        if self.bucket is not None:
            wait = self.bucket.take(time.monotonic())
            if wait > 0:
                self.counts["throttled_429"] += 1
                return web.json_response(
                    {
                        "status": {
                            "error_code": 429,
                            "error_message": "You've exceeded the Rate "
                            "Limit. Please visit https://www.coingecko.com/en/api/pricing",
                        }
                    },
                    status=429,
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        if self.config.error_rate and self.rng.random() < self.config.error_rate:
            self.counts["errors_5xx"] += 1
            status = self.rng.choice((500, 502, 503))
            return web.json_response({"error": "internal error"}, status=status)
        if self.config.body_ratelimit_rate and self.rng.random() < self.config.body_ratelimit_rate:
            self.counts["body_errors"] += 1
            body = self.rng.choice(
                (
                    {
                        "Response": "Error",
                        "Message": "You are over your rate limit please upgrade your account!",
                        "Type": 99,
                    },
                    {
                        "status": {
                            "error_code": 429,
                            "error_message": "You've exceeded the Rate Limit.",
                        }
                    },
                )
            )
            return web.json_response(body, status=200)
        return None


def has_api_key(request: web.Request) -> bool:
    return bool(request.headers.get("x-cg-demo-api-key") or request.headers.get("x-cg-pro-api-key"))


def make_app(config: SimConfig) -> web.Application:
    sim = Simulator(config)
    app = web.Application()
    app["simulator"] = sim

    async def respond(request: web.Request, path: str, is_chart: bool, serve) -> web.Response:
        rejection = sim.admit(is_chart, has_api_key(request), path)
        if sim.config.latency_ms:
            await asyncio.sleep(sim.config.latency_ms / 1000)
        if rejection is not None:
            return rejection
        response = serve()
        if response.status == 200:
            sim.counts["ok"] += 1
        elif response.status == 404:
            sim.counts["not_found"] += 1
        return response

    async def coins_list(request: web.Request) -> web.Response:
        def serve() -> web.Response:
            return web.json_response(
                [
                    {
                        "id": m.coin_id,
                        "symbol": s.lower(),
                        "name": m.coin_id.replace("-", " ").title(),
                    }
                    for s, m in paths.MODELS.items()
                ]
            )

        return await respond(request, COINS_LIST, False, serve)

    async def market_chart(request: web.Request) -> web.Response:
        def serve() -> web.Response:
            symbol = paths.SYMBOL_BY_COIN_ID.get(request.match_info["id"])
            if symbol is None:
                return web.json_response({"error": "coin not found"}, status=404)
            query = request.query
            currency = query.get("vs_currency", "").lower()
            if currency not in paths.FX_PER_USD:
                return web.json_response(
                    {"error": f"invalid vs_currency (simulator: {', '.join(paths.FX_PER_USD)})"},
                    status=400,
                )
            try:
                start, end = int(float(query["from"])), int(float(query["to"]))
            except (KeyError, ValueError):
                return web.json_response(
                    {"error": "from and to (unix seconds) are required"}, status=400
                )
            body = chart_body(symbol, start, end, int(time.time()), currency)
            return web.Response(text=json.dumps(body), content_type="application/json")

        return await respond(request, MARKET_CHART, True, serve)

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(sim.stats())

    async def reset_stats(request: web.Request) -> web.Response:
        sim.reset_stats()
        return web.json_response({"reset": True})

    async def admin_config(request: web.Request) -> web.Response:
        changes = await request.json() if request.can_read_body else {}
        current = asdict(sim.config)
        unknown = set(changes) - set(current)
        if unknown:
            return web.json_response({"error": f"unknown fields {sorted(unknown)}"}, status=400)
        if "outages" in changes:
            changes["outages"] = [parse_outage(o) for o in changes["outages"]]
        sim.apply(SimConfig(**{**current, **changes}))
        return web.json_response({**asdict(sim.config), "uptime_s": sim.uptime})

    app.router.add_get(COINS_LIST, coins_list)
    app.router.add_get(MARKET_CHART, market_chart)
    app.router.add_get("/stats", get_stats)
    app.router.add_post("/stats/reset", reset_stats)
    app.router.add_post("/admin/config", admin_config)
    return app
