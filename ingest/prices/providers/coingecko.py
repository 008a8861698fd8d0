"""CoinGecko `market_chart/range` (and the bundled simulator, which speaks the same protocol).

Granularity is CoinGecko's automatic one: a range of 2-90 days answers hourly, so the planner asks
for windows shorter than 90 days. The body of a 200 can still carry a rate-limit error (CoinGecko's
`{"status": {"error_code": 429}}`, CryptoCompare's `{"Response": "Error"}`): both are detected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ingest.prices.providers.base import (
    HttpRequest,
    Outcome,
    OutcomeKind,
    PriceProvider,
    Window,
    classify_status,
    granularity_of,
    loads_exact,
    to_price,
)

KEY_HEADERS = {"demo": "x-cg-demo-api-key", "pro": "x-cg-pro-api-key"}


def body_rate_limit_message(body: Any) -> str | None:
    """The rate-limit message hidden in a 200 body, or None. Shapes seen in the wild:
    CoinGecko `{"status": {"error_code": 429, "error_message": ...}}` (also nested under "error"),
    CryptoCompare `{"Response": "Error", "Message": "You are over your rate limit"}`."""
    if not isinstance(body, dict):
        return None
    if body.get("Response") == "Error":
        message = str(body.get("Message", ""))
        if "rate limit" in message.lower() or body.get("Type") == 99:
            return message or "rate limit"
    for status in (
        body.get("status"),
        (body.get("error") or {}).get("status") if isinstance(body.get("error"), dict) else None,
    ):
        if isinstance(status, dict):
            code = status.get("error_code")
            message = str(status.get("error_message", ""))
            if code == 429 or "rate limit" in message.lower():
                return message or "rate limit"
    return None


def error_message(body: Any) -> str | None:
    """A non-rate-limit error a body carries (`{"error": ...}`, `{"Response": "Error"}`,
    `{"status": {"error_code": ...}}`), or None."""
    if not isinstance(body, dict):
        return None
    if "error" in body:
        return str(body["error"])
    if body.get("Response") == "Error":
        return str(body.get("Message", "error"))
    status = body.get("status")
    if isinstance(status, dict) and status.get("error_code"):
        return str(status.get("error_message", status.get("error_code")))
    return None


def parse_market_chart(body: Any, window: Window) -> Outcome:
    """The `prices` series of a market_chart body, restricted to the window."""
    raw = body.get("prices") if isinstance(body, dict) else None
    if not isinstance(raw, list):
        return Outcome(OutcomeKind.SERVER_ERROR, detail="body without a prices list")
    lo, hi = window.start * 1000, window.end * 1000
    by_ms: dict[int, Any] = {}
    for item in raw:
        if not isinstance(item, (list, tuple)) or len(item) < 2:
            continue
        try:
            ms = int(item[0])
        except (TypeError, ValueError):
            continue
        price = to_price(item[1])
        if price is not None and lo <= ms < hi:
            by_ms[ms] = price
    if not by_ms:
        return Outcome(OutcomeKind.NO_DATA)
    ms_sorted = sorted(by_ms)
    return Outcome(
        OutcomeKind.OK,
        points=tuple((ms, by_ms[ms]) for ms in ms_sorted),
        granularity=granularity_of(ms_sorted),
    )


class CoinGecko(PriceProvider):
    name = "coingecko"

    def build_request(self, coin_id: str, window: Window) -> HttpRequest:
        headers: tuple[tuple[str, str], ...] = (("accept", "application/json"),)
        if self.config.api_key:
            header = KEY_HEADERS.get(self.config.key_kind, KEY_HEADERS["demo"])
            headers += ((header, self.config.api_key),)
        # `to` is inclusive on CoinGecko: end - 1 keeps the range inside [start, end).
        params = (
            ("vs_currency", self.config.currency.lower()),
            ("from", str(window.start)),
            ("to", str(window.end - 1)),
        )
        url = (
            f"{self.config.base_url.rstrip('/')}/api/v3/coins/{quote(coin_id, safe='')}"
            "/market_chart/range"
        )
        return HttpRequest("GET", url, params, headers)

    def parse(
        self, coin_id: str, window: Window, status: int, headers: Mapping[str, str], body: bytes
    ) -> Outcome:
        decided = classify_status(status, headers)
        if decided is not None:
            return decided
        try:
            data = loads_exact(body) if body else None
        except ValueError:
            return Outcome(OutcomeKind.SERVER_ERROR, detail=f"HTTP {status}: body is not JSON")
        if status == 404:
            message = error_message(data) or ""
            # Only a 404 that names the coin marks it unlisted (durably): a 404 from a wrong base
            # URL must not.
            if "not found" in message.lower():
                return Outcome(OutcomeKind.UNLISTED, detail=message)
            return Outcome(OutcomeKind.CLIENT_ERROR, detail=f"HTTP 404: {message or 'no body'}")
        limited = body_rate_limit_message(data)
        if limited is not None:
            return Outcome(OutcomeKind.BODY_RATE_LIMITED, detail=limited)
        error = error_message(data)
        if error is not None:
            if "not found" in error.lower():
                return Outcome(OutcomeKind.UNLISTED, detail=error)
            return Outcome(OutcomeKind.CLIENT_ERROR, detail=error)
        return parse_market_chart(data, window)
