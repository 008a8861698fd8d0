"""What a bulk loader stored, checked against the canonical CSV it loaded (COPY FROM, DSBulk).

A loader that reads the CSV with the wrong escape stores descriptions with doubled quotes wrongly
(and still reports every row imported), so a load's rows/s only counts when the rows are right:
the loaded table's row count must equal the file's, and a sample of rows (every description with
a quote in it, plus every `stride`-th row) must hold exactly the file's values, column by column.

The comparison is pure (`expected_sample`, `mismatches`); `check_loaded` reads the node.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from benchmarks.copy_from import COLUMNS

KEY = ("user_id", "month", "timestamp", "tx_id")
DECIMALS = frozenset({"sent_amount", "received_amount", "fee_amount", "fiat_value"})
INTEGERS = frozenset({"month", "source_line"})
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S%z"
SAMPLE_STRIDE = 500
MISMATCHES_SHOWN = 5

Key = tuple[str, int, datetime, str]


@dataclass
class Expected:
    rows: int  # data rows of the file
    months: set[int]  # its (user_id, month) partitions' months (one user per file)
    user_id: str
    sample: dict[Key, dict[str, str]]  # the rows to compare, by primary key
    quoted: int  # sampled rows whose description holds a double quote


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, TIMESTAMP_FORMAT).astimezone(timezone.utc)


def row_key(row: Mapping[str, str]) -> Key:
    return (row["user_id"], int(row["month"]), parse_timestamp(row["timestamp"]), row["tx_id"])


def expected_sample(csv_path: Path, stride: int = SAMPLE_STRIDE) -> Expected:
    """Row count, months and the sample (quoted descriptions + every `stride`-th row) of a
    canonical CSV as `export_canonical_csv` writes it."""
    sample: dict[Key, dict[str, str]] = {}
    months: set[int] = set()
    users: set[str] = set()
    rows = quoted = 0
    with open(csv_path, newline="") as f:
        for index, row in enumerate(csv.DictReader(f)):
            rows += 1
            months.add(int(row["month"]))
            users.add(row["user_id"])
            has_quote = '"' in row["description"]
            if has_quote or index % stride == 0:
                sample[row_key(row)] = row
                quoted += has_quote
    if len(users) > 1:
        raise ValueError(f"{csv_path}: one user per loaded file expected, found {sorted(users)}")
    return Expected(rows, months, next(iter(users), ""), sample, quoted)


def same_value(column: str, text: str, stored: Any) -> bool:
    """Does the node's value equal the CSV cell? An empty cell is a null (both loaders' default)."""
    if stored is None or stored == "":
        return text == ""
    if column in DECIMALS:
        try:
            return Decimal(text) == stored
        except InvalidOperation:
            return False
    if column in INTEGERS:
        return text.isdigit() and int(text) == stored
    if column == "timestamp":
        when = stored if stored.tzinfo else stored.replace(tzinfo=timezone.utc)
        return parse_timestamp(text) == when
    return text == stored


def mismatches(expected: Mapping[Key, Mapping[str, str]], loaded: Mapping[Key, Any]) -> list[str]:
    """One line per sampled row missing from `loaded` or differing from the file in a column."""
    out = []
    for key, row in expected.items():
        stored = loaded.get(key)
        if stored is None:
            out.append(f"row {key[3]} (line {row['source_line']}) not loaded")
            continue
        for column in COLUMNS:
            if not same_value(column, row[column], stored[column]):
                out.append(
                    f"row {key[3]} (line {row['source_line']}) {column}: file "
                    f"{row[column]!r}, stored {stored[column]!r}"
                )
    return out


@dataclass
class LoadCheck:
    file_rows: int
    loaded_rows: int
    sampled_rows: int
    sampled_quoted_descriptions: int
    mismatched_cells: int


def verdict(expected: Expected, loaded_rows: int, problems: list[str], table: str) -> LoadCheck:
    """The check's figures, or ValueError naming what differs."""
    if loaded_rows != expected.rows or problems:
        shown = "; ".join(problems[:MISMATCHES_SHOWN])
        more = f" (+{len(problems) - MISMATCHES_SHOWN} more)" if len(problems) > 5 else ""
        raise ValueError(
            f"{table} does not hold the file: {loaded_rows:,} rows loaded for "
            f"{expected.rows:,} in the file; {len(problems)} sampled cells differ{more}"
            + (f": {shown}" if shown else "")
        )
    return LoadCheck(expected.rows, loaded_rows, len(expected.sample), expected.quoted, 0)


def check_loaded(session: Any, table: str, csv_path: Path) -> LoadCheck:
    """Count `table`'s rows per month and read the sampled rows back by key; ValueError (with the
    first differences) unless the table holds exactly the file."""
    from cassandra.concurrent import execute_concurrent_with_args

    expected = expected_sample(csv_path)
    count = session.prepare(f"SELECT count(*) AS n FROM {table} WHERE user_id = ? AND month = ?")
    loaded_rows = sum(
        session.execute(count, (expected.user_id, m), timeout=120).one()["n"]
        for m in sorted(expected.months)
    )
    select = session.prepare(
        f"SELECT {', '.join(COLUMNS)} FROM {table} "
        "WHERE user_id = ? AND month = ? AND timestamp = ? AND tx_id = ?"
    )
    keys = list(expected.sample)
    loaded: dict[Key, Any] = {}
    results: Iterable[tuple[bool, Any]] = execute_concurrent_with_args(
        session, select, keys, concurrency=32
    )
    for key, (ok, result) in zip(keys, results):
        if not ok:
            raise result
        row = result.one()
        if row is not None:
            loaded[key] = row
    return verdict(expected, loaded_rows, mismatches(expected.sample, loaded), table)
