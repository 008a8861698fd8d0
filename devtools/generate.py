"""Realistic, coherent exchange exports for tests, demos and benchmarks; also the `ledgerflow
generate` subcommand.

A seeded simulation walks through time holding balances per wallet and asset (integer units of
1e-8, so what is written is exactly what is tracked) and emits buys, sells, crypto-to-crypto
trades with fees, staking and other income, external deposits/withdrawals, spends and transfers
between two own wallets: the withdrawal in one file, the deposit (same amount, same tx hash where
the format has one, minutes later) in the other. Balances never go negative, assets appear only
after their listing date, and prices follow `devtools.pricesim.paths` with a little noise.
The transfer counterpart lives in a Koinly-format file with a Wallet column (`peer_out`), or, for
Koinly without `peer_out`, in the same file under a second wallet.

Rows are written as they are made (bounded memory). `rows` is the exact number of data lines of
`out` (preamble and header not counted; no field contains a newline, so rows = lines).
`GenerateStats.by_type` counts the canonical transactions the files parse into and `skipped` the
rows the parsers skip by design (fiat deposits, Kraken staking moves and unconfirmed duplicates,
Binance Earn subscriptions), so tests can check a parse against the generator exactly.
"""

from __future__ import annotations

import argparse
import heapq
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import accumulate
from pathlib import Path
from typing import TextIO

from devtools.pricesim.paths import HOUR, MODELS, hourly_series
from ingest.normalize.canonical import TxType

BUY, SELL, TRADE = TxType.BUY.value, TxType.SELL.value, TxType.TRADE.value
DEPOSIT, WITHDRAWAL, INCOME = TxType.DEPOSIT.value, TxType.WITHDRAWAL.value, TxType.INCOME.value
SPEND, FEE = TxType.SPEND.value, TxType.FEE.value
FORMATS = ("koinly", "coinbase", "binance", "kraken")
USER_VALUES = ("all", "some", "none")
UNIT = 10**8  # crypto amounts are tracked in 1e-8 units
CENT = UNIT // 100  # a fiat cent in those units
FLUSH_LINES = 20_000
MAJOR_WEIGHTS = {"BTC": 20.0, "ETH": 14.0, "SOL": 5.0, "BNB": 4.0, "XRP": 3.0, "ADA": 3.0}
STAKEABLE = ("ETH", "SOL", "ADA", "DOT", "ATOM", "XTZ", "NEAR", "AVAX", "MATIC", "ALGO", "TRX")
KRAKEN_CODES = {
    "BTC": "XXBT",
    "ETH": "XETH",
    "XRP": "XXRP",
    "LTC": "XLTC",
    "XLM": "XXLM",
    "ETC": "XETC",
    "DOGE": "XXDG",
    "USD": "ZUSD",
}
KRAKEN_STAKED = {
    "ETH": "ETH2.S",
    "DOT": "DOT.S",
    "SOL": "SOL.S",
    "ADA": "ADA.S",
    "ATOM": "ATOM.S",
    "XTZ": "XTZ.S",
    "ALGO": "ALGO.S",
    "MATIC": "MATIC.S",
    "NEAR": "NEAR.S",
    "AVAX": "AVAX.S",
    "TRX": "TRX.S",
}
# event -> weight; an event that is not possible now falls back (see _Simulation.make)
EVENT_WEIGHTS = (
    ("buy", 0.24),
    ("sell", 0.12),
    ("trade", 0.18),
    ("income", 0.21),
    ("deposit", 0.05),
    ("withdrawal", 0.04),
    ("transfer_out", 0.05),
    ("transfer_in", 0.04),
    ("spend", 0.02),
    ("fee", 0.01),
    ("internal", 0.04),
)


@dataclass(frozen=True)
class GenerateStats:
    format: str
    out: str
    rows: int  # data lines written to `out`
    peer_out: str | None
    peer_rows: int  # data lines written to `peer_out`
    by_type: dict[str, int]  # canonical transactions both files parse into, per type
    skipped: int  # rows the parsers skip by design
    transfers: int  # withdrawal/deposit pairs between the two own wallets
    assets: tuple[str, ...]
    first: datetime | None
    last: datetime | None
    # wallet -> asset -> final holding in 1e-8 units (crypto only): what received minus sent
    # minus fees of the parsed rows must add up to, per wallet and asset
    holdings: dict[str, dict[str, int]] = field(default_factory=dict)

    def short(self) -> str:
        """One line for a person: what was written, not every field."""
        kinds = sum(self.by_type.values())
        span = (
            f", {self.first:%Y-%m-%d} to {self.last:%Y-%m-%d}" if self.first and self.last else ""
        )
        peer = f"; {self.peer_rows:,} rows in {Path(self.peer_out).name}" if self.peer_out else ""
        return (
            f"{self.rows:,} {self.format} rows making {kinds:,} transactions of "
            f"{len(self.assets)} assets{span}{peer}"
        )

    def net_units(self, wallets: tuple[str, ...] | None = None) -> dict[str, int]:
        """asset -> final holding over `wallets` (all wallets when None), zero sums dropped."""
        out: dict[str, int] = {}
        for wallet, book in self.holdings.items():
            if wallets is None or wallet in wallets:
                for asset, u in book.items():
                    out[asset] = out.get(asset, 0) + u
        return {a: u for a, u in sorted(out.items()) if u}


@dataclass
class Tx:
    """One transaction as the simulation made it (amounts in units; fiat in units too)."""

    ts: int
    type: str  # a TxType value, or "internal" (a row the parser skips)
    wallet: str
    sent: str | None = None
    sent_u: int = 0
    received: str | None = None
    received_u: int = 0
    fee: str | None = None
    fee_u: int = 0
    value_cents: int = 0  # USD value of the transaction
    label: str | None = None
    tx_hash: str | None = None
    variant: str = ""  # format detail (dust, convert, fiat deposit, pending...)
    extra: list[tuple[str, int, str, int]] = field(default_factory=list)  # more pairs (dust)


# --- amount and time formatting ------------------------------------------------------------------
def units_text(u: int, decimals: int = 8, strip: bool = False) -> str:
    sign = "-" if u < 0 else ""
    u = abs(u) * 10 ** (decimals - 8) if decimals >= 8 else abs(u) // 10 ** (8 - decimals)
    whole, frac = divmod(u, 10**decimals)
    text = f"{sign}{whole}.{frac:0{decimals}d}" if decimals else f"{sign}{whole}"
    return text.rstrip("0").rstrip(".") if strip and "." in text else text


def money_text(cents: int, symbol: str = "$", thousands: bool = True) -> str:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return (
        f"{sign}{symbol}{whole:,}.{frac:02d}" if thousands else f"{sign}{symbol}{whole}.{frac:02d}"
    )


def thousands_text(u: int) -> str:
    whole, frac = divmod(u, UNIT)
    return f"{whole:,}" + (f".{frac:08d}".rstrip("0") if frac else "")


def csv_field(value: str) -> str:
    if "," in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def stamp(ts: int) -> str:
    t = time.gmtime(ts)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    )


# --- writers: one per format -------------------------------------------------------------------
class Writer:
    """Renders Tx to the lines of one format; buffers and writes in blocks."""

    format = ""
    preamble: tuple[str, ...] = ()
    header = ""

    def __init__(self, f: TextIO, wallet: str, rng: random.Random, user_values: str) -> None:
        self.f, self.wallet, self.rng, self.user_values = f, wallet, rng, user_values
        self.buffer: list[str] = []
        self.lines = 0
        for line in self.preamble + (self.header,):
            f.write(line + "\n")

    def cost(self, tx: Tx) -> int:
        return 1

    def rows(self, tx: Tx, balance: Callable[[str], int]) -> list[str]:
        raise NotImplementedError

    def write(self, tx: Tx, balance: Callable[[str], int]) -> int:
        rows = self.rows(tx, balance)
        self.buffer.extend(rows)
        self.lines += len(rows)
        if len(self.buffer) >= FLUSH_LINES:
            self.flush()
        return len(rows)

    def flush(self) -> None:
        if self.buffer:
            self.f.write("\n".join(self.buffer) + "\n")
            self.buffer.clear()


class KoinlyWriter(Writer):
    format = "koinly"
    header = (
        "Date,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,"
        "Fee Currency,Net Worth Amount,Net Worth Currency,Label,Description,TxHash,Wallet"
    )
    # quoted commas and quotes, never a newline: a row is exactly one line of the file
    NOTES = ("Monthly savings plan", "Rebalance, part 1", 'Paid "invoice" 42', "DCA, week 3")

    def rows(self, tx: Tx, balance: Callable[[str], int]) -> list[str]:
        def amount(asset: str | None, u: int) -> tuple[str, str]:
            if asset is None:
                return "", ""
            return (units_text(u, 2) if asset == "USD" else units_text(u)), asset

        sent, received, fee = (
            amount(tx.sent, tx.sent_u),
            amount(tx.received, tx.received_u),
            amount(tx.fee, tx.fee_u),
        )
        valued = self.user_values == "all" or (
            self.user_values == "some" and tx.type in (TRADE, INCOME)
        )
        worth = (money_text(tx.value_cents, "", False), "USD") if valued else ("", "")
        r = self.rng.random()
        note = self.NOTES[int(r * 1000) % 4] if r < 0.01 else ""
        return [
            ",".join(
                (
                    f"{stamp(tx.ts)} UTC",
                    *sent,
                    *received,
                    *fee,
                    *worth,
                    tx.label or "",
                    csv_field(note),
                    tx.tx_hash or "",
                    csv_field(tx.wallet),
                )
            )
        ]


class CoinbaseWriter(Writer):
    format = "coinbase"
    preamble = ("", "Transactions", "User,Jane Doe,5b0c3a8e-1f9d-4c2e-9a77-3d2f6e1b8c40")
    header = (
        "ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,"
        "Price at Transaction,Subtotal,Total (inclusive of fees and/or spread),"
        "Fees and/or Spread,Notes"
    )
    INCOME = {"staking": "Staking Income", "reward": "Rewards Income"}

    def rows(self, tx: Tx, balance: Callable[[str], int]) -> list[str]:
        t = tx.type
        fees = tx.fee_u // CENT if tx.fee == "USD" else 0
        asset: str | None
        if tx.variant == "fiat deposit":
            kind, asset, qty, sub, total = (
                "Deposit",
                "USD",
                tx.received_u,
                tx.value_cents,
                tx.value_cents,
            )
            notes = "Deposit from bank account"
        elif t == BUY:
            kind, asset, qty = (
                ("Advanced Trade Buy" if tx.variant == "advanced" else "Buy"),
                tx.received,
                tx.received_u,
            )
            sub, total = tx.sent_u // CENT, tx.sent_u // CENT + fees
            notes = f"Bought {units_text(qty, strip=True)} {asset} for {money_text(total)} USD"
        elif t == SELL:
            kind, asset, qty = "Sell", tx.sent, -tx.sent_u
            sub, total = tx.received_u // CENT, tx.received_u // CENT - fees
            notes = f"Sold {units_text(-qty, strip=True)} {asset} for {money_text(total)} USD"
        elif t == TRADE:
            kind, asset, qty, sub, total = (
                "Convert",
                tx.sent,
                -tx.sent_u,
                tx.value_cents,
                tx.value_cents + fees,
            )
            notes = (
                f"Converted {thousands_text(tx.sent_u)} {tx.sent} to "
                f"{thousands_text(tx.received_u)} {tx.received}"
            )
        elif t == WITHDRAWAL:
            kind, asset, qty, sub, total = (
                "Send",
                tx.sent,
                -tx.sent_u,
                tx.value_cents,
                tx.value_cents,
            )
            notes = f"Sent {units_text(tx.sent_u, strip=True)} {asset} to an external address"
        elif t == DEPOSIT:
            kind, asset, qty, sub, total = (
                "Receive",
                tx.received,
                tx.received_u,
                tx.value_cents,
                tx.value_cents,
            )
            notes = f"Received {units_text(qty, strip=True)} {asset} from an external account"
        else:  # income
            kind = self.INCOME.get(tx.label or "", "Rewards Income")
            asset, qty, sub, total = tx.received, tx.received_u, tx.value_cents, tx.value_cents
            notes = ""
        price_cents = int(sub * UNIT / abs(qty)) if qty else 0
        return [
            ",".join(
                (
                    f"{self.rng.getrandbits(96):024x}",
                    f"{stamp(tx.ts)} UTC",
                    kind,
                    asset or "",
                    units_text(qty, strip=True),
                    "USD",
                    csv_field(money_text(price_cents)),
                    csv_field(money_text(sub)),
                    csv_field(money_text(total)),
                    csv_field(money_text(fees)),
                    csv_field(notes),
                )
            )
        ]


class BinanceWriter(Writer):
    format = "binance"
    header = "User_ID,UTC_Time,Account,Operation,Coin,Change,Remark"
    INCOME = {
        "staking": "Staking Rewards",
        "interest": "Simple Earn Flexible Interest",
        "airdrop": "Distribution",
        "reward": "Commission History",
    }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.user = str(10_000_000 + self.rng.randrange(90_000_000))

    def cost(self, tx: Tx) -> int:
        if tx.variant == "dust":
            return 2 + 2 * len(tx.extra)
        return (3 if tx.fee else 2) if tx.type == TRADE else 1

    def rows(self, tx: Tx, balance: Callable[[str], int]) -> list[str]:
        head = f"{self.user},{stamp(tx.ts)},Spot,"

        def row(op: str, coin: str, u: int, remark: str = "") -> str:
            return f"{head}{op},{coin},{units_text(u, strip=True)},{remark}"

        t = tx.type
        if tx.variant == "dust":
            out = [
                row("Small Assets Exchange BNB", tx.sent or "", -tx.sent_u),
                row("Small Assets Exchange BNB", "BNB", tx.received_u),
            ]
            for sa, su, ra, ru in tx.extra:
                out += [
                    row("Small Assets Exchange BNB", sa, -su),
                    row("Small Assets Exchange BNB", ra, ru),
                ]
            return out
        if t == TRADE:
            selling = tx.received == "USDT"
            out = [
                row(
                    "Transaction Sold" if selling else "Transaction Spend",
                    tx.sent or "",
                    -tx.sent_u,
                ),
                row(
                    "Transaction Revenue" if selling else "Transaction Buy",
                    tx.received or "",
                    tx.received_u,
                ),
            ]
            if tx.fee:
                out.append(row("Transaction Fee", tx.fee, -tx.fee_u))
            return out
        if t == DEPOSIT:
            return [row("Deposit", tx.received or "", tx.received_u)]
        if t == WITHDRAWAL:  # Binance's Change includes the network fee
            return [row("Withdraw", tx.sent or "", -(tx.sent_u + tx.fee_u))]
        if t == INCOME:
            return [
                row(
                    self.INCOME.get(tx.label or "", "Staking Rewards"),
                    tx.received or "",
                    tx.received_u,
                )
            ]
        # internal: an Earn subscription, skipped by the parser
        return [row("Simple Earn Flexible Subscription", tx.sent or "", -tx.sent_u)]


class KrakenWriter(Writer):
    format = "kraken"
    header = '"txid","refid","time","type","subtype","aclass","asset","amount","fee","balance"'
    ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

    def cost(self, tx: Tx) -> int:
        if tx.type in (BUY, SELL, TRADE) or tx.type == "internal":
            return 2
        return 2 if tx.variant == "pending" else 1

    def _id(self, first: str) -> str:
        bits = self.rng.getrandbits(80)
        chars = "".join(self.ALPHABET[(bits >> (5 * i)) & 31] for i in range(16))
        return f"{first}{chars[1:6]}-{chars[6:11]}-{chars[11:16]}{self.ALPHABET[bits & 31]}"

    def rows(self, tx: Tx, balance: Callable[[str], int]) -> list[str]:
        when = stamp(tx.ts)

        def row(
            txid: str,
            refid: str,
            type_: str,
            subtype: str,
            code: str,
            asset: str,
            u: int,
            fee_u: int,
        ) -> str:
            bal = balance(asset) if asset in MODELS else 0
            return (
                f'"{txid}","{refid}","{when}","{type_}","{subtype}","currency","{code}",'
                f"{units_text(u, 10)},{units_text(fee_u, 10)},{units_text(bal, 10)}"
            )

        def code(asset: str) -> str:
            return KRAKEN_CODES.get(asset, asset)

        t = tx.type
        if t in (BUY, SELL, TRADE):
            ref = self._id("T")
            fee_on_sent = tx.fee == tx.sent
            return [
                row(
                    self._id("L"),
                    ref,
                    "trade",
                    "",
                    code(tx.sent or ""),
                    tx.sent or "",
                    -tx.sent_u,
                    tx.fee_u if fee_on_sent else 0,
                ),
                row(
                    self._id("L"),
                    ref,
                    "trade",
                    "",
                    code(tx.received or ""),
                    tx.received or "",
                    tx.received_u,
                    0 if fee_on_sent else tx.fee_u,
                ),
            ]
        if t == "internal":  # spot -> staking, both rows skipped by the parser
            asset = tx.sent or ""
            return [
                row(
                    self._id("L"),
                    self._id("B"),
                    "transfer",
                    "spottostaking",
                    code(asset),
                    asset,
                    -tx.sent_u,
                    0,
                ),
                row(
                    self._id("L"),
                    self._id("B"),
                    "transfer",
                    "stakingfromspot",
                    KRAKEN_STAKED.get(asset, asset + ".S"),
                    asset,
                    tx.sent_u,
                    0,
                ),
            ]
        if t == INCOME:
            asset = tx.received or ""
            return [
                row(
                    self._id("L"),
                    self._id("S"),
                    "staking",
                    "",
                    KRAKEN_STAKED.get(asset, asset + ".S"),
                    asset,
                    tx.received_u,
                    0,
                )
            ]
        ref = self._id("Q" if t == DEPOSIT else "A")
        asset = (tx.received if t == DEPOSIT else tx.sent) or ""
        u = tx.received_u if t == DEPOSIT else -tx.sent_u
        out = [row(self._id("L"), ref, t, "", code(asset), asset, u, tx.fee_u)]
        if tx.variant == "pending":  # Kraken's unconfirmed twin: empty txid, skipped by the parser
            out.insert(0, '""' + out[0][out[0].index(",") :])
        return out


WRITERS: dict[str, type[Writer]] = {
    w.format: w for w in (KoinlyWriter, CoinbaseWriter, BinanceWriter, KrakenWriter)
}


# --- the simulation ------------------------------------------------------------------------------
@dataclass(order=True)
class _Pending:
    arrival: int
    seq: int
    tx: Tx = field(compare=False)
    writer: Writer = field(compare=False)


class _Simulation:
    def __init__(
        self,
        fmt: str,
        rng: random.Random,
        start: int,
        end: int,
        main: Writer,
        peer: Writer | None,
        peer_wallet: str,
    ) -> None:
        self.fmt, self.rng, self.start, self.end = fmt, rng, start, end
        self.main, self.peer, self.peer_wallet = main, peer, peer_wallet
        self.holdings: dict[str, dict[str, int]] = {main.wallet: {}, peer_wallet: {}}
        self.pending: list[_Pending] = []
        self.sequence = 0  # tie-break of equal arrivals: deterministic order
        self.reserved_lines = 0
        self.by_type: Counter[str] = Counter()
        self.skipped = 0
        self.transfers = 0
        self.assets: set[str] = set()
        self.first: int | None = None
        self.last = start
        self.series = {s: hourly_series(s) for s in MODELS}
        self.listing = sorted((first, s) for s, (first, _) in self.series.items())
        self.cum = list(accumulate(w for _, w in EVENT_WEIGHTS))
        self._listed: list[str] = []
        self._listed_window = (0, -1)
        self._volatile: tuple[list[str], list[str]] = ([], [])
        self._cum_weights: dict[tuple[str, ...], list[float]] = {}

    # prices and choices
    def price(self, asset: str, ts: int) -> float:
        first, prices = self.series[asset]
        i = min(max((ts - first) // HOUR, 0), len(prices) - 1)
        return float(prices[i]) * (1.0 + self.rng.uniform(-0.002, 0.002))

    def listed(self, ts: int) -> list[str]:
        """Assets with a price at ts (cached until the next listing date)."""
        if not self._listed_window[0] <= ts < self._listed_window[1]:
            count = sum(1 for first, _ in self.listing if first <= ts)
            upto = self.listing[count][0] if count < len(self.listing) else 2**62
            since = self.listing[count - 1][0] if count else -(2**62)
            self._listed = [s for _, s in self.listing[:count]]
            self._listed_window = (since, upto)
        return self._listed

    def volatile(self, ts: int) -> list[str]:
        """Listed assets that are not stablecoins (all listed ones if none is)."""
        listed = self.listed(ts)
        if self._volatile[0] is not listed:
            self._volatile = (listed, [a for a in listed if not MODELS[a].stable] or listed)
        return self._volatile[1]

    def pick(self, assets: list[str]) -> str:
        key = tuple(assets)
        cum = self._cum_weights.get(key)
        if cum is None:
            cum = self._cum_weights[key] = list(
                accumulate(MAJOR_WEIGHTS.get(a, 1.0) for a in assets)
            )
        return self.rng.choices(assets, cum_weights=cum)[0]

    def held(self, wallet: str) -> list[str]:
        """Assets the wallet holds more than dust of."""
        return [a for a, u in self.holdings[wallet].items() if u > 1000]

    def usd(self) -> float:
        return min(max(self.rng.lognormvariate(5.6, 1.1), 15.0), 25_000.0)

    def units(self, usd: float, asset: str, ts: int) -> int:
        return max(1, int(usd / self.price(asset, ts) * UNIT))

    def value(self, asset: str, u: int, ts: int) -> int:
        return int(self.price(asset, ts) * u / UNIT * 100) if asset in MODELS else u // CENT

    def move(self, wallet: str, asset: str | None, u: int) -> None:
        if asset is not None and asset in MODELS:
            book = self.holdings[wallet]
            book[asset] = book.get(asset, 0) + u
            assert book[asset] >= 0, (wallet, asset, book[asset])

    # writing
    def emit(self, tx: Tx, writer: Writer) -> int:
        for asset in (tx.sent, tx.received, tx.fee):
            if asset in MODELS:
                self.assets.add(asset)
        if tx.type != "internal":  # internal moves change no holding (and are skipped)
            self.move(tx.wallet, tx.sent, -tx.sent_u)
            self.move(tx.wallet, tx.received, tx.received_u)
            self.move(tx.wallet, tx.fee, -tx.fee_u)
        for sa, su, ra, ru in tx.extra:
            self.move(tx.wallet, sa, -su)
            self.move(tx.wallet, ra, ru)
        if tx.type == "internal" or tx.variant == "fiat deposit":
            self.skipped += writer.cost(tx)
        else:
            self.by_type[tx.type] += 1 + len(tx.extra)
            self.skipped += writer.cost(tx) - 1 if tx.variant == "pending" else 0
        self.first = tx.ts if self.first is None else min(self.first, tx.ts)
        self.last = max(self.last, tx.ts)
        book = self.holdings[tx.wallet]
        return writer.write(tx, lambda a: book.get(a, 0))

    def flush_until(self, ts: int) -> int:
        written = 0
        while self.pending and self.pending[0].arrival <= ts:
            p = heapq.heappop(self.pending)
            if p.writer is self.main:
                self.reserved_lines -= p.writer.cost(p.tx)
            n = self.emit(p.tx, p.writer)
            written += n if p.writer is self.main else 0
        return written

    def schedule(self, arrival: int, tx: Tx, writer: Writer) -> None:
        self.sequence += 1
        heapq.heappush(self.pending, _Pending(arrival, self.sequence, tx, writer))
        if writer is self.main:
            self.reserved_lines += writer.cost(tx)

    def reserved(self) -> int:
        """Lines of the main file promised to scheduled deposits."""
        return self.reserved_lines

    # events
    def make(self, event: str, ts: int, budget: int) -> tuple[Tx, Writer]:
        """The event as a Tx and the writer of its file; an event that is not possible now
        (nothing held to sell, no peer...) becomes a possible one. `budget`: lines left."""
        rng, wallet, fmt = self.rng, self.main.wallet, self.fmt
        listed = self.volatile(ts)
        quote = "USDT" if "USDT" in self.listed(ts) else "BTC"
        held = self.held(wallet)
        if event == "buy":
            if fmt == "binance":  # Binance: buy with USDT (a crypto-to-crypto trade)
                if self.holdings[wallet].get(quote, 0) < 20 * UNIT:
                    return self.make("deposit", ts, budget)
                asset = self.pick([a for a in listed if a != quote])
                spend = int(self.holdings[wallet][quote] * rng.uniform(0.05, 0.5))
                got = self.units(spend / UNIT * self.price(quote, ts), asset, ts)
                fee_bnb = max(
                    1, self.units(spend / UNIT * self.price(quote, ts), "BNB", ts) // 1000
                )
                fee_asset, fee_u = (
                    ("BNB", fee_bnb)
                    if asset != "BNB" and self.holdings[wallet].get("BNB", 0) >= fee_bnb
                    else (asset, got // 1000)
                )
                return Tx(
                    ts,
                    TRADE,
                    wallet,
                    quote,
                    spend,
                    asset,
                    got,
                    fee_asset if fee_u else None,
                    fee_u,
                    value_cents=spend // CENT,
                ), self.main
            asset = self.pick(listed)
            usd = self.usd()
            cents = int(usd * 100)
            return Tx(
                ts,
                BUY,
                wallet,
                "USD",
                cents * CENT,
                asset,
                self.units(usd, asset, ts),
                "USD",
                max(1, cents // 200) * CENT,
                value_cents=cents,
                variant="advanced" if rng.random() < 0.1 else "",
            ), self.main
        if event == "sell":
            candidates = [a for a in held if a != quote] if fmt == "binance" else held
            if not candidates:
                return self.make("buy", ts, budget)
            asset = self.pick(candidates)
            u = int(self.holdings[wallet][asset] * rng.uniform(0.1, 0.6))
            if fmt == "binance":
                got = self.units(u / UNIT * self.price(asset, ts), quote, ts)
                fee_u = got // 1000
                return Tx(
                    ts,
                    TRADE,
                    wallet,
                    asset,
                    u,
                    quote,
                    got,
                    quote if fee_u else None,
                    fee_u,
                    value_cents=self.value(asset, u, ts),
                ), self.main
            cents = self.value(asset, u, ts)
            return Tx(
                ts,
                SELL,
                wallet,
                asset,
                u,
                "USD",
                cents * CENT,
                "USD",
                max(1, cents // 200) * CENT,
                value_cents=cents,
            ), self.main
        if event == "trade":
            if not held:
                return self.make("buy", ts, budget)
            if fmt == "binance" and len(held) >= 3 and rng.random() < 0.05 and "BNB" in listed:
                small = [a for a in held if a != "BNB"][:2]
                if len(small) == 2:  # dust: two coins -> BNB
                    pairs = []
                    for a in small:
                        u = max(1, self.holdings[wallet][a] // 50)
                        pairs.append(
                            (a, u, "BNB", self.units(self.value(a, u, ts) / 100 + 0.01, "BNB", ts))
                        )
                    (sa, su, ra, ru), rest = pairs[0], pairs[1:]
                    return Tx(
                        ts, TRADE, wallet, sa, su, ra, ru, variant="dust", extra=rest, label="dust"
                    ), self.main
            asset = self.pick(held)
            other = self.pick([a for a in self.listed(ts) if a != asset])
            u = int(self.holdings[wallet][asset] * rng.uniform(0.1, 0.7))
            cents = self.value(asset, u, ts)
            got = self.units(cents / 100, other, ts)
            fee_u = 0 if fmt == "coinbase" else got // 1000  # Coinbase states fees in fiat only
            return Tx(
                ts,
                TRADE,
                wallet,
                asset,
                u,
                other,
                got,
                other if fee_u else None,
                fee_u,
                value_cents=cents,
            ), self.main
        if event == "income":
            stakeable = [a for a in STAKEABLE if a in listed] or listed
            asset = self.pick(stakeable)
            cents = int(min(self.usd() / 20, 500.0) * 100) + 1
            label = (
                rng.choice(("staking", "staking", "reward", "interest", "airdrop"))
                if fmt in ("koinly", "binance")
                else ("staking" if fmt == "kraken" else rng.choice(("staking", "reward")))
            )
            return Tx(
                ts,
                INCOME,
                wallet,
                received=asset,
                received_u=self.units(cents / 100, asset, ts),
                value_cents=cents,
                label=label,
            ), self.main
        if event == "deposit":
            asset = quote if fmt == "binance" and rng.random() < 0.6 else self.pick(listed)
            usd = self.usd() * 3
            u = self.units(usd, asset, ts)
            pending = fmt == "kraken" and rng.random() < 0.2 and budget >= 2
            return Tx(
                ts,
                DEPOSIT,
                wallet,
                received=asset,
                received_u=u,
                value_cents=int(usd * 100),
                tx_hash=f"{rng.getrandbits(256):064x}",
                variant="pending" if pending else "",
            ), self.main
        if event in ("withdrawal", "transfer_out", "spend", "fee"):
            if not held:
                return self.make("income", ts, budget)
            if event in ("spend", "fee") and fmt != "koinly":
                event = "withdrawal"
            asset = self.pick(held)
            have = self.holdings[wallet][asset]
            u = int(have * (rng.uniform(0.0005, 0.01) if event == "fee" else rng.uniform(0.1, 0.5)))
            fee_u = 0 if event in ("spend", "fee") or fmt == "coinbase" else max(1, u // 2000)
            tx = Tx(
                ts,
                {"spend": SPEND, "fee": FEE}.get(event, WITHDRAWAL),
                wallet,
                asset,
                u,
                fee=asset if fee_u else None,
                fee_u=fee_u,
                value_cents=self.value(asset, u, ts),
                tx_hash=f"{rng.getrandbits(256):064x}",
                label={"spend": "gift", "fee": "cost"}.get(event),
            )
            # (one file, two wallets: the deposit needs a line of this file's budget too)
            if (
                event == "transfer_out"
                and self.peer is not None
                and (self.peer is not self.main or budget >= 2)
            ):
                arrival = ts + rng.randrange(5 * 60, 90 * 60)
                dep = Tx(
                    arrival,
                    DEPOSIT,
                    self.peer_wallet,
                    received=asset,
                    received_u=u,
                    value_cents=tx.value_cents,
                    tx_hash=tx.tx_hash,
                )
                self.schedule(arrival, dep, self.peer)
                self.transfers += 1
            return tx, self.main
        if event == "transfer_in":
            peer_held = self.held(self.peer_wallet)
            if self.peer is None or not peer_held or budget < 2:
                return self.make("deposit", ts, budget)
            asset = self.pick(peer_held)
            u = int(self.holdings[self.peer_wallet][asset] * rng.uniform(0.2, 0.9))
            fee_u = max(1, u // 2000)
            hash_ = f"{rng.getrandbits(256):064x}"
            out = Tx(
                ts,
                WITHDRAWAL,
                self.peer_wallet,
                asset,
                u,
                fee=asset,
                fee_u=fee_u,
                value_cents=self.value(asset, u, ts),
                tx_hash=hash_,
            )
            arrival = ts + rng.randrange(5 * 60, 90 * 60)
            dep = Tx(
                arrival,
                DEPOSIT,
                wallet,
                received=asset,
                received_u=u,
                value_cents=out.value_cents,
                tx_hash=hash_,
            )
            self.schedule(arrival, dep, self.main)
            self.transfers += 1
            return out, self.peer
        # internal rows the parsers skip
        if fmt == "coinbase":
            cents = int(self.usd() * 100)
            return Tx(
                ts,
                "internal",
                wallet,
                received="USD",
                received_u=cents * CENT,
                value_cents=cents,
                variant="fiat deposit",
            ), self.main
        if fmt in ("binance", "kraken") and held:
            stakeable = [a for a in held if a in STAKEABLE] or held
            asset = self.pick(stakeable)
            u = int(self.holdings[wallet][asset] * rng.uniform(0.1, 0.5))
            return Tx(
                ts,
                "internal",
                wallet,
                asset,
                u,
                asset if fmt == "kraken" else None,
                u if fmt == "kraken" else 0,
            ), self.main
        return self.make("income", ts, budget)

    def run(self, rows: int) -> None:
        step = (self.end - self.start) / max(rows, 1)
        written = 0
        names = [e for e, _ in EVENT_WEIGHTS]
        while True:
            budget = rows - written - self.reserved()
            if budget <= 0:
                break
            ts = max(self.start + int(written * step + self.rng.random() * step), self.last + 1)
            written += self.flush_until(ts)
            budget = rows - written - self.reserved()
            if budget <= 0:
                break
            event = self.rng.choices(names, cum_weights=self.cum)[0]
            tx, writer = self.make(event, ts, budget)
            if writer is self.main and writer.cost(tx) > budget:  # e.g. a 3-row trade, 1 line left
                tx, writer = self.make("income", ts, budget)
            n = self.emit(tx, writer)
            written += n if writer is self.main else 0
        written += self.flush_until(2**62)
        assert written == rows, (written, rows)


def generate(
    rows: int,
    fmt: str,
    seed: int,
    out: str | Path,
    *,
    peer_out: str | Path | None = None,
    start: str = "2022-01-01",
    years: float = 3.0,
    user_values: str = "some",
    wallet: str | None = None,
    peer_wallet: str = "cold-storage",
) -> GenerateStats:
    """Write `rows` data lines of format `fmt` to `out` (and the transfer counterparts to
    `peer_out`, Koinly format with a Wallet column). Deterministic for a seed."""
    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if user_values not in USER_VALUES:
        raise ValueError(f"user_values must be one of {', '.join(USER_VALUES)}")
    if rows < 0:
        raise ValueError("rows must be >= 0")
    begin = int(datetime.fromisoformat(start).replace(tzinfo=timezone.utc).timestamp())
    end = begin + int(years * 365.25 * 86400)
    rng = random.Random(seed)
    main_wallet = wallet or ("main" if fmt == "koinly" else fmt)
    with open(out, "w", newline="", encoding="utf-8") as f_main:
        peer_file = open(peer_out, "w", newline="", encoding="utf-8") if peer_out else None
        try:
            main = WRITERS[fmt](
                f_main, main_wallet, random.Random(rng.getrandbits(64)), user_values
            )
            peer: Writer | None = None
            if peer_file is not None:
                peer = KoinlyWriter(
                    peer_file, peer_wallet, random.Random(rng.getrandbits(64)), user_values
                )
            elif fmt == "koinly":
                peer = main  # one file, two wallets: the Wallet column tells them apart
            sim = _Simulation(fmt, rng, begin, end, main, peer, peer_wallet)
            sim.run(rows)
            main.flush()
            if peer is not None and peer is not main:
                peer.flush()
        finally:
            if peer_file is not None:
                peer_file.close()
    return GenerateStats(
        format=fmt,
        out=str(out),
        rows=main.lines,
        peer_out=str(peer_out) if peer_out else None,
        peer_rows=peer.lines if peer is not None and peer is not main else 0,
        by_type=dict(sorted(sim.by_type.items())),
        skipped=sim.skipped,
        transfers=sim.transfers,
        assets=tuple(sorted(sim.assets)),
        first=datetime.fromtimestamp(sim.first, timezone.utc) if sim.first is not None else None,
        last=datetime.fromtimestamp(sim.last, timezone.utc) if sim.first is not None else None,
        holdings={w: dict(sorted(book.items())) for w, book in sim.holdings.items()},
    )


# --- CLI -----------------------------------------------------------------------------------------
def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, required=True, help="data lines to write")
    parser.add_argument("--format", choices=FORMATS, default="koinly")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="file to write")
    parser.add_argument("--peer-out", help="Koinly-format file of the other wallet (transfers)")
    parser.add_argument("--start", default="2022-01-01", help="first day (ISO date)")
    parser.add_argument("--years", type=float, default=3.0)
    parser.add_argument(
        "--user-values",
        choices=USER_VALUES,
        default="some",
        help="Koinly rows carrying Net Worth: all, some (trades and income), none",
    )
    parser.add_argument(
        "--wallet",
        help="wallet name of the main file (default: the format name, 'main' for koinly)",
    )
    parser.add_argument("--peer-wallet", default="cold-storage")


def run(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    stats = generate(
        args.rows,
        args.format,
        args.seed,
        args.out,
        peer_out=args.peer_out,
        start=args.start,
        years=args.years,
        user_values=args.user_values,
        wallet=args.wallet,
        peer_wallet=args.peer_wallet,
    )
    took = time.perf_counter() - began
    span = f"{stats.first:%Y-%m-%d} .. {stats.last:%Y-%m-%d}" if stats.first and stats.last else "-"
    print(
        f"wrote {stats.rows} {stats.format} rows to {stats.out}"
        + (f" and {stats.peer_rows} koinly rows to {stats.peer_out}" if stats.peer_out else "")
        + f" in {took:.1f} s; {span}; {len(stats.assets)} assets; {stats.transfers} transfers; "
        + ", ".join(f"{k} {v}" for k, v in stats.by_type.items())
        + (f"; {stats.skipped} rows skipped by design" if stats.skipped else "")
    )
    return 0
