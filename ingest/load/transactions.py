"""Canonical transactions in Cassandra: the store stage's writes and the tax stage's reads.

Rows go in as UNLOGGED batches that share one (user_id, month) partition; writes are upserts keyed
by the stable tx_id, which is what makes re-uploads and retried tasks idempotent.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args

from ingest.load.cassandra import (
    execute,
    execute_batches,
    execute_many,
    prepared,
    with_retry,
)
from ingest.normalize.canonical import CANONICAL_COLUMNS, CANONICAL_SCHEMA

_STORED = [c for c in CANONICAL_COLUMNS if c not in ("user_id",)]
INSERT_RAW = (
    f"INSERT INTO raw_transactions (user_id, month, {', '.join(_STORED)}, job_id) "
    f"VALUES (?, ?, {', '.join('?' for _ in _STORED)}, ?)"
)
SELECT_RAW = (
    f"SELECT {', '.join(CANONICAL_COLUMNS)} FROM raw_transactions WHERE user_id = ? AND month = ?"
)


def month_keys(timestamps: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """yyyymm (int) of each UTC timestamp, vectorized."""
    year = pc.year(timestamps).to_numpy(zero_copy_only=False)
    month = pc.month(timestamps).to_numpy(zero_copy_only=False)
    return (year * 100 + month).astype(np.int64)


def _columns_as_python(table: pa.Table, names: Iterable[str]) -> list[list[Any]]:
    return [table.column(n).to_pylist() for n in names]


def store_transactions(
    session: Session, table: pa.Table, job_id: uuid.UUID, *, batch_rows: int | None = None
) -> int:
    """Upsert canonical rows; also record (user, month, asset) in user_months. Returns rows."""
    if table.num_rows == 0:
        return 0
    months = month_keys(table.column("timestamp")).tolist()
    users = table.column("user_id").to_pylist()
    cols = _columns_as_python(table, _STORED)
    by_partition: dict[tuple[str, int], list[Sequence[Any]]] = defaultdict(list)
    for i, row in enumerate(zip(*cols)):
        by_partition[(users[i], months[i])].append((users[i], months[i], *row, job_id))
    written = execute_batches(session, INSERT_RAW, by_partition, max_rows=batch_rows)
    record_user_months(session, table, months)
    return written


def count_present(
    session: Session, table: pa.Table, job_id: uuid.UUID, stored_months: Collection[int]
) -> int:
    """Rows of `table` already stored by another job (a file uploaded again adds nothing): the
    stored ids of each (user, month) partition in the table's time range, read before the write.
    Rows this job stored itself (a retried store task) count as new. Only months in
    `stored_months` (the user's months when the store began) are read: no other job's rows can
    be in the others, and reading them would read back this job's own writes (on a first upload
    of 600k rows that doubled the store stage)."""
    if table.num_rows == 0 or not stored_months:
        return 0
    months = month_keys(table.column("timestamp")).tolist()
    users = table.column("user_id").to_pylist()
    stamps = table.column("timestamp").to_pylist()
    ids = table.column("tx_id").to_pylist()
    wanted: dict[tuple[str, int], tuple[set[str], list[datetime]]] = {}
    for user, month, ts, tx_id in zip(users, months, stamps, ids):
        if month not in stored_months:
            continue
        keys, times = wanted.setdefault((user, month), (set(), []))
        keys.add(tx_id)
        times.append(ts)
    present = 0
    for (user, month), (keys, times) in wanted.items():
        # whole seconds around the range: the stored timestamps are milliseconds
        lo = min(times).replace(microsecond=0)
        hi = max(times).replace(microsecond=0) + timedelta(seconds=1)
        for row in execute(
            session,
            "SELECT tx_id, job_id FROM raw_transactions WHERE user_id = ? "
            "AND month = ? AND timestamp >= ? AND timestamp <= ?",
            (user, month, lo, hi),
            fetch_size=5000,
        ):
            present += row["job_id"] != job_id and row["tx_id"] in keys
    return present


def record_user_months(session: Session, table: pa.Table, months: list[int]) -> None:
    # the distinct (user, month, asset) keys found by Arrow: a 20k-row slice of view rows has
    # a few dozen, and the tax stage records them for every slice it writes
    keys: set[tuple[str, int, str]] = set()
    month_column = pa.array(months, pa.int32())
    for col in ("sent_asset", "received_asset", "fee_asset"):
        found = (
            pa.table(
                {
                    "user_id": table.column("user_id"),
                    "month": month_column,
                    "asset": table.column(col),
                }
            )
            .group_by(["user_id", "month", "asset"])
            .aggregate([])
        )
        keys.update(
            (user, month, asset)
            for user, month, asset in zip(
                *(found.column(c).to_pylist() for c in found.column_names)
            )
            if asset
        )
    execute_many(
        session, "INSERT INTO user_months (user_id, month, asset) VALUES (?, ?, ?)", sorted(keys)
    )


def user_months(session: Session, user_id: str) -> dict[int, set[str]]:
    """month -> assets appearing in it, for one user."""
    out: dict[int, set[str]] = defaultdict(set)
    for row in execute(
        session,
        "SELECT month, asset FROM user_months WHERE user_id = ?",
        (user_id,),
        fetch_size=5000,
    ):
        out[row["month"]].add(row["asset"])
    return dict(out)


def read_transactions(
    session: Session, user_id: str, months: Iterable[int], *, concurrency: int = 16
) -> pa.Table:
    """All canonical rows of `user_id` in `months`, as one Arrow table (CANONICAL_SCHEMA)."""
    stmt = prepared(session, SELECT_RAW)
    params = [(user_id, m) for m in sorted(months)]
    columns: list[list[Any]] = [[] for _ in CANONICAL_COLUMNS]

    def run() -> None:
        for col in columns:
            col.clear()
        results = execute_concurrent_with_args(
            session, stmt, params, concurrency=concurrency, results_generator=True
        )
        for ok, result in results:
            if not ok:
                raise result
            for row in result:
                for col, value in zip(columns, row.values()):
                    col.append(value)

    with_retry(run)
    ts = columns[CANONICAL_COLUMNS.index("timestamp")]
    columns[CANONICAL_COLUMNS.index("timestamp")] = [
        t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t for t in ts
    ]
    arrays = [pa.array(col, type=field.type) for col, field in zip(columns, CANONICAL_SCHEMA)]
    return pa.Table.from_arrays(arrays, schema=CANONICAL_SCHEMA)


def count_transactions(session: Session, user_id: str) -> int:
    months = user_months(session, user_id)
    total = 0
    for m in months:
        total += execute(
            session,
            "SELECT count(*) AS n FROM raw_transactions WHERE user_id = ? AND month = ?",
            (user_id, m),
        ).one()["n"]
    return total
