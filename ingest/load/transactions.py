"""Canonical transactions as rows in Cassandra (raw_transactions), the layout before schema
version 15, and the months a user has (user_months).

Since version 15 the store stage writes history chunks (ingest/load/history_chunks.py) and the tax
stage reads them; raw_transactions is read only to convert a keyspace stored before
(`read_transactions`) and by the history-read benchmark as its baseline. `store_transactions`
writes that layout, for seeding such a keyspace. Rows go in as UNLOGGED batches that share one
(user_id, month) partition; writes are upserts keyed by the stable tx_id.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import timezone
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
    """Upsert canonical rows into raw_transactions (the layout before version 15: no stage
    writes it since); also record (user, month, asset) in user_months. Returns rows."""
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


def record_user_months(
    session: Session,
    table: pa.Table,
    months: list[int],
    recorded: Collection[tuple[str, int, str]] = frozenset(),
) -> None:
    """The (user, month, asset) keys of `table`'s rows, but those known to be `recorded` already
    (user_months rows are never deleted: an upload's tax stage finds its store's keys there)."""
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
        session,
        "INSERT INTO user_months (user_id, month, asset) VALUES (?, ?, ?)",
        sorted(keys.difference(recorded)),
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
