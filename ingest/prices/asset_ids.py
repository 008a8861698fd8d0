"""Bundled map from normalized asset symbols to provider coin ids (CoinGecko ids; DefiLlama uses
`coingecko:<id>`). Overridable with LEDGERFLOW_ASSET_IDS_FILE (JSON {symbol: id})."""
from __future__ import annotations

import json
from functools import lru_cache

from ingest.config import get_settings

COINGECKO_IDS: dict[str, str] = {
    "BTC": "bitcoin", "ETH": "ethereum", "SOL": "solana", "ADA": "cardano", "DOT": "polkadot",
    "XRP": "ripple", "DOGE": "dogecoin", "LTC": "litecoin", "LINK": "chainlink",
    "MATIC": "matic-network", "AVAX": "avalanche-2", "ATOM": "cosmos", "UNI": "uniswap",
    "XLM": "stellar", "ALGO": "algorand", "TRX": "tron", "BNB": "binancecoin", "USDT": "tether",
    "USDC": "usd-coin", "NEAR": "near", "FIL": "filecoin", "AAVE": "aave", "XTZ": "tezos",
    "ETC": "ethereum-classic", "BCH": "bitcoin-cash", "SHIB": "shiba-inu", "DAI": "dai",
}


@lru_cache(maxsize=1)
def coin_ids() -> dict[str, str]:
    ids = dict(COINGECKO_IDS)
    path = get_settings().asset_ids_file
    if path:
        with open(path) as f:
            ids.update({k.upper(): v for k, v in json.load(f).items()})
    return ids


def coin_id(symbol: str) -> str | None:
    return coin_ids().get(symbol.upper())
