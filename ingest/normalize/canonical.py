"""The canonical transaction: one Arrow schema that every exchange format maps to.

Amounts are exact decimals (decimal128(38, 18): 20 integer digits, 18 fractional, enough for wei),
never floats. Timestamps are UTC microseconds.
"""

from __future__ import annotations

from decimal import Decimal
from enum import Enum

import pyarrow as pa
import pycountry  # ISO 4217 as kept by Debian's iso-codes

AMOUNT = pa.decimal128(38, 18)
TIMESTAMP = pa.timestamp("us", tz="UTC")


class TxType(str, Enum):
    BUY = "buy"  # fiat -> crypto
    SELL = "sell"  # crypto -> fiat
    TRADE = "trade"  # crypto -> crypto
    DEPOSIT = "deposit"  # crypto arriving from outside this wallet (maybe another own wallet)
    WITHDRAWAL = "withdrawal"  # crypto leaving this wallet (maybe to another own wallet)
    INCOME = "income"  # staking, mining, airdrop, interest, reward...: `label` says which
    SPEND = "spend"  # crypto paid for goods or services: a disposal
    FEE = "fee"  # a standalone fee: a disposal of the fee asset


TX_TYPES = frozenset(t.value for t in TxType)

# Income kinds (the `label` of an INCOME row); anything else received as income is "income".
INCOME_LABELS = frozenset(
    {"staking", "mining", "airdrop", "interest", "reward", "income", "lending"}
)

# Codes of ISO 4217's list that are no money a wallet holds: precious metals (a holding with
# gains of its own, like a coin: Kraken and Bitpanda trade them), the IMF's SDR, bond-market and
# accounting units, fund codes, and the testing and no-currency codes.
NOT_MONEY = frozenset(
    "XAU XAG XPT XPD XDR XSU XUA XAD XBA XBB XBC XBD XTS XXX "
    "BOV CHE CHW CLF COU MXV USN UYI UYW".split()
)
# ISO codes that are also the ticker of a crypto asset listed at the supported exchanges, where no
# supported exchange trades the currency: the crypto reading wins (MNT: Mantle, not the Mongolian
# tugrik; ERN: Ethernity Chain, not the Eritrean nakfa). RON stays the Romanian leu: Binance
# trades the leu as RON and lists the Ronin token as RONIN.
CRYPTO_TICKERS = frozenset({"MNT", "ERN"})
# Currencies withdrawn since crypto exchanges exist: no longer in ISO 4217's current list, still
# in the exports of their years (the Croatian kuna until 2023, the Lithuanian litas until 2015...).
WITHDRAWN_FIAT = frozenset(
    "HRK LTL LVL EEK SKK CYP MTL VEF BYR MRO STD ZMK SLL CUC ZWL GHC".split()
)


# Currencies treated as fiat: a side in one of these is money, not a crypto lot. ISO 4217's current
# list (pycountry), less what is no money or is read as a crypto ticker, plus withdrawn currencies.
FIAT = (
    frozenset(c.alpha_3 for c in pycountry.currencies) - NOT_MONEY - CRYPTO_TICKERS
) | WITHDRAWN_FIAT

CANONICAL_SCHEMA = pa.schema(
    [
        pa.field("tx_id", pa.string(), nullable=False),  # stable id, see normalize.identity
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("wallet", pa.string(), nullable=False),  # account/exchange the row belongs to
        pa.field("timestamp", TIMESTAMP, nullable=False),
        pa.field("type", pa.string(), nullable=False),  # a TxType value
        pa.field("label", pa.string()),  # income kind or the file's own label
        pa.field("sent_asset", pa.string()),
        pa.field("sent_amount", AMOUNT),
        pa.field("received_asset", pa.string()),
        pa.field("received_amount", AMOUNT),
        pa.field("fee_asset", pa.string()),
        pa.field("fee_amount", AMOUNT),
        pa.field("fiat_value", AMOUNT),  # value the file states, in fiat_currency
        pa.field("fiat_currency", pa.string()),
        pa.field("tx_hash", pa.string()),
        pa.field("external_id", pa.string()),  # the exchange's own id, when it has one
        pa.field("description", pa.string()),
        pa.field("source", pa.string(), nullable=False),  # format name: koinly, coinbase, ...
        pa.field("source_file", pa.string(), nullable=False),
        pa.field(
            "source_line", pa.int64(), nullable=False
        ),  # 1-based line of the (first) row in the file
    ]
)

# The one list of canonical columns (the schema's order); the named subsets below derive from it.
CANONICAL_COLUMNS = tuple(CANONICAL_SCHEMA.names)
IDENTITY_COLUMNS = ("tx_id", "user_id")  # given by the pipeline (normalize.identity)
SOURCE_COLUMNS = ("source", "source_file", "source_line")  # where the row came from
# What a file's row states (a parse draft row), time first. parse hashes these, external_id
# aside, in this order into the row's content key, from which its id derives: the order is part
# of every stored id.
STATED_COLUMNS = (
    "timestamp",
    "wallet",
    *(
        c
        for c in CANONICAL_COLUMNS
        if c not in (*IDENTITY_COLUMNS, *SOURCE_COLUMNS, "timestamp", "wallet")
    ),
)
# A row's three sides, each an (asset, amount) pair: sent, received, fee.
SIDE_COLUMNS = tuple(c for c in CANONICAL_COLUMNS if c.startswith(("sent_", "received_", "fee_")))
ASSET_COLUMNS = SIDE_COLUMNS[0::2]
AMOUNT_COLUMNS = SIDE_COLUMNS[1::2]


def plain_decimal(value: Decimal) -> str:
    """Exact fixed-point text without trailing zeros: 0E-18 -> "0", 1.50 -> "1.5". (No
    normalize(): it rounds to the context's 28 digits, and 38-digit amounts exist.)"""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# --- Valued transactions ---------------------------------------------------------------------
# The price stage (ingest.prices.valuation) appends these columns to canonical rows; the tax engine
# (ingest.tax) reads canonical + valued columns. All money is in the reporting currency.
class PriceSource(str, Enum):
    FIAT = "fiat"  # one side of the transaction is the reporting currency itself
    FILE = "file"  # the file states the value (e.g. Koinly's Net Worth): it wins over prices
    HOUR = "hour"  # fetched hourly price at or before the timestamp
    DAY = "day"  # only a daily price exists for that time
    NONE = "none"  # no value could be had: see price_status


class PriceStatus(str, Enum):
    OK = "ok"
    NO_PRICE = "no_price"  # the provider has no price there (not listed yet, unknown asset)
    UNAVAILABLE = "unavailable"  # provider down / rate-limited: a later job retries


VALUED_FIELDS = [
    pa.field("value", AMOUNT),  # fiat value of the transaction (what was received/sent)
    pa.field("fee_value", AMOUNT),  # fiat value of the fee (0 when no fee)
    pa.field("price", AMOUNT),  # unit price of the asset that set `value`
    pa.field("price_asset", pa.string()),
    pa.field("price_source", pa.string()),  # a PriceSource value
    pa.field("price_status", pa.string()),  # a PriceStatus value
]
VALUED_SCHEMA = pa.schema(list(CANONICAL_SCHEMA) + VALUED_FIELDS)
