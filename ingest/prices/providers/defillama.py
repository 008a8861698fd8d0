"""DefiLlama coins API `batchHistorical`: many coins x many timestamps per call, coins named
`coingecko:<id>`. It answers point lookups, not series, so one (coin, window) request asks for the
window's days at 00:00 UTC (a daily series: the fallback when the hourly provider is unavailable).

Long URLs fail (413/414 past ~150 coins): `build_batch_requests` splits by coin count and by URL
length. DefiLlama omits coins it has no price for, so "absent" is no_data, never unlisted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from ingest.prices.providers.base import (
    HttpRequest,
    Outcome,
    OutcomeKind,
    PriceProvider,
    Window,
    classify_status,
    loads_exact,
    to_price,
)
from ingest.prices.providers.coingecko import body_rate_limit_message

DAY = 86400
MAX_COINS_PER_CALL = 100  # well under the ~150 where URLs start to fail
MAX_URL_CHARS = 6000


def llama_key(coin_id: str) -> str:
    return f"coingecko:{coin_id}"


def window_days(window: Window) -> list[int]:
    """00:00 UTC of every day inside [start, end)."""
    first = -(-window.start // DAY) * DAY
    return list(range(first, window.end, DAY))


def _request(base_url: str, coins: Mapping[str, Sequence[int]]) -> HttpRequest:
    body = json.dumps({llama_key(c): list(ts) for c, ts in coins.items()}, separators=(",", ":"))
    return HttpRequest(
        "GET",
        f"{base_url.rstrip('/')}/batchHistorical",
        (("coins", body),),
        (("accept", "application/json"),),
    )


def request_url_length(request: HttpRequest) -> int:
    return len(request.url) + 1 + len(urlencode(request.params))


def build_batch_requests(
    base_url: str,
    coins: Mapping[str, Sequence[int]],
    *,
    max_coins: int = MAX_COINS_PER_CALL,
    max_url_chars: int = MAX_URL_CHARS,
) -> list[HttpRequest]:
    """The fewest batchHistorical calls asking every coin at its timestamps, each URL within
    limits. A coin whose timestamps alone overflow a URL is split across calls."""
    requests: list[HttpRequest] = []
    current: dict[str, list[int]] = {}

    def fits(candidate: dict[str, list[int]]) -> bool:
        return (
            len(candidate) <= max_coins
            and request_url_length(_request(base_url, candidate)) <= max_url_chars
        )

    for coin, stamps in coins.items():
        pending = list(stamps)
        while pending:
            # Largest prefix of this coin's timestamps that fits beside what is already there.
            lo, hi = 0, len(pending)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if fits({**current, coin: current.get(coin, []) + pending[:mid]}):
                    lo = mid
                else:
                    hi = mid - 1
            if lo == 0:
                if not current:
                    raise ValueError("a single timestamp does not fit in a URL")
                requests.append(_request(base_url, current))
                current = {}
                continue
            current[coin] = current.get(coin, []) + pending[:lo]
            pending = pending[lo:]
    if current:
        requests.append(_request(base_url, current))
    return requests


def parse_batch(body: Any) -> dict[str, list[tuple[int, Decimal]]]:
    """{coin id: [(unix ms, price), ...] ascending} from a batchHistorical body."""
    out: dict[str, list[tuple[int, Decimal]]] = {}
    coins = body.get("coins") if isinstance(body, dict) else None
    if not isinstance(coins, dict):
        return out
    for key, entry in coins.items():
        coin = key.split(":", 1)[1] if key.startswith("coingecko:") else key
        by_ms: dict[int, Decimal] = {}
        for point in (entry or {}).get("prices", []) if isinstance(entry, dict) else []:
            if not isinstance(point, dict):
                continue
            price = to_price(point.get("price"))
            try:
                ms = int(point["timestamp"]) * 1000
            except (KeyError, TypeError, ValueError):
                continue
            if price is not None:
                by_ms[ms] = price
        out[coin] = sorted(by_ms.items())
    return out


class DefiLlama(PriceProvider):
    name = "defillama"
    max_rate = 1.5  # what well-behaved clients use; the API is undocumented

    def build_request(self, coin_id: str, window: Window) -> HttpRequest:
        return _request(self.config.base_url, {coin_id: window_days(window)})

    def build_batch_requests(self, coins: Mapping[str, Sequence[int]]) -> list[HttpRequest]:
        return build_batch_requests(self.config.base_url, coins)

    def parse(
        self, coin_id: str, window: Window, status: int, headers: Mapping[str, str], body: bytes
    ) -> Outcome:
        decided = classify_status(status, headers)
        if decided is not None:
            return decided
        if status == 404:
            return Outcome(OutcomeKind.CLIENT_ERROR, detail="HTTP 404")
        try:
            data = loads_exact(body) if body else None
        except ValueError:
            return Outcome(OutcomeKind.SERVER_ERROR, detail=f"HTTP {status}: body is not JSON")
        limited = body_rate_limit_message(data)
        if limited is not None:
            return Outcome(OutcomeKind.BODY_RATE_LIMITED, detail=limited)
        if not isinstance(data, dict) or not isinstance(data.get("coins"), dict):
            return Outcome(OutcomeKind.SERVER_ERROR, detail="body without coins")
        lo, hi = window.start * 1000, window.end * 1000
        points = tuple((ms, p) for ms, p in parse_batch(data).get(coin_id, []) if lo <= ms < hi)
        if not points:
            return Outcome(OutcomeKind.NO_DATA)
        return Outcome(OutcomeKind.OK, points=points, granularity="day")
