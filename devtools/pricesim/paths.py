"""Deterministic, realistic price paths per asset: the simulator serves them, the data generator
trades at them, and tests compare joined prices against them.

Each asset has a listing date (no price before it: the "gap" the real providers show), an anchor
price on 2024-01-01 and an hourly geometric random walk with its own drift and volatility, seeded by
the symbol, so every process computes the same series.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

import numpy as np

HOUR = 3600
EPOCH = int(datetime(2015, 1, 1, tzinfo=timezone.utc).timestamp())  # first hour of any series
END = int(datetime(2028, 1, 1, tzinfo=timezone.utc).timestamp())  # last hour (exclusive)
ANCHOR = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp())


@dataclass(frozen=True)
class AssetModel:
    coin_id: str
    anchor_price: float  # USD on 2024-01-01 00:00 UTC
    listed: str  # ISO date of the first price
    annual_vol: float  # volatility of log returns per year
    annual_drift: float = 0.0
    stable: bool = False  # pegged near 1 USD


MODELS: dict[str, AssetModel] = {
    "BTC": AssetModel("bitcoin", 42000, "2015-01-01", 0.60, 0.35),
    "ETH": AssetModel("ethereum", 2300, "2015-08-08", 0.75, 0.30),
    "SOL": AssetModel("solana", 100, "2020-04-11", 1.10, 0.40),
    "ADA": AssetModel("cardano", 0.60, "2017-10-02", 0.90, 0.10),
    "DOT": AssetModel("polkadot", 8.0, "2020-08-19", 0.95, 0.05),
    "XRP": AssetModel("ripple", 0.62, "2015-01-01", 0.85, 0.10),
    "DOGE": AssetModel("dogecoin", 0.09, "2015-01-01", 1.00, 0.10),
    "LTC": AssetModel("litecoin", 73, "2015-01-01", 0.80, 0.05),
    "LINK": AssetModel("chainlink", 15, "2017-09-20", 0.95, 0.20),
    "MATIC": AssetModel("matic-network", 0.95, "2019-04-28", 1.00, 0.05),
    "AVAX": AssetModel("avalanche-2", 38, "2020-09-22", 1.05, 0.15),
    "ATOM": AssetModel("cosmos", 11, "2019-03-14", 0.90, 0.05),
    "UNI": AssetModel("uniswap", 6.5, "2020-09-17", 0.95, 0.05),
    "XLM": AssetModel("stellar", 0.13, "2015-01-01", 0.85, 0.05),
    "ALGO": AssetModel("algorand", 0.20, "2019-06-20", 0.95, 0.0),
    "TRX": AssetModel("tron", 0.11, "2017-09-13", 0.80, 0.10),
    "BNB": AssetModel("binancecoin", 310, "2017-07-25", 0.70, 0.25),
    "USDT": AssetModel("tether", 1.0, "2015-02-25", 0.01, 0.0, stable=True),
    "USDC": AssetModel("usd-coin", 1.0, "2018-10-08", 0.01, 0.0, stable=True),
    "NEAR": AssetModel("near", 3.6, "2020-10-13", 1.10, 0.10),
    "FIL": AssetModel("filecoin", 5.8, "2020-10-15", 1.00, 0.0),
    "AAVE": AssetModel("aave", 105, "2020-10-02", 1.00, 0.10),
    "XTZ": AssetModel("tezos", 1.0, "2017-10-02", 0.85, 0.0),
    "ETC": AssetModel("ethereum-classic", 20, "2016-07-24", 0.90, 0.0),
    "BCH": AssetModel("bitcoin-cash", 250, "2017-08-01", 0.85, 0.0),
    "SHIB": AssetModel("shiba-inu", 0.00001, "2020-08-01", 1.30, 0.10),
    "DAI": AssetModel("dai", 1.0, "2019-11-18", 0.01, 0.0, stable=True),
}

SYMBOL_BY_COIN_ID = {m.coin_id: s for s, m in MODELS.items()}

# Fixed exchange rates per USD for the other currencies served (vs_currency): enough to tell a
# price in EUR or GBP from one in USD end to end; the simulator models no FX market.
FX_PER_USD: dict[str, float] = {"usd": 1.0, "eur": 0.92, "gbp": 0.79}


def _listed_ts(model: AssetModel) -> int:
    d = datetime.fromisoformat(model.listed).replace(tzinfo=timezone.utc)
    return max(EPOCH, int(d.timestamp()))


@lru_cache(maxsize=64)
def hourly_series(symbol: str) -> tuple[int, np.ndarray]:
    """(first_hour_ts, prices[float64]) for hours from listing to END. Deterministic per symbol."""
    model = MODELS[symbol]
    first = _listed_ts(model)
    n = (END - first) // HOUR
    rng = np.random.Generator(np.random.PCG64(zlib.crc32(symbol.encode())))
    hours_per_year = 365.25 * 24
    if model.stable:
        # Mean-reverting wobble around the peg.
        noise = rng.normal(0.0, model.annual_vol / np.sqrt(hours_per_year) * 20, n)
        prices = 1.0 + 0.002 * np.tanh(np.convolve(noise, np.ones(24) / 24, mode="same"))
        return first, prices * model.anchor_price
    sigma = model.annual_vol / np.sqrt(hours_per_year)
    mu = model.annual_drift / hours_per_year - 0.5 * sigma**2
    # Fat tails: a Student-t shock scaled to unit variance.
    shocks = rng.standard_t(4, n) / np.sqrt(2.0)
    log_path = np.cumsum(mu + sigma * shocks)
    anchor_index = (ANCHOR - first) // HOUR
    log_path -= log_path[anchor_index]
    return first, model.anchor_price * np.exp(log_path)


def price_at(symbol: str, ts: int | float | datetime, currency: str = "usd") -> float | None:
    """Price in `currency` at the hour at or before `ts`, or None before listing / unknown
    asset."""
    if symbol not in MODELS:
        return None
    if isinstance(ts, datetime):
        ts = ts.timestamp()
    first, prices = hourly_series(symbol)
    idx = (int(ts) - first) // HOUR
    if idx < 0 or idx >= len(prices):
        return None
    return float(prices[idx]) * FX_PER_USD[currency.lower()]


def series(
    symbol: str, start: int, end: int, step: int = HOUR, currency: str = "usd"
) -> list[tuple[int, float]]:
    """Points (ts, price) at multiples of `step` in [start, end], existing hours only."""
    if symbol not in MODELS:
        return []
    first, prices = hourly_series(symbol)
    lo = max(start, first)
    lo = -(-lo // step) * step
    out = []
    fx = FX_PER_USD[currency.lower()]
    for ts in range(lo, min(end, END - HOUR) + 1, step):
        out.append((ts, float(prices[(ts - first) // HOUR]) * fx))
    return out
