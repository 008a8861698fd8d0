"""One interface for every price provider: build the HTTP request for (coin id, window), parse
the response into an Outcome. Both are pure (no I/O): the PriceFetcher actor sends the request and
hands status, headers and body back to `parse`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Context, Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any

# Prices are stored as decimal(38, 18) downstream: quantize once, here, so the cache holds exactly
# what valuation uses. Precision 60 so quantizing a large number never raises.
PRICE_QUANTUM = Decimal("1e-18")
_CTX = Context(prec=60)


class OutcomeKind(str, Enum):
    OK = "ok"  # points in the window
    NO_DATA = "no_data"  # the provider knows the coin but has no point here
    UNLISTED = "unlisted"  # the provider does not know the coin at all
    RATE_LIMITED = "rate_limited"  # HTTP 429
    BODY_RATE_LIMITED = "body_rate_limited"  # rate-limit error inside an HTTP 200 body
    SERVER_ERROR = "server_error"  # 5xx, garbled body, network error: retry with backoff
    CLIENT_ERROR = "client_error"  # other 4xx (bad key, URL too long): retrying cannot help


FINAL_KINDS = frozenset({OutcomeKind.OK, OutcomeKind.NO_DATA, OutcomeKind.UNLISTED})
THROTTLED_KINDS = frozenset({OutcomeKind.RATE_LIMITED, OutcomeKind.BODY_RATE_LIMITED})


@dataclass(frozen=True)
class Window:
    """Half-open [start, end) in unix seconds."""

    start: int
    end: int


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    points: tuple[tuple[int, Decimal], ...] = ()  # (unix ms, price), ascending, inside the window
    granularity: str = "hour"  # hour | day
    retry_after: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class ProviderConfig:
    """What a provider needs from the settings (kept separate so parsing tests need no Settings)."""

    base_url: str
    api_key: str = ""
    key_kind: str = "demo"
    currency: str = "usd"
    extra: Mapping[str, Any] = field(default_factory=dict)


class PriceProvider(ABC):
    name: str = ""
    max_rate: float | None = None  # provider-imposed ceiling on requests/s (None: the configured)

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    @abstractmethod
    def build_request(self, coin_id: str, window: Window) -> HttpRequest:
        """The single request that fetches `coin_id`'s series over `window`."""

    @abstractmethod
    def parse(
        self, coin_id: str, window: Window, status: int, headers: Mapping[str, str], body: bytes
    ) -> Outcome:
        """Classify one response (pure)."""


def loads_exact(body: bytes | str) -> Any:
    """JSON with every non-integer number as an exact Decimal (as the provider wrote it)."""
    return json.loads(body, parse_float=Decimal)


def to_price(value: Any) -> Decimal | None:
    """A provider's number as an 18-decimal price; None for null/garbage/non-positive."""
    if value is None or isinstance(value, bool):
        return None
    try:
        price = value if isinstance(value, Decimal) else Decimal(str(value))
        price = price.quantize(PRICE_QUANTUM, context=_CTX)
    except (InvalidOperation, ValueError):
        return None
    return price if price.is_finite() and price > 0 else None


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP-date; None when absent or unreadable."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    reference = now if now is not None else datetime.now(timezone.utc).timestamp()
    return max(0.0, when.timestamp() - reference)


def classify_status(status: int, headers: Mapping[str, str]) -> Outcome | None:
    """The outcome that the status line alone decides (429, 5xx, other 4xx); None for 2xx/404,
    whose meaning depends on the provider's body."""
    if status == 429:
        return Outcome(
            OutcomeKind.RATE_LIMITED, retry_after=parse_retry_after(headers), detail="HTTP 429"
        )
    if status >= 500:
        return Outcome(
            OutcomeKind.SERVER_ERROR,
            retry_after=parse_retry_after(headers),
            detail=f"HTTP {status}",
        )
    if 400 <= status < 500 and status != 404:
        return Outcome(OutcomeKind.CLIENT_ERROR, detail=f"HTTP {status}")
    return None


def granularity_of(ms: list[int]) -> str:
    """'day' when points are a day apart, else 'hour' (5-minute series count as hourly: the
    valuation only needs the point at or before a time)."""
    if len(ms) < 2:
        return "hour"
    steps = sorted(b - a for a, b in zip(ms, ms[1:]))
    return "day" if steps[len(steps) // 2] >= 20 * 3600 * 1000 else "hour"
