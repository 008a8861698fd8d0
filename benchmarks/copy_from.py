"""`cqlsh COPY FROM` loading the same rows into the same node, as the reference for the store stage.

The Koinly file is exported (outside the timing) as a CSV of the canonical columns, matching
`copy_transactions`: a plain table laid out like raw_transactions ((user_id, month) partitions);
the only change to the data is that line breaks inside descriptions become spaces (see one_line).
COPY runs with cqlsh's defaults except ESCAPE = '"': the csv module writes a quote inside a field
as a doubled quote, which cqlsh's default escape (a backslash) reads wrongly, storing those
descriptions damaged while reporting every row imported (benchmarks/loaded_rows.py checks the
table against the file after the load). Its rows/s comes from cqlsh's own "N rows imported ... in
T seconds" line (process start-up excluded); the wall time of the cqlsh process is recorded too.
"""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.baseline import KoinlyRow, read_koinly_file
from ingest.normalize.canonical import FIAT

COLUMNS = (
    "user_id",
    "month",
    "timestamp",
    "tx_id",
    "wallet",
    "type",
    "label",
    "sent_asset",
    "sent_amount",
    "received_asset",
    "received_amount",
    "fee_asset",
    "fee_amount",
    "fiat_value",
    "fiat_currency",
    "tx_hash",
    "description",
    "source",
    "source_file",
    "source_line",
)
COPY_TABLE = "copy_transactions"
CREATE_TABLE = """CREATE TABLE IF NOT EXISTS {table} (
    user_id text, month int, timestamp timestamp, tx_id text, wallet text, type text, label text,
    sent_asset text, sent_amount decimal, received_asset text, received_amount decimal,
    fee_asset text, fee_amount decimal, fiat_value decimal, fiat_currency text, tx_hash text,
    description text, source text, source_file text, source_line bigint,
    PRIMARY KEY ((user_id, month), timestamp, tx_id))"""
IMPORTED_RE = re.compile(r"(\d+) rows imported from \d+ files? in (.+?) seconds")
UNIT_SECONDS = {"day": 86400, "hour": 3600, "minute": 60}


@dataclass
class CopyResult:
    rows: int
    seconds: float  # as cqlsh reports it
    wall_seconds: float  # the whole cqlsh process, start-up included
    rows_per_s: float
    command: str
    output_tail: str


def tx_type(row: KoinlyRow) -> str:
    sent = row.sent_currency is not None
    got = row.received_currency is not None
    if sent and got:
        if row.sent_currency in FIAT:
            return "buy"
        return "sell" if row.received_currency in FIAT else "trade"
    if got:
        return "income" if row.label else "deposit"
    return "withdrawal" if sent else "fee"


def export_canonical_csv(source: Path, out: Path, user_id: str) -> int:
    """Write the rows of a Koinly file as canonical-column CSV; returns the rows written."""
    n = 0
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for row in read_koinly_file(str(source)):
            ts = row.timestamp
            tx_id = hashlib.sha1(f"{user_id}:{source.name}:{row.line}".encode()).hexdigest()[:24]
            writer.writerow(
                (
                    user_id,
                    ts.year * 100 + ts.month,
                    ts.strftime("%Y-%m-%d %H:%M:%S+0000"),
                    tx_id,
                    row.wallet or "default",
                    tx_type(row),
                    row.label or "",
                    row.sent_currency or "",
                    _num(row.sent_amount),
                    row.received_currency or "",
                    _num(row.received_amount),
                    row.fee_currency or "",
                    _num(row.fee_amount),
                    _num(row.net_worth_amount),
                    row.net_worth_currency or "",
                    row.tx_hash or "",
                    one_line(row.description),
                    "koinly",
                    source.name,
                    row.line,
                )
            )
            n += 1
    return n


def one_line(text: str | None) -> str:
    """cqlsh COPY FROM cannot load a quoted field that spans lines (6.2.2 stalls: "No records
    inserted in 90 seconds, aborting"), so line breaks inside a description become spaces."""
    return " ".join((text or "").splitlines())


def _num(value) -> str:
    return "" if value is None else str(value)


def interval_seconds(text: str) -> float:
    """cqlsh's elapsed time: '12.345' or '0 day, 0 hour, 2 minutes, and 5.123' (seconds)."""
    total = 0.0
    for number, unit in re.findall(r"(\d+) (day|hour|minute)s?", text):
        total += int(number) * UNIT_SECONDS[unit]
    return total + float(re.findall(r"[\d.]+", text)[-1])


def cqlsh_binary() -> str:
    here = Path(sys.executable).parent / "cqlsh"
    found = str(here) if here.exists() else shutil.which("cqlsh")
    if not found:
        raise RuntimeError(
            "step 'COPY FROM': cqlsh is not installed; run "
            ".venv/bin/pip install cqlsh (it is in the project's bench extra)"
        )
    return found


def empty_table(session, table: str) -> None:
    """Create `table` (the canonical columns, raw_transactions' partitions) or empty it."""
    session.execute(CREATE_TABLE.format(table=table), timeout=60)
    session.execute(f"TRUNCATE {table}", timeout=120)


def run_copy_from(
    session, keyspace: str, csv_path: Path, host: str, port: int, timeout_s: float = 3600
) -> CopyResult:
    """Recreate an empty copy_transactions and load `csv_path` into it with cqlsh COPY FROM."""
    empty_table(session, COPY_TABLE)
    statement = (
        f"COPY {keyspace}.{COPY_TABLE} ({', '.join(COLUMNS)}) FROM '{csv_path}' "
        "WITH HEADER = TRUE AND ESCAPE = '\"'"
    )
    cmd = [cqlsh_binary(), host, str(port), "--request-timeout=60", "-e", statement]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    wall = time.perf_counter() - started
    output = proc.stdout + proc.stderr
    match = IMPORTED_RE.search(output)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"step 'COPY FROM': cqlsh exited {proc.returncode}:\n{output[-3000:]}")
    rows, seconds = int(match.group(1)), interval_seconds(match.group(2))
    return CopyResult(
        rows=rows,
        seconds=seconds,
        wall_seconds=wall,
        rows_per_s=rows / seconds if seconds > 0 else 0.0,
        command=" ".join(cmd[:3] + ["-e", repr(statement)]),
        output_tail=output.strip()[-600:],
    )


def as_dict(result: CopyResult) -> dict:
    return asdict(result)
