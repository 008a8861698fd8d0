"""Asset symbol normalization: one symbol per asset whatever the exchange calls it.

Rules, in order (see `normalize_symbol`):
1. trim, upper-case;
2. exchange quirks (`source`): Koinly's "ID:1234" (-> KOINLY-1234) and "SYM:0x..." (-> SYM);
   Binance's `LD<coin>` Simple Earn receipts (LDBTC -> BTC, only when
   the rest is a known symbol, so LDO stays LDO), its BETH staking receipt (-> ETH) and its old
   tickers (BCC, BCHABC -> BCH);
3. Kraken's legacy X/Z-prefixed codes (XXBT, XETH, ZUSD...) from an explicit table: a generic
   "strip the X" would break XRP, XLM, XTZ, XMR;
4. Kraken's balance-class suffixes: `.S` staked, `.M` opt-in rewards, `.F` flexible earn, `.B`
   bonded, `.P` parachain, `.HOLD`; a staked code may carry a two-digit lock period (DOT28.S,
   KSM07.S): those digits go too, only with such a suffix (API3.S -> API3, C98.S -> C98);
5. aliases (XBT -> BTC, XDG -> DOGE, ETH2 -> ETH, STR -> XLM, CGLD -> CELO...).

Staked and liquid forms of one asset deliberately become one symbol (ETH2.S -> ETH): they are
the same asset for cost basis, so a Kraken spot<->staking move is no disposal.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from ingest.normalize.canonical import FIAT

# The asset registry: every symbol ledgerflow knows by its price-provider id (CoinGecko ids;
# DefiLlama uses `coingecko:<id>`). Extended per deployment with LEDGERFLOW_ASSET_IDS_FILE.
PROVIDER_IDS: dict[str, str] = {
    "BTC": "bitcoin",
    "ETH": "ethereum",
    "SOL": "solana",
    "ADA": "cardano",
    "DOT": "polkadot",
    "XRP": "ripple",
    "DOGE": "dogecoin",
    "LTC": "litecoin",
    "LINK": "chainlink",
    "MATIC": "matic-network",
    "AVAX": "avalanche-2",
    "ATOM": "cosmos",
    "UNI": "uniswap",
    "XLM": "stellar",
    "ALGO": "algorand",
    "TRX": "tron",
    "BNB": "binancecoin",
    "USDT": "tether",
    "USDC": "usd-coin",
    "NEAR": "near",
    "FIL": "filecoin",
    "AAVE": "aave",
    "XTZ": "tezos",
    "ETC": "ethereum-classic",
    "BCH": "bitcoin-cash",
    "SHIB": "shiba-inu",
    "DAI": "dai",
}

# Kraken's legacy four-letter codes (X = crypto, Z = fiat), as listed by Kraken's asset API.
KRAKEN_LEGACY: dict[str, str] = {
    "XXBT": "XBT",
    "XETH": "ETH",
    "XXRP": "XRP",
    "XXLM": "XLM",
    "XLTC": "LTC",
    "XETC": "ETC",
    "XXMR": "XMR",
    "XZEC": "ZEC",
    "XXDG": "XDG",
    "XREP": "REP",
    "XMLN": "MLN",
    "XNMC": "NMC",
    "XXVN": "XVN",
    "XICN": "ICN",
    "XDAO": "DAO",
    "ZUSD": "USD",
    "ZEUR": "EUR",
    "ZGBP": "GBP",
    "ZCAD": "CAD",
    "ZJPY": "JPY",
    "ZAUD": "AUD",
    "ZCHF": "CHF",
    "ZKRW": "KRW",
}

ALIASES: dict[str, str] = {
    "XBT": "BTC",
    "XDG": "DOGE",
    "ETH2": "ETH",
    "STR": "XLM",
    "CGLD": "CELO",
    "BCHABC": "BCH",
    "BCHSV": "BSV",
    "MIOTA": "IOTA",
}

# Binance-only tickers that mean something else elsewhere (BCC was Bitcoin Cash on Binance;
# BETH is Binance's 1:1 receipt for ETH staked in ETH 2.0 Staking, the same holding as ETH:
# see ingest/tax/README.md "1:1 receipts". WBETH accrues value, it is no 1:1 receipt.)
BINANCE_ALIASES: dict[str, str] = {"BCC": "BCH", "BCHABC": "BCH", "BCHSV": "BSV", "BETH": "ETH"}

# A staked code may carry a two-digit lock period (DOT28.S, KSM07.S, FLOW14.S).
KRAKEN_SUFFIX = re.compile(r"(?P<base>[A-Z0-9]+?)(?P<lock>\d{2})?\.(?:S|M|F|B|P|HOLD)")

# Symbols known well enough to undo a prefix like Binance's LD (LDBTC) without guessing.
KNOWN_SYMBOLS = frozenset(PROVIDER_IDS) | FIAT | frozenset(ALIASES.values())

# What a symbol may look like after normalization (anything else is rejected by the parsers).
SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9._\-]{0,31}$"


@lru_cache(maxsize=4096)
def normalize_symbol(symbol: str, source: str = "") -> str:
    """The normalized symbol; '' stays ''. Pure and cached (exports repeat few symbols)."""
    s = symbol.strip().upper()
    if not s:
        return s
    if source == "koinly":  # Koinly's own ids: "ID:1234" (no symbol known), "SYM:0xcontract"
        head, _, tail = s.partition(":")
        if tail:
            s = f"KOINLY-{tail}" if head == "ID" else head
    if source == "binance":
        if s.startswith("LD") and s[2:] in KNOWN_SYMBOLS:
            s = s[2:]
        s = BINANCE_ALIASES.get(s, s)
    s = KRAKEN_LEGACY.get(s, s)
    m = KRAKEN_SUFFIX.fullmatch(s)
    if m:
        base, lock = m.group("base"), m.group("lock") or ""
        s = base if len(base) >= 3 else base + lock  # C98.S keeps its digits
        s = KRAKEN_LEGACY.get(s, s)
    return ALIASES.get(s, s)


def normalize_assets(values: pa.Array, source: str = "") -> pa.Array:
    """Vectorized `normalize_symbol`: maps the few distinct values, then takes (no per-row Python).
    Nulls stay null; empty strings become null."""
    values = values.cast(pa.string())
    distinct = pc.unique(values).drop_null()
    mapped = pa.array(
        [normalize_symbol(v, source) or None for v in distinct.to_pylist()], pa.string()
    )
    return mapped.take(pc.index_in(values, value_set=distinct))


def is_fiat(values: pa.Array) -> pa.Array:
    """True where the (normalized) symbol is fiat money; null where the value is null."""
    return pc.if_else(values.is_valid(), pc.is_in(values, value_set=pa.array(sorted(FIAT))), None)


@lru_cache(maxsize=4)
def provider_ids(overrides_file: str = "") -> dict[str, str]:
    """Symbol -> provider id: the bundled registry, updated from a JSON {symbol: id} file."""
    ids = dict(PROVIDER_IDS)
    if overrides_file:
        with open(overrides_file) as f:
            ids.update({k.upper(): v for k, v in json.load(f).items()})
    return ids
