"""The canonical transaction: one Arrow schema that every exchange format maps to.

Amounts are exact decimals (decimal128(38, 18): 20 integer digits, 18 fractional, enough for wei),
never floats. Timestamps are UTC microseconds.
"""
from __future__ import annotations

from enum import Enum

import pyarrow as pa

AMOUNT = pa.decimal128(38, 18)
TIMESTAMP = pa.timestamp("us", tz="UTC")


class TxType(str, Enum):
    BUY = "buy"                # fiat -> crypto
    SELL = "sell"              # crypto -> fiat
    TRADE = "trade"            # crypto -> crypto
    DEPOSIT = "deposit"        # crypto arriving from outside this wallet (maybe another own wallet)
    WITHDRAWAL = "withdrawal"  # crypto leaving this wallet (maybe to another own wallet)
    INCOME = "income"          # staking, mining, airdrop, interest, reward...: `label` says which
    SPEND = "spend"            # crypto paid for goods or services: a disposal
    FEE = "fee"                # a standalone fee: a disposal of the fee asset


TX_TYPES = frozenset(t.value for t in TxType)

# Income kinds (the `label` of an INCOME row); anything else received as income is "income".
INCOME_LABELS = frozenset({"staking", "mining", "airdrop", "interest", "reward", "income", "lending"})

# Currencies treated as fiat: a side in one of these is money, not a crypto lot.
FIAT = frozenset({"USD", "EUR", "GBP", "CAD", "AUD", "JPY", "CHF", "SEK", "NOK", "DKK", "NZD",
                  "SGD", "HKD", "KRW", "BRL", "TRY", "INR", "ZAR", "MXN", "PLN"})

CANONICAL_SCHEMA = pa.schema([
    pa.field("tx_id", pa.string(), nullable=False),      # stable id, see normalize.identity
    pa.field("user_id", pa.string(), nullable=False),
    pa.field("wallet", pa.string(), nullable=False),     # account/exchange the row belongs to
    pa.field("timestamp", TIMESTAMP, nullable=False),
    pa.field("type", pa.string(), nullable=False),       # a TxType value
    pa.field("label", pa.string()),                      # income kind or the file's own label
    pa.field("sent_asset", pa.string()),
    pa.field("sent_amount", AMOUNT),
    pa.field("received_asset", pa.string()),
    pa.field("received_amount", AMOUNT),
    pa.field("fee_asset", pa.string()),
    pa.field("fee_amount", AMOUNT),
    pa.field("fiat_value", AMOUNT),                      # value the file states, in fiat_currency
    pa.field("fiat_currency", pa.string()),
    pa.field("tx_hash", pa.string()),
    pa.field("external_id", pa.string()),                # the exchange's own id, when it has one
    pa.field("description", pa.string()),
    pa.field("source", pa.string(), nullable=False),     # format name: koinly, coinbase, ...
    pa.field("source_file", pa.string(), nullable=False),
    pa.field("source_line", pa.int64(), nullable=False), # 1-based line of the (first) row in the file
])

CANONICAL_COLUMNS = tuple(CANONICAL_SCHEMA.names)


def empty_canonical_table() -> pa.Table:
    return CANONICAL_SCHEMA.empty_table()
