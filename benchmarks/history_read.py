"""Reading a whole raw history both ways in one run: today's row read against the chunk read.

The file's canonical rows (parsed in this process with the functions a job uses) are loaded
under one fresh user both ways: as rows of raw_transactions (store_transactions, what the store
stage did before migration 015) and as history chunks written the way the store stage writes
them (one write per store partition, each partition published after its write, then the
compaction the store stage's end runs; here one partition after another in this process, so
the write figures give a scale, not the store stage's time). Then each history is read whole by
its reader, in alternating rounds: `read_transactions` (one partition query per month, row by row through the
driver) and `read_history` (the published chunks, decoded and merged). Both reads must give the
same rows (compared whole, sorted by tx_id, timestamps at the milliseconds Cassandra keeps).
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cassandra.cluster import Session

from benchmarks.stack import BenchError
from ingest.load.history_chunks import (
    history_months,
    publish,
    published,
    read_history,
    write_chunks,
)
from ingest.load.history_compaction import compact_history
from ingest.load.transactions import read_transactions, store_transactions, user_months

STORE_PARTITIONS = 16  # store tasks of a large upload (one per parse chunk of the file)
ROUNDS = 3  # reads of each kind, alternating; the medians are compared


def as_user(table: pa.Table, user_id: str) -> pa.Table:
    index = table.schema.get_field_index("user_id")
    return table.set_column(
        index, table.schema.field(index), pa.array([user_id] * table.num_rows, pa.string())
    )


def comparable(table: pa.Table) -> pa.Table:
    """Sorted by tx_id, timestamps truncated to the milliseconds raw_transactions keeps."""
    index = table.schema.get_field_index("timestamp")
    millis = pc.cast(table.column(index), pa.timestamp("ms", tz="UTC"), safe=False)
    table = table.set_column(index, table.schema.field(index).with_type(millis.type), millis)
    return table.take(pc.sort_indices(table, sort_keys=[("tx_id", "ascending")]))


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - started, out


def measure(
    session: Session,
    rows: pa.Table,
    *,
    compact_chunks: int,
    partitions: int = STORE_PARTITIONS,
    rounds: int = ROUNDS,
    user_id: str | None = None,
) -> dict[str, Any]:
    """Load `rows` (canonical, one user's) both ways under a fresh user, read each back whole
    `rounds` times, return the figures (seconds, rows/s, the ratio)."""
    user_id = user_id or f"bench-history-{uuid.uuid4().hex[:8]}"
    rows = as_user(rows, user_id)
    upload = uuid.uuid1()

    row_write_s, _ = timed(store_transactions, session, rows, upload)

    # the store stage's partitions hold rows of every month (legs are shuffled by key)
    partition_of = np.arange(rows.num_rows) % partitions

    def write_as_store_stage() -> int:
        written = 0
        for part in range(partitions):
            of_part = rows.filter(pa.array(partition_of == part))
            keys = write_chunks(session, user_id, upload, part, of_part)
            publish(session, user_id, keys)
            written += len(keys)
        return written

    chunk_write_s, chunks_written = timed(write_as_store_stage)
    compaction_s, compaction = timed(compact_history, session, user_id, compact_chunks)

    row_months = sorted(user_months(session, user_id))
    chunk_months = history_months(session, user_id)
    row_reads, chunk_reads = [], []
    row_table = chunk_table = None
    for _ in range(rounds):
        seconds, row_table = timed(read_transactions, session, user_id, row_months)
        row_reads.append(seconds)
        seconds, chunk_table = timed(read_history, session, user_id, chunk_months)
        chunk_reads.append(seconds)
    assert row_table is not None and chunk_table is not None
    for name, table in (("row read", row_table), ("chunk read", chunk_table)):
        if table.num_rows != rows.num_rows:
            raise BenchError(f"the {name} gave {table.num_rows:,} rows, {rows.num_rows:,} loaded")
    if not comparable(row_table).equals(comparable(chunk_table)):
        raise BenchError(f"the row read and the chunk read of {user_id} differ")

    row_s, chunk_s = statistics.median(row_reads), statistics.median(chunk_reads)
    return {
        "user": user_id,
        "rows": rows.num_rows,
        "months": len(row_months),
        "row_write_s": row_write_s,
        "chunk_write_s": chunk_write_s,
        "store_partitions": partitions,
        "chunks_written": chunks_written,
        "compaction_s": compaction_s,
        "compact_chunks": compact_chunks,
        "chunks_compacted_away": compaction.retired,
        "chunks_read": len(published(session, user_id)),
        "rounds": rounds,
        "row_reads_s": row_reads,
        "chunk_reads_s": chunk_reads,
        "seconds": row_s,  # today's row read (the figure the step reported before the chunks)
        "rows_per_s": rows.num_rows / row_s if row_s > 0 else None,
        "chunk_seconds": chunk_s,
        "chunk_rows_per_s": rows.num_rows / chunk_s if chunk_s > 0 else None,
        "speedup": row_s / chunk_s if chunk_s > 0 else None,
        "read_path": "ingest.load.transactions.read_transactions (one partition query per "
        "month, 16 in flight, row by row through the driver) vs "
        "ingest.load.history_chunks.read_history (published chunks, decoded and merged), "
        "in the benchmark process",
    }
