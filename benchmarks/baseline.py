"""The synchronous design ledgerflow replaces, implemented faithfully for comparison.

One HTTP request handler does everything before it answers: it reads the whole body, parses the
Koinly universal CSV row by row with the `csv` module, inserts each row into Cassandra with one
`session.execute` (a prepared INSERT into `baseline_transactions`), fetches each transaction's price
with one CoinGecko-protocol request to the price simulator (a 429 is retried after its Retry-After:
the upload must finish), then reconciles transfers and computes simple FIFO gains and balances in
plain Python, and only then answers with counts.

Run as its own process: `python -m benchmarks.baseline --port P` (the harness does this); it uses the
same LEDGERFLOW_* settings (keyspace, Cassandra node, simulator URL) as ledgerflow.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import json
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode, urlsplit

from ingest.config import get_settings
from ingest.normalize.assets import PROVIDER_IDS
from ingest.normalize.canonical import FIAT

KOINLY_COLUMNS = (
    "Date",
    "Sent Amount",
    "Sent Currency",
    "Received Amount",
    "Received Currency",
    "Fee Amount",
    "Fee Currency",
    "Net Worth Amount",
    "Net Worth Currency",
    "Label",
    "Description",
    "TxHash",
    "Wallet",
)

CREATE_TABLE = """CREATE TABLE IF NOT EXISTS baseline_transactions (
    user_id text, line bigint, timestamp timestamp,
    sent_amount decimal, sent_currency text, received_amount decimal, received_currency text,
    fee_amount decimal, fee_currency text, net_worth_amount decimal, net_worth_currency text,
    label text, description text, tx_hash text, wallet text,
    PRIMARY KEY ((user_id), line))"""
INSERT_ROW = (
    "INSERT INTO baseline_transactions (user_id, line, timestamp, sent_amount, "
    "sent_currency, received_amount, received_currency, fee_amount, fee_currency, "
    "net_worth_amount, net_worth_currency, label, description, tx_hash, wallet) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

TRANSFER_WINDOW = timedelta(hours=24)
TRANSFER_MAX_FEE_SHARE = Decimal("0.05")
MAX_ATTEMPTS_PER_PRICE = 1000  # bounded, but far beyond what a 429-throttled run needs


# --- the Koinly universal format ----------------------------------------------------------------
@dataclass(frozen=True)
class KoinlyRow:
    line: int  # 1-based line in the file (the header is line 1)
    timestamp: datetime
    sent_amount: Decimal | None
    sent_currency: str | None
    received_amount: Decimal | None
    received_currency: str | None
    fee_amount: Decimal | None
    fee_currency: str | None
    net_worth_amount: Decimal | None
    net_worth_currency: str | None
    label: str | None
    description: str | None
    tx_hash: str | None
    wallet: str | None

    @property
    def priced_asset(self) -> str | None:
        """The crypto asset whose price values this transaction: what was received, else what was
        sent, else the fee asset; None when no side is a crypto asset with a known coin id."""
        for asset in (self.received_currency, self.sent_currency, self.fee_currency):
            if asset and asset not in FIAT and PROVIDER_IDS.get(asset):
                return asset
        return None

    @property
    def priced_amount(self) -> Decimal | None:
        asset = self.priced_asset
        for a, amount in (
            (self.received_currency, self.received_amount),
            (self.sent_currency, self.sent_amount),
            (self.fee_currency, self.fee_amount),
        ):
            if a == asset:
                return amount
        return None


def parse_timestamp(text: str) -> datetime:
    """Koinly dates: '2024-03-01 14:25:00 UTC', '2024-03-01 14:25 UTC', ISO 8601 (with or without
    an offset). Naive times are UTC."""
    text = text.strip()
    if text.endswith(" UTC"):
        text = text[:-4]
    text = text.replace("Z", "+00:00")
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        ts = datetime.strptime(text, "%m/%d/%Y %H:%M")
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def _decimal(text: str | None) -> Decimal | None:
    text = (text or "").strip().replace(",", "")
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None


def _text(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


def _asset(text: str | None) -> str | None:
    text = _text(text)
    return text.upper() if text else None


def parse_row(line: int, record: dict[str, str]) -> KoinlyRow:
    return KoinlyRow(
        line=line,
        timestamp=parse_timestamp(record["Date"]),
        sent_amount=_decimal(record.get("Sent Amount")),
        sent_currency=_asset(record.get("Sent Currency")),
        received_amount=_decimal(record.get("Received Amount")),
        received_currency=_asset(record.get("Received Currency")),
        fee_amount=_decimal(record.get("Fee Amount")),
        fee_currency=_asset(record.get("Fee Currency")),
        net_worth_amount=_decimal(record.get("Net Worth Amount")),
        net_worth_currency=_asset(record.get("Net Worth Currency")),
        label=_text(record.get("Label")),
        description=_text(record.get("Description")),
        tx_hash=_text(record.get("TxHash")),
        wallet=_text(record.get("Wallet")),
    )


def iter_rows(lines: Iterable[str]) -> Iterator[tuple[KoinlyRow | None, str | None]]:
    """(row, None) for each parsed data row, (None, reason) for a row that does not parse."""
    reader = csv.DictReader(lines)
    for record in reader:
        try:
            yield parse_row(reader.line_num, record), None
        except (KeyError, ValueError, TypeError) as exc:
            yield None, f"line {reader.line_num}: {exc}"


def read_koinly_file(path: str) -> Iterator[KoinlyRow]:
    """Every parsable row of a Koinly universal file (used by the harness for side measurements)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        for row, _error in iter_rows(f):
            if row is not None:
                yield row


# --- prices: one request per transaction ---------------------------------------------------------
class PriceClient:
    """Synchronous CoinGecko `market_chart/range` client over one keep-alive connection: one request
    per call, a 429 waited out (its Retry-After, else 1 s) and retried until it succeeds."""

    def __init__(self, base_url: str, currency: str = "usd", timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.currency = currency.lower()
        self.timeout = timeout
        self.requests = 0  # every request sent, 429s included
        self.rate_limited = 0  # answers that were 429
        self.seconds_waiting = 0.0  # time slept on Retry-After
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def price_at(self, asset: str, ts: datetime) -> Decimal | None:
        """Price of `asset` in the hour starting at `ts` (first point of [ts, ts+3600]), or None."""
        coin = PROVIDER_IDS.get(asset)
        if coin is None:
            return None
        start = int(ts.timestamp())
        query = urlencode({"vs_currency": self.currency, "from": start, "to": start + 3600})
        path = f"{self.prefix}/api/v3/coins/{coin}/market_chart/range?{query}"
        for _attempt in range(MAX_ATTEMPTS_PER_PRICE):
            self.requests += 1
            try:
                conn = self._connection()
                conn.request("GET", path, headers={"accept": "application/json"})
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException):
                self.close()
                time.sleep(0.5)
                continue
            if resp.status == 429:
                self.rate_limited += 1
                wait = _retry_after(resp.getheader("Retry-After"))
                self.seconds_waiting += wait
                time.sleep(wait)
                continue
            if resp.status >= 500:
                time.sleep(0.5)
                continue
            if resp.status != 200:
                return None
            points = json.loads(body).get("prices") or []
            return Decimal(str(points[0][1])) if points else None
        raise RuntimeError(
            f"price of {asset} at {ts}: no answer after {MAX_ATTEMPTS_PER_PRICE} tries"
        )


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 1.0
    except ValueError:
        return 1.0


# --- reconciliation and FIFO -----------------------------------------------------------------------
@dataclass
class Ledger:
    """FIFO lots per asset, balances, realized gains."""

    lots: dict[str, deque[list[Decimal]]] = field(default_factory=lambda: defaultdict(deque))
    balances: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    realized_gain: Decimal = Decimal(0)
    disposals: int = 0
    missing_cost_basis: int = 0
    negative_balances: int = 0

    def acquire(self, asset: str, quantity: Decimal, cost: Decimal) -> None:
        if quantity > 0:
            self.lots[asset].append([quantity, cost / quantity])
            self.balances[asset] += quantity

    def dispose(self, asset: str, quantity: Decimal, proceeds: Decimal) -> None:
        if quantity <= 0:
            return
        self.disposals += 1
        self.balances[asset] -= quantity
        if self.balances[asset] < 0:
            self.negative_balances += 1
        remaining, cost = quantity, Decimal(0)
        lots = self.lots[asset]
        while remaining > 0 and lots:
            lot = lots[0]
            used = min(lot[0], remaining)
            cost += used * lot[1]
            lot[0] -= used
            remaining -= used
            if lot[0] == 0:
                lots.popleft()
        if remaining > 0:
            self.missing_cost_basis += 1  # no acquisition known: zero cost basis
        self.realized_gain += proceeds - cost


def usd_value(row: KoinlyRow, price: Decimal | None) -> Decimal | None:
    """What the transaction is worth in USD: a USD side as is, else the fetched price x amount."""
    if row.received_currency == "USD" and row.received_amount is not None:
        return row.received_amount
    if row.sent_currency == "USD" and row.sent_amount is not None:
        return row.sent_amount
    amount = row.priced_amount
    return amount * price if price is not None and amount is not None else None


def match_transfers(rows: list[KoinlyRow]) -> int:
    """Withdrawals (crypto sent, nothing received) matched to a later deposit of the same asset
    within 24 h, at most 5 % smaller (or with the same tx hash). Rows sorted by time."""
    pending: dict[str, deque[KoinlyRow]] = defaultdict(deque)
    matched = 0
    for row in rows:
        if row.sent_currency and not row.received_currency and row.sent_currency not in FIAT:
            pending[row.sent_currency].append(row)
        elif row.received_currency and not row.sent_currency and row.received_currency not in FIAT:
            queue = pending[row.received_currency]
            while queue and row.timestamp - queue[0].timestamp > TRANSFER_WINDOW:
                queue.popleft()
            for candidate in queue:
                sent, got = candidate.sent_amount or Decimal(0), row.received_amount or Decimal(0)
                same_hash = bool(row.tx_hash) and row.tx_hash == candidate.tx_hash
                if same_hash or (got <= sent and sent - got <= sent * TRANSFER_MAX_FEE_SHARE):
                    queue.remove(candidate)
                    matched += 1
                    break
    return matched


def compute_metrics(rows: list[KoinlyRow], values: dict[int, Decimal | None]) -> tuple[Ledger, int]:
    """FIFO over the rows in time order: what is received is acquired at the transaction's value,
    what is sent is disposed of for it; a crypto fee is disposed of for nothing."""
    rows = sorted(rows, key=lambda r: (r.timestamp, r.line))
    transfers = match_transfers(rows)
    ledger = Ledger()
    for row in rows:
        value = values.get(row.line) or Decimal(0)
        if row.sent_currency and row.sent_currency not in FIAT and row.sent_amount:
            ledger.dispose(row.sent_currency, row.sent_amount, value)
        if row.received_currency and row.received_currency not in FIAT and row.received_amount:
            ledger.acquire(row.received_currency, row.received_amount, value)
        if row.fee_currency and row.fee_currency not in FIAT and row.fee_amount:
            ledger.dispose(row.fee_currency, row.fee_amount, Decimal(0))
    return ledger, transfers


# --- the request handler ---------------------------------------------------------------------------
def process_upload(text: str, user_id: str, session, prices: PriceClient) -> dict:
    """Everything the synchronous design does inside one request; returns the answer's counts."""
    from ingest.load.cassandra import execute

    started = time.perf_counter()
    rows: list[KoinlyRow] = []
    values: dict[int, Decimal | None] = {}
    rejected = 0
    insert_s = fetch_s = 0.0
    for row, _error in iter_rows(io.StringIO(text, newline="")):
        if row is None:
            rejected += 1
            continue
        t0 = time.perf_counter()
        execute(
            session,
            INSERT_ROW,
            (
                user_id,
                row.line,
                row.timestamp,
                row.sent_amount,
                row.sent_currency,
                row.received_amount,
                row.received_currency,
                row.fee_amount,
                row.fee_currency,
                row.net_worth_amount,
                row.net_worth_currency,
                row.label,
                row.description,
                row.tx_hash,
                row.wallet,
            ),
        )
        t1 = time.perf_counter()
        asset = row.priced_asset
        price = prices.price_at(asset, row.timestamp) if asset else None
        fetch_s += time.perf_counter() - t1
        insert_s += t1 - t0
        values[row.line] = usd_value(row, price)
        rows.append(row)
    t2 = time.perf_counter()
    ledger, transfers = compute_metrics(rows, values)
    compute_s = time.perf_counter() - t2
    return {
        "rows": len(rows),
        "rejected": rejected,
        "inserted": len(rows),
        "price_requests": prices.requests,
        "price_429": prices.rate_limited,
        "priced": sum(1 for v in values.values() if v is not None),
        "transfers_matched": transfers,
        "disposals": ledger.disposals,
        "missing_cost_basis": ledger.missing_cost_basis,
        "negative_balances": ledger.negative_balances,
        "realized_gain_usd": str(ledger.realized_gain.quantize(Decimal("0.01"))),
        "assets": sum(1 for q in ledger.balances.values() if q != 0),
        "seconds": {
            "total": time.perf_counter() - started,
            "insert": insert_s,
            "fetch": fetch_s,
            "retry_after_sleep": prices.seconds_waiting,
            "reconcile_and_metrics": compute_s,
        },
    }


def make_app():
    from aiohttp import web

    from ingest.config import get_settings
    from ingest.load.cassandra import get_session

    async def upload(request: web.Request) -> web.Response:
        user_id = request.query.get("user", "baseline")
        text = (await request.read()).decode("utf-8-sig")
        settings = get_settings()
        prices = PriceClient(settings.coingecko_url, settings.fiat_currency)
        try:
            # Deliberately blocking: the synchronous design holds the request until all is done.
            answer = process_upload(text, user_id, get_session(get_settings()), prices)
        finally:
            prices.close()
        return web.json_response(answer)

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=4 * 1024**3)
    app.router.add_post("/upload", upload)
    app.router.add_get("/health", health)
    return app


def create_table(session) -> None:
    session.execute(CREATE_TABLE, timeout=60)


def main(argv: list[str] | None = None) -> int:
    from aiohttp import web

    from ingest.load.cassandra import get_session

    parser = argparse.ArgumentParser(description="the synchronous baseline upload server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    create_table(get_session(get_settings()))
    web.run_app(make_app(), host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
